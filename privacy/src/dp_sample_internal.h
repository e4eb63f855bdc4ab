/* dp_sample_internal.h - test hooks of the fast exact sampler (not part of the API). */
#ifndef DP_SAMPLE_INTERNAL_H
#define DP_SAMPLE_INTERNAL_H

#include "dp_exact.h"
#include "dp_sample.h"

/* How each comparison [U < exp(-γ)] was decided. */
typedef struct {
    uint64_t fast;    /* from 32 bits of U and the double estimate */
    uint64_t slow[7]; /* by the slow path at 256 · 2^k bits, k = 0..6 */
    uint64_t gave_up; /* undecided at 16384 bits, taken as U >= exp(-γ) */
    uint64_t big;     /* γ > 64: e^-64 compared, the rest by the bitwise CKS Bernoulli */
    uint64_t sure;    /* ziggurat: proposals accepted without a comparison */
    uint64_t tail;    /* ziggurat: draws that went through the tail's coupling from the past */
    uint64_t shifts;  /* ziggurat: tail shifts taken (each adds M + 1) */
} dp_sample_stats;

/* dp_dgauss_sample with every comparison sent to the slow path when force_slow is set, and the
 * count of decisions added to *st (may be NULL). */
int dp_dgauss_sample_hook(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n,
                          int force_slow, dp_sample_stats *st);

/* [U < exp(-n/d)], 0 <= n/d <= 64, for the U whose leading 64·nw bits are w[0..nw) (most
 * significant first; nw <= DP_MP_LIMBS_MAX), further bits from rng; as the sampler decides it. */
int dp_lt_exp_hook(dp_rng *rng, const uint64_t *w, unsigned nw, dp_u128 n, dp_u128 d,
                   dp_sample_stats *st);

/* The acceptance squeeze for γ = gd (exact here) and U's first 32 bits: 1 (U < exp(-γ)), 0,
 * or -1 (undecided). */
int dp_squeeze_hook(double gd, uint32_t top);

/* The discrete Laplace magnitude floor(-t ln U) for U's first 32 bits top: fast = 1, the fast
 * path only (1 and *mag if it decides, else 0); fast = 0, the exact search (further bits of U
 * from rng; 0 only at the 2^31 cut). */
int dp_geom_hook(dp_rng *rng, uint64_t t, uint32_t top, int fast, uint64_t *mag);

/* The ziggurat form (dp_zig.c, docs/privacy.md "The ziggurat"): tables for one σ² = num/den,
 * public (they depend on σ² only) and read-only once built. */
#define DP_ZIG_QMAX    7   /* at most 2^7 strips */
#define DP_ZIG_BUCKETS 256 /* alias buckets, chosen by 8 bits */

/* Bucket b holds K cells: v < tau are cells 0..tau-1 of strip own[b] (m = v), the others cells
 * v + delta of strip alias[b]; the cell lies under the curve (sure) iff v < so, or tau <= v < sa.
 */
typedef struct {
    uint32_t tau, so, sa;
    int32_t delta;
} dp_zig_bucket;

typedef struct {
    uint64_t num, den;
    unsigned q;          /* 2^q strips of height 2^-q */
    uint64_t M;          /* the strips cover magnitudes 0..M; beyond, the tail */
    uint32_t K;          /* cells per bucket */
    uint32_t lem_thr[2]; /* (2^24 - K) mod K, (2^32 - K) mod K: Lemire's rejection thresholds */
    uint32_t a_thr15;    /* 15 bits of U at or above this: U >= exp(-γ0) */
    dp_u128 n0, d0;      /* γ0 = n0/d0 = (M + 1)² / (2σ²), the tail's coupling threshold */
    double est0;         /* exp(-γ0) in double (dp_fexp) */
    uint32_t width[1u << DP_ZIG_QMAX];      /* strip i (0-based) covers magnitudes 0..width-1 */
    uint32_t sure[(1u << DP_ZIG_QMAX) + 1]; /* magnitudes below sure[i] lie under the curve */
    uint32_t pre[(1u << DP_ZIG_QMAX) + 1];  /* strip i's bottom height y_i in 32-bit fixed point */
    dp_zig_bucket bk[DP_ZIG_BUCKETS];
    uint16_t own[DP_ZIG_BUCKETS], alias[DP_ZIG_BUCKETS]; /* strips (2^q: the reject item) */
    uint64_t pad;                                        /* cells of the reject item (item 2^q) */
    int undecided; /* a strip boundary was not decided at 16384 bits (see dp_zig_build) */
} dp_zig;

/* Builds the tables for σ² = num/den (valid as for dp_dgauss_sample): q strips exponent
 * (0 = the default 7, else 1..DP_ZIG_QMAX) and the centre's end M (0 = the default, about
 * 4.1σ; tests pass small values so the tail runs often). */
void dp_zig_build(dp_zig *z, uint64_t num, uint64_t den, unsigned q, uint64_t M);

/* n draws of N_Z(0, σ²) from z's tables; force_slow sends every comparison to the exact path;
 * decisions counted into *st (may be NULL). */
void dp_zig_sample(const dp_zig *z, dp_rng *rng, int64_t *out, size_t n, int force_slow,
                   dp_sample_stats *st);

/* The ziggurat's cell for bucket b8 and Lemire input x of 24 bits (wide = 0) or 32 (wide = 1):
 * 0 if Lemire rejects x, else 1 with its magnitude and under-the-curve flag. */
int dp_zig_cell_hook(const dp_zig *z, uint32_t b8, uint32_t x, int wide, uint32_t *m,
                     uint32_t *sure);

/* out[i] += the i-th draw of dp_dgauss_fill(seed, stream, num, den, ., n, threads), without an
 * n-value buffer (one block's per thread, wiped). MU_OK, MU_ERR_INVALID as dp_dgauss_fill, or
 * MU_ERR_NOMEM with out unchanged. */
int dp_dgauss_fill_add(const uint8_t seed[DP_SEED_BYTES], uint64_t stream, uint64_t num,
                       uint64_t den, int64_t *out, size_t n, int threads);

/* dp_dgauss_fill with the ziggurat (cks = 0) or the CKS fast form (cks = 1). */
int dp_dgauss_fill_by(const uint8_t seed[DP_SEED_BYTES], uint64_t stream, uint64_t num,
                      uint64_t den, int64_t *out, size_t n, int threads, int cks);

/* The stream and the comparisons of dp_sample.c, for dp_zig.c. dp_rng_words: n 32-bit words
 * in place in the buffer (valid until the next draw that refills it). dp_cmp_exp: [U < exp(-n/d)]
 * for 0 <= n/d <= 64, U's first 32 bits top and the rest drawn from rng, est dp_fexp(n/d).
 * dp_bern_exp: Bernoulli(exp(-n/d)) for any n/d >= 0 by the bitwise CKS algorithm. */
uint32_t dp_rng_u32(dp_rng *rng);
const uint8_t *dp_rng_words(dp_rng *rng, size_t n);
int dp_cmp_exp(dp_rng *rng, uint32_t top, double est, dp_u128 n, dp_u128 d, int force_slow,
               dp_sample_stats *st);
int dp_bern_exp(dp_rng *rng, dp_u128 n, dp_u128 d);

#endif
