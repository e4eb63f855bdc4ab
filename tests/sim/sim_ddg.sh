#!/bin/sh
# The distributed discrete Gaussian through the round config (privacy.ddg_noise,
# min_survivors): a sim with it completes every round, repeats bit for bit with its seed (the
# simulator keys each org's noise from the org's seed), trains something else than the same
# run without noise, and ddg_noise 0 gives exactly the bytes of a config without the key; an
# org dropped at MASKED leaves a round of 2 that completes with min_survivors 2 and aborts,
# before unmasking and naming the reason, with min_survivors 3.
set -u
MUTUAL=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf sim_ddg && mkdir sim_ddg && cd sim_ddg || exit 1
config() { # config PRIVACY_BLOCK DROPOUT_BLOCK
    cat <<Y
seed: 3
model: {base: $SRC/tests/train/ref/gpt2, rank: 2}
data: {file: $SRC/tests/train/ref/gpt2_data.h5, orgs: 3, eval_fraction: 0}
$2
coordinator:
  federation: {rounds: 2}
  cohort: {min_orgs: 2, wait_s: 0}
  train: {steps: 2, batch: 2, seq: 8, weight: uniform}
  secure_agg: {clip: 0.1, weight_max: 1}
$1
Y
}
config "  privacy: {ddg_noise: 0.5, min_survivors: 3}" "" > ddg.yaml
config "  privacy: {ddg_noise: 0}" "" > off.yaml
config "" "" > plain.yaml
drop="dropout: {script: [{org: org-1, round: 2, stage: masked}]}"
config "  privacy: {ddg_noise: 0.5, min_survivors: 2}" "$drop" > drop2.yaml
config "  privacy: {ddg_noise: 0.5, min_survivors: 3}" "$drop" > drop3.yaml
for c in ddg off plain drop2 drop3; do
    "$MUTUAL" sim --config $c.yaml --out $c --metrics $c.jsonl -q > $c.txt 2> $c.err ||
        fail "$c: $(cat $c.err)"
done
for c in ddg off plain drop2; do
    grep -q '^2 rounds (2 completed, 0 aborted)' $c.txt || fail "$c: $(cat $c.txt)"
done
"$MUTUAL" sim --config ddg.yaml --out again -q > again.txt 2> again.err || fail "again: $(cat again.err)"
cmp -s ddg/adapter_model.safetensors again/adapter_model.safetensors || fail "DDG sim does not repeat"
cmp -s ddg/adapter_model.safetensors plain/adapter_model.safetensors && fail "DDG sim = plain sim"
cmp -s off/adapter_model.safetensors plain/adapter_model.safetensors || fail "ddg_noise 0 != plain"
grep -q '^2 rounds (1 completed, 1 aborted)' drop3.txt || fail "drop3: $(cat drop3.txt)"
grep -q 'below privacy.min_survivors 3' drop3.jsonl || fail "drop3 reason: $(cat drop3.jsonl)"
grep '"round":2' drop2.jsonl | grep -q '"orgs_completed":2' || fail "drop2: $(cat drop2.jsonl)"

# The budget: epsilon_budget 3.6 lies between the org-level epsilon of 2 released rounds (3.19)
# and of 3 (4.01) (1 round: 2.17): a 10-round federation runs 2, each metrics line carries the spent epsilon,
# and the run stops saying why; a coordinator restart inside round 2 (from its checkpoint)
# keeps the count and stops at the same place with the same adapter.
budget() { # budget CHECKPOINT_LINE RESTART_LINE
    cat <<Y
seed: 3
$1
model: {base: $SRC/tests/train/ref/gpt2, rank: 2}
data: {file: $SRC/tests/train/ref/gpt2_data.h5, orgs: 3, eval_fraction: 0}
$2
coordinator:
  federation: {rounds: 10, checkpoint_dir: ck}
  cohort: {min_orgs: 3, wait_s: 0}
  train: {steps: 1, batch: 2, seq: 8, weight: uniform}
  secure_agg: {clip: 0.1, weight_max: 1}
  privacy: {ddg_noise: 2, min_survivors: 3, colluders: 0, epsilon_budget: 3.6}
Y
}
budget "checkpoint: true" "" > budget.yaml
budget "checkpoint: true" "restart: {round: 2, stage: masked}" > restart.yaml
for c in budget restart; do
    "$MUTUAL" sim --config $c.yaml --out $c --metrics $c.jsonl > $c.txt 2> $c.err ||
        fail "$c: $(cat $c.err)"
    grep -q '^2 rounds (2 completed, 0 aborted)' $c.txt || fail "$c: $(cat $c.txt)"
    grep -q 'federation stopped: privacy budget: 3 released rounds would give org-level epsilon 4\.01' \
        $c.err || fail "$c: no budget stop: $(cat $c.err)"
done
/usr/bin/python3 - budget.jsonl <<'P' || fail "budget metrics: $(cat budget.jsonl)"
import json, sys
e = [json.loads(l)["epsilon"] for l in open(sys.argv[1]) if '"round"' in l and '"org"' not in l]
assert len(e) == 2 and 2.1 < e[0] < 2.2 and 3.15 < e[1] < 3.2, e
P
cmp -s budget/adapter_model.safetensors restart/adapter_model.safetensors ||
    fail "a restart changed the budgeted run"
grep -q '1 coordinator restart' restart.txt || fail "no restart: $(cat restart.txt)"
echo "ok: distributed discrete Gaussian"
