#!/bin/sh
# mutual sim --seeds: one JSON summary whose per-seed numbers are those of a single run with
# that seed (bytes summed over its --metrics lines, rounds completed), spread over seeds that
# drop different orgs; bad lists are usage errors. mutual plot / sim --plot: a PNG from the
# metrics lines; a file that is not metrics is exit 1 naming FILE:LINE, a bad --out exit 2.
set -u
MUTUAL=$1
PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf sim_seeds && mkdir sim_seeds && cd sim_seeds || exit 1
cat > s.yaml <<'Y'
seed: 1
model: {synthetic_dim: 300}
data: {orgs: 6}
dropout: {masked: 0.25}
coordinator:
  federation: {rounds: 3}
  cohort: {min_orgs: 3, wait_s: 0}
  secure_agg: {clip: 10, weight_max: 10}
Y
"$MUTUAL" sim --config s.yaml --seeds 1,2,3 -q > sum.json 2> err.txt || fail "--seeds: $(cat err.txt)"
for s in 1 2 3; do
    "$MUTUAL" sim --config s.yaml --seed $s --metrics m$s.jsonl -q > t$s.txt || fail "seed $s"
done
"$PY" - <<'PYEOF' || exit 1
import json, sys
j = json.load(open("sum.json"))
fails = []
def check(c, what):
    if not c:
        fails.append(what)
check(j["seeds"] == [1, 2, 3], f"seeds {j['seeds']}")
check(len(j["runs"]) == 3, "want 3 runs")
for run in j["runs"]:
    lines = [json.loads(l) for l in open(f"m{run['seed']}.jsonl")]
    bi, bo = sum(l["bytes_in"] for l in lines), sum(l["bytes_out"] for l in lines)
    check(run["bytes_in"] == bi and run["bytes_out"] == bo and run["bytes"] == bi + bo,
          f"seed {run['seed']}: bytes {run['bytes_in']},{run['bytes_out']} vs metrics {bi},{bo}")
    check(run["completed"] == sum(l["outcome"] == "completed" for l in lines),
          f"seed {run['seed']}: completed")
b = j["summary"]["bytes"]
vals = [r["bytes"] for r in j["runs"]]
check(b["n"] == 3 and b["min"] == min(vals) and b["max"] == max(vals), f"bytes summary {b}")
check(abs(b["mean"] - sum(vals) / 3) < 1e-6 * b["mean"], "bytes mean")
check(b["std"] > 0, "seeds dropping different orgs gave the same bytes")
check(j["summary"]["final_train_loss"]["n"] == 0, "synthetic runs have no loss")
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PYEOF
"$MUTUAL" sim --config s.yaml --seeds 1,1 -q > /dev/null 2>&1; [ $? -eq 2 ] || fail "--seeds 1,1: want 2"
"$MUTUAL" sim --config s.yaml --seeds 1,x -q > /dev/null 2>&1; [ $? -eq 2 ] || fail "--seeds 1,x: want 2"
"$MUTUAL" sim --config s.yaml --seeds 1,2 --seed 3 -q > /dev/null 2>&1; [ $? -eq 2 ] || fail "--seeds with --seed"
"$MUTUAL" sim --config s.yaml --seeds 1,2 --metrics x -q > /dev/null 2>&1; [ $? -eq 2 ] || fail "--seeds with --metrics"
"$MUTUAL" sim --config s.yaml --plot p.png -q > /dev/null 2>&1; [ $? -eq 2 ] || fail "--plot without --metrics"

if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
    echo "note: python3-matplotlib missing, plot not checked"
    echo "sim_seeds: ok"
    exit 0
fi
png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }
"$MUTUAL" plot m1.jsonl --out p1.png 2> err.txt || fail "plot: $(cat err.txt)"
png p1.png || fail "plot wrote no PNG"
"$MUTUAL" sim --config s.yaml --metrics m.jsonl --org-metrics o.jsonl --plot p2.png -q \
    > t.txt 2> err.txt || fail "sim --plot: $(cat err.txt)"
png p2.png || fail "sim --plot wrote no PNG"
grep -q '^plot: p2.png' t.txt || fail "sim --plot: $(cat t.txt)"
printf '{"round":1}\n' > bad.jsonl
"$MUTUAL" plot bad.jsonl --out b.png 2> err.txt; [ $? -eq 1 ] || fail "bad metrics: want exit 1"
grep -q 'bad.jsonl:1: not a round metrics line' err.txt || fail "bad metrics: $(cat err.txt)"
[ ! -e b.png ] || fail "a PNG for a bad metrics file"
"$MUTUAL" plot missing.jsonl --out b.png 2> err.txt; [ $? -eq 1 ] || fail "missing file: want 1"
"$MUTUAL" plot m1.jsonl --out b.jpg 2> err.txt; [ $? -eq 2 ] || fail "--out b.jpg: want 2"
"$MUTUAL" plot --out b.png 2> err.txt; [ $? -eq 2 ] || fail "no metrics file: want 2"
MUTUAL_PYTHON=/nonexistent/python3 "$MUTUAL" plot m1.jsonl --out b.png 2> err.txt
[ $? -eq 1 ] || fail "no interpreter: want exit 1"
grep -q 'cannot run /nonexistent/python3' err.txt || fail "no interpreter: $(cat err.txt)"
echo "sim_seeds: ok"
