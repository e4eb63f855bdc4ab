/* dp_sample.c - the exact discrete Gaussian sampler (CKS 2020, Algorithms 1-3): the bitwise
 * reference, and the fast form that decides each Bernoulli(exp(-γ)) as [U < exp(-γ)] from 32
 * bits of U and a double estimate, exactly in fixed point when U falls in the error band. */
#include <math.h>
#include <omp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dp_exact.h"
#include "dp_sample.h"
#include "dp_sample_internal.h"
#include "mu_bytes.h"

#ifdef __clang__ /* the fast path's rounding must not depend on the compiler (GCC's -std=c11 is    \
                    off) */
#pragma STDC FP_CONTRACT OFF
#endif

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

static uint32_t rng_u32(dp_rng *rng)
{
    if (rng->pos + 4 > DP_RNG_BUF_BYTES)
        refill(rng);
    uint32_t v;
    memcpy(&v, rng->buf + rng->pos, 4);
    rng->pos += 4;
    return v;
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

int dp_dgauss_sample_ref(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n)
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

/* ---- The fast form: the same CKS algorithm, each Bernoulli(exp(-γ)) decided as [U < exp(-γ)].
 *
 * U is uniform on [0, 1), drawn lazily: 32 bits first (top), further 64-bit limbs w[] only when
 * a comparison needs them. Every decision is the exact value of [U < exp(-γ)] for the real U,
 * whichever path takes it (docs/privacy.md, "Why the fast sampler is exact"). */

#define FAST_BAND 0x1p-40 /* > 16 × the estimate's relative error (2^-44) */

typedef struct {
    uint32_t top;
    unsigned n; /* limbs of w drawn; w[0]'s high half is top */
    uint64_t w[DP_MP_LIMBS_MAX];
} lazy_u;

typedef struct {
    dp_rng *rng;
    uint64_t num, den, t;
    u128 D;            /* 2 num den t², the denominator of the acceptance exponent */
    double t_d, inv_D; /* t, 1/D */
    double dy;         /* bound on the error of t · dp_fnlog32 */
    int force_slow;
    dp_sample_stats *st;
} fast_ctx;

static void lazy_start(lazy_u *u, dp_rng *rng)
{
    u->top = rng_u32(rng);
    u->n = 0;
}

static void lazy_wipe(lazy_u *u)
{
    if (u->n)
        sodium_memzero(u->w, sizeof(uint64_t) * u->n);
    u->top = 0;
    u->n = 0;
}

/* The slow path: U's first 64L bits against exp(-n/d) at 64L bits of precision, E its error
 * bound in ulps: U < U_lo + 1 ulp <= e - E ulps < exp(-γ) decides 1, U >= U_lo >= e + E ulps
 * decides 0; otherwise L doubles. */
static int lt_exp_slow(dp_rng *rng, lazy_u *u, u128 n, u128 d, dp_sample_stats *st)
{
    uint64_t e[DP_MP_LIMBS_MAX + 1], lo[DP_MP_LIMBS_MAX + 1];
    int r = -1;
    if (u->n == 0) {
        u->w[0] = (uint64_t)u->top << 32 | rng_u32(rng);
        u->n = 1;
    }
    for (unsigned L = DP_MP_LIMBS_MIN, k = 0; L <= DP_MP_LIMBS_MAX && r < 0; L *= 2, k++) {
        while (u->n < L)
            u->w[u->n++] = rng_u64(rng);
        uint64_t err = dp_mp_exp(e, n, d, L);
        for (unsigned i = 0; i < L; i++)
            lo[L - 1 - i] = u->w[i];
        lo[L] = 0;
        dp_mp_add_small(lo, 1 + err, L); /* U_lo + 1 + E */
        if (dp_mp_cmp(lo, e, L) <= 0)
            r = 1;
        else if (dp_mp_sub_small(lo, 1 + 2 * err, L) && dp_mp_cmp(lo, e, L) >= 0) /* U_lo - E */
            r = 0;
        if (r >= 0 && st)
            st->slow[k]++;
    }
    if (r < 0) {
        r = 0; /* undecided at 16384 bits: probability below 2^-16000 (dp_sample.h) */
        if (st)
            st->gave_up++;
    }
    sodium_memzero(e, sizeof e);
    sodium_memzero(lo, sizeof lo);
    return r;
}

/* [U < exp(-n/d)] for 0 <= n/d <= 64, est an estimate of exp(-n/d) within a relative 2^-42. */
static int lt_exp(fast_ctx *c, lazy_u *u, double est, u128 n, u128 d)
{
    if (!c->force_slow) {
        uint64_t lo = (uint64_t)(est * (1 - FAST_BAND) * 0x1p32);
        uint64_t hi = (uint64_t)(est * (1 + FAST_BAND) * 0x1p32) + 1;
        if (u->top < lo || u->top >= hi) {
            if (c->st)
                c->st->fast++;
            return u->top < lo;
        }
    }
    return lt_exp_slow(c->rng, u, n, d, c->st);
}

/* The magnitude M of the discrete Laplace with scale t: P(M >= k) = exp(-k/t), so M =
 * floor(-t ln U) for one uniform U, whose first 32 bits are top. The exact search:
 * U < e^-32 means M >= 32t, and given that, M - 32t has the same law (memorylessness), so a
 * fresh U; below 32t, a guess k moved by exact comparisons [U < exp(-k/t)] to the boundary.
 * 0 if M reached DP_CAND_MAX. */
static int slow_geom(fast_ctx *c, uint32_t top, uint64_t *mag)
{
    lazy_u u;
    u.top = top;
    u.n = 0;
    uint64_t base = 0, span = 32 * c->t;
    for (;;) {
        if (lt_exp(c, &u, dp_fexp(32), 32, 1)) {
            lazy_wipe(&u);
            base += span;
            if (base >= DP_CAND_MAX)
                return 0;
            lazy_start(&u, c->rng);
            continue;
        }
        double y = u.top ? c->t_d * dp_fnlog32(u.top) : (double)span;
        uint64_t k = y > 0 ? (uint64_t)y : 0;
        if (k >= span)
            k = span - 1;
        /* U < exp(-k/t) holds for k = 0 and fails for k = span: step to the boundary */
        while (k > 0 && !lt_exp(c, &u, dp_fexp((double)k / c->t_d), k, c->t))
            k--;
        while (k + 1 < span && lt_exp(c, &u, dp_fexp((double)(k + 1) / c->t_d), k + 1, c->t))
            k++;
        lazy_wipe(&u);
        if (base + k >= DP_CAND_MAX)
            return 0;
        *mag = base + k;
        return 1;
    }
}

/* The fast path of the magnitude: -t ln U bounded over the 2^-32-wide interval of U given by
 * top (dp_fnlog32's error plus the width t ln(1 + 1/top) <= t 2^-e, 2^e <= top); *mag is M
 * and 1 returned when both ends have the same floor, else 0 (slow_geom decides). */
static int geom_fast(const fast_ctx *c, uint32_t top, uint64_t *mag)
{
    uint32_t v = top | (top == 0);
    unsigned e = 31u - (unsigned)__builtin_clz(v);
    double y = c->t_d * dp_fnlog32(v), w = c->t_d * dp_pow2neg(e);
    double hi = y + c->dy, lo = y - w - c->dy;
    int64_t k = (int64_t)hi; /* signed conversions: one instruction each */
    *mag = (uint64_t)k;      /* k < 22.2 t + 1 < DP_CAND_MAX */
    return (top != 0) & (lo >= (double)k);
}

/* [U < exp(-γ)] for the acceptance step, g = γ exactly as g/D, gd its double estimate (relative
 * error below 2^-50). For γ <= 1 first the squeeze 1 - γ + γ²/2 - γ³/6 <= exp(-γ) <= 1 - γ +
 * γ²/2 (Taylor's remainder has the sign of the next term), each within 2^-47 after rounding. */
static int squeeze(double gd, uint32_t top)
{
    double p2 = 1 + gd * (-1 + gd * 0.5), p3 = p2 - gd * gd * gd * (1.0 / 6);
    int small = gd <= 1; /* beyond 1 the bounds are useless: undecided */
    double lo_d = small ? (p3 - 0x1p-47) * 0x1p32 : 0,
           hi_d = small ? (p2 + 0x1p-47) * 0x1p32 : 0x1p33;
    int64_t lo = lo_d > 0 ? (int64_t)lo_d : 0, hi = (int64_t)hi_d + 1, u = top;
    return (u < lo) | -((u >= lo) & (u < hi)); /* 1, -1 (undecided) or 0, without branches */
}

/* The acceptance, squeeze first unless that is known (sq) to be undecided. */
static int accept(fast_ctx *c, uint32_t top, double gd, u128 g, int sq)
{
    if (sq >= 0 && !c->force_slow) {
        if (c->st)
            c->st->fast++;
        return sq;
    }
    lazy_u u; /* not zeroed: only top and the n limbs drawn are read */
    u.top = top;
    u.n = 0;
    int ok;
    if (g <= 64 * c->D) {
        ok = lt_exp(c, &u, dp_fexp(gd), g, c->D);
    } else { /* exp(-γ) = e^-64 · exp(-(γ - 64)), two independent Bernoullis */
        ok = lt_exp(c, &u, dp_fexp(64), 64, 1) && bern_exp(c->rng, g - 64 * c->D, c->D);
        if (c->st)
            c->st->big++;
    }
    lazy_wipe(&u);
    return ok;
}

#define BATCH 32

/* n 32-bit words of the stream, in place in the rng's buffer (valid until its next refill;
 * dp_rng_deinit wipes them): no copy to wipe. */
static const uint8_t *rng_words(dp_rng *rng, size_t n)
{
    if (rng->pos + 4 * n > DP_RNG_BUF_BYTES)
        refill(rng);
    const uint8_t *w = rng->buf + rng->pos;
    rng->pos += 4 * n;
    return w;
}

static uint32_t word(const uint8_t *w, int i)
{
    uint32_t v;
    memcpy(&v, w + 4 * i, 4);
    return v;
}

/* Algorithm 3 with the fast comparisons, BATCH proposals at a time so the independent
 * fast paths overlap: candidate ±M from the discrete Laplace (-0 rejected), accepted with
 * exp(-γ), γ = (M den t - num)² / D. Each proposal has its own uniforms (the words of ug, ua
 * and one bit of sg), so deciding some later on the slow path changes no law. Writes at most
 * room outputs, the accepted proposals in order; returns how many. */
static size_t fast_batch(fast_ctx *c, int64_t *out, size_t room)
{
    uint32_t ug[BATCH], ua[BATCH], sg;
    uint64_t mag[BATCH];
    double gd[BATCH];
    int okg[BATCH], sq[BATCH];
    const uint8_t *w = rng_words(c->rng, 2 * BATCH + 1);
    for (int i = 0; i < BATCH; i++) {
        ug[i] = word(w, i);
        ua[i] = word(w, BATCH + i);
    }
    sg = word(w, 2 * BATCH);
    for (int i = 0; i < BATCH; i++)
        okg[i] = geom_fast(c, ug[i], &mag[i]) & !c->force_slow;
    for (int i = 0; i < BATCH; i++) { /* m < 22.2 t + 1 here, so |m den t - num| < 2^40 */
        int64_t diff = (int64_t)(mag[i] * c->den * c->t) - (int64_t)c->num;
        gd[i] = (double)diff * (double)diff * c->inv_D;
        sq[i] = squeeze(gd[i], ua[i]);
    }
    size_t k = 0;
    for (int i = 0; i < BATCH && k < room; i++) {
        uint64_t m = mag[i];
        int neg = (int)(sg >> i & 1);
        if (okg[i] && sq[i] >= 0) { /* the common case, without a data-dependent branch */
            out[k] = neg ? -(int64_t)m : (int64_t)m;
            k += (size_t)(sq[i] & !(neg & (m == 0)));
            if (c->st)
                c->st->fast += 2;
            continue;
        }
        if (!okg[i]) {
            if (!slow_geom(c, ug[i], &m))
                continue;
            sq[i] = -1;
        } else if (c->st) {
            c->st->fast++;
        }
        if (neg && m == 0)
            continue;
        uint64_t a = m * c->den * c->t, diff = a > c->num ? a - c->num : c->num - a; /* < 2^64 */
        if (!okg[i])
            gd[i] = (double)diff * (double)diff * c->inv_D;
        if (accept(c, ua[i], gd[i], (u128)diff * diff, sq[i]))
            out[k++] = neg ? -(int64_t)m : (int64_t)m;
    }
    sodium_memzero(ug, sizeof ug);
    sodium_memzero(ua, sizeof ua);
    sodium_memzero(mag, sizeof mag);
    sodium_memzero(gd, sizeof gd);
    return k;
}

int dp_dgauss_sample_hook(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n,
                          int force_slow, dp_sample_stats *st)
{
    if (num == 0 || den == 0 || num > DP_SIGMA2_NUM_MAX || den > DP_SIGMA2_DEN_MAX)
        return MU_ERR_INVALID;
    fast_ctx c = {.rng = rng, .num = num, .den = den, .force_slow = force_slow, .st = st};
    c.t = lap_scale(num, den);
    c.D = (u128)2 * num * den * c.t * c.t;
    c.t_d = (double)c.t;
    c.inv_D = 1.0 / (double)c.D;
    c.dy = c.t_d * 0x1p-44; /* t (2^-46 + 22.2 · 2^-53) rounded up, see docs/privacy.md */
    for (size_t i = 0; i < n;)
        i += fast_batch(&c, out + i, n - i);
    return MU_OK;
}

int dp_dgauss_sample_cks(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n)
{
    return dp_dgauss_sample_hook(rng, num, den, out, n, 0, NULL);
}

int dp_lt_exp_hook(dp_rng *rng, const uint64_t *w, unsigned nw, dp_u128 n, dp_u128 d,
                   dp_sample_stats *st)
{
    if (nw < 1 || nw > DP_MP_LIMBS_MAX)
        return -1;
    fast_ctx c = {.rng = rng, .st = st};
    lazy_u u = {.top = (uint32_t)(w[0] >> 32), .n = nw};
    memcpy(u.w, w, sizeof(uint64_t) * nw);
    int r = lt_exp(&c, &u, dp_fexp((double)n / (double)d), n, d);
    lazy_wipe(&u);
    return r;
}

int dp_dgauss_fill_by(const uint8_t seed[DP_SEED_BYTES], uint64_t stream, uint64_t num,
                      uint64_t den, int64_t *out, size_t n, int threads, int cks)
{
    if (num == 0 || den == 0 || num > DP_SIGMA2_NUM_MAX || den > DP_SIGMA2_DEN_MAX || threads < 1 ||
        n > DP_FILL_MAX)
        return MU_ERR_INVALID;
    dp_zig z; /* built once, read by every thread */
    if (!cks)
        dp_zig_build(&z, num, den, 0, 0);
    long nb = (long)((n + DP_FILL_BLOCK - 1) / DP_FILL_BLOCK);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long b = 0; b < nb; b++) {
        dp_rng rng;
        dp_rng_init(&rng, seed, stream);
        rng.block = (uint64_t)b << 32; /* block b's own range of the keystream */
        size_t off = (size_t)b * DP_FILL_BLOCK,
               len = n - off < DP_FILL_BLOCK ? n - off : DP_FILL_BLOCK;
        if (cks)
            dp_dgauss_sample_cks(&rng, num, den, out + off, len);
        else
            dp_zig_sample(&z, &rng, out + off, len, 0, NULL);
        dp_rng_deinit(&rng);
    }
    return MU_OK;
}

int dp_dgauss_fill(const uint8_t seed[DP_SEED_BYTES], uint64_t stream, uint64_t num, uint64_t den,
                   int64_t *out, size_t n, int threads)
{
    return dp_dgauss_fill_by(seed, stream, num, den, out, n, threads, 0);
}

int dp_dgauss_fill_add(const uint8_t seed[DP_SEED_BYTES], uint64_t stream, uint64_t num,
                       uint64_t den, int64_t *out, size_t n, int threads)
{
    if (num == 0 || den == 0 || num > DP_SIGMA2_NUM_MAX || den > DP_SIGMA2_DEN_MAX || threads < 1 ||
        n > DP_FILL_MAX)
        return MU_ERR_INVALID;
    long nb = (long)((n + DP_FILL_BLOCK - 1) / DP_FILL_BLOCK);
    int th = nb < threads ? (int)(nb ? nb : 1) : threads;
    size_t per = n < DP_FILL_BLOCK ? (n ? n : 1) : DP_FILL_BLOCK;
    int64_t *buf = malloc(sizeof(int64_t) * per * (size_t)th); /* one block's draws per thread */
    if (!buf)
        return MU_ERR_NOMEM;
    dp_zig z;
    dp_zig_build(&z, num, den, 0, 0);
#pragma omp parallel num_threads(th)
    {
        int64_t *y = buf + per * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (long b = 0; b < nb; b++) {
            dp_rng rng;
            dp_rng_init(&rng, seed, stream);
            rng.block = (uint64_t)b << 32; /* as dp_dgauss_fill: the same draws */
            size_t off = (size_t)b * DP_FILL_BLOCK,
                   len = n - off < DP_FILL_BLOCK ? n - off : DP_FILL_BLOCK;
            dp_zig_sample(&z, &rng, y, len, 0, NULL);
            dp_rng_deinit(&rng);
            for (size_t i = 0; i < len; i++)
                out[off + i] += y[i];
        }
    }
    sodium_memzero(buf, sizeof(int64_t) * per * (size_t)th);
    free(buf);
    return MU_OK;
}

int dp_squeeze_hook(double gd, uint32_t top)
{
    return squeeze(gd, top);
}

int dp_geom_hook(dp_rng *rng, uint64_t t, uint32_t top, int fast, uint64_t *mag)
{
    fast_ctx c = {.rng = rng, .t = t, .t_d = (double)t, .dy = (double)t * 0x1p-44};
    return fast ? geom_fast(&c, top, mag) : slow_geom(&c, top, mag);
}

uint32_t dp_rng_u32(dp_rng *rng)
{
    return rng_u32(rng);
}

const uint8_t *dp_rng_words(dp_rng *rng, size_t n)
{
    return rng_words(rng, n);
}

int dp_bern_exp(dp_rng *rng, dp_u128 n, dp_u128 d)
{
    return bern_exp(rng, n, d);
}

int dp_cmp_exp(dp_rng *rng, uint32_t top, double est, dp_u128 n, dp_u128 d, int force_slow,
               dp_sample_stats *st)
{
    fast_ctx c = {.rng = rng, .force_slow = force_slow, .st = st};
    lazy_u u; /* only top and the limbs drawn are read */
    u.top = top;
    u.n = 0;
    int r = lt_exp(&c, &u, est, n, d);
    lazy_wipe(&u);
    return r;
}
