#!/usr/bin/env bash
# Insecure mode (plaintext gRPC, no peer name checks) is for local tests only: serve refuses
# it unless it listens on a loopback address, join unless the coordinator is on one. The
# refusal is exit 2 with a one-line message naming the address, before anything is bound or
# dialed (192.0.2.1 is TEST-NET-1: a dial there would hang until the timeout).
# usage: nd_insecure_loopback.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
CHECK_TIMEOUT=30
work=$PWD/nd_insecure_loopback
rm -rf "$work" && mkdir -p "$work/nowhere" && cd "$work" || exit 1
# The coordinator reads only the base model's config.json (a tiny GPT-2).
printf '{"model_type": "gpt2", "vocab_size": 64, "n_positions": 32, "n_ctx": 32, "n_embd": 16, "n_layer": 1, "n_head": 2, "n_inner": null, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "tie_word_embeddings": true}\n' >nowhere/config.json
port=$((20000 + RANDOM % 20000))
serve_cfg() { # serve_cfg LISTEN INSECURE
  printf 'federation: {name: x}\nserver: {listen: "%s", insecure: %s}\nmodel: {base: %s/nowhere}\n' \
    "$1" "$2" "$work"
}
org_cfg() { # org_cfg ADDRESS INSECURE
  printf 'org: {name: a, identity_key: %s/nokey}\ncoordinator: {address: "%s"}\nmodel: {base: m}\ndata: {train: t.h5}\ntls: {ca: x, cert: y, key: z, insecure: %s}\nreconnect: {give_up_s: 5}\n' \
    "$work" "$1" "$2"
}
serve_cfg 0.0.0.0:7443 false >any.yaml
serve_cfg 0.0.0.0:7443 true >any-insecure.yaml
serve_cfg "[::]:7443" false >any6.yaml
serve_cfg 10.1.2.3:7443 false >lan.yaml
serve_cfg 127.0.0.1:$port false >lo.yaml
serve_cfg localhost:$port true >localhost-insecure.yaml
org_cfg 192.0.2.1:7443 false >org-far.yaml
org_cfg 192.0.2.1:7443 true >org-far-insecure.yaml
org_cfg coordinator.example.org:7443 false >org-dns.yaml
org_cfg 127.0.0.1:1 false >org-lo.yaml
org_cfg "[::1]:1" true >org-lo6-insecure.yaml

check serve_any_flag 2 "'0\.0\.0\.0:7443' is not a loopback address.*local tests only" -- \
  "$MUTUAL" serve --config any.yaml --insecure
check serve_any_yaml 2 "listen address '0\.0\.0\.0:7443' is not a loopback address.*local tests only" -- \
  "$MUTUAL" serve --config any-insecure.yaml
check serve_any6_flag 2 "'\[::\]:7443' is not a loopback" -- "$MUTUAL" serve --config any6.yaml --insecure
check serve_lan_flag 2 "'10\.1\.2\.3:7443' is not a loopback" -- "$MUTUAL" serve --config lan.yaml --insecure
check join_far_flag 2 "coordinator address '192\.0\.2\.1:7443' is not a loopback.*local tests only" -- \
  "$MUTUAL" join --config org-far.yaml --insecure
check join_far_yaml 2 "coordinator address '192\.0\.2\.1:7443'" -- "$MUTUAL" join --config org-far-insecure.yaml
check join_dns_flag 2 "coordinator\.example\.org:7443' is not a loopback" -- \
  "$MUTUAL" join --config org-dns.yaml --insecure

# Loopback passes: serve starts and listens in plaintext until `timeout` stops it (124).
CHECK_TIMEOUT=4 check serve_lo_flag 124 "listening on 127\.0\.0\.1:$port .*PLAINTEXT" -- \
  "$MUTUAL" serve --config lo.yaml --insecure
CHECK_TIMEOUT=4 check serve_localhost_yaml 124 "listening on localhost:$port .*PLAINTEXT" -- \
  "$MUTUAL" serve --config localhost-insecure.yaml
# join passes the check and fails at the next step on purpose (no identity key or data):
# exit 1 with that error, not the refusal.
not_refused() { # not_refused WANT_PATTERN command...
  local pat=$1 out
  shift
  out=$(timeout "$CHECK_TIMEOUT" "$@" 2>&1)
  local st=$?
  if grep -q "insecure mode refused" <<<"$out" || ! grep -qE -- "$pat" <<<"$out"; then
    echo "$out"
    return 99
  fi
  echo "$out"
  return "$st"
}
check join_lo_flag 1 "nokey|t\\.h5" -- not_refused "nokey|t\\.h5" "$MUTUAL" join --config org-lo.yaml --insecure
check join_lo6_yaml 1 "nokey|t\\.h5" -- not_refused "nokey|t\\.h5" "$MUTUAL" join --config org-lo6-insecure.yaml
check_done
