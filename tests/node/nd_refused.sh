#!/usr/bin/env bash
# Who may join: against a real `mutual serve` with mutual TLS and an allowlist of org-1, org-2,
#   - an org whose certificate comes from another CA        -> refused at start (exit 2)
#   - an org without a certificate (plaintext)               -> no connection
#   - org-2's valid certificate used to join as org-1        -> refused at start (exit 2;
#     nd_bad_client checks that the coordinator refuses it too: PERMISSION_DENIED)
#   - a valid certificate for a name not on the allowlist    -> PERMISSION_DENIED
# none of them registers (Status says 0 orgs), the coordinator logs each refusal it can see,
# and then the two real members run their round as if nothing happened.
# usage: nd_refused.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_refused
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 2 --rounds 1 --setup-only
cd "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
"$MUTUAL" -q certs init --dir other >/dev/null
"$MUTUAL" -q certs issue --dir other --org org-1 >/dev/null
addr=127.0.0.1:$(cat port.planned)
rm -f port
"$MUTUAL" serve --config coordinator.yaml --port-file port >serve.jsonl 2>serve.log &
pids+=($!)
for _ in $(seq 300); do [ -s port ] && break; sleep 0.1; done
[ -s port ] || { echo "FAIL: the coordinator did not start"; exit 1; }

attempt() { # attempt NAME WANT_PATTERN YAML_EDIT...
  local name=$1 pat=$2
  shift 2
  cp org-1.yaml "$name.yaml"
  sed -i "s#keys/org-1.ed25519#keys/$name.ed25519#" "$name.yaml"
  for e in "$@"; do sed -i "$e" "$name.yaml"; done
  local s=0
  timeout 60 "$MUTUAL" join --config "$name.yaml" --give-up 3 >/dev/null 2>"$name.log" || s=$?
  if [ "$s" = 0 ] || [ "$s" = 124 ] || ! grep -q "$pat" "$name.log"; then
    echo "FAIL $name: exit $s, log:"; cat "$name.log"; exit 1
  fi
  echo "ok   $name refused: $(grep -m1 -o "$pat.*" "$name.log" | head -c 150)"
}
attempt foreign_ca "is not signed by the CA in" "s#cert: $work/fed/org-1.crt, key: $work/fed/org-1.key#cert: $work/other/org-1.crt, key: $work/other/org-1.key#"
attempt no_certificate "no coordinator for" "s#insecure: false#insecure: true#"
attempt wrong_name "is for 'org-2', not for 'org-1'" "s#cert: $work/fed/org-1.crt, key: $work/fed/org-1.key#cert: $work/fed/org-2.crt, key: $work/fed/org-2.key#"
attempt not_allowed PERMISSION_DENIED "s#name: org-1,#name: stranger,#" \
  "s#cert: $work/fed/org-1.crt, key: $work/fed/org-1.key#cert: $work/fed/stranger.crt, key: $work/fed/stranger.key#"

st=$("$MUTUAL" -q status --coordinator "$addr" --ca fed/ca.crt --cert fed/operator.crt \
  --key fed/operator.key --json)
echo "$st"
grep -q '"orgs_registered":0' <<<"$st" || { echo "FAIL: a refused org registered"; exit 1; }
grep -q "join refused for 'stranger'" serve.log ||
  { echo "FAIL: the coordinator did not log the refusals"; cat serve.log; exit 1; }

for i in 1 2; do "$MUTUAL" join --config "org-$i.yaml" 2>"org-$i.log" & pids+=($!); done
for _ in $(seq 1200); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
wait "${pids[0]}" || { echo "FAIL: the coordinator failed"; cat serve.log; exit 1; }
grep -q '"round":1,"kind":"train","outcome":"completed".*"orgs_completed":2' serve.jsonl ||
  { echo "FAIL: the members' round did not complete"; cat serve.jsonl; exit 1; }
echo "ok: every impostor refused, the members' round completed"
