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

#endif
