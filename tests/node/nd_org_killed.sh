#!/usr/bin/env bash
# One org killed with SIGKILL during round 2, right before it sends its masked input (it raises
# SIGKILL itself: mutual join --die-at 2:3, so the moment is the same on every run), and
# started again at once with the same identity and data: round 2 completes with the other two
# (secure aggregation removes the dead org's masks); the restarted org joins again under its
# old id, waits out round 2 without hammering the coordinator (it cannot answer a round it
# did not train in), and takes part in rounds 3 and 4 with everyone.
# usage: nd_org_killed.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_org_killed
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 4 --kill-org 2 --restart-org \
  --timeout 250
grep -q "'org-3' joined federation 'loopback' as org 1 (round 2)" "$work/org-3.log" ||
  { echo "FAIL: org-3 did not rejoin under its old id during round 2"; cat "$work/org-3.log"; exit 1; }
/usr/bin/python3 - "$work/coordinator-1.jsonl" <<'PY'
import json, sys
rounds = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {r["round"]: r for r in rounds}
r2 = by[2]
assert r2["outcome"] == "completed", r2
assert r2["orgs_selected"] == 3 and r2["orgs_completed"] == 2 and r2["orgs_dropped"] == 1, r2
# the restarted org pulled during round 2 but backed off: a few KB, not a flood
got = sum(r2["per_org"].get("org-3", [0, 0]))
assert got < 60000, ("org-3 traffic in round 2", got)
for k in (3, 4):
    assert by[k]["outcome"] == "completed" and by[k]["orgs_completed"] == 3, by[k]
print("ok: round 2 completed with 2 of 3 after org-3 was killed (org-3 moved %d bytes while"
      " waiting it out); rounds 3 and 4 with all 3 after its restart" % got)
PY
