/* tr_dp.c - DP-SGD on the LoRA vector (tr_dp.h): per-record gradients written by the
 * backward, clipping, the weighted sum, Gaussian noise and batch sampling. */
#include <cblas.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dp_sample.h"
#include "mu_bytes.h"
#include "tr_dp.h"
#include "tr_internal.h"

_Static_assert(TR_DP_KEY_BYTES == DP_SEED_BYTES, "tr_dp keys are dp_rng seeds");

#define KEY_LABEL "mutual dp-sgd v1" /* 16 bytes, then the seed: BLAKE2b -> the stream key */
#define TWO53     9007199254740992.0 /* 2^53 */

struct tr_dp {
    tr_dp_config cfg;
    tr_model *m;
    int64_t n;                  /* trainable count */
    uint8_t key[DP_SEED_BYTES]; /* noise and sampling streams */
    float *pex;                 /* (cap, n) per-record gradients */
    double *norms, *factor;     /* (cap) ||g_i||, and the weight of record i in the sum */
    double *noise;              /* (n) */
    int cap, last_B, last_clipped;
};

void tr_model_set_pex(tr_model *m, float *pex)
{
    m->pex = pex;
}

void tr_pex_module(tr_model *m, const tr_lmod *x, const float *dout, int ldd, const float *dh,
                   const float *inp)
{
    int B = m->cur_B, T = m->cur_T, R = m->lcfg.rank;
    int64_t n = m->n_train, ob = x->dB - m->lora_grad, oa = x->dA ? x->dA - m->lora_grad : -1;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        float *g = m->pex + (int64_t)b * n;
        int64_t r0 = (int64_t)b * T;
        /* dB_b (out, R) = scale * dout_b^T h_b;  dA_b (R, in) = dh_b^T x_b */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, x->out, R, T, m->scale,
                    dout + r0 * ldd, ldd, x->h + r0 * R, R, 0.0f, g + ob, R);
        if (oa >= 0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, x->in, T, 1.0f, dh + r0 * R, R,
                        inp + r0 * x->in, x->in, 0.0f, g + oa, x->in);
    }
}

int tr_dp_config_check(const tr_dp_config *c, mu_diag *d)
{
    if (!(c->clip > 0.0) || isnan(c->clip))
        return mu_diag_set(d, MU_ERR_INVALID, "dp: clip must be positive (got %g)", c->clip);
    if (!(c->noise >= 0.0) || !isfinite(c->noise))
        return mu_diag_set(d, MU_ERR_INVALID, "dp: noise must be finite and >= 0 (got %g)",
                           c->noise);
    if (isinf(c->clip) && c->noise > 0.0)
        return mu_diag_set(d, MU_ERR_INVALID, "dp: noise %g needs a finite clip", c->noise);
    if (c->sampling != TR_DP_POISSON && c->sampling != TR_DP_FIXED)
        return mu_diag_set(d, MU_ERR_INVALID, "dp: sampling must be poisson or fixed");
    if (c->n_records < 1 || c->batch < 1 || c->batch > c->n_records)
        return mu_diag_set(d, MU_ERR_INVALID, "dp: batch %d must be in [1, records %lld]", c->batch,
                           (long long)c->n_records);
    return MU_OK;
}

static void derive_key(uint64_t seed, uint8_t key[DP_SEED_BYTES])
{
    uint8_t msg[24];
    memcpy(msg, KEY_LABEL, 16);
    mu_put_le64(msg + 16, seed);
    crypto_generichash(key, DP_SEED_BYTES, msg, sizeof msg, NULL, 0);
}

/* A uniform double k / 2^53, k uniform in [0, 2^53). */
static double uniform53(dp_rng *rng)
{
    return (double)dp_rng_below(rng, 1ull << 53) / TWO53;
}

/* Box-Muller on two 53-bit uniforms: u1 in (0, 1] keeps the log finite. */
static void gauss_from_key(const uint8_t key[DP_SEED_BYTES], uint64_t stream, double *out,
                           int64_t n)
{
    dp_rng rng;
    dp_rng_init(&rng, key, stream);
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - uniform53(&rng), u2 = uniform53(&rng);
        double r = sqrt(-2.0 * log(u1)), t = 2.0 * M_PI * u2;
        out[i] = r * cos(t);
        if (i + 1 < n)
            out[i + 1] = r * sin(t);
    }
    dp_rng_deinit(&rng);
}

void tr_dp_gauss(uint64_t seed, uint64_t stream, double *out, int64_t n)
{
    uint8_t key[DP_SEED_BYTES];
    derive_key(seed, key);
    gauss_from_key(key, stream, out, n);
    sodium_memzero(key, sizeof key);
}

tr_dp *tr_dp_new(const tr_dp_config *cfg, tr_model *m, mu_diag *d)
{
    if (tr_dp_config_check(cfg, d) < 0)
        return NULL;
    if (!m->has_lora || m->n_train < 1) {
        mu_diag_set(d, MU_ERR_STATE, "dp: the model has no LoRA adapters to train");
        return NULL;
    }
    tr_dp *dp = calloc(1, sizeof *dp);
    if (!dp || !(dp->noise = malloc(sizeof(double) * (size_t)m->n_train))) {
        free(dp);
        mu_diag_set(d, MU_ERR_NOMEM, "dp: out of memory");
        return NULL;
    }
    dp->cfg = *cfg;
    dp->cfg.key = NULL;
    dp->m = m;
    dp->n = m->n_train;
    if (cfg->key)
        memcpy(dp->key, cfg->key, DP_SEED_BYTES);
    else
        derive_key(cfg->seed, dp->key);
    return dp;
}

void tr_dp_free(tr_dp *dp)
{
    if (!dp)
        return;
    if (dp->pex)
        sodium_memzero(dp->pex, sizeof(float) * (size_t)dp->cap * (size_t)dp->n);
    sodium_memzero(dp->noise, sizeof(double) * (size_t)dp->n);
    sodium_memzero(dp->key, sizeof dp->key);
    free(dp->pex);
    free(dp->norms);
    free(dp->factor);
    free(dp->noise);
    free(dp);
}

int64_t tr_dp_sample(tr_dp *dp, uint64_t step, int64_t *idx)
{
    dp_rng rng;
    dp_rng_init(&rng, dp->key, 2 * step + 1);
    int64_t N = dp->cfg.n_records, k = 0;
    if (dp->cfg.sampling == TR_DP_POISSON) {
        /* P(in) = ceil(batch 2^53 / N) / 2^53: q to within 2^-53. */
        unsigned __int128 thr = ((unsigned __int128)dp->cfg.batch << 53);
        for (int64_t i = 0; i < N; i++)
            if ((unsigned __int128)dp_rng_below(&rng, 1ull << 53) * (uint64_t)N < thr)
                idx[k++] = i;
    } else {
        /* Selection sampling (Knuth's Algorithm S): each batch-subset equally likely. */
        int64_t need = dp->cfg.batch;
        for (int64_t i = 0; i < N && need > 0; i++)
            if ((int64_t)dp_rng_below(&rng, (uint64_t)(N - i)) < need) {
                idx[k++] = i;
                need--;
            }
    }
    dp_rng_deinit(&rng);
    return k;
}

static int reserve(tr_dp *dp, int B, mu_diag *d)
{
    if (B <= dp->cap)
        return MU_OK;
    if (dp->pex)
        sodium_memzero(dp->pex, sizeof(float) * (size_t)dp->cap * (size_t)dp->n);
    free(dp->pex);
    free(dp->norms);
    free(dp->factor);
    dp->pex = malloc(sizeof(float) * (size_t)B * (size_t)dp->n);
    dp->norms = malloc(sizeof(double) * (size_t)B);
    dp->factor = malloc(sizeof(double) * (size_t)B);
    dp->cap = dp->pex && dp->norms && dp->factor ? B : 0;
    return dp->cap
               ? MU_OK
               : mu_diag_set(d, MU_ERR_NOMEM, "dp: out of memory for %d per-record gradients", B);
}

/* Forward and backward of the B records, each record's gradient into dp->pex. */
static int per_record_grads(tr_dp *dp, const int32_t *in, const int32_t *tg, int B, int T,
                            float *loss, mu_diag *d)
{
    tr_model *m = dp->m;
    int rc = reserve(dp, B, d);
    if (rc)
        return rc;
    memset(dp->pex, 0, sizeof(float) * (size_t)B * (size_t)dp->n);
    tr_model_zero_grad(m);
    rc = tr_model_forward(m, in, tg, B, T, loss, d);
    if (rc)
        return rc;
    tr_model_set_pex(m, dp->pex);
    rc = tr_model_backward(m);
    tr_model_set_pex(m, NULL);
    return rc ? mu_diag_set(d, rc, "dp: backward failed") : MU_OK;
}

/* Norms and weights: the backward's record gradient is of the batch mean loss, 1/B of the
 * record's own loss gradient, so g_i = B pex_i and its weight is B min(1, C / ||g_i||). */
static void clip_factors(tr_dp *dp, int B)
{
    int64_t n = dp->n;
    int clipped = 0;
#pragma omp parallel for schedule(static) reduction(+ : clipped) if (B > 1)
    for (int b = 0; b < B; b++) {
        const float *g = dp->pex + (int64_t)b * n;
        double sq = 0.0;
        for (int64_t k = 0; k < n; k++)
            sq += (double)g[k] * g[k];
        double norm = (double)B * sqrt(sq);
        dp->norms[b] = norm;
        int clip = norm > dp->cfg.clip;
        dp->factor[b] = clip ? (double)B * (dp->cfg.clip / norm) : (double)B;
        clipped += clip;
    }
    dp->last_clipped = clipped;
}

int tr_dp_grad(tr_dp *dp, const int32_t *inputs, const int32_t *targets, int B, int T,
               uint64_t step, float *grad, int64_t n, float *loss, mu_diag *d)
{
    if (n != dp->n || B < 0)
        return mu_diag_set(d, MU_ERR_INVALID, "dp: gradient of %lld floats for %lld, batch %d",
                           (long long)n, (long long)dp->n, B);
    dp->last_B = 0;
    dp->last_clipped = 0;
    if (B > 0) {
        int rc = per_record_grads(dp, inputs, targets, B, T, loss, d);
        if (rc)
            return rc;
        clip_factors(dp, B);
        dp->last_B = B;
    } else if (loss) {
        *loss = NAN;
    }
    double sd = dp->cfg.noise * dp->cfg.clip;
    if (sd > 0.0)
        gauss_from_key(dp->key, 2 * step, dp->noise, n);
    double denom = dp->cfg.batch; /* fixed: the batch; Poisson: q N, the expected batch */
    const float *pex = dp->pex;
    const double *f = dp->factor;
#pragma omp parallel for schedule(static) if (n * (B + 1) >= 65536)
    for (int64_t k = 0; k < n; k++) {
        double a = sd > 0.0 ? sd * dp->noise[k] : 0.0;
        for (int b = 0; b < B; b++) /* fixed order: reproducible for any thread count */
            a += f[b] * pex[(int64_t)b * n + k];
        grad[k] = (float)(a / denom);
    }
    return MU_OK;
}

int tr_dp_step(tr_dp *dp, tr_optim *o, const int32_t *inputs, const int32_t *targets, int B, int T,
               uint64_t step, float *loss, mu_diag *d)
{
    tr_model *m = dp->m;
    int rc = tr_dp_grad(dp, inputs, targets, B, T, step, m->lora_grad, dp->n, loss, d);
    if (rc)
        return rc;
    rc = tr_optim_step(o, m->lora_mem, m->lora_grad, dp->n, NULL);
    if (rc)
        return mu_diag_set(d, rc, "dp: the optimizer is not for the %lld trainable parameters",
                           (long long)dp->n);
    return MU_OK;
}

const double *tr_dp_norms(const tr_dp *dp, int *B, int *clipped)
{
    if (B)
        *B = dp->last_B;
    if (clipped)
        *clipped = dp->last_clipped;
    return dp->norms;
}
