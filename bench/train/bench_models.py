"""bench_models.py - the model shapes of bench/train's PyTorch sides, in one table:
torch_step.py (a LoRA step, bench/train_vs_torch) and gen_torch.py (generation,
bench/gen_vs_torch) import it, as train_step_bench.c and gen_bench.c include bench_models.h,
the same rows for the C side (keep the two in step).
"""

CONFIGS = {  # GPT-2 family, name: (V, C, L, H, T, B)
    "small": (256, 256, 4, 4, 128, 8),
    "gpt2s": (256, 768, 12, 12, 256, 4),
}
# Llama family: V, C, L, H, KV, F, T, B, rope_theta, q/k/v biases, rope_scaling llama3
# (factor 32, low 1, high 4, original 8192). T x B: train_step_bench's batch.
LLAMA_CONFIGS = {
    "qwen05": (151936, 896, 24, 14, 2, 4864, 512, 4, 1e6, True, False),  # Qwen2.5-0.5B
    "smollm135": (49152, 576, 30, 9, 3, 1536, 256, 2, 1e5, False, False),  # SmolLM2-135M
    "smollm360": (49152, 960, 32, 15, 5, 2560, 512, 4, 1e5, False, False),  # SmolLM2-360M
    "llama1b": (128256, 2048, 16, 32, 8, 8192, 512, 2, 5e5, False, True),  # Llama-3.2-1B, 2 x 512
    "tinyllama": (512, 64, 2, 4, 2, 128, 32, 2, 1e4, True, True),
}
# The models' own rms_norm_eps (gen_torch.py; torch_step.py, like train_step_bench, uses 1e-5
# for every config).
EPS = {"qwen05": 1e-6, "smollm135": 1e-5, "smollm360": 1e-5, "llama1b": 1e-5, "tinyllama": 1e-5}
