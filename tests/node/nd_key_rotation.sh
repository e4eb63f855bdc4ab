#!/usr/bin/env bash
# An org that lost its identity key gets back in through the operator, and its old key stays
# out: org-1 and org-2 run round 1 (the checkpoint pins org-1's key K1 to its id); org-1
# loses K1 and makes K2 (`mutual certs identity`); joining with K2 is refused ("registered
# with another key"); the operator pins K2 for org-1 in the orgs list and restarts the
# coordinator (--accept-config-change: the config changed); org-1 with K2 joins again under
# its old id, and whoever holds a copy of K1 is refused.
# usage: nd_key_rotation.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1 SCRIPT=$2
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_lib.sh"
CHECK_TIMEOUT=60
nd_setup nd_key_rotation 2
# Round 1 with both orgs; org-1 dies in round 2 before its report, so the coordinator is
# still running round 2 (of 2) when we restart it: nothing else joins meanwhile.
nd_serve coordinator.yaml
nd_round_1_then_hold
id1=$(grep -o "org 'org-1' joined as id [0-9]*" serve.log | head -1 | grep -o '[0-9]*$')
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
wait 2>/dev/null
pids=()

# org-1 loses its key; a copy of it (the "stolen" key) survives elsewhere.
cp keys/org-1.ed25519 stolen.ed25519
k1=$("$MUTUAL" certs identity --key stolen.ed25519)
rm keys/org-1.ed25519
k2=$("$MUTUAL" certs identity --key keys/org-1.ed25519)
check new_key_made 0 "" -- test -n "$k2" -a "$k2" != "$k1" -a "$(stat -c %a keys/org-1.ed25519)" = 600
check identity_stable 0 "^$k2\$" -- "$MUTUAL" certs identity --key keys/org-1.ed25519
sed "s#keys/org-1.ed25519#stolen.ed25519#" org-1.yaml >thief.yaml

nd_serve coordinator.yaml
check new_key_refused_before 1 "registered with another key" -- \
  "$MUTUAL" join --config org-1.yaml --give-up 20
kill -TERM "$srv" && wait "$srv"

# The operator pins K2 and restarts the coordinator.
sed "s/^  - name: org-1\$/  - name: org-1\n    public_key: $k2/" coordinator.yaml >rotated.yaml
grep -q "public_key: $k2" rotated.yaml || { echo "FAIL: could not pin"; exit 1; }
nd_serve rotated.yaml --accept-config-change
check rotation_logged 0 "org 'org-1' \(id $id1\): its registered identity key is replaced" -- cat serve.log
# org-1 with K2 joins under its old id (then waits for round 2; stop it once it joined).
"$MUTUAL" join --config org-1.yaml >/dev/null 2>org-1-new.log &
new=$!
pids+=($new)
for _ in $(seq 300); do grep -q "joined federation" org-1-new.log && break; sleep 0.1; done
check new_key_joins 0 "'org-1' joined federation 'loopback' as org $id1 " -- cat org-1-new.log
kill -TERM "$new"
check old_key_refused 1 "differs from its pinned key" -- "$MUTUAL" join --config thief.yaml --give-up 20
check_done
