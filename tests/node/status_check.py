"""status_check.py STUBS HOST:PORT CA CERT KEY EXPECT - an independent client (Debian's
python3-grpcio, stubs generated from proto/mutual.proto) calls Status on `mutual serve` over
mutual TLS and checks the answer against EXPECT, a JSON object of field -> value where
"last_round" is either null (no round finished yet) or an object of its fields; a float field
"loss" under last_round is compared with loss_sum / tokens. Exits 0 only if all of it held."""
import json
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import mutual_pb2  # noqa: E402
import mutual_pb2_grpc  # noqa: E402

target = sys.argv[2]
ca, cert, key = (open(p, "rb").read() for p in sys.argv[3:6])
want = json.loads(sys.argv[6])
creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                     certificate_chain=cert)
with grpc.secure_channel(target, creds) as channel:
    stub = mutual_pb2_grpc.CoordinatorStub(channel)
    r = stub.Status(mutual_pb2.StatusRequest(api_version=1), timeout=10)
print("python Status:", str(r).replace("\n", " "))
assert r.api_version == 1, r.api_version
for k, v in want.items():
    if k == "last_round":
        if v is None:
            assert not r.HasField("last_round"), "a last round before any round finished"
            continue
        assert r.HasField("last_round"), "no last_round"
        for k2, v2 in v.items():
            if k2 == "loss":
                got = r.last_round.loss_sum / r.last_round.tokens
                assert abs(got - v2) <= 1e-4 * abs(v2), ("loss", got, v2)
            else:
                assert getattr(r.last_round, k2) == v2, (k2, getattr(r.last_round, k2), v2)
    else:
        assert getattr(r, k) == v, (k, getattr(r, k), v)
print("ok")
