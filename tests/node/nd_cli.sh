#!/usr/bin/env bash
# The CLI contract of serve, join and status: config errors are exit 2 with FILE:LINE:COL
# before anything starts; missing options are exit 2; a coordinator that is not there is
# exit 1 within the timeout.
# usage: nd_cli.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
CHECK_TIMEOUT=60
work=$PWD/nd_cli
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
printf 'federation: {name: x}\nbogus: 1\n' >unknown.yaml
printf 'federation: {name: x}\n' >nomodel.yaml
printf 'federation: {name: x}\nmodel: {base: nowhere, rank: 0}\n' >badrank.yaml
printf 'org: {name: a, identity_key: k}\ncoordinator: {address: "127.0.0.1:1"}\nmodel: {base: m}\ndata: {train: t.h5}\ntls: {ca: x}\n' >org-notls.yaml
check serve_no_config 2 "--config is required" -- "$MUTUAL" serve
check serve_unknown_key 2 "unknown.yaml:2:1: unknown key 'bogus'" -- "$MUTUAL" serve --config unknown.yaml
check serve_no_model 2 "no 'model:' section" -- "$MUTUAL" serve --config nomodel.yaml
check serve_bad_rank 2 "badrank.yaml:2:" -- "$MUTUAL" serve --config badrank.yaml
check serve_bad_crash_at 2 "ROUND:STAGE" -- "$MUTUAL" serve --config nomodel.yaml --crash-at 2
check join_no_config 2 "--config is required" -- "$MUTUAL" join
check join_unknown_key 2 "unknown.yaml:1:1: unknown key 'federation'" -- "$MUTUAL" join --config unknown.yaml
check join_no_tls 2 "tls.ca, tls.cert and tls.key are required" -- "$MUTUAL" join --config org-notls.yaml
check status_no_coordinator 2 "--coordinator is required" -- "$MUTUAL" status
check status_no_certs 2 "--ca, --cert and --key are required" -- "$MUTUAL" status --coordinator 127.0.0.1:1
check status_nobody_there 1 "UNAVAILABLE|DEADLINE" -- "$MUTUAL" status --coordinator 127.0.0.1:1 --insecure --timeout 2
check status_insecure_warns 1 "INSECURE" -- "$MUTUAL" status --coordinator 127.0.0.1:1 --insecure --timeout 2
check_done
