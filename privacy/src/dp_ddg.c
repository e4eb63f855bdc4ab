/* dp_ddg.c - the distributed discrete Gaussian: rotation, conditional rounding, noise, RDP. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dp_ddg.h"

typedef unsigned __int128 u128;

#define SIGN_CHUNK 512 /* keystream bytes per chunk of signs */

int dp_ddg_check(const dp_ddg *p, mu_diag *diag)
{
    if (!p || p->dim < 1)
        return mu_diag_set(diag, MU_ERR_INVALID, "ddg: dimension must be at least 1");
    if (!(p->l2 > 0) || !isfinite(p->l2) || !(p->scale > 0) || !isfinite(p->scale))
        return mu_diag_set(diag, MU_ERR_INVALID, "ddg: l2 %g and scale %g must be positive", p->l2,
                           p->scale);
    if (!(p->noise >= 0) || !isfinite(p->noise))
        return mu_diag_set(diag, MU_ERR_INVALID, "ddg: noise %g must be finite and >= 0", p->noise);
    if (p->min_survivors < 1)
        return mu_diag_set(diag, MU_ERR_INVALID, "ddg: min_survivors must be at least 1");
    uint64_t num, den;
    if (dp_ddg_sigma2(p, &num, &den) != MU_OK)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "ddg: per-org noise variance %.4g (noise %g x bound %.4g, over %u "
                           "survivors) is above the sampler's %.0f; lower the scale",
                           pow(p->noise * dp_ddg_bound(p), 2) / p->min_survivors, p->noise,
                           dp_ddg_bound(p), p->min_survivors, (double)DP_SIGMA2_NUM_MAX);
    return MU_OK;
}

double dp_ddg_bound(const dp_ddg *p)
{
    double c = p->l2 * p->scale, d = (double)p->dim;
    double b1 = (c + sqrt(d)) * (c + sqrt(d));
    double b2 = c * c + d / 4 + sqrt(2 * log(1 / DP_DDG_BETA)) * (c + sqrt(d) / 2);
    return sqrt(b1 < b2 ? b1 : b2);
}

int dp_ddg_sigma2(const dp_ddg *p, uint64_t *num, uint64_t *den)
{
    *num = 0;
    *den = 1;
    if (p->noise == 0)
        return MU_OK;
    double s2 = pow(p->noise * dp_ddg_bound(p), 2) / p->min_survivors;
    if (!(s2 <= (double)DP_SIGMA2_NUM_MAX))
        return MU_ERR_INVALID;
    uint64_t d = DP_SIGMA2_DEN_MAX;
    while (d > 1 && ceil(s2 * (double)d) > (double)DP_SIGMA2_NUM_MAX)
        d /= 2;
    double n = ceil(s2 * (double)d);
    if (n < 1)
        n = 1;
    *num = (uint64_t)n;
    *den = d;
    return MU_OK;
}

static double sigma2_of(const dp_ddg *p)
{
    uint64_t num, den;
    if (dp_ddg_sigma2(p, &num, &den) != MU_OK)
        return INFINITY;
    return (double)num / (double)den;
}

static uint32_t pow2_below(uint32_t d)
{
    uint32_t b = 1;
    while (b <= d / 2)
        b *= 2;
    return b;
}

double dp_ddg_wrap(const dp_ddg *p, uint32_t n_inputs, uint32_t bits)
{
    double n = (double)n_inputs, half = ldexp(1.0, (int)bits - 1);
    double room = half - n;
    if (!(room > 0))
        return 1;
    double ns = n * p->l2 * p->scale;
    double v = ns * ns / pow2_below(p->dim) + n * sigma2_of(p);
    if (!(v > 0))
        return 0;
    double pr = 2 * (double)p->dim * exp(-room * room / (2 * v));
    return pr < 1 ? pr : 1;
}

int dp_ddg_rdp(const dp_ddg *p, double order, double *rdp)
{
    if (dp_ddg_check(p, NULL) != MU_OK || p->noise == 0 || !(order > 1))
        return MU_ERR_INVALID;
    double s2 = sigma2_of(p), k = p->min_survivors, d = p->dim;
    double d2 = dp_ddg_bound(p);
    double d1 = d2 * d2 < sqrt(d) * d2 ? d2 * d2 : sqrt(d) * d2;
    double tau = 0;
    for (uint32_t j = 1; j < p->min_survivors; j++)
        tau += exp(-2 * M_PI * M_PI * s2 * j / (j + 1.0));
    tau *= 10;
    double a = d2 / sqrt(k * s2), b = d1 / sqrt(k * s2);
    double t1 = order / 2 * a * a + tau * d;
    double t2 = order / 2 * (a * a + 2 * b * tau + tau * tau * d);
    double t3 = order / 2 * (a + sqrt(d) * tau) * (a + sqrt(d) * tau);
    double m = t1 < t2 ? t1 : t2;
    *rdp = m < t3 ? m : t3;
    return MU_OK;
}

/* In-place orthonormal Walsh-Hadamard transform of v (n a power of two). */
static void fwht(double *v, uint32_t n)
{
    for (uint32_t h = 1; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h)
            for (uint32_t j = i; j < i + h; j++) {
                double a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
    double f = 1 / sqrt((double)n);
    for (uint32_t i = 0; i < n; i++)
        v[i] *= f;
}

/* v (n) *= the signs of block `block` of the rotation: bit i of ChaCha20(rot_seed, nonce =
 * block) flips v[i]. */
static void flip_signs(double *v, uint32_t n, const dp_ddg *p, uint64_t block)
{
    static const uint8_t zeros[SIGN_CHUNK];
    uint8_t ks[SIGN_CHUNK], nonce[8] = {0};
    for (int b = 0; b < 8; b++)
        nonce[b] = (uint8_t)(block >> (8 * b));
    for (uint32_t at = 0; at < n; at += SIGN_CHUNK * 8) {
        crypto_stream_chacha20_xor_ic(ks, zeros, SIGN_CHUNK, nonce, at / 512, p->rot_seed);
        uint32_t end = n - at < SIGN_CHUNK * 8 ? n - at : SIGN_CHUNK * 8;
        for (uint32_t i = 0; i < end; i++)
            if (ks[i / 8] >> (i % 8) & 1)
                v[at + i] = -v[at + i];
    }
}

void dp_ddg_rotate(double *v, const dp_ddg *p, int inverse)
{
    uint32_t d = p->dim, P = pow2_below(d);
    double *tail = v + (d - P);
    if (!inverse) {
        flip_signs(v, P, p, 1);
        fwht(v, P);
        if (d > P) {
            flip_signs(tail, P, p, 2);
            fwht(tail, P);
        }
    } else {
        if (d > P) {
            fwht(tail, P);
            flip_signs(tail, P, p, 2);
        }
        fwht(v, P);
        flip_signs(v, P, p, 1);
    }
}

/* out := an unbiased randomised rounding of v (floor + Bernoulli(frac), 53-bit uniforms);
 * returns Σ out² exactly. */
static u128 round_once(int64_t *out, const double *v, uint32_t n, dp_rng *rng)
{
    u128 s = 0;
    for (uint32_t i = 0; i < n; i++) {
        double f = floor(v[i]);
        double u = (double)dp_rng_below(rng, 1ull << 53) * 0x1.0p-53;
        int64_t r = (int64_t)f + (u < v[i] - f ? 1 : 0);
        out[i] = r;
        uint64_t a = r < 0 ? (uint64_t)-r : (uint64_t)r;
        s += (u128)a * a;
    }
    return s;
}

int dp_ddg_encode(int64_t *out, const float *x, const dp_ddg *p, dp_rng *rng, unsigned *tries,
                  mu_diag *diag)
{
    int rc = dp_ddg_check(p, diag);
    if (rc != MU_OK)
        return rc;
    uint32_t d = p->dim;
    double norm2 = 0;
    for (uint32_t i = 0; i < d; i++) {
        if (!isfinite(x[i]))
            return mu_diag_set(diag, MU_ERR_INVALID, "ddg: value %u is not finite", i);
        norm2 += (double)x[i] * x[i];
    }
    double *v = malloc(d * sizeof *v);
    if (!v)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    double norm = sqrt(norm2);
    double f = p->scale * (norm > p->l2 ? p->l2 / norm : 1.0);
    for (uint32_t i = 0; i < d; i++)
        v[i] = (double)x[i] * f;
    dp_ddg_rotate(v, p, 0);
    double b = dp_ddg_bound(p);
    u128 limit = (u128)floorl((long double)b * b);
    unsigned k = 0;
    rc = MU_ERR_ABORT;
    while (k < DP_DDG_MAX_TRIES) {
        k++;
        if (round_once(out, v, d, rng) <= limit) {
            rc = MU_OK;
            break;
        }
    }
    sodium_memzero(v, d * sizeof *v);
    free(v);
    if (tries)
        *tries = k;
    if (rc != MU_OK)
        return mu_diag_set(diag, rc, "ddg: %u roundings all exceeded the bound %.4g", k, b);
    uint64_t num, den;
    dp_ddg_sigma2(p, &num, &den);
    if (num == 0)
        return MU_OK;
    uint8_t key[DP_SEED_BYTES];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)dp_rng_below(rng, 256);
    int64_t *y = malloc(d * sizeof *y);
    rc = y ? dp_dgauss_fill(key, 0, num, den, y, d, p->threads > 1 ? p->threads : 1) : MU_ERR_NOMEM;
    for (uint32_t i = 0; rc == MU_OK && i < d; i++)
        out[i] += y[i];
    sodium_memzero(key, sizeof key);
    if (y)
        sodium_memzero(y, d * sizeof *y);
    free(y);
    if (rc == MU_ERR_NOMEM)
        return mu_diag_set(diag, rc, "out of memory");
    if (rc != MU_OK)
        return mu_diag_set(diag, rc, "ddg: the sampler refused sigma^2 %llu/%llu",
                           (unsigned long long)num, (unsigned long long)den);
    return MU_OK;
}

int dp_ddg_decode(double *out, const int64_t *sum, const dp_ddg *p, mu_diag *diag)
{
    int rc = dp_ddg_check(p, diag);
    if (rc != MU_OK)
        return rc;
    for (uint32_t i = 0; i < p->dim; i++)
        out[i] = (double)sum[i];
    dp_ddg_rotate(out, p, 1);
    for (uint32_t i = 0; i < p->dim; i++)
        out[i] /= p->scale;
    return MU_OK;
}
