# tests/node/nd_gov_lib.sh - shared by the governance tests (nd_governance, nd_certs,
# nd_gov_leave): source it after tests/check.sh, with $MUTUAL and $SCRIPT set.
#
#   gov_setup NAME ORGS ROUNDS  a loopback federation (scripts/loopback-federation
#                               --setup-only) in $PWD/NAME, entered; what is started and put in
#                               pids is killed on exit
#   die MSG                     FAIL: MSG and the tails of "$phase".*log, exit 1
#   pk ORG                      ORG's signing public key (keys/ORG.ed25519)
#   sign ORG FILE               ORG signs the charter FILE
#   gov_serve PHASE ARGS...     `mutual serve --charter chain` in the background (stdout
#                               PHASE.serve.jsonl, stderr PHASE.serve.log), waits for its port
#                               file; $srv is its pid
#   wait_for SECONDS FILE RE    0 once FILE matches the extended regex RE, 1 after SECONDS
#   reap PID SECONDS            PID's exit status, or 124 after killing it when it runs longer
# org_pid is an associative array for the callers' join helpers.
gov_setup() {
  work=$PWD/$1
  rm -rf "$work"
  "$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs "$2" --rounds "$3" --setup-only >/dev/null ||
    exit 1
  cd "$work" || exit 1
}
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT
declare -A org_pid
die() { echo "FAIL: $*"; for f in "$phase".*log; do echo "== $f"; tail -5 "$f"; done; exit 1; }
pk() { "$MUTUAL" -q certs identity --key "keys/$1.ed25519"; }
sign() { "$MUTUAL" -q charter sign --key "keys/$1.ed25519" "$2" >/dev/null || die "sign $2 by $1"; }
gov_serve() {
  local name=$1
  shift
  rm -f port
  "$MUTUAL" serve --config coordinator.yaml --port-file port --linger 20 \
    --coordinator-key keys/coord.key --charter chain "$@" >"$name.serve.jsonl" 2>"$name.serve.log" &
  srv=$!
  pids+=($srv)
  for _ in $(seq 300); do [ -s port ] && return 0; kill -0 $srv 2>/dev/null || break; sleep 0.1; done
  die "$name: the coordinator did not start"
}
wait_for() {
  for _ in $(seq $(($1 * 10))); do grep -qE -- "$3" "$2" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
reap() {
  for _ in $(seq $(($2 * 10))); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 124
}
