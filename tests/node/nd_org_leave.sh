#!/usr/bin/env bash
# One org stops cleanly in round 2, as on SIGTERM (mutual join --term-at 2:100 raises SIGTERM
# on itself right before it would report its training, so the moment is the same on every
# run): it does not report, tells the coordinator it leaves (a signed LEAVE push) and exits 0.
# Round 2 then completes with the other two at once, far inside its 60 s training deadline,
# and its metrics line names the org and the stage it left at; rounds 3 and 4 go on without it.
# Then the same in secure aggregation (below).
# usage: nd_org_leave.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_org_leave
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 4 --term-org 2 --timeout 250
/usr/bin/python3 - "$work/coordinator-1.jsonl" <<'PY'
import json, sys
rounds = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {r["round"]: r for r in rounds}
# org-3 joins first, so it is in every cohort; round 1 may start before org-1 or org-2 is
# connected (cohort.min_orgs is 2), so only its outcome is fixed
r1, r2 = by[1], by[2]
assert r1["outcome"] == "completed" and r1["dropped"] == [], r1
assert r2["outcome"] == "completed", r2
n = r2["orgs_selected"]
assert n >= 2 and r2["orgs_completed"] == n - 1 and r2["orgs_dropped"] == 1, r2
assert r2["dropped"] == [{"org": "org-3", "stage": "train"}], r2["dropped"]
# without the leave the round waits for deadlines.train_s (60 s) before going on
assert r2["duration_s"] < 20, ("round 2 waited", r2["duration_s"])
for k in (3, 4):
    assert by[k]["outcome"] == "completed" and by[k]["orgs_selected"] == 2, by[k]
    assert by[k]["dropped"] == [], by[k]
print("ok: org-3 left round 2 at train; the round completed with %d of %d in %.2f s (training"
      " deadline 60 s); rounds 3 and 4 with the other two" % (n - 1, n, r2["duration_s"]))
PY
grep -q "told the coordinator that 'org-3' leaves" "$work/org-3.log" ||
  { echo "FAIL: org-3 did not say it leaves"; cat "$work/org-3.log"; exit 1; }
grep -q "round 2 done: .* orgs in the sum.*; dropped: org-3 at train" "$work/coordinator-1.log" ||
  { echo "FAIL: the coordinator's round 2 line does not name org-3"; cat "$work/coordinator-1.log"; exit 1; }

# Again, stopping during secure aggregation: SIGTERM right before its masked input (2:3). It
# still pushes that input (the call it was in), then leaves: the consistency stage closes as
# soon as the others have signed (its deadline is 20 s), its input is in the sum, and the
# line names it at consistency.
work2=$PWD/nd_org_leave_secagg
rm -rf "$work2"
"$SCRIPT" --mutual "$MUTUAL" --work "$work2" --orgs 3 --rounds 3 --term-org 2:3 --timeout 250
grep -q "told the coordinator that 'org-3' leaves" "$work2/org-3.log" ||
  { echo "FAIL: org-3 did not say it leaves"; cat "$work2/org-3.log"; exit 1; }
/usr/bin/python3 - "$work2/coordinator-1.jsonl" <<'PY'
import json, sys
by = {r["round"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{"))}
r2 = by[2]
n = r2["orgs_selected"]
assert r2["outcome"] == "completed" and n >= 2, r2
assert r2["orgs_completed"] == n and r2["orgs_dropped"] == 0, r2  # its masked input arrived
assert r2["dropped"] == [{"org": "org-3", "stage": "consistency"}], r2["dropped"]
assert r2["duration_s"] < 10, ("round 2 waited", r2["duration_s"])
assert by[3]["outcome"] == "completed" and by[3]["orgs_selected"] == 2, by[3]
print("ok: org-3 left round 2 at consistency after its masked input; %d of %d in the sum in"
      " %.2f s (consistency deadline 20 s)" % (n, n, r2["duration_s"]))
PY
