#!/usr/bin/env bash
# `mutual train --resume` continues a run bit for bit; a rerun does not silently replace an
# adapter; --steps 0 and a --seq beyond the model's context are usage errors; NaN weights in
# a starting adapter are refused by name, and a NaN loss only advises "lower --lr" when this
# run's updates can be the cause. usage: train_resume.sh MUTUAL REF_DIR
set -u
MUTUAL=$1
REF=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

losses() { sed 's/, "tokens_per_s".*//' "$1"; } # the log without the timing
same_run() { # same_run A B: same adapter bytes, same logged losses
  cmp "$1/adapter_model.safetensors" "$2/adapter_model.safetensors" &&
    cmp "$1/adapter_config.json" "$2/adapter_config.json" &&
    diff <(losses "$1.jsonl") <(losses "$2.jsonl")
}

# AdamW with weight decay and clipping, LoRA from scratch: 6 steps == 2 + 2 + 2
G=(--base "$REF/gpt2" --data "$REF/gpt2_data.h5")
A=("${G[@]}" --batch 2 --seq 16 --lr 0.01 --weight-decay 0.1 --grad-clip 0.5 --seed 3 --threads 1 -q)
R=("${G[@]}" --resume --threads 1 -q)
check full_6 0 "adapter written \(6 steps\)" -- "$MUTUAL" train "${A[@]}" --steps 6 --out "$tmp/a6" --log-jsonl "$tmp/a6.jsonl"
check part_2 0 "adapter written \(2 steps\)" -- "$MUTUAL" train "${A[@]}" --steps 2 --out "$tmp/ar" --log-jsonl "$tmp/ar.jsonl"
check resume_4 0 "adapter written \(4 steps\)" -- "$MUTUAL" train "${R[@]}" --steps 4 --out "$tmp/ar" --log-jsonl "$tmp/ar.jsonl"
check resume_6 0 "adapter written \(6 steps\)" -- "$MUTUAL" train "${R[@]}" --steps 6 --out "$tmp/ar" --log-jsonl "$tmp/ar.jsonl"
check resume_bit_for_bit 0 "" -- same_run "$tmp/a6" "$tmp/ar"
check resume_no_leftovers 0 "^$" -- find "$tmp/ar" -name '*.tmp' -o -name .partial
# SGD with momentum from a PEFT adapter with frozen A (Llama): 5 steps == 3 + 2
L=(--base "$REF/llama" --data "$REF/llama_data.h5")
S=("${L[@]}" --adapter-init "$REF/llama_adapter" --freeze-a --optimizer sgd --lr 0.1 --batch 2 --seq 16 --threads 1 -q)
check sgd_full 0 "" -- "$MUTUAL" train "${S[@]}" --steps 5 --out "$tmp/s5" --log-jsonl "$tmp/s5.jsonl"
check sgd_part 0 "" -- "$MUTUAL" train "${S[@]}" --steps 3 --out "$tmp/sr" --log-jsonl "$tmp/sr.jsonl"
check sgd_resume 0 "adapter written \(5 steps\)" -- "$MUTUAL" train "${L[@]}" --resume --threads 1 -q \
  --steps 5 --out "$tmp/sr" --log-jsonl "$tmp/sr.jsonl"
check sgd_bit_for_bit 0 "" -- same_run "$tmp/s5" "$tmp/sr"

# --resume: nothing to resume, nothing left to do, options that the state fixes: exit 2
check resume_none 2 "empty/training_state.h5: no training state to resume" -- \
  "$MUTUAL" train "${R[@]}" --steps 4 --out "$tmp/empty"
check resume_done 2 "already trained 6 steps; --steps 6 adds none" -- \
  "$MUTUAL" train "${R[@]}" --steps 6 --out "$tmp/ar"
check resume_rank 2 "--resume continues the run saved in .*ar/training_state.h5" -- \
  "$MUTUAL" train "${R[@]}" --steps 8 --out "$tmp/ar" --rank 4
check resume_lr 0 "adapter written \(7 steps\)" -- "$MUTUAL" train "${R[@]}" --steps 7 --out "$tmp/ar" --lr 0.001

# a rerun does not replace an adapter silently: exit 2 and the files untouched; --force does
cp "$tmp/a6/adapter_model.safetensors" "$tmp/a6_keep.safetensors"
check rerun_refused 2 "a6 already holds a trained adapter \(adapter_model.safetensors\): --resume .* --force" -- \
  "$MUTUAL" train "${A[@]}" --steps 3 --out "$tmp/a6"
check rerun_untouched 0 "" -- cmp "$tmp/a6/adapter_model.safetensors" "$tmp/a6_keep.safetensors"
check rerun_force 0 "adapter written \(3 steps\)" -- "$MUTUAL" train "${A[@]}" --steps 3 --out "$tmp/a6" --force

# usage errors
check steps_zero 2 "--steps wants a whole number from 1" -- "$MUTUAL" train "${A[@]}" --steps 0 --out "$tmp/z"
check steps_zero_nothing 1 "" -- test -e "$tmp/z"
check seq_too_long 2 "--seq 40 is longer than the context of the model in .*gpt2: 32 positions" -- \
  "$MUTUAL" train "${G[@]}" --steps 1 --batch 1 --seq 40 --out "$tmp/long"

# NaN in the adapter a run starts from: refused, naming the tensor (train and eval)
T=base_model.model.transformer.h.0.attn.c_proj.lora_B.weight
mkdir "$tmp/nan_ad" && cp "$REF/gpt2_adapter/adapter_config.json" "$tmp/nan_ad/"
check poke_nan 0 "" -- "$PY" "$HERE/poke_safetensors.py" "$REF/gpt2_adapter/adapter_model.safetensors" \
  "$tmp/nan_ad/adapter_model.safetensors" "$T" nan
check nan_adapter_init 1 "nan_ad/adapter_model.safetensors: LoRA tensor '$T' has a non-finite value \(nan\)" -- \
  "$MUTUAL" train "${G[@]}" --adapter-init "$tmp/nan_ad" --steps 1 --batch 2 --seq 16 --out "$tmp/n1"
check nan_adapter_eval 1 "LoRA tensor '$T' has a non-finite value" -- \
  "$MUTUAL" eval "${G[@]}" --adapter "$tmp/nan_ad" --batch 2 --seq 16

# finite weights that overflow (a huge final LayerNorm gain and embedding): NaN at the first
# step is the model's doing, not the learning rate's
mkdir "$tmp/huge" && cp "$REF/gpt2/config.json" "$tmp/huge/"
check poke_huge 0 "" -- "$PY" "$HERE/poke_safetensors.py" "$REF/gpt2/model.safetensors" \
  "$tmp/huge/a.safetensors" transformer.ln_f.weight scale=1e30
check poke_huge2 0 "" -- "$PY" "$HERE/poke_safetensors.py" "$tmp/huge/a.safetensors" \
  "$tmp/huge/model.safetensors" transformer.wte.weight scale=1e10
rm -f "$tmp/huge/a.safetensors"
check nan_first_step 1 "loss is NaN at step 0, the first of this run, although every weight is finite: the model overflows" -- \
  "$MUTUAL" train --base "$tmp/huge" --data "$REF/gpt2_data.h5" --steps 2 --batch 2 --seq 16 --out "$tmp/h"
check nan_first_step_no_lr 1 "" -- grep -q -- "--lr" <("$MUTUAL" train --base "$tmp/huge" \
  --data "$REF/gpt2_data.h5" --steps 2 --batch 2 --seq 16 --out "$tmp/h" 2>&1)

check_done
