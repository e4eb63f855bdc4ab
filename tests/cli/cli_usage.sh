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

# schema checks with --kind, on the shipped example configs and on broken copies
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
sed "s#^\(  base: *\).*#\1$ROOT/configs/demo/base-model#" "$ROOT/configs/coordinator.yaml" >"$tmp/coordinator.yaml"
check kind_coordinator 0 "coordinator.yaml: ok" -- "$MUTUAL" config check --kind coordinator "$tmp/coordinator.yaml"
check kind_org 0 "org.yaml: ok" -- "$MUTUAL" config check --kind org "$ROOT/configs/org.yaml"
check kind_bad 2 "--kind wants coordinator, org or sim" -- "$MUTUAL" config check --kind nope "$tmp/good.yaml"
sed 's/^cohort:/cohort:\n  bogus_key: 1/' "$ROOT/configs/coordinator.yaml" >"$tmp/co_bad.yaml"
check kind_coordinator_unknown_key 2 "co_bad.yaml:[0-9]+:[0-9]+: unknown key 'bogus_key'" -- "$MUTUAL" config check --kind coordinator "$tmp/co_bad.yaml"
printf 'seed: [1\n' >"$tmp/sim_bad.yaml"
check kind_sim_syntax 2 "sim_bad.yaml:[0-9]+:[0-9]+: " -- "$MUTUAL" config check --kind sim "$tmp/sim_bad.yaml"

check_done
