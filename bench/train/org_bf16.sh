#!/usr/bin/env bash
# org_bf16.sh - what an org's training.bf16 buys: one `mutual sim` run (3 orgs, one training
# round, 2 engines: --threads 2) on a random Llama-family base written as a Hugging Face folder
# (F32 safetensors), fp32 against --bf16, each also with --checkpointing (activations are the
# rest of the peak), each under /usr/bin/time -v: wall time, CPU time and peak RSS, with the
# load average before each run. Prints one JSON line per run.
#
# usage: bench/train/org_bf16.sh MUTUAL [WORK_DIR] [SHAPE]
#   MUTUAL     a Release build's mutual binary (build/rel/mutual)
#   WORK_DIR   where the model, data and config go (default: a new temp folder; kept)
#   SHAPE      smollm135 (default: SmolLM2-135M's shape, d 576, 30 layers, 9 heads, 3 KV
#              heads, MLP 1536, vocab 49152, tied: 135 M parameters, 540 MB in fp32) or tiny
#              (d 64, 2 layers, vocab 512: a quick check of the script)
# The round: batch 2 x 256 tokens, 2 local steps per org, LoRA r 8 on q_proj,v_proj.
set -euo pipefail
MUTUAL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORK=${2:-$(mktemp -d /tmp/org_bf16.XXXXXX)}
SHAPE=${3:-smollm135}
PY=/usr/bin/python3
mkdir -p "$WORK"
cd "$WORK"
$PY - "$SHAPE" <<'PYEOF'
import json, os, struct, sys
import h5py
import numpy as np
shape = sys.argv[1]
if shape == "smollm135":
    d, L, H, KV, F, V = 576, 30, 9, 3, 1536, 49152
elif shape == "tiny":
    d, L, H, KV, F, V = 64, 2, 4, 2, 128, 512
else:
    sys.exit("unknown shape " + shape)
hd = d // H
os.makedirs("model", exist_ok=True)
json.dump({"model_type": "llama", "hidden_size": d, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "intermediate_size": F,
           "vocab_size": V, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
           "rope_theta": 100000.0, "tie_word_embeddings": True, "hidden_act": "silu"},
          open("model/config.json", "w"))
rng = np.random.default_rng(1)
tensors = [("model.embed_tokens.weight", (V, d))]
for l in range(L):
    p = "model.layers.%d." % l
    tensors += [(p + "input_layernorm.weight", (d,)), (p + "self_attn.q_proj.weight", (d, d)),
                (p + "self_attn.k_proj.weight", (KV * hd, d)),
                (p + "self_attn.v_proj.weight", (KV * hd, d)),
                (p + "self_attn.o_proj.weight", (d, d)),
                (p + "post_attention_layernorm.weight", (d,)),
                (p + "mlp.gate_proj.weight", (F, d)), (p + "mlp.up_proj.weight", (F, d)),
                (p + "mlp.down_proj.weight", (d, F))]
tensors.append(("model.norm.weight", (d,)))
header, off = {}, 0
for name, shp in tensors:
    n = int(np.prod(shp)) * 4
    header[name] = {"dtype": "F32", "shape": list(shp), "data_offsets": [off, off + n]}
    off += n
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open("model/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for name, shp in tensors:
        a = (np.ones(shp, np.float32) if len(shp) == 1
             else (rng.standard_normal(shp, dtype=np.float32) * 0.02))
        f.write(a.tobytes())
for i in range(3):
    with h5py.File("org-%d.h5" % i, "w") as f:
        t = f.create_dataset("tokens", data=rng.integers(0, V, 4096, dtype=np.uint32))
        t.attrs["vocab_size"] = V
PYEOF
cat > sim.yaml <<Y
seed: 1
model: {base: model, rank: 8, alpha: 16, targets: "q_proj, v_proj"}
data: {files: [org-0.h5, org-1.h5, org-2.h5], eval_fraction: 0.1}
coordinator:
  federation: {rounds: 1, eval_every: 0}
  cohort: {min_orgs: 3, wait_s: 0}
  train: {steps: 2, batch: 2, seq: 256, lr: 0.001}
  secure_agg: {bits: 32, clip: 10.0, weight_max: 10000}
Y
for mode in fp32 bf16 fp32+ckpt bf16+ckpt; do
  flag=()
  case $mode in bf16*) flag+=(--bf16) ;; esac
  case $mode in *ckpt) flag+=(--checkpointing) ;; esac
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  /usr/bin/time -v "$MUTUAL" sim --config sim.yaml --threads 2 --out "out-$mode" "${flag[@]}" \
    -v >"sim-$mode.out" 2>"time-$mode.txt"
  $PY - "$mode" "$load" "time-$mode.txt" <<'PYEOF'
import json, re, sys
mode, load, path = sys.argv[1:4]
t = open(path).read()
def num(key):  # "12.5" or "1:02.50" (m:ss) or "1:02:03" (h:mm:ss)
    v = re.search(re.escape(key) + r": ([0-9.:]+)", t).group(1)
    return sum(float(x) * 60 ** i for i, x in enumerate(reversed(v.split(":"))))
kernel = re.search(r"bf16 base \(([^)]*)\)", t)
print(json.dumps({"mode": mode, "wall_s": num("Elapsed (wall clock) time (h:mm:ss or m:ss)"),
                  "user_s": num("User time (seconds)"), "sys_s": num("System time (seconds)"),
                  "peak_rss_mb": round(num("Maximum resident set size (kbytes)") / 1024, 1),
                  "kernel": kernel.group(1) if kernel else None, "loadavg_before": load}))
PYEOF
done
cmp -s out-fp32/global.f32 out-bf16/global.f32 && { echo "bf16 gave fp32's bits" >&2; exit 1; }
cmp out-fp32/global.f32 out-fp32+ckpt/global.f32 && cmp out-bf16/global.f32 out-bf16+ckpt/global.f32
exit 0
