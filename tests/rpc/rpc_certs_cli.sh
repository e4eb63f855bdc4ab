#!/usr/bin/env bash
# `mutual certs`: usage errors exit 2, a CA and certificates that OpenSSL verifies, keys of
# mode 0600 that are never printed, nothing overwritten.
# usage: rpc_certs_cli.sh MUTUAL
set -u
MUTUAL=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"


d=$tmp/fed/certs
check help 0 "certs init --dir" -- "$MUTUAL" certs --help
check listed 0 "certs +Create a federation CA" -- "$MUTUAL" --help
check no_sub 2 "expected 'init' or 'issue'" -- "$MUTUAL" certs --dir "$d"
check no_dir 2 "--dir DIR is required" -- "$MUTUAL" certs init
check bad_sub 2 "unknown subcommand" -- "$MUTUAL" certs renew --dir "$d"
check bad_opt 2 "unknown option" -- "$MUTUAL" certs init --dir "$d" --bogus
check bad_days 2 "--days" -- "$MUTUAL" certs init --dir "$d" --days 0
check issue_no_ca 1 "certs init --dir" -- "$MUTUAL" certs issue --dir "$d" --org bank-a
check init 0 "created the federation CA" -- "$MUTUAL" certs init --dir "$d" --days 30
check init_again 1 "not overwritten" -- "$MUTUAL" certs init --dir "$d"
check issue_no_org 2 "needs --org" -- "$MUTUAL" certs issue --dir "$d"
check issue_bad_org 2 "must be 1-63" -- "$MUTUAL" certs issue --dir "$d" --org "../etc"
check issue_bad_host 2 "not a host name" -- "$MUTUAL" certs issue --dir "$d" --org s --server "a b"
check issue_server 0 "server certificate" -- "$MUTUAL" certs issue --dir "$d" --org coordinator \
  --server localhost --server 127.0.0.1 --server ::1
check issue_org 0 "CN=bank-a" -- "$MUTUAL" certs issue --dir "$d" --org bank-a
check issue_again 1 "already has" -- "$MUTUAL" certs issue --dir "$d" --org bank-a
check verify 0 "bank-a.crt: OK" -- openssl verify -CAfile "$d/ca.crt" "$d/coordinator.crt" "$d/bank-a.crt"
check cn 0 "CN ?= ?bank-a" -- openssl x509 -in "$d/bank-a.crt" -noout -subject
check san 0 "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" -- \
  openssl x509 -in "$d/coordinator.crt" -noout -ext subjectAltName
check client_only 0 "TLS Web Client Authentication$" -- \
  openssl x509 -in "$d/bank-a.crt" -noout -ext extendedKeyUsage
check ca_flag 0 "CA:TRUE" -- openssl x509 -in "$d/ca.crt" -noout -ext basicConstraints
check key_mode 0 "^600$" -- stat -c %a "$d/ca.key" "$d/bank-a.key"
check key_mode_all 0 "" -- bash -c "[ \"\$(stat -c %a '$d'/*.key | sort -u)\" = 600 ]"
check dir_mode 0 "^700$" -- stat -c %a "$d"
check_done
