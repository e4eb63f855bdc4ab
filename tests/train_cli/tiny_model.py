#!/usr/bin/python3
"""tiny_model.py DIR: a random byte-vocabulary GPT-2 (vocab 256, d 16, 1 layer, 2 heads,
context 32) as a Hugging Face folder, using only the standard library."""
import json
import os
import random
import struct
import sys

d, V, P, F = 16, 256, 32, 64
rnd = random.Random(7)
shapes = {"transformer.wte.weight": [V, d], "transformer.wpe.weight": [P, d],
          "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d]}
for name, s in (("ln_1.weight", [d]), ("ln_1.bias", [d]), ("ln_2.weight", [d]),
                ("ln_2.bias", [d]), ("attn.c_attn.weight", [d, 3 * d]),
                ("attn.c_attn.bias", [3 * d]), ("attn.c_proj.weight", [d, d]),
                ("attn.c_proj.bias", [d]), ("mlp.c_fc.weight", [d, F]),
                ("mlp.c_fc.bias", [F]), ("mlp.c_proj.weight", [F, d]),
                ("mlp.c_proj.bias", [d])):
    shapes["transformer.h.0." + name] = s
header, blobs, off = {}, [], 0
for name in sorted(shapes):
    n = 1
    for k in shapes[name]:
        n *= k
    ln_w = name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight")
    vals = [1.0 if ln_w else rnd.gauss(0, 0.1) for _ in range(n)]
    blob = struct.pack("<%df" % n, *vals)
    header[name] = {"dtype": "F32", "shape": shapes[name], "data_offsets": [off, off + len(blob)]}
    blobs.append(blob)
    off += len(blob)
h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
h += b" " * ((8 - len(h) % 8) % 8)
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump({"model_type": "gpt2", "vocab_size": V, "n_positions": P, "n_embd": d,
               "n_layer": 1, "n_head": 2, "n_inner": F}, f)
