#!/bin/sh
# mutual sim --org-metrics: one line per cohort member per round (as many as the round's
# orgs_selected, "completed" as many as orgs_completed), injected dropouts and a straggler
# named with the stage they reached, the coordinator's stage they did not answer (the round
# line's "dropped", the same orgs and stages) and the fault's cause; with cohort.eval_fraction every evaluation round measures the
# same orgs, while training cohorts (and eval cohorts without eval_fraction) are drawn anew.
set -u
MUTUAL=$1
PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf sim_orgs && mkdir sim_orgs && cd sim_orgs || exit 1
config() { # config EVAL_FRACTION
    cat <<Y
seed: 4
model: {synthetic_dim: 500}
data: {orgs: 8}
dropout:
  script:
    - {org: org-2, round: 3, stage: masked}
    - {org: org-8, round: 5, stage: unmask}
leave:
  script:
    - {org: org-3, round: 7, stage: advertise}
stragglers:
  script:
    - {org: org-6, round: 1, stage: share}
coordinator:
  federation: {rounds: 4, eval_every: 1}
  cohort: {min_orgs: 3, fraction: 0.5, eval_fraction: $1, wait_s: 0}
  secure_agg: {clip: 10, weight_max: 10}
Y
}
config 0.5 > fixed.yaml
config 0 > sampled.yaml
"$MUTUAL" sim --config fixed.yaml --metrics fixed.jsonl --org-metrics fixed.orgs.jsonl -q \
    > fixed.txt 2> fixed.err || fail "sim: $(cat fixed.err)"
"$MUTUAL" sim --config sampled.yaml --metrics sampled.jsonl --org-metrics sampled.orgs.jsonl \
    -q > sampled.txt 2> sampled.err || fail "sim: $(cat sampled.err)"
"$MUTUAL" sim --config fixed.yaml --org-metrics /nonexistent/dir/o.jsonl -q > /dev/null 2> err.txt
[ $? -eq 1 ] || fail "unwritable --org-metrics: want exit 1"
grep -q '/nonexistent/dir/o.jsonl' err.txt || fail "unwritable --org-metrics: $(cat err.txt)"
"$PY" - <<'PYEOF' || exit 1
import json, sys
def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]
fails = []
def check(c, what):
    if not c:
        fails.append(what)
def cohorts(name):
    rounds, orgs = load(name + ".jsonl"), load(name + ".orgs.jsonl")
    by = {}
    for o in orgs:
        check(set(o) == {"org", "round", "kind", "outcome", "stage", "dropped_at", "cause",
                         "loss", "tokens"}, f"{name}: keys {sorted(o)}")
        by.setdefault(o["round"], []).append(o)
    for r in rounds:
        got = by.get(r["round"], [])
        check(len(got) == r["orgs_selected"],
              f"{name} round {r['round']}: {len(got)} org lines, {r['orgs_selected']} selected")
        check(all(o["kind"] == r["kind"] for o in got), f"{name} round {r['round']}: kind")
        done = [o for o in got if o["outcome"] == "completed"]
        check(len(done) == r["orgs_completed"],
              f"{name} round {r['round']}: {len(done)} completed lines, {r['orgs_completed']}")
        mine = {(o["org"], o["dropped_at"]) for o in got if o["dropped_at"]}
        theirs = {(d["org"], d["stage"]) for d in r["dropped"] or []}
        check(mine == theirs, f"{name} round {r['round']}: dropped {mine}, round line {theirs}")
    return {k: {o["org"]: o for o in v} for k, v in by.items()}, rounds
fixed, rounds = cohorts("fixed")
sampled, _ = cohorts("sampled")
check(len(rounds) == 8, f"{len(rounds)} rounds, want 8 (4 train + 4 eval)")
d = fixed.get(3, {}).get("org-2")
check(d is not None and d["outcome"] == "dropped" and d["stage"] == "share"
      and d["dropped_at"] == "masked" and d["cause"] == "dropout", f"dropout line: {d}")
s = fixed.get(1, {}).get("org-6")
check(s is not None and s["outcome"] == "dropped" and s["dropped_at"] == "share"
      and s["cause"] == "straggler", f"straggler line: {s}")
u = fixed.get(5, {}).get("org-8")  # its masked input is in the sum: completed, yet dropped
check(u is not None and u["outcome"] == "completed" and u["stage"] == "consistency"
      and u["dropped_at"] == "unmask" and u["cause"] == "dropout", f"unmask dropout line: {u}")
l = fixed.get(7, {}).get("org-3")
check(l is not None and l["outcome"] == "dropped" and l["stage"] == "train"
      and l["dropped_at"] == "advertise" and l["cause"] == "leave", f"leave line: {l}")
for k, v in fixed.items():
    for o in v.values():
        if o["outcome"] == "completed" and o["cause"] is None:
            # an evaluation round ends in a secure aggregation too (its loss travels masked)
            check(o["stage"] == "unmask" and o["dropped_at"] is None, f"completed line {o}")
def sets(by, kind):
    return [frozenset(v) for k, v in sorted(by.items()) if next(iter(v.values()))["kind"] == kind]
ev = sets(fixed, "eval")
check(len(ev) == 4 and len(set(ev)) == 1, f"eval_fraction 0.5: eval cohorts {[sorted(x) for x in ev]}")
check(len(set(sets(fixed, "train"))) > 1, "training cohorts are all the same")
es = sets(sampled, "eval")
check(len(set(es)) > 1, f"eval_fraction 0: eval cohorts all the same {[sorted(x) for x in es]}")
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PYEOF
echo "sim_orgs: ok"
