# tests/node/nd_lib.sh - shared by the certificate, status and TLS script tests: source it
# after tests/check.sh.
#
#   nd_setup NAME ROUNDS   a loopback federation of 2 orgs (scripts/loopback-federation
#                          --setup-only) in $PWD/NAME, entered; kills what nd_serve started
#                          on exit
#   nd_serve CONFIG [opt]  starts `mutual serve` (stdout >> serve.jsonl, stderr >> serve.log,
#                          lingering 600 s), waits for its port; $srv is its pid, $port the port
#   nd_foreign_ca          other/ca.crt and other/org-1.{crt,key}: another federation's CA
#   nd_round_1_then_hold   starts org-1 and org-2 and waits until round 1 completed; org-1
#                          dies in round 2 before its report, so round 2 waits for its
#                          deadline (60 s) and the coordinator stays up, with nothing joining
# Expects $MUTUAL and $SCRIPT.
pids=()

nd_setup() {
  local work=$PWD/$1
  rm -rf "$work"
  "$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 2 --rounds "$2" --setup-only >/dev/null ||
    exit 1
  cd "$work" || exit 1
  trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT
}

nd_serve() {
  rm -f port
  "$MUTUAL" serve --config "$@" --port-file port --linger 600 >>serve.jsonl 2>>serve.log &
  srv=$!
  pids+=($srv)
  for _ in $(seq 300); do [ -s port ] && break; sleep 0.1; done
  [ -s port ] || { echo "FAIL: the coordinator did not start"; cat serve.log; exit 1; }
  port=$(cat port)
}

nd_foreign_ca() {
  "$MUTUAL" -q certs init --dir other >/dev/null &&
    "$MUTUAL" -q certs issue --dir other --org org-1 >/dev/null || exit 1
}

nd_round_1_then_hold() {
  "$MUTUAL" join --config org-1.yaml --die-at 2:100 >/dev/null 2>org-1.log &
  pids+=($!)
  "$MUTUAL" join --config org-2.yaml >/dev/null 2>org-2.log &
  pids+=($!)
  for _ in $(seq 1200); do grep -q '"round":1' serve.jsonl && break; sleep 0.1; done
  grep -q '"round":1,"kind":"train","outcome":"completed"' serve.jsonl ||
    { echo "FAIL: round 1 did not complete"; cat serve.log; exit 1; }
}
