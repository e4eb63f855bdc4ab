/* tr_testmodel.h - tiny random models for the compute tests. */
#ifndef TR_TESTMODEL_H
#define TR_TESTMODEL_H

#include <string.h>

#include "tr_model.h"
#include "train/tr_testutil.h"

static inline tr_config tt_gpt2_config(void)
{
    tr_config c = {.family = TR_GPT2,
                   .vocab_size = 11,
                   .max_pos = 8,
                   .d_model = 8,
                   .n_layer = 2,
                   .n_head = 2,
                   .norm_eps = 1e-5f,
                   .tied_head = 1};
    return c;
}

static inline tr_config tt_llama_config(void)
{
    tr_config c = {.family = TR_LLAMA,
                   .vocab_size = 13,
                   .max_pos = 8,
                   .d_model = 8,
                   .n_layer = 2,
                   .n_head = 4,
                   .n_kv_head = 2,
                   .d_ff = 12,
                   .norm_eps = 1e-6f,
                   .rope_theta = 1000.0f,
                   .tied_head = 0,
                   .qkv_bias = 1};
    return c;
}

/* Every base tensor random; norm weights around 1 so activations stay well scaled (Gemma's
 * stored w around 0: its norms multiply by 1 + w). */
static inline void tt_fill_base(tr_model *m, uint64_t seed)
{
    float one = tr_model_config(m)->gemma ? 0.0f : 1.0f;
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        tt_fill(t.data, t.numel, seed + (uint64_t)i * 7919, 0.5f);
        if (strstr(t.name, "norm") || strstr(t.name, "ln_")) {
            if (strstr(t.name, "weight"))
                for (int64_t j = 0; j < t.numel; j++)
                    t.data[j] = one + 0.2f * t.data[j];
        }
    }
}

/* Every LoRA tensor random (B nonzero, as after some training). */
static inline void tt_fill_lora(tr_model *m, uint64_t seed)
{
    for (int i = 0; i < tr_lora_count(m); i++) {
        tr_tensor t;
        tr_lora_tensor(m, i, &t);
        tt_fill(t.data, t.numel, seed + (uint64_t)i * 104729, 0.3f);
    }
}

static inline void tt_tokens(int32_t *tok, int n, int V, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        s = tr_splitmix64(s);
        tok[i] = (int32_t)(s % (uint64_t)V);
    }
}

#endif
