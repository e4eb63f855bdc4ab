#!/bin/sh
# mutual sim from the command line: bad configs exit 2 naming FILE:LINE:COL; a synthetic
# federation in parallel and in sequence writes the same global adapter bits; metrics have
# one JSON line per round; flags override the config; the example config parses; injected
# restarts and replays leave the adapter as it was; --checkpointing leaves it as it was; --bf16
# moves it (and --checkpointing then leaves it).
set -u
MUTUAL=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf sim_cli && mkdir sim_cli && cd sim_cli || exit 1

cat > bad1.yaml <<'Y'
seed: 1
model:
  synthetic_dim: 100
  colour: blue
Y
"$MUTUAL" sim --config bad1.yaml > out.txt 2> err.txt
rc=$?
[ $rc -eq 2 ] || fail "bad key: exit $rc, want 2"
grep -q 'bad1.yaml:4:3: unknown key' err.txt || fail "bad key: $(cat err.txt)"

cat > bad2.yaml <<'Y'
model:
  synthetic_dim: 100
data:
  orgs: 4
coordinator:
  federation:
    rounds: 2
  secure_agg:
    bits: 99
Y
"$MUTUAL" sim --config bad2.yaml > out.txt 2> err.txt
rc=$?
[ $rc -eq 2 ] || fail "bad coordinator value: exit $rc, want 2"
grep -q 'bad2.yaml:9:11:' err.txt || fail "bad coordinator value: $(cat err.txt)"

"$MUTUAL" sim --config missing.yaml > out.txt 2> err.txt
[ $? -eq 2 ] || fail "missing file: want exit 2"
"$MUTUAL" sim --rounds 0 --config bad1.yaml > out.txt 2> err.txt
[ $? -eq 2 ] || fail "--rounds 0: want exit 2"
"$MUTUAL" sim > out.txt 2> err.txt
[ $? -eq 2 ] || fail "no --config: want exit 2"

cat > syn.yaml <<'Y'
seed: 4
model:
  synthetic_dim: 2000
data:
  orgs: 6
dropout:
  script:
    - {org: org-2, round: 2, stage: share}
coordinator:
  federation:
    rounds: 1
  cohort:
    min_orgs: 3
    wait_s: 0
  secure_agg:
    clip: 10
    weight_max: 10
Y
"$MUTUAL" sim --config syn.yaml --rounds 3 --out par --metrics par.jsonl -q > par.txt ||
    fail "parallel run"
"$MUTUAL" sim --config syn.yaml --rounds 3 --out seq --sequential -q > seq.txt ||
    fail "sequential run"
cmp par/global.f32 seq/global.f32 || fail "parallel and sequential bits differ"
[ "$(wc -l < par.jsonl)" -eq 3 ] || fail "want 3 metrics lines, got $(wc -l < par.jsonl)"
grep -q '"round":2,"kind":"train","outcome":"completed"' par.jsonl || fail "metrics: $(cat par.jsonl)"
grep -q '"orgs_completed":5' par.jsonl || fail "the dropout in round 2 is not in the metrics"
grep -q '3 rounds (3 completed, 0 aborted)' par.txt || fail "table: $(cat par.txt)"
"$MUTUAL" sim --config syn.yaml --rounds 3 --seed 5 --out other -q > /dev/null || fail "seed 5"
cmp -s par/global.f32 other/global.f32 && fail "--seed did not change the result"

# the commented examples run; the model one exports a PEFT folder
"$MUTUAL" sim --config "$SRC/configs/sim-synthetic.yaml" --rounds 1 -q > ex.txt 2> err.txt ||
    fail "configs/sim-synthetic.yaml: $(cat err.txt)"
"$MUTUAL" sim --config "$SRC/configs/sim.yaml" --out ex_adapter --rounds 1 -q > ex.txt 2> err.txt ||
    fail "configs/sim.yaml: $(cat err.txt)"
[ -s ex_adapter/adapter_config.json ] && [ -s ex_adapter/adapter_model.safetensors ] ||
    fail "no PEFT folder written"
grep -q '"r": 2' ex_adapter/adapter_config.json || fail "adapter_config.json: $(cat ex_adapter/adapter_config.json)"
# --checkpointing (the orgs' memory, not the federation's): the engines say so, and the
# adapter is the same bits
"$MUTUAL" sim --config "$SRC/configs/sim.yaml" --out ex_ckpt --rounds 1 --checkpointing -v \
    > ex.txt 2> err.txt || fail "--checkpointing: $(cat err.txt)"
grep -q 'activation checkpointing on' err.txt || fail "--checkpointing not reported: $(cat err.txt)"
cmp ex_adapter/global.f32 ex_ckpt/global.f32 || fail "--checkpointing changed the adapter bits"
# --bf16 (the orgs' base in bf16): the engines say so and which kernel, the adapter moves by
# bf16 rounding (other bits; closeness is sim_run's test_bf16_same_bits), the same bits with
# --checkpointing too
"$MUTUAL" sim --config "$SRC/configs/sim.yaml" --out ex_bf16 --rounds 1 --bf16 -v \
    > ex.txt 2> err.txt || fail "--bf16: $(cat err.txt)"
grep -q 'bf16 base (.*kernel' err.txt || fail "--bf16 not reported: $(cat err.txt)"
cmp -s ex_adapter/global.f32 ex_bf16/global.f32 && fail "--bf16 left the adapter's fp32 bits"
"$MUTUAL" sim --config "$SRC/configs/sim.yaml" --out ex_bf16c --rounds 1 --bf16 --checkpointing \
    > ex.txt 2> err.txt || fail "--bf16 --checkpointing: $(cat err.txt)"
cmp ex_bf16/global.f32 ex_bf16c/global.f32 || fail "--checkpointing changed the bf16 adapter bits"
# an org with too little data for the sequence length: a clean failure (exit 1, no leak)
cat > small.yaml <<Y
model: {base: $SRC/tests/train/ref/gpt2, rank: 2}
data: {file: $SRC/tests/train/ref/gpt2_data.h5, orgs: 8, eval_fraction: 0}
coordinator:
  federation: {rounds: 1}
  train: {seq: 30}
Y
"$MUTUAL" sim --config small.yaml > out.txt 2> err.txt
rc=$?
[ $rc -eq 1 ] || fail "too little data: exit $rc, want 1 ($(cat err.txt))"
grep -q 'too few for train.seq 30' err.txt || fail "too little data: $(cat err.txt)"
# an injected coordinator restart and a replayed task (the host layer's path): exit 0, the
# summary names both, the same global bits as without them; a restart without checkpoints is
# a config error
fault_config() { # fault_config CHECKPOINT_DIR FAULT_LINES
    cat <<Y
seed: 2
checkpoint: true
model: {synthetic_dim: 50}
data: {orgs: 4}
$2
coordinator:
  federation: {rounds: 3, checkpoint_dir: $1}
  cohort: {min_orgs: 3, wait_s: 0}
  secure_agg: {clip: 10, weight_max: 10}
Y
}
fault_config ck_plain "" > plain.yaml
fault_config ck_fault "restart: {round: 2, stage: masked}
replay: {script: [{org: 1, round: 1, stage: share}]}" > fault.yaml
"$MUTUAL" sim --config plain.yaml --out plain -q > out.txt 2> err.txt || fail "plain: $(cat err.txt)"
"$MUTUAL" sim --config fault.yaml --out fault -q > out.txt 2> err.txt || fail "faults: $(cat err.txt)"
grep -q '1 coordinator restart(s), 1 replayed task(s)' out.txt || fail "faults summary: $(cat out.txt)"
cmp -s plain/global.f32 fault/global.f32 || fail "a restart and a replay changed the adapter"
# --charter: the injected restart is in the audit log as serve logs a real one (a restart entry
# from the checkpoint's round, the new instance; the interrupted round logged once, after it),
# the log verifies, and the adapter is still the plain run's
mkdir gov || fail "mkdir gov"
fpr=$(printf '%02X:' $(seq 1 31))
for n in coordinator org-1 org-2 org-3 org-4; do
    "$MUTUAL" -q certs identity --key "gov/$n.key" > "gov/$n.pk" || fail "identity $n"
done
{
    echo "federation: sim-coop"
    printf 'coordinator:\n  key: %s\n  address: "127.0.0.1:7443"\nmembers:\n' "$(cat gov/coordinator.pk)"
    for i in 1 2 3 4; do
        printf '  - name: org-%s\n    signing_key: %s\n    tls_fingerprint: "%s0%s"\n' "$i" \
            "$(cat gov/org-$i.pk)" "$fpr" "$i"
    done
    printf 'rules: {admit: majority, change_config: majority, release: majority, change_coordinator: majority}\n'
    printf 'privacy: {min_cohort: 2}\ntraining: {config: ../fault.yaml}\n'
} > gov/charter.yaml
"$MUTUAL" -q charter init --in gov/charter.yaml --out gov/v1.charter > /dev/null || fail "charter init"
for n in org-1 org-2 org-3 org-4; do
    "$MUTUAL" -q charter sign --key "gov/$n.key" gov/v1.charter > /dev/null || fail "sign $n"
done
"$MUTUAL" -q charter verify --chain gov/chain --add gov/v1.charter > /dev/null || fail "chain"
rm -rf ck_fault
"$MUTUAL" sim --config fault.yaml --out gfault -q --charter gov/chain \
    --coordinator-key gov/coordinator.key --audit-dir gov/audit --org-keys gov > out.txt 2> err.txt ||
    fail "faults with --charter: $(cat err.txt)"
cmp -s plain/global.f32 gfault/global.f32 || fail "--charter: the restart changed the adapter"
"$MUTUAL" audit verify --log gov/audit/audit.log --charter gov/chain > out.txt 2>&1 ||
    fail "audit verify after a restart: $(cat out.txt)"
"$MUTUAL" audit show --log gov/audit/audit.log --json > show.txt || fail "audit show"
kinds=$(sed -n 's/.*"kind":"\([a-z]*\)".*"round":\([0-9]*\).*/\1 \2/p' show.txt | tr '\n' ' ')
[ "$kinds" = "round 1 restart 1 round 2 round 3 release 3 " ] ||
    fail "--charter: the log's rounds, restarts and releases are '$kinds'"
grep -q '"kind":"restart","hash":"[0-9a-f]*","prev":"[0-9a-f]*","round":1,"instance":1}' show.txt ||
    fail "--charter: no restart entry from round 1, instance 1: $(cat show.txt)"
sed 's/^checkpoint: true/checkpoint: false/' fault.yaml > nock.yaml
"$MUTUAL" sim --config nock.yaml > out.txt 2> err.txt
rc=$?
[ $rc -eq 2 ] || fail "restart without checkpoint: exit $rc, want 2"
grep -q "nock.yaml:5:10: 'restart' needs 'checkpoint: true'" err.txt ||
    fail "restart without checkpoint: $(cat err.txt)"
echo "sim_cli: ok"
