#!/usr/bin/env bash
# `mutual data import`, `mutual train` and `mutual eval` end to end: losses equal PyTorch's
# through the CLI, adapters round-trip, and every bad input is one line and exit 1 (runtime)
# or 2 (usage). usage: train_cli.sh MUTUAL REF_DIR
set -u
MUTUAL=$1
REF=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"


# --help names every option with its default (or says it is required)
help_entry() { # help_entry CMD OPT: the option's line and its continuation lines
  "$MUTUAL" "$1" --help | awk -v o="  --$2 " 'index($0, o) == 1 {f = 1; print; next}
    f && /^                  / {print; next} {f = 0}' | tr '\n' ' '
}
check help_train 0 "usage: mutual train" -- "$MUTUAL" train --help
for opt in base data out adapter-init targets rank alpha freeze-a steps batch seq lr optimizer \
  weight-decay grad-clip seed log-jsonl threads resume force checkpointing bf16; do
  check "help_train_$opt" 0 "^  --$opt .*(default|required)" -- help_entry train "$opt"
done
for opt in base adapter data batch seq batches json; do
  check "help_eval_$opt" 0 "^  --$opt .*(default|required)" -- help_entry eval "$opt"
done
check help_data_bytes 0 "byte-level" -- "$MUTUAL" data --help

# usage errors: exit 2
G=(--base "$REF/gpt2" --data "$REF/gpt2_data.h5")
check usage_no_out 2 "--out are required" -- "$MUTUAL" train "${G[@]}"
check usage_rank 2 "--rank wants a whole number" -- "$MUTUAL" train "${G[@]}" --out "$tmp/x" --rank 0
check usage_optimizer 2 "adamw or sgd" -- "$MUTUAL" train "${G[@]}" --out "$tmp/x" --optimizer adam
check usage_clip 2 "--grad-clip wants a positive" -- "$MUTUAL" train "${G[@]}" --out "$tmp/x" --grad-clip 0
check usage_unknown 2 "Try 'mutual train --help'" -- "$MUTUAL" train "${G[@]}" --out "$tmp/x" --bogus
check usage_extra 2 "unexpected argument" -- "$MUTUAL" train "${G[@]}" --out "$tmp/x" extra
check usage_eval_batch 2 "--batch and --seq are required" -- "$MUTUAL" eval "${G[@]}" --seq 16
check usage_data_verb 2 "expected 'import" -- "$MUTUAL" data export --text a --out b
check usage_data_out 2 "--text and --out are required" -- "$MUTUAL" data import --text a

# the C engine matches PyTorch through the CLI: reference adapter, data order, optimizers
common=(--steps 10 --batch 2 --seq 16 --threads 1 -q)
for m in gpt2 llama; do
  A=(--base "$REF/$m" --data "$REF/${m}_data.h5" --adapter-init "$REF/${m}_adapter")
  check "train_${m}_adamw" 0 "adapter written" -- "$MUTUAL" train "${A[@]}" "${common[@]}" \
    --out "$tmp/${m}_adamw" --lr 0.01 --weight-decay 0.1 --log-jsonl "$tmp/${m}_adamw.jsonl"
  check "torch_${m}_adamw" 0 "within" -- "$PY" "$HERE/compare_losses.py" \
    "$tmp/${m}_adamw.jsonl" "$REF/${m}_ref.safetensors" losses.adamw 1e-4
  check "train_${m}_sgd" 0 "" -- "$MUTUAL" train "${A[@]}" "${common[@]}" --out "$tmp/${m}_sgd" \
    --optimizer sgd --lr 0.1 --log-jsonl "$tmp/${m}_sgd.jsonl"
  check "torch_${m}_sgd" 0 "within" -- "$PY" "$HERE/compare_losses.py" \
    "$tmp/${m}_sgd.jsonl" "$REF/${m}_ref.safetensors" losses.sgd 1e-4
  check "train_${m}_freeze_a" 0 "" -- "$MUTUAL" train "${A[@]}" "${common[@]}" --freeze-a \
    --out "$tmp/${m}_fa" --lr 0.01 --weight-decay 0.1 --log-jsonl "$tmp/${m}_fa.jsonl"
  check "torch_${m}_freeze_a" 0 "within" -- "$PY" "$HERE/compare_losses.py" \
    "$tmp/${m}_fa.jsonl" "$REF/${m}_ref.safetensors" losses.adamw_freeze_a 1e-4
  check "train_${m}_clip" 0 "" -- "$MUTUAL" train "${A[@]}" "${common[@]}" --optimizer sgd \
    --lr 0.1 --grad-clip 0.05 --out "$tmp/${m}_clip" --log-jsonl "$tmp/${m}_clip.jsonl"
  check "torch_${m}_clip" 0 "within" -- "$PY" "$HERE/compare_losses.py" \
    "$tmp/${m}_clip.jsonl" "$REF/${m}_ref.safetensors" losses.sgd_clip 1e-4
done
check state_written 0 "" -- test -s "$tmp/gpt2_adamw/training_state.h5"

# --checkpointing reaches the engine (its state, logged with -v) and gives the same losses
# and adapter bit for bit as the run above without it
A=(--base "$REF/llama" --data "$REF/llama_data.h5" --adapter-init "$REF/llama_adapter")
check train_ckpt_on 0 "activation checkpointing on \(2 layers\)" -- "$MUTUAL" train "${A[@]}" \
  --steps 10 --batch 2 --seq 16 --threads 1 -v --checkpointing --out "$tmp/llama_ckpt" \
  --lr 0.01 --weight-decay 0.1 --log-jsonl "$tmp/llama_ckpt.jsonl"
losses() { sed 's/, "tokens_per_s".*//' "$1"; }
check train_ckpt_losses 0 "" -- cmp <(losses "$tmp/llama_adamw.jsonl") <(losses "$tmp/llama_ckpt.jsonl")
check train_ckpt_adapter 0 "" -- cmp "$tmp/llama_adamw/adapter_model.safetensors" \
  "$tmp/llama_ckpt/adapter_model.safetensors"
check train_ckpt_off_quiet 1 "" -- grep -q "checkpointing on" <("$MUTUAL" train "${A[@]}" \
  --steps 1 --batch 2 --seq 16 --threads 1 -v --out "$tmp/llama_nockpt" 2>&1)
# --bf16 reaches the engine (logged with -v) and follows torch's bf16-base reference
# (make_bf16_reference.py: the same arithmetic up to fp32 summation order) over 10 AdamW
# steps within 2e-3; the fp32 reference's losses are further away than that
check train_bf16 0 "bf16 base \(" -- "$MUTUAL" train "${A[@]}" --steps 10 --batch 2 --seq 16 \
  --threads 1 -v --bf16 --out "$tmp/llama_bf16" --lr 0.01 --weight-decay 0.1 \
  --log-jsonl "$tmp/llama_bf16.jsonl"
check torch_llama_bf16 0 "within" -- "$PY" "$HERE/compare_losses.py" \
  "$tmp/llama_bf16.jsonl" "$REF/llama_bf16_ref.safetensors" losses.adamw 2e-3
check train_bf16_not_fp32 1 "" -- "$PY" "$HERE/compare_losses.py" \
  "$tmp/llama_bf16.jsonl" "$REF/llama_ref.safetensors" losses.adamw 1e-4
check no_progress_bar_off_tty 1 "" -- grep -q $'\r' <("$MUTUAL" train "${A[@]}" --steps 2 \
  --batch 2 --seq 16 --out "$tmp/bar" 2>&1)

# from scratch (B = 0): training lowers the loss eval reports on the same windows
L=(--base "$REF/llama" --data "$REF/llama_data.h5")
check eval_base 0 '^\{"loss": [0-9.]+, "perplexity": [0-9.]+, "batches": 5, "tokens": 160\}$' -- \
  "$MUTUAL" eval "${L[@]}" --batch 2 --seq 16 --json
check train_scratch 0 "adapter written" -- "$MUTUAL" train "${L[@]}" --out "$tmp/scratch" \
  --targets q_proj,v_proj,down_proj --rank 2 --alpha 4 --steps 40 --batch 2 --seq 16 \
  --lr 0.01 --seed 3 -q
check scratch_config 0 '"r": 2' -- cat "$tmp/scratch/adapter_config.json"
check scratch_targets 0 '"down_proj"' -- cat "$tmp/scratch/adapter_config.json"
before=$("$MUTUAL" eval "${L[@]}" --batch 2 --seq 16 --json | sed 's/.*"loss": \([0-9.e-]*\),.*/\1/')
after=$("$MUTUAL" eval "${L[@]}" --adapter "$tmp/scratch" --batch 2 --seq 16 --json |
  sed 's/.*"loss": \([0-9.e-]*\),.*/\1/')
check eval_loss_drops 0 "" -- "$PY" -c "import sys; sys.exit(not float('$after') < float('$before') - 0.05)"
check eval_text 0 "^loss [0-9.]+  perplexity [0-9.]+  \(3 batches x 2 x 16 = 96 tokens\)" -- \
  "$MUTUAL" eval "${L[@]}" --adapter "$tmp/scratch" --batch 2 --seq 16 --batches 3
# the trained adapter starts a second run (its r and targets win over the command line)
check train_resume_from_adapter 0 "adapter written" -- "$MUTUAL" train "${L[@]}" \
  --adapter-init "$tmp/scratch" --rank 16 --out "$tmp/again" --steps 1 --batch 2 --seq 16 -q
check again_rank 0 '"r": 2' -- cat "$tmp/again/adapter_config.json"

# data import: byte-level tokens into a byte-vocabulary model
printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 20) >"$tmp/text.txt"
check data_import 0 "900 tokens \(byte-level, vocab_size 256\)" -- \
  "$MUTUAL" data import --text "$tmp/text.txt" --out "$tmp/text.h5"
check tiny_model 0 "" -- "$PY" "$HERE/tiny_model.py" "$tmp/bytes"
check train_bytes 0 "adapter written" -- "$MUTUAL" train --base "$tmp/bytes" --data "$tmp/text.h5" \
  --out "$tmp/bytes_ad" --steps 3 --batch 2 --seq 32 --targets c_attn,c_proj,c_fc -q
check eval_bytes 0 '"batches": 13' -- "$MUTUAL" eval --base "$tmp/bytes" --adapter "$tmp/bytes_ad" \
  --data "$tmp/text.h5" --batch 2 --seq 32 --json

# bad inputs: one line naming the file, exit 1
check bad_missing_text 1 "nope.txt: No such file" -- "$MUTUAL" data import --text "$tmp/nope.txt" --out "$tmp/n.h5"
check bad_vocab 1 "text.h5: vocab_size 256 exceeds the model's 64" -- \
  "$MUTUAL" train --base "$REF/gpt2" --data "$tmp/text.h5" --out "$tmp/v" --steps 1
check bad_base 1 "nobase/config.json: No such file" -- \
  "$MUTUAL" train --base "$tmp/nobase" --data "$tmp/text.h5" --out "$tmp/v"
mkdir -p "$tmp/bert" && echo '{"model_type": "bert"}' >"$tmp/bert/config.json"
check bad_model_type 1 "config.json: model_type 'bert' is not supported" -- \
  "$MUTUAL" eval --base "$tmp/bert" --data "$tmp/text.h5" --batch 1 --seq 8
check bad_no_tokens 1 "training_state.h5: no dataset /tokens" -- "$MUTUAL" eval \
  --base "$REF/gpt2" --data "$tmp/gpt2_adamw/training_state.h5" --batch 1 --seq 8
check bad_not_hdf5 1 "not an HDF5 file" -- "$MUTUAL" eval --base "$REF/gpt2" \
  --data "$REF/gpt2/model.safetensors" --batch 1 --seq 8
mkdir -p "$tmp/trunc" && cp "$REF/gpt2/config.json" "$tmp/trunc/" &&
  head -c 5000 "$REF/gpt2/model.safetensors" >"$tmp/trunc/model.safetensors"
check bad_truncated 1 "trunc/model.safetensors: tensor '[^']+': data_offsets .* run past the end" -- \
  "$MUTUAL" eval --base "$tmp/trunc" --data "$REF/gpt2_data.h5" --batch 1 --seq 8
printf 'too short' >"$tmp/short.txt" && "$MUTUAL" data import --text "$tmp/short.txt" --out "$tmp/short.h5" -q
check bad_short_data 1 "short.h5: 9 tokens, too few for sequence length 16" -- "$MUTUAL" eval \
  --base "$tmp/bytes" --data "$tmp/short.h5" --batch 1 --seq 16 --batches 1
check eval_seq_too_long 2 "--seq 200 is longer than the context of the model in .*gpt2: 32 positions" -- \
  "$MUTUAL" eval --base "$REF/gpt2" --data "$REF/gpt2_data.h5" --batch 1 --seq 200 --batches 1
check bad_adapter 1 "adapter_config.json: No such file" -- "$MUTUAL" eval --base "$REF/gpt2" \
  --adapter "$tmp/none" --data "$REF/gpt2_data.h5" --batch 1 --seq 8
check bad_adapter_model 1 "llama_adapter/adapter_config.json: target_modules: .*'q_proj'" -- "$MUTUAL" eval \
  --base "$REF/gpt2" --adapter "$REF/llama_adapter" --data "$REF/gpt2_data.h5" --batch 1 --seq 8

check_done
