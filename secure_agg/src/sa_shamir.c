/* sa_shamir.c - Shamir secret sharing over the ed25519 scalar field via libsodium. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"

#define S SA_SCALAR_BYTES

void sa_scalar_from_u64(uint8_t s[S], uint64_t x)
{
    memset(s, 0, S);
    memcpy(s, &x, sizeof x);
}

void sa_shamir_eval(uint8_t y[S], const uint8_t (*coeffs)[S], uint32_t t, uint64_t x)
{
    uint8_t xs[S], acc[S];
    sa_scalar_from_u64(xs, x);
    memcpy(acc, coeffs[t - 1], S);
    for (uint32_t j = t - 1; j-- > 0;) {
        crypto_core_ed25519_scalar_mul(acc, acc, xs);
        crypto_core_ed25519_scalar_add(acc, acc, coeffs[j]);
    }
    memcpy(y, acc, S);
    sodium_memzero(acc, sizeof acc);
}

static void random_scalar(uint8_t out[S], const sa_rng *rng)
{
    uint8_t wide[64];
    sa_rng_fill(rng, wide, sizeof wide);
    crypto_core_ed25519_scalar_reduce(out, wide);
    sodium_memzero(wide, sizeof wide);
}

int sa_shamir_split(uint8_t (*shares)[SA_SHARE_BYTES], const uint64_t *xs, size_t m, uint32_t t,
                    const uint8_t secret[SA_SECRET_BYTES], const sa_rng *rng, int threads)
{
    if (t == 0 || t > m)
        return MU_ERR_INVALID;
    uint8_t(*poly)[S] = calloc(2 * (size_t)t, S); /* limb 0's polynomial, then limb 1's */
    if (!poly)
        return MU_ERR_NOMEM;
    for (int limb = 0; limb < 2; limb++) {
        uint8_t(*p)[S] = poly + (size_t)limb * t;
        memcpy(p[0], secret + limb * SA_LIMB_BYTES, SA_LIMB_BYTES);
        for (uint32_t j = 1; j < t; j++)
            random_scalar(p[j], rng);
    }
    /* the rng is drawn above, in order; the evaluations are independent */
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1)
    for (long i = 0; i < (long)m; i++)
        for (int limb = 0; limb < 2; limb++)
            sa_shamir_eval(shares[i] + limb * S, (const uint8_t(*)[S])(poly + (size_t)limb * t), t,
                           xs[i]);
    sodium_memzero(poly, 2 * (size_t)t * S);
    free(poly);
    return MU_OK;
}

static void scalar_from_u128(uint8_t s[S], unsigned __int128 v)
{
    memset(s, 0, S);
    for (int i = 0; i < 16; i++, v >>= 8)
        s[i] = (uint8_t)v;
}

/* lambda_i = prod_{j != i} x_j / (x_j - x_i) = P / (x_i * D_i), with P = prod_j x_j and
 * D_i = prod_{j != i} (x_j - x_i). The x are below 2^33, so D_i is formed from |x_j - x_i|
 * three at a time in 128-bit integers (< 2^99) with its sign kept apart, and the t values
 * x_i * D_i are inverted together with one field inversion (prefix products). */
int sa_shamir_lagrange(uint8_t (*lambda)[S], const uint64_t *xs, size_t t)
{
    if (t == 0)
        return MU_ERR_INVALID;
    for (size_t i = 0; i < t; i++)
        if (xs[i] == 0 || xs[i] >= ((uint64_t)1 << 33))
            return MU_ERR_INVALID;
    uint8_t(*den)[S] = malloc(t * S);
    uint8_t(*pre)[S] = malloc(t * S);
    int rc = MU_OK;
    if (!den || !pre) {
        rc = MU_ERR_NOMEM;
        goto out_free;
    }
    uint8_t prod[S], tmp[S], inv[S];
    sa_scalar_from_u64(prod, 1);
    for (size_t i = 0; i < t; i++) {
        sa_scalar_from_u64(tmp, xs[i]);
        crypto_core_ed25519_scalar_mul(prod, prod, tmp);
        unsigned __int128 acc = xs[i]; /* den_i starts as x_i */
        int held = 1, negative = 0;
        sa_scalar_from_u64(den[i], 1);
        for (size_t j = 0; j < t; j++) {
            if (j == i)
                continue;
            if (xs[j] == xs[i]) {
                rc = MU_ERR_INVALID;
                goto out_free;
            }
            negative ^= xs[j] < xs[i];
            acc *= xs[j] > xs[i] ? xs[j] - xs[i] : xs[i] - xs[j];
            if (++held == 3) {
                scalar_from_u128(tmp, acc);
                crypto_core_ed25519_scalar_mul(den[i], den[i], tmp);
                acc = 1;
                held = 0;
            }
        }
        scalar_from_u128(tmp, acc);
        crypto_core_ed25519_scalar_mul(den[i], den[i], tmp);
        if (negative)
            crypto_core_ed25519_scalar_negate(den[i], den[i]);
    }
    memcpy(pre[0], den[0], S);
    for (size_t i = 1; i < t; i++)
        crypto_core_ed25519_scalar_mul(pre[i], pre[i - 1], den[i]);
    if (crypto_core_ed25519_scalar_invert(inv, pre[t - 1]) != 0) {
        rc = MU_ERR_INVALID;
        goto out_free;
    }
    for (size_t i = t; i-- > 0;) {
        /* inv = 1 / (den_0 ... den_i) */
        if (i > 0) {
            crypto_core_ed25519_scalar_mul(tmp, inv, pre[i - 1]); /* 1/den_i */
            crypto_core_ed25519_scalar_mul(inv, inv, den[i]);
        } else {
            memcpy(tmp, inv, S);
        }
        crypto_core_ed25519_scalar_mul(lambda[i], prod, tmp);
    }
out_free:
    free(den);
    free(pre);
    return rc;
}

int sa_shamir_combine(uint8_t secret[SA_SECRET_BYTES], const uint8_t *const *shares,
                      const uint8_t (*lambda)[S], size_t t)
{
    uint8_t acc[S], term[S];
    int rc = MU_OK;
    for (int limb = 0; limb < 2 && rc == MU_OK; limb++) {
        memset(acc, 0, S);
        for (size_t i = 0; i < t; i++) {
            crypto_core_ed25519_scalar_mul(term, lambda[i], shares[i] + limb * S);
            crypto_core_ed25519_scalar_add(acc, acc, term);
        }
        static const uint8_t zero[S - SA_LIMB_BYTES];
        if (sodium_memcmp(acc + SA_LIMB_BYTES, zero, sizeof zero) != 0)
            rc = MU_ERR_CRYPTO;
        else
            memcpy(secret + limb * SA_LIMB_BYTES, acc, SA_LIMB_BYTES);
    }
    if (rc)
        sodium_memzero(secret, SA_SECRET_BYTES);
    sodium_memzero(acc, sizeof acc);
    sodium_memzero(term, sizeof term);
    return rc;
}
