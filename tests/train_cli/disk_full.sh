#!/usr/bin/env bash
# A full disk under `mutual train --out` and `mutual data import`: exit 1 with the file and
# "No space left on device", every earlier output byte for byte intact, nothing half-written
# left behind, and --resume still works. The full disk is injected by tests/fault's
# fault_write.so (LD_PRELOAD): writes to paths containing MU_FAULT_ENOSPC fail with ENOSPC
# past byte MU_FAULT_ENOSPC_AT. usage: disk_full.sh MUTUAL FAULT_SO REF_DIR
set -u
MUTUAL=$1
SHIM=$2
REF=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

full() { # full PATTERN AT command...: run with writes to PATTERN failing past byte AT
  local pat=$1 at=$2
  shift 2
  LD_PRELOAD=$SHIM MU_FAULT_ENOSPC=$pat MU_FAULT_ENOSPC_AT=$at \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" "$@"
}
same_as_before() { # every file of the first run unchanged, no temp or staging left
  for f in adapter_model.safetensors adapter_config.json training_state.h5; do
    cmp "$tmp/keep/$f" "$tmp/out/$f" || return 1
  done
  [ -z "$(find "$tmp/out" -name '*.tmp' -o -name .partial)" ]
}

G=(--base "$REF/gpt2" --data "$REF/gpt2_data.h5" --batch 2 --seq 16 --lr 0.01 --threads 1 -q)
check first_run 0 "adapter written \(2 steps\)" -- "$MUTUAL" train "${G[@]}" --out "$tmp/out" --steps 2
mkdir "$tmp/keep" && cp "$tmp/out/"* "$tmp/keep/"

# the injector works: a plain write into the pattern fails
check injector 1 "No space left on device" -- full "$tmp/probe" 0 dd if=/dev/zero of="$tmp/probe" bs=1 count=1

# the whole folder full: nothing can be written
check train_full 1 "out/\.partial/adapter_model\.safetensors\.tmp: write: No space left on device" -- \
  full "$tmp/out/" 0 "$MUTUAL" train "${G[@]}" --out "$tmp/out" --steps 3 --force
check train_full_intact 0 "" -- same_as_before
# room for 4 KiB of the training state only (HDF5's file: this used to crash at exit, 139),
# after the new adapter files were complete: they must not replace the old ones alone
check train_state_full 1 "training_state\.h5\.tmp: write: No space left on device" -- \
  full "training_state.h5.tmp" 4096 "$MUTUAL" train "${G[@]}" --out "$tmp/out" --steps 3 --force
check train_state_full_intact 0 "" -- same_as_before
check train_resume_full 1 "No space left on device" -- \
  full "$tmp/out/" 0 "$MUTUAL" train --base "$REF/gpt2" --data "$REF/gpt2_data.h5" \
  --out "$tmp/out" --resume --steps 4 -q
check train_resume_full_intact 0 "" -- same_as_before
# space again: the run resumes from the state the failed runs left alone
check resume_after 0 "adapter written \(4 steps\)" -- "$MUTUAL" train --base "$REF/gpt2" \
  --data "$REF/gpt2_data.h5" --out "$tmp/out" --resume --steps 4 -q

# data import: the previous dataset survives
printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 200) >"$tmp/a.txt"
printf 'Pack my box with five dozen liquor jugs. %.0s' $(seq 300) >"$tmp/b.txt"
check import_first 0 "9000 tokens" -- "$MUTUAL" data import --text "$tmp/a.txt" --out "$tmp/d.h5"
cp "$tmp/d.h5" "$tmp/d_keep.h5"
check import_full 1 "d\.h5\.tmp: write: No space left on device" -- \
  full "$tmp/d.h5.tmp" 2048 "$MUTUAL" data import --text "$tmp/b.txt" --out "$tmp/d.h5"
check import_full_intact 0 "" -- cmp "$tmp/d.h5" "$tmp/d_keep.h5"
check import_no_tmp 1 "" -- test -e "$tmp/d.h5.tmp"

check_done
