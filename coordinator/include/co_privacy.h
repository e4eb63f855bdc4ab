/* co_privacy.h - the federation's privacy accountant: what each released round costs, the ε
 * spent after k of them, and the budget check (docs/privacy.md, "Accounting and budget").
 *
 * Two guarantees, each at privacy.delta with the tight conversion over the standard orders:
 *   org level (privacy.ddg_noise > 0): every released sum is one run of the distributed
 *     discrete Gaussian over min_survivors orgs (dp_ddg_rdp), at the scale chosen for
 *     cohort.max_orgs (the smallest scale the federation uses, so the largest RDP), of which
 *     co_config_colluders(cfg) may collude with the coordinator and subtract their own noise:
 *     the ε reported and budgeted counts the noise of the min_survivors - colluders honest
 *     orgs only (infinite when none is left); co_privacy_epsilon_all_honest gives the ε if no
 *     org colludes, for comparison;
 *   record level (train.dp_clip > 0): an org's train.steps DP-SGD steps per round, each the
 *     Gaussian mechanism with noise dp_noise (dp_noise/2 for fixed-size batches, as `mutual
 *     train --dp`) WITHOUT amplification by sampling: the coordinator does not know an org's
 *     record count, so this bounds every org (an org computes its own, smaller, amplified ε
 *     with `mutual privacy --rate batch/records`).
 * No amplification by cohort sampling is claimed: the coordinator chooses the cohorts. A round
 * counts ("released") once its sum was unmasked, whether it was then applied or refused; every
 * org is assumed to be in every released round. Pure functions; no allocation.
 */
#ifndef CO_PRIVACY_H
#define CO_PRIVACY_H

#include <stddef.h>
#include <stdint.h>

#include "co_config.h"
#include "dp.h"

typedef struct {
    int org_on, record_on;
    size_t n;                      /* orders */
    double orders[DP_ORDERS_STD];  /* (n) */
    double org_rdp[DP_ORDERS_STD]; /* (n) one released round, org level, `colluders` colluding */
    double org_rdp_all[DP_ORDERS_STD]; /* (n) the same if no org colludes */
    uint32_t colluders;                /* co_config_colluders */
    double rec_rdp[DP_ORDERS_STD];     /* (n) one released round, record level; may be inf */
    double delta, budget;              /* privacy.delta, privacy.epsilon_budget (0 = none) */
} co_privacy;

/* *a := the accountant of cfg for a model of dim values whose noised rounds use `scale`
 * (ignored without ddg_noise). MU_OK or MU_ERR_INVALID (a config dp_ddg_check refuses). */
int co_privacy_init(co_privacy *a, const co_config *cfg, uint32_t dim, double scale, mu_diag *d);

/* ε after `rounds` released rounds: *org and *rec (NaN for a guarantee that is off; INFINITY
 * when its noise is 0 and rounds > 0; 0 for 0 rounds). */
void co_privacy_epsilon(const co_privacy *a, uint64_t rounds, double *org, double *rec);

/* The org-level ε after `rounds` released rounds if no org colludes (NaN when off). */
double co_privacy_epsilon_all_honest(const co_privacy *a, uint64_t rounds);

/* 1 when a budget is set and some tracked ε after `rounds` released rounds exceeds it, with
 * the reason (which ε, its value, the budget) in why; else 0. */
int co_privacy_over(const co_privacy *a, uint64_t rounds, char *why, size_t cap);

#endif
