#!/usr/bin/env bash
# A full disk under `mutual sim --out`: exit 1 naming global.f32.tmp and "No space left on
# device", the global.f32 of the earlier run byte for byte intact and no temporary left. The
# full disk is injected by tests/fault's fault_write.so (LD_PRELOAD): writes to paths
# containing MU_FAULT_ENOSPC fail with ENOSPC. usage: sim_disk_full.sh MUTUAL FAULT_SO
set -u
MUTUAL=$1
SHIM=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

full() { # full PATTERN command...: run with every write to a path containing PATTERN failing
  local pat=$1
  shift
  LD_PRELOAD=$SHIM MU_FAULT_ENOSPC=$pat \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" "$@"
}

cat >"$tmp/syn.yaml" <<'Y'
seed: 4
model:
  synthetic_dim: 2000
data:
  orgs: 4
coordinator:
  federation:
    rounds: 2
  cohort:
    min_orgs: 3
    wait_s: 0
  secure_agg:
    clip: 10
    weight_max: 10
Y
check first_run 0 "" -- "$MUTUAL" sim --config "$tmp/syn.yaml" --out "$tmp/out" -q
cp "$tmp/out/global.f32" "$tmp/keep.f32"
check sim_full 1 "global\.f32\.tmp: write: No space left on device" -- \
  full "global.f32" "$MUTUAL" sim --config "$tmp/syn.yaml" --out "$tmp/out" --seed 9 -q
check sim_full_intact 0 "" -- cmp "$tmp/out/global.f32" "$tmp/keep.f32"
check sim_full_no_tmp 1 "" -- test -e "$tmp/out/global.f32.tmp"
check_done
