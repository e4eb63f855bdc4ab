#!/usr/bin/env bash
# docs/quickstart.md, run as written: the command blocks after its <!-- quickstart:setup -->,
# <!-- quickstart:run --> and <!-- quickstart:after --> markers, in a fresh folder where
# `mutual` is on PATH, gpt2/ is the tiny GPT-2 the loopback tests make and ORG.txt (for each
# org of the block's ORGS= line) one of their org texts. The only change: port 7443 becomes
# a free port. The setup block runs as one script under `bash -e -u` (every command must
# succeed); each run line is started as its own process (its own terminal, as the page
# says); the coordinator must complete every round and exit 0, each org must exit 0; then
# the after block must evaluate the exported adapter.
# usage: quickstart.sh MUTUAL
set -uo pipefail
MUTUAL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOC=$ROOT/docs/quickstart.md
work=$(mktemp -d /tmp/quickstart.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# block NAME: the lines of the ```sh block that follows <!-- quickstart:NAME -->
block() {
  awk -v m="<!-- quickstart:$1 -->" '
    $0 == m { armed = 1; next }
    armed == 1 && /^```sh$/ { armed = 2; next }
    armed == 2 && /^```$/ { exit }
    armed == 2 { print }' "$DOC"
}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for b in setup run after; do
  block "$b" | sed "s/7443/$port/g" >"$work/$b.sh"
  grep -qE '^ *mutual ' "$work/$b.sh" || fail "docs/quickstart.md has no '$b' command block"
done
grep -qE '^ *mutual init coordinator ' "$work/setup.sh" && grep -qE '^ *mutual init org ' "$work/setup.sh" ||
  fail "the setup block does not use mutual init"

# the machines' starting point: the mutual binary, a base model, each org's text
mkdir -p "$work/bin" "$work/qs"
ln -s "$MUTUAL" "$work/bin/mutual"
export PATH=$work/bin:$PATH
orgs=($(sed -n 's/^ORGS="\(.*\)"$/\1/p' "$work/setup.sh"))
[ "${#orgs[@]}" -ge 2 ] || fail "the setup block has no ORGS=\"...\" line naming the orgs"
"$ROOT/scripts/loopback-federation" --mutual "$MUTUAL" --work "$work/lf" --orgs "${#orgs[@]}" \
  --setup-only >"$work/lf.log" 2>&1 || { cat "$work/lf.log"; fail "cannot make the tiny model"; }
cp -r "$work/lf/model" "$work/qs/gpt2"
for i in "${!orgs[@]}"; do cp "$work/lf/org-$((i + 1)).txt" "$work/qs/${orgs[$i]}.txt"; done
cd "$work/qs" || exit 1

# setup: every command must succeed, in the order written
bash -e -u -x "$work/setup.sh" >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; fail "the setup block failed"; }
cat "$work/setup.log"

# run: one process per line, the first is the coordinator
k=0
while IFS= read -r line; do
  case $line in '' | '#'*) continue ;; esac
  echo "\$ $line &"
  bash -c "exec $line" >"$work/run-$k.out" 2>"$work/run-$k.log" &
  pids[$k]=$!
  k=$((k + 1))
done <"$work/run.sh"
[ "$k" = $((${#orgs[@]} + 1)) ] || fail "the run block starts $k processes (a coordinator and ${#orgs[@]} orgs expected)"
want=$(sed -n 's/^mutual init coordinator .*--rounds \([0-9][0-9]*\).*/\1/p' "$work/setup.sh")
[ -n "$want" ] || want=10
for _ in $(seq 4200); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${pids[0]}" 2>/dev/null && { tail -20 "$work"/run-*.log; fail "the coordinator did not finish in 420 s"; }
wait "${pids[0]}"
st=$?
cat "$work/run-0.out"
done_rounds=$(grep -c '"kind":"train","outcome":"completed"' "$work/run-0.out")
[ "$st" = 0 ] || { tail -20 "$work/run-0.log"; fail "mutual serve exited $st"; }
[ "$done_rounds" -ge 1 ] && [ "$done_rounds" = "$want" ] ||
  { tail -20 "$work"/run-*.log; fail "$done_rounds of $want rounds completed"; }
for i in $(seq 1 $((k - 1))); do
  for _ in $(seq 300); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  wait "${pids[$i]}"
  st=$?
  [ "$st" = 0 ] || { tail -20 "$work/run-$i.log"; fail "org process $i exited $st"; }
done

# after: the exported adapter is used as the page says
bash -e "$work/after.sh" >"$work/after.log" 2>&1 || { cat "$work/after.log"; fail "the after block failed"; }
grep -qi "loss" "$work/after.log" || { cat "$work/after.log"; fail "no loss from the after block"; }
echo "ok: docs/quickstart.md as written: $done_rounds rounds completed, $((k - 1)) orgs left with 0; $(tail -1 "$work/after.log")"
