/* test_accountant.c - the RDP accountant against numbers printed by TensorFlow Privacy and
 * Opacus (each with its source), plus edge cases and argument checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dp.h"

/* |got - want| <= rel * |want| */
static void assert_rel(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("got %.10g, want %.10g (relative tolerance %g)", got, want, rel);
}

static double plan_eps(double noise, double rate, uint64_t steps, double delta, dp_conv conv,
                       double *order)
{
    dp_plan p = {.mech = DP_MECH_GAUSSIAN,
                 .noise = noise,
                 .rate = rate,
                 .steps = steps,
                 .delta = delta,
                 .conv = conv};
    double eps;
    assert_int_equal(dp_plan_epsilon(&p, &eps, order), MU_OK);
    return eps;
}

/* TensorFlow Privacy, tutorials/README.md, "Select Parameters" table and "Expected Output":
 * MNIST, batch 256 of 60000 (q = 256/60000), 60000 // 256 = 234 steps per epoch (as
 * mnist_dpsgd_tutorial.py counts them), δ = 1e-5, orders 1.1..10.9 and 12..63, and the
 * conversion of its rdp_accountant at the time (ε = rdp + log(1/δ)/(α-1)). */
static void test_tf_privacy_tutorial(void **state)
{
    (void)state;
    double q = 256.0 / 60000;
    assert_rel(plan_eps(1.12, q, 60 * 234, 1e-5, DP_CONV_CLASSIC, NULL), 2.92, 0.01);
    assert_rel(plan_eps(0.6, q, 30 * 234, 1e-5, DP_CONV_CLASSIC, NULL), 9.74, 0.01);
    assert_rel(plan_eps(1.2, q, 10 * 234, 1e-5, DP_CONV_CLASSIC, NULL), 1.20, 0.01);
}

/* Opacus, examples/mnist_README.md (the pre-1.0 examples, classic conversion, same grid):
 * "Train Epoch: 1 ... (ε = 0.71, δ = 1e-05) for α = 18.0" for --sigma=1.3 -sr=0.004, one
 * epoch = 1/0.004 = 250 steps; and the "Sample parameter sets" (7.10, 1e-5), (3.01, 1e-5),
 * (1.19, 1e-5) for sigma 0.7/45 epochs, 1.1/60, 1.3/15, which match batch 256 of 60000
 * (234 steps per epoch, the script's earlier default), not the -sr=0.004 printed beside
 * them (that gives 6.86, 2.91, 1.16: see docs/privacy.md). */
static void test_opacus_mnist_readme(void **state)
{
    (void)state;
    double order;
    assert_rel(plan_eps(1.3, 0.004, 250, 1e-5, DP_CONV_CLASSIC, &order), 0.71, 0.01);
    assert_true(order == 18.0);
    double q = 256.0 / 60000;
    assert_rel(plan_eps(0.7, q, 45 * 234, 1e-5, DP_CONV_CLASSIC, NULL), 7.10, 0.01);
    assert_rel(plan_eps(1.1, q, 60 * 234, 1e-5, DP_CONV_CLASSIC, NULL), 3.01, 0.01);
    assert_rel(plan_eps(1.3, q, 15 * 234, 1e-5, DP_CONV_CLASSIC, NULL), 1.19, 0.01);
}

/* ε over the grid of TensorFlow Privacy's compute_dp_sgd_privacy_lib (1.25..4.5, 5..63, 128,
 * 256, 512) with the tight conversion. */
static double tfp_lib_eps(double q, double noise, double steps, double delta, double *order)
{
    double orders[80], rdp[80];
    size_t n = 0;
    static const double low[] = {1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5};
    for (size_t i = 0; i < sizeof low / sizeof low[0]; i++)
        orders[n++] = low[i];
    for (int a = 5; a < 64; a++)
        orders[n++] = a;
    orders[n++] = 128;
    orders[n++] = 256;
    orders[n++] = 512;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dp_rdp_sampled_gaussian(q, noise, orders[i], &rdp[i]), MU_OK);
        rdp[i] *= steps;
    }
    double eps;
    assert_int_equal(dp_eps_from_rdp(orders, rdp, n, delta, DP_CONV_TIGHT, &eps, order), MU_OK);
    return eps;
}

/* TensorFlow Privacy, tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py,
 * test_compute_dp_sgd_privacy (tight conversion): Test0 (60000 examples, batch 150,
 * noise 1.3, 15 epochs, δ 1e-5) -> ε 0.7242234026109595 at order 19; Test1 (100000, 100,
 * 1.0, 30, 1e-7) -> 1.4154988495444842 at order 13. */
static void test_tf_privacy_tight(void **state)
{
    (void)state;
    double order;
    assert_rel(tfp_lib_eps(150.0 / 60000, 1.3, 15 * 60000 / 150.0, 1e-5, &order),
               0.7242234026109595, 1e-6);
    assert_true(order == 19.0);
    assert_rel(tfp_lib_eps(100.0 / 100000, 1.0, 30 * 100000 / 100.0, 1e-7, &order),
               1.4154988495444842, 1e-6);
    assert_true(order == 13.0);
}

/* TensorFlow Privacy, rdp_accountant_test.py: compute_rdp(0.1, 2, 10, 5) = 0.07737 and
 * compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100]) (integer and fractional orders, and
 * an order large enough to need log space); the q = 0 and q = 1 cases. */
static void test_tf_privacy_rdp_values(void **state)
{
    (void)state;
    double r;
    assert_int_equal(dp_rdp_sampled_gaussian(0.1, 2, 5, &r), MU_OK);
    assert_true(fabs(10 * r - 0.07737) < 1e-5);
    static const double orders[] = {1.5, 2.5, 5, 50, 100};
    static const double want[] = {0.00065, 0.001085, 0.00218075, 0.023846, 167.416307};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(dp_rdp_sampled_gaussian(0.01, 2.5, orders[i], &r), MU_OK);
        if (!(fabs(50 * r - want[i]) < 1e-5 * (want[i] > 1 ? want[i] : 1)))
            fail_msg("order %g: rdp %.8g, want %.8g", orders[i], 50 * r, want[i]);
    }
    assert_int_equal(dp_rdp_sampled_gaussian(0, 10, 20, &r), MU_OK);
    assert_true(r == 0.0);
    assert_int_equal(dp_rdp_sampled_gaussian(1, 10, 20, &r), MU_OK);
    assert_true(fabs(r - 0.1) < 1e-15);
    assert_int_equal(dp_rdp_discrete_gaussian(10, 20, &r), MU_OK);
    assert_true(fabs(r - 0.1) < 1e-15);
}

/* rdp_accountant_test.py, test_get_privacy_spent_check_target_delta (tight conversion):
 * constant RDP 1.1 at orders 2..32 gives ε 1.32783806176 at order 32; and
 * test_check_composition (classic conversion, the value its comment keeps): RDP of
 * (q 1e-4, noise 0.4, 40000 steps) plus (q 0.1, noise 2, 100 steps) at δ 1e-5 -> 8.509656,
 * order 2.5: composition of two different mechanisms by adding RDP. */
static void test_tf_privacy_conversion(void **state)
{
    (void)state;
    double orders[31], rdp[31], eps, order;
    for (int i = 0; i < 31; i++) {
        orders[i] = 2 + i;
        rdp[i] = 1.1;
    }
    assert_int_equal(dp_eps_from_rdp(orders, rdp, 31, 1e-5, DP_CONV_TIGHT, &eps, &order), MU_OK);
    assert_rel(eps, 1.32783806176, 1e-9);
    assert_true(order == 32.0);

    static const double o2[] = {1.25, 1.5, 1.75, 2.,  2.5, 3.,  4.,  5.,  6.,  7.,  8.,
                                10.,  12., 14.,  16., 20., 24., 28., 32., 64., 256.};
    double r2[21];
    for (size_t i = 0; i < 21; i++) {
        double a, b;
        assert_int_equal(dp_rdp_sampled_gaussian(1e-4, 0.4, o2[i], &a), MU_OK);
        assert_int_equal(dp_rdp_sampled_gaussian(0.1, 2, o2[i], &b), MU_OK);
        r2[i] = 40000 * a + 100 * b;
    }
    assert_int_equal(dp_eps_from_rdp(o2, r2, 21, 1e-5, DP_CONV_CLASSIC, &eps, &order), MU_OK);
    assert_rel(eps, 8.509656, 1e-6);
    assert_true(order == 2.5);
    double tight;
    assert_int_equal(dp_eps_from_rdp(o2, r2, 21, 1e-5, DP_CONV_TIGHT, &tight, NULL), MU_OK);
    assert_true(tight <= eps); /* the tight conversion is never worse */
}

/* The inverse: the noise found for a target ε gives that ε, and a little less noise does
 * not reach it. */
static void test_noise_for_target(void **state)
{
    (void)state;
    dp_plan p = {.mech = DP_MECH_GAUSSIAN, .rate = 256.0 / 60000, .steps = 60 * 234, .delta = 1e-5};
    double z, eps;
    assert_int_equal(dp_plan_noise_for(&p, 3.0, &z), MU_OK);
    p.noise = z;
    assert_int_equal(dp_plan_epsilon(&p, &eps, NULL), MU_OK);
    assert_true(eps <= 3.0);
    p.noise = z * 0.999;
    assert_int_equal(dp_plan_epsilon(&p, &eps, NULL), MU_OK);
    assert_true(eps > 3.0);
    assert_int_equal(dp_plan_noise_for(&p, 1e-9, &z), MU_ERR_UNSUPPORTED);
}

static void test_invalid(void **state)
{
    (void)state;
    double r, e;
    assert_int_equal(dp_rdp_sampled_gaussian(0.5, 0, 2, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_sampled_gaussian(0.5, NAN, 2, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_sampled_gaussian(1.5, 1, 2, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_sampled_gaussian(-0.1, 1, 2, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_sampled_gaussian(0.5, 1, 1.0, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_sampled_gaussian(0.5, 1, 2000, &r), MU_ERR_INVALID);
    double o = 2, rd = 1;
    assert_int_equal(dp_eps_from_rdp(&o, &rd, 1, 0, DP_CONV_TIGHT, &e, NULL), MU_ERR_INVALID);
    assert_int_equal(dp_eps_from_rdp(&o, &rd, 1, 1, DP_CONV_TIGHT, &e, NULL), MU_ERR_INVALID);
    assert_int_equal(dp_eps_from_rdp(&o, &rd, 0, 1e-5, DP_CONV_TIGHT, &e, NULL), MU_ERR_INVALID);
    dp_plan p = {
        .mech = DP_MECH_DISCRETE_GAUSSIAN, .noise = 1, .rate = 0.01, .steps = 10, .delta = 1e-5};
    assert_int_equal(dp_plan_epsilon(&p, &e, NULL), MU_ERR_INVALID); /* no subsampling bound */
    p.rate = 1;
    assert_int_equal(dp_plan_epsilon(&p, &e, NULL), MU_OK);
    p.steps = 0;
    assert_int_equal(dp_plan_epsilon(&p, &e, NULL), MU_ERR_INVALID);
    dp_mech m;
    assert_int_equal(dp_mech_parse("discrete-gaussian", &m), MU_OK);
    assert_int_equal(m, DP_MECH_DISCRETE_GAUSSIAN);
    assert_int_equal(dp_mech_parse("laplace", &m), MU_ERR_INVALID);
    p.mech = DP_MECH_SKELLAM;
    p.steps = 10;
    p.rate = 0.5;
    assert_int_equal(dp_plan_epsilon(&p, &e, NULL), MU_ERR_INVALID);
    p.rate = 1;
    p.l1 = -1;
    assert_int_equal(dp_plan_epsilon(&p, &e, NULL), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_skellam(0, 1, 1, 2, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_skellam(1, 1, 0, 2, &r), MU_ERR_INVALID);
    assert_int_equal(dp_rdp_skellam(1, -1, 1, 2, &r), MU_ERR_INVALID);
}

/* Skellam (no published ε found to check against; a re-derivation, not a published number):
 * the bound at μ 8, l1 4, l2 2, α 3 by hand is 3·4/32 + min((5·4 + 24)/1024, 12/32)
 * = 0.375 + 0.04296875; at μ 1, l1 3 the other arm of the min is smaller; and for a large μ
 * the plan's ε approaches the Gaussian's with the same standard deviation (σ² = 2μ). */
static void test_skellam(void **state)
{
    (void)state;
    double r;
    assert_int_equal(dp_rdp_skellam(8, 4, 2, 3, &r), MU_OK);
    assert_rel(r, 0.375 + 44.0 / 1024, 1e-12);
    assert_int_equal(dp_rdp_skellam(1, 3, 2, 3, &r), MU_OK);
    assert_rel(r, 3.0 + 9.0 / 4, 1e-12); /* 3 l1/(4μ) = 2.25 < (5·4 + 18)/16 = 2.375 */
    dp_plan sk = {
        .mech = DP_MECH_SKELLAM, .noise = 3, .rate = 1, .steps = 50, .delta = 1e-5, .l2 = 1000};
    dp_plan g = sk;
    g.mech = DP_MECH_GAUSSIAN;
    double es, eg;
    assert_int_equal(dp_plan_epsilon(&sk, &es, NULL), MU_OK);
    assert_int_equal(dp_plan_epsilon(&g, &eg, NULL), MU_OK);
    assert_true(es > eg);
    assert_rel(es, eg, 1e-3);
    sk.l2 = 1; /* at l2 = 1 the discreteness costs more: μ = 4.5, l1 = 1 */
    assert_int_equal(dp_plan_epsilon(&sk, &es, NULL), MU_OK);
    assert_true(es > eg * 1.001);
}

/* Large orders and tiny noise stay finite (log space); rate 0 gives ε 0; a huge noise gives
 * the floor of the conversion on the standard grid (orders up to 63), about 0.1 at δ 1e-5. */
static void test_extremes(void **state)
{
    (void)state;
    double r;
    assert_int_equal(dp_rdp_sampled_gaussian(0.5, 0.1, 1000, &r), MU_OK);
    assert_true(isfinite(r) && r > 1000);
    assert_int_equal(dp_rdp_sampled_gaussian(0.5, 0.1, 999.5, &r), MU_OK);
    assert_true(isfinite(r) && r > 1000);
    assert_true(plan_eps(1, 0, 1000, 1e-5, DP_CONV_TIGHT, NULL) == 0.0);
    double order, eps = plan_eps(1e4, 0.01, 1000, 1e-5, DP_CONV_TIGHT, &order);
    assert_true(eps > 0 && eps < 0.11 && order == 63.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tf_privacy_tutorial),
        cmocka_unit_test(test_opacus_mnist_readme),
        cmocka_unit_test(test_tf_privacy_tight),
        cmocka_unit_test(test_tf_privacy_rdp_values),
        cmocka_unit_test(test_tf_privacy_conversion),
        cmocka_unit_test(test_noise_for_target),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_skellam),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
