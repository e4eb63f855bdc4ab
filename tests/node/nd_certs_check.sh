#!/usr/bin/env bash
# Certificate mistakes are found at start, not seen as a dead network: `join` and `serve`
# check their key, certificate and CA file before they dial or bind, and exit 2 with one line
# naming the file and the problem - a certificate from another CA, the wrong CA file, a key
# of another certificate, an expired certificate, a certificate for another name, and for
# serve a client certificate or a key that does not match. Before this check each of the
# org's cases retried "coordinator unreachable (DEADLINE_EXCEEDED)" until --give-up (exit 1).
# usage: nd_certs_check.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1 SCRIPT=$2
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_lib.sh"
CHECK_TIMEOUT=30
nd_setup nd_certs_check 1
nd_foreign_ca
# An expired certificate for org-1's key, signed by the federation's CA.
openssl req -new -key fed/org-1.key -subj "/O=mutual/CN=org-1" -out expired.csr 2>/dev/null &&
  openssl x509 -req -in expired.csr -CA fed/ca.crt -CAkey fed/ca.key -days -1 -set_serial 7 \
    -out fed/expired.crt 2>/dev/null || exit 1

org() { # org NAME SED_EXPR...: org-1.yaml edited; the coordinator is never reached
  local name=$1
  shift
  cp org-1.yaml "$name.yaml"
  for e in "$@"; do sed -i "$e" "$name.yaml"; done
}
org foreign "s#fed/org-1.crt#other/org-1.crt#; s#fed/org-1.key#other/org-1.key#"
org wrong_ca "s#fed/ca.crt#other/ca.crt#"
org wrong_key "s#fed/org-1.key#fed/org-2.key#"
org expired "s#fed/org-1.crt#fed/expired.crt#"
org wrong_name "s#fed/org-1.crt#fed/org-2.crt#; s#fed/org-1.key#fed/org-2.key#"
org no_cert "s#fed/org-1.crt#fed/nothing.crt#"

check join_foreign_ca 2 "other/org-1.crt is not signed by the CA in .*fed/ca.crt" -- \
  "$MUTUAL" join --config foreign.yaml --give-up 20
check join_wrong_ca_file 2 "fed/org-1.crt is not signed by the CA in .*other/ca.crt" -- \
  "$MUTUAL" join --config wrong_ca.yaml --give-up 20
check join_wrong_key 2 "fed/org-2.key is not the key of .*fed/org-1.crt" -- \
  "$MUTUAL" join --config wrong_key.yaml --give-up 20
check join_expired 2 "fed/expired.crt expired on " -- "$MUTUAL" join --config expired.yaml --give-up 20
check join_wrong_name 2 "fed/org-2.crt is for 'org-2', not for 'org-1'" -- \
  "$MUTUAL" join --config wrong_name.yaml --give-up 20
check join_missing_cert 2 "nothing.crt \(certificate\): No such file" -- \
  "$MUTUAL" join --config no_cert.yaml --give-up 20

srv() { # srv NAME SED_EXPR...: coordinator.yaml edited
  local name=$1
  shift
  cp coordinator.yaml "$name.yaml"
  for e in "$@"; do sed -i "$e" "$name.yaml"; done
}
srv s_client "s#tls_cert: \(.*\)/fed/coordinator.crt#tls_cert: \1/fed/org-1.crt#; s#tls_key: \(.*\)/fed/coordinator.key#tls_key: \1/fed/org-1.key#"
srv s_wrong_key "s#tls_key: \(.*\)/fed/coordinator.key#tls_key: \1/fed/org-1.key#"
srv s_wrong_ca "s#tls_ca: \(.*\)/fed/ca.crt#tls_ca: \1/other/ca.crt#"
check serve_client_cert 2 "fed/org-1.crt is not a TLS server certificate" -- \
  "$MUTUAL" serve --config s_client.yaml
check serve_wrong_key 2 "fed/org-1.key is not the key of .*fed/coordinator.crt" -- \
  "$MUTUAL" serve --config s_wrong_key.yaml
check serve_wrong_ca 2 "fed/coordinator.crt is not signed by the CA in .*other/ca.crt" -- \
  "$MUTUAL" serve --config s_wrong_ca.yaml
check_done
