#!/usr/bin/env bash
# TLS certificate fingerprints of a governed federation, with real processes on loopback
# (issue 11): the charter's roster binds each member's certificate and names the
# coordinator's; both sides compare them with the certificate the TLS peer presented.
#   impostor   org-1 with a second certificate for its name, valid under the federation CA but
#              not the roster's: serve refuses its join (the reason to the caller and in the
#              log) and logs no admission; its Status is refused too
#   revoke     the members replace org-1's fingerprint (charter version 2) while serve runs:
#              serve adopts the new chain (a charter entry), org-1's old certificate is
#              refused from then on, its new one is accepted and round 3 runs with it
#   restart    serve restarted under version 2: the old certificate is still refused, the new
#              one accepted; the audit log verifies across all of it. An org still holding
#              version 1 refuses the log that adopted version 2; a version 3 that names
#              another coordinator key stops the running serve
#   pin        a coordinator presenting another CA-valid certificate than the charter's
#              coordinator.tls_fingerprint: every org refuses it before sending any request
#   calls      after round 1, org-1's real id and signing key with that second certificate (and
#              with org-2's): PullTask, PushStage, UploadMasked (a 192 MiB stream, refused on
#              its first chunk, never buffered) and DownloadAdapter are each refused
#              PERMISSION_DENIED, logged, and the audit log, checkpoint and round are unchanged
# usage: nd_certs.sh MUTUAL SCRIPT BAD_CLIENT
set -u
MUTUAL=$1 SCRIPT=$2 BAD_CLIENT=$3
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_gov_lib.sh"
gov_setup nd_certs 3 4

# A second CA-valid certificate for org-1's name, and one for the coordinator's host: what
# anyone who can get the CA to sign (or who kept an old certificate) would present.
mkdir -p alt && chmod 700 alt && cp fed/ca.crt fed/ca.key alt/
"$MUTUAL" -q certs issue --dir alt --org org-1 >/dev/null || exit 1
"$MUTUAL" -q certs issue --dir alt --org coordinator --server 127.0.0.1 >/dev/null || exit 1
sed "s#$work/fed/org-1\.#$work/alt/org-1.#g" org-1.yaml >org-1-new.yaml
grep -q "alt/org-1.crt" org-1-new.yaml || exit 1

"$MUTUAL" -q certs identity --key keys/coord.key >keys/coord.pk || exit 1
fpr() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
charter() { # charter FILE ORG-1-CERT
  {
    echo "federation: cert-coop"
    printf 'coordinator:\n  key: %s\n  address: "127.0.0.1:%s"\n  tls_fingerprint: "%s"\n' \
      "$(cat keys/coord.pk)" "$(cat port.planned)" "$(fpr fed/coordinator.crt)"
    echo "members:"
    for m in org-1 org-2 org-3; do
      c=fed/$m.crt
      [ "$m" = org-1 ] && c=$2
      printf '  - name: %s\n    signing_key: %s\n    tls_fingerprint: "%s"\n' "$m" "$(pk "$m")" \
        "$(fpr "$c")"
    done
    printf 'rules:\n  admit: 2-of-3\n  change_config: majority\n  release: 2-of-3\n'
    printf '  change_coordinator: majority\nprivacy:\n  min_cohort: 2\n'
    printf 'training:\n  config: coordinator.yaml\n'
  } >"$1"
}
join() { # join PHASE LOGNAME CONFIG ARGS...: in the background; ${org_pid[LOGNAME]}
  local name=$1 o=$2 cfg=$3
  shift 3
  "$MUTUAL" join --config "$cfg" --charter chain "$@" >/dev/null 2>"$name.$o.log" &
  org_pid[$o]=$!
  pids+=($!)
}
status_as() { # status_as CERTDIR: Status with org-1's certificate from CERTDIR
  "$MUTUAL" status --coordinator "127.0.0.1:$(cat port)" --ca fed/ca.crt --cert "$1/org-1.crt" \
    --key "$1/org-1.key" --timeout 10
}

# ---- founding: the roster holds fed/org-1.crt, the coordinator's certificate is pinned ----------
phase=found
charter v1.yaml fed/org-1.crt
"$MUTUAL" -q charter init --in v1.yaml --out v1.charter || die "charter init"
for i in 1 2 3; do sign "org-$i" v1.charter; done
check found 0 "versions 1..1" -- "$MUTUAL" charter verify --chain chain --add v1.charter
cp chain chain-v1
hexfpr() { fpr "$1" | tr -d : | tr 'A-F' 'a-f' | cut -c1-16; }
check show_coordinator_tls 0 "coordinator .* tls $(hexfpr fed/coordinator.crt)\.\.\." \
  -- "$MUTUAL" charter show v1.charter

# ---- impostor: a CA-valid certificate that is not the roster's ----------------------------------
phase=p1
gov_serve p1
join p1 org-1-new org-1-new.yaml
reap "${org_pid[org-1-new]}" 60
st=$?
check impostor_refused 0 "join refused: PERMISSION_DENIED: the TLS certificate presented for 'org-1' \(SHA-256 $(fpr alt/org-1.crt | cut -c1-23)\.\.\.\) is not the one charter version 1 names for it" \
  -- cat p1.org-1-new.log
check impostor_stops 1 "" -- test "$st" = 0
check impostor_logged 0 "join from 'org-1' refused: the TLS certificate presented for 'org-1'" -- cat p1.serve.log
check impostor_status_refused 1 "PERMISSION_DENIED.*not the one charter version 1 names" -- status_as alt
check impostor_not_admitted 1 "" -- grep -q "registered org 'org-1'" p1.serve.log
check impostor_no_admission 1 "" -- bash -c "'$MUTUAL' audit show --log ckpt/audit.log | grep -q admission"
check member_status 0 "" -- status_as fed
# the members with their roster certificates: round 1, then each stops before its round 2
# report (round 2 aborts: attempted, not logged; round 3 is the next)
for i in 1 2 3; do join p1 "org-$i" "org-$i.yaml" --term-at 2:100; done
wait_for 200 p1.serve.jsonl '"round":1,"kind":"train","outcome":"completed"' || die "round 1"
wait_for 60 p1.serve.jsonl '"round":2,' || die "round 2 did not end"
for i in 1 2 3; do reap "${org_pid[org-$i]}" 60; done
check p1_admitted 0 "admission .*org-1" -- "$MUTUAL" audit show --log ckpt/audit.log

# ---- calls: org-1's real id and signing key, another CA-valid certificate -----------------------
id1=$(sed -n "s/.*registered org 'org-1' as id \([0-9]*\).*/\1/p" p1.serve.log)
[ -n "$id1" ] || die "org-1's id"
state() { # what a refused call must not change: the log, the checkpoint, the round, the events
  sha256sum ckpt/audit.log ckpt/checkpoint.h5
  wc -l <p1.serve.jsonl
  status_as fed | grep -E "^(round|stage|orgs)"
}
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$srv/status"; } # serve's peak RSS, kB
state >state.before
hwm0=$(hwm)
bad_as() { "$BAD_CLIENT" --as "127.0.0.1:$(cat port)" fed/ca.crt "$1.crt" "$1.key" "$id1" \
  keys/org-1.ed25519 2 192 >"$2" 2>&1; }
check calls_wrong_cert 0 "" -- bad_as alt/org-1 calls.alt.out
hwm1=$(hwm)
cat calls.alt.out
for call in PullTask PushStage UploadMasked DownloadAdapter; do
  check "${call}_wrong_cert" 0 "^ok   $call.*PERMISSION_DENIED" -- cat calls.alt.out
done
check upload_says_why 0 "^ok   UploadMasked .*not the one charter version 1 names" -- cat calls.alt.out
for what in pull push upload download; do
  check "${what}_refused_logged" 0 "$what from 'org-1' refused: the TLS certificate presented" \
    -- cat p1.serve.log
done
# the 192 MiB stream is refused on its first chunk: the coordinator never buffers it
check upload_refused_early 0 "UploadMasked from org-1 refused on its first chunk" -- cat p1.serve.log
echo "serve's peak RSS: $hwm0 kB before the calls, $hwm1 kB after"
check upload_not_buffered 0 "" -- test "${hwm0:-x}" -gt 0 -a $((hwm1 - hwm0)) -lt 65536
check calls_other_name 0 "" -- bad_as fed/org-2 calls.org-2.out
for call in PullTask PushStage UploadMasked DownloadAdapter; do
  check "${call}_other_name" 0 "^ok   $call.*PERMISSION_DENIED.*does not name org" -- cat calls.org-2.out
done
state >state.after
check calls_changed_nothing 0 "" -- cmp state.before state.after

# ---- revoke: charter version 2 replaces org-1's certificate; the running serve adopts it --------
phase=p2
charter v2.yaml alt/org-1.crt
"$MUTUAL" -q charter propose --chain chain --in v2.yaml --out v2.charter >/dev/null || die "propose v2"
check v2_diff 0 "~ change  org-1: new TLS certificate" -- "$MUTUAL" charter show v2.charter --chain chain
sign org-2 v2.charter
sign org-3 v2.charter
check v2_added 0 "versions 1..2" -- "$MUTUAL" charter verify --chain chain --add v2.charter
wait_for 20 p1.serve.log "adopted charter version 2" || die "serve did not adopt version 2"
check adopted 0 "" -- true
check old_chain_refuses_log 1 "does not verify against our charter chain" \
  -- "$MUTUAL" join --config org-2.yaml --charter chain-v1
join p2 org-1-old org-1.yaml
reap "${org_pid[org-1-old]}" 60
st=$?
check old_cert_refused 0 "join refused: PERMISSION_DENIED: the TLS certificate presented for 'org-1' \(SHA-256 $(fpr fed/org-1.crt | cut -c1-23)\.\.\.\) is not the one charter version 2 names" \
  -- cat p2.org-1-old.log
check old_cert_stops 1 "" -- test "$st" = 0
check old_status_refused 1 "PERMISSION_DENIED.*not the one charter version 2 names" -- status_as fed
check new_status 0 "" -- status_as alt
join p2 org-1 org-1-new.yaml
join p2 org-2 org-2.yaml
join p2 org-3 org-3.yaml
wait_for 200 p1.serve.jsonl '"round":3,"kind":"train","outcome":"completed"' || die "round 3"
check new_cert_round_3 0 "round 3: the audit log verifies against our charter" -- cat p2.org-1.log
check round_3_cohort 0 '"cohort":\[[^]]*"org-1"' \
  -- bash -c "'$MUTUAL' audit show --log ckpt/audit.log --json | grep '\"round\":3,'"
kill -9 "$srv" "${org_pid[org-1]}" "${org_pid[org-2]}" "${org_pid[org-3]}" 2>/dev/null
wait 2>/dev/null

# ---- restart: serve starts again under version 2 -------------------------------------------------
phase=p3
gov_serve p3
join p3 org-1-old org-1.yaml
reap "${org_pid[org-1-old]}" 60
check restart_old_refused 0 "is not the one charter version 2 names for it" -- cat p3.org-1-old.log
join p3 org-1 org-1-new.yaml
wait_for 60 p3.org-1.log "joined federation" || die "org-1's new certificate after the restart"
check restart_new_accepted 0 "" -- true
# the members replace the coordinator's key (version 3): the running serve stops
cp chain chain-v2
"$MUTUAL" -q certs identity --key keys/coord2.key >keys/coord2.pk || die "coord2 key"
sed "s/$(cat keys/coord.pk)/$(cat keys/coord2.pk)/" v2.yaml >v3.yaml
"$MUTUAL" -q charter propose --chain chain --in v3.yaml --out v3.charter >/dev/null || die "propose v3"
sign org-2 v3.charter
sign org-3 v3.charter
check v3_added 0 "versions 1..3" -- "$MUTUAL" charter verify --chain chain --add v3.charter
reap "$srv" 30
st=$?
check replaced_serve_stops 0 "" -- test "$st" = 1
check replaced_serve_says 0 "stopping: the members' charter changed: .*charter version 3 names another coordinator key: this coordinator is replaced" \
  -- cat p3.serve.log
kill -9 "${org_pid[org-1]}" 2>/dev/null
wait 2>/dev/null
cp chain-v2 chain
check log_verifies 0 "entries valid" -- "$MUTUAL" audit verify --log ckpt/audit.log --charter chain
check log_adopted_2 0 "charter .*2" -- "$MUTUAL" audit show --log ckpt/audit.log

# ---- pin: a coordinator with another CA-valid certificate (same config file, so same hash) ------
phase=p4
cp fed/coordinator.crt coordinator.crt.real
cp fed/coordinator.key coordinator.key.real
cp alt/coordinator.crt alt/coordinator.key fed/
gov_serve p4
for i in 2 3; do join p4 "org-$i" "org-$i.yaml"; done
for i in 2 3; do
  reap "${org_pid[org-$i]}" 60
  st=$?
  check "org_${i}_refuses_coordinator" 0 "refusing the coordinator: .*presented a certificate with SHA-256 fingerprint $(fpr alt/coordinator.crt | cut -c1-23)\.\.\., not the pinned $(fpr coordinator.crt.real | cut -c1-23)" \
    -- cat "p4.org-$i.log"
  check "org_${i}_stops" 1 "" -- test "$st" = 0
done
check p4_nothing_received 1 "" -- grep -qE "join|joined" p4.serve.log
kill -9 "$srv" 2>/dev/null
wait 2>/dev/null
cp coordinator.crt.real fed/coordinator.crt
cp coordinator.key.real fed/coordinator.key
check_done
