/* dp_rdp.c - RDP of the (Poisson-subsampled) Gaussian and of the discrete Gaussian, in log
 * space. The sampled Gaussian follows Mironov, Talwar, Zhang 2019, Sec. 3.3: A_α is the α-th
 * moment of the ratio of the mixture (1-q)N(0,σ²) + qN(1,σ²) to N(0,σ²), and the RDP is
 * log(A_α)/(α-1). */
#include <math.h>
#include <string.h>

#include "dp.h"

#define FRAC_MAX_TERMS 100000 /* cap on the fractional-order series */
#define FRAC_TAIL_LOG  -30.0  /* stop once both new terms are below e^-30 (as TF Privacy) */

/* log(e^a + e^b) without overflow. */
static double log_add(double a, double b)
{
    double hi = a > b ? a : b, lo = a > b ? b : a;
    if (hi == -INFINITY)
        return -INFINITY;
    return hi + log1p(exp(lo - hi));
}

/* log(e^a - e^b) for a >= b; -inf when they are equal. */
static double log_sub(double a, double b)
{
    if (b == -INFINITY)
        return a;
    if (a <= b)
        return -INFINITY;
    return a + log1p(-exp(b - a));
}

/* log(erfc(x)), also where erfc(x) underflows (x > ~26): the asymptotic series of
 * erfc(x) = e^{-x²}/(x√π) (1 - 1/(2x²) + 3/(4x⁴) - 15/(8x⁶) + ...). */
static double log_erfc(double x)
{
    if (x < 20.0)
        return log(erfc(x));
    double x2 = x * x;
    double s = 1.0 - 1.0 / (2 * x2) + 3.0 / (4 * x2 * x2) - 15.0 / (8 * x2 * x2 * x2);
    return -x2 - log(x) - 0.5 * log(M_PI) + log(s);
}

/* log A_α for integer α: Σ_{i=0}^{α} C(α,i) (1-q)^{α-i} q^i exp((i²-i)/(2σ²)). */
static double log_a_int(double q, double sigma, int alpha)
{
    double log_a = -INFINITY, log_binom = 0.0; /* log C(alpha, 0) */
    for (int i = 0; i <= alpha; i++) {
        double t = log_binom + i * log(q) + (alpha - i) * log1p(-q) +
                   ((double)i * i - i) / (2 * sigma * sigma);
        log_a = log_add(log_a, t);
        log_binom += log((double)(alpha - i)) - log((double)(i + 1));
    }
    return log_a;
}

/* log A_α for fractional α: the two series of MTZ 2019 Sec. 3.3 split at
 * z0 = σ² log(1/q - 1) + 1/2, generalised binomial coefficients of either sign. MU_OK or
 * MU_ERR_UNSUPPORTED if the series has not converged after FRAC_MAX_TERMS terms. */
static int log_a_frac(double q, double sigma, double alpha, double *out)
{
    double log_a0 = -INFINITY, log_a1 = -INFINITY;
    double z0 = sigma * sigma * log(1.0 / q - 1.0) + 0.5;
    double log_coef = 0.0; /* log |C(alpha, i)| */
    int sign = 1;
    for (int i = 0; i < FRAC_MAX_TERMS; i++) {
        double j = alpha - i;
        double log_t0 = log_coef + i * log(q) + j * log1p(-q);
        double log_t1 = log_coef + j * log(q) + i * log1p(-q);
        double log_e0 = log(0.5) + log_erfc((i - z0) / (M_SQRT2 * sigma));
        double log_e1 = log(0.5) + log_erfc((z0 - j) / (M_SQRT2 * sigma));
        double log_s0 = log_t0 + ((double)i * i - i) / (2 * sigma * sigma) + log_e0;
        double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
        if (sign > 0) {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0);
            log_a1 = log_sub(log_a1, log_s1);
        }
        if (fmax(log_s0, log_s1) < FRAC_TAIL_LOG) {
            *out = log_add(log_a0, log_a1);
            return MU_OK;
        }
        /* C(alpha, i+1) = C(alpha, i) (alpha - i)/(i + 1) */
        double f = (alpha - i) / (double)(i + 1);
        if (f == 0.0) {
            *out = log_add(log_a0, log_a1);
            return MU_OK;
        }
        if (f < 0)
            sign = -sign;
        log_coef += log(fabs(f));
    }
    return MU_ERR_UNSUPPORTED;
}

static int order_ok(double order)
{
    return isfinite(order) && order > 1.0 && order <= DP_ORDER_MAX;
}

int dp_rdp_sampled_gaussian(double rate, double noise, double order, double *rdp)
{
    if (!(isfinite(noise) && noise > 0) || !(rate >= 0 && rate <= 1) || !order_ok(order))
        return MU_ERR_INVALID;
    if (rate == 0.0) {
        *rdp = 0.0;
        return MU_OK;
    }
    if (rate == 1.0) {
        *rdp = order / (2 * noise * noise);
        return MU_OK;
    }
    double log_a;
    if (order == floor(order)) {
        log_a = log_a_int(rate, noise, (int)order);
    } else {
        int rc = log_a_frac(rate, noise, order, &log_a);
        if (rc)
            return rc;
    }
    *rdp = log_a / (order - 1);
    if (!(*rdp >= 0)) /* rounding can make a vanishing RDP slightly negative */
        *rdp = 0.0;
    return MU_OK;
}

int dp_rdp_discrete_gaussian(double noise, double order, double *rdp)
{
    if (!(isfinite(noise) && noise > 0) || !order_ok(order))
        return MU_ERR_INVALID;
    *rdp = order / (2 * noise * noise);
    return MU_OK;
}

int dp_rdp_skellam(double mu, double l1, double l2, double order, double *rdp)
{
    if (!(isfinite(mu) && mu > 0) || !(isfinite(l2) && l2 > 0) || !(isfinite(l1) && l1 >= 0) ||
        !order_ok(order))
        return MU_ERR_INVALID;
    double second = ((2 * order - 1) * l2 * l2 + 6 * l1) / (16 * mu * mu);
    double alt = 3 * l1 / (4 * mu);
    *rdp = order * l2 * l2 / (4 * mu) + (second < alt ? second : alt);
    return MU_OK;
}

size_t dp_orders_std(double *orders, size_t cap)
{
    if (cap < DP_ORDERS_STD)
        return 0;
    size_t n = 0;
    for (int x = 1; x < 100; x++)
        orders[n++] = 1 + x / 10.0;
    for (int a = 12; a < 64; a++)
        orders[n++] = a;
    return n;
}

const char *dp_mech_name(dp_mech mech)
{
    if (mech == DP_MECH_SKELLAM)
        return "skellam";
    return mech == DP_MECH_DISCRETE_GAUSSIAN ? "discrete-gaussian" : "gaussian";
}

int dp_mech_parse(const char *name, dp_mech *mech)
{
    if (!strcmp(name, "gaussian"))
        *mech = DP_MECH_GAUSSIAN;
    else if (!strcmp(name, "discrete-gaussian"))
        *mech = DP_MECH_DISCRETE_GAUSSIAN;
    else if (!strcmp(name, "skellam"))
        *mech = DP_MECH_SKELLAM;
    else
        return MU_ERR_INVALID;
    return MU_OK;
}
