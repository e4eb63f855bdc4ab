#!/usr/bin/env bash
# Who may read Status: members and operators, not every certificate of the CA.
#   - without an allowlist: registered orgs and operator certificates (mutual certs issue
#     --operator) are answered; a valid certificate of the CA that never joined, and one
#     merely named "operator" without the operator mark, get PERMISSION_DENIED (exit 1);
#   - with an allowlist: its orgs (even before they join) and operators are answered, others
#     (even a registered org no longer on the list) are refused.
# An operator certificate cannot join as an org.
# And `status --json` gives the last round's mean loss and the federation's total rounds.
# usage: nd_status_access.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1 SCRIPT=$2
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_lib.sh"
CHECK_TIMEOUT=30
nd_setup nd_status_access 2
"$MUTUAL" -q certs issue --dir fed --org fake-op >/dev/null || exit 1 # a plain certificate
addr=127.0.0.1:$(cat port.planned)
sed '/^orgs:/,$d' coordinator.yaml >open.yaml # no allowlist: any org of the CA may register
grep -q "^orgs:" open.yaml && exit 1
status() { # status CERT_NAME [--json]
  local who=$1
  shift
  "$MUTUAL" -q status --coordinator "$addr" --ca fed/ca.crt --cert "fed/$who.crt" \
    --key "fed/$who.key" --timeout 10 "$@"
}

nd_serve open.yaml
# org-1 dies in round 2 before its report: round 2 of 2 then waits for its deadline (60 s),
# and the coordinator stays up to be asked.
nd_round_1_then_hold

check open_operator 0 '"total_rounds":2,' -- status operator --json
check open_member 0 'last round   1: 2 orgs completed' -- status org-1
check open_stranger 1 "PERMISSION_DENIED: certificate 'stranger' is neither a member" -- status stranger
check open_fake_operator 1 "PERMISSION_DENIED: certificate 'fake-op' is neither" -- status fake-op
check refusal_logged 0 "status refused: certificate 'stranger'" -- cat serve.log
# an operator reads; it does not take part (even without an allowlist)
sed "s#name: org-1,#name: operator,#; s#fed/org-1\.#fed/operator.#g; s#keys/org-1#keys/operator#" \
  org-1.yaml >operator.yaml
check operator_cannot_join 1 "PERMISSION_DENIED: an operator certificate cannot join as an org" -- \
  "$MUTUAL" join --config operator.yaml --give-up 5
# the mean loss of the last round, as the round's own JSON line has it
loss=$(grep -o '"round":1,"kind":"train","outcome":"completed","loss":[0-9.e+-]*' serve.jsonl |
  sed 's/.*"loss"://')
json=$(status operator --json)
check json_loss 0 '"last_round":\{"loss":[0-9]' -- echo "$json"
check json_loss_value 0 "" -- /usr/bin/python3 -c '
import json, sys
j = json.loads(sys.argv[1]); m = j["last_round"]
assert j["total_rounds"] == 2, j
assert abs(m["loss"] - m["loss_sum"] / m["tokens"]) < 1e-9, m
assert abs(m["loss"] - float(sys.argv[2])) < 1e-4 * abs(m["loss"]), (m, sys.argv[2])' "$json" "$loss"
kill -TERM "$srv"
wait "$srv"

# With an allowlist of org-1 and org-3: org-3 may ask though it never joined, org-2 may not
# though it is registered (in the checkpoint), and strangers may not.
"$MUTUAL" -q certs issue --dir fed --org org-3 >/dev/null || exit 1
sed 's/- name: org-2/- name: org-3/' coordinator.yaml >listed.yaml
nd_serve listed.yaml --accept-config-change
check list_operator 0 '"total_rounds":2' -- status operator --json
check list_member 0 'federation   loopback' -- status org-3
check list_registered_unlisted 1 "PERMISSION_DENIED: certificate 'org-2'" -- status org-2
check list_stranger 1 "PERMISSION_DENIED" -- status stranger
check_done
