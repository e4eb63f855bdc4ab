/* co_privacy.c - the federation's privacy accountant (co_privacy.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "co_privacy.h"
#include "dp_ddg.h"

int co_privacy_init(co_privacy *a, const co_config *cfg, uint32_t dim, double scale, mu_diag *d)
{
    memset(a, 0, sizeof *a);
    a->n = dp_orders_std(a->orders, DP_ORDERS_STD);
    a->delta = cfg->delta;
    a->budget = cfg->epsilon_budget;
    a->org_on = cfg->ddg_noise > 0;
    a->record_on = cfg->dp_clip > 0;
    if (a->org_on) {
        uint32_t k = cfg->min_survivors ? cfg->min_survivors : cfg->min_orgs;
        dp_ddg p = {.dim = dim,
                    .l2 = cfg->weight_max * cfg->clip,
                    .scale = scale,
                    .noise = cfg->ddg_noise,
                    .min_survivors = k};
        int rc = dp_ddg_check(&p, d);
        for (size_t i = 0; rc == MU_OK && i < a->n; i++)
            rc = dp_ddg_rdp(&p, a->orders[i], &a->org_rdp_all[i]);
        a->colluders = p.colluders = co_config_colluders(cfg);
        for (size_t i = 0; rc == MU_OK && i < a->n; i++)
            rc = dp_ddg_rdp(&p, a->orders[i], &a->org_rdp[i]);
        if (rc != MU_OK)
            return rc;
    }
    if (a->record_on) {
        double z = cfg->dp_sampling == 1 ? cfg->dp_noise / 2 : cfg->dp_noise;
        for (size_t i = 0; i < a->n; i++)
            a->rec_rdp[i] = z > 0 ? cfg->steps * a->orders[i] / (2 * z * z) : INFINITY;
    }
    return MU_OK;
}

static double eps_of(const co_privacy *a, const double *per, uint64_t rounds)
{
    if (rounds == 0)
        return 0;
    double rdp[DP_ORDERS_STD], eps;
    for (size_t i = 0; i < a->n; i++)
        rdp[i] = per[i] * (double)rounds;
    if (dp_eps_from_rdp(a->orders, rdp, a->n, a->delta, DP_CONV_TIGHT, &eps, NULL) != MU_OK)
        return INFINITY; /* no order gives a finite ε: noise 0 */
    return eps;
}

void co_privacy_epsilon(const co_privacy *a, uint64_t rounds, double *org, double *rec)
{
    *org = a->org_on ? eps_of(a, a->org_rdp, rounds) : NAN;
    *rec = a->record_on ? eps_of(a, a->rec_rdp, rounds) : NAN;
}

double co_privacy_epsilon_all_honest(const co_privacy *a, uint64_t rounds)
{
    return a->org_on ? eps_of(a, a->org_rdp_all, rounds) : NAN;
}

int co_privacy_over(const co_privacy *a, uint64_t rounds, char *why, size_t cap)
{
    if (!(a->budget > 0))
        return 0;
    double org, rec;
    co_privacy_epsilon(a, rounds, &org, &rec);
    const char *which = !isnan(org) && org > a->budget   ? "org-level"
                        : !isnan(rec) && rec > a->budget ? "record-level"
                                                         : NULL;
    if (!which)
        return 0;
    snprintf(why, cap,
             "privacy budget: %llu released rounds would give %s epsilon %.4g at delta %g, above "
             "privacy.epsilon_budget %g",
             (unsigned long long)rounds, which, which[0] == 'o' ? org : rec, a->delta, a->budget);
    return 1;
}
