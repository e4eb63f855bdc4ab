#!/usr/bin/env bash
# The coordinator killed with SIGKILL during round 2 (it raises SIGKILL itself once round 2's
# masked-input stage is open: mutual serve --crash-at 2:3, so the moment is the same on every
# run) and started again: it resumes from its checkpoint (after round 1, with the orgs
# registered), the orgs reconnect on their own, see that it restarted and run round 2 again
# with it, and the federation completes its 3 training
# rounds.
# usage: nd_coordinator_restart.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_coordinator_restart
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 3 --kill-coordinator 2 --timeout 250
grep -q "resumed from .* after round 1 (3 orgs registered)" "$work/coordinator-2.log" ||
  { echo "FAIL: the second coordinator did not resume after round 1"; cat "$work/coordinator-2.log"; exit 1; }
grep -q "test mode: killing myself in round 2, stage masked" "$work/coordinator-1.log" ||
  { echo "FAIL: the first coordinator was not killed in round 2's masked stage"; exit 1; }
grep -q '"round":1,"kind":"train","outcome":"completed"' "$work/coordinator-1.jsonl" ||
  { echo "FAIL: round 1 did not complete before the kill"; exit 1; }
if grep -q '"round":2' "$work/coordinator-1.jsonl"; then
  echo "FAIL: round 2 finished before the coordinator was killed: the test did not test"; exit 1
fi
grep -q "reconnecting\|unreachable" "$work/org-1.log" ||
  { echo "FAIL: org-1 never noticed the coordinator was gone"; exit 1; }
grep -q "the coordinator restarted; starting the round in flight over" "$work/org-1.log" ||
  { echo "FAIL: org-1 did not see that the coordinator restarted"; exit 1; }
# the round in flight is run again from the checkpointed global, not lost
head -1 "$work/coordinator-2.jsonl" | grep -q '"round":2,"kind":"train","outcome":"completed"' ||
  { echo "FAIL: the restarted coordinator did not redo round 2"; head -1 "$work/coordinator-2.jsonl"; exit 1; }
echo "ok: resumed after round 1, round 2 run again and completed; the orgs reconnected"
