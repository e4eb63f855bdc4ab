#!/usr/bin/env bash
# The CLI's contract: --help lists commands, unknown commands and options exit 2,
# broken configs give FILE:LINE:COL and exit 2.
set -u
MUTUAL=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"


check help 0 "Commands:" -- "$MUTUAL" --help
check help_lists_config 0 "config +Check" -- "$MUTUAL" --help
check version 0 "^mutual [0-9]+\.[0-9]+\.[0-9]+" -- "$MUTUAL" --version
check no_command 2 "usage: mutual" -- "$MUTUAL"
check unknown_command 2 "unknown command 'nosuchcommand'" -- "$MUTUAL" nosuchcommand
check unknown_global_option 2 "unknown option '--bogus'" -- "$MUTUAL" --bogus
check unknown_command_option 2 "Try 'mutual config --help'" -- "$MUTUAL" config --bogus
check version_cmd 0 "libsodium" -- "$MUTUAL" version

# every command answers --help with exit 0 and a usage line
for c in $("$MUTUAL" --help | awk '/^Commands:/{f=1;next} /^$/{f=0} f{print $1}'); do
  check "help_$c" 0 "usage: mutual $c" -- "$MUTUAL" "$c" --help
done

printf 'name: coop\nport: 7443\n' >"$tmp/good.yaml"
printf 'name: coop\nport: [1, 2\n' >"$tmp/broken.yaml"
printf 'a: 1\na: 2\n' >"$tmp/dup.yaml"
printf -- '- just\n- a list\n' >"$tmp/list.yaml"
check config_good 0 "good.yaml: ok" -- "$MUTUAL" config check "$tmp/good.yaml"
check config_broken 2 "broken.yaml:[0-9]+:[0-9]+: " -- "$MUTUAL" config check "$tmp/broken.yaml"
check config_dup 2 "dup.yaml:2:1: duplicate key 'a'" -- "$MUTUAL" config check "$tmp/dup.yaml"
check config_list 2 "list.yaml:1:1: a config file must be a mapping" -- "$MUTUAL" config check "$tmp/list.yaml"
check config_missing 2 "nope.yaml: No such file" -- "$MUTUAL" config check "$tmp/nope.yaml"

# schema checks with --kind, on the shipped example configs and on broken copies. The example
# configs name files relative to their own folder: check refuses each missing one at its line
# (as serve and join would refuse it at start), and passes once they exist, from any folder.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
fed=$tmp/fed
mkdir -p "$fed/certs" "$fed/keys" "$fed/data" "$fed/models"
cp "$ROOT/configs/coordinator.yaml" "$ROOT/configs/org.yaml" "$fed/"
ln -s "$ROOT/configs/demo/base-model" "$fed/models/base"
check kind_coordinator_no_ca 2 "coordinator.yaml:[0-9]+:[0-9]+: server.tls_ca '$fed/certs/ca.crt': No such file" -- \
  "$MUTUAL" config check --kind coordinator "$fed/coordinator.yaml"
touch "$fed/certs/ca.crt" "$fed/certs/coordinator.crt" "$fed/certs/coordinator.key"
check kind_coordinator_bad_cert 2 "coordinator.yaml:[0-9]+:[0-9]+: .*certs/c" -- \
  "$MUTUAL" config check --kind coordinator "$fed/coordinator.yaml"
rm -f "$fed/certs/"*
"$MUTUAL" -q certs init --dir "$fed/certs" >/dev/null
"$MUTUAL" -q certs issue --dir "$fed/certs" --org coordinator --server localhost >/dev/null
check kind_coordinator 0 "coordinator.yaml: ok" -- "$MUTUAL" config check --kind coordinator "$fed/coordinator.yaml"
check kind_coordinator_from_root 0 "coordinator.yaml: ok" -- sh -c "cd / && '$MUTUAL' config check --kind coordinator '$fed/coordinator.yaml'"
check kind_org_no_roster 2 "org.yaml:[0-9]+:[0-9]+: cohort.members: $fed/members.yaml: No such file" -- \
  "$MUTUAL" config check --kind org "$fed/org.yaml"
printf -- '- {name: cu-south, pk: %s}\n' "$(printf 'cu-south' | sha256sum | cut -c1-64)" >"$fed/members.yaml"
check kind_org_no_cert 2 "org.yaml:[0-9]+:[0-9]+: tls.cert '$fed/certs/cu-north.crt': No such file" -- \
  "$MUTUAL" config check --kind org "$fed/org.yaml"
"$MUTUAL" -q certs issue --dir "$fed/certs" --org cu-south >/dev/null
cp "$fed/certs/cu-south.crt" "$fed/certs/cu-north.crt"
cp "$fed/certs/cu-south.key" "$fed/certs/cu-north.key"
check kind_org_wrong_name 2 "org.yaml:[0-9]+:[0-9]+: .*cu-north" -- "$MUTUAL" config check --kind org "$fed/org.yaml"
rm -f "$fed/certs/cu-north.crt" "$fed/certs/cu-north.key"
"$MUTUAL" -q certs issue --dir "$fed/certs" --org cu-north >/dev/null
check kind_org_no_data 2 "org.yaml:[0-9]+:[0-9]+: data.train: .*cu-north.h5" -- "$MUTUAL" config check --kind org "$fed/org.yaml"
cp "$ROOT/tests/train/ref/gpt2_data.h5" "$fed/data/cu-north.h5"
cp "$ROOT/tests/train/ref/gpt2_data.h5" "$fed/data/cu-north-heldout.h5"
check kind_org 0 "org.yaml: ok" -- sh -c "cd / && '$MUTUAL' config check --kind org '$fed/org.yaml'"
rmdir "$fed/keys" # join makes keys/ (one level) for a new key: not a problem
check kind_org_no_key_folder 0 "org.yaml: ok" -- "$MUTUAL" config check --kind org "$fed/org.yaml"
sed 's#keys/cu-north#keys/deeper/cu-north#' "$fed/org.yaml" >"$fed/org-deep.yaml"
check kind_org_no_key_folders 2 "org-deep.yaml:[0-9]+:[0-9]+: org.identity_key '$fed/keys/deeper/cu-north.ed25519': cannot create it" -- \
  "$MUTUAL" config check --kind org "$fed/org-deep.yaml"
mv "$fed/models/base" "$fed/models/gone"
check kind_coordinator_no_base 2 "coordinator.yaml:[0-9]+:[0-9]+: .*config.json" -- "$MUTUAL" config check --kind coordinator "$fed/coordinator.yaml"
printf 'server: {listen: "0.0.0.0:7443", insecure: true}\nmodel: {base: %s/configs/demo/base-model}\n' "$ROOT" >"$tmp/co_open.yaml"
check kind_coordinator_insecure_open 2 "co_open.yaml:1:18: insecure mode refused: listen address '0.0.0.0:7443' is not a loopback" -- \
  "$MUTUAL" config check --kind coordinator "$tmp/co_open.yaml"
printf 'server: {listen: "127.0.0.1:7443", insecure: true}\nmodel: {base: %s/configs/demo/base-model}\n' "$ROOT" >"$tmp/co_lo.yaml"
printf 'secure_agg: {bits: 8}\nserver: {listen: "127.0.0.1:7443", insecure: true}\nmodel: {base: %s/configs/demo/base-model}\n' "$ROOT" >"$tmp/co_bits.yaml"
check kind_coordinator_overflow 2 "co_bits.yaml:1:20: secure_agg: 100 orgs at 8 bits leave no room for a sum" -- \
  "$MUTUAL" config check --kind coordinator "$tmp/co_bits.yaml"
check serve_overflow 2 "mutual serve: .*co_bits.yaml: secure_agg: 100 orgs at 8 bits" -- "$MUTUAL" serve --config "$tmp/co_bits.yaml"
check kind_coordinator_insecure_lo 0 "co_lo.yaml: ok" -- "$MUTUAL" config check --kind coordinator "$tmp/co_lo.yaml"
check kind_bad 2 "--kind wants coordinator, org or sim" -- "$MUTUAL" config check --kind nope "$tmp/good.yaml"
sed 's/^cohort:/cohort:\n  bogus_key: 1/' "$ROOT/configs/coordinator.yaml" >"$tmp/co_bad.yaml"
check kind_coordinator_unknown_key 2 "co_bad.yaml:[0-9]+:[0-9]+: unknown key 'bogus_key'" -- "$MUTUAL" config check --kind coordinator "$tmp/co_bad.yaml"
printf 'seed: [1\n' >"$tmp/sim_bad.yaml"
check kind_sim_syntax 2 "sim_bad.yaml:[0-9]+:[0-9]+: " -- "$MUTUAL" config check --kind sim "$tmp/sim_bad.yaml"

check_done
