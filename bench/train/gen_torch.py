#!/usr/bin/python3
"""gen_torch.py - the PyTorch side of bench/gen_vs_torch: gen_bench's generation in torch.

    /usr/bin/python3 bench/train/gen_torch.py [--threads N] [--prompt P] [--decode D]

A minimal Qwen2 forward written here (no transformers): Qwen2.5-0.5B's shape (bench_models.py's
qwen05: d 896, 24 layers, 14 heads, 2 KV heads, MLP 4864, vocab 151,936, tied head, q/k/v
biases, RMSNorm eps 1e-6, RoPE theta 1e6 with Hugging Face's half-split pairing, SwiGLU),
random weights, fp32,
under torch.inference_mode. Keys and values are kept in a preallocated cache per layer:
prefill runs the P prompt tokens in one forward (causal softmax attention over the prompt;
torch 1.13 has no scaled_dot_product_attention) and computes the head for the last row
only, then D greedy steps each run one token against the cache. Prints one JSON line like
gen_bench, plus the BLAS libraries torch mapped.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

from bench_models import EPS as MODEL_EPS, LLAMA_CONFIGS

V, C, L, H, KV, FF, _, _, THETA, BIAS, LLAMA3 = LLAMA_CONFIGS["qwen05"]
EPS = MODEL_EPS["qwen05"]
assert BIAS and not LLAMA3  # the forward below has q/k/v biases and plain RoPE
HD = C // H


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope_tables(n):
    inv = 1.0 / THETA ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD)
    f = torch.outer(torch.arange(n, dtype=torch.float32), inv)
    return torch.cat([f.cos(), f.cos()], -1), torch.cat([f.sin(), f.sin()], -1)


def rope(x, cos, sin):  # x (heads, T, HD)
    x1, x2 = x[..., : HD // 2], x[..., HD // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Model:
    def __init__(self, gen):
        def u(*shape):
            return (torch.rand(*shape, generator=gen) * 0.08 - 0.04)
        self.emb = u(V, C)
        self.layers = []
        for _ in range(L):
            self.layers.append(dict(
                n1=torch.ones(C), n2=torch.ones(C),
                wq=u(H * HD, C), bq=u(H * HD), wk=u(KV * HD, C), bk=u(KV * HD),
                wv=u(KV * HD, C), bv=u(KV * HD), wo=u(C, H * HD),
                wg=u(FF, C), wu=u(FF, C), wd=u(C, FF)))
        self.norm = torch.ones(C)

    def forward(self, ids, pos, kc, vc, cos, sin, mask):
        T = ids.shape[0]
        x = self.emb[ids]
        c, s = cos[pos:pos + T], sin[pos:pos + T]
        for l, p in enumerate(self.layers):
            h = rms(x, p["n1"])
            q = F.linear(h, p["wq"], p["bq"]).view(T, H, HD).transpose(0, 1)
            k = F.linear(h, p["wk"], p["bk"]).view(T, KV, HD).transpose(0, 1)
            v = F.linear(h, p["wv"], p["bv"]).view(T, KV, HD).transpose(0, 1)
            q, k = rope(q, c, s), rope(k, c, s)
            kc[l][:, pos:pos + T] = k
            vc[l][:, pos:pos + T] = v
            ks = kc[l][:, : pos + T].repeat_interleave(H // KV, 0)
            vs = vc[l][:, : pos + T].repeat_interleave(H // KV, 0)
            sc = q @ ks.transpose(1, 2) / math.sqrt(HD)  # (H, T, pos + T)
            if T > 1:
                sc = sc + mask[pos:pos + T, : pos + T]
            a = torch.softmax(sc, -1) @ vs
            x = x + F.linear(a.transpose(0, 1).reshape(T, H * HD), p["wo"])
            h = rms(x, p["n2"])
            x = x + F.linear(F.silu(F.linear(h, p["wg"])) * F.linear(h, p["wu"]), p["wd"])
        return F.linear(rms(x[-1:], self.norm), self.emb)[0]


def blas_libs():
    try:
        with open("/proc/self/maps") as f:
            return sorted({ln.split()[-1].rsplit("/", 1)[-1] for ln in f
                           if "blas" in ln.lower() and "/" in ln})
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(1)
    m = Model(gen)
    P, D = a.prompt, a.decode
    kc = [torch.zeros(KV, P + D, HD) for _ in range(L)]
    vc = [torch.zeros(KV, P + D, HD) for _ in range(L)]
    cos, sin = rope_tables(P + D)
    mask = torch.full((P + D, P + D), float("-inf")).triu(1)
    prompt = torch.randint(0, V, (P,), generator=gen)
    with torch.inference_mode():
        t0 = time.perf_counter()
        logits = m.forward(prompt, 0, kc, vc, cos, sin, mask)
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in range(D):
            t = logits.argmax().view(1)
            logits = m.forward(t, P + s, kc, vc, cos, sin, mask)
        decode = time.perf_counter() - t0
    print(json.dumps({
        "threads": a.threads, "prompt": P, "decode": D, "prefill_s": round(prefill, 3),
        "prefill_tokens_per_s": round(P / prefill, 2), "decode_s": round(decode, 3),
        "decode_tokens_per_s": round(D / decode, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch": torch.__version__, "blas": blas_libs()}))


if __name__ == "__main__":
    main()
