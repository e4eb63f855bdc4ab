/* tr_generate.h - text generation with a KV cache, and the samplers that pick each token.
 *
 * Life of a generation:
 *
 *   tr_gen *g = tr_gen_new(m, 0, d);           keys/values for up to max_pos tokens
 *   tr_gen_feed(g, prompt, n, logits, d);      prefill: logits (V) of the last prompt token
 *   tr_sampler *s = tr_sampler_new(&scfg, seed, V);
 *   loop: t = tr_sampler_pick(s, logits, V); tr_gen_feed(g, &t, 1, logits, d);
 *
 * The inference forward runs the model's own kernels (norms, q/k norms, RoPE with
 * rope_scaling, SwiGLU/GELU, the fused linear + LoRA) on the rows being fed only: each
 * layer's keys and values (after q/k norms and RoPE) are appended to the cache, and attention
 * reads them back, so a token costs one row of work instead of the whole sequence. The LoRA
 * adapter attached to the model (tr_lora_attach, its tensors filled) is applied unmerged, as
 * the training forward applies it (without dropout). Nothing of the training activations is
 * allocated or touched; the model is only read, so one model may serve several tr_gen in
 * turn (not at the same time from several threads: tr_threads_set is process-wide).
 *
 * Exactness: the logits of each fed token equal those of tr_model_eval on the whole sequence
 * at that position within fp32 rounding (products are summed in another order); the test
 * (tests/train/test_generate.c) states the measured difference.
 *
 * Errors: MU_OK or a negative MU_ERR_* (mu_err.h) with a line in diag (may be NULL);
 * constructors return NULL and change nothing.
 */
#ifndef TR_GENERATE_H
#define TR_GENERATE_H

#include <stdint.h>

#include "mu_err.h"
#include "tr_model.h"

typedef struct tr_gen tr_gen;

/* A generator over m (borrowed: m must outlive it and keep its shapes and LoRA attachment)
 * with a cache for max_ctx tokens (0: the model's max_pos; more than max_pos is refused).
 * Memory: 2 * L * max_ctx * KV * hd floats of cache plus scratch for TR_GEN_CHUNK rows.
 * NULL (diag says why) on a bad max_ctx or out of memory. */
#define TR_GEN_CHUNK 64
tr_gen *tr_gen_new(tr_model *m, int max_ctx, mu_diag *diag);
/* Frees the cache and scratch; NULL is a no-op. */
void tr_gen_free(tr_gen *g);

/* Forgets every cached token: the next feed starts at position 0. */
void tr_gen_reset(tr_gen *g);
/* Tokens cached so far (the position of the next token fed). */
int tr_gen_pos(const tr_gen *g);

/* Runs tokens[0..n) at positions pos..pos+n-1 (in chunks of TR_GEN_CHUNK rows), appending
 * their keys and values to the cache; logits (V floats, may be NULL) receives the logits
 * of the last of them. MU_ERR_INVALID (nothing changed) for n < 1, a token outside [0, V),
 * or pos + n beyond max_ctx. */
int tr_gen_feed(tr_gen *g, const int32_t *tokens, int n, float *logits, mu_diag *diag);

/* ---------------------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------------------- */

/* How the next token is drawn from the logits, in Hugging Face's order: divide by
 * temperature, keep the top_k largest, keep the smallest set of the most likely whose
 * probability reaches top_p, draw from what is left renormalised.
 *   temperature 0: greedy (the argmax; the lowest id among equal logits). > 0 otherwise.
 *   top_k 0: no limit; >= 1 otherwise (1 is greedy).
 *   top_p in (0, 1]; 1: no limit. */
typedef struct {
    float temperature;
    int top_k;
    float top_p;
} tr_sample_config;

/* Checks the ranges above. MU_ERR_INVALID naming the field. */
int tr_sample_config_check(const tr_sample_config *c, mu_diag *diag);

typedef struct tr_sampler tr_sampler;

/* A sampler for vocabularies of up to V tokens with its own generator seeded by `seed`
 * (splitmix64: the same seed and logits give the same tokens on every machine and thread
 * count). NULL on a bad config (diag) or out of memory. */
tr_sampler *tr_sampler_new(const tr_sample_config *c, uint64_t seed, int V, mu_diag *diag);
void tr_sampler_free(tr_sampler *s);
/* The next token for logits (V floats, V <= the V given at creation; every logit finite).
 * Draws one 53-bit uniform from the generator unless the config is greedy. */
int32_t tr_sampler_pick(tr_sampler *s, const float *logits, int V);
/* The argmax of logits (V), lowest index among ties. */
int32_t tr_argmax(const float *logits, int V);

#endif
