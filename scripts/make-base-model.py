#!/usr/bin/python3
"""make-base-model.py - the embedded demo's base model: a tiny byte-level GPT-2.

Run with Debian's interpreter, which has torch and numpy (no `transformers` needed):

    /usr/bin/python3 scripts/make-base-model.py [OUT_DIR]      (default configs/demo/base-model)
        pretrains the model from scratch and writes OUT_DIR/config.json and
        OUT_DIR/model.safetensors: a Hugging Face GPT-2 folder (GPT-2 tensor names, Conv1D
        weights [in, out], tied head) that `mutual` and transformers' GPT2LMHeadModel load.
    /usr/bin/python3 scripts/make-base-model.py --eval MODEL_DIR DATA.h5 --batch B --seq T
                                                [--batches N] [--adapter PEFT_DIR]
        prints {"loss": x, "batches": n} computed by torch over the same windows as
        `mutual eval` (batch s, row i reads the window at ((s*B + i)*T) mod (N - T)), with a
        PEFT LoRA adapter if given: the cross-check of the C engine on the demo's model.

The model: vocabulary 256 (one token per byte), context 128, d_model 128, 4 layers,
4 heads, MLP 512, GELU (tanh), LayerNorm eps 1e-5, 0.82 M parameters.

Pretraining text: generic text of a Debian 12 machine (Debian copyright notices, Linux UAPI
headers, Python standard library packages; see scripts/demo-data.py `pretrain`), disjoint
from the files the demo's orgs hold. Training: AdamW (lr 3e-3, betas 0.9/0.95, weight decay
0.1 on matrices), 100 warm-up steps then cosine decay to 3e-4, batches of 16 random windows
of 128 bytes, gradient norm clipped to 1; 1.5 % of the text (its last bytes) is held out
and its loss reported.

Deterministic: fixed seeds, one torch thread, no dropout; the same text gives the same
bytes. The SHA-256 of the pretraining text, the step count and the losses are stored in
model.safetensors' __metadata__, so anyone can check a regenerated model against the
committed one (`cmp`).
"""
import argparse
import hashlib
import importlib.util
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CFG = dict(vocab=256, ctx=128, d=128, layers=4, heads=4, eps=1e-5)
TRAIN = dict(steps=2400, batch=16, lr=3e-3, min_lr=3e-4, warmup=100, wd=0.1, clip=1.0,
             seed=1234, heldout_frac=0.015)


# --------------------------------------------------------------------------- model


def gelu_new(x):
    return F.gelu(x, approximate="tanh")


def init_weights(gen):
    V, P, C, L = CFG["vocab"], CFG["ctx"], CFG["d"], CFG["layers"]
    std, proj_std = 0.02, 0.02 / math.sqrt(2 * L)
    w = {"transformer.wte.weight": torch.randn(V, C, generator=gen) * std,
         "transformer.wpe.weight": torch.randn(P, C, generator=gen) * 0.01}
    for l in range(L):
        p = f"transformer.h.{l}."
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"] = torch.ones(C)
            w[p + ln + ".bias"] = torch.zeros(C)
        for name, fi, fo, s in (("attn.c_attn", C, 3 * C, std), ("attn.c_proj", C, C, proj_std),
                                ("mlp.c_fc", C, 4 * C, std), ("mlp.c_proj", 4 * C, C, proj_std)):
            w[p + name + ".weight"] = torch.randn(fi, fo, generator=gen) * s  # Conv1D [in, out]
            w[p + name + ".bias"] = torch.zeros(fo)
    w["transformer.ln_f.weight"] = torch.ones(C)
    w["transformer.ln_f.bias"] = torch.zeros(C)
    return {k: v.requires_grad_() for k, v in w.items()}


def forward(w, idx, lora=None, scaling=1.0):
    """Logits [B, T, V] of GPT-2 with Hugging Face semantics. lora: {module: (A, B)} with
    module names like 'transformer.h.0.attn.c_attn' (PEFT: out += x A^T B^T * scaling)."""
    C, H, eps = CFG["d"], CFG["heads"], CFG["eps"]
    b, t = idx.shape
    x = w["transformer.wte.weight"][idx] + w["transformer.wpe.weight"][:t]
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))

    def conv1d(h, name):
        out = h @ w[name + ".weight"] + w[name + ".bias"]
        if lora and name in lora:
            a, bb = lora[name]
            out = out + (h @ a.t() @ bb.t()) * scaling
        return out

    for l in range(CFG["layers"]):
        p = f"transformer.h.{l}."
        h = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = conv1d(h, p + "attn.c_attn").split(C, dim=-1)
        q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, C)
        x = x + conv1d(y, p + "attn.c_proj")
        h = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = x + conv1d(gelu_new(conv1d(h, p + "mlp.c_fc")), p + "mlp.c_proj")
    x = F.layer_norm(x, (C,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].t()  # tied head


def hf_config():
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "vocab_size": CFG["vocab"], "n_positions": CFG["ctx"], "n_ctx": CFG["ctx"],
            "n_embd": CFG["d"], "n_layer": CFG["layers"], "n_head": CFG["heads"],
            "n_inner": None, "activation_function": "gelu_new",
            "layer_norm_epsilon": CFG["eps"], "resid_pdrop": 0.0, "embd_pdrop": 0.0,
            "attn_pdrop": 0.0, "tie_word_embeddings": True, "bos_token_id": 10,
            "eos_token_id": 10, "torch_dtype": "float32"}


# --------------------------------------------------------------------------- files


def write_safetensors(path, tensors, metadata):
    """tensors: name -> float32 numpy array. Keys sorted, header padded to 8 bytes."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}, want F32"
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).copy())
    return out


# --------------------------------------------------------------------------- pretraining


def load_demo_data():
    spec = importlib.util.spec_from_file_location("demo_data", os.path.join(HERE, "demo-data.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pretrain(out_dir, steps):
    torch.set_num_threads(1)
    torch.manual_seed(TRAIN["seed"])
    text, files = load_demo_data().pretrain_text()
    sha = hashlib.sha256(text).hexdigest()
    toks = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    n_held = int(len(toks) * TRAIN["heldout_frac"])
    train, held = toks[:-n_held], toks[-n_held:]
    print(f"make-base-model: {len(text)} bytes of pretraining text from {len(files)} files "
          f"(sha256 {sha[:16]}...), {n_held} held out", flush=True)

    gen = torch.Generator().manual_seed(TRAIN["seed"])
    w = init_weights(gen)
    nparams = sum(v.numel() for v in w.values())
    decay = [v for k, v in w.items() if v.dim() == 2]
    no_decay = [v for k, v in w.items() if v.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["wd"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=TRAIN["lr"], betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(TRAIN["seed"])
    B, T = TRAIN["batch"], CFG["ctx"]
    offs = np.arange(T + 1)

    def lr_at(s):
        if s < TRAIN["warmup"]:
            return TRAIN["lr"] * (s + 1) / TRAIN["warmup"]
        frac = (s - TRAIN["warmup"]) / max(1, steps - TRAIN["warmup"])
        return TRAIN["min_lr"] + 0.5 * (TRAIN["lr"] - TRAIN["min_lr"]) * (1 + math.cos(math.pi * frac))

    def heldout_loss():
        with torch.no_grad():
            starts = np.arange(0, len(held) - T - 1, T)
            losses = []
            for i in range(0, len(starts), 32):
                win = torch.from_numpy(held[starts[i:i + 32, None] + offs])
                lg = forward(w, win[:, :-1])
                losses.append(F.cross_entropy(lg.reshape(-1, CFG["vocab"]),
                                              win[:, 1:].reshape(-1), reduction="sum").item())
            return sum(losses) / (len(starts) * T)

    t0, ema = time.time(), None
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        starts = rng.integers(0, len(train) - T - 1, size=B)
        win = torch.from_numpy(train[starts[:, None] + offs])
        logits = forward(w, win[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, CFG["vocab"]), win[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(w.values()), TRAIN["clip"])
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if (s + 1) % 200 == 0 or s + 1 == steps:
            print(f"  step {s + 1:5d}/{steps}  train loss (ema) {ema:.4f}  "
                  f"lr {lr_at(s):.2e}  {time.time() - t0:6.0f} s", flush=True)
    held_loss = heldout_loss()
    print(f"make-base-model: held-out loss {held_loss:.4f} nats/byte after {steps} steps, "
          f"{time.time() - t0:.0f} s", flush=True)

    os.makedirs(out_dir, exist_ok=True)
    meta = {"format": "pt", "made_by": "scripts/make-base-model.py",
            "pretrain_text_sha256": sha, "pretrain_text_bytes": len(text),
            "pretrain_files": len(files), "steps": steps, "batch": B, "seq": T,
            "parameters": nparams, "final_train_loss_ema": f"{ema:.4f}",
            "heldout_loss": f"{held_loss:.4f}"}
    write_safetensors(os.path.join(out_dir, "model.safetensors"),
                      {k: v.detach().numpy() for k, v in w.items()}, meta)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(), f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"make-base-model: wrote {out_dir}/config.json and model.safetensors "
          f"({nparams} parameters)")


# --------------------------------------------------------------------------- eval


def read_tokens(path):
    import h5py
    with h5py.File(path, "r") as f:
        return np.asarray(f["tokens"][:], dtype=np.int64)


def torch_eval(model_dir, data, B, T, batches, adapter):
    torch.set_num_threads(1)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    CFG.update(vocab=cfg["vocab_size"], ctx=cfg["n_positions"], d=cfg["n_embd"],
               layers=cfg["n_layer"], heads=cfg["n_head"], eps=cfg.get("layer_norm_epsilon", 1e-5))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    lora, scaling = None, 1.0
    if adapter:
        with open(os.path.join(adapter, "adapter_config.json")) as f:
            acfg = json.load(f)
        r, alpha = acfg["r"], acfg["lora_alpha"]
        scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
        lw = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
        lora = {}
        for name in lw:
            if name.endswith(".lora_A.weight"):
                mod = name[len("base_model.model."):-len(".lora_A.weight")]
                lora[mod] = (lw[name], lw[name.replace("lora_A", "lora_B")])
    toks = read_tokens(data)
    n = len(toks)
    if not batches:
        batches = max(1, (n - T) // (B * T))
    total = 0.0
    with torch.no_grad():
        for s in range(batches):
            x = np.zeros((B, T), np.int64)
            y = np.zeros((B, T), np.int64)
            for i in range(B):
                p = ((s * B + i) * T) % (n - T)
                x[i], y[i] = toks[p:p + T], toks[p + 1:p + T + 1]
            lg = forward(w, torch.from_numpy(x), lora, scaling)
            total += F.cross_entropy(lg.reshape(-1, CFG["vocab"]),
                                     torch.from_numpy(y).reshape(-1)).item()
    print(json.dumps({"loss": total / batches, "batches": batches}))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default=os.path.join(HERE, "..", "configs", "demo",
                                                           "base-model"))
    ap.add_argument("--steps", type=int, default=TRAIN["steps"])
    ap.add_argument("--eval", nargs=2, metavar=("MODEL_DIR", "DATA_H5"))
    ap.add_argument("--adapter")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", type=int, default=0)
    a = ap.parse_args(argv)
    if a.eval:
        torch_eval(a.eval[0], a.eval[1], a.batch, a.seq, a.batches, a.adapter)
    else:
        pretrain(os.path.normpath(a.out), a.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
