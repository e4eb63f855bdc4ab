/* dp.h - the privacy accountant: Rényi DP (RDP) of the Gaussian, Poisson-subsampled Gaussian
 * and discrete Gaussian mechanisms, composed over steps and converted to (ε, δ).
 *
 * Conventions (those of TensorFlow Privacy and Opacus): `noise` is the noise multiplier z,
 * the standard deviation of the noise divided by the L2 sensitivity; `rate` is the Poisson
 * sampling probability q of the protected unit in one step; RDP values are in nats. A
 * mechanism run `steps` times composes by adding its RDP at every order (Mironov 2017,
 * Prop. 1). All arithmetic is in log space (logsumexp), so orders up to DP_ORDER_MAX do not
 * overflow.
 *
 * Pure functions of their arguments: no allocation, no I/O, thread-safe.
 */
#ifndef DP_H
#define DP_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"

#define DP_ORDER_MAX  1024.0 /* largest Rényi order accepted */
#define DP_ORDERS_STD 151    /* size of the standard grid (dp_orders_std) */

typedef enum {
    DP_MECH_GAUSSIAN = 0,      /* Gaussian noise, Poisson-subsampled when rate < 1 */
    DP_MECH_DISCRETE_GAUSSIAN, /* discrete Gaussian on integers (no subsampling bound) */
    DP_MECH_SKELLAM,           /* Skellam on integers (no subsampling bound) */
} dp_mech;

typedef enum {
    /* ε = min_α rdp(α) + log1p(-1/α) - (log δ + log α)/(α - 1): Balle et al. 2020 Thm 21,
     * Canonne-Kamath-Steinke 2020 Prop. 12; Opacus's get_privacy_spent and TensorFlow
     * Privacy's since 2020. The default. */
    DP_CONV_TIGHT = 0,
    /* ε = min_α rdp(α) + log(1/δ)/(α - 1): Mironov 2017 Prop. 3, what TensorFlow Privacy
     * (2018-2019) and Opacus before 1.0 printed. Kept to check their published numbers. */
    DP_CONV_CLASSIC,
} dp_conv;

/* Fills `orders` (room for `cap`) with the standard grid of TensorFlow Privacy and Opacus:
 * 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63 (DP_ORDERS_STD orders). Returns the number
 * written, 0 if cap < DP_ORDERS_STD. */
size_t dp_orders_std(double *orders, size_t cap);

/* RDP at `order` of one step of the Gaussian mechanism with noise multiplier `noise` applied
 * to a Poisson sample of rate `rate` (Mironov, Talwar, Zhang 2019, "Rényi Differential
 * Privacy of the Sampled Gaussian Mechanism", Sec. 3.3: the integer-order sum and the
 * fractional-order series). rate = 1 is the plain Gaussian, order/(2 z^2); rate = 0 is 0.
 * MU_OK, or MU_ERR_INVALID (noise <= 0 or not finite, rate outside [0, 1], order outside
 * (1, DP_ORDER_MAX]) or MU_ERR_UNSUPPORTED (the fractional series did not converge). */
int dp_rdp_sampled_gaussian(double rate, double noise, double order, double *rdp);

/* RDP at `order` of the discrete Gaussian N_Z(0, σ²) per coordinate, with σ = noise x the L2
 * sensitivity of an integer-valued query: order/(2 z^2), exactly as the continuous Gaussian
 * (Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential Privacy", Prop. 5
 * and Thm 15 for vectors). No amplification by subsampling is claimed for it. MU_OK or
 * MU_ERR_INVALID (as above). */
int dp_rdp_discrete_gaussian(double noise, double order, double *rdp);

/* RDP at `order` of the Skellam mechanism: independent Sk(μ, μ) noise (the difference of two
 * Poisson(μ) variables, variance 2μ) on each coordinate of an integer vector whose change
 * between neighbours has L1 norm at most `l1` and L2 norm at most `l2` (Agarwal, Kairouz,
 * Liu 2021, "The Skellam Mechanism for Differentially Private Federated Learning", the
 * multi-dimensional RDP bound):
 *   α l2²/(4μ) + min(((2α - 1) l2² + 6 l1)/(16 μ²), 3 l1/(4μ)).
 * As μ grows it tends to the Gaussian's α l2²/(2σ²) with σ² = 2μ. No amplification by
 * subsampling is claimed. MU_OK or MU_ERR_INVALID (mu, l2 not positive and finite, l1 < 0,
 * order as above). */
int dp_rdp_skellam(double mu, double l1, double l2, double order, double *rdp);

/* ε at `delta` from RDP values rdp[i] at orders[i] (i < n), minimised over the orders with
 * conversion `conv`. *eps (clamped at 0) and *order (may be NULL: the minimising order).
 * Orders with an infinite or NaN RDP are skipped. MU_OK, or MU_ERR_INVALID (delta outside
 * (0, 1), n = 0, an order <= 1, a negative RDP, no order giving a finite ε). */
int dp_eps_from_rdp(const double *orders, const double *rdp, size_t n, double delta, dp_conv conv,
                    double *eps, double *order);

/* A training or federation plan: `steps` runs of mechanism `mech` with noise multiplier
 * `noise` on Poisson samples of rate `rate`, released at `delta`. For Skellam, the noise
 * standard deviation is noise x l2, so μ = (noise l2)²/2; `l2` is the L2 sensitivity (0:
 * 1) and `l1` the L1 sensitivity (0: l2², which bounds it for any integer vector). The other
 * mechanisms ignore l1 and l2. */
typedef struct {
    dp_mech mech;
    double noise;
    double rate;
    uint64_t steps;
    double delta;
    dp_conv conv;
    double l1, l2;
} dp_plan;

/* ε of `plan` over the standard grid of orders (dp_orders_std); *order (may be NULL) gets the
 * minimising order. MU_OK, MU_ERR_INVALID (a field out of range: noise <= 0, rate outside
 * [0, 1], steps = 0, delta outside (0, 1); 0 < rate < 1 with the discrete Gaussian or
 * Skellam; negative or non-finite l1, l2) or
 * MU_ERR_UNSUPPORTED. With rate = 0, ε is 0; however large the noise, ε stays above
 * the grid's floor (about 0.1 at δ = 1e-5: the largest order is 63). */
int dp_plan_epsilon(const dp_plan *plan, double *eps, double *order);

/* The smallest noise multiplier (within a relative 1e-4) for which `plan` with that noise
 * has ε <= target (plan->noise is ignored), by bisection over [1e-2, 1e4]. MU_OK,
 * MU_ERR_INVALID (plan fields as above, target <= 0) or MU_ERR_UNSUPPORTED (even noise 1e4
 * does not reach target). */
int dp_plan_noise_for(const dp_plan *plan, double target, double *noise);

/* A static name for a mechanism ("gaussian", "discrete-gaussian", "skellam"), and the inverse:
 * MU_OK or MU_ERR_INVALID. */
const char *dp_mech_name(dp_mech mech);
int dp_mech_parse(const char *name, dp_mech *mech);

#endif
