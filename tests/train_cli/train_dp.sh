#!/usr/bin/env bash
# `mutual train --dp`: every --dp option documented and validated (exit 2 on a bad value),
# a DP run prints the epsilon it spent, reproduces from --dp-seed and differs without it.
# usage: train_dp.sh MUTUAL REF_DIR
set -u
MUTUAL=$1
REF=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

help_entry() { # help_entry OPT: the option's line and its continuation lines
  "$MUTUAL" train --help | awk -v o="  --$1 " 'index($0, o) == 1 {f = 1; print; next}
    f && /^                  / {print; next} {f = 0}' | tr '\n' ' '
}
for opt in dp dp-clip dp-noise dp-sampling dp-seed dp-delta; do
  check "help_$opt" 0 "^  --$opt .*default" -- help_entry "$opt"
done

G=(--base "$REF/gpt2" --data "$REF/gpt2_data.h5" --out "$tmp/x" --steps 2 --batch 2 --seq 16
  --threads 1 -q)
check clip_zero 2 "--dp-clip wants a positive number" -- "$MUTUAL" train "${G[@]}" --dp --dp-clip 0
check clip_negative 2 "--dp-clip wants a number" -- "$MUTUAL" train "${G[@]}" --dp --dp-clip -1
check clip_word 2 "--dp-clip wants a number" -- "$MUTUAL" train "${G[@]}" --dp --dp-clip abc
check clip_inf 2 "--dp-clip wants a number" -- "$MUTUAL" train "${G[@]}" --dp --dp-clip inf
check noise_negative 2 "--dp-noise wants a number" -- "$MUTUAL" train "${G[@]}" --dp --dp-noise -0.5
check noise_nan 2 "--dp-noise wants a number" -- "$MUTUAL" train "${G[@]}" --dp --dp-noise nan
check sampling_bad 2 "--dp-sampling wants poisson or fixed" -- "$MUTUAL" train "${G[@]}" --dp --dp-sampling uniform
check seed_negative 2 "--dp-seed wants a whole number" -- "$MUTUAL" train "${G[@]}" --dp --dp-seed -1
check delta_zero 2 "--dp-delta wants a number in \(0, 1\)" -- "$MUTUAL" train "${G[@]}" --dp --dp-delta 0
check delta_one 2 "--dp-delta wants a number in \(0, 1\)" -- "$MUTUAL" train "${G[@]}" --dp --dp-delta 1
check delta_big 2 "--dp-delta wants a number" -- "$MUTUAL" train "${G[@]}" --dp --dp-delta 2
check without_dp 2 "need --dp" -- "$MUTUAL" train "${G[@]}" --dp-noise 1.1
check with_resume 2 "--dp cannot --resume" -- "$MUTUAL" train "${G[@]}" --dp --resume
check batch_too_big 2 "--batch 50 is more than the 11 records" -- "$MUTUAL" train "${G[@]}" --dp --batch 50
check no_output_on_usage 1 "" -- test -e "$tmp/x"

# a run prints its epsilon (Poisson: amplified; fixed: none claimed; noise 0: infinite)
R=(--base "$REF/gpt2" --data "$REF/gpt2_data.h5" --steps 3 --batch 2 --seq 16 --threads 1 -q --dp)
check run_poisson 0 "dp-sgd: epsilon 0\.[0-9]+ at delta 0\.0909 after 3 steps .*Poisson rate 0\.181818, 11 records" -- \
  "$MUTUAL" train "${R[@]}" --out "$tmp/a" --dp-seed 3 --log-jsonl "$tmp/a.jsonl"
check resume_dp_run 2 "a --dp run, which cannot be resumed" -- "$MUTUAL" train --base "$REF/gpt2" \
  --data "$REF/gpt2_data.h5" --out "$tmp/a" --resume --steps 5 -q
check run_log_batch 0 '"batch": [0-9]+' -- cat "$tmp/a.jsonl"
check run_again 0 "adapter written" -- "$MUTUAL" train "${R[@]}" --out "$tmp/b" --dp-seed 3
check same_seed_same_adapter 0 "" -- cmp "$tmp/a/adapter_model.safetensors" "$tmp/b/adapter_model.safetensors"
check run_other_seed 0 "adapter written" -- "$MUTUAL" train "${R[@]}" --out "$tmp/c" --dp-seed 4
check other_seed_other_adapter 1 "differ" -- cmp "$tmp/a/adapter_model.safetensors" "$tmp/c/adapter_model.safetensors"
check run_random_seed 0 "adapter written" -- "$MUTUAL" train "${R[@]}" --out "$tmp/d"
check random_seed_other_adapter 1 "differ" -- cmp "$tmp/a/adapter_model.safetensors" "$tmp/d/adapter_model.safetensors"
check run_fixed 0 "dp-sgd: epsilon [0-9.]+ at delta 1e-05 .*fixed batches, no amplification" -- \
  "$MUTUAL" train "${R[@]}" --out "$tmp/e" --dp-sampling fixed --dp-delta 1e-5
check run_no_noise 0 "dp-sgd: epsilon inf " -- "$MUTUAL" train "${R[@]}" --out "$tmp/f" --dp-noise 0
check_done
