/* dp_account.c - composition over steps and the conversion from RDP to (ε, δ). */
#include <math.h>

#include "dp.h"

/* ε at one order, or +inf where the conversion does not apply. */
static double eps_at(double a, double r, double delta, dp_conv conv)
{
    if (conv == DP_CONV_CLASSIC)
        return r - log(delta) / (a - 1);
    /* δ >= sqrt(1 - e^{-r}) already holds through the KL bound (as TF Privacy does) */
    if (delta * delta + expm1(-r) >= 0)
        return 0.0;
    if (a <= 1.01) /* the bound is numerically unstable next to 1 */
        return INFINITY;
    return r + log1p(-1.0 / a) - (log(delta) + log(a)) / (a - 1);
}

int dp_eps_from_rdp(const double *orders, const double *rdp, size_t n, double delta, dp_conv conv,
                    double *eps, double *order)
{
    if (!(delta > 0 && delta < 1) || n == 0)
        return MU_ERR_INVALID;
    double best = INFINITY, best_a = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(orders[i] > 1) || rdp[i] < 0)
            return MU_ERR_INVALID;
        if (!isfinite(rdp[i]))
            continue;
        double e = eps_at(orders[i], rdp[i], delta, conv);
        if (e < best) {
            best = e;
            best_a = orders[i];
        }
    }
    if (!isfinite(best))
        return MU_ERR_INVALID;
    *eps = best > 0 ? best : 0.0;
    if (order)
        *order = best_a;
    return MU_OK;
}

static int plan_check(const dp_plan *p)
{
    if (!(p->rate >= 0 && p->rate <= 1) || p->steps == 0 || !(p->delta > 0 && p->delta < 1))
        return MU_ERR_INVALID;
    if (p->mech != DP_MECH_GAUSSIAN && p->rate < 1 && p->rate > 0)
        return MU_ERR_INVALID; /* no amplification by subsampling is claimed for them */
    if (p->mech != DP_MECH_GAUSSIAN && p->mech != DP_MECH_DISCRETE_GAUSSIAN &&
        p->mech != DP_MECH_SKELLAM)
        return MU_ERR_INVALID;
    if (!(isfinite(p->l1) && p->l1 >= 0) || !(isfinite(p->l2) && p->l2 >= 0))
        return MU_ERR_INVALID;
    if (p->conv != DP_CONV_TIGHT && p->conv != DP_CONV_CLASSIC)
        return MU_ERR_INVALID;
    return MU_OK;
}

int dp_plan_epsilon(const dp_plan *p, double *eps, double *order)
{
    int rc = plan_check(p);
    if (rc)
        return rc;
    if (!(isfinite(p->noise) && p->noise > 0))
        return MU_ERR_INVALID;
    double orders[DP_ORDERS_STD], rdp[DP_ORDERS_STD];
    size_t n = dp_orders_std(orders, DP_ORDERS_STD);
    double l2 = p->l2 > 0 ? p->l2 : 1.0, l1 = p->l1 > 0 ? p->l1 : l2 * l2;
    double mu = (p->noise * l2) * (p->noise * l2) / 2;
    for (size_t i = 0; i < n; i++) {
        double r = 0.0; /* rate 0: nobody's data is used */
        if (p->rate == 0.0)
            rc = MU_OK;
        else if (p->mech == DP_MECH_DISCRETE_GAUSSIAN)
            rc = dp_rdp_discrete_gaussian(p->noise, orders[i], &r);
        else if (p->mech == DP_MECH_SKELLAM)
            rc = dp_rdp_skellam(mu, l1, l2, orders[i], &r);
        else
            rc = dp_rdp_sampled_gaussian(p->rate, p->noise, orders[i], &r);
        if (rc)
            return rc;
        rdp[i] = r * (double)p->steps; /* composition: RDP adds up over steps */
    }
    return dp_eps_from_rdp(orders, rdp, n, p->delta, p->conv, eps, order);
}

int dp_plan_noise_for(const dp_plan *p, double target, double *noise)
{
    int rc = plan_check(p);
    if (rc)
        return rc;
    if (!(isfinite(target) && target > 0))
        return MU_ERR_INVALID;
    dp_plan t = *p;
    double lo = 1e-2, hi = 1e4, e;
    t.noise = hi;
    if ((rc = dp_plan_epsilon(&t, &e, NULL)))
        return rc;
    if (e > target)
        return MU_ERR_UNSUPPORTED;
    t.noise = lo;
    if ((rc = dp_plan_epsilon(&t, &e, NULL)))
        return rc;
    if (e <= target) {
        *noise = lo;
        return MU_OK;
    }
    while (hi - lo > 1e-4 * hi) { /* invariant: ε(lo) > target >= ε(hi) */
        t.noise = sqrt(lo * hi);
        if ((rc = dp_plan_epsilon(&t, &e, NULL)))
            return rc;
        if (e > target)
            lo = t.noise;
        else
            hi = t.noise;
    }
    *noise = hi;
    return MU_OK;
}
