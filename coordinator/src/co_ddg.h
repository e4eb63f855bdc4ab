/* co_ddg.h - the coordinator's side of the distributed discrete Gaussian (docs/privacy.md):
 * the round's scale, its wrap check, and the mean of a noised sum. Private to coordinator/. */
#ifndef CO_DDG_H
#define CO_DDG_H

#include "co_config.h"
#include "co_wire.h"
#include "sa.h"

/* privacy.min_survivors, or cohort.min_orgs when it is 0. */
uint32_t co_ddg_min(const co_config *cfg);

/* *q := the quantisation of a noised round of n orgs over dim values (cfg->ddg_noise > 0):
 * clip, w_max and bits from cfg; the scale is secure_agg.scale, or when that is 0 the largest
 * power of two >= 1 with which (a) the weight sum of n orgs cannot overflow, (b) the per-org
 * σ² fits the sampler and (c) dp_ddg_wrap(n inputs) <= CO_DDG_MAX_WRAP. dim 0 checks (a)
 * only (a config checked before the model is known). MU_OK, or MU_ERR_INVALID saying which
 * condition no scale meets and what to change. */
int co_ddg_quant(const co_config *cfg, uint32_t dim, uint32_t n, sa_quant *q, mu_diag *d);

/* mean (c->dim) := the weighted mean of a noised sum of n_inputs inputs: the first dim values
 * centred mod 2^bits, inverse-rotated and descaled (dp_ddg_decode), divided by the exact weight
 * sum. MU_OK; MU_ERR_INVALID (weight sum not positive); MU_ERR_NOMEM; MU_ERR_PROTOCOL when
 * the weight sum or the mean's norm is beyond what n_inputs honest inputs reach (co_bound.h;
 * here ‖Σ‖ <= n·Δ₂ + σ√n·(√dim + 10), the noise's norm bound failing with probability below
 * e^-50). */
int co_ddg_mean(float *mean, const uint32_t *sum, const co_round_config *c, uint32_t n_inputs,
                mu_diag *d);

#endif
