#!/usr/bin/env bash
# configs/coordinator.yaml and configs/org.yaml work together when copied: one coordinator
# folder and five org folders (org.yaml with cu-north replaced by each org's name), each
# holding the files its config names (certificates from `mutual certs`, the demo's base model,
# data from `mutual data import`, the members' roster of `mutual certs identity` lines).
# Only the addresses change (loopback and a free port), and train.steps (20 -> 2) to keep the
# test short. Both configs pass `config check`, and serve with five joins completes a
# training round.
# usage: example_configs.sh MUTUAL
set -uo pipefail
MUTUAL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/example-configs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
m() { "$MUTUAL" -q "$@" >/dev/null || fail "mutual $*"; }
cd "$work" || exit 1
orgs=(cu-north cu-south cu-east cu-west health-coop)
for o in "${orgs[@]}"; do
  grep -qE "^  - name: $o( |\$)" "$ROOT/configs/coordinator.yaml" || fail "coordinator.yaml does not list $o"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ROOT/scripts/loopback-federation" --mutual "$MUTUAL" --work "$work/lf" --orgs 5 --setup-only \
  >"$work/lf.log" 2>&1 || { cat "$work/lf.log"; fail "cannot make the org texts"; }

# the coordinator's folder
mkdir -p co/models
ln -s "$ROOT/configs/demo/base-model" co/models/base
sed -e "s/^  listen: 0.0.0.0:7443/  listen: 127.0.0.1:$port/" -e "s/^  steps: 20 /  steps: 2 /" \
  "$ROOT/configs/coordinator.yaml" >co/coordinator.yaml
grep -q "listen: 127.0.0.1:$port" co/coordinator.yaml || fail "coordinator.yaml has no 'listen: 0.0.0.0:7443'"
m certs init --dir co/certs
m certs issue --dir co/certs --org coordinator --server 127.0.0.1

# the orgs' folders
for i in "${!orgs[@]}"; do
  o=${orgs[$i]}
  mkdir -p "$o/models" "$o/data"
  ln -s "$ROOT/configs/demo/base-model" "$o/models/base"
  sed -e "s/cu-north/$o/g" -e "s/coordinator.example.org:7443/127.0.0.1:$port/" \
    "$ROOT/configs/org.yaml" >"$o/org.yaml"
  m certs request --dir "$o/certs" --org "$o"
  m certs sign --dir co/certs --csr "$o/certs/$o.csr"
  cp co/certs/"$o".crt co/certs/ca.crt "$o/certs/"
  m data import --text "lf/org-$((i + 1)).txt" --out "$o/data/$o.h5"
  cp "$o/data/$o.h5" "$o/data/$o-heldout.h5"
  pk=$("$MUTUAL" -q certs identity --key "$o/keys/$o.ed25519") || fail "certs identity $o"
  echo "- {name: $o, pk: $pk}" >>members.yaml
done
for o in "${orgs[@]}"; do cp members.yaml "$o/"; done

"$MUTUAL" config check --kind coordinator co/coordinator.yaml || fail "config check of coordinator.yaml"
for o in "${orgs[@]}"; do "$MUTUAL" config check --kind org "$o/org.yaml" || fail "config check of $o"; done

"$MUTUAL" serve --config co/coordinator.yaml >serve.out 2>serve.log &
pids+=($!)
for o in "${orgs[@]}"; do
  "$MUTUAL" join --config "$o/org.yaml" >"$o.out" 2>"$o.log" &
  pids+=($!)
done
for _ in $(seq 4200); do
  grep -q '"kind":"train","outcome":"completed"' serve.out && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.1
done
grep -q '"kind":"train","outcome":"completed"' serve.out ||
  { tail -5 serve.log ./*.log; cat serve.out; fail "no training round completed with the example configs"; }
echo "ok: the example configs, copied, passed config check and completed a round:"
head -1 serve.out | cut -c1-200
