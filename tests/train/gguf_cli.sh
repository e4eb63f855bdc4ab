#!/usr/bin/env bash
# gguf_cli.sh MUTUAL REF: `mutual export`'s command line without llama.cpp: --help, usage
# errors (exit 2), refused models (exit 1, one line naming why), nothing left behind by a
# failed export, and the file names it writes (gguf_llama.sh checks their contents).
set -uo pipefail
mutual=$1 ref=$2
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fail() { echo "gguf_cli: $*" >&2; exit 1; }
expect() { # STATUS PATTERN ARGS...: mutual export ARGS exits STATUS, stderr matching PATTERN
  local want=$1 pat=$2
  shift 2
  "$mutual" export "$@" >"$w/out" 2>"$w/err"
  local st=$?
  [ $st -eq "$want" ] || fail "export $*: exit $st, expected $want: $(cat "$w/err")"
  grep -q -- "$pat" "$w/err" "$w/out" || fail "export $*: no '$pat' in: $(cat "$w/err")"
}
expect 0 "usage: mutual export --format gguf" --help
expect 2 "are required" --base "$ref/llama"
expect 2 "'onnx' is not supported" --format onnx --base "$ref/llama" --out "$w/x.gguf"
expect 2 "--merge needs --adapter" --format gguf --base "$ref/llama" --merge --out "$w/x.gguf"
expect 2 "--adapter-out needs --adapter" --format gguf --base "$ref/llama" --out "$w/x.gguf" \
  --adapter-out "$w/y.gguf"
expect 2 "--type must be f32 or f16" --format gguf --base "$ref/llama" --out "$w/x.gguf" --type q8
# GPT-2 is exported (llama.cpp's gpt2); this folder has no tokenizer.json
expect 1 "needs the model's tokenizer" --format gguf --base "$ref/gpt2" --out "$w/x.gguf"
# Llama 3.2's rope_scaling llama3 passes the model check; the folder has no tokenizer.json
expect 1 "needs the model's tokenizer" --format gguf --base "$ref/llama32" --out "$w/x.gguf"
expect 1 "needs the model's tokenizer" --format gguf --base "$ref/llama" --out "$w/x.gguf"
# Gemma 2 and 3 are refused by the model check, before the tokenizer is looked at
expect 1 "Gemma 2 is not exported" --format gguf --base "$ref/gemma2" --out "$w/x.gguf"
expect 1 "Gemma 3 is not exported" --format gguf --base "$ref/gemma3" --out "$w/x.gguf"
[ -z "$(ls -A "$w" | grep -v '^out$\|^err$')" ] || fail "a failed export left files: $(ls "$w")"
echo "gguf_cli: usage errors, refusals and clean failures as documented"
