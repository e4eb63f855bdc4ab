#!/usr/bin/env bash
# A member leaves a governed federation by its own signed notice, with real processes on
# loopback (issue 11): `mutual charter leave` writes it, `mutual join --leave` sends it.
#   forged   a notice naming org-1 but signed by org-2's key: serve refuses it, logs nothing
#   leave    org-1 (alpha) leaves after round 1: serve logs its signed notice, refuses its
#            calls from then on, and the next round runs with the rest; `mutual audit verify`
#            passes on the log, which holds the leave entry with org-1's signature
#   cheat    a serve that keeps org-1 after its notice (--test-cheat leave, Debug builds) puts
#            it in a cohort: every other org refuses that round
#   crash    org-1's notice arrives while round 1 runs (held for the round, kept in
#            ckpt/leave.pending) and serve is SIGKILLed before the round ends: the restarted
#            serve logs the leave entry (once), refuses org-1's join, and the log verifies
# Round 2 of each run is attempted and aborted (the orgs of round 1 stop before their round 2
# report), so the round after the notice is round 3.
# usage: nd_gov_leave.sh MUTUAL SCRIPT
set -u
MUTUAL=$1 SCRIPT=$2
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_gov_lib.sh"
gov_setup nd_gov_leave 4 3

sed -i 's/min_orgs: 4/min_orgs: 3/' coordinator.yaml # a round needs 3 of the 4 orgs
"$MUTUAL" -q certs identity --key keys/coord.key >keys/coord.pk || exit 1
fpr() { openssl x509 -noout -fingerprint -sha256 -in "fed/$1.crt" | cut -d= -f2; }
{
  echo "federation: leave-coop"
  printf 'coordinator:\n  key: %s\n  address: "127.0.0.1:%s"\n' "$(cat keys/coord.pk)" \
    "$(cat port.planned)"
  echo "members:"
  for m in org-1 org-2 org-3 org-4; do
    printf '  - name: %s\n    signing_key: %s\n    tls_fingerprint: "%s"\n' "$m" "$(pk "$m")" \
      "$(fpr "$m")"
  done
  printf 'rules:\n  admit: 3-of-4\n  change_config: majority\n  release: 2-of-4\n'
  printf '  change_coordinator: majority\nprivacy:\n  min_cohort: 2\n'
  printf 'training:\n  config: coordinator.yaml\n'
} >v1.yaml
"$MUTUAL" -q charter init --in v1.yaml --out v1.charter || exit 1
for i in 1 2 3 4; do "$MUTUAL" -q charter sign --key "keys/org-$i.ed25519" v1.charter >/dev/null || exit 1; done
"$MUTUAL" -q charter verify --chain chain --add v1.charter >/dev/null || exit 1

join() { # join PHASE LOGNAME ORG ARGS...: in the background; ${org_pid[LOGNAME]}
  local name=$1 l=$2 o=$3
  shift 3
  "$MUTUAL" join --config "$o.yaml" --charter chain "$@" >/dev/null 2>"$name.$l.log" &
  org_pid[$l]=$!
  pids+=($!)
}
round_1() { # round_1 PHASE [heads]: orgs 1-3 run round 1 and stop before their round 2 report
  local ph=$1 i
  for i in 1 2 3; do
    if [ "${2:-}" = heads ]; then
      join "$ph" "org-$i" "org-$i" --term-at 2:100 --witness-head "heads/org-$i"
    else
      join "$ph" "org-$i" "org-$i" --term-at 2:100
    fi
  done
  wait_for 200 "$ph.serve.jsonl" '"round":1,"kind":"train","outcome":"completed"' || die "round 1"
  wait_for 60 "$ph.serve.jsonl" '"round":2,' || die "round 2 did not end"
  for i in 1 2 3; do reap "${org_pid[org-$i]}" 60; done
}
audit_show() { "$MUTUAL" audit show --log ckpt/audit.log "$@"; }

# ---- the notices: org-1's own, and one naming org-1 signed by org-2 -----------------------------
phase=notice
check leave_notice 0 "wrote org-1.notice: the leave notice of 'org-1' from federation leave-coop" \
  -- "$MUTUAL" charter leave --chain chain --key keys/org-1.ed25519 --out org-1.notice
check leave_not_member 1 "not the signing key of a member" \
  -- "$MUTUAL" charter leave --chain chain --key keys/coord.key --out coord.notice
"$MUTUAL" -q charter leave --chain chain --key keys/org-2.ed25519 --out org-2.notice >/dev/null || exit 1
/usr/bin/python3 -c 'import sys; b = open("org-2.notice", "rb").read(); assert b.count(b"org-2") == 1
open("forged.notice", "wb").write(b.replace(b"org-2", b"org-1"))' || exit 1

# ---- an honest coordinator: org-1 leaves after round 1 --------------------------------------------
phase=p1
gov_serve p1
round_1 p1
join p1 forged org-1 --leave forged.notice
reap "${org_pid[forged]}" 60
st=$?
check forged_refused 0 "refused the leave notice forged.notice: UNAUTHENTICATED: the leave notice of 'org-1' is not signed by its roster key" \
  -- cat p1.forged.log
check forged_exit 1 "" -- test "$st" = 0
check forged_logged 0 "a leave notice from 'org-1' refused: .*not signed by its roster key" -- cat p1.serve.log
check forged_no_entry 1 "" -- bash -c "'$MUTUAL' audit show --log ckpt/audit.log | grep -q leave"
join p1 leave org-1 --leave org-1.notice
reap "${org_pid[leave]}" 60
st=$?
check leave_sent 0 "" -- test "$st" = 0
check leave_accepted 0 "the coordinator accepted the leave notice of 'org-1'" -- cat p1.leave.log
check leave_logged 0 "'org-1' leaves the federation by its own notice \(logged\)" -- cat p1.serve.log
check leave_twice 1 "FAILED_PRECONDITION|left the federation" \
  -- "$MUTUAL" join --config org-1.yaml --charter chain --leave org-1.notice
join p1 org-1-again org-1
reap "${org_pid[org-1-again]}" 60
check left_join_refused 0 "join refused: PERMISSION_DENIED: 'org-1' left the federation by its own notice" \
  -- cat p1.org-1-again.log
for i in 2 3 4; do join p1 "org-$i-r3" "org-$i"; done
wait_for 200 p1.serve.jsonl '"round":3,"kind":"train","outcome":"completed"' || die "round 3"
for i in 2 3 4; do reap "${org_pid[org-$i-r3]}" 60; done
kill -9 "$srv" 2>/dev/null
wait 2>/dev/null
check show_leave 0 "leave .*org-1" -- audit_show
check round_3_without_org_1 0 '"cohort":\[("org-[234]",){2}"org-[234]"\]' \
  -- bash -c "'$MUTUAL' audit show --log ckpt/audit.log --json | grep '\"round\":3,'"
check leave_signed 0 '"kind":"leave".*"member":"org-1","member_signature":"[0-9a-f]{128}"' -- audit_show --json
check verify 0 "entries valid" -- "$MUTUAL" audit verify --log ckpt/audit.log --charter chain
for i in 2 3 4; do
  check "head_org_$i" 0 "" -- "$MUTUAL" audit check --log ckpt/audit.log --witness "keys/org-$i.ed25519.head"
done

# ---- a coordinator that keeps org-1 after its notice ---------------------------------------------
phase=p2
mv ckpt ckpt-p1
for i in 1 2 3 4; do mv "keys/org-$i.ed25519.rounds" "keys/org-$i.ed25519.rounds.p1" 2>/dev/null; done
mkdir -p heads
gov_serve p2 --test-cheat leave
round_1 p2 heads
join p2 leave org-1 --leave org-1.notice --witness-head heads/org-1
reap "${org_pid[leave]}" 60
check cheat_leave_logged 0 "'org-1' leaves the federation by its own notice" -- cat p2.serve.log
join p2 org-1-again org-1 --witness-head heads/org-1
for i in 2 3 4; do join p2 "org-$i-r3" "org-$i" --witness-head "heads/org-$i"; done
for i in 2 3 4; do
  wait_for 200 "p2.org-$i-r3.log" "round 3: the cohort holds 'org-1', who left the federation by its own notice" ||
    die "org-$i did not refuse the cohort with org-1"
  check "org_${i}_refuses_cohort" 0 "" -- true
done
check p2_no_round_3 1 "" -- grep -q '"round":3,"kind":"train","outcome":"completed"' p2.serve.jsonl
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
wait 2>/dev/null

# ---- a notice accepted mid-round survives the coordinator's SIGKILL --------------------------------
# org-4 kills itself before its round 1 share (--die-at 1:2): the round waits in that stage until
# share_s (20 s); org-1's notice arrives then, is held for the round, and serve kills itself as
# stage 3 opens (--crash-at 1:3), before the round's entry and the notice's are written.
phase=p3
mv ckpt ckpt-p2
for i in 1 2 3 4; do mv "keys/org-$i.ed25519.rounds" "keys/org-$i.ed25519.rounds.p2" 2>/dev/null; done
mkdir -p heads3
gov_serve p3 --crash-at 1:3
join p3 org-4 org-4 --witness-head heads3/org-4 --die-at 1:2
for i in 1 2 3; do join p3 "org-$i" "org-$i" --witness-head "heads3/org-$i"; done
reap "${org_pid[org-4]}" 200
check p3_org_4_died 0 "" -- test "$?" = 137
join p3 leave org-1 --leave org-1.notice --witness-head heads3/org-1.leave
reap "${org_pid[leave]}" 60
st=$?
check held_leave_sent 0 "" -- test "$st" = 0
check held_leave_held 0 "'org-1' leaves the federation by its own notice \(logged once round 1 ends\)" \
  -- cat p3.serve.log
check held_leave_kept 0 "" -- test -s ckpt/leave.pending
reap "$srv" 60
st=$?
check p3_serve_killed 0 "" -- test "$st" = 137
check p3_killed_in_round_1 0 "test mode: killing myself in round 1, stage masked" -- cat p3.serve.log
check held_not_logged_yet 1 "" -- bash -c "'$MUTUAL' audit show --log ckpt/audit.log | grep -q leave"
for i in 1 2 3; do kill -9 "${org_pid[org-$i]}" 2>/dev/null; done
wait 2>/dev/null
phase=p4
gov_serve p4
check restart_logs_leave 0 "leave .*org-1" -- audit_show
check restart_leave_signed 0 '"kind":"leave".*"member":"org-1","member_signature":"[0-9a-f]{128}"' \
  -- audit_show --json
check restart_pending_gone 1 "" -- test -e ckpt/leave.pending
join p4 org-1-again org-1 --witness-head heads3/org-1
reap "${org_pid[org-1-again]}" 60
check restart_join_refused 0 "join refused: PERMISSION_DENIED: 'org-1' left the federation by its own notice" \
  -- cat p4.org-1-again.log
check restart_verify 0 "entries valid" -- "$MUTUAL" audit verify --log ckpt/audit.log --charter chain
kill -9 "$srv" 2>/dev/null
wait 2>/dev/null
gov_serve p4b # a second restart logs nothing again
check leave_logged_once 0 "^1$" -- bash -c "'$MUTUAL' audit show --log ckpt/audit.log | grep -c 'leave .*org-1'"
check_done
