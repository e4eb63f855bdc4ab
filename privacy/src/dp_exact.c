/* dp_exact.c - exp(-γ) in double with a bounded error, and in multi-limb fixed point with a
 * proven error bound in units of the last place (see dp_exact.h, docs/privacy.md). */
#include <sodium.h>
#include <string.h>

#include "dp_exact.h"

#ifdef __clang__ /* the fast path's rounding must not depend on the compiler (GCC's -std=c11 is    \
                    off) */
#pragma STDC FP_CONTRACT OFF
#endif

/* z = floor(x · y / 2^(64L)), all L+1 limbs; z may alias x or y; x · y < 2^(64L + 64). */
static void mp_mul(uint64_t *z, const uint64_t *x, const uint64_t *y, unsigned L)
{
    uint64_t t[2 * DP_MP_LIMBS_MAX + 2];
    memset(t, 0, sizeof(uint64_t) * (2 * L + 2));
    for (unsigned i = 0; i <= L; i++) {
        uint64_t carry = 0;
        for (unsigned j = 0; j <= L; j++) {
            dp_u128 p = (dp_u128)x[i] * y[j] + t[i + j] + carry;
            t[i + j] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
        t[i + L + 1] = carry;
    }
    memcpy(z, t + L, sizeof(uint64_t) * (L + 1));
    sodium_memzero(t, sizeof(uint64_t) * (2 * L + 2)); /* γ depends on the secret draw */
}

/* x = floor(x / k), k >= 1. */
static void mp_div_small(uint64_t *x, uint64_t k, unsigned L)
{
    uint64_t rem = 0;
    for (unsigned i = L + 1; i-- > 0;) {
        dp_u128 cur = ((dp_u128)rem << 64) | x[i];
        x[i] = (uint64_t)(cur / k);
        rem = (uint64_t)(cur % k);
    }
}

static void mp_add(uint64_t *a, const uint64_t *b, unsigned L)
{
    uint64_t carry = 0;
    for (unsigned i = 0; i <= L; i++) {
        dp_u128 s = (dp_u128)a[i] + b[i] + carry;
        a[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
}

/* a -= b, a >= b. */
static void mp_sub(uint64_t *a, const uint64_t *b, unsigned L)
{
    uint64_t borrow = 0;
    for (unsigned i = 0; i <= L; i++) {
        uint64_t bi = b[i] + borrow;
        uint64_t nb = (bi < borrow) | (a[i] < bi);
        a[i] -= bi;
        borrow = nb;
    }
}

static int mp_is_zero(const uint64_t *a, unsigned L)
{
    for (unsigned i = 0; i <= L; i++)
        if (a[i])
            return 0;
    return 1;
}

int dp_mp_cmp(const uint64_t *a, const uint64_t *b, unsigned L)
{
    for (unsigned i = L + 1; i-- > 0;)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

void dp_mp_add_small(uint64_t *a, uint64_t k, unsigned L)
{
    for (unsigned i = 0; i <= L && k; i++) {
        a[i] += k;
        k = a[i] < k;
    }
}

int dp_mp_sub_small(uint64_t *a, uint64_t k, unsigned L)
{
    uint64_t kk[DP_MP_LIMBS_MAX + 1] = {0};
    kk[0] = k;
    if (dp_mp_cmp(a, kk, L) < 0)
        return 0;
    mp_sub(a, kk, L);
    return 1;
}

/* out = floor(n / (d · 2^s) · 2^(64L)) for n <= d · 2^s (so the value is at most 1): the binary
 * expansion of n/d by long division, shifted right by s. */
static void mp_ratio(uint64_t *out, dp_u128 n, dp_u128 d, unsigned s, unsigned L)
{
    memset(out, 0, sizeof(uint64_t) * (L + 1));
    dp_u128 ip = n / d, r = n % d;
    unsigned top = 64 * L - s; /* bit position of 2^0 of n/d */
    for (unsigned b = 0; ip; b++, ip >>= 1)
        if (ip & 1)
            out[(top + b) / 64] |= 1ull << ((top + b) % 64);
    for (unsigned pos = top; pos-- > 0;) {
        r <<= 1; /* r < d < 2^100: no overflow */
        if (r >= d) {
            r -= d;
            out[pos / 64] |= 1ull << (pos % 64);
        }
    }
}

/* exp(-γ) = exp(-γ / 2^s)^(2^s), s the least with γ / 2^s <= 1: the Taylor series of
 * exp(-f), f <= 1, truncated where a term rounds to zero, then s squarings. Every step rounds
 * down; the bound E follows the error through (docs/privacy.md): f is below f's true value
 * by < 1 ulp, every term is within 4 ulps, the tail is within 4, a squaring maps E to 2E + 2. */
uint64_t dp_mp_exp(uint64_t *out, dp_u128 n, dp_u128 d, unsigned L)
{
    uint64_t f[DP_MP_LIMBS_MAX + 1], term[DP_MP_LIMBS_MAX + 1], neg[DP_MP_LIMBS_MAX + 1];
    unsigned s = 0;
    while (s < 6 && n > (d << s))
        s++;
    mp_ratio(f, n, d, s, L);
    memset(out, 0, sizeof(uint64_t) * (L + 1));
    memset(term, 0, sizeof(uint64_t) * (L + 1));
    memset(neg, 0, sizeof(uint64_t) * (L + 1));
    out[L] = term[L] = 1;
    uint64_t terms = 0;
    for (uint64_t i = 1;; i++) {
        mp_mul(term, term, f, L);
        mp_div_small(term, i, L);
        if (mp_is_zero(term, L))
            break;
        mp_add(i & 1 ? neg : out, term, L);
        terms++;
    }
    mp_sub(out, neg, L);
    uint64_t e = 4 * terms + 4;
    for (unsigned k = 0; k < s; k++) {
        mp_mul(out, out, out, L);
        e = 2 * e + 2;
    }
    sodium_memzero(f, sizeof f);
    sodium_memzero(term, sizeof term);
    sodium_memzero(neg, sizeof neg);
    return e;
}
