/* dp_exact.h - the two evaluations of exp(-γ) behind the fast exact sampler (internal to
 * mu_privacy and its tests).
 *
 * dp_fexp is the fast path: a double with a bounded relative error, used only to decide
 * [U < exp(-γ)] when U is clear of the error band. dp_mp_exp is the slow path: exp(-n/d) for
 * a rational n/d in fixed point of 64·L bits with an error bound in units of the last place,
 * which the sampler refines (doubling L) until the comparison is decided. docs/privacy.md
 * ("Why the fast sampler is exact") gives both error arguments. */
#ifndef DP_EXACT_H
#define DP_EXACT_H

#include <stdint.h>

#define DP_FEXP_MAX     64.0 /* dp_fexp and dp_mp_exp take 0 <= γ <= 64 */
#define DP_MP_LIMBS_MIN 4    /* the slow path starts at 256 bits */
#define DP_MP_LIMBS_MAX 256  /* and gives up at 16384 bits (see dp_sample.h) */

typedef unsigned __int128 dp_u128;

/* exp(-x) for 0 <= x < 65, relative error below 2^-49 (a table of e^-k and e^-(j/64), each
 * correctly rounded, times a degree-6 Taylor polynomial on [0, 1/64)). */
double dp_fexp(double x);

/* -ln(u / 2^32) for 1 <= u < 2^32, absolute error below 2^-46 (a table of ln(1 + i/128) and
 * 1/(1 + i/128), each correctly rounded, and a degree-7 series of ln(1 + z), z < 2^-7). */
double dp_fnlog32(uint32_t u);

/* 2^-e, 0 <= e <= 31. */
double dp_pow2neg(unsigned e);

/* out[0..L] = exp(-n/d) · 2^(64L) rounded down, out[L] the integer limb (little-endian limbs),
 * for 0 <= n/d <= 64, 1 <= d < 2^100, DP_MP_LIMBS_MIN <= L <= DP_MP_LIMBS_MAX. Returns E
 * with |out - exp(-n/d) · 2^(64L)| <= E. */
uint64_t dp_mp_exp(uint64_t *out, dp_u128 n, dp_u128 d, unsigned L);

/* -1, 0, 1 as a <, =, > b, both L+1 limbs. */
int dp_mp_cmp(const uint64_t *a, const uint64_t *b, unsigned L);

/* a += k (k small), L+1 limbs; a -= k, 0 if it would go below zero (a is then unchanged). */
void dp_mp_add_small(uint64_t *a, uint64_t k, unsigned L);
int dp_mp_sub_small(uint64_t *a, uint64_t k, unsigned L);

#endif
