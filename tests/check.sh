# tests/check.sh - shared by the script tests: source it, call `check`, end with `check_done`.
#
#   check NAME WANT_STATUS WANT_PATTERN -- command...
# runs the command, and counts a failure when its exit status differs from WANT_STATUS or
# its output (stdout + stderr) does not match the extended regex WANT_PATTERN ("" = any).
# Each command (not a shell function) gets CHECK_TIMEOUT seconds (default 120); running out
# is a failure.
# `check_done` prints "N passed, N failed" and returns non-zero if anything failed.
pass=0
fail=0

check() {
  local name=$1 want=$2 pat=$3
  shift 4
  local out status
  if declare -F "$1" >/dev/null; then
    out=$("$@" 2>&1) # a shell function: timeout cannot run it
  else
    out=$(timeout "${CHECK_TIMEOUT:-120}" "$@" 2>&1)
  fi
  status=$?
  if [ "$status" -ne "$want" ]; then
    echo "FAIL $name: exit $status, want $want; output: $out"
    fail=$((fail + 1))
  elif [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then
    echo "FAIL $name: output does not match /$pat/: $out"
    fail=$((fail + 1))
  else
    echo "ok   $name"
    pass=$((pass + 1))
  fi
}

check_done() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
