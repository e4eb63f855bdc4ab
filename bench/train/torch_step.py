#!/usr/bin/python3
"""torch_step.py - the PyTorch half of bench/train_vs_torch: times the LoRA training step that
bench/train/train_step_bench.c times in mutual.

    /usr/bin/python3 bench/train/torch_step.py [--config small|gpt2s] [--threads N]
                                               [--steps S] [--warmup W]

Same step as the C side: GPT-2 family (pre-LayerNorm, learned positions, GELU tanh, tied
head), vocabulary 256, frozen random base weights, LoRA r=8 alpha=16 on c_attn (q, k, v) and
attn.c_proj (the attention output), AdamW on the LoRA parameters only, fp32, a fixed random
batch; one step = zero_grad + forward + backward + optimizer.step. Prints one JSON line with
the median step time over S steps after W warm-ups, peak RSS, the threads used and the BLAS
library torch really loaded.

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

CONFIGS = {  # name: (V, C, L, H, T, B)
    "small": (256, 256, 4, 4, 128, 8),
    "gpt2s": (256, 768, 12, 12, 256, 4),
}


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=sorted(CONFIGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    return p.parse_args()


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


def main():
    V, C, L, H, T, B = CONFIGS[ARGS.config]
    torch.set_num_threads(ARGS.threads)
    torch.set_num_interop_threads(1)
    gen = torch.Generator().manual_seed(1)
    w, lora = build(V, C, L, H, T, gen)
    idx = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B * T,), generator=gen)
    opt = torch.optim.AdamW(lora, lr=1e-4, weight_decay=0.0)
    times = []
    for i in range(ARGS.warmup + ARGS.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(forward(w, idx, V, C, L, H), tgt)
        loss.backward()
        opt.step()
        if i >= ARGS.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(json.dumps({
        "config": ARGS.config, "threads": ARGS.threads, "steps": ARGS.steps,
        "warmup": ARGS.warmup, "torch_ms": round(median, 3), "torch_min_ms": round(times[0], 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loss": round(loss.item(), 6), "torch": torch.__version__,
        "blas": blas_library(), "blas_info": [s for s in torch.__config__.show().replace(",", " ").split() if s.startswith("BLAS_INFO")],
        "mkl": torch.backends.mkl.is_available(),
        "openmp": torch.backends.openmp.is_available()}))


if __name__ == "__main__":
    sys.exit(main())
