/* sa_quant.c - clipping, unbiased stochastic rounding to fixed point, weighted mean. */
#include <math.h>
#include <string.h>

#include "sa_internal.h"

int sa_quant_check(const sa_quant *q, mu_diag *diag)
{
    if (!q || !(q->clip_norm > 0) || !(q->scale > 0) || !(q->w_max > 0) ||
        !isfinite(q->clip_norm) || !isfinite(q->scale) || !isfinite(q->w_max))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: quantisation needs finite clip_norm, scale, w_max > 0");
    if (q->bits < 1 || q->bits > 32 || q->n < 1)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: bits=%u n=%u out of range", q->bits,
                           q->n);
    double per = ceil(q->w_max * fmax(q->clip_norm, 1.0) * q->scale) + 1.0;
    double reach = per * (double)q->n;
    double limit = ldexp(1.0, (int)q->bits - 1) - 1.0;
    if (!(reach <= limit))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: the sum of n=%u inputs can reach %.0f (each up to %.0f) "
                           "but %u-bit arithmetic holds only +-%.0f; lower scale, clip_norm or "
                           "w_max, or raise bits",
                           q->n, reach, per, q->bits, limit);
    return MU_OK;
}

/* Unbiased stochastic rounding: floor(v) + [u < frac(v)], u uniform in [0, 1). */
static int64_t sround(double v, uint64_t r)
{
    double f = floor(v);
    double u = (double)(r >> 11) * 0x1.0p-53;
    return (int64_t)f + (u < v - f ? 1 : 0);
}

int sa_quant_encode(uint32_t *out, size_t out_len, const float *x, size_t dim, double w,
                    const sa_quant *q, const sa_rng *rng, mu_diag *diag)
{
    int rc = sa_quant_check(q, diag);
    if (rc)
        return rc;
    if (out_len != dim + 1)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: output holds %zu values, need %zu",
                           out_len, dim + 1);
    if (!isfinite(w) || w < 0 || w > q->w_max)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: weight %g outside [0, %g]", w,
                           q->w_max);
    double norm2 = 0;
    for (size_t i = 0; i < dim; i++) {
        if (!isfinite(x[i]))
            return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: value %zu is %s", i,
                               isnan(x[i]) ? "NaN" : "infinite");
        norm2 += (double)x[i] * x[i];
    }
    double norm = sqrt(norm2);
    double f = w * q->scale * (norm > q->clip_norm ? q->clip_norm / norm : 1.0);
    uint32_t mask = q->bits == 32 ? 0xFFFFFFFFu : ((1u << q->bits) - 1);
    uint64_t r[256];
    for (size_t i = 0; i <= dim; i++) {
        if (i % 256 == 0)
            sa_rng_fill(rng, r, sizeof r);
        double v = i < dim ? (double)x[i] * f : w * q->scale;
        out[i] = (uint32_t)(uint64_t)sround(v, r[i % 256]) & mask;
    }
    return MU_OK;
}

int64_t sa_quant_signed(uint32_t v, uint32_t bits)
{
    if (bits >= 32)
        return (int64_t)(int32_t)v;
    uint32_t mask = (1u << bits) - 1;
    v &= mask;
    return (v >> (bits - 1)) ? (int64_t)v - ((int64_t)1 << bits) : (int64_t)v;
}

int sa_quant_mean(float *out, size_t dim, const uint32_t *sum, size_t sum_len, const sa_quant *q,
                  mu_diag *diag)
{
    if (!q || sum_len != dim + 1)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: sum has %zu values, need %zu",
                           sum_len, dim + 1);
    int64_t wsum = sa_quant_signed(sum[dim], q->bits);
    if (wsum <= 0)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: total weight is not positive");
    for (size_t i = 0; i < dim; i++)
        out[i] = (float)((double)sa_quant_signed(sum[i], q->bits) / (double)wsum);
    return MU_OK;
}
