#!/usr/bin/python3
"""poke_safetensors.py IN OUT NAME OP: copy the safetensors file IN to OUT with the F32
tensor NAME changed: OP "nan" puts a NaN in its last element, "scale=X" multiplies every
element by X (finite results), "row=TO,FROM,X" sets row TO of a 2-D tensor to X times row
FROM. Standard library only."""
import json
import math
import struct
import sys

src, dst, name, op = sys.argv[1:5]
raw = bytearray(open(src, "rb").read())
n = struct.unpack_from("<Q", raw, 0)[0]
header = json.loads(raw[8:8 + n])
lo, hi = header[name]["data_offsets"]
base = 8 + n + lo
count = (hi - lo) // 4
vals = list(struct.unpack_from("<%df" % count, raw, base))
if op == "nan":
    vals[-1] = math.nan
elif op.startswith("scale="):
    vals = [v * float(op[6:]) for v in vals]
elif op.startswith("row="):
    to, frm, x = op[4:].split(",")
    cols = header[name]["shape"][1]
    to, frm = int(to) * cols, int(frm) * cols
    vals[to:to + cols] = [v * float(x) for v in vals[frm:frm + cols]]
else:
    sys.exit("unknown OP " + op)
struct.pack_into("<%df" % count, raw, base, *vals)
open(dst, "wb").write(raw)
