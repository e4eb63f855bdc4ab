#!/usr/bin/env bash
# The aggregate of each round equals the plain weighted mean of the orgs' updates within the
# quantisation error: the coordinator dumps each global, each org its own update (test mode
# only), and check_aggregate.py compares them in float64. The adapter (98 KiB) is big enough
# that the masked input travels by UploadMasked (client streaming), not PushStage.
# usage: nd_aggregate.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
work=$PWD/nd_aggregate
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 3 --dump --timeout 250 \
  --embd 128 --layers 4 --rank 16
/usr/bin/python3 "$HERE/check_aggregate.py" "$work/dump" 3
grep -q '"adapter_bytes":98304,' "$work/coordinator-1.jsonl" ||
  { echo "FAIL: the adapter is not the 98 KiB this test needs for UploadMasked"; exit 1; }
