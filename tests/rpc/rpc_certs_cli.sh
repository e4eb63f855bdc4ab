#!/usr/bin/env bash
# `mutual certs`: usage errors exit 2, a CA and certificates that OpenSSL verifies, keys of
# mode 0600 that are never printed, nothing overwritten; an org's certificate request signed
# into a certificate for the request's key and CN, and requests that must be refused.
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
# request (org side) and sign (CA side): the org's key stays with the org
r=$tmp/org/certs
check request_no_org 2 "'request' needs --org" -- "$MUTUAL" certs request --dir "$r"
check request_bad_org 2 "must be 1-63" -- "$MUTUAL" certs request --dir "$r" --org ca
check request 0 "wrote .*cu-north.csr" -- "$MUTUAL" certs request --dir "$r" --org cu-north
check request_again 1 "not overwritten" -- "$MUTUAL" certs request --dir "$r" --org cu-north
check request_key_mode 0 "^600$" -- stat -c %a "$r/cu-north.key"
check request_csr_cn 0 "CN ?= ?cu-north" -- openssl req -in "$r/cu-north.csr" -noout -subject -verify
check sign_no_csr 2 "'sign' needs --csr" -- "$MUTUAL" certs sign --dir "$d"
check sign_org_opt 2 "name from the request" -- "$MUTUAL" certs sign --dir "$d" --csr "$r/cu-north.csr" --org x
check sign_missing 1 "nope.csr: No such file" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/nope.csr"
check sign_no_ca 1 "certs init --dir" -- "$MUTUAL" certs sign --dir "$tmp/noca" --csr "$r/cu-north.csr"
check sign 0 "issued .*cu-north.crt \(CN=cu-north\)" -- "$MUTUAL" certs sign --dir "$d" --csr "$r/cu-north.csr" --days 10
check sign_again 1 "not overwritten" -- "$MUTUAL" certs sign --dir "$d" --csr "$r/cu-north.csr"
check sign_verify 0 "cu-north.crt: OK" -- openssl verify -CAfile "$d/ca.crt" "$d/cu-north.crt"
check sign_client_only 0 "TLS Web Client Authentication$" -- \
  openssl x509 -in "$d/cu-north.crt" -noout -ext extendedKeyUsage
check sign_same_key 0 "" -- bash -c "diff <(openssl x509 -in '$d/cu-north.crt' -noout -pubkey) \
  <(openssl pkey -in '$r/cu-north.key' -pubout)"
check sign_no_org_key 0 "" -- test ! -e "$d/cu-north.key"
# what a request may not do: another key type, a CN that is no org name, extra subject
# fields or extensions that would change the certificate, a bad signature, a huge file
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null)
openssl req -new -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=rsa-org -out "$tmp/rsa.csr" 2>/dev/null
check sign_rsa 1 "rsa.csr: the request's key is not ECDSA P-256" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/rsa.csr"
openssl req -new "${ec[@]}" -subj "/CN=.hidden" -out "$tmp/dot.csr" 2>/dev/null
check sign_bad_cn 1 "dot.csr: the request's CN '.hidden' is not an org name" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/dot.csr"
openssl req -new "${ec[@]}" -subj "/CN=ca" -out "$tmp/ca-name.csr" 2>/dev/null
check sign_ca_cn 1 "not an org name" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/ca-name.csr"
openssl req -new "${ec[@]}" -subj "/O=mutual" -out "$tmp/no-cn.csr" 2>/dev/null
check sign_no_cn 1 "exactly one CN" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/no-cn.csr"
openssl req -new "${ec[@]}" -subj "/CN=a/CN=b" -out "$tmp/two-cn.csr" 2>/dev/null
check sign_two_cn 1 "exactly one CN" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/two-cn.csr"
openssl req -new "${ec[@]}" -subj "/OU=mutual operator/CN=sneaky" \
  -addext "subjectAltName=DNS:localhost" -addext "basicConstraints=critical,CA:TRUE" \
  -out "$tmp/sneaky.csr" 2>/dev/null
check sign_sneaky 0 "CN=sneaky" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/sneaky.csr"
check sneaky_not_operator 0 "" -- bash -c "! openssl x509 -in '$d/sneaky.crt' -noout -subject | grep -q operator"
check sneaky_not_ca 0 "CA:FALSE" -- openssl x509 -in "$d/sneaky.crt" -noout -ext basicConstraints
check sneaky_no_san 0 "" -- bash -c "! openssl x509 -in '$d/sneaky.crt' -noout -ext subjectAltName | grep -q DNS"
openssl req -new "${ec[@]}" -subj "/CN=forged" -out "$tmp/forged.csr" 2>/dev/null
python3 - "$tmp/forged.csr" <<'PY'
import base64, sys
p = sys.argv[1]
lines = open(p).read().split("\n")
der = bytearray(base64.b64decode("".join(l for l in lines if l and not l.startswith("-----"))))
der[-5] ^= 0x01  # a byte of the signature
b = base64.b64encode(bytes(der)).decode()
open(p, "w").write("-----BEGIN CERTIFICATE REQUEST-----\n" +
                   "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) +
                   "\n-----END CERTIFICATE REQUEST-----\n")
PY
check sign_forged 1 "forged.csr: the request's signature does not verify" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/forged.csr"
check sign_forged_nothing 0 "" -- test ! -e "$d/forged.crt"
head -c 20000 /dev/zero >"$tmp/big.csr"
check sign_big 1 "big.csr: larger than 16384 bytes" -- "$MUTUAL" certs sign --dir "$d" --csr "$tmp/big.csr"
check sign_not_csr 1 "ca.crt: not a PEM certificate request" -- "$MUTUAL" certs sign --dir "$d" --csr "$d/ca.crt"
check_done
