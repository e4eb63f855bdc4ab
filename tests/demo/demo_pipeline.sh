#!/usr/bin/env bash
# demo_pipeline.sh MUTUAL OUT_DIR - runs scripts/demo shrunken and checks what it wrote:
# summary.json exactly {"orgs": {3 names: {base_loss, local_loss, federated_loss}},
# "pooled": {the same three}}, every value a finite number; the federated adapter as a PEFT
# folder; one org dropped out in one round of the sim; the plot, when matplotlib is there,
# with its base line the pooled base loss of summary.json; every round's bytes_out holds the
# adapter each completed org downloaded; the per-org lines add up to each round's loss; no
# stray "tail: cannot open" in the demo's output; the charter the three orgs signed, and the
# run's audit log verifying against it with their release of the final adapter.
set -euo pipefail
MUTUAL=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3

# Small enough for a sanitizer build: 2 rounds x 2 steps of 2 x 32 bytes, 3 evaluation
# batches per org, 16 kB of training text per org. Same code paths as the full demo.
export DEMO_ROUNDS=2 DEMO_STEPS=2 DEMO_BATCH=2 DEMO_SEQ=32 DEMO_TRAIN_BYTES=16384
export DEMO_HELDOUT_BYTES=224 # (224 - 32) / (2 * 32) = 3 batches
bash "$ROOT/scripts/demo" "$MUTUAL" "$OUT" >"$OUT.log" 2>&1 || {
  cat "$OUT.log"
  echo "FAIL: scripts/demo exited non-zero"
  exit 1
}
tail -n 12 "$OUT.log"
# The members' charter: founded by the three orgs, and the run's audit log verifies against
# it, with the orgs' release of the final adapter logged (checked here again, not only by the
# demo's own output).
grep -q "charter chain of demo-coop valid, versions 1..1" "$OUT.log" ||
  { echo "FAIL: the demo did not show the founded charter"; exit 1; }
grep -q "mutual audit verify: .*audit.log: [0-9]* entries valid" "$OUT.log" ||
  { echo "FAIL: the demo did not end with mutual audit verify passing"; exit 1; }
"$MUTUAL" audit verify --log "$OUT/governance/audit.log" --charter "$OUT/governance/chain" ||
  { echo "FAIL: the demo's audit log does not verify"; exit 1; }
"$MUTUAL" audit show --log "$OUT/governance/audit.log" | grep -q "release .*3 member signatures" ||
  { echo "FAIL: the demo's log has no release signed by the three orgs"; exit 1; }
if grep -q 'tail: cannot open' "$OUT.log"; then
  grep 'tail: cannot open' "$OUT.log"
  echo "FAIL: the demo printed a stray tail error"
  exit 1
fi

"$PY" - "$OUT" <<'PYEOF'
import json, math, os, sys
out = sys.argv[1]
fails = []
def check(cond, what):
    if not cond:
        fails.append(what)
with open(os.path.join(out, "summary.json")) as f:
    s = json.load(f)
keys = {"base_loss", "local_loss", "federated_loss"}
check(set(s) == {"orgs", "pooled"}, f"summary.json top-level keys {sorted(s)}")
orgs = s.get("orgs", {})
check(isinstance(orgs, dict) and len(orgs) >= 3, f"summary.json has {len(orgs)} orgs, want >= 3")
rows = list(orgs.items()) + [("pooled", s.get("pooled", {}))]
for name, row in rows:
    check(isinstance(row, dict) and set(row) == keys, f"{name}: keys {sorted(row)}")
    for k in keys:
        v = row.get(k)
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and 0 < v < 20, f"{name}.{k} = {v!r} is not a finite loss")
for f in ("federated-adapter/adapter_config.json", "federated-adapter/adapter_model.safetensors",
          "summary.md", "details.json", "sim.yaml"):
    check(os.path.isfile(os.path.join(out, f)), f"missing {f}")
with open(os.path.join(out, "federated-adapter", "adapter_config.json")) as f:
    ac = json.load(f)
check(ac.get("peft_type") == "LORA", f"adapter_config peft_type {ac.get('peft_type')!r}")
rounds = [json.loads(l) for l in open(os.path.join(out, "sim-metrics.jsonl")) if l.strip()]
train = [r for r in rounds if r["kind"] == "train"]
check(len(train) == 2, f"{len(train)} training rounds in sim-metrics.jsonl, want 2")
check(all(r["outcome"] == "completed" for r in rounds), "a sim round did not complete")
check(sum(r["orgs_dropped"] for r in train) == 1, "no org dropped out in the sim")
# traffic as serve counts it: each completed org downloaded the adapter blob (global.f32)
blob = os.path.getsize(os.path.join(out, "federated-adapter", "global.f32"))
for r in rounds:
    check(r["bytes_out"] >= r["orgs_completed"] * blob,
          f"round {r['round']}: bytes_out {r['bytes_out']} < {r['orgs_completed']} x {blob}")
# per-org lines: one per cohort member, and the completed orgs' losses make the round's
orgl = [json.loads(l) for l in open(os.path.join(out, "sim-org-metrics.jsonl")) if l.strip()]
for r in rounds:
    mine = [o for o in orgl if o["round"] == r["round"]]
    check(len(mine) == r["orgs_selected"], f"round {r['round']}: {len(mine)} org lines")
    done = [o for o in mine if o["outcome"] == "completed" and o["tokens"] > 0]
    tok = sum(o["tokens"] for o in done)
    pooled = sum(o["loss"] * o["tokens"] for o in done) / tok if tok else None
    check(pooled is not None and abs(pooled - r["loss"]) <= 1e-6 * abs(r["loss"]),
          f"round {r['round']}: per-org losses give {pooled}, the round {r['loss']}")
check(sum(o["outcome"] == "dropped" and o["cause"] == "dropout" for o in orgl) == 1,
      "the dropout is not in sim-org-metrics.jsonl")
tc = json.load(open(os.path.join(out, "details.json"))).get("torch_cross_check")
if tc:  # PyTorch's loss of the federated adapter against mutual eval's, same windows
    check(abs(tc["torch_loss"] - tc["mutual_loss"]) < 1e-4,
          f"torch {tc['torch_loss']} vs mutual {tc['mutual_loss']} on {tc['org']}")
else:
    print("note: no PyTorch cross-check (torch or h5py missing)")
try:
    import matplotlib  # noqa: F401
    check(os.path.getsize(os.path.join(out, "loss-per-round.png")) > 1000, "no plot")
    check(os.path.getsize(os.path.join(out, "rounds.png")) > 1000, "no rounds.png (mutual plot)")
    drawn = json.load(open(os.path.join(out, "details.json"))).get("plot", {}).get("base_loss")
    check(drawn == s["pooled"]["base_loss"],
          f"the plot's base line {drawn} is not the pooled base {s['pooled']['base_loss']}")
except ImportError:
    print("note: python3-matplotlib missing, plot not checked")
for f in fails:
    print("FAIL:", f)
print(f"demo_pipeline: {len(fails)} failed")
sys.exit(1 if fails else 0)
PYEOF
