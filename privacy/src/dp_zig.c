/* dp_zig.c - the exact discrete Gaussian by an integer ziggurat (the default form of
 * dp_dgauss_sample and dp_dgauss_fill; docs/privacy.md, "The ziggurat").
 *
 * The magnitude m >= 0 is drawn with P(m) ∝ f(m) = exp(-m²/(2σ²)), then a sign, -0 rejected
 * (as CKS step 2 does), so ±m has P ∝ f(|x|) on all of Z.
 *
 * Centre (m <= M): 2^q strips of height 2^-q, strip i (1-based) the heights
 * [y_i, y_{i-1}), y_i = 1 - i 2^-q, covering magnitudes 0..min(X_i, M), X_i = max{m : f(m) > y_i}
 * (X_{2^q} = ∞). A point (m, y) uniform over the strips' cells is accepted when y < f(m):
 * with no comparison at all when m <= X_{i-1} (the cell lies under the curve), else by the
 * exact comparison [y < exp(-γ)] of dp_sample.c, y's first q bits being those of y_i. The
 * cells are chosen by an alias table with integer capacities (8 bits choose a bucket, Lemire's
 * exact multiply-and-reject a cell in it) plus a reject item that pads the total to 256 K.
 *
 * Tail (m > M), exactly and without its mass: f(M + 1 + j) = f(j) c(j) with
 * c(j) = exp(-((M + 1)² + 2(M + 1) j)/(2σ²)) <= c(0) = exp(-γ0), so π is the stationary law of
 * the chain x -> M + 1 + x with probability c(x), else a fresh centre draw; coupling from the
 * past: go back while a Bernoulli(exp(-γ0)) succeeds (A), the first failure makes the chain
 * forget its state, then run forward shifting with Bernoulli(c(x)/c(0)) = Bernoulli(exp(-(M+1)
 * x/σ²)). With M about 4.1σ, A succeeds with probability about 2^-12.
 *
 * Every random bit comes from the dp_rng stream in a fixed order, so a seed and stream give the
 * same draws everywhere (the only floating point is in dp_fexp's decisions, as before). */
#include <math.h>
#include <sodium.h>
#include <string.h>

#include "dp_exact.h"
#include "dp_sample.h"
#include "dp_sample_internal.h"
#include "mu_bytes.h"

#ifdef __clang__ /* as dp_sample.c: the fast path's rounding must not depend on the compiler */
#pragma STDC FP_CONTRACT OFF
#endif

#define ZIG_BAND    0x1p-40      /* the fast path's band, as FAST_BAND in dp_sample.c */
#define ZIG_CAND    (1ull << 31) /* a magnitude this large is rejected (dp_sample.h) */
#define ZIG_BATCH   64
#define ZIG_DEFAULT 7

/* [exp(-n/d) > a/2^q] for 1 <= a < 2^q, q <= 32: 1, 0, or -1 if still undecided at 16384 bits
 * (exp(-n/d) is irrational for n > 0, and 1 > a/2^q for n = 0). */
static int exp_above(dp_u128 n, dp_u128 d, uint64_t a, unsigned q)
{
    if (n == 0)
        return 1;
    if (n > 64 * d) /* exp(-γ) < e^-64 < 2^-92 <= a/2^q */
        return 0;
    double y = (double)a * ldexp(1.0, -(int)q), est = dp_fexp((double)n / (double)d);
    if (y < est * (1 - ZIG_BAND))
        return 1;
    if (y >= est * (1 + ZIG_BAND))
        return 0;
    uint64_t e[DP_MP_LIMBS_MAX + 1], t[DP_MP_LIMBS_MAX + 1];
    int r = -1;
    for (unsigned L = DP_MP_LIMBS_MIN; L <= DP_MP_LIMBS_MAX && r < 0; L *= 2) {
        uint64_t err = dp_mp_exp(e, n, d, L);
        memset(t, 0, sizeof(uint64_t) * (L + 1));
        t[L - 1] = a << (64 - q); /* a/2^q in 64L-bit fixed point */
        dp_mp_add_small(t, err, L);
        if (dp_mp_cmp(e, t, L) > 0) {
            r = 1;
            break;
        }
        memset(t, 0, sizeof(uint64_t) * (L + 1));
        t[L - 1] = a << (64 - q);
        if (dp_mp_sub_small(t, err, L) && dp_mp_cmp(e, t, L) < 0)
            r = 0;
    }
    return r;
}

/* X = max{m >= 0 : f(m) > a/2^q}: an undecided comparison counts as `conv` (1 for a width,
 * which may only be too large, 0 for a sure bound, which may only be too small). */
static uint64_t strip_end(const dp_zig *z, uint64_t a, int conv, int *undecided)
{
    double s2 = (double)z->num / (double)z->den;
    double g = sqrt(2 * s2 * -log((double)a * ldexp(1.0, -(int)z->q)));
    uint64_t m = g > 0 ? (uint64_t)g : 0;
    for (int dir = 0; dir < 2; dir++)
        for (;;) {
            uint64_t c = dir ? m + 1 : m; /* dir 0: step down until m is inside */
            int r = exp_above((dp_u128)c * c * z->den, (dp_u128)2 * z->num, a, z->q);
            if (r < 0) {
                *undecided = 1;
                r = conv;
            }
            if (dir == 0 && !r && m > 0)
                m--;
            else if (dir == 1 && r)
                m++;
            else
                break;
        }
    return m;
}

void dp_zig_build(dp_zig *z, uint64_t num, uint64_t den, unsigned q, uint64_t M)
{
    memset(z, 0, sizeof *z);
    z->num = num;
    z->den = den;
    z->q = q >= 1 && q <= DP_ZIG_QMAX ? q : ZIG_DEFAULT;
    uint32_t n = 1u << z->q;
    uint64_t Xw[1u << DP_ZIG_QMAX], Xs[1u << DP_ZIG_QMAX]; /* X_i for i = 1..n-1 */
    for (uint32_t i = 1; i < n; i++) {
        int und = 0;
        Xw[i] = strip_end(z, n - i, 1, &und);
        Xs[i] = und ? strip_end(z, n - i, 0, &und) : Xw[i];
        z->undecided |= und;
    }
    double sigma = sqrt((double)num / (double)den);
    uint64_t Mdef = (uint64_t)ceil(4.1 * sigma);
    if (n > 1 && Xw[n - 1] > Mdef)
        Mdef = Xw[n - 1];
    z->M = M = M ? M : Mdef;
    uint64_t W = 0, w[DP_ZIG_BUCKETS] = {0};
    for (uint32_t j = 0; j < n; j++) {
        uint64_t wide = j + 1 < n ? (Xw[j + 1] < M ? Xw[j + 1] : M) + 1 : M + 1;
        uint64_t sure = j == 0 ? 0 : (Xs[j] < M ? Xs[j] : M) + 1;
        z->width[j] = (uint32_t)wide;
        z->sure[j] = (uint32_t)sure;
        z->pre[j] = (uint32_t)((uint64_t)(n - 1 - j) << (32 - z->q));
        w[j] = wide;
        W += wide;
    }
    z->K = (uint32_t)((W + DP_ZIG_BUCKETS - 1) / DP_ZIG_BUCKETS);
    z->pad = (uint64_t)z->K * DP_ZIG_BUCKETS - W;
    w[n] = z->pad; /* the reject item: sure[n] = 0 and never accepted */
    z->lem_thr[0] = ((1u << 24) - z->K) % z->K; /* K < 2^18 */
    z->lem_thr[1] = (uint32_t)(-z->K) % z->K;
    /* Vose's alias construction in integers: every bucket holds K cells, tau of its own item
     * and K - tau of its alias; every item owns exactly one bucket. An item's cells are
     * numbered from its own piece (0..tau-1), then its alias pieces in bucket order. */
    uint16_t small[DP_ZIG_BUCKETS], large[DP_ZIG_BUCKETS];
    unsigned ns = 0, nl = 0;
    for (unsigned i = 0; i < DP_ZIG_BUCKETS; i++) {
        if (w[i] < z->K)
            small[ns++] = (uint16_t)i;
        else
            large[nl++] = (uint16_t)i;
    }
    unsigned b = 0;
    while (ns && nl) {
        uint16_t s = small[--ns], l = large[nl - 1];
        z->own[b] = s;
        z->alias[b] = l;
        z->bk[b++].tau = (uint32_t)w[s];
        w[l] -= z->K - w[s];
        if (w[l] < z->K) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) { /* exactly K left in each (the totals agree) */
        uint16_t l = large[--nl];
        z->own[b] = z->alias[b] = l;
        z->bk[b++].tau = z->K;
    }
    uint64_t next[DP_ZIG_BUCKETS]; /* the next free cell of each item */
    for (unsigned i = 0; i < DP_ZIG_BUCKETS; i++)
        next[z->own[i]] = z->bk[i].tau;
    for (unsigned i = 0; i < DP_ZIG_BUCKETS; i++) {
        dp_zig_bucket *bk = &z->bk[i];
        uint32_t o = z->own[i], a = z->alias[i], so = o < n ? z->sure[o] : 0,
                 sa = a < n ? z->sure[a] : 0;
        uint64_t off = next[a];
        next[a] += z->K - bk->tau;
        bk->delta = (int32_t)((int64_t)off - (int64_t)bk->tau);
        bk->so = so < bk->tau ? so : bk->tau;
        uint64_t left = sa > off ? sa - off : 0, room = z->K - bk->tau;
        bk->sa = bk->tau + (uint32_t)(left < room ? left : room);
    }
    z->n0 = (dp_u128)(M + 1) * (M + 1) * den;
    z->d0 = (dp_u128)2 * num;
    z->est0 = dp_fexp(z->n0 <= 64 * z->d0 ? (double)z->n0 / (double)z->d0 : 64);
    z->a_thr15 = (uint32_t)(z->est0 * (1 + ZIG_BAND) * 32768.0) + 1;
}

/* A cell from 8 bucket bits and an L-bit Lemire input x (wide = 0: L = 24, 1: L = 32): its
 * magnitude m and whether it lies under the curve, without a branch on the (secret) cell;
 * returns 0 when Lemire rejects x (draw another). */
static inline int cell(const dp_zig *z, uint32_t b8, uint32_t x, int wide, uint32_t *m,
                       uint32_t *sure)
{
    unsigned L = wide ? 32 : 24;
    uint64_t p = (uint64_t)x * z->K;
    uint32_t v = (uint32_t)(p >> L), lo = (uint32_t)(p & ((1ull << L) - 1));
    const dp_zig_bucket *bk = &z->bk[b8];
    uint32_t alias = -(uint32_t)(v >= bk->tau); /* a mask */
    *m = v + ((uint32_t)bk->delta & alias);
    *sure = (v < bk->so) | ((v >= bk->tau) & (v < bk->sa));
    return lo >= z->lem_thr[wide];
}

/* The strip of a cell (for the slow path). */
static uint32_t cell_item(const dp_zig *z, uint32_t b8, uint32_t x, int wide)
{
    uint32_t v = (uint32_t)(((uint64_t)x * z->K) >> (wide ? 32 : 24));
    return v < z->bk[b8].tau ? z->own[b8] : z->alias[b8];
}

/* [U < exp(-n/d)] for U's first 32 bits top (the rest fresh) when n/d <= 64; beyond, the
 * Bernoulli(exp(-n/d)) [U < e^-64] and an independent bitwise Bernoulli(exp(-(n/d - 64))), which
 * has the same probability (used where only that probability matters: the tail's A test and
 * the bottom strip, whose heights start at 0). */
static int lt_exp_any(dp_rng *rng, uint32_t top, dp_u128 n, dp_u128 d, int force,
                      dp_sample_stats *st)
{
    if (n <= 64 * d)
        return dp_cmp_exp(rng, top, dp_fexp((double)n / (double)d), n, d, force, st);
    if (st)
        st->big++;
    return dp_cmp_exp(rng, top, dp_fexp(64), 64, 1, force, st) && dp_bern_exp(rng, n - 64 * d, d);
}

/* The centre's acceptance of a proposed cell that is not sure: [y < f(m)], y's first q bits
 * those of the strip's bottom, the rest fresh. Above the bottom strip f(m) > 2^-q, so γ < 4.9. */
static int wedge(const dp_zig *z, dp_rng *rng, uint32_t item, uint32_t m, int force,
                 dp_sample_stats *st)
{
    if (item >= (1u << z->q)) /* the reject item */
        return 0;
    uint32_t top = z->pre[item] | (dp_rng_u32(rng) >> z->q);
    return lt_exp_any(rng, top, (dp_u128)m * m * z->den, (dp_u128)2 * z->num, force, st);
}

/* One draw of the centre law (f on 0..M), proposals from fresh words. */
static uint32_t centre_one(const dp_zig *z, dp_rng *rng, int force, dp_sample_stats *st)
{
    for (;;) {
        uint32_t b8 = dp_rng_u32(rng) & 0xff, x, m, sure;
        while (!cell(z, b8, x = dp_rng_u32(rng), 1, &m, &sure))
            ;
        if (sure) {
            if (st)
                st->sure++;
            return m;
        }
        if (wedge(z, rng, cell_item(z, b8, x, 1), m, force, st))
            return m;
    }
}

/* A (time 0) succeeded: coupling from the past. Returns the magnitude, or -1 at the 2^31 cut. */
static int64_t tail(const dp_zig *z, dp_rng *rng, int force, dp_sample_stats *st)
{
    if (st)
        st->tail++;
    uint64_t k = 1; /* A_0, ..., A_{-k+1} succeeded */
    while (lt_exp_any(rng, dp_rng_u32(rng), z->n0, z->d0, force, st))
        k++;
    uint64_t x = centre_one(z, rng, force, st); /* time -k: the chain forgets its state */
    for (uint64_t i = 0; i < k; i++) {          /* times -k+1 .. 0 */
        if (dp_bern_exp(rng, (dp_u128)(z->M + 1) * x * z->den, z->num)) {
            x += z->M + 1;
            if (st)
                st->shifts++;
            if (x >= ZIG_CAND)
                return -1;
        } else {
            x = centre_one(z, rng, force, st);
        }
    }
    return (int64_t)x;
}

/* A proposal the batch's fast path did not finish: Lemire rejection, a wedge or the reject
 * item, the A test undecided by 15 bits, or the tail. 1 and *out if it gives a draw. */
static int slow_one(const dp_zig *z, dp_rng *rng, uint64_t w, int force, dp_sample_stats *st,
                    int64_t *out)
{
    uint32_t m, sure, b8 = (uint32_t)w & 0xff, x = (uint32_t)(w >> 8) & 0xffffff;
    uint32_t a15 = (uint32_t)(w >> 32) & 0x7fff, neg = (uint32_t)(w >> 47) & 1;
    int wide = 0; /* Lemire on the word's 24 bits, then (rejected) on fresh 32-bit words */
    while (!cell(z, b8, x, wide, &m, &sure)) {
        x = dp_rng_u32(rng);
        wide = 1;
    }
    if (sure) {
        if (st)
            st->sure++;
    } else if (!wedge(z, rng, cell_item(z, b8, x, wide), m, force, st)) {
        return 0;
    }
    int64_t r = m;
    int a;
    if (a15 >= z->a_thr15 && !force) {
        a = 0;
        if (st)
            st->fast++;
    } else {
        a = lt_exp_any(rng, a15 << 17 | dp_rng_u32(rng) >> 15, z->n0, z->d0, force, st);
    }
    if (a && (r = tail(z, rng, force, st)) < 0)
        return 0;
    if (neg && r == 0)
        return 0;
    *out = neg ? -r : r;
    return 1;
}

/* ZIG_BATCH proposals of 48 stream bits each (6 bytes, little-endian): bits 0-7 the bucket,
 * 8-31 Lemire's input, 32-46 the first 15 bits of the U of A, 47 the sign. The common case (a
 * sure cell, A decided by 15 bits) takes no branch on the data. Writes at most room draws;
 * returns how many. */
static size_t zig_batch(const dp_zig *z, dp_rng *rng, int64_t *out, size_t room, int force,
                        dp_sample_stats *st)
{
    uint8_t b[6 * ZIG_BATCH + 2] = {0}; /* 2 bytes of slack for the last 8-byte read */
    memcpy(b, dp_rng_words(rng, 6 * ZIG_BATCH / 4), 6 * ZIG_BATCH); /* slow_one may refill */
    size_t k = 0, nf = 0;
    uint32_t a_thr = force ? 0x8000u : z->a_thr15; /* forced: A always on the exact path */
    for (int i = 0; i < ZIG_BATCH && k < room; i++) {
        uint64_t w = mu_le64(b + 6 * i) & 0xffffffffffffull;
        uint32_t m, sure;
        int ok = cell(z, (uint32_t)w & 0xff, (uint32_t)(w >> 8) & 0xffffff, 0, &m, &sure);
        uint32_t a15 = (uint32_t)(w >> 32) & 0x7fff, neg = (uint32_t)(w >> 47) & 1;
        if (__builtin_expect(ok & sure & (a15 >= a_thr), 1)) {
            out[k] = neg ? -(int64_t)m : (int64_t)m;
            k += !(neg & (m == 0));
            nf++;
        } else {
            k += (size_t)slow_one(z, rng, w, force, st, out + k);
        }
    }
    if (st) {
        st->sure += nf;
        st->fast += nf;
    }
    sodium_memzero(b, sizeof b);
    return k;
}

void dp_zig_sample(const dp_zig *z, dp_rng *rng, int64_t *out, size_t n, int force,
                   dp_sample_stats *st)
{
    for (size_t i = 0; i < n;)
        i += zig_batch(z, rng, out + i, n - i, force, st);
}

int dp_dgauss_sample(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n)
{
    if (num == 0 || den == 0 || num > DP_SIGMA2_NUM_MAX || den > DP_SIGMA2_DEN_MAX)
        return MU_ERR_INVALID;
    dp_zig z;
    dp_zig_build(&z, num, den, 0, 0);
    dp_zig_sample(&z, rng, out, n, 0, NULL);
    return MU_OK;
}

int dp_zig_cell_hook(const dp_zig *z, uint32_t b8, uint32_t x, int wide, uint32_t *m,
                     uint32_t *sure)
{
    return cell(z, b8, x, wide, m, sure);
}
