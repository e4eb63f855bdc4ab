#!/usr/bin/python3
"""torch_step.py - the PyTorch half of bench/train_vs_torch: times the LoRA training step that
bench/train/train_step_bench.c times in mutual.

    /usr/bin/python3 bench/train/torch_step.py [--config NAME] [--threads N] [--steps S]
                                               [--warmup W] [--mode fp32|bf16|bf16w]

Same step as the C side, one step = zero_grad + forward + backward + optimizer.step on a
fixed random batch, AdamW on the LoRA parameters only, frozen random base weights:

  small, gpt2s: GPT-2 family (pre-LayerNorm, learned positions, GELU tanh, tied head),
    vocabulary 256, LoRA r=8 alpha=16 on c_attn (q, k, v) and attn.c_proj.
  qwen05, smollm360, llama1b, tinyllama: Llama family written out here (no transformers
    package) as transformers' LlamaForCausalLM / Qwen2ForCausalLM compute it: RMSNorm,
    RoPE with rotate_half (rope_scaling llama3 for llama1b and tinyllama), grouped-query
    attention (repeat_kv), SwiGLU MLP, tied head, q/k/v biases for qwen05 (Qwen2) and
    tinyllama; LoRA r=16 alpha=32 on q_proj, k_proj, v_proj and o_proj (B zero at start).
    Shapes from bench_models.py (bench_models.h's rows for the C side), batch 4 x 512
    (llama1b 2 x 512).

--mode fp32: everything fp32. bf16: the forward under torch.autocast('cpu',
dtype=torch.bfloat16) (matrix products in bf16, base weights fp32 and cast on the fly, LoRA
parameters, gradients and AdamW state fp32). bf16w: the same with the base weights stored in
bf16 (half their memory, no per-step cast). Prints one JSON line with the median step time
over S steps after W warm-ups, tokens/s, peak RSS, the first and last loss, the threads used
and the BLAS library torch really loaded.

The base weights and the batch: for tinyllama the same values as the C bench
(its splitmix64 stream, tensor by tensor in tr_model.h's order, norm weights 1, everything
else 0.25 * U(-1, 1); tokens from seed 99), so the first step's loss must equal
train_step_bench's loss0 (B is zero at start, so LoRA's A init does not enter it). For the
large shapes that stream would take minutes and gigabytes in numpy, so the weights come from
torch.rand with the same distribution: the loss is then only comparable in value (about
ln V at this init), not bit for bit.

Threading: torch.set_num_threads(N) and OMP_NUM_THREADS=N before torch loads, so intra-op
parallelism and the OpenMP build of OpenBLAS share one OpenMP pool (no oversubscription);
inter-op threads 1. This was torch's fastest setting on this machine class.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

from bench_models import CONFIGS, LLAMA_CONFIGS

EXACT = ("tinyllama",)  # configs whose weights follow the C bench's stream
AMP = {"tinyllama": 0.25}  # the C bench's amp: base weights amp * U(-1, 1); default 0.02


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=sorted(CONFIGS) + sorted(LLAMA_CONFIGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--mode", default="fp32", choices=("fp32", "bf16", "bf16w"))
    a = p.parse_args()
    if a.config in CONFIGS and a.mode != "fp32":
        p.error("--mode bf16/bf16w is for the Llama-family configs")
    return a


ARGS = parse()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
import torch  # noqa: E402  (after the thread environment is set)
import torch.nn.functional as F  # noqa: E402


def blas_library():
    """The BLAS shared object this process mapped (after a matmul), symlinks resolved."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if "blas" in os.path.basename(path):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def build(V, C, L, H, T, gen):
    def rnd(*shape):
        return (torch.rand(*shape, generator=gen) * 2 - 1) * 0.02

    w = {"wte": rnd(V, C), "wpe": rnd(T, C), "lnf_w": torch.ones(C), "lnf_b": rnd(C)}
    lora = []
    for l in range(L):
        for k, shape in (("ln1_w", None), ("ln2_w", None)):
            w[f"{l}.{k}"] = torch.ones(C)
        for k in ("ln1_b", "ln2_b"):
            w[f"{l}.{k}"] = rnd(C)
        for k, fi, fo in (("attn", C, 3 * C), ("proj", C, C), ("fc", C, 4 * C),
                          ("mproj", 4 * C, C)):
            w[f"{l}.{k}_w"] = rnd(fi, fo)  # Conv1D [in, out]
            w[f"{l}.{k}_b"] = rnd(fo)
        for k, fi, fo in (("attn", C, 3 * C), ("proj", C, C)):
            bound = 1 / math.sqrt(fi)
            A = ((torch.rand(8, fi, generator=gen) * 2 - 1) * bound).requires_grad_()
            B = torch.zeros(fo, 8).requires_grad_()
            w[f"{l}.{k}_A"], w[f"{l}.{k}_B"] = A, B
            lora += [A, B]
    return w, lora


def forward(w, idx, V, C, L, H):
    b, t = idx.shape
    scale = 16.0 / 8
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    x = w["wte"][idx] + w["wpe"][:t]
    for l in range(L):
        h = F.layer_norm(x, (C,), w[f"{l}.ln1_w"], w[f"{l}.ln1_b"], 1e-5)
        qkv = torch.addmm(w[f"{l}.attn_b"], h.view(-1, C), w[f"{l}.attn_w"]).view(b, t, 3 * C)
        qkv = qkv + (h @ w[f"{l}.attn_A"].t() @ w[f"{l}.attn_B"].t()) * scale
        q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in qkv.split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, C)
        o = torch.addmm(w[f"{l}.proj_b"], y.view(-1, C), w[f"{l}.proj_w"]).view(b, t, C)
        x = x + o + (y @ w[f"{l}.proj_A"].t() @ w[f"{l}.proj_B"].t()) * scale
        h = F.layer_norm(x, (C,), w[f"{l}.ln2_w"], w[f"{l}.ln2_b"], 1e-5)
        m = F.gelu(torch.addmm(w[f"{l}.fc_b"], h.view(-1, C), w[f"{l}.fc_w"]), approximate="tanh")
        x = x + torch.addmm(w[f"{l}.mproj_b"], m, w[f"{l}.mproj_w"]).view(b, t, C)
    x = F.layer_norm(x, (C,), w["lnf_w"], w["lnf_b"], 1e-5)
    return x.view(-1, C) @ w["wte"].t()


# --------------------------------------------------------------------------- Llama family

MASK64 = (1 << 64) - 1


class Splitmix:
    """train_step_bench.c's next(): splitmix64, one state, numpy-vectorised draws."""

    def __init__(self, seed):
        self.s = seed

    def draw(self, n):
        import numpy as np
        k = np.arange(1, n + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            z = np.uint64(self.s) + k * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        self.s = (self.s + n * 0x9E3779B97F4A7C15) & MASK64
        return z

    def weights(self, n, amp):
        """amp * ((float)(u >> 40) / 2^24 * 2 - 1) in fp32, as the C bench fills a tensor."""
        import numpy as np
        u = (self.draw(n) >> np.uint64(40)).astype(np.float32)
        return np.float32(amp) * (u / np.float32(16777216.0) * np.float32(2.0) - np.float32(1.0))


def llama_inv_freq(hd, theta, llama3):
    """HF's default inv_freq, and Llama 3.2's rope_scaling llama3 (factor 32, low 1, high 4,
    original 8192) as _compute_llama3_parameters applies it."""
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if not llama3:
        return inv
    factor, low, high, orig = 32.0, 1.0, 4.0, 8192
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > orig / low, inv / factor, inv)
    smooth = (orig / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < orig / high) * ~(wavelen > orig / low)
    return torch.where(medium, smoothed, scaled)


def llama_tensors(V, C, L, H, KV, F_, bias):
    """(name, shape, is_norm) of the base, in tr_model.h's order (tied head)."""
    hd = C // H
    out = [("model.embed_tokens.weight", (V, C), False)]
    for l in range(L):
        p = f"model.layers.{l}."
        out.append((p + "input_layernorm.weight", (C,), True))
        for n, rows in (("q_proj", H * hd), ("k_proj", KV * hd), ("v_proj", KV * hd)):
            out.append((p + f"self_attn.{n}.weight", (rows, C), False))
            if bias:
                out.append((p + f"self_attn.{n}.bias", (rows,), False))
        out += [(p + "self_attn.o_proj.weight", (C, H * hd), False),
                (p + "post_attention_layernorm.weight", (C,), True),
                (p + "mlp.gate_proj.weight", (F_, C), False),
                (p + "mlp.up_proj.weight", (F_, C), False),
                (p + "mlp.down_proj.weight", (C, F_), False)]
    out.append(("model.norm.weight", (C,), True))
    return out


def llama_build(cfg, dtype, gen):
    V, C, L, H, KV, F_, T, B, theta, bias, llama3 = cfg
    stream = Splitmix(1) if ARGS.config in EXACT else None
    w = {}
    for name, shape, is_norm in llama_tensors(V, C, L, H, KV, F_, bias):
        n = math.prod(shape)
        t = torch.empty(n, dtype=dtype)
        if is_norm:
            t.fill_(1.0)
        elif stream:
            t.copy_(torch.from_numpy(stream.weights(n, AMP.get(ARGS.config, 0.02))))
        else:  # chunks: no fp32 copy of a whole bf16 tensor, which would count in peak RSS
            for a in range(0, n, 1 << 22):
                m = min(n, a + (1 << 22)) - a
                t[a:a + m] = (torch.rand(m, generator=gen) * 2 - 1) * 0.02
        w[name] = t.view(shape)
    lora = {}
    for l in range(L):
        for n, fi, fo in (("q_proj", C, C), ("k_proj", C, KV * (C // H)),
                          ("v_proj", C, KV * (C // H)), ("o_proj", C, C)):
            bound = 1 / math.sqrt(fi)
            A = ((torch.rand(16, fi, generator=gen) * 2 - 1) * bound).requires_grad_()
            lora[f"{l}.{n}"] = (A, torch.zeros(fo, 16).requires_grad_())
    inv = llama_inv_freq(C // H, theta, llama3)
    ang = torch.outer(torch.arange(T).float(), inv)
    ang = torch.cat((ang, ang), dim=-1)
    return w, lora, (ang.cos(), ang.sin())


def rms_norm(x, weight, eps=1e-5):
    """LlamaRMSNorm: in fp32, then the weight."""
    xf = x.float()
    return weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_forward(cfg, w, lora, rope, idx):
    V, C, L, H, KV, F_, T, B, theta, bias, llama3 = cfg
    hd, b, t = C // H, idx.shape[0], idx.shape[1]
    cos, sin = rope
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    x = w["model.embed_tokens.weight"][idx].float()  # the residual stream stays fp32

    def proj(h, l, name, adapted):
        p = f"model.layers.{l}.self_attn.{name}." if name.endswith("_proj") and \
            name[0] in "qkvo" else f"model.layers.{l}.mlp.{name}."
        y = F.linear(h, w[p + "weight"], w.get(p + "bias"))
        if adapted:
            A, Bm = lora[f"{l}.{name}"]
            y = y + (h @ A.t() @ Bm.t()) * 2.0  # alpha 32 / r 16
        return y

    for l in range(L):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = proj(h, l, "q_proj", True).view(b, t, H, hd).transpose(1, 2)
        k = proj(h, l, "k_proj", True).view(b, t, KV, hd).transpose(1, 2)
        v = proj(h, l, "v_proj", True).view(b, t, KV, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)  # repeat_kv: KV head g serves heads g*rep..
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1, dtype=torch.float32)
        y = (att.to(v.dtype) @ v).transpose(1, 2).reshape(b, t, H * hd)
        x = x + proj(y, l, "o_proj", True)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        m = F.silu(proj(h, l, "gate_proj", False)) * proj(h, l, "up_proj", False)
        x = x + proj(m, l, "down_proj", False)
    x = rms_norm(x, w["model.norm.weight"])
    return x.view(-1, C) @ w["model.embed_tokens.weight"].t()


def llama_batch(V, T, B):
    """train_step_bench.c's batch: seed 99, input then target id for each position."""
    u = Splitmix(99).draw(2 * B * T)
    ids = torch.from_numpy((u % V).astype("int64"))
    return ids[0::2].view(B, T), ids[1::2]


def llama_main():
    cfg = LLAMA_CONFIGS[ARGS.config]
    V, T, B = cfg[0], cfg[6], cfg[7]
    torch.set_num_threads(ARGS.threads)
    torch.set_num_interop_threads(1)
    gen = torch.Generator().manual_seed(1)
    w, lora, rope = llama_build(cfg, torch.bfloat16 if ARGS.mode == "bf16w" else torch.float32,
                                gen)
    idx, tgt = llama_batch(V, T, B)
    params = [p for ab in lora.values() for p in ab]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    times, losses = [], []
    for i in range(ARGS.warmup + ARGS.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ARGS.mode != "fp32"):
            logits = llama_forward(cfg, w, lora, rope, idx)
        loss = F.cross_entropy(logits.float(), tgt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if i >= ARGS.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
        del logits, loss
    return times, losses, B * T


def main():
    if ARGS.config in LLAMA_CONFIGS:
        times, losses, ntok = llama_main()
        report(times, losses, ntok)
        return 0
    V, C, L, H, T, B = CONFIGS[ARGS.config]
    torch.set_num_threads(ARGS.threads)
    torch.set_num_interop_threads(1)
    gen = torch.Generator().manual_seed(1)
    w, lora = build(V, C, L, H, T, gen)
    idx = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B * T,), generator=gen)
    opt = torch.optim.AdamW(lora, lr=1e-4, weight_decay=0.0)
    times, losses = [], []
    for i in range(ARGS.warmup + ARGS.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(forward(w, idx, V, C, L, H), tgt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if i >= ARGS.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    report(times, losses, B * T)
    return 0


def report(times, losses, ntok):
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(json.dumps({
        "config": ARGS.config, "threads": ARGS.threads, "steps": ARGS.steps,
        "warmup": ARGS.warmup, "mode": ARGS.mode, "torch_ms": round(median, 3),
        "torch_min_ms": round(times[0], 3), "tokens_per_s": round(ntok / (median * 1e-3), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loss0": round(losses[0], 6), "loss": round(losses[-1], 6), "torch": torch.__version__,
        "blas": blas_library(), "blas_info": [s for s in torch.__config__.show().replace(",", " ").split() if s.startswith("BLAS_INFO")],
        "mkl": torch.backends.mkl.is_available(),
        "openmp": torch.backends.openmp.is_available()}))


if __name__ == "__main__":
    sys.exit(main())
