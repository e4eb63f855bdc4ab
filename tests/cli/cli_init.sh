#!/usr/bin/env bash
# `mutual init coordinator|org DIR`: --help answers; a DIR that is not empty is refused (exit
# 2) unless --force, and even then no file is overwritten (exit 1); bad names, addresses and
# models are usage errors naming the option; the folders hold what the help says (keys mode
# 0600, the org's public key as printed, a server certificate for the given hosts, train.seq
# cut to the model's context, cohort.min_orgs the orgs' minimum cohort), the org's roster
# line is its identity key and its config reads the roster from members.yaml (a missing or
# broken roster is refused at FILE:LINE:COL), and once the operator signed the org's request
# both configs pass `mutual config check`.
# usage: cli_init.sh MUTUAL
set -u
MUTUAL=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
cd "$tmp" || exit 1
model=$ROOT/tests/train/ref/gpt2 # n_positions 32

check help 0 "usage: mutual init coordinator DIR" -- "$MUTUAL" init --help
check listed 0 "init +Write a working folder" -- "$MUTUAL" --help
check no_args 2 "expected 'coordinator DIR' or 'org DIR'" -- "$MUTUAL" init
check bad_kind 2 "unknown kind 'server'" -- "$MUTUAL" init server x
check bad_opt 2 "unknown option" -- "$MUTUAL" init coordinator x --bogus
check bad_listen 2 "--listen address '0.0.0.0' has no port" -- "$MUTUAL" init coordinator x --listen 0.0.0.0
check bad_rounds 2 "--rounds" -- "$MUTUAL" init coordinator x --rounds -1
check bad_min 2 "--min-orgs" -- "$MUTUAL" init coordinator x --min-orgs 1
check no_model 2 "--model nope: No such file" -- "$MUTUAL" init coordinator x --model nope
check not_model 2 "--model: .*config.json" -- "$MUTUAL" init coordinator x --model "$tmp"
check quote_name 2 "federation name" -- "$MUTUAL" init coordinator x --name 'a"b'
check coord_on_coordinator 2 "--coordinator belongs to 'init org'" -- "$MUTUAL" init coordinator x --coordinator h:1
check org_no_coord 2 "needs --coordinator HOST:PORT" -- "$MUTUAL" init org y
check org_bad_coord 2 "address 'h' has no port" -- "$MUTUAL" init org y --coordinator h
check org_bad_name 2 "org name 'bad name' must be" -- "$MUTUAL" init org "bad name" --coordinator h:1
check org_ca_name 2 "org name 'ca' must be" -- "$MUTUAL" init org ca --coordinator h:1
check org_server 2 "belong to 'init coordinator'" -- "$MUTUAL" init org y --coordinator h:1 --server h
check nothing_written 0 "" -- test ! -e x -a ! -e y

check coordinator 0 "wrote fed/coordinator.yaml" -- "$MUTUAL" init coordinator fed --server coord.example.org \
  --server 10.1.2.3 --listen 0.0.0.0:7443 --model "$model" --rounds 3 --min-orgs 2
check coordinator_again 2 "fed is not empty" -- "$MUTUAL" init coordinator fed
check coordinator_force 1 "coordinator.yaml: exists already; not overwritten" -- "$MUTUAL" init coordinator fed --force
mv fed/coordinator.yaml fed/kept.yaml
check coordinator_force_ca 1 "ca.key: exists already; not overwritten \(nothing written\)" -- "$MUTUAL" init coordinator fed --force
check coordinator_force_nothing 0 "" -- test ! -e fed/coordinator.yaml
mv fed/kept.yaml fed/coordinator.yaml
check coordinator_kept 0 "rounds: 3 " -- cat fed/coordinator.yaml
check ca_key_mode 0 "^600$" -- bash -c "stat -c %a fed/certs/*.key | sort -u"
check server_san 0 "DNS:localhost, IP Address:127.0.0.1, DNS:coord.example.org, IP Address:10.1.2.3" -- \
  openssl x509 -in fed/certs/coordinator.crt -noout -ext subjectAltName
check operator_cert 0 "OU ?= ?mutual operator" -- openssl x509 -in fed/certs/operator.crt -noout -subject
check seq_fits_model 0 "seq: 32 " -- cat fed/coordinator.yaml
check model_absolute 0 "base: \"$model\"" -- cat fed/coordinator.yaml
check no_pins 0 "" -- bash -c "! grep -q '^orgs:' fed/coordinator.yaml"
check min_orgs_default 0 "min_orgs: 2 " -- cat fed/coordinator.yaml
"$MUTUAL" init coordinator fed5 >/dev/null
check min_orgs_five 0 "min_orgs: 5 " -- cat fed5/coordinator.yaml

mkdir -p other && echo keep >other/notes.txt
check org_not_empty 2 "other is not empty" -- "$MUTUAL" init org other --coordinator localhost:7443
check org_force 0 "wrote other/org.yaml" -- "$MUTUAL" init org other --name cu-east --coordinator localhost:7443 --force
check org_force_kept 0 "^keep$" -- cat other/notes.txt
rm other/org.yaml
check org_force_again 1 "member.yaml: exists already; not overwritten \(nothing written\)" -- \
  "$MUTUAL" init org other --name cu-east --coordinator localhost:7443 --force
check org_force_nothing 0 "" -- test ! -e other/org.yaml
check org 0 "public key [0-9a-f]{64}" -- "$MUTUAL" init org cu-north --coordinator localhost:7443 --model "$model"
check org_quiet 0 "" -- bash -c "! '$MUTUAL' init org cu-west --coordinator localhost:7443 2>&1 | grep -q 'join:'"
printed=$("$MUTUAL" init org cu-south --coordinator localhost:7443 | sed -n 's/.*public key \([0-9a-f]*\).*/\1/p')
check org_pk_printed 0 "^$printed$" -- "$MUTUAL" certs identity --key cu-south/keys/cu-south.ed25519
check org_key_modes 0 "^600$" -- bash -c "stat -c %a cu-north/keys/cu-north.ed25519 cu-north/certs/cu-north.key | sort -u"
check org_csr 0 "CN ?= ?cu-north" -- openssl req -in cu-north/certs/cu-north.csr -noout -subject -verify
check org_config_names 0 "name: cu-north" -- cat cu-north/org.yaml
check org_member_line 0 "^- \{name: cu-north, pk: $("$MUTUAL" certs identity --key cu-north/keys/cu-north.ed25519)\}$" -- cat cu-north/member.yaml
check org_no_roster 2 "org.yaml:[0-9]+:[0-9]+: cohort.members: .*members.yaml: No such file" -- \
  "$MUTUAL" config check --kind org cu-north/org.yaml
printf -- '- {name: cu-south, pk: 12}\n' >cu-north/members.yaml
check org_bad_roster 2 "members.yaml:1:[0-9]+: cohort member cu-south: pk must be 64 hex digits" -- \
  "$MUTUAL" config check --kind org cu-north/org.yaml
cat cu-north/member.yaml cu-south/member.yaml cu-north/member.yaml >cu-north/members.yaml
check org_roster_twice 2 "members.yaml:3:[0-9]+: cohort members cu-north and cu-north have the same pk" -- \
  "$MUTUAL" config check --kind org cu-north/org.yaml
cat cu-north/member.yaml cu-south/member.yaml >cu-north/members.yaml
check org_no_cert_yet 2 "org.yaml:[0-9]+:[0-9]+: tls.ca .*No such file" -- "$MUTUAL" config check --kind org cu-north/org.yaml

check sign 0 "CN=cu-north" -- "$MUTUAL" certs sign --dir fed/certs --csr cu-north/certs/cu-north.csr
cp fed/certs/cu-north.crt fed/certs/ca.crt cu-north/certs/
check org_no_data 2 "org.yaml:[0-9]+:[0-9]+: data.train: .*data/train.h5" -- "$MUTUAL" config check --kind org cu-north/org.yaml
cp "$ROOT/tests/train/ref/gpt2_data.h5" cu-north/data/train.h5
check config_coordinator 0 "coordinator.yaml: ok" -- sh -c "cd / && '$MUTUAL' config check --kind coordinator '$tmp/fed/coordinator.yaml'"
check config_org 0 "org.yaml: ok" -- sh -c "cd / && '$MUTUAL' config check --kind org '$tmp/cu-north/org.yaml'"
check_done
