#!/usr/bin/env bash
# docs/coordinator.md's table of coordinator keys is exactly what `mutual config keys
# --markdown` prints from the config table, so a key added to the table without the docs
# (or docs edited by hand) fails here.
set -u
MUTUAL=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$MUTUAL" config keys --markdown >"$tmp/generated.md" || { echo "FAIL: config keys"; exit 1; }
sed -n '/^<!-- config-keys:begin/,/^<!-- config-keys:end/p' "$ROOT/docs/coordinator.md" |
  sed '1d;$d' >"$tmp/docs.md"
[ -s "$tmp/docs.md" ] || { echo "FAIL: docs/coordinator.md has no config-keys block"; exit 1; }
if ! diff -u "$tmp/docs.md" "$tmp/generated.md"; then
  echo "FAIL: docs/coordinator.md's key table differs from 'mutual config keys --markdown'"
  echo "(regenerate the block between the config-keys markers)"
  exit 1
fi
[ "$(grep -c '^| `' "$tmp/generated.md")" -gt 40 ] || { echo "FAIL: too few keys"; exit 1; }
echo "ok: $(grep -c '^| `' "$tmp/generated.md") keys documented"
