#!/usr/bin/env bash
# `mutual charter` and `mutual audit` end to end, offline: three members make their keys and
# found a charter (2 signatures refused, 3 accepted); an admission signed 1-of-3 is refused and
# 2-of-3 accepted; a config change without its quorum is refused; show prints the diff; the
# audit log gv_mklog writes verifies, and each tampered copy (edited, dropped, re-signed
# entry, release without quorum) fails with exit 1 naming the entry; show and --json; a
# countersigned head catches a forked or shortened log; usage and YAML errors are exit 2.
# usage: gv_cli.sh MUTUAL GV_MKLOG
set -u
MUTUAL=$1
MKLOG=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
cd "$tmp" || exit 1

check help 0 "usage: mutual charter init" -- "$MUTUAL" charter --help
check audit_help 0 "usage: mutual audit verify" -- "$MUTUAL" audit --help
check listed 0 "charter +Found or change" -- "$MUTUAL" --help
check no_sub 2 "unknown subcommand 'bogus'" -- "$MUTUAL" charter bogus
check init_usage 2 "'init' takes --in" -- "$MUTUAL" charter init --in x.yaml
check audit_usage 2 "'verify' takes --log FILE --charter CHAIN" -- "$MUTUAL" audit verify --log x

for who in alpha beta gamma delta coord; do
  "$MUTUAL" certs identity --key "keys/$who.key" >"keys.$who" 2>/dev/null ||
    { mkdir -p keys && "$MUTUAL" certs identity --key "keys/$who.key" >"keys.$who"; }
done
pk() { cat "keys.$1"; }
fpr=$(printf 'ab:%.0s' $(seq 31))ab
echo "lr: 0.001" >coordinator.yaml

member() { # member NAME [ROLE]
  printf '  - name: %s\n    signing_key: %s\n    tls_fingerprint: "%s"\n    role: %s\n' \
    "$1" "$(pk "$1")" "$fpr" "${2:-member}"
}
charter() { # charter FILE ADMIT_N MEMBERS... ; $config / $min override
  local f=$1 n=$2
  shift 2
  {
    echo "federation: coop-north"
    printf 'coordinator:\n  key: %s\n  address: "coord.example:7443"\n' "$(pk coord)"
    echo "members:"
    for m in "$@"; do member "$m"; done
    printf 'rules:\n  admit: 2-of-%s\n  change_config: majority\n  release: 2-of-%s\n' "$n" "$n"
    printf '  change_coordinator: majority\n'
    printf 'privacy:\n  min_cohort: %s\n  secagg_threshold: 600\n' "${min:-2}"
    printf 'training:\n  config: %s\n' "${config:-coordinator.yaml}"
  } >"$f"
}

charter genesis.yaml 3 gamma alpha beta
check init 0 "every one of the 3 founding members" -- "$MUTUAL" charter init --in genesis.yaml --out v1.charter
check init_no_clobber 1 "exists; not overwritten" -- "$MUTUAL" charter init --in genesis.yaml --out v1.charter
check sign_alpha 0 "1 signatures" -- "$MUTUAL" charter sign --key keys/alpha.key v1.charter
check sign_beta 0 "2 signatures" -- "$MUTUAL" charter sign --key keys/beta.key v1.charter
check genesis_2_of_3 1 "charter version 1: genesis needs all 3 founding members' signatures, has 2" \
  -- "$MUTUAL" charter verify --chain chain --add v1.charter
check no_chain_written 1 "" -- test -e chain
check show_genesis 0 "genesis, 2 of 3 founding members signed" -- "$MUTUAL" charter show v1.charter
check sign_gamma 0 "3 signatures" -- "$MUTUAL" charter sign --key keys/gamma.key v1.charter
check genesis_3_of_3 0 "versions 1..1" -- "$MUTUAL" charter verify --chain chain --add v1.charter
check chain_verify 0 "valid, versions 1..1" -- "$MUTUAL" charter verify --chain chain

charter admit.yaml 4 alpha beta gamma delta
check propose 0 "kinds: admit; needs 2 signatures of version 1's 3 voting" \
  -- "$MUTUAL" charter propose --chain chain --in admit.yaml --out v2.charter
check sign_v2_alpha 0 "" -- "$MUTUAL" charter sign --key keys/alpha.key v2.charter
check sign_v2_delta 0 "" -- "$MUTUAL" charter sign --key keys/delta.key v2.charter
check admit_1_of_3 1 "charter version 2: admit needs 2 signatures of version 1's voting members, has 1" \
  -- "$MUTUAL" charter verify --chain chain --add v2.charter
check show_diff 0 "\+ admit +delta +member" -- "$MUTUAL" charter show v2.charter --chain chain
check show_diff_n 0 "rules.release 2-of-3 -> 2-of-4 \(N follows the roster\)" -- "$MUTUAL" charter show v2.charter --chain chain
check sign_v2_beta 0 "" -- "$MUTUAL" charter sign --key keys/beta.key v2.charter
check show_valid 0 "status: valid" -- "$MUTUAL" charter show v2.charter --chain chain
check admit_2_of_3 0 "versions 1..2" -- "$MUTUAL" charter verify --chain chain --add v2.charter

echo "lr: 0.01" >coordinator2.yaml
config=coordinator2.yaml charter config.yaml 4 alpha beta gamma delta
check propose_config 0 "kinds: change_config; needs 3 signatures of version 2's 4" \
  -- "$MUTUAL" charter propose --chain chain --in config.yaml --out v3.charter
"$MUTUAL" charter sign --key keys/alpha.key v3.charter >/dev/null
"$MUTUAL" charter sign --key keys/delta.key v3.charter >/dev/null
check config_no_quorum 1 "charter version 3: change_config needs 3 signatures .* has 2" \
  -- "$MUTUAL" charter verify --chain chain --add v3.charter
check chain_unchanged 0 "versions 1..2" -- "$MUTUAL" charter verify --chain chain
check propose_nothing 2 "changes nothing" -- "$MUTUAL" charter propose --chain chain --in admit.yaml --out x.charter

sed 's/federation: coop-north/federation: coop-south/' config.yaml >bad.yaml
check propose_other_fed 2 "federation 'coop-south' is not the chain's 'coop-north'" \
  -- "$MUTUAL" charter propose --chain chain --in bad.yaml --out x.charter
sed 's/admit: 2-of-4/admit: 5-of-4/' admit.yaml >bad.yaml
check yaml_rule 2 "bad.yaml:[0-9]+:[0-9]+: rules.admit: '5-of-4'" \
  -- "$MUTUAL" charter propose --chain chain --in bad.yaml --out x.charter
sed 's/name: delta/name: "del ta"/' admit.yaml >bad.yaml
check yaml_name 2 "bad.yaml:[0-9]+:[0-9]+: name: 'del ta' is not an org name" \
  -- "$MUTUAL" charter propose --chain chain --in bad.yaml --out x.charter
echo "zz" >bad.key
check bad_key 1 "bad.key: not a signing key" -- "$MUTUAL" charter sign --key bad.key v3.charter

# The audit log.
out=$("$MKLOG" chain keys/coord.key . keys/alpha.key keys/beta.key) || { echo "FAIL gv_mklog: $out"; exit 1; }
eval "$out" # round1=I release=J
check audit_good 0 "good.log: 10 entries valid" -- "$MUTUAL" audit verify --log good.log --charter chain
check audit_edited 1 "edited.log: entry $round1 \(round\): not signed by the coordinator" \
  -- "$MUTUAL" audit verify --log edited.log --charter chain
check audit_dropped 1 "dropped.log: entry $release \(restart\): says it is entry $((release + 1))" \
  -- "$MUTUAL" audit verify --log dropped.log --charter chain
check audit_resigned 1 "resigned.log: entry $round1 \(round\): not signed by the coordinator key of charter version 2" \
  -- "$MUTUAL" audit verify --log resigned.log --charter chain
check audit_noquorum 1 "noquorum.log: entry $release \(release\): release of round 1 has 1 valid member signatures, the charter's release quorum is 2" \
  -- "$MUTUAL" audit verify --log noquorum.log --charter chain
check audit_other_chain 1 "entry 1 \(charter\)" -- bash -c "cp v1.charter c1 && '$MUTUAL' charter verify --chain one --add c1 >/dev/null && '$MUTUAL' audit verify --log good.log --charter one"
check audit_show 0 "release +[0-9a-f]{16} round 1, 2 member signatures" -- "$MUTUAL" audit show --log good.log
check audit_json 0 "^10 round 2$" -- bash -c "'$MUTUAL' audit show --log good.log --json | python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; print(len(r), r[-1][\"kind\"], r[-1][\"round\"])'"
check audit_missing 1 "nope.log" -- "$MUTUAL" audit verify --log nope.log --charter chain
head -c 100 good.log >torn.log
check audit_torn 1 "torn.log: log: entry 0" -- "$MUTUAL" audit verify --log torn.log --charter chain
# Witnessing: a member countersigns the head of a log that verifies, then checks later logs.
check witness 0 "countersigned entry 9 into head.w" \
  -- "$MUTUAL" audit witness --log good.log --charter chain --key keys/beta.key --out head.w
check witness_refuses_bad 1 "edited.log: entry $round1" \
  -- "$MUTUAL" audit witness --log edited.log --charter chain --key keys/beta.key --out x.w
check check_same 0 "good.log extends the head countersigned in head.w \(entry 9\)" \
  -- "$MUTUAL" audit check --log good.log --witness head.w
check check_fork 1 "equivocation: entry $round1 is not the entry the countersigned head's history holds" \
  -- "$MUTUAL" audit check --log edited.log --witness head.w
check check_shorter 1 "the log has 9 entries, the countersigned head is entry 9" \
  -- "$MUTUAL" audit check --log dropped.log --witness head.w
check check_not_head 1 "good.log: witness: not a countersigned head" \
  -- "$MUTUAL" audit check --log good.log --witness good.log
check check_usage 2 "'check' takes --log FILE --witness HEAD" -- "$MUTUAL" audit check --log good.log
check_done
