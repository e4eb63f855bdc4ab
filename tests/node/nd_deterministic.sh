#!/usr/bin/env bash
# The network driver adds no randomness of its own: two loopback runs whose orgs have
# testing.deterministic_seed (and one thread each) end with the same global adapter bits after
# every round, whatever order the orgs joined in. (Without the seeds the bits must differ:
# stochastic rounding and masks then come from system randomness.) The seeded runs' last org
# trains on a bf16 base (training: {bf16: true}), so its update repeats through join too.
# usage: nd_deterministic.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
for run in a b; do
  rm -rf "$PWD/nd_det_$run"
  "$SCRIPT" --mutual "$MUTUAL" --work "$PWD/nd_det_$run" --orgs 3 --rounds 2 --deterministic \
    --dump --timeout 200 --org-training "{bf16: true}" >/dev/null
  grep -q "join: bf16 base (.*kernel" "nd_det_$run/org-3.log" ||
    { echo "FAIL: org-3 did not report its bf16 base"; cat "nd_det_$run/org-3.log"; exit 1; }
done
rm -rf "$PWD/nd_det_c"
"$SCRIPT" --mutual "$MUTUAL" --work "$PWD/nd_det_c" --orgs 3 --rounds 2 --dump --timeout 200 \
  >/dev/null
for r in 000001 000002; do
  cmp "nd_det_a/dump/global-$r.f32" "nd_det_b/dump/global-$r.f32" ||
    { echo "FAIL: round $r differs between two seeded runs"; exit 1; }
done
if cmp -s nd_det_a/dump/global-000002.f32 nd_det_c/dump/global-000002.f32; then
  echo "FAIL: an unseeded run gave the same bits: the seeds are not what makes it repeat"; exit 1
fi
echo "ok: two seeded loopback runs (one org on a bf16 base) gave the same global bits in every round; an unseeded one did not"
