#!/usr/bin/env bash
# Debian's python3-grpcio (stubs generated here from proto/mutual.proto) calls Status on the
# real `mutual serve` over mutual TLS: first while it waits for a second org (round 0, idle,
# one org registered and connected), then on a coordinator restarted after the federation
# finished (resumed: the last round's metrics as the round's JSON line reported them).
# `mutual status` must agree. The server must stop cleanly on SIGTERM.
# usage: nd_python_status.sh MUTUAL SCRIPT PROTO_DIR
set -euo pipefail
MUTUAL=$1 SCRIPT=$2 PROTO_DIR=$3
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
work=$PWD/nd_python_status
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 2 --rounds 2 --setup-only
cd "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
mkdir -p stubs
$PY -m grpc_tools.protoc -I "$PROTO_DIR" --python_out=stubs --grpc_python_out=stubs \
  "$PROTO_DIR/mutual.proto"
port=$(cat port.planned)
addr=127.0.0.1:$port
version=$("$MUTUAL" --version | awk '{print $2}')
status() { "$MUTUAL" -q status --coordinator "$addr" --ca fed/ca.crt --cert fed/operator.crt \
  --key fed/operator.key --timeout 5 "$@"; }
pycheck() { $PY "$HERE/status_check.py" stubs "$addr" fed/ca.crt fed/operator.crt \
  fed/operator.key "$1"; }
wait_port() { for _ in $(seq 300); do [ -s port ] && return; sleep 0.1; done; echo "FAIL: no port"; exit 1; }

rm -f port
"$MUTUAL" serve --config coordinator.yaml --port-file port >run1.jsonl 2>run1.log &
pids+=($!)
wait_port
"$MUTUAL" join --config org-1.yaml 2>org-1.log &
pids+=($!)
for _ in $(seq 300); do
  status --json 2>/dev/null | grep -q '"orgs_registered":1' && break
  sleep 0.1
done
status --json | tee status1.json
pycheck "{\"federation_name\": \"loopback\", \"software_version\": \"$version\", \"round\": 0,
  \"stage\": \"idle\", \"orgs_registered\": 1, \"orgs_connected\": 1, \"orgs_in_cohort\": 0,
  \"last_round\": null}"

"$MUTUAL" join --config org-2.yaml 2>org-2.log &
pids+=($!)
for _ in $(seq 1200); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
wait "${pids[0]}" || { echo "FAIL: the first coordinator failed"; cat run1.log; exit 1; }
last=$(grep '"round":2,' run1.jsonl)
tokens=$(echo "$last" | $PY -c 'import json,sys; print(int(json.load(sys.stdin)["tokens"]))')
loss=$(echo "$last" | $PY -c 'import json,sys; print(json.load(sys.stdin)["loss"])')

rm -f port
"$MUTUAL" serve --config coordinator.yaml --port-file port --linger 60 >run2.jsonl 2>run2.log &
srv=$!
pids+=($srv)
wait_port
grep -q "resumed from" run2.log || { echo "FAIL: no resume"; cat run2.log; exit 1; }
pycheck "{\"federation_name\": \"loopback\", \"round\": 2, \"stage\": \"done\",
  \"orgs_registered\": 2, \"orgs_connected\": 0,
  \"last_round\": {\"round\": 2, \"tokens\": $tokens, \"orgs_completed\": 2,
                   \"orgs_dropped\": 0, \"loss\": $loss}}"
status | tee status2.txt
grep -q "last round   2: 2 orgs completed" status2.txt || { echo "FAIL: mutual status disagrees"; exit 1; }
if "$MUTUAL" -q status --coordinator "$addr" --insecure --timeout 3 >/dev/null 2>&1; then
  echo "FAIL: a plaintext status call was answered by a TLS coordinator"; exit 1
fi
kill -TERM "$srv"
s=0
wait "$srv" || s=$?
[ "$s" = 0 ] && grep -q "clean shutdown" run2.log || { echo "FAIL: exit $s on SIGTERM"; exit 1; }

# A checkpoint written under another config is refused unless the operator says otherwise.
echo "# edited after the federation ran" >>coordinator.yaml
s=0
timeout 60 "$MUTUAL" serve --config coordinator.yaml --linger 1 >run3.jsonl 2>run3.log || s=$?
[ "$s" = 1 ] && grep -qi "config" run3.log ||
  { echo "FAIL: a changed config was not refused (exit $s)"; cat run3.log; exit 1; }
timeout 60 "$MUTUAL" serve --config coordinator.yaml --linger 1 --accept-config-change \
  >run4.jsonl 2>run4.log || { echo "FAIL: --accept-config-change did not resume"; cat run4.log; exit 1; }
grep -q "resumed from" run4.log || { echo "FAIL: no resume with --accept-config-change"; exit 1; }
echo "ok: python3-grpcio read a correct Status from mutual serve (before, and after resume);"
echo "    a changed config is refused on resume unless --accept-config-change"
