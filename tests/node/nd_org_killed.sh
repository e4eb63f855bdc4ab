#!/usr/bin/env bash
# One org killed with SIGKILL during round 2, right before it sends its masked input (it raises
# SIGKILL itself: mutual join --die-at 2:3, so the moment is the same on every run):
# round 2 completes with the other two, and so does round 3.
# usage: nd_org_killed.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_org_killed
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 3 --kill-org 2 --timeout 200
/usr/bin/python3 - "$work/coordinator-1.jsonl" <<'PY'
import json, sys
rounds = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {r["round"]: r for r in rounds}
r2 = by[2]
assert r2["outcome"] == "completed", r2
assert r2["orgs_selected"] == 3 and r2["orgs_completed"] == 2 and r2["orgs_dropped"] == 1, r2
assert "org-3" not in by[3]["per_org"], by[3]
assert by[3]["outcome"] == "completed" and by[3]["orgs_completed"] == 2, by[3]
print("ok: round 2 completed with 2 of 3 orgs after org-3 was killed; round 3 too")
PY
