/* co_bound.h - what the coordinator checks in an aggregate before it applies it (issue 10,
 * attack 6: unbounded contribution).
 *
 * Secure aggregation hides each input, so the coordinator cannot check one org's input; but
 * every honest input is sa_quant_encode(w·clip(Δ), w) with w <= w_max, so the sum of n of them
 * is bounded, and an aggregate outside those bounds means some input was not honest (an org
 * can put any value below 2^bits into its masked input: up to ~10^5 times the clip bound per
 * coordinate, or a shifted weight). With W the decoded weight sum (the last coordinate):
 *
 *   0 < W <= n·ceil(w_max·scale)                       (each SR(w·scale) <= ceil(w_max·scale))
 *   ‖mean‖ <= ((W + n)·clip + n·sqrt(dim)) / W         (each ‖q_i‖ <= w_i·scale·clip +
 *                                                       sqrt(dim) rounding, and Σ w_i·scale
 *                                                       <= W + n), plus float slack
 *
 * This catches gross abuse only: an input within the bounds can still bias the mean. Per-input
 * range proofs (docs/secure_agg.md) are the real fix.
 */
#ifndef CO_BOUND_H
#define CO_BOUND_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"
#include "sa.h"

/* `sum` (dim + 1 values mod 2^q->bits) is the sum of n_inputs quantised inputs and `mean`
 * (dim) its sa_quant_mean. MU_OK, or MU_ERR_PROTOCOL with the bound that failed and the
 * numbers in diag. */
int co_aggregate_check(const float *mean, size_t dim, const uint32_t *sum, const sa_quant *q,
                       size_t n_inputs, mu_diag *diag);

#endif
