#!/usr/bin/env bash
# The loopback federation: a CA, a coordinator and 3 orgs as real processes with mutual TLS on
# 127.0.0.1; 3 rounds must complete, every org must leave with status 0, and each round's
# global adapter must be exported as a PEFT folder that `mutual eval` loads.
# usage: nd_loopback.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_loopback
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 3 --timeout 200 | tee "$work.out"
n=$(grep -cE '^round [0-9]+ train +completed +orgs 3/3' "$work.out")
[ "$n" = 3 ] || { echo "FAIL: $n of 3 rounds completed with all 3 orgs"; exit 1; }
for r in 1 2 3; do
  d=$work/adapters/round-00000$r
  [ -s "$d/adapter_model.safetensors" ] && [ -s "$d/adapter_config.json" ] ||
    { echo "FAIL: no PEFT export for round $r"; exit 1; }
done
"$MUTUAL" -q eval --base "$work/model" --adapter "$work/adapters/round-000003" \
  --data "$work/org-1.h5" --seq 32 --batch 4 >"$work/eval.out" ||
  { echo "FAIL: mutual eval cannot use the exported adapter"; cat "$work/eval.out"; exit 1; }
echo "ok: 3 rounds, 3 orgs, PEFT exports load ($(head -c 200 "$work/eval.out"))"
