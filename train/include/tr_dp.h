/* tr_dp.h - DP-SGD on the LoRA parameters inside one org (Abadi et al. 2016, as Opacus runs
 * it): the unit protected is one record, one sequence window of the dataset.
 *
 * One step:
 *   1. sample a batch of records (tr_dp_sample): Poisson, each record independently with
 *      probability q = batch / N (the sampling the accountant's amplification assumes), or
 *      a fixed-size sample of `batch` distinct records (no amplification is claimed for it);
 *   2. g_i = gradient of record i's own loss (its mean token cross-entropy) w.r.t. the
 *      trainable LoRA vector, for every record i of the batch;
 *   3. clip: g_i * min(1, C / ||g_i||);
 *   4. G = (sum_i clipped g_i + N(0, (z C)^2 I)) / E[batch], E[batch] = batch (q N);
 *   5. the optimizer's update with G (its grad_clip, if set, is post-processing).
 *
 * Per-record gradients, exactly and cheaply. A LoRA module's gradient for record i is a
 * product of the record's T rows only: dB_i = s dY_i^T H_i (out x R, H = x A^T) and dA_i =
 * dH_i^T X_i (R x in), with dY_i, H_i, dH_i, X_i the record's rows of tensors the ordinary
 * backward computes anyway. Forming them costs T R (out + in) flops per module, the flops of
 * the batched gradient itself; the "ghost norm" ||dY_i^T H_i||^2 = <dY_i dY_i^T, H_i H_i^T>
 * (Goodfellow 2015, Li et al. 2021) is exact too but costs T^2 (out + R), more whenever the
 * rank R is below the sequence length T, which is LoRA's case. So the backward writes each
 * record's gradient, module by module, into one (B, n) block (n = the trainable count; 4 B n
 * bytes: 1.5 MB for the `small` bench config) and no second backward is needed: the norms,
 * clipping factors and weighted sum are one pass over that block. The ordinary batched
 * gradient is also still accumulated (tr_lora_grad), then replaced by G.
 *
 * Noise: Gaussian doubles by Box-Muller on pairs of 53-bit uniforms, the usual float noise of
 * DP-SGD libraries (Opacus, TF Privacy draw floating-point Gaussians too); it is not an exact
 * sampler (floating-point noise leaks through its low bits, Mironov 2012), so the exact
 * discrete Gaussian of privacy/ (dp_sample.h) is the one to use for noise that is released
 * as is. The uniforms come from privacy/'s ChaCha20 stream (dp_rng) keyed by BLAKE2b of
 * the seed (reproducible runs) or by a caller's 32-byte key (runs whose noise nobody can
 * regenerate); step s draws its noise from stream 2 s and its sample from stream 2 s + 1, so a
 * run is reproducible from its seed and step s's draws do not depend on earlier steps.
 *
 * Threads: a tr_dp belongs to one model and is driven by one thread, like the model.
 * Errors as tr_model.h: MU_OK or a negative MU_ERR_*, diag (may be NULL) says which field.
 */
#ifndef TR_DP_H
#define TR_DP_H

#include <stdint.h>

#include "mu_err.h"
#include "tr_model.h"

typedef enum { TR_DP_POISSON = 1, TR_DP_FIXED = 2 } tr_dp_sampling;

typedef struct {
    double clip;             /* C > 0; INFINITY: no clipping (then noise must be 0) */
    double noise;            /* z >= 0: the noise's std is z C per coordinate */
    tr_dp_sampling sampling; /* TR_DP_POISSON or TR_DP_FIXED */
    int64_t n_records;       /* N >= 1: records in the dataset */
    int batch;               /* 1 <= batch <= N: fixed size, or the expected Poisson size */
    uint64_t seed;           /* keys the noise and sampling streams (when key is NULL) */
    const uint8_t *key;      /* NULL, or TR_DP_KEY_BYTES random bytes that key them instead
                                (copied by tr_dp_new; not kept) */
} tr_dp_config;

#define TR_DP_KEY_BYTES 32

/* Checks every field; MU_ERR_INVALID naming the first bad one ("dp: clip must be ..."). */
int tr_dp_config_check(const tr_dp_config *cfg, mu_diag *diag);

typedef struct tr_dp tr_dp;

/* A DP-SGD state for model m (LoRA attached; the trainable count is fixed from now on).
 * NULL with diag set on a bad config, no LoRA or out of memory. m stays borrowed. */
tr_dp *tr_dp_new(const tr_dp_config *cfg, tr_model *m, mu_diag *diag);
/* Wipes the stream key and the per-record gradients, frees. NULL is a no-op. */
void tr_dp_free(tr_dp *dp);

/* Step s's sample of record indices in [0, N), ascending, into idx (room for N): returns
 * how many (Poisson: may be 0; fixed: batch). A pure function of (seed, s). */
int64_t tr_dp_sample(tr_dp *dp, uint64_t step, int64_t *idx);

/* Steps 2-4 above for the B records inputs/targets [B, T] (B = 0 is an empty Poisson batch:
 * G is the noise alone, no forward). Writes G into grad[0..n) (n = trainable count) and the
 * batch's mean loss into *loss (may be NULL; NaN when B = 0). `step` selects the noise
 * stream. Errors as tr_model_forward; MU_ERR_INVALID if n is wrong. */
int tr_dp_grad(tr_dp *dp, const int32_t *inputs, const int32_t *targets, int B, int T,
               uint64_t step, float *grad, int64_t n, float *loss, mu_diag *diag);

/* tr_dp_grad into the model's gradient, then the optimizer's update of the LoRA vector. */
int tr_dp_step(tr_dp *dp, tr_optim *o, const int32_t *inputs, const int32_t *targets, int B, int T,
               uint64_t step, float *loss, mu_diag *diag);

/* The per-record gradient norms ||g_i|| (before clipping) of the last tr_dp_grad, B of
 * them; and how many of those were clipped. Owned by dp, valid until the next call. */
const double *tr_dp_norms(const tr_dp *dp, int *B, int *clipped);

/* n independent N(0, 1) doubles of stream `stream` of the generator of `seed` (step s adds
 * stream 2 s times z C). For tests and for callers that need the same noise. */
void tr_dp_gauss(uint64_t seed, uint64_t stream, double *out, int64_t n);

#endif
