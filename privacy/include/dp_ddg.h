/* dp_ddg.h - the distributed discrete Gaussian mechanism inside secure aggregation.
 *
 * Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for Federated
 * Learning with Secure Aggregation" (ICML), Algorithm 1. Each org, given its vector x (dim
 * values, ‖x‖₂ <= l2), computes
 *   1. x' = scale · R x, R a randomised Hadamard rotation whose signs come from a public seed
 *      (dp_ddg_rotate: dim need not be a power of two, see below), so the sum's coordinates are
 *      flat and wrap-around mod 2^bits is improbable;
 *   2. x̃ = an unbiased randomised rounding of x' to integers, drawn again until
 *      ‖x̃‖₂ <= Δ₂ (conditional rounding), with the paper's bound
 *        Δ₂² = min((c + √dim)², c² + dim/4 + √(2 log(1/β))·(c + √dim/2)),  c = l2 · scale,
 *      β = DP_DDG_BETA = e^(-1/2) (the paper's and TensorFlow Federated's choice: a draw is
 *      accepted with probability at least 1 - β);
 *   3. out = x̃ + y, y_j ~ N_Z(0, σ²) independently (the exact sampler of dp_sample.h), with
 *      σ² = (noise · Δ₂)² / min_survivors rounded up to a rational num/den: the sum of any
 *      min_survivors orgs' noise has variance >= (noise · Δ₂)².
 * The coordinator sums the outputs (mod 2^bits, then centred), and dp_ddg_decode undoes the
 * rotation and the scale.
 *
 * The rotation for dim not a power of two: P = the largest power of two <= dim; first
 * H·D₁ on values [0, P), then (when dim > P) H·D₂ on values [dim - P, dim), H the orthonormal
 * Walsh-Hadamard matrix of order P and D₁, D₂ diagonal random signs. Both steps are
 * orthogonal, so norms are kept, nothing is padded (the upload stays dim values), and every
 * coordinate of R·v is a Rademacher sum with coefficients of norm <= ‖v‖/√P <= ‖v‖·√(2/dim).
 *
 * Privacy (org level: neighbouring inputs add or remove one org's vector): the sum of k >=
 * min_survivors orgs' outputs is the paper's mechanism with n = k clients, so per round
 * (dp_ddg_rdp, the paper's Prop. 14 as TensorFlow Federated's accounting implements it)
 *   RDP(α) = min(α/2·a² + τ·dim, α/2·(a² + 2bτ + τ²·dim), α/2·(a + √dim·τ)²),
 *   a = Δ₂ / (√k σ), b = Δ₁ / (√k σ), Δ₁ = min(Δ₂², √dim·Δ₂), τ = 10 Σ_{j=1}^{k-1}
 *   exp(-2π²σ² j/(j+1)),
 * evaluated at k = min_survivors (more survivors only add noise). No amplification by
 * sampling is claimed: the coordinator chooses cohorts.
 *
 * Pure functions; dp_ddg_encode allocates scratch (dim doubles). The rng is
 * the org's secret stream: whoever knows its key can subtract the noise.
 */
#ifndef DP_DDG_H
#define DP_DDG_H

#include <stddef.h>
#include <stdint.h>

#include "dp_sample.h"
#include "mu_err.h"

#define DP_DDG_BETA       0.60653065971263342 /* e^(-1/2) */
#define DP_DDG_SEED_BYTES 32
#define DP_DDG_MAX_TRIES  1000 /* conditional rounding gives up after this many draws */

typedef struct {
    uint32_t dim;           /* values rotated and noised, >= 1 */
    double l2;              /* L2 bound of an org's vector before scaling, > 0 */
    double scale;           /* fixed-point multiplier (the paper's 1/γ), > 0 */
    double noise;           /* noise multiplier of the sum (σ_total / Δ₂); 0 = no noise */
    uint32_t min_survivors; /* the fewest orgs whose outputs a released sum holds, >= 1 */
    uint32_t colluders;     /* orgs that may collude with the coordinator: dp_ddg_rdp counts
                               the noise of min_survivors - colluders honest orgs (0: all) */
    uint8_t rot_seed[DP_DDG_SEED_BYTES]; /* public: the rotation's signs */
    int threads; /* OpenMP threads for the rotation, the rounding and the noise; 0 or 1: one.
                    The output does not depend on it */
} dp_ddg;

/* MU_OK, or MU_ERR_INVALID naming the field out of range (dim 0, l2 or scale not positive
 * and finite, noise negative or not finite, min_survivors 0, or a per-org σ² the sampler
 * cannot take: above DP_SIGMA2_NUM_MAX). */
int dp_ddg_check(const dp_ddg *p, mu_diag *diag);

/* Δ₂ in integer units (the L2 bound after conditional rounding, above). */
double dp_ddg_bound(const dp_ddg *p);

/* The per-org noise variance σ² = num/den: (noise·Δ₂)²/min_survivors rounded up, den the
 * largest power of two <= DP_SIGMA2_DEN_MAX keeping num <= DP_SIGMA2_NUM_MAX. MU_OK (num = 0
 * when noise is 0), or MU_ERR_INVALID when σ² is above DP_SIGMA2_NUM_MAX. */
int dp_ddg_sigma2(const dp_ddg *p, uint64_t *num, uint64_t *den);

/* An upper bound on the probability that some coordinate of the sum of n_inputs honest
 * outputs leaves [-2^(bits-1), 2^(bits-1)) and so wraps mod 2^bits:
 *   2·dim·exp(-(2^(bits-1) - n)² / (2V)),  V = (n·l2·scale)²/P + n·σ²
 * (each coordinate of the rotated sum is (n·l2·scale)²/P-subgaussian over the signs, the
 * rounding moves it by less than n, and N_Z(0, σ²) is σ²-subgaussian: Canonne, Kamath,
 * Steinke 2020, Cor. 9), clamped to 1. An org that does not follow the protocol can make any
 * sum wrap; this bounds the honest case. */
double dp_ddg_wrap(const dp_ddg *p, uint32_t n_inputs, uint32_t bits);

/* Per-round RDP at `order` (> 1) of the sum over min_survivors orgs (above), of which
 * `colluders` may be colluding with the coordinator: they know their own noise and subtract it,
 * so the sum seen is the mechanism over k = min_survivors - colluders honest orgs, each with the
 * σ² scaled for min_survivors (a, b and τ above at that k); INFINITY when no honest org is left
 * (colluders >= min_survivors). MU_OK, or MU_ERR_INVALID (order <= 1, noise 0, or a config
 * failing dp_ddg_check). */
int dp_ddg_rdp(const dp_ddg *p, double order, double *rdp);

/* v (dim) := R·v (inverse = 0) or Rᵀ·v (inverse = 1), in place. */
void dp_ddg_rotate(double *v, const dp_ddg *p, int inverse);

/* out (dim) := one org's output for x (dim floats): rotated, scaled, conditionally rounded,
 * noised, all randomness from rng: the rounding's try k from stream k of 32 bytes drawn from it
 * (blocks of 65536 values each from its own range of that stream, as dp_dgauss_fill), the noise
 * from dp_dgauss_fill keyed by 32 more; everything on p->threads threads, with the same output
 * for any thread count. A vector whose norm exceeds l2 (by float rounding of the
 * caller's clip) is scaled down to l2 first. MU_OK, MU_ERR_INVALID (dp_ddg_check, a NaN or
 * infinite value), MU_ERR_NOMEM, or MU_ERR_ABORT when DP_DDG_MAX_TRIES roundings all exceeded
 * Δ₂ (probability below β^1000). *tries (may be NULL) gets the roundings drawn. */
int dp_ddg_encode(int64_t *out, const float *x, const dp_ddg *p, dp_rng *rng, unsigned *tries,
                  mu_diag *diag);

/* dp_ddg_encode, and the ms of its three parts by the caller's clock now_s (seconds; the core
 * reads no clock) into ms: ms[0] the scaling and rotation, ms[1] the conditional rounding,
 * ms[2] the noise (for bench/privacy/ddg_bench). now_s or ms NULL: no timing. */
int dp_ddg_encode_timed(int64_t *out, const float *x, const dp_ddg *p, dp_rng *rng, unsigned *tries,
                        double (*now_s)(void), double ms[3], mu_diag *diag);

/* out (dim) := Rᵀ·sum / scale: a sum of outputs back in the units of x. MU_OK or
 * MU_ERR_INVALID (dp_ddg_check). */
int dp_ddg_decode(double *out, const int64_t *sum, const dp_ddg *p, mu_diag *diag);

#endif
