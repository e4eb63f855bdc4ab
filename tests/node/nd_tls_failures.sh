#!/usr/bin/env bash
# Junk at the coordinator's port cannot flood its log: 300 connections that send HTTP/1.1
# instead of TLS, then one client with another CA's certificate. gRPC core used to print one
# raw "Handshake failed" line per connection, without the peer; now the coordinator logs at
# most 5 lines per minute, each naming the peer's address, then one line with the count, and
# it goes on answering Status.
# usage: nd_tls_flood.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1 SCRIPT=$2
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_lib.sh"
CHECK_TIMEOUT=60
nd_setup nd_tls_failures 1
nd_foreign_ca
nd_serve coordinator.yaml
addr=127.0.0.1:$port
/usr/bin/python3 - "$port" >flood.txt <<'PY' || exit 1
import socket, sys
port = int(sys.argv[1])
for i in range(300):
    s = socket.create_connection(("127.0.0.1", port))
    if i == 0:
        print(s.getsockname()[1])
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()
PY
first=$(head -1 flood.txt)
"$MUTUAL" -q status --coordinator "$addr" --ca fed/ca.crt --cert other/org-1.crt \
  --key other/org-1.key --timeout 5 >/dev/null 2>&1
check status_still_answers 0 '"orgs_registered":0' -- "$MUTUAL" -q status --coordinator "$addr" \
  --ca fed/ca.crt --cert fed/operator.crt --key fed/operator.key --json

cat other/ca.crt fed/ca.crt >bundle.crt
sed "s#fed/ca.crt#bundle.crt#; s#fed/org-1.crt#other/org-1.crt#; s#fed/org-1.key#other/org-1.key#" \
  org-1.yaml >refused.yaml
sed "s#fed/ca.crt#other/ca.crt#; s#fed/org-1.crt#other/org-1.crt#; s#fed/org-1.key#other/org-1.key#" \
  org-1.yaml >foreign.yaml
sed "s#127.0.0.1:$port#127.0.0.1:1#" org-1.yaml >down.yaml
# One retry (Join waits 10 s for a channel) shows the warning an operator would see.
out=$("$MUTUAL" join --config refused.yaml --give-up 11 2>&1)
check org_refused 0 "warn: join: join: DEADLINE_EXCEEDED: TLS handshake with 127\.0\.0\.1:$port failed: the coordinator (refused our certificate|hung up right after the handshake)" -- \
  echo "$out"
check org_refused_not_unreachable 1 "" -- grep -q "unreachable" <<<"$out"
check org_distrusts 1 "TLS handshake with 127\.0\.0\.1:$port failed: we do not trust the coordinator's certificate" -- \
  "$MUTUAL" join --config foreign.yaml --give-up 4
check org_down 1 "DEADLINE_EXCEEDED: Deadline Exceeded" -- "$MUTUAL" join --config down.yaml --give-up 2
check status_refused 1 "TLS handshake with $addr failed: the coordinator (refused|hung up)" -- \
  "$MUTUAL" status --coordinator "$addr" --ca bundle.crt --cert other/org-1.crt \
  --key other/org-1.key --timeout 3

kill -TERM "$srv"
wait "$srv"
n=$(grep -c "TLS handshake" serve.log)
check bounded_lines 0 "" -- test "$n" -ge 2 -a "$n" -le 6
check no_raw_grpc_lines 1 "" -- grep -q "ssl_transport_security\|Handshake failed" serve.log
# Under load several connections may be mid-handshake when the first fails; the log then names
# its best guess with "(likely; N connections were handshaking)", which must still be the first.
check first_names_peer 0 "TLS handshake with ipv4:127\.0\.0\.1:$first( \(likely; [0-9]+ connections were handshaking\))? failed: .*http request" -- \
  head -c 100000 serve.log
check count_summarised 0 "rpc: (29[0-9]|3[0-9][0-9]) more TLS handshake failures in the last" -- cat serve.log
echo "log lines about handshakes: $n"
check_done
