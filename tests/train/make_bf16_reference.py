#!/usr/bin/python3
"""make_bf16_reference.py - PyTorch references for mutual's bf16 base (tr_model_set_bf16).

Run with Debian's interpreter after make_reference.py (same models, same seeds):

    /usr/bin/python3 tests/train/make_bf16_reference.py [OUT_DIR]   (default: tests/train/ref)

For each model NAME of make_reference.py (gpt2, llama, qwen3, gemma2, gemma3) it rebuilds the same weights,
LoRA and tokens, and runs the same step with the base in bf16 as mutual computes it:

  - every 2-D base weight (linears, embeddings, LM head) rounded to bf16 (round to nearest
    even, torch's .bfloat16());
  - every product with one: forward y = bf16(x) @ W, input gradient dx = bf16(dy) @ W^T,
    the bf16 values exact in fp32 and the products summed in fp32 (torch fp32 matmul);
    no gradient reaches the rounding (the base is frozen; LoRA sees the fp32 x);
  - norms, attention, LoRA, the loss and the optimizer in fp32.

and writes NAME_bf16_ref.safetensors (all F32): logits [B, T, V], loss [], grad.<PEFT name>
for every LoRA tensor, losses.adamw [10] (the AdamW run of make_reference.py). It first checks
that the rebuilt fp32 model gives make_reference.py's stored loss (within 1e-6: BLAS builds
sum in other orders), so the two files describe the same model. Deterministic: one thread, fixed seeds.
"""
import functools
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as mr  # noqa: E402


def read_f32(path):
    """The F32 tensors of a safetensors file, as numpy arrays."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k != "__metadata__" and v["dtype"] == "F32":
            a, b = v["data_offsets"]
            out[k] = np.frombuffer(data[a:b], np.float32).reshape(v["shape"])
    return out


def bf16(t):
    return t.bfloat16().float()


class BF16Product(torch.autograd.Function):
    """y = bf16(x) @ w (w already bf16-valued, no gradient); dx = bf16(dy) @ w^T."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(w)
        return bf16(x) @ w

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return bf16(g) @ w.t(), None


class BF16Weight:
    """A frozen 2-D weight held in bf16: `x @ W`, `x @ W.t()` and row lookups `W[idx]`."""

    def __init__(self, t):
        self.w = t

    def t(self):
        return BF16Weight(self.w.t())

    def __rmatmul__(self, x):
        return BF16Product.apply(x, self.w)

    def __getitem__(self, idx):
        return self.w[idx]


def bf16_base(w):
    return {k: BF16Weight(bf16(v)) if v.dim() == 2 else v for k, v in w.items()}


def make(out, name, build, forward, vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    w, lora = build(gen)
    tokens = torch.randint(0, vocab, (mr.N_TOKENS,), generator=gen).numpy()
    forward.vocab = vocab
    stored = read_f32(os.path.join(out, name + "_ref.safetensors"))
    x, y = mr.batch(tokens, 0)
    loss32 = F.cross_entropy(forward(w, lora, x).reshape(-1, vocab), y.reshape(-1)).item()
    if abs(loss32 - float(stored["loss"])) > 1e-6 * abs(loss32):  # summation order only
        raise SystemExit(f"{name}: rebuilt fp32 loss {loss32} is not the stored "
                         f"{float(stored['loss'])}: run make_reference.py first")
    wb = bf16_base(w)
    logits = forward(wb, lora, x)
    loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
    loss.backward()
    ref = {"logits": logits.detach().numpy(), "loss": np.array(loss.item(), np.float32)}
    for k, v in mr.lora_tensors(lora).items():
        ref["grad." + k] = v.grad.numpy()
    ref["losses.adamw"] = mr.run_steps(forward, wb, lora, tokens, "adamw")
    meta = {"torch": torch.__version__, "base": "bf16 (round to nearest even)",
            "products": "bf16(x) @ W and bf16(dy) @ W^T, fp32 sums"}
    mr.write_safetensors(os.path.join(out, name + "_bf16_ref.safetensors"), ref, meta)
    print(f"{name}: bf16 loss {loss.item():.6f} (fp32 {loss32:.6f}), "
          f"adamw {ref['losses.adamw'][-1]:.6f}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "ref")
    torch.manual_seed(0)
    make(out, "gpt2", mr.gpt2_build, mr.gpt2_forward, mr.GPT2["vocab"], seed=1234)
    make(out, "llama", mr.llama_build, mr.llama_forward, mr.LLAMA["vocab"], seed=5678)
    fwd = functools.partial(mr.llama_forward, S=mr.QWEN3)
    make(out, "qwen3", functools.partial(mr.llama_build, S=mr.QWEN3), fwd, mr.QWEN3["vocab"],
         seed=3456)
    for name, spec, seed in (("gemma2", mr.GEMMA2, 7788), ("gemma3", mr.GEMMA3, 9900)):
        make(out, name, functools.partial(mr.gemma_build, S=spec),
             functools.partial(mr.gemma_forward, S=spec), spec["vocab"], seed=seed)


if __name__ == "__main__":
    main()
