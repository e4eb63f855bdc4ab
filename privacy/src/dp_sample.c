/* dp_sample.c - the exact discrete Gaussian sampler (CKS 2020, Algorithms 1-3). */
#include <sodium.h>
#include <string.h>

#include "dp_sample.h"
#include "mu_bytes.h"

typedef unsigned __int128 u128;

#define DP_CAND_MAX (1ull << 31) /* candidates this large are rejected (see dp_sample.h) */

static const uint8_t zeros[DP_RNG_BUF_BYTES];

void dp_rng_init(dp_rng *rng, const uint8_t seed[DP_SEED_BYTES], uint64_t stream)
{
    memcpy(rng->key, seed, DP_SEED_BYTES);
    mu_put_le64(rng->nonce, stream);
    rng->block = 0;
    rng->pos = DP_RNG_BUF_BYTES; /* empty: the first draw refills */
    rng->bits = 0;
    rng->nbits = 0;
}

void dp_rng_deinit(dp_rng *rng)
{
    sodium_memzero(rng, sizeof *rng);
}

static void refill(dp_rng *rng)
{
    crypto_stream_chacha20_xor_ic(rng->buf, zeros, DP_RNG_BUF_BYTES, rng->nonce, rng->block,
                                  rng->key);
    rng->block += DP_RNG_BUF_BYTES / 64;
    rng->pos = 0;
}

static uint64_t rng_u64(dp_rng *rng)
{
    if (rng->pos + 8 > DP_RNG_BUF_BYTES)
        refill(rng);
    uint64_t v;
    memcpy(&v, rng->buf + rng->pos, 8);
    rng->pos += 8;
    return v;
}

/* k (1..64) uniform bits, taken from a 64-bit reservoir so a small bound costs few stream
 * bytes: most draws need 1-17 bits. */
static uint64_t rng_bits(dp_rng *rng, unsigned k)
{
    if (k == 64)
        return rng_u64(rng);
    if (rng->nbits < k) {
        rng->bits = rng_u64(rng);
        rng->nbits = 64;
    }
    uint64_t v = rng->bits & ((1ull << k) - 1);
    rng->bits = k < 64 ? rng->bits >> k : 0;
    rng->nbits -= k;
    return v;
}

uint64_t dp_rng_below(dp_rng *rng, uint64_t bound)
{
    if (bound <= 1)
        return 0;
    unsigned k = 64u - (unsigned)__builtin_clzll(bound - 1);
    for (;;) {
        uint64_t v = rng_bits(rng, k);
        if (v < bound)
            return v;
    }
}

/* Bernoulli(n/d), 0 <= n <= d, d < 2^127: compares uniform bits with the binary expansion of
 * n/d (long division) and stops at the first bit where they differ: U < n/d exactly, and
 * two random bits on average whatever the size of d. */
static int bern(dp_rng *rng, u128 n, u128 d)
{
    if (n >= d)
        return 1;
    if (n == 0)
        return 0;
    for (u128 r = n;;) {
        r <<= 1; /* the next bit of n/d */
        int p = r >= d;
        if (p)
            r -= d;
        int u = (int)rng_bits(rng, 1);
        if (u != p)
            return u < p;
    }
}

/* Bernoulli(exp(-n/d)) for 0 <= n/d <= 1 (Algorithm 1, first case): the parity of the first
 * K with a failed Bernoulli(γ/K); Bernoulli(γ/K) is Bernoulli(γ) and Bernoulli(1/K), so no
 * denominator grows. */
static int bern_exp_le1(dp_rng *rng, u128 n, u128 d)
{
    uint64_t k = 1;
    while (bern(rng, n, d) && dp_rng_below(rng, k) == 0)
        k++;
    return k & 1;
}

/* Bernoulli(exp(-n/d)) for any n/d >= 0 (Algorithm 1): floor(γ) Bernoulli(exp(-1)) trials,
 * then the fractional part. */
static int bern_exp(dp_rng *rng, u128 n, u128 d)
{
    for (u128 i = n / d; i > 0; i--)
        if (!bern_exp_le1(rng, 1, 1))
            return 0;
    return bern_exp_le1(rng, n % d, d);
}

/* The discrete Laplace with scale t >= 1 (Algorithm 2), as a magnitude and a sign; 0 if the
 * candidate reached DP_CAND_MAX (the caller rejects it). */
static int dlaplace(dp_rng *rng, uint64_t t, uint64_t *mag, int *neg)
{
    for (;;) {
        uint64_t u = dp_rng_below(rng, t);
        if (!bern_exp_le1(rng, u, t))
            continue;
        uint64_t v = 0;
        while (bern_exp_le1(rng, 1, 1))
            if (++v >= DP_CAND_MAX)
                return 0;
        int b = (int)rng_bits(rng, 1);
        uint64_t x = u + t * v;
        if (b && x == 0)
            continue;
        if (x >= DP_CAND_MAX)
            return 0;
        *mag = x;
        *neg = b;
        return 1;
    }
}

/* floor(sqrt(num/den)) + 1, the discrete Laplace scale of Algorithm 3. */
static uint64_t lap_scale(uint64_t num, uint64_t den)
{
    uint64_t lo = 0, hi = 1u << 16; /* sqrt(num/den) < 2^16 */
    while (lo < hi) {               /* largest s with s² den <= num */
        uint64_t mid = (lo + hi + 1) / 2;
        if ((u128)mid * mid * den <= num)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo + 1;
}

static int64_t dgauss_one(dp_rng *rng, uint64_t num, uint64_t den, uint64_t t)
{
    /* γ = (|Y| - σ²/t)² / (2σ²) = (|Y| den t - num)² / (2 num den t²) */
    u128 d = (u128)2 * num * den * t * t;
    for (;;) {
        uint64_t mag;
        int neg;
        if (!dlaplace(rng, t, &mag, &neg))
            continue;
        u128 a = (u128)mag * den * t, diff = a > num ? a - num : num - a;
        if (bern_exp(rng, diff * diff, d))
            return neg ? -(int64_t)mag : (int64_t)mag;
    }
}

int dp_dgauss_sample(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n)
{
    if (num == 0 || den == 0 || num > DP_SIGMA2_NUM_MAX || den > DP_SIGMA2_DEN_MAX)
        return MU_ERR_INVALID;
    uint64_t t = lap_scale(num, den);
    for (size_t i = 0; i < n; i++)
        out[i] = dgauss_one(rng, num, den, t);
    return MU_OK;
}

int dp_sigma2_from_double(double sigma2, uint64_t *num, uint64_t *den)
{
    if (!(sigma2 > 0) || sigma2 > (double)DP_SIGMA2_NUM_MAX)
        return MU_ERR_INVALID;
    for (uint64_t d = 1; d <= DP_SIGMA2_DEN_MAX; d *= 2) {
        double x = sigma2 * (double)d; /* exact: d is a power of two */
        if (x > (double)DP_SIGMA2_NUM_MAX)
            return MU_ERR_INVALID;
        if (x == (double)(uint64_t)x) {
            *num = (uint64_t)x;
            *den = d;
            return MU_OK;
        }
    }
    return MU_ERR_INVALID;
}
