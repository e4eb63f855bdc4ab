#!/usr/bin/env bash
# An org that dies while it waits in a long poll stops counting as connected at once (its
# cancelled poll -> co_round_disconnect), not only after cohort.available_s (5 s here): two
# orgs wait for a third; one is SIGKILLed; within 2 s Status says 1 connected.
# usage: nd_disconnect.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_disconnect
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 1 --setup-only
cd "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
addr=127.0.0.1:$(cat port.planned)
status() { "$MUTUAL" -q status --coordinator "$addr" --ca fed/ca.crt --cert fed/operator.crt \
  --key fed/operator.key --json --timeout 5; }
rm -f port
"$MUTUAL" serve --config coordinator.yaml --port-file port 2>serve.log &
pids+=($!)
for _ in $(seq 300); do [ -s port ] && break; sleep 0.1; done
"$MUTUAL" join --config org-1.yaml 2>org-1.log &
pids+=($!)
"$MUTUAL" join --config org-2.yaml 2>org-2.log &
victim=$!
pids+=($victim)
for _ in $(seq 300); do status | grep -q '"orgs_connected":2' && break; sleep 0.1; done
status | grep '"orgs_connected":2' || { echo "FAIL: the two orgs never connected"; exit 1; }
kill -9 "$victim"
t0=$(date +%s.%N)
for _ in $(seq 20); do status | grep -q '"orgs_connected":1' && break; sleep 0.1; done
st=$(status)
echo "$st"
grep -q '"orgs_connected":1' <<<"$st" ||
  { echo "FAIL: the dead org still counts as connected"; exit 1; }
echo "ok: the dead org stopped counting as connected after $(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}') s"
