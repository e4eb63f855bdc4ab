#!/usr/bin/env bash
# A misbehaving org against the real `mutual serve` (nd_bad_client): a second key for the same
# name, unsigned or wrongly signed pushes and uploads, another org's id, an unregistered id,
# out-of-order reports, malformed stage messages, a NaN metric, malformed protobuf, a download
# past the end - each refused with its gRPC status and a log line; the coordinator stays up
# and Status still answers.
# usage: nd_bad_input.sh MUTUAL SCRIPT BAD_CLIENT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2 BAD=$3
work=$PWD/nd_bad_input
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 2 --rounds 1 --setup-only
cd "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
addr=127.0.0.1:$(cat port.planned)
rm -f port
"$MUTUAL" serve --config coordinator.yaml --port-file port >serve.jsonl 2>serve.log &
srv=$!
pids+=($srv)
for _ in $(seq 300); do [ -s port ] && break; sleep 0.1; done
timeout 120 "$BAD" "$addr" fed
n=$(grep -c "refused\|rejected" serve.log)
[ "$n" -ge 13 ] || { echo "FAIL: only $n refusals logged"; cat serve.log; exit 1; }
"$MUTUAL" -q status --coordinator "$addr" --ca fed/ca.crt --cert fed/operator.crt \
  --key fed/operator.key --json | grep '"orgs_registered":2'
kill -TERM "$srv"
wait "$srv"
grep -q "clean shutdown" serve.log
echo "ok: $n refusals logged, the coordinator stayed up and stopped cleanly"
