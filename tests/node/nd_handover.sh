#!/usr/bin/env bash
# The members replace their coordinator (issue 11): three orgs, coordinator A runs 2 rounds;
# the members approve B (a charter change of coordinator key, address and config, signed by
# a majority); A is killed (SIGKILL as round 3 opens its secure aggregation); B starts from
# A's checkpoint and audit log (the bundle), the orgs follow the charter to B's address, and
# round 3 runs. The log verifies across the handover (A's entries under its key, B's from the
# charter entry that names it), and the final adapter is bit for bit the one a run without
# the handover gives (deterministic orgs). B needs no --accept-config-change: its config is
# the one charter version 2 names and the checkpoint's is version 1's, a change the members'
# quorum signed. Before that, B refuses a forged checkpoint (another run's state after round
# 2) next to A's log: its config is no charter version's and, overridden, its global is not
# the one the log names.
# The server optimizer is FedAdam, so the state B resumes holds more than the adapter (Adam's
# m and v): a bundle with one byte of it changed is refused (the round entry's state hash).
# usage: nd_handover.sh MUTUAL SCRIPT BUNDLE_TAMPER
set -u
MUTUAL=$1 SCRIPT=$2 TAMPER=$3
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
work=$PWD/nd_handover
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 3 --deterministic --strategy fedadam \
  --setup-only \
  >/dev/null || exit 1
cd "$work" || exit 1
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT
die() { echo "FAIL: $*"; for f in *.log; do echo "== $f"; tail -5 "$f"; done; exit 1; }
port_a=$(cat port.planned)
port_b=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s/127.0.0.1:$port_a/127.0.0.1:$port_b/" -e "s#$work/ckpt#$work/ckpt-b#" coordinator.yaml >coordinator-b.yaml
for k in a b; do "$MUTUAL" -q certs identity --key keys/coord-$k.key >keys/coord-$k.pk || exit 1; done
pk() { "$MUTUAL" -q certs identity --key "keys/$1.ed25519"; }
charter() { # charter FILE COORD PORT CONFIG
  {
    echo "federation: handover-coop"
    printf 'coordinator:\n  key: %s\n  address: "127.0.0.1:%s"\n' "$(cat keys/coord-$2.pk)" "$3"
    echo "members:"
    for m in org-1 org-2 org-3; do
      printf '  - name: %s\n    signing_key: %s\n    tls_fingerprint: "%s"\n' "$m" "$(pk $m)" \
        "$(openssl x509 -noout -fingerprint -sha256 -in "fed/$m.crt" | cut -d= -f2)"
    done
    printf 'rules:\n  admit: 2-of-3\n  change_config: majority\n  release: 2-of-3\n'
    printf '  change_coordinator: majority\nprivacy:\n  min_cohort: 2\ntraining:\n  config: %s\n' "$4"
  } >"$1"
}
sign() { "$MUTUAL" -q charter sign --key "keys/$1.ed25519" "$2" >/dev/null || die "sign $2"; }
serve() { # serve NAME CONFIG PORTFILE ARGS...
  local name=$1 cfg=$2 pf=$3
  shift 3
  rm -f "$pf"
  "$MUTUAL" serve --config "$cfg" --port-file "$pf" --linger 20 --dump-dir "dump-$name" "$@" \
    >"$name.serve.jsonl" 2>"$name.serve.log" &
  srv=$!
  pids+=($srv)
  for _ in $(seq 300); do [ -s "$pf" ] && return 0; kill -0 $srv 2>/dev/null || break; sleep 0.1; done
  die "$name: the coordinator did not start"
}
declare -A org_pid
join() { # join NAME ARGS...
  local name=$1
  shift
  for i in 1 2 3; do
    "$MUTUAL" join --config org-$i.yaml "$@" >/dev/null 2>"$name.org-$i.log" &
    org_pid[$i]=$!
    pids+=($!)
  done
}
mkdir -p dump-ref dump-forged dump-a dump-b

# ---- the reference: the same federation, no charter, no handover ------------------------------
serve ref coordinator.yaml port
join ref
wait "$srv"
check ref_3_rounds 0 '"round":3,"kind":"train","outcome":"completed"' -- cat ref.serve.jsonl
for i in 1 2 3; do wait "${org_pid[$i]}"; done
mv ckpt ckpt-ref
for i in 1 2 3; do rm -f "keys/org-$i.ed25519.rounds"; done # a new run: its own round records

# ---- a forged state: 2 rounds of the same federation at another learning rate -----------------
# (a departing coordinator's checkpoint after round 2 that is not the one its log records)
sed -e "s/lr: 0.01/lr: 0.02/" -e "s/rounds: 3/rounds: 2/" -e "s#$work/ckpt#$work/ckpt-forged#" \
  coordinator.yaml >coordinator-forged.yaml
serve forged coordinator-forged.yaml port
join forged
wait "$srv"
check forged_2_rounds 0 '"round":2,"kind":"train","outcome":"completed"' -- cat forged.serve.jsonl
for i in 1 2 3; do wait "${org_pid[$i]}"; done
check forged_differs 1 "" -- cmp -s dump-ref/global-000002.f32 dump-forged/global-000002.f32
rm -rf adapters # the governed runs export only what the members release
for i in 1 2 3; do rm -f "keys/org-$i.ed25519.rounds"; done

# ---- coordinator A, 2 rounds --------------------------------------------------------------------
charter v1.yaml a "$port_a" coordinator.yaml
"$MUTUAL" -q charter init --in v1.yaml --out v1.charter || die "init"
for m in org-1 org-2 org-3; do sign $m v1.charter; done
"$MUTUAL" -q charter verify --chain chain --add v1.charter >/dev/null || die "verify v1"
serve a coordinator.yaml port --charter chain --coordinator-key keys/coord-a.key --crash-at 3:2
join a --charter chain --release
wait "$srv"
check a_killed_in_round_3 0 "killing myself in round 3" -- cat a.serve.log
check a_2_rounds 0 '"round":2,"kind":"train","outcome":"completed"' -- cat a.serve.jsonl
for i in 1 2 3; do kill -TERM "${org_pid[$i]}" 2>/dev/null; done
for i in 1 2 3; do wait "${org_pid[$i]}" 2>/dev/null; done

# ---- the members approve B: key, address and config, by a majority -------------------------------
charter v2.yaml b "$port_b" coordinator-b.yaml
"$MUTUAL" -q charter propose --chain chain --in v2.yaml --out v2.charter >/dev/null || die "propose"
sign org-1 v2.charter
check b_1_of_3 1 "needs 2 signatures of version 1's voting members, has 1" \
  -- "$MUTUAL" charter verify --chain chain --add v2.charter
sign org-3 v2.charter
check b_approved 0 "versions 1..2" -- "$MUTUAL" charter verify --chain chain --add v2.charter
check a_refused_now 1 "is not the coordinator key that charter version 2 names" \
  -- "$MUTUAL" serve --config coordinator.yaml --charter chain --coordinator-key keys/coord-a.key

# ---- B refuses a checkpoint whose global is not the one A's log names for round 2 --------------
mkdir -p ckpt-b
cp ckpt-forged/checkpoint.h5 ckpt-b/
cp ckpt/audit.log ckpt-b/
check b_refuses_forged_config 1 "written under training config [0-9a-f]+\.\.\., which no earlier version of chain names" \
  -- "$MUTUAL" serve --config coordinator-b.yaml --charter chain --coordinator-key keys/coord-b.key
check b_refuses_forged 1 "round 2 entry names .*the checkpoint is not the state the log records" \
  -- "$MUTUAL" serve --config coordinator-b.yaml --charter chain --coordinator-key keys/coord-b.key \
  --accept-config-change
check forged_log_untouched 0 "" -- cmp ckpt/audit.log ckpt-b/audit.log
rm -rf ckpt-b

# ---- B starts from A's bundle: its checkpoint and audit log --------------------------------------
bundle=$(ls keys/org-*.ed25519.release-000002.bundle 2>/dev/null | head -1)
[ -n "$bundle" ] || die "no org holds the release bundle of round 2"
mkdir -p tampered # serve --resume-bundle makes ckpt-b
cp "$bundle" tampered.bundle
/usr/bin/python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//8]^=1; open(p,"wb").write(b)' tampered.bundle
check b_refuses_tampered 1 "does not verify: the bundle's checkpoint does not load" \
  -- "$MUTUAL" serve --config coordinator-b.yaml --charter chain \
  --coordinator-key keys/coord-b.key --resume-bundle tampered.bundle
"$TAMPER" "$bundle" keys/coord-a.key tampered || die "nd_bundle_tamper"
check b_refuses_optstate 1 "does not verify: the bundle's federation state \(optimizer state.*the state hash the audit log names for round 2" \
  -- "$MUTUAL" serve --config coordinator-b.yaml --charter chain \
  --coordinator-key keys/coord-b.key --resume-bundle tampered/optstate.bundle
check b_untouched 1 "" -- test -e ckpt-b/checkpoint.h5
# the same state as a checkpoint folder next to A's log: its global is the logged one, the
# rest of its state (Adam's m) is not
cp tampered/optstate.h5 ckpt-b/checkpoint.h5
cp ckpt/audit.log ckpt-b/
check b_refuses_optstate_folder 1 "the checkpoint's state after round 2 \(optimizer state.*names state [0-9a-f]+\.\.\.: the checkpoint is not the state the log records" \
  -- "$MUTUAL" serve --config coordinator-b.yaml --charter chain --coordinator-key keys/coord-b.key
check optstate_log_untouched 0 "" -- cmp ckpt/audit.log ckpt-b/audit.log
rm -rf ckpt-b

# ---- mutual release verify: the bundle offline, against the genesis alone or the chain --------
check rv_help 0 "GENESIS_OR_CHAIN" -- "$MUTUAL" release --help
check rv_usage 2 "takes --bundle FILE --charter" -- "$MUTUAL" release verify --bundle "$bundle"
check rv_good 0 "released by org-[123], org-[123] \(2 member signatures\)" \
  -- "$MUTUAL" release verify --bundle "$bundle" --charter v1.charter
check rv_good_json 0 '"ok":true,"bundle":"[^"]+","federation":"handover-coop","round":2,.*"adapter_sha256":"[0-9a-f]{64}","state_hash":"[0-9a-f]{64}","release_signers":\["org-[123]","org-[123]"\]' \
  -- "$MUTUAL" release verify --bundle "$bundle" --charter chain --json
check rv_adapter 1 "does not verify: the bundle's global adapter is not the one the audit log names for round 2" \
  -- "$MUTUAL" release verify --bundle tampered/adapter.bundle --charter v1.charter
check rv_optstate 1 "does not verify: the bundle's federation state \(optimizer state.*names for round 2" \
  -- "$MUTUAL" release verify --bundle tampered/optstate.bundle --charter v1.charter
check rv_dropped 1 "does not verify: the bundle's audit log: entry 4 \(release\): says it is entry 5" \
  -- "$MUTUAL" release verify --bundle tampered/dropped.bundle --charter v1.charter
check rv_noquorum 1 "does not verify: the bundle's audit log: entry [0-9]+ \(release\): release of round 2 has 1 valid member signatures, the charter's release quorum is 2" \
  -- "$MUTUAL" release verify --bundle tampered/noquorum.bundle --charter v1.charter
check rv_noquorum_json 1 '"ok":false.*"error":".*release quorum is 2' \
  -- "$MUTUAL" release verify --bundle tampered/noquorum.bundle --charter v1.charter --json
check rv_torn 1 "does not verify: the bundle's checkpoint does not load" \
  -- "$MUTUAL" release verify --bundle tampered.bundle --charter v1.charter
sed -e "s/^federation: handover-coop/federation: other-coop/" v1.yaml >other.yaml
"$MUTUAL" -q charter init --in other.yaml --out other.charter >/dev/null || die "init other"
for m in org-1 org-2 org-3; do sign $m other.charter; done
check rv_other_federation 1 "does not verify: the bundle's charter version 1 is not ours: another federation" \
  -- "$MUTUAL" release verify --bundle "$bundle" --charter other.charter
serve b coordinator-b.yaml port-b --charter chain --coordinator-key keys/coord-b.key \
  --resume-bundle "$bundle"

join b --charter chain --release
wait "$srv"
check b_resumed 0 "resumed from .* after round 2" -- cat b.serve.log
check b_config_by_chain 0 "charter version 1\); the members' chain changed it to this config .* \(version 2\)" \
  -- cat b.serve.log
check b_round_3 0 '"round":3,"kind":"train","outcome":"completed"' -- cat b.serve.jsonl
check orgs_follow 0 "charter version 2 names the coordinator 127.0.0.1:$port_b" -- cat b.org-1.log
for i in 1 2 3; do wait "${org_pid[$i]}"; done
check log_verifies 0 "entries valid" -- "$MUTUAL" audit verify --log ckpt-b/audit.log --charter chain
check log_b_charter 0 "charter +[0-9a-f]+ +charter version 2" -- "$MUTUAL" audit show --log ckpt-b/audit.log
check log_release_3 0 "release .*round 3" -- "$MUTUAL" audit show --log ckpt-b/audit.log
for i in 1 2 3; do
  check "head_org_$i" 0 "" -- "$MUTUAL" audit check --log ckpt-b/audit.log --witness "keys/org-$i.ed25519.head"
done
check same_adapter 0 "" -- cmp dump-ref/global-000003.f32 dump-b/global-000003.f32
# B's bundle of round 3, checked from the genesis alone: the bundle's chain (version 2, signed
# by a majority of version 1) carries the verifier across the handover; its adapter hash is
# that of the global B dumped.
sha3=$(sha256sum dump-b/global-000003.f32 | cut -d' ' -f1)
check rv_after_handover 0 "\"round\":3,\"charter_versions\":2,.*\"adapter_sha256\":\"$sha3\"" \
  -- "$MUTUAL" release verify --bundle ckpt-b/release.bundle --charter v1.charter --json
check exported_3 0 "" -- test -f adapters/round-000003/adapter_model.safetensors
check_done
