"""Writes the seed corpora of the fuzz_proto_* targets: valid mutual.v1 messages.

usage: /usr/bin/python3 fuzz/rpc/make_corpus.py STUBS_DIR
(STUBS_DIR: mutual_pb2.py from `python3 -m grpc_tools.protoc --python_out=...`)"""
import os
import sys

sys.path.insert(0, sys.argv[1])
import mutual_pb2 as pb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sha = bytes(range(32))
seeds = {
    "join_request": [pb.JoinRequest(api_version=1, org_name="bank-a",
                                    signing_public_key=b"k" * 32, software_version="0.1.0")],
    "join_reply": [pb.JoinReply(api_version=1, org_id=7, federation_name="credit-unions",
                                current_round=3, federation_config=b"cfg", poll_timeout_ms=30000)],
    "pull_task_request": [pb.PullTaskRequest(api_version=1, org_id=7, last_round=2, last_stage=4)],
    "task": [pb.Task(api_version=1, kind=pb.TASK_KIND_SECAGG_STAGE, round=3, stage=2,
                     round_config=b"rc", payload=b"\x01\x02", stage_deadline_unix_ms=1,
                     retry_after_ms=0),
             pb.Task(api_version=1, kind=pb.TASK_KIND_WAIT, retry_after_ms=500)],
    "push_stage_request": [pb.PushStageRequest(api_version=1, org_id=7, round=3, stage=2,
                                               payload=b"p" * 40, signature=b"s" * 64)],
    "push_stage_reply": [pb.PushStageReply(api_version=1, accepted=False, reason="late")],
    "download_adapter_request": [pb.DownloadAdapterRequest(api_version=1, org_id=7, round=3,
                                                           offset=10)],
    "adapter_chunk": [pb.AdapterChunk(api_version=1, round=3, offset=4, total=10,
                                      data=b"abcdef", sha256=sha)],
    "upload_masked_chunk": [pb.UploadMaskedChunk(api_version=1, org_id=7, round=3, stage=3,
                                                 offset=0, total=8, data=b"12345678",
                                                 sha256=sha, signature=b"s" * 64)],
    "upload_masked_reply": [pb.UploadMaskedReply(api_version=1, received_bytes=8,
                                                 accepted=True)],
    "status_request": [pb.StatusRequest(api_version=1)],
    "status_reply": [pb.StatusReply(api_version=1, software_version="0.1.0", round=5,
                                    stage="masked-input", orgs_registered=3, orgs_connected=2,
                                    orgs_in_cohort=2, federation_name="f",
                                    last_round=pb.RoundMetrics(round=4, loss_sum=1.5, tokens=9,
                                                               examples=2, orgs_completed=2,
                                                               orgs_dropped=1, duration_s=2))],
}
for name, msgs in seeds.items():
    d = os.path.join(HERE, "fuzz_proto_%s_corpus" % name)
    os.makedirs(d, exist_ok=True)
    for i, m in enumerate(msgs):
        with open(os.path.join(d, "seed%d" % i), "wb") as f:
            f.write(m.SerializeToString())
