"""An independent client: Debian's python3-grpcio with stubs generated from mutual.proto.

usage: status_client.py STUBS_DIR HOST:PORT [CA CERT KEY]
Calls Status on the toy coordinator and checks every field of the answer; checks that a
request without api_version is refused INVALID_ARGUMENT and an unknown method
UNIMPLEMENTED; downloads the toy adapter (server streaming) and uploads a vector (client
streaming) through the C server. Exits 0 only if all of that held."""
import hashlib
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import mutual_pb2  # noqa: E402
import mutual_pb2_grpc  # noqa: E402

target = sys.argv[2]
if len(sys.argv) == 6:
    ca, cert, key = (open(p, "rb").read() for p in sys.argv[3:6])
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                         certificate_chain=cert)
    channel = grpc.secure_channel(target, creds)
else:
    channel = grpc.insecure_channel(target)

stub = mutual_pb2_grpc.CoordinatorStub(channel)
r = stub.Status(mutual_pb2.StatusRequest(api_version=1), timeout=10)
print("status:", r.software_version, "round", r.round, r.stage, "orgs",
      r.orgs_registered, r.orgs_connected, r.orgs_in_cohort, "last round", r.last_round.round,
      "loss/token", r.last_round.loss_sum / r.last_round.tokens)
assert r.api_version == 1
assert r.software_version == "toy-1"
assert r.round == 5 and r.stage == "masked-input"
assert (r.orgs_registered, r.orgs_connected, r.orgs_in_cohort) == (3, 2, 2)
assert r.HasField("last_round")
lr = r.last_round
assert (lr.round, lr.tokens, lr.orgs_completed, lr.orgs_dropped) == (4, 1000, 2, 1)
assert abs(lr.loss_sum - 1234.5) < 1e-9 and abs(lr.duration_s - 2.5) < 1e-9
assert r.federation_name == "toy-federation"

try:
    stub.Status(mutual_pb2.StatusRequest(), timeout=10)
    raise SystemExit("a request without api_version was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
    print("no api_version:", e.code(), e.details())

try:
    channel.unary_unary("/mutual.v1.Coordinator/Nope")(b"", timeout=10)
    raise SystemExit("an unknown method answered")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e.code()
    print("unknown method:", e.code())
# Server streaming: the toy adapter is 2.5 MiB + 1000 bytes of the toy pattern (3 chunks).
def toy(n):
    return bytes(((i * 131) + (i >> 12)) & 0xFF for i in range(n))


chunks = list(stub.DownloadAdapter(mutual_pb2.DownloadAdapterRequest(api_version=1, org_id=7,
                                                                       round=2), timeout=10))
blob = b"".join(c.data for c in chunks)
ADAPTER = (5 << 19) + 1000
assert blob == toy(ADAPTER), "the downloaded adapter differs"
assert len(chunks) == 3
assert all(c.total == ADAPTER and c.round == 2 for c in chunks)
assert chunks[0].sha256 == hashlib.sha256(blob).digest()
print("download:", len(chunks), "chunk(s),", len(blob), "bytes, sha256 ok")

# Client streaming: 3 MiB in 256 KiB chunks, checked byte by byte by the C handler.
n, step = 3 << 20, 256 << 10
data = toy(n)
digest = hashlib.sha256(data).digest()


def upload_chunks():
    for off in range(0, n, step):
        last = off + step >= n
        yield mutual_pb2.UploadMaskedChunk(api_version=1, org_id=7, round=2, stage=3,
                                           offset=off, total=n, data=data[off:off + step],
                                           sha256=digest, signature=b"s" * 64 if last else b"")


r = stub.UploadMasked(upload_chunks(), timeout=30)
assert r.accepted and r.received_bytes == n, (r.accepted, r.received_bytes, r.reason)
print("upload:", r.received_bytes, "bytes accepted")

# A stream that lies about its hash is refused DATA_LOSS.
try:
    stub.UploadMasked(iter([mutual_pb2.UploadMaskedChunk(
        api_version=1, org_id=7, round=2, stage=3, offset=0, total=4, data=b"abcd",
        sha256=bytes(32))]), timeout=10)
    raise SystemExit("an upload with a wrong hash was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.DATA_LOSS, e.code()
    print("wrong hash:", e.code())
channel.close()
print("ok")
