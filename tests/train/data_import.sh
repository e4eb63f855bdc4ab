#!/usr/bin/env bash
# `mutual data import --tokenizer`: text files, folders and JSONL packed into one dataset with
# the tokenizer's BOS, a /mask of 0 at each document's first token, uint16/uint32 ids, the
# tokenizer.json's SHA-256; FILE:LINE errors for bad JSONL; training refusing a model with
# another (or no) tokenizer.json; the progress bar on a terminal.
# usage: data_import.sh MUTUAL REF_DIR (REF_DIR: tests/train/ref, for a tiny GPT-2 model)
set -u
MUTUAL=$1
REF=$2
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

# A Llama-2-shaped tokenizer (the one of test_tok_sp.c): <s> = 1, "ab" -> _ab = 11,
# "a  b" -> _a __ b = 9 12 8, "x c" -> _ x_c = 6 16, "Z" -> _ <unk> = 6 0.
mkdir -p "$tmp/tok" "$tmp/docs"
"$PY" - "$tmp/tok" <<'PYEOF'
import json, sys
S = "\u2581"
vocab = ["<unk>", "<s>", "</s>", "<0x41>", "<0xC3>", "<0xA9>", S, "a", "b", S + "a", "ab",
         S + "ab", S + S, "c", "x", "x" + S, "x" + S + "c"]
merges = [[S, "a"], ["a", "b"], [S + "a", "b"], [S, S], ["x", S], ["x" + S, "c"]]
tok = {"normalizer": {"type": "Sequence", "normalizers": [
           {"type": "Prepend", "prepend": S},
           {"type": "Replace", "pattern": {"String": " "}, "content": S}]},
       "pre_tokenizer": None,
       "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab)}, "merges": merges,
                 "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True},
       "decoder": None,
       "added_tokens": [{"id": i, "content": t, "special": True} for i, t in
                        enumerate(["<unk>", "<s>", "</s>"])]}
json.dump(tok, open(sys.argv[1] + "/tokenizer.json", "w"))
json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "bos_token": "<s>",
           "eos_token": "</s>"}, open(sys.argv[1] + "/tokenizer_config.json", "w"))
PYEOF
printf 'ab x c' >"$tmp/a.txt"
printf 'a  b' >"$tmp/docs/b.txt"
printf '{"text": "ab"}\n\n{"text": "Z", "id": 7}\n' >"$tmp/docs/c.jsonl"

check import_tok 0 "13 tokens in 4 documents \(tokenizer .*, vocab_size 17\) from 3 files" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --text "$tmp/a.txt" --text "$tmp/docs" \
  --out "$tmp/out.h5"
sha=$(sha256sum "$tmp/tok/tokenizer.json" | cut -d' ' -f1)
inspect() { # the file's ids, mask, vocab, stored type and tokenizer hash
  "$PY" -c '
import h5py, sys
f = h5py.File(sys.argv[1], "r"); t = f["tokens"]
print("ids", " ".join(map(str, t[:])), "mask", "".join(map(str, f["mask"][:])),
      "vocab", int(t.attrs["vocab_size"]), "type", t.dtype,
      "sha", t.attrs["tokenizer_sha256"].decode())' "$1"
}
check import_tok_content 0 \
  "^ids 1 11 6 16 1 9 12 8 1 11 1 6 0 mask 0111011101011 vocab 17 type uint16 sha $sha\$" -- \
  inspect "$tmp/out.h5"

# Bad JSONL names the file and line; nothing is written.
printf '{"text": "ab"}\n{"txt": 1}\n' >"$tmp/bad.jsonl"
check jsonl_no_text 1 "bad.jsonl:2: no string \"text\"" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --text "$tmp/bad.jsonl" --out "$tmp/bad.h5"
printf '{"text": "ab"}\n\n[1, 2]\n' >"$tmp/arr.jsonl"
check jsonl_not_object 1 "arr.jsonl:3: not a JSON object" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --text "$tmp/arr.jsonl" --out "$tmp/bad.h5"
printf '{"text": "ab"\n' >"$tmp/cut.jsonl"
check jsonl_not_json 1 "cut.jsonl:1: not JSON" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --text "$tmp/cut.jsonl" --out "$tmp/bad.h5"
check jsonl_nothing_written 1 "" -- test -e "$tmp/bad.h5"
check no_tokenizer 1 "nope: No such file" -- \
  "$MUTUAL" data import --tokenizer "$tmp/nope" --text "$tmp/a.txt" --out "$tmp/bad.h5"

# Training checks the model's tokenizer.json against the dataset's.
cp -r "$REF/gpt2" "$tmp/model"
T=(train --base "$tmp/model" --data "$tmp/out.h5" --out "$tmp/run" --steps 1 --batch 1 --seq 4)
check train_no_tokenizer 1 "has no tokenizer.json" -- "$MUTUAL" "${T[@]}"
printf '{}' >"$tmp/model/tokenizer.json"
check train_other_tokenizer 1 "another tokenizer .*--tokenizer" -- "$MUTUAL" "${T[@]}"
cp "$tmp/tok/tokenizer.json" "$tmp/model/tokenizer.json"
check train_same_tokenizer 0 "" -- "$MUTUAL" "${T[@]}"
check eval_other_tokenizer 1 "another tokenizer" -- bash -c \
  "printf 1 >>'$tmp/model/tokenizer.json' && '$MUTUAL' eval --base '$tmp/model' --data '$tmp/out.h5' --batch 1 --seq 4"

# A progress bar when stderr is a terminal (script(1) gives the command one).
check progress 0 "import +\[.*\] [0-9]+/[0-9]+" -- script -qec \
  "'$MUTUAL' data import --tokenizer '$tmp/tok' --text '$tmp/docs' --out '$tmp/p.h5'" /dev/null

check_done
