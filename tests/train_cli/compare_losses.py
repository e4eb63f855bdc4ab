#!/usr/bin/python3
"""compare_losses.py LOG.jsonl REF.safetensors KEY TOL: the per-step losses of a
`mutual train --log-jsonl` file against the PyTorch reference losses KEY, within relative
tolerance TOL. Standard library only."""
import json
import struct
import sys

log, ref, key, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
got = [json.loads(line) for line in open(log)]
b = open(ref, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
t = json.loads(b[8:8 + n])[key]
s, e = t["data_offsets"]
want = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
if len(got) != len(want):
    sys.exit(f"{len(got)} steps logged, reference has {len(want)}")
worst = 0.0
for k, (g, w) in enumerate(zip(got, want)):
    if g["step"] != k or not g["tokens_per_s"] > 0:
        sys.exit(f"line {k}: bad record {g}")
    rel = abs(g["loss"] - w) / abs(w)
    worst = max(worst, rel)
    if rel > tol:
        sys.exit(f"step {k}: loss {g['loss']} vs torch {w} (rel {rel:.2e} > {tol})")
print(f"{key}: {len(got)} steps within {worst:.2e} of torch")
