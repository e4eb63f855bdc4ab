#!/usr/bin/python3
"""make_reference.py - PyTorch reference states for the train/ tests.

Run with Debian's interpreter (it has torch, numpy and h5py):

    /usr/bin/python3 tests/train/make_reference.py [OUT_DIR]   (default: tests/train/ref)

Builds a tiny GPT-2, a tiny Llama (grouped-query attention, untied head, rope_theta
1000), a tiny Llama 3.2 (tied head, rope_scaling llama3) and a tiny Qwen3 (q_norm/k_norm,
head_dim apart from hidden / heads, tied head), written from scratch in torch with Hugging
Face's semantics (no `transformers` here), with random weights and a nonzero LoRA (A and B
random, as after some training), and writes for each model NAME:

  NAME/config.json, NAME/model.safetensors          the base model as an HF folder
  NAME_adapter/adapter_config.json,
  NAME_adapter/adapter_model.safetensors            the LoRA init as a PEFT folder
  NAME_data.h5                                      /tokens int32 [N], attr vocab_size
  NAME_ref.safetensors                              the reference state (all F32):
      inputs, targets [B, T]      step 0's batch in the documented data order
      logits [B, T, V], loss []   forward of that batch
      grad.<PEFT name>            d loss / d every LoRA tensor (A and B)
      losses.adamw [10]           10 AdamW steps (lr 1e-2, wd 0.1), step s on batch s
      losses.sgd [10]             10 SGD steps (lr 0.1)
      losses.adamw_freeze_a [10]  AdamW, A frozen, only B trained
      losses.sgd_clip [10]        SGD lr 0.1 with clip_grad_norm_(0.05)
    and "__metadata__" with every hyper-parameter. Each loss is the batch loss before
    that step's update.

Data order (as documented for `mutual train`): step s, row i reads the window at
p = ((s*B + i)*T) mod (N - T); inputs tokens[p:p+T], targets tokens[p+1:p+T+1].

Deterministic: fixed seeds, one thread; the files are byte-identical on every run.
"""
import functools
import json
import math
import os
import struct
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
B, T, N_TOKENS, STEPS = 2, 16, 200, 10
RANK, ALPHA = 4, 8.0
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
SGD_LR, CLIP = 0.1, 0.05


# --------------------------------------------------------------------------- files


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> float32 numpy array. Keys sorted, header padded to 8."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_tokens(path, tokens, vocab):
    with h5py.File(path, "w", libver="earliest") as f:
        d = f.create_dataset("tokens", data=np.asarray(tokens, dtype=np.int32),
                             track_times=False)
        d.attrs["vocab_size"] = np.int64(vocab)


def batch(tokens, s):
    n = len(tokens)
    x = np.zeros((B, T), np.int64)
    y = np.zeros((B, T), np.int64)
    for i in range(B):
        p = ((s * B + i) * T) % (n - T)
        x[i] = tokens[p:p + T]
        y[i] = tokens[p + 1:p + T + 1]
    return torch.from_numpy(x), torch.from_numpy(y)


# --------------------------------------------------------------------------- LoRA


class Lora:
    """One adapted projection: out += (x @ A^T @ B^T) * alpha / r, A [r, in], B [out, r]."""

    def __init__(self, gen, fan_in, fan_out):
        bound = 1.0 / math.sqrt(fan_in)
        self.A = ((torch.rand(RANK, fan_in, generator=gen) * 2 - 1) * bound).requires_grad_()
        self.B = (torch.randn(fan_out, RANK, generator=gen) * 0.05).requires_grad_()

    def __call__(self, x):
        return (x @ self.A.t() @ self.B.t()) * (ALPHA / RANK)


def causal_attention(q, k, v):
    """q [B, H, T, hd], k/v [B, H, T, hd]: softmax(q k^T / sqrt(hd) + causal mask) v."""
    t = q.shape[2]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    att = att.masked_fill(~mask, float("-inf"))
    return F.softmax(att, dim=-1) @ v


# --------------------------------------------------------------------------- GPT-2

GPT2 = dict(vocab=64, ctx=32, d=32, layers=2, heads=4)


def gpt2_build(gen):
    V, P, C, L = GPT2["vocab"], GPT2["ctx"], GPT2["d"], GPT2["layers"]
    w = {"transformer.wte.weight": torch.randn(V, C, generator=gen) * 0.1,
         "transformer.wpe.weight": torch.randn(P, C, generator=gen) * 0.05}
    for l in range(L):
        p = f"transformer.h.{l}."
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
            w[p + ln + ".bias"] = 0.05 * torch.randn(C, generator=gen)
        for name, fi, fo in (("attn.c_attn", C, 3 * C), ("attn.c_proj", C, C),
                             ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)):
            w[p + name + ".weight"] = torch.randn(fi, fo, generator=gen) * 0.1  # Conv1D [in, out]
            w[p + name + ".bias"] = torch.randn(fo, generator=gen) * 0.02
    w["transformer.ln_f.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
    w["transformer.ln_f.bias"] = 0.05 * torch.randn(C, generator=gen)
    lora = {}
    for l in range(L):
        for name, fi, fo in (("attn.c_attn", C, 3 * C), ("attn.c_proj", C, C),
                             ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)):
            lora[f"base_model.model.transformer.h.{l}.{name}"] = Lora(gen, fi, fo)
    return w, lora


def gpt2_forward(w, lora, idx):
    C, H = GPT2["d"], GPT2["heads"]
    b, t = idx.shape
    x = w["transformer.wte.weight"][idx] + w["transformer.wpe.weight"][torch.arange(t)]

    def conv1d(h, name):
        out = h @ w[f"transformer.{name}.weight"] + w[f"transformer.{name}.bias"]
        return out + lora[f"base_model.model.transformer.{name}"](h)

    for l in range(GPT2["layers"]):
        p = f"transformer.h.{l}."
        h = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        q, k, v = conv1d(h, f"h.{l}.attn.c_attn").split(C, dim=-1)
        q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))
        y = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, C)
        x = x + conv1d(y, f"h.{l}.attn.c_proj")
        h = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
        m = F.gelu(conv1d(h, f"h.{l}.mlp.c_fc"), approximate="tanh")
        x = x + conv1d(m, f"h.{l}.mlp.c_proj")
    x = F.layer_norm(x, (C,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], 1e-5)
    return x @ w["transformer.wte.weight"].t()  # tied head


def gpt2_config():
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "vocab_size": GPT2["vocab"], "n_positions": GPT2["ctx"], "n_ctx": GPT2["ctx"],
            "n_embd": GPT2["d"], "n_layer": GPT2["layers"], "n_head": GPT2["heads"],
            "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "tie_word_embeddings": True, "torch_dtype": "float32"}


# --------------------------------------------------------------------------- Llama

LLAMA = dict(vocab=64, ctx=32, d=32, layers=2, heads=4, kv_heads=2, ff=64, theta=1000.0,
             eps=1e-6)
# Llama 3.2's shape of choices: tied head, rope_scaling llama3 (head_dim 8, theta 1000: one
# frequency kept, one smoothed, two divided by the factor at original length 64)
LLAMA32 = dict(LLAMA, ctx=128, d=32, heads=4, kv_heads=2, tied=True, rope_scaling={
    "rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64})
# Qwen3: q_norm/k_norm over each head, head_dim 12 (heads x head_dim 48 != hidden 32), no
# biases, tied head
QWEN3 = dict(LLAMA, model_type="qwen3", head_dim=12, theta=10000.0, tied=True, qk_norm=True)


def head_dim(S):
    return S.get("head_dim", S["d"] // S["heads"])


def proj_shapes(S):
    """(name, in, out) of every projection of a Llama-family layer."""
    C, F_, hd = S["d"], S["ff"], head_dim(S)
    qd, kvd = S["heads"] * hd, S["kv_heads"] * hd
    return (("self_attn.q_proj", C, qd), ("self_attn.k_proj", C, kvd),
            ("self_attn.v_proj", C, kvd), ("self_attn.o_proj", qd, C),
            ("mlp.gate_proj", C, F_), ("mlp.up_proj", C, F_), ("mlp.down_proj", F_, C))


def llama_build(gen, S=LLAMA):
    V, C, L, F_ = S["vocab"], S["d"], S["layers"], S["ff"]
    hd = head_dim(S)
    shapes = proj_shapes(S)
    w = {"model.embed_tokens.weight": torch.randn(V, C, generator=gen) * 0.1}
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
        if S.get("qk_norm"):
            w[p + "self_attn.q_norm.weight"] = 1 + 0.2 * torch.randn(hd, generator=gen)
            w[p + "self_attn.k_norm.weight"] = 1 + 0.2 * torch.randn(hd, generator=gen)
        for name, fi, fo in shapes:
            w[p + name + ".weight"] = torch.randn(fo, fi, generator=gen) * 0.1  # Linear [out, in]
    w["model.norm.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
    if not S.get("tied"):
        w["lm_head.weight"] = torch.randn(V, C, generator=gen) * 0.1
    lora = {}
    for l in range(L):
        for name, fi, fo in shapes:
            lora[f"base_model.model.model.layers.{l}.{name}"] = Lora(gen, fi, fo)
    return w, lora


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope(q, k, t, S):
    inv_freq, _ = hf_inv_freq(dict(llama_config(S), head_dim=head_dim(S)))
    freqs = torch.outer(torch.arange(t).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def llama_forward(w, lora, idx, S=LLAMA):
    C, H, KV, eps = S["d"], S["heads"], S["kv_heads"], S["eps"]
    hd = head_dim(S)
    b, t = idx.shape
    x = w["model.embed_tokens.weight"][idx]

    def linear(h, name):
        return h @ w[f"model.{name}.weight"].t() + lora[f"base_model.model.model.{name}"](h)

    for l in range(S["layers"]):
        p = f"layers.{l}."
        h = rms_norm(x, w["model." + p + "input_layernorm.weight"], eps)
        q = linear(h, p + "self_attn.q_proj").view(b, t, H, hd)
        k = linear(h, p + "self_attn.k_proj").view(b, t, KV, hd)
        if S.get("qk_norm"):  # Qwen3Attention: q_norm/k_norm on (b, t, heads, hd), over hd
            q = rms_norm(q, w["model." + p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w["model." + p + "self_attn.k_norm.weight"], eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(b, t, KV, hd).transpose(1, 2)
        q, k = rope(q, k, t, S)
        k = k.repeat_interleave(H // KV, dim=1)  # HF repeat_kv: kv head j serves j*rep..
        v = v.repeat_interleave(H // KV, dim=1)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, H * hd)
        x = x + linear(y, p + "self_attn.o_proj")
        h = rms_norm(x, w["model." + p + "post_attention_layernorm.weight"], eps)
        m = F.silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj")
        x = x + linear(m, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if S.get("tied") else w["lm_head.weight"]
    return x @ head.t()


def llama_config(S=LLAMA):
    kind = S.get("model_type", "llama")
    c = {"model_type": kind,
         "architectures": ["Qwen3ForCausalLM" if kind == "qwen3" else "LlamaForCausalLM"],
         "vocab_size": S["vocab"], "max_position_embeddings": S["ctx"],
         "hidden_size": S["d"], "intermediate_size": S["ff"],
         "num_hidden_layers": S["layers"], "num_attention_heads": S["heads"],
         "num_key_value_heads": S["kv_heads"], "rms_norm_eps": S["eps"],
         "rope_theta": S["theta"], "rope_scaling": S.get("rope_scaling"), "hidden_act": "silu",
         "attention_bias": False, "mlp_bias": False,
         "tie_word_embeddings": bool(S.get("tied")), "torch_dtype": "float32"}
    if "head_dim" in S or kind == "qwen3":
        c["head_dim"] = head_dim(S)
    if kind == "qwen3":
        c.update(use_sliding_window=False, sliding_window=None, max_window_layers=S["layers"],
                 layer_types=["full_attention"] * S["layers"])
    return c


# --------------------------------------------------------------------------- Gemma

# Gemma 2: sqrt(d) embedding scale, (1 + w) norms, four norms a layer, GeGLU, query_pre_attn_scalar
# apart from head_dim, softcaps small enough to bite on these weights, and a window of 5 on
# the even layers (T = 16, so it masks); head_dim 12 (heads x head_dim 48 != hidden 32).
GEMMA2 = dict(LLAMA, model_type="gemma2", layers=3, head_dim=12, theta=10000.0, tied=True,
              scalar=10.0, attn_cap=1.5, final_cap=2.0, window=5, pattern=2)
# Gemma 3: q/k norms with (1 + w), no softcaps, window 4 on layers 0 and 1 of 3 (pattern 3),
# the local layers at rope_local_base_freq 100 and the global one at rope_theta 10000 with
# rope_scaling linear 2 (as the 4B and larger models scale their global layers).
GEMMA3 = dict(LLAMA, model_type="gemma3_text", layers=3, head_dim=8, theta=10000.0, tied=True,
              scalar=16.0, window=4, pattern=3, local_theta=100.0, qk_norm=True,
              rope_scaling={"rope_type": "linear", "factor": 2.0})


def gemma_build(gen, S):
    V, C, L, F_ = S["vocab"], S["d"], S["layers"], S["ff"]
    hd = head_dim(S)
    shapes = proj_shapes(S)
    norms = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
             "post_feedforward_layernorm")
    w = {"model.embed_tokens.weight": torch.randn(V, C, generator=gen) * 0.1}
    for l in range(L):
        p = f"model.layers.{l}."
        for n in norms:  # Gemma stores w with the norm computing x * (1 + w)
            w[p + n + ".weight"] = 0.3 * torch.randn(C, generator=gen)
        if S.get("qk_norm"):
            w[p + "self_attn.q_norm.weight"] = 0.3 * torch.randn(hd, generator=gen)
            w[p + "self_attn.k_norm.weight"] = 0.3 * torch.randn(hd, generator=gen)
        for name, fi, fo in shapes:
            w[p + name + ".weight"] = torch.randn(fo, fi, generator=gen) * 0.1
    w["model.norm.weight"] = 0.3 * torch.randn(C, generator=gen)
    lora = {}
    for l in range(L):
        for name, fi, fo in shapes:
            lora[f"base_model.model.model.layers.{l}.{name}"] = Lora(gen, fi, fo)
    return w, lora


def gemma_norm(x, weight, eps):
    """Gemma2RMSNorm / Gemma3RMSNorm in fp32: x * rsqrt(mean(x^2) + eps) * (1 + w)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + weight)


def softcap(x, cap):
    return torch.tanh(x / cap) * cap if cap else x


def gemma_local(S, l):
    return bool(S.get("window")) and (l + 1) % S["pattern"] != 0


GEMMA_BITES = {}  # name -> how much the caps and the window change things, for the log


def gemma_forward(w, lora, idx, S):
    C, H, KV, eps = S["d"], S["heads"], S["kv_heads"], S["eps"]
    hd = head_dim(S)
    b, t = idx.shape
    # normalizer = torch.tensor(hidden_size ** 0.5, dtype=embedding dtype)
    x = w["model.embed_tokens.weight"][idx] * torch.tensor(C ** 0.5, dtype=torch.float32)

    def linear(h, name):
        return h @ w[f"model.{name}.weight"].t() + lora[f"base_model.model.model.{name}"](h)

    i = torch.arange(t)
    for l in range(S["layers"]):
        p = f"layers.{l}."
        local = gemma_local(S, l)
        h = gemma_norm(x, w["model." + p + "input_layernorm.weight"], eps)
        q = linear(h, p + "self_attn.q_proj").view(b, t, H, hd)
        k = linear(h, p + "self_attn.k_proj").view(b, t, KV, hd)
        if S.get("qk_norm"):
            q = gemma_norm(q, w["model." + p + "self_attn.q_norm.weight"], eps)
            k = gemma_norm(k, w["model." + p + "self_attn.k_norm.weight"], eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(b, t, KV, hd).transpose(1, 2)
        # Gemma 3's local layers: a copy of the config with rope_local_base_freq, no scaling
        RS = dict(S, theta=S["local_theta"], rope_scaling=None) \
            if local and "local_theta" in S else S
        q, k = rope(q, k, t, RS)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-1, -2)) * (S["scalar"] ** -0.5)
        raw = att
        att = softcap(att, S.get("attn_cap"))
        keep = i[None, :] <= i[:, None]  # causal
        if local:  # HF's sliding window: kv_idx > q_idx - sliding_window
            keep = keep & (i[None, :] > i[:, None] - S["window"])
        GEMMA_BITES.setdefault(S["model_type"], []).append(
            float((raw - att).abs().max()))
        att = att.masked_fill(~keep, float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, t, H * hd)
        y = gemma_norm(linear(y, p + "self_attn.o_proj"),
                       w["model." + p + "post_attention_layernorm.weight"], eps)
        x = x + y
        h = gemma_norm(x, w["model." + p + "pre_feedforward_layernorm.weight"], eps)
        m = F.gelu(linear(h, p + "mlp.gate_proj"), approximate="tanh") * \
            linear(h, p + "mlp.up_proj")
        m = gemma_norm(linear(m, p + "mlp.down_proj"),
                       w["model." + p + "post_feedforward_layernorm.weight"], eps)
        x = x + m
    x = gemma_norm(x, w["model.norm.weight"], eps)
    z = x @ w["model.embed_tokens.weight"].t()
    GEMMA_BITES.setdefault(S["model_type"] + ".final", []).append(
        float((z - softcap(z, S.get("final_cap"))).abs().max()))
    return softcap(z, S.get("final_cap"))


def gemma_config(S):
    g3 = S["model_type"] == "gemma3_text"
    n = S["layers"]
    c = {"model_type": S["model_type"],
         "architectures": ["Gemma3ForCausalLM" if g3 else "Gemma2ForCausalLM"],
         "vocab_size": S["vocab"], "max_position_embeddings": S["ctx"],
         "hidden_size": S["d"], "intermediate_size": S["ff"], "num_hidden_layers": n,
         "num_attention_heads": S["heads"], "num_key_value_heads": S["kv_heads"],
         "head_dim": head_dim(S), "rms_norm_eps": S["eps"], "rope_theta": S["theta"],
         "hidden_activation": "gelu_pytorch_tanh", "hidden_act": "gelu_pytorch_tanh",
         "query_pre_attn_scalar": S["scalar"], "sliding_window": S["window"],
         "attn_logit_softcapping": S.get("attn_cap"),
         "final_logit_softcapping": S.get("final_cap"), "attention_bias": False,
         "attention_dropout": 0.0, "tie_word_embeddings": True, "torch_dtype": "float32",
         "layer_types": ["sliding_attention" if gemma_local(S, l) else "full_attention"
                         for l in range(n)]}
    if g3:
        c.update(rope_local_base_freq=S["local_theta"], rope_scaling=S.get("rope_scaling"),
                 sliding_window_pattern=S["pattern"])
    return c


# --------------------------------------------------------------------------- RoPE scaling


def hf_inv_freq(cfg):
    """inv_freq as transformers' modeling_rope_utils computes it (default, linear, dynamic at
    init, llama3), written from _compute_*_parameters with the same torch operations, so the
    fp32 rounding is HF's. Returns (inv_freq, regime): regime 0 where llama3 leaves the
    frequency unchanged (high frequency), 1 smoothed (medium), 2 divided by factor (low);
    all 0 for other types."""
    base, dim = cfg["rope_theta"], cfg["head_dim"]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    regime = torch.zeros(dim // 2)
    rs = cfg.get("rope_scaling")
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        inv_freq /= rs["factor"]
    elif kind == "dynamic":  # at init: seq_len = max_position_embeddings
        max_pos = cfg["max_position_embeddings"]
        seq_len, factor = max_pos, rs["factor"]
        base = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    elif kind == "llama3":
        factor = rs["factor"]
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (
            high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + \
            smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
        regime = torch.where(wavelen > low_freq_wavelen, 2.0, 0.0) + is_medium_freq.float()
    elif kind not in (None, "default"):
        raise SystemExit(f"rope type {kind} not written here")
    return inv_freq, regime


def rope_case_config(hd, theta, max_pos, scaling):
    return {"model_type": "llama", "vocab_size": 64, "hidden_size": 2 * hd,
            "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": hd, "max_position_embeddings": max_pos,
            "rope_theta": theta, "rope_scaling": scaling}


LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
ROPE_CASES = {
    # Llama 3.2 1B/3B and Llama 3.1 8B as their config.json files give them
    "llama32_1b": rope_case_config(64, 500000.0, 131072, LLAMA3_ROPE),
    "llama31_8b": rope_case_config(128, 500000.0, 131072, dict(LLAMA3_ROPE, factor=8.0)),
    # every regime in four frequencies (the tiny models of the tests)
    "tiny_llama3": rope_case_config(8, 1000.0, 128, {
        "rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64}),
    # factors that fp32 does not hold exactly
    "odd_llama3": rope_case_config(32, 10000.0, 4096, {
        "rope_type": "llama3", "factor": 3.3, "low_freq_factor": 1.5, "high_freq_factor": 5.7,
        "original_max_position_embeddings": 1000}),
    "linear": rope_case_config(64, 10000.0, 4096, {"type": "linear", "factor": 4.0}),
    "linear_odd": rope_case_config(16, 10000.0, 4096, {"rope_type": "linear", "factor": 2.7}),
    "dynamic": rope_case_config(64, 10000.0, 4096, {"rope_type": "dynamic", "factor": 2.0}),
    "default": rope_case_config(128, 1000000.0, 40960, None),
}


def make_rope(out):
    """rope_ref.safetensors: inv_freq.NAME [hd/2], the unscaled inv_freq0.NAME and
    regime.NAME [hd/2] for every case, the case's config.json text in metadata config.NAME."""
    ref, meta = {}, {"torch": torch.__version__}
    for name, cfg in ROPE_CASES.items():
        inv, regime = hf_inv_freq(cfg)
        ref["inv_freq." + name] = inv.numpy()
        ref["inv_freq0." + name] = hf_inv_freq(dict(cfg, rope_scaling=None))[0].numpy()
        ref["regime." + name] = regime.numpy()
        meta["config." + name] = json.dumps(cfg, sort_keys=True)
    write_safetensors(os.path.join(out, "rope_ref.safetensors"), ref, meta)
    print(f"rope: {len(ROPE_CASES)} inv_freq cases")


# --------------------------------------------------------------------------- reference


def lora_tensors(lora):
    out = {}
    for mod, ad in lora.items():
        out[mod + ".lora_A.weight"] = ad.A
        out[mod + ".lora_B.weight"] = ad.B
    return out


def run_steps(forward, w, lora_init, tokens, opt_name, freeze_a=False, clip=None):
    lora = {}
    for mod, ad in lora_init.items():
        c = Lora.__new__(Lora)
        c.A = ad.A.detach().clone().requires_grad_(not freeze_a)
        c.B = ad.B.detach().clone().requires_grad_()
        lora[mod] = c
    params = [p for ad in lora.values() for p in ((ad.B,) if freeze_a else (ad.A, ad.B))]
    if opt_name == "adamw":
        opt = torch.optim.AdamW(params, **ADAMW)
    else:
        opt = torch.optim.SGD(params, lr=SGD_LR)
    losses, norms = [], []
    for s in range(STEPS):
        x, y = batch(tokens, s)
        opt.zero_grad()
        loss = F.cross_entropy(forward(w, lora, x).reshape(-1, forward.vocab), y.reshape(-1))
        loss.backward()
        if clip is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
        opt.step()
        losses.append(loss.item())
    if clip is not None and min(norms) <= clip:
        raise SystemExit(f"clip {clip} does not engage (norms {norms})")
    return np.array(losses, np.float32)


def make(out, name, build, forward, config, vocab, fan_in_fan_out, targets, seed):
    gen = torch.Generator().manual_seed(seed)
    w, lora = build(gen)
    tokens = torch.randint(0, vocab, (N_TOKENS,), generator=gen).numpy()
    forward.vocab = vocab

    os.makedirs(os.path.join(out, name), exist_ok=True)
    os.makedirs(os.path.join(out, name + "_adapter"), exist_ok=True)
    write_json(os.path.join(out, name, "config.json"), config())
    write_safetensors(os.path.join(out, name, "model.safetensors"),
                      {k: v.numpy() for k, v in w.items()}, {"format": "pt"})
    write_json(os.path.join(out, name + "_adapter", "adapter_config.json"),
               {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK,
                "lora_alpha": ALPHA, "target_modules": targets, "lora_dropout": 0.0,
                "bias": "none", "base_model_name_or_path": name,
                "fan_in_fan_out": fan_in_fan_out, "use_rslora": False,
                "inference_mode": False})
    write_safetensors(os.path.join(out, name + "_adapter", "adapter_model.safetensors"),
                      {k: v.detach().numpy() for k, v in lora_tensors(lora).items()},
                      {"format": "pt"})
    write_tokens(os.path.join(out, name + "_data.h5"), tokens, vocab)

    x, y = batch(tokens, 0)
    logits = forward(w, lora, x)
    loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
    loss.backward()
    ref = {"inputs": x.numpy().astype(np.float32), "targets": y.numpy().astype(np.float32),
           "logits": logits.detach().numpy(), "loss": np.array(loss.item(), np.float32)}
    for k, v in lora_tensors(lora).items():
        ref["grad." + k] = v.grad.numpy()
    ref["losses.adamw"] = run_steps(forward, w, lora, tokens, "adamw")
    ref["losses.sgd"] = run_steps(forward, w, lora, tokens, "sgd")
    ref["losses.adamw_freeze_a"] = run_steps(forward, w, lora, tokens, "adamw", freeze_a=True)
    ref["losses.sgd_clip"] = run_steps(forward, w, lora, tokens, "sgd", clip=CLIP)
    meta = {"B": str(B), "T": str(T), "steps": str(STEPS), "rank": str(RANK),
            "alpha": repr(ALPHA), "adamw_lr": repr(ADAMW["lr"]),
            "adamw_betas": "0.9,0.999", "adamw_eps": repr(ADAMW["eps"]),
            "adamw_weight_decay": repr(ADAMW["weight_decay"]), "sgd_lr": repr(SGD_LR),
            "sgd_clip": repr(CLIP), "torch": torch.__version__,
            "data_order": "p = ((s*B + i)*T) mod (N - T)"}
    write_safetensors(os.path.join(out, name + "_ref.safetensors"), ref, meta)
    print(f"{name}: loss {loss.item():.6f}, adamw {ref['losses.adamw'][-1]:.6f}, "
          f"sgd {ref['losses.sgd'][-1]:.6f}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "ref")
    torch.manual_seed(0)
    make(out, "gpt2", gpt2_build, gpt2_forward, gpt2_config, GPT2["vocab"], True,
         ["c_attn", "c_proj", "c_fc"], seed=1234)
    make(out, "llama", llama_build, llama_forward, llama_config, LLAMA["vocab"], False,
         ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
         seed=5678)
    for name, spec, seed in (("llama32", LLAMA32, 9012), ("qwen3", QWEN3, 3456)):
        fwd = functools.partial(llama_forward, S=spec)
        make(out, name, functools.partial(llama_build, S=spec), fwd,
             functools.partial(llama_config, spec), spec["vocab"], False,
             ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
             seed=seed)
    make_rope(out)
    for name, spec, seed in (("gemma2", GEMMA2, 7788), ("gemma3", GEMMA3, 9900)):
        make(out, name, functools.partial(gemma_build, S=spec),
             functools.partial(gemma_forward, S=spec), functools.partial(gemma_config, spec),
             spec["vocab"], False,
             ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
             seed=seed)
    for k, v in GEMMA_BITES.items():
        print(f"  {k}: largest change by a softcap {max(v):.3f}")


if __name__ == "__main__":
    main()
