#!/bin/sh
# The same federation twice: as real processes (scripts/loopback-federation: mutual serve and
# 3 mutual join over gRPC, deterministic org seeds) and as `mutual sim` with the same model,
# data, coordinator config and org seeds. The global adapters must be the same bits; with one
# org's seed changed (other stochastic rounding) they must not be. Each round's bytes_in and
# bytes_out (the round machine's payload counts plus the adapter downloads) must be serve's.
set -u
MUTUAL=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
W=$(pwd)/sim_loopback
rm -rf "$W" && mkdir -p "$W" || exit 1
"$SRC/scripts/loopback-federation" --mutual "$MUTUAL" --work "$W/lb" --orgs 3 --rounds 2 \
    --deterministic --insecure > "$W/lb.out" 2>&1 || { cat "$W/lb.out"; fail "loopback federation"; }
seed() { printf '%s' "$1" | sha256sum | cut -c1-64; }
write_config() { # write_config SEED_OF_ORG_3
    cat <<Y
seed: 1
model: {base: $W/lb/model, rank: 4, alpha: 8, targets: c_attn, freeze_a: true, seed: 7}
data:
  files:
    - {path: $W/lb/org-1.h5, seed: $(seed org-1)}
    - {path: $W/lb/org-2.h5, seed: $(seed org-2)}
    - {path: $W/lb/org-3.h5, seed: $1}
  eval_fraction: 0
coordinator:
  federation: {name: loopback, seed: 1, rounds: 2}
  cohort: {min_orgs: 3, max_orgs: 3, fraction: 1.0, wait_s: 2, available_s: 5}
  train: {steps: 3, lr: 0.01, batch: 4, seq: 32, weight: examples}
  secure_agg: {bits: 32, clip: 10, weight_max: 10000}
  strategy: {name: fedavg}
Y
}
write_config "$(seed org-3)" > "$W/sim.yaml"
"$MUTUAL" sim --config "$W/sim.yaml" --out "$W/sim" --metrics "$W/sim.jsonl" -q > "$W/sim.out" 2>&1 ||
    { cat "$W/sim.out"; fail "mutual sim"; }
cmp "$W/sim/adapter_model.safetensors" "$W/lb/adapters/round-000002/adapter_model.safetensors" ||
    fail "mutual sim and serve/join give different adapter bits"
bytes() { # bytes FILE.jsonl: "round bytes_in bytes_out" per round
    grep '"round"' "$1" | sed 's/.*"round":\([0-9]*\).*"bytes_in":\([0-9]*\),"bytes_out":\([0-9]*\).*/\1 \2 \3/'
}
bytes "$W/lb/coordinator-1.jsonl" > "$W/serve.bytes"
bytes "$W/sim.jsonl" > "$W/sim.bytes"
[ "$(wc -l < "$W/sim.bytes")" -eq 2 ] || fail "sim wrote $(wc -l < "$W/sim.bytes") rounds, want 2"
cmp "$W/serve.bytes" "$W/sim.bytes" ||
    fail "bytes per round (round in out): serve $(cat "$W/serve.bytes" | tr '\n' ';') sim $(cat "$W/sim.bytes" | tr '\n' ';')"
# mutual plot draws serve's stdout as it draws sim's --metrics
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    "$MUTUAL" plot "$W/lb/coordinator-1.jsonl" --out "$W/serve.png" 2> "$W/plot.err" ||
        fail "mutual plot over serve's lines: $(cat "$W/plot.err")"
    [ "$(head -c 4 "$W/serve.png" | od -An -tx1 | tr -d ' \n')" = 89504e47 ] || fail "no PNG"
fi
write_config "$(seed org-4)" > "$W/sim2.yaml"
"$MUTUAL" sim --config "$W/sim2.yaml" --out "$W/sim2" -q > "$W/sim2.out" 2>&1 || fail "sim 2"
cmp -s "$W/sim2/adapter_model.safetensors" "$W/lb/adapters/round-000002/adapter_model.safetensors" &&
    fail "another org seed gave the same bits"
echo "sim_loopback: ok (same bits and bytes per round as serve/join)"
