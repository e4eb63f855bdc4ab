/* dp_ddg.c - the distributed discrete Gaussian: rotation, conditional rounding, noise, RDP. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dp_ddg.h"
#include "dp_sample_internal.h"

typedef unsigned __int128 u128;

#define SIGN_CHUNK 512    /* keystream bytes per chunk of signs */
#define FWHT_TILE  32768u /* doubles per tile of the Walsh-Hadamard transform (256 KiB) */
#define FWHT_RUN   4096u  /* butterflies per run of a stage across tiles */
#define DDG_BLOCK  65536u /* values per block of the threaded rounding */

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
    if (p->colluders >= p->min_survivors) { /* the colluders remove all the noise */
        *rdp = INFINITY;
        return MU_OK;
    }
    uint32_t honest = p->min_survivors - p->colluders;
    double s2 = sigma2_of(p), k = honest, d = p->dim;
    double d2 = dp_ddg_bound(p);
    double d1 = d2 * d2 < sqrt(d) * d2 ? d2 * d2 : sqrt(d) * d2;
    double tau = 0;
    for (uint32_t j = 1; j < honest; j++)
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

/* The Walsh-Hadamard butterflies of stages 1, 2, .., n/2 on v (n a power of two), unscaled:
 * stages 1 and 2 together on each 4 values, then contiguous runs the compiler vectorises. */
static void fwht_tile(double *v, uint32_t n)
{
    uint32_t h = 1;
    if (n >= 4) {
        for (uint32_t i = 0; i < n; i += 4) {
            double a = v[i] + v[i + 1], b = v[i] - v[i + 1];
            double c = v[i + 2] + v[i + 3], d = v[i + 2] - v[i + 3];
            v[i] = a + c;
            v[i + 1] = b + d;
            v[i + 2] = a - c;
            v[i + 3] = b - d;
        }
        h = 4;
    }
    for (; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h) {
            double *x = v + i, *y = v + i + h;
            for (uint32_t j = 0; j < h; j++) {
                double a = x[j], b = y[j];
                x[j] = a + b;
                y[j] = a - b;
            }
        }
}

/* In-place orthonormal Walsh-Hadamard transform of v (n a power of two) on `threads` OpenMP
 * threads: tiles of FWHT_TILE values take their stages in cache, then each remaining stage is
 * one pass over v in runs of FWHT_RUN butterflies. Every value is the same sums in the same
 * order whatever the thread count (each butterfly is computed once, by one thread), so the
 * output does not depend on it. */
static void fwht(double *v, uint32_t n, int threads)
{
    uint32_t tile = n < FWHT_TILE ? n : FWHT_TILE;
    long nt = (long)(n / tile), nr = (long)(n / 2 / FWHT_RUN);
    double f = 1 / sqrt((double)n);
#pragma omp parallel num_threads(threads) if (threads > 1 && n > FWHT_TILE)
    {
#pragma omp for schedule(static)
        for (long t = 0; t < nt; t++)
            fwht_tile(v + (size_t)t * tile, tile);
        for (uint32_t h = tile; h < n; h *= 2) { /* h >= FWHT_TILE > FWHT_RUN here */
#pragma omp for schedule(static)
            for (long r = 0; r < nr; r++) { /* run r: FWHT_RUN butterflies (i, i + h) */
                size_t per = h / FWHT_RUN, g = (size_t)r / per;
                double *x = v + g * 2 * h + (size_t)r % per * FWHT_RUN, *y = x + h;
                for (uint32_t j = 0; j < FWHT_RUN; j++) {
                    double a = x[j], b = y[j];
                    x[j] = a + b;
                    y[j] = a - b;
                }
            }
        }
#pragma omp for schedule(static)
        for (long i = 0; i < (long)n; i++)
            v[i] *= f;
    }
}

/* v (n) *= the signs of block `block` of the rotation: bit i of ChaCha20(rot_seed, nonce =
 * block) flips v[i]. Chunks of SIGN_CHUNK bytes are independent (their own counter). */
static void flip_signs(double *v, uint32_t n, const dp_ddg *p, uint64_t block, int threads)
{
    static const uint8_t zeros[SIGN_CHUNK];
    uint8_t nonce[8] = {0};
    for (int b = 0; b < 8; b++)
        nonce[b] = (uint8_t)(block >> (8 * b));
    long nc = (long)((n + SIGN_CHUNK * 8 - 1) / (SIGN_CHUNK * 8));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && nc > 4)
    for (long c = 0; c < nc; c++) {
        uint8_t ks[SIGN_CHUNK];
        uint32_t at = (uint32_t)c * SIGN_CHUNK * 8;
        crypto_stream_chacha20_xor_ic(ks, zeros, SIGN_CHUNK, nonce, at / 512, p->rot_seed);
        uint32_t end = n - at < SIGN_CHUNK * 8 ? n - at : SIGN_CHUNK * 8;
        for (uint32_t i = 0; i < end; i++) { /* -v is v with its sign bit flipped */
            uint64_t u;
            memcpy(&u, &v[at + i], 8);
            u ^= (uint64_t)(ks[i / 8] >> (i % 8) & 1) << 63;
            memcpy(&v[at + i], &u, 8);
        }
    }
}

static int nthreads(const dp_ddg *p)
{
    return p->threads > 1 ? p->threads : 1;
}

void dp_ddg_rotate(double *v, const dp_ddg *p, int inverse)
{
    uint32_t d = p->dim, P = pow2_below(d);
    int th = nthreads(p);
    double *tail = v + (d - P);
    if (!inverse) {
        flip_signs(v, P, p, 1, th);
        fwht(v, P, th);
        if (d > P) {
            flip_signs(tail, P, p, 2, th);
            fwht(tail, P, th);
        }
    } else {
        if (d > P) {
            fwht(tail, P, th);
            flip_signs(tail, P, p, 2, th);
        }
        fwht(v, P, th);
        flip_signs(v, P, p, 1, th);
    }
}

/* Bernoulli(frac) exactly, 0 <= frac < 1 a double, given U's first 32 bits u: U's 32-bit words
 * against frac's binary expansion (which ends: frac is dyadic); further words from r only
 * when u equals frac's first 32 bits. */
static int bern_frac(dp_rng *r, double frac, uint32_t u)
{
    for (;;) {
        double t = frac * 0x1p32, ft = floor(t); /* exact: scaling by 2^32 */
        if ((double)u != ft)
            return (double)u < ft;
        frac = t - ft; /* exact */
        if (frac == 0)
            return 0; /* U's digits so far equal frac's, which end: U >= frac */
        u = dp_rng_u32(r);
    }
}

#define ROUND_BATCH 64

/* Block b of rounding try k: out = floor(v) + Bernoulli(frac(v)) from stream k of key, read
 * from ChaCha20 block b·2^32 on (as dp_dgauss_fill's blocks), one 32-bit word per value in
 * batches; returns Σ out² exactly. */
static u128 round_block(int64_t *out, const double *v, uint32_t len, const uint8_t *key, uint64_t k,
                        uint64_t b)
{
    dp_rng r;
    dp_rng_init(&r, key, k);
    r.block = b << 32;
    u128 s = 0;
    uint32_t w[ROUND_BATCH];
    for (uint32_t at = 0; at < len; at += ROUND_BATCH) {
        uint32_t m = len - at < ROUND_BATCH ? len - at : ROUND_BATCH;
        memcpy(w, dp_rng_words(&r, m), 4 * m); /* copied: bern_frac may refill */
        for (uint32_t i = 0; i < m; i++) {
            double x = v[at + i]; /* |x| < 2^62 (Δ₂ is), so floor by conversion */
            double f = (double)((int64_t)x - (x < (double)(int64_t)x)), fr = x - f;
            double ft = (double)(uint64_t)(fr * 0x1p32); /* exact: 0 <= fr < 1 */
            int up = (double)w[i] != ft ? (double)w[i] < ft : bern_frac(&r, fr, w[i]);
            int64_t y = (int64_t)f + up;
            out[at + i] = y;
            uint64_t a = y < 0 ? (uint64_t)-y : (uint64_t)y;
            s += (u128)a * a;
        }
    }
    sodium_memzero(w, sizeof w);
    dp_rng_deinit(&r);
    return s;
}

/* out := an unbiased randomised rounding of v (try k of the conditional rounding), blocks of
 * DDG_BLOCK values on `threads` threads; returns Σ out² exactly (an integer sum: the same
 * whatever the thread count). */
static u128 round_once(int64_t *out, const double *v, uint32_t n, const uint8_t *key, uint64_t k,
                       int threads)
{
    long nb = (long)((n + DDG_BLOCK - 1) / DDG_BLOCK);
    u128 s = 0;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && nb > 1)
    for (long b = 0; b < nb; b++) {
        uint32_t off = (uint32_t)b * DDG_BLOCK, len = n - off < DDG_BLOCK ? n - off : DDG_BLOCK;
        u128 sb = round_block(out + off, v + off, len, key, k, (uint64_t)b);
#pragma omp critical(dp_ddg_round)
        s += sb;
    }
    return s;
}

int dp_ddg_encode(int64_t *out, const float *x, const dp_ddg *p, dp_rng *rng, unsigned *tries,
                  mu_diag *diag)
{
    return dp_ddg_encode_timed(out, x, p, rng, tries, NULL, NULL, diag);
}

int dp_ddg_encode_timed(int64_t *out, const float *x, const dp_ddg *p, dp_rng *rng, unsigned *tries,
                        double (*now_s)(void), double ms[3], mu_diag *diag)
{
    if (!now_s)
        ms = NULL;
    int rc = dp_ddg_check(p, diag);
    if (rc != MU_OK)
        return rc;
    double t0 = ms ? now_s() : 0;
    uint32_t d = p->dim;
    int th = nthreads(p);
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
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1 && d > DDG_BLOCK)
    for (long i = 0; i < (long)d; i++)
        v[i] = (double)x[i] * f;
    dp_ddg_rotate(v, p, 0);
    double t1 = ms ? now_s() : 0;
    double b = dp_ddg_bound(p);
    u128 limit = (u128)floorl((long double)b * b);
    uint8_t key[DP_SEED_BYTES]; /* the rounding's streams: one per try */
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)dp_rng_below(rng, 256);
    unsigned k = 0;
    rc = MU_ERR_ABORT;
    while (k < DP_DDG_MAX_TRIES) {
        k++;
        if (round_once(out, v, d, key, k, th) <= limit) {
            rc = MU_OK;
            break;
        }
    }
    sodium_memzero(v, d * sizeof *v);
    free(v);
    double t2 = ms ? now_s() : 0;
    if (tries)
        *tries = k;
    if (rc != MU_OK) {
        sodium_memzero(key, sizeof key);
        return mu_diag_set(diag, rc, "ddg: %u roundings all exceeded the bound %.4g", k, b);
    }
    uint64_t num, den;
    dp_ddg_sigma2(p, &num, &den);
    if (num == 0) {
        sodium_memzero(key, sizeof key);
        if (ms)
            ms[0] = (t1 - t0) * 1e3, ms[1] = (t2 - t1) * 1e3, ms[2] = 0;
        return MU_OK;
    }
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)dp_rng_below(rng, 256);
    rc = dp_dgauss_fill_add(key, 0, num, den, out, d, th); /* out += the fill's draws */
    sodium_memzero(key, sizeof key);
    if (ms)
        ms[0] = (t1 - t0) * 1e3, ms[1] = (t2 - t1) * 1e3, ms[2] = (now_s() - t2) * 1e3;
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
