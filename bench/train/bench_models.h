/* bench_models.h - the model shapes the train/ benches run, in one table: train_step_bench (a
 * LoRA step, bench/train_vs_torch) and gen_bench (generation, bench/gen_vs_torch) pick a row
 * by name. bench_models.py is the same table for the torch sides (torch_step.py,
 * gen_torch.py). Header-only (static). */
#ifndef BENCH_MODELS_H
#define BENCH_MODELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tr_model.h"

typedef struct {
    const char *name;
    int V, C, L, H, T, B; /* vocab, width, layers, heads; train_step_bench's batch B x T */
    int llama, KV, F;     /* llama: Llama family (tied head, RMSNorm, SwiGLU, RoPE) */
    float theta;          /* Llama: rope_theta */
    int qkv_bias;         /* Llama: q/k/v biases (Qwen2) */
    int llama3_rope;      /* Llama: rope_scaling llama3 as Llama 3.2 has it */
    float amp;            /* train_step_bench: base weights (but norm weights, 1) amp * U(-1, 1) */
    float eps;            /* the model's rms_norm_eps (gen_bench; train_step_bench uses 1e-5) */
    int max_pos;          /* the model's max_position_embeddings (gen_bench) */
} bench_cfg;

static const bench_cfg CONFIGS[] = {
    {"small", 256, 256, 4, 4, 128, 8, 0, 0, 0, 0.0f, 0, 0, 0.02f, 1e-5f, 128},
    {"gpt2s", 256, 768, 12, 12, 256, 4, 0, 0, 0, 0.0f, 0, 0, 0.02f, 1e-5f, 256},
    /* Qwen2.5-0.5B's shape (config.json: hidden 896, 24 layers, 14 heads, 2 KV heads,
     * intermediate 4864, vocab 151,936, tied, q/k/v biases, rope_theta 1e6, rms_norm_eps
     * 1e-6, max_position_embeddings 32768), batch 4 x 512, LoRA r 16 on q,k,v,o. */
    {"qwen05", 151936, 896, 24, 14, 512, 4, 1, 2, 4864, 1e6f, 1, 0, 0.02f, 1e-6f, 32768},
    /* The same at batch 4 x 1024 (the size for checkpointing to fit in a few GB). */
    {"qwen05_1k", 151936, 896, 24, 14, 1024, 4, 1, 2, 4864, 1e6f, 1, 0, 0.02f, 1e-6f, 32768},
    /* SmolLM2-360M (config.json: hidden 960, 32 layers, 15 heads, 5 KV heads, intermediate
     * 2560, vocab 49,152, tied, rope_theta 100000, no biases, max_position_embeddings 8192),
     * batch 4 x 512. */
    /* SmolLM2-135M (config.json: hidden 576, 30 layers, 9 heads, 3 KV heads, intermediate 1536,
     * vocab 49,152, tied, rope_theta 100000), batch 2 x 256: an org's round in org_bf16.sh. */
    {"smollm135", 49152, 576, 30, 9, 256, 2, 1, 3, 1536, 1e5f, 0, 0, 0.02f, 1e-5f, 8192},
    {"smollm360", 49152, 960, 32, 15, 512, 4, 1, 5, 2560, 1e5f, 0, 0, 0.02f, 1e-5f, 8192},
    /* Llama-3.2-1B (hidden 2048, 16 layers, 32 heads, 8 KV heads, intermediate 8192, vocab
     * 128,256, tied, rope_theta 500000, rope_scaling llama3 factor 32, low 1, high 4,
     * original 8192, max_position_embeddings 131072), batch 2 x 512: at 4 x 512 torch's fp32
     * step would need about 20 GB (its attention keeps 3 B x H x T x T tensors a layer) of
     * this 23 GB machine. */
    {"llama1b", 128256, 2048, 16, 32, 512, 2, 1, 8, 8192, 5e5f, 0, 1, 0.02f, 1e-5f, 131072},
    /* Small Llama family with every option the real shapes use (GQA, q/k/v biases, llama3
     * rope_scaling in all three regimes at head_dim 16): torch_step.py --config tinyllama
     * rebuilds the same weights and batch and must give the same first loss. Weights of
     * 0.25 so that the loss depends on every part of the block (at 0.02 it is ln V to 6
     * digits whatever RoPE does). */
    {"tinyllama", 512, 64, 2, 4, 32, 2, 1, 2, 128, 1e4f, 1, 1, 0.25f, 1e-5f, 32},
    /* A vocabulary of 2^20 at batch 129 x 16: 2^31 + 2^24 logits a step, which the
     * chunked cross-entropy never holds (GPT-2 family, width 64, one layer). */
    {"bigvocab", 1 << 20, 64, 1, 2, 16, 129, 0, 0, 0, 0.0f, 0, 0, 0.02f, 1e-5f, 16},
};

/* The row named `name`, or NULL. */
static inline const bench_cfg *bench_cfg_find(const char *name)
{
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        if (!strcmp(CONFIGS[i].name, name))
            return &CONFIGS[i];
    return NULL;
}

/* The model config of a row, with the model's max_position_embeddings and rms_norm_eps (a
 * bench that runs otherwise sets its own). */
static inline tr_config bench_model_config(const bench_cfg *bc)
{
    tr_config cfg = {.family = bc->llama ? TR_LLAMA : TR_GPT2,
                     .vocab_size = bc->V,
                     .max_pos = bc->max_pos,
                     .d_model = bc->C,
                     .n_layer = bc->L,
                     .n_head = bc->H,
                     .n_kv_head = bc->KV,
                     .d_ff = bc->F,
                     .norm_eps = bc->eps,
                     .rope_theta = bc->theta,
                     .tied_head = 1,
                     .qkv_bias = bc->qkv_bias};
    if (bc->llama3_rope)
        cfg.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LLAMA3,
                                             .factor = 32.0,
                                             .low_freq_factor = 1.0,
                                             .high_freq_factor = 4.0,
                                             .orig_max_pos = 8192};
    return cfg;
}

/* splitmix64: the random stream both benches (and torch_step.py's Splitmix) draw from. */
static inline uint64_t bench_next(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
