#!/bin/sh
# Federated DP-SGD through the round config (train.dp_clip, dp_noise, dp_sampling): a sim
# with it completes every round, repeats bit for bit with its seed (the simulator keys each
# org's noise from the org's seed), and trains something else than the same run without it;
# an org with fewer records than the batch fails cleanly (exit 1, naming the numbers).
set -u
MUTUAL=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf sim_dp && mkdir sim_dp && cd sim_dp || exit 1
config() { # config DP_CLIP BATCH SAMPLING
    cat <<Y
seed: 3
model: {base: $SRC/tests/train/ref/gpt2, rank: 2}
data: {file: $SRC/tests/train/ref/gpt2_data.h5, orgs: 3, eval_fraction: 0}
coordinator:
  federation: {rounds: 2}
  cohort: {min_orgs: 3, wait_s: 0}
  train: {steps: 2, batch: $2, seq: 8, dp_clip: $1, dp_noise: 1, dp_sampling: $3}
Y
}
config 1 2 poisson > dp.yaml
config 0 2 poisson > plain.yaml
config 1 2 fixed > fixed.yaml
config 1 20 poisson > big.yaml
for c in dp plain fixed; do
    "$MUTUAL" sim --config $c.yaml --out $c --metrics $c.jsonl -q > $c.txt 2> $c.err ||
        fail "$c: $(cat $c.err)"
    grep -q '^2 rounds (2 completed, 0 aborted)' $c.txt || fail "$c: $(cat $c.txt)"
done
"$MUTUAL" sim --config dp.yaml --out again -q > again.txt 2> again.err || fail "again: $(cat again.err)"
cmp -s dp/adapter_model.safetensors again/adapter_model.safetensors || fail "DP sim does not repeat"
cmp -s dp/adapter_model.safetensors plain/adapter_model.safetensors && fail "DP sim = plain sim"
cmp -s dp/adapter_model.safetensors fixed/adapter_model.safetensors && fail "poisson = fixed"
"$MUTUAL" sim --config big.yaml -q > big.txt 2> big.err
rc=$?
[ $rc -eq 1 ] || fail "too few records: exit $rc, want 1"
grep -q 'fewer than batch 20' big.txt big.err || fail "too few records: $(cat big.txt big.err)"
echo "ok: federated DP-SGD"
