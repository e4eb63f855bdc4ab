/* cl_tiny.h - a random tiny GPT-2 and token data for client and sim tests. */
#ifndef CL_TINY_H
#define CL_TINY_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tr_data.h"
#include "tr_model.h"
#include "tr_safetensors.h"

#define TINY_V 32
#define TINY_C 16
#define TINY_P 16

static inline uint64_t tiny_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t x = *s;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A GPT-2 with 1 layer, d 16, 2 heads, vocab 32, context 16; base weights uniform in
 * [-0.2, 0.2] (layer-norm weights 1) from `seed`. */
/* The tiny GPT-2 with n_layer layers (tiny_model: one). */
static inline tr_model *tiny_model_layers(uint64_t seed, int n_layer)
{
    tr_config c = {.family = TR_GPT2,
                   .vocab_size = TINY_V,
                   .max_pos = TINY_P,
                   .d_model = TINY_C,
                   .n_layer = n_layer,
                   .n_head = 2,
                   .norm_eps = 1e-5f,
                   .tied_head = 1};
    tr_model *m = tr_model_new(&c, NULL);
    if (!m)
        return NULL;
    uint64_t st = seed;
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        int is_ln_w = strstr(t.name, "ln_") && strstr(t.name, ".weight");
        for (int64_t k = 0; k < t.numel; k++)
            t.data[k] =
                is_ln_w ? 1.0f : (float)((double)(tiny_next(&st) >> 11) * 0x1p-53 * 0.4 - 0.2);
    }
    return m;
}

static inline tr_model *tiny_model(uint64_t seed)
{
    return tiny_model_layers(seed, 1);
}

/* Writes the tiny model with n_layer layers as a Hugging Face folder DIR (config.json +
 * model.safetensors, F32). */
static inline int tiny_write_folder_layers(const char *dir, uint64_t seed, int n_layer)
{
    tr_model *m = tiny_model_layers(seed, n_layer);
    if (!m)
        return -1;
    mkdir(dir, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        tr_model_free(m);
        return -1;
    }
    fprintf(f,
            "{\"model_type\": \"gpt2\", \"activation_function\": \"gelu_new\", "
            "\"vocab_size\": %d, \"n_positions\": %d, \"n_ctx\": %d, \"n_embd\": %d, "
            "\"n_layer\": %d, \"n_head\": 2, \"n_inner\": null, "
            "\"layer_norm_epsilon\": 1e-05, \"tie_word_embeddings\": true}\n",
            TINY_V, TINY_P, TINY_P, TINY_C, n_layer);
    fclose(f);
    int n = tr_model_base_count(m);
    tr_st_entry *e = calloc((size_t)n, sizeof *e);
    for (int i = 0; i < n; i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        e[i].name = t.name;
        e[i].ndim = t.ndim;
        for (int d = 0; d < t.ndim; d++)
            e[i].shape[d] = t.shape[d];
        e[i].data = t.data;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = tr_st_write(path, e, (size_t)n, NULL, NULL);
    free(e);
    tr_model_free(m);
    return rc;
}

/* The one-layer tiny model as a Hugging Face folder. */
static inline int tiny_write_folder(const char *dir, uint64_t seed)
{
    return tiny_write_folder_layers(dir, seed, 1);
}

/* n tokens of "domain" `dom`: a noisy cycle through the vocabulary with stride 1 + dom, so
 * different domains teach different next-token rules. */
static inline void tiny_tokens(int32_t *out, int64_t n, int dom, uint64_t seed)
{
    uint64_t st = seed * 1000 + (uint64_t)dom;
    int32_t x = (int32_t)(tiny_next(&st) % TINY_V);
    for (int64_t i = 0; i < n; i++) {
        out[i] = x;
        x = (x + 1 + dom) % TINY_V;
        if (tiny_next(&st) % 8 == 0)
            x = (int32_t)(tiny_next(&st) % TINY_V);
    }
}

static inline int tiny_write_data(const char *path, int64_t n, int dom, uint64_t seed)
{
    int32_t *t = malloc(sizeof *t * (size_t)n);
    if (!t)
        return -1;
    tiny_tokens(t, n, dom, seed);
    int rc = tr_data_write(path, t, n, TINY_V, NULL);
    free(t);
    return rc;
}

#endif
