#!/usr/bin/env bash
# The members' charter enforced by real processes on loopback (issue 11): `mutual serve
# --charter` and `mutual join --charter`.
#   founding   a charter signed by 3 orgs with `mutual charter` (2 signatures refused)
#   admission  org-4 proposed with 1 of 3 signatures: the chain refuses it and serve refuses
#              org-4's join; the coordinator is SIGKILLed in round 2 (--crash-at 2:1); with 2
#              signatures org-4 is admitted, serve resumes the checkpoint and the audit log
#              (charter version 2, a restart entry) and round 2 runs with it
#   audit      `mutual audit verify` passes on that real log and fails, naming the entry, on an
#              edited, a dropped, a re-signed entry and a release without its quorum; every
#              org's countersigned head checks against the log, and serve kept each org's
#   config     a config change signed by 1 of 4: the chain refuses it, serve refuses to run
#              it, and a serve that skips its own check (--test-cheat config, Debug builds) is
#              refused by every org
#   cohort     a serve that registers an org not on the roster (--test-cheat admit) puts its
#              key in the cohort: every member org refuses the round
#   fork       a coordinator that starts over from its log as it was before round 1 (a log
#              that verifies on its own): the orgs that countersigned round 1 stop at join,
#              naming the equivocation; one whose head is further says entries were removed
# usage: nd_governance.sh MUTUAL SCRIPT ND_GOV_TAMPER
set -u
MUTUAL=$1 SCRIPT=$2 TAMPER=$3
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_gov_lib.sh"
gov_setup nd_governance 4 2

# A round needs 3 orgs, at most 4: the charter names this config (its hash), so it is fixed.
sed -i 's/min_orgs: 4/min_orgs: 3/' coordinator.yaml
sed -e 's/rounds: 2/rounds: 5/' -e "s#$work/ckpt#$work/ckpt-b#" coordinator.yaml >coordinator-b.yaml
"$MUTUAL" -q certs identity --key keys/coord.key >keys/coord.pk || exit 1
fpr() { openssl x509 -noout -fingerprint -sha256 -in "fed/$1.crt" | cut -d= -f2; }
charter() { # charter FILE CONFIG MEMBERS...
  local f=$1 cfg=$2 n=$(($# - 2))
  shift 2
  {
    echo "federation: loopback-coop"
    printf 'coordinator:\n  key: %s\n  address: "127.0.0.1:%s"\n' "$(cat keys/coord.pk)" \
      "$(cat port.planned)"
    echo "members:"
    for m in "$@"; do
      printf '  - name: %s\n    signing_key: %s\n    tls_fingerprint: "%s"\n' "$m" "$(pk "$m")" \
        "$(fpr "$m")"
    done
    printf 'rules:\n  admit: 2-of-%s\n  change_config: majority\n  release: 2-of-%s\n' "$n" "$n"
    printf '  change_coordinator: majority\n'
    printf 'privacy:\n  min_cohort: 2\n'
    printf 'training:\n  config: %s\n' "$cfg"
  } >"$f"
}

serve() { # serve PHASE CONFIG ARGS...: in the background; $srv
  local name=$1 cfg=$2
  shift 2
  rm -f port
  "$MUTUAL" serve --config "$cfg" --port-file port --linger 20 --coordinator-key keys/coord.key \
    "$@" >"$name.serve.jsonl" 2>"$name.serve.log" &
  srv=$!
  pids+=($srv)
  for _ in $(seq 300); do [ -s port ] && return 0; kill -0 $srv 2>/dev/null || break; sleep 0.1; done
  die "$name: the coordinator did not start"
}
join() { # join PHASE ORG ARGS...: in the background; ${org_pid[ORG]}
  local name=$1 o=$2
  shift 2
  "$MUTUAL" join --config "$o.yaml" "$@" >/dev/null 2>"$name.$o.log" &
  org_pid[$o]=$!
  pids+=($!)
}

# ---- founding ---------------------------------------------------------------------------------
phase=found
charter v1.yaml coordinator.yaml org-1 org-2 org-3
"$MUTUAL" -q charter init --in v1.yaml --out v1.charter || die "charter init"
sign org-1 v1.charter
sign org-2 v1.charter
check found_2_of_3 1 "genesis needs all 3 founding members' signatures, has 2" \
  -- "$MUTUAL" charter verify --chain chain --add v1.charter
sign org-3 v1.charter
check found_3_of_3 0 "versions 1..1" -- "$MUTUAL" charter verify --chain chain --add v1.charter
cp chain chain-v1

# ---- admission refused with 1 of 3 signatures ---------------------------------------------------
phase=p1
charter v2.yaml coordinator.yaml org-1 org-2 org-3 org-4
"$MUTUAL" -q charter propose --chain chain --in v2.yaml --out v2.charter >/dev/null || die "propose v2"
sign org-1 v2.charter
check admit_1_of_3 1 "admit needs 2 signatures of version 1's voting members, has 1" \
  -- "$MUTUAL" charter verify --chain chain --add v2.charter
serve p1 coordinator.yaml --charter chain --crash-at 2:1
join p1 org-4 # not on the roster of the chain serve holds
for i in 1 2 3; do join p1 org-$i --charter chain; done
wait "${org_pid[org-4]}"
check org4_refused 0 "join refused: .*'org-4' is not on the roster of charter version 1" -- cat p1.org-4.log
wait_for 200 p1.serve.jsonl '"round":1,"kind":"train","outcome":"completed"' || die "round 1"
wait "$srv" 2>/dev/null
check crash_in_round_2 0 "killing myself in round 2" -- cat p1.serve.log
for i in 1 2 3; do kill -TERM "${org_pid[org-$i]}" 2>/dev/null; done
for i in 1 2 3; do wait "${org_pid[org-$i]}" 2>/dev/null; done
check p1_witnessed 0 "countersigned its head" -- cat p1.org-1.log
check p1_not_released 0 "round 1 not exported .* release rule needs 2 member signatures" -- cat p1.serve.log
check p1_no_export 1 "" -- test -e adapters/latest
mkdir -p heads
for i in 1 2 3; do cp "keys/org-$i.ed25519.head" "heads/p1-org-$i"; done

# ---- admitted with 2 of 3; the coordinator resumes its log ----------------------------------------
phase=p2
sign org-2 v2.charter
check admit_2_of_3 0 "versions 1..2" -- "$MUTUAL" charter verify --chain chain --add v2.charter
serve p2 coordinator.yaml --charter chain --dump-dir dump
for i in 4 1 2 3; do join p2 org-$i --charter chain --release; done
wait "$srv" 2>/dev/null
check resumed 0 "resumed from .* after round 1" -- cat p2.serve.log
check round_2 0 '"round":2,"kind":"train","outcome":"completed"' -- cat p2.serve.jsonl
check org4_admitted 0 "joined federation" -- cat p2.org-4.log
check org4_witnessed 0 "countersigned its head" -- cat p2.org-4.log
check released_1 0 "release of round 1: the charter's release quorum is met" -- cat p2.serve.log
first=$(grep -m1 "signed the release of round 1" p2.serve.log)
check first_release_line 0 "signed the release of round 1" -- echo "$first"
check one_signature_releases_nothing 1 "" -- grep -q "quorum" <<<"$first"
check released_2 0 "release of round 2: the charter's release quorum is met" -- cat p2.serve.log
check exported_1 0 "" -- test -f adapters/round-000001/adapter_model.safetensors
check exported_2 0 "" -- test -f adapters/round-000002/adapter_model.safetensors
check latest_2 0 "round-000002" -- readlink adapters/latest
check org_signed 0 "signed the release of round 2" -- cat p2.org-1.log p2.org-2.log p2.org-3.log p2.org-4.log
for i in 1 2 3 4; do wait "${org_pid[org-$i]}" 2>/dev/null; done

# ---- the audit log of that run ---------------------------------------------------------------------
phase=audit
log=ckpt/audit.log
check verify_real 0 "" -- "$MUTUAL" audit verify --log $log --charter chain
check show_restart 0 "restart" -- "$MUTUAL" audit show --log $log
check show_admission 0 "admission.*org-4" -- "$MUTUAL" audit show --log $log
check show_charter_2 0 "charter.*2" -- "$MUTUAL" audit show --log $log
check show_release_1 0 "release .*round 1, [2-4] member signatures" -- "$MUTUAL" audit show --log $log
check show_release_2 0 "release .*round 2, [2-4] member signatures" -- "$MUTUAL" audit show --log $log
for i in 1 2 3 4; do
  check "head_org_$i" 0 "" -- "$MUTUAL" audit check --log $log --witness "keys/org-$i.ed25519.head"
  check "serve_kept_org_$i" 0 "" -- "$MUTUAL" audit check --log $log --witness "ckpt/audit.org-$i.witness"
done
mkdir -p tampered
out=$("$TAMPER" $log keys/coord.key keys/org-1.ed25519 keys/org-2.ed25519 tampered) || die "tamper"
round=${out#round=}
round=${round%% *}
release=${out##*release=}
check edited 1 "entry $round \(round\): not signed by the coordinator" \
  -- "$MUTUAL" audit verify --log tampered/edited.log --charter chain
check dropped 1 "entry $round \([a-z]+\): says it is entry $((round + 1))" \
  -- "$MUTUAL" audit verify --log tampered/dropped.log --charter chain
check resigned 1 "entry $round \(round\): not signed by the coordinator key of charter version" \
  -- "$MUTUAL" audit verify --log tampered/resigned.log --charter chain
check noquorum 1 "entry $release \(release\): .*has 1 valid member signatures, the charter's release quorum is 2" \
  -- "$MUTUAL" audit verify --log tampered/noquorum.log --charter chain
check released 0 "" -- "$MUTUAL" audit verify --log tampered/released.log --charter chain
# the round's global hash is what DownloadAdapter streams: SHA-256 of the global as float32 LE
g2=$("$MUTUAL" audit show --log $log --json | grep '"round":2,' | sed 's/.*"global_hash":"\([0-9a-f]*\)".*/\1/')
check global_hash 0 "^${g2:-no-hash-in-the-log} " -- sha256sum dump/global-000002.f32

# ---- a config change without its quorum ------------------------------------------------------------
phase=p3
charter v3.yaml coordinator-b.yaml org-1 org-2 org-3 org-4
"$MUTUAL" -q charter propose --chain chain --in v3.yaml --out v3.charter >/dev/null || die "propose v3"
sign org-1 v3.charter
check config_1_of_4 1 "change_config needs 3 signatures of version 2's voting members, has 1" \
  -- "$MUTUAL" charter verify --chain chain --add v3.charter
check serve_refuses_config 1 "charter version 2 allows only training config" \
  -- "$MUTUAL" serve --config coordinator-b.yaml --charter chain --coordinator-key keys/coord.key
serve p3 coordinator-b.yaml --charter chain --test-cheat config
for i in 1 2 3 4; do join p3 org-$i --charter chain --witness-head heads/p3-org-$i; done
for i in 1 2 3 4; do
  wait "${org_pid[org-$i]}"
  st=$?
  check "org_${i}_refuses_config" 0 "runs training config .*, charter version 2 allows only" -- cat "p3.org-$i.log"
  check "org_${i}_stopped" 1 "" -- test "$st" = 0
done
check p3_no_round 1 "" -- grep -q '"round":1' p3.serve.jsonl
kill -9 "$srv" 2>/dev/null
wait "$srv" 2>/dev/null

# ---- a key the roster does not hold, in the cohort -------------------------------------------------
phase=p4
mv ckpt ckpt-real
# A new run: the orgs' once-per-round records of the real run would refuse its rounds first.
for i in 1 2 3 4; do mv "keys/org-$i.ed25519.rounds" "keys/org-$i.ed25519.rounds.real"; done
serve p4 coordinator.yaml --charter chain-v1 --test-cheat admit
join p4 org-4 # not on version 1's roster; this serve registers it anyway
wait_for 60 p4.org-4.log "joined federation" || die "org-4 did not join the cheating coordinator"
for i in 1 2 3; do join p4 org-$i --charter chain-v1 --witness-head heads/p4-org-$i; done
for i in 1 2 3; do
  wait_for 120 "p4.org-$i.log" "has a key not in this org's pinned members" ||
    die "org-$i did not refuse the unlisted key"
done
check p4_refused 0 "" -- true
check p4_no_round 1 "" -- grep -q '"outcome":"completed"' p4.serve.jsonl
for p in "$srv" "${org_pid[@]}"; do kill -9 "$p" 2>/dev/null; done
wait 2>/dev/null
rm -rf ckpt

# ---- a forked log ------------------------------------------------------------------------------------
phase=p5
# The coordinator starts over from the log as it was before round 1 (correctly signed, and
# it verifies on its own): it adopts charter version 2 as entry 4, where the orgs' history
# holds round 1. Orgs 1-3 hold their heads of phase 1 (entry 4): a fork. Org-4 joins first
# and holds its head of phase 2, further than this log goes: entries removed.
mkdir -p ckpt
cp tampered/edited.log ckpt/audit.log
check serve_refuses_bad_log 1 "audit.log does not verify against chain: entry [0-9]+ \(round\)" \
  -- "$MUTUAL" serve --config coordinator.yaml --charter chain --coordinator-key keys/coord.key
cp tampered/prefix.log ckpt/audit.log
serve p5 coordinator.yaml --charter chain
join p5 org-4 --charter chain
wait "${org_pid[org-4]}"
st=$?
check org_4_sees_shorter 0 "does not extend the head this org countersigned .*entries removed" -- cat p5.org-4.log
check org_4_stops 1 "" -- test "$st" = 0
for i in 1 2 3; do join p5 org-$i --charter chain --witness-head "heads/p1-org-$i"; done
for i in 1 2 3; do
  wait "${org_pid[org-$i]}"
  st=$?
  check "org_${i}_sees_fork" 0 "does not extend the head this org countersigned .*equivocation: entry 4" -- cat "p5.org-$i.log"
  check "org_${i}_stops" 1 "" -- test "$st" = 0
done
check p5_log_verifies 0 "" -- "$MUTUAL" audit verify --log ckpt/audit.log --charter chain
kill -9 "$srv" 2>/dev/null
check_done
