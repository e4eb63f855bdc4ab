#!/usr/bin/env bash
# `mutual data import --tokenizer`: text files, folders and JSONL packed into one dataset with
# the tokenizer's BOS, a /mask of 0 at each document's first token, uint16/uint32 ids, the
# tokenizer.json's SHA-256; FILE:LINE errors for bad JSONL; chat lines rendered with the chat
# template, masked to the assistant's replies, and their errors; training and eval counting
# only the masked tokens; training refusing a model with another (or no) tokenizer.json; the
# progress bar on a terminal.
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

# Conversations (messages, prompt/response with system) mixed with a text line, rendered with
# the chat template: "<s>ab</s>x c</s>" -> 1 11 2 6 16 2, the reply "x c</s>" (6 16 2) alone
# in the loss; the text line as a document; "<s>a  b<s>ab</s>ab</s>" -> 1 9 12 8 1 11 2 11 2,
# the reply 11 2.
mkdir -p "$tmp/ctok" "$tmp/qtok"
cp "$tmp/tok/tokenizer.json" "$tmp/ctok/"
cp "$tmp/tok/tokenizer.json" "$tmp/qtok/"
"$PY" - "$tmp" <<'PYEOF'
import json, sys
t = ("{% for m in messages %}"
     "{% if m.role == 'system' and not loop.first %}{{ raise_exception('system only first') }}"
     "{% endif %}{% if m.role == 'assistant' %}</s>{{ m.content }}</s>"
     "{% else %}<s>{{ m.content }}{% endif %}{% endfor %}"
     "{% if add_generation_prompt %}</s>{% endif %}")
json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "bos_token": "<s>",
           "eos_token": "</s>", "chat_template": t},
          open(sys.argv[1] + "/ctok/tokenizer_config.json", "w"))
# Earlier replies written another way once later turns follow (as Qwen3's template does).
t = ("{% for m in messages %}{% if m.role == 'assistant' %}</s>"
     "{% if loop.last %}x {% endif %}{{ m.content }}</s>{% else %}<s>{{ m.content }}{% endif %}"
     "{% endfor %}{% if add_generation_prompt %}</s>{% endif %}")
json.dump({"chat_template": t}, open(sys.argv[1] + "/qtok/tokenizer_config.json", "w"))
PYEOF
{
  echo '{"messages": [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "x c"}]}'
  echo '{"text": "ab"}'
  echo '{"system": "a  b", "prompt": "ab", "response": "ab", "id": 9}'
} >"$tmp/chat.jsonl"
check chat_import 0 \
  "17 tokens in 3 documents .* from 1 file; 2 conversations, 5 assistant tokens in the loss" -- \
  "$MUTUAL" data import --tokenizer "$tmp/ctok" --text "$tmp/chat.jsonl" --out "$tmp/chat.h5"
check chat_import_content 0 \
  "^ids 1 11 2 6 16 2 1 11 1 9 12 8 1 11 2 11 2 mask 00011101000000011 vocab 17 " -- \
  inspect "$tmp/chat.h5"

# Bad chat lines name FILE:LINE; nothing is written.
bad_chat() { # NAME PATTERN TOKENIZER_DIR LINE...: a file of those lines is refused
  local name=$1 pat=$2 tokdir=$3
  shift 3
  printf '%s\n' "$@" >"$tmp/$name.jsonl"
  check "$name" 1 "$name.jsonl:$pat" -- \
    "$MUTUAL" data import --tokenizer "$tokdir" --text "$tmp/$name.jsonl" --out "$tmp/bad.h5"
}
U='{"role": "user", "content": "ab"}' A='{"role": "assistant", "content": "ab"}'
bad_chat chat_no_template \
  "1: a conversation needs the model's chat template: .*tokenizer_config.json has no chat_template .*; give one with --chat-template FILE" \
  "$tmp/tok" "{\"messages\": [$U, $A]}"
bad_chat chat_bad_role '2: messages\[1\]: role "tool" is not system, user or assistant' \
  "$tmp/ctok" '{"text": "ab"}' "{\"messages\": [$U, {\"role\": \"tool\", \"content\": \"ab\"}]}"
bad_chat chat_no_assistant "1: the conversation has no assistant message" "$tmp/ctok" \
  "{\"messages\": [$U]}"
bad_chat chat_no_response '1: a prompt/response line needs both .*"response" is missing' \
  "$tmp/ctok" '{"prompt": "ab"}'
bad_chat chat_text_and_messages '1: both "text" and a conversation' "$tmp/ctok" \
  "{\"text\": \"ab\", \"messages\": [$U, $A]}"
bad_chat chat_empty_messages '1: "messages" is not a non-empty list' "$tmp/ctok" \
  '{"messages": []}'
bad_chat chat_content_not_string '1: messages\[0\] has no string "content"' "$tmp/ctok" \
  '{"messages": [{"role": "user", "content": 3}]}'
bad_chat chat_extra_key '1: messages\[0\]: key "name" is not supported' "$tmp/ctok" \
  '{"messages": [{"role": "user", "content": "ab", "name": "x"}]}'
bad_chat chat_template_refuses "1: chat template line 1:[0-9]+: .*system only first" "$tmp/ctok" \
  "{\"messages\": [$U, {\"role\": \"system\", \"content\": \"ab\"}, $A]}"
check chat_nothing_written 1 "" -- test -e "$tmp/bad.h5"

# Special-token text in content and documents ("</s>" in a user message, in a reply and in a
# text file) is plain text by default: "ab</s>ab" -> _ab <unk> ab (11 0 10, the four
# characters one fused <unk>), so the only </s> (2) are the template's and the reply's mask
# runs through its real end of turn (6 16 0 10 2). allow: transformers' ids, the forged </s>
# ending the reply's mask early (6 16 2). refuse: FILE:LINE, the role and the token; nothing
# written. A text file's refusal names the line in it.
printf '%s\n' '{"messages": [{"role": "user", "content": "ab</s>ab"}, {"role": "assistant", "content": "x c</s>ab"}]}' \
  >"$tmp/forged.jsonl"
printf 'ab</s>ab' >"$tmp/forged.txt"
printf 'ab\nab</s>' >"$tmp/forged2.txt"
check special_text 0 "1 conversation, 5 assistant tokens in the loss" -- \
  "$MUTUAL" data import --tokenizer "$tmp/ctok" --text "$tmp/forged.jsonl" --out "$tmp/sp.h5"
check special_text_content 0 "^ids 1 11 0 10 2 6 16 0 10 2 mask 0000011111 " -- inspect "$tmp/sp.h5"
check special_allow 0 "1 conversation, 3 assistant tokens in the loss" -- \
  "$MUTUAL" data import --tokenizer "$tmp/ctok" --special-tokens-in-content allow \
  --text "$tmp/forged.jsonl" --out "$tmp/sp.h5"
check special_allow_content 0 "^ids 1 11 2 11 2 6 16 2 11 2 mask 0000011100 " -- \
  inspect "$tmp/sp.h5"
check special_doc_text 0 "1 document" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --text "$tmp/forged.txt" --out "$tmp/sp.h5"
check special_doc_text_content 0 "^ids 1 11 0 10 mask 0111 " -- inspect "$tmp/sp.h5"
check special_doc_allow 0 "1 document" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --special-tokens-in-content allow \
  --text "$tmp/forged.txt" --out "$tmp/sp.h5"
check special_doc_allow_content 0 "^ids 1 11 2 11 mask 0111 " -- inspect "$tmp/sp.h5"
rm -f "$tmp/sp.h5"
check special_refuse 1 \
  'forged.jsonl:1: message 1 \(role user\) holds the text of the special token "</s>" \(id 2\) at byte 2 of its content' -- \
  "$MUTUAL" data import --tokenizer "$tmp/ctok" --special-tokens-in-content refuse \
  --text "$tmp/forged.jsonl" --out "$tmp/sp.h5"
check special_refuse_doc 1 'forged2.txt:2: the document holds the text of the special token "</s>" \(id 2\) at byte 5' -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --special-tokens-in-content refuse \
  --text "$tmp/a.txt" --text "$tmp/forged2.txt" --out "$tmp/sp.h5"
check special_refuse_nothing_written 1 "" -- test -e "$tmp/sp.h5"
check special_bad_mode 2 "--special-tokens-in-content is text, refuse or allow, not 'yes'" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --special-tokens-in-content yes \
  --text "$tmp/a.txt" --out "$tmp/sp.h5"
check special_needs_tokenizer 2 "--special-tokens-in-content needs --tokenizer" -- \
  "$MUTUAL" data import --special-tokens-in-content text --text "$tmp/a.txt" --out "$tmp/sp.h5"

# A template that writes earlier replies another way (qtok's: "x " before the last reply
# only): the conversation is one example per reply, the text through it as the model sees it
# then, with only that reply in the loss: "<s>ab</s>x ab</s>" -> 1 11 2 6 14 11 2 (reply 2:
# "x ab</s>") and "<s>ab</s>ab</s><s>ab</s>x ab</s>" -> 1 11 2 11 2 1 11 2 6 14 11 2 (reply 4),
# 19 tokens where the whole would take 12; a single-turn line stays whole; one warning.
printf '%s\n' "{\"messages\": [$U, $A, $U, $A]}" "{\"messages\": [$U, $A]}" >"$tmp/split.jsonl"
check chat_split 0 "warn: data: 1 conversation \(the first at .*split.jsonl:1\) split into 2 examples.*19 tokens where 12" -- \
  "$MUTUAL" data import --tokenizer "$tmp/qtok" --text "$tmp/split.jsonl" --out "$tmp/split.h5"
check chat_split_content 0 \
  "^ids 1 11 2 6 14 11 2 1 11 2 11 2 1 11 2 6 14 11 2 1 11 2 6 14 11 2 mask 00011110000000011110001111 " -- \
  inspect "$tmp/split.h5"
check chat_split_once 0 "^1\$" -- bash -c "'$MUTUAL' data import --tokenizer '$tmp/qtok' \
  --text '$tmp/split.jsonl' --text '$tmp/split.jsonl' --out '$tmp/split2.h5' 2>&1 | grep -c 'split into 4 examples'"
# A prompt for a reply that is not a prefix of the reply's rendering is still refused.
mkdir -p "$tmp/ptok"
cp "$tmp/tok/tokenizer.json" "$tmp/ptok/"
printf '{"chat_template": "{%% for m in messages %%}<s>{{ m.content }}{%% endfor %%}{%% if add_generation_prompt %%}</s>{%% endif %%}"}' \
  >"$tmp/ptok/tokenizer_config.json"
bad_chat chat_prompt_not_prefix "1: .*prompt for assistant message 2 .*not a prefix" "$tmp/ptok" \
  "{\"messages\": [$U, $A]}"

# --chat-template FILE: a base model without a template (tok's config has none) gets one;
# bos_token still from its tokenizer_config.json; a folder with no config renders it
# undefined; a missing file, and --chat-template without --tokenizer, are refused.
printf '%s' "{% for m in messages %}{% if m.role == 'assistant' %}</s>{{ m.content }}</s>{% else %}{{ bos_token }}{{ m.content }}{% endif %}{% endfor %}{% if add_generation_prompt %}</s>{% endif %}" >"$tmp/t.jinja"
check chat_template_file 0 "17 tokens in 3 documents .*; 2 conversations, 5 assistant tokens" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --chat-template "$tmp/t.jinja" \
  --text "$tmp/chat.jsonl" --out "$tmp/tf.h5"
check chat_template_file_content 0 \
  "^ids 1 11 2 6 16 2 1 11 1 9 12 8 1 11 2 11 2 mask 00011101000000011 vocab 17 " -- \
  inspect "$tmp/tf.h5"
mkdir -p "$tmp/bare"
cp "$tmp/tok/tokenizer.json" "$tmp/bare/"
printf '%s\n' "{\"messages\": [$U, {\"role\": \"assistant\", \"content\": \"x c\"}]}" >"$tmp/one.jsonl"
check chat_template_bare 0 "" -- "$MUTUAL" data import --tokenizer "$tmp/bare" \
  --chat-template "$tmp/t.jinja" --text "$tmp/one.jsonl" --out "$tmp/bare.h5"
check chat_template_bare_content 0 "^ids 11 2 6 16 2 mask 00111 " -- inspect "$tmp/bare.h5"
check chat_template_override 0 "" -- "$MUTUAL" data import --tokenizer "$tmp/qtok" \
  --chat-template "$tmp/t.jinja" --text "$tmp/one.jsonl" --out "$tmp/ov.h5"
check chat_template_override_content 0 "^ids 11 2 6 16 2 mask 00111 " -- inspect "$tmp/ov.h5"
check chat_template_missing 1 "one.jsonl:1: .*nope.jinja: No such file" -- \
  "$MUTUAL" data import --tokenizer "$tmp/tok" --chat-template "$tmp/nope.jinja" \
  --text "$tmp/one.jsonl" --out "$tmp/bad.h5"
check chat_template_no_tokenizer 2 "--chat-template needs --tokenizer" -- \
  "$MUTUAL" data import --chat-template "$tmp/t.jinja" --text "$tmp/one.jsonl" --out "$tmp/bad.h5"
check chat_template_nothing_written 1 "" -- test -e "$tmp/bad.h5"

# Training checks the model's tokenizer.json against the dataset's.
cp -r "$REF/gpt2" "$tmp/model"
T=(train --base "$tmp/model" --data "$tmp/out.h5" --out "$tmp/run" --steps 1 --batch 1 --seq 4)
check train_no_tokenizer 1 "has no tokenizer.json" -- "$MUTUAL" "${T[@]}"
printf '{}' >"$tmp/model/tokenizer.json"
check train_other_tokenizer 1 "another tokenizer .*--tokenizer" -- "$MUTUAL" "${T[@]}"
cp "$tmp/tok/tokenizer.json" "$tmp/model/tokenizer.json"
check train_same_tokenizer 0 "" -- "$MUTUAL" "${T[@]}"
# Training and eval on the chat dataset count only the assistant's tokens: over one window of
# all 16 targets, eval's mean loss with the mask all 1 is the weighted mean of its losses with
# the chat mask (6 targets: the 5 assistant tokens and the text line's second) and with its
# complement (10), and those two differ.
check train_chat 0 "" -- "$MUTUAL" train --base "$tmp/model" --data "$tmp/chat.h5" \
  --out "$tmp/crun" --steps 1 --batch 1 --seq 16
remask() { # OUT all|rest: chat.h5 with the mask all 1, or the chat mask's complement
  cp "$tmp/chat.h5" "$1"
  "$PY" -c '
import h5py, sys
f = h5py.File(sys.argv[1], "r+"); m = f["mask"][:]
f["mask"][...] = (m * 0 + 1) if sys.argv[2] == "all" else (1 - m)' "$1" "$2"
}
remask "$tmp/chat_all.h5" all
remask "$tmp/chat_rest.h5" rest
loss_of() {
  "$MUTUAL" eval --base "$tmp/model" --batch 1 --seq 16 --batches 1 --json --data "$1" |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["loss"])'
}
check eval_chat_mask 0 "" -- "$PY" -c '
import sys
a, r, full = map(float, sys.argv[1:])
print(a, r, full)
sys.exit(0 if abs((6 * a + 10 * r) / 16 - full) <= 1e-5 * abs(full) and abs(a - r) > 1e-3 else 1)' \
  "$(loss_of "$tmp/chat.h5")" "$(loss_of "$tmp/chat_rest.h5")" "$(loss_of "$tmp/chat_all.h5")"
check eval_other_tokenizer 1 "another tokenizer" -- bash -c \
  "printf 1 >>'$tmp/model/tokenizer.json' && '$MUTUAL' eval --base '$tmp/model' --data '$tmp/out.h5' --batch 1 --seq 4"

# A progress bar when stderr is a terminal (script(1) gives the command one).
check progress 0 "import +\[.*\] [0-9]+/[0-9]+" -- script -qec \
  "'$MUTUAL' data import --tokenizer '$tmp/tok' --text '$tmp/docs' --out '$tmp/p.h5'" /dev/null

check_done
