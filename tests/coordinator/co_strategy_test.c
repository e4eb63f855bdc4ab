/* Strategies against values computed by hand, 2-3 server steps on 2-vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "co_strategy.h"
#include "mu_err.h"

static void expect_vec(const float *x, double a, double b)
{
    if (fabs(x[0] - a) > 1e-6 || fabs(x[1] - b) > 1e-6)
        fail_msg("got (%.9g, %.9g), want (%.9g, %.9g)", x[0], x[1], a, b);
}

static co_strategy *make(co_strategy_kind kind, double eta, double b1, double b2, double tau)
{
    co_strategy_params p;
    co_strategy_params_default(&p, kind);
    p.eta = eta;
    p.beta1 = b1;
    p.beta2 = b2;
    p.tau = tau;
    co_strategy *s = co_strategy_new(&p, 2);
    assert_non_null(s);
    return s;
}

static void step(co_strategy *s, float *x, double d0, double d1)
{
    float d[2] = {(float)d0, (float)d1};
    assert_int_equal(co_strategy_apply(s, x, d, 2), MU_OK);
}

static void test_fedavg(void **state)
{
    (void)state;
    co_strategy *s = make(CO_STRATEGY_FEDAVG, 0.5, 0, 0, 1);
    float x[2] = {1, 2};
    step(s, x, 0.5, -1); /* x += 0.5·Δ */
    expect_vec(x, 1.25, 1.5);
    step(s, x, -0.5, 2);
    expect_vec(x, 1.0, 2.5);
    assert_int_equal(co_strategy_n_state(s), 0);
    assert_null(co_strategy_m(s));
    assert_int_equal(co_strategy_step(s), 2);
    co_strategy_free(s);
}

static void test_fedavgm(void **state)
{
    (void)state;
    co_strategy_params p;
    co_strategy_params_default(&p, CO_STRATEGY_FEDAVGM);
    p.momentum = 0.5;
    co_strategy *s = co_strategy_new(&p, 2);
    float x[2] = {0, 0};
    step(s, x, 1, -2); /* m = (1,-2) */
    expect_vec(x, 1, -2);
    step(s, x, 1, 0); /* m = 0.5·(1,-2) + (1,0) = (1.5,-1) */
    expect_vec(x, 2.5, -3);
    step(s, x, 0, 1); /* m = (0.75, 0.5) */
    expect_vec(x, 3.25, -2.5);
    expect_vec(co_strategy_m(s), 0.75, 0.5);
    co_strategy_free(s);
}

static void test_fedadam(void **state)
{
    (void)state;
    co_strategy *s = make(CO_STRATEGY_FEDADAM, 1.0, 0.5, 0.75, 1.0);
    float x[2] = {0, 0};
    /* m = (1,-2), v = 0.25·(4,16) = (1,4): x = (1/(1+1), -2/(2+1)) */
    step(s, x, 2, -4);
    expect_vec(x, 0.5, -2.0 / 3);
    /* m = (0.5,-0.5), v = 0.75·(1,4) + 0.25·(0,1) = (0.75, 3.25) */
    step(s, x, 0, 1);
    expect_vec(x, 0.5 + 0.5 / (sqrt(0.75) + 1), -2.0 / 3 - 0.5 / (sqrt(3.25) + 1));
    expect_vec(co_strategy_m(s), 0.5, -0.5);
    expect_vec(co_strategy_v(s), 0.75, 3.25);
    /* m = (0.25+1, -0.25), v = 0.75·(0.75,3.25) + 0.25·(4,0) = (1.5625, 2.4375) */
    float before[2] = {x[0], x[1]};
    step(s, x, 2, 0);
    expect_vec(x, before[0] + 1.25 / (1.25 + 1), before[1] - 0.25 / (sqrt(2.4375) + 1));
    co_strategy_free(s);
}

static void test_fedadam_bias_correction(void **state)
{
    (void)state;
    co_strategy_params p;
    co_strategy_params_default(&p, CO_STRATEGY_FEDADAM);
    p.eta = 1.0;
    p.beta1 = 0.5;
    p.beta2 = 0.84;
    p.tau = 1.0;
    p.bias_correction = 1;
    co_strategy *s = co_strategy_new(&p, 2);
    float x[2] = {0, 0};
    /* η_1 = √(1-0.84)/(1-0.5) = 0.8; m = (1,-2); v = 0.16·(4,16) = (0.64, 2.56) */
    step(s, x, 2, -4);
    expect_vec(x, 0.8 * 1 / (0.8 + 1), 0.8 * -2 / (1.6 + 1));
    co_strategy_free(s);
}

static void test_fedyogi(void **state)
{
    (void)state;
    co_strategy *s = make(CO_STRATEGY_FEDYOGI, 1.0, 0.5, 0.75, 1.0);
    float x[2] = {0, 0};
    /* v = 0 - 0.25·Δ²·sign(0 - Δ²) = (1,4): same first step as Adam */
    step(s, x, 2, -4);
    expect_vec(x, 0.5, -2.0 / 3);
    /* Δ = (0,1): v0 = 1 - 0 = 1; v1 = 4 - 0.25·1·sign(3) = 3.75 (Adam would give 3.25) */
    step(s, x, 0, 1);
    expect_vec(co_strategy_v(s), 1.0, 3.75);
    expect_vec(x, 0.5 + 0.5 / 2, -2.0 / 3 - 0.5 / (sqrt(3.75) + 1));
    /* Δ = (0,4): v1 = 3.75 - 0.25·16·sign(3.75-16) = 7.75; m = (0.25, 1.75) */
    float before[2] = {x[0], x[1]};
    step(s, x, 0, 4);
    expect_vec(co_strategy_v(s), 1.0, 7.75);
    expect_vec(x, before[0] + 0.25 / 2, before[1] + 1.75 / (sqrt(7.75) + 1));
    co_strategy_free(s);
}

static void test_fedadagrad(void **state)
{
    (void)state;
    co_strategy *s = make(CO_STRATEGY_FEDADAGRAD, 1.0, 0.5, 0.99, 1.0);
    float x[2] = {0, 0};
    /* m = (1,-2), v = (4,16): x = (1/3, -2/5) */
    step(s, x, 2, -4);
    expect_vec(x, 1.0 / 3, -0.4);
    /* m = (0.5,-0.5), v = (4,17) */
    step(s, x, 0, 1);
    expect_vec(co_strategy_v(s), 4, 17);
    expect_vec(x, 1.0 / 3 + 0.5 / 3, -0.4 - 0.5 / (sqrt(17) + 1));
    co_strategy_free(s);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    co_strategy *s = make(CO_STRATEGY_FEDADAM, 1.0, 0.5, 0.75, 1.0);
    float x[2] = {1, 2};
    float bad[2] = {NAN, 0};
    assert_int_equal(co_strategy_apply(s, x, bad, 2), MU_ERR_INVALID);
    bad[0] = INFINITY;
    assert_int_equal(co_strategy_apply(s, x, bad, 2), MU_ERR_INVALID);
    assert_int_equal(co_strategy_apply(s, x, x, 3), MU_ERR_INVALID);
    expect_vec(x, 1, 2);
    assert_int_equal(co_strategy_step(s), 0);
    expect_vec(co_strategy_m(s), 0, 0);
    co_strategy_free(s);

    co_strategy_params p;
    co_strategy_params_default(&p, CO_STRATEGY_FEDYOGI);
    char msg[64];
    p.beta2 = 1.0;
    assert_int_equal(co_strategy_params_check(&p, msg, sizeof msg), MU_ERR_INVALID);
    assert_non_null(strstr(msg, "beta2"));
    assert_null(co_strategy_new(&p, 2));
    co_strategy_params_default(&p, CO_STRATEGY_FEDYOGI);
    p.tau = 0;
    assert_int_equal(co_strategy_params_check(&p, msg, sizeof msg), MU_ERR_INVALID);
}

static void test_state_roundtrip_and_names(void **state)
{
    (void)state;
    co_strategy *a = make(CO_STRATEGY_FEDYOGI, 1.0, 0.5, 0.75, 1.0);
    co_strategy *b = make(CO_STRATEGY_FEDYOGI, 1.0, 0.5, 0.75, 1.0);
    float xa[2] = {0, 0}, xb[2];
    step(a, xa, 2, -4);
    step(a, xa, 0, 1);
    memcpy(xb, xa, sizeof xa);
    assert_int_equal(
        co_strategy_set_state(b, co_strategy_step(a), co_strategy_m(a), co_strategy_v(a), 2),
        MU_OK);
    assert_int_equal(co_strategy_set_state(b, 1, co_strategy_m(a), NULL, 2), MU_ERR_INVALID);
    step(a, xa, 1, 3);
    step(b, xb, 1, 3);
    assert_memory_equal(xa, xb, sizeof xa);
    assert_int_equal(co_strategy_step(b), 3);
    co_strategy_free(a);
    co_strategy_free(b);

    co_strategy_kind k;
    for (int i = 0; i <= CO_STRATEGY_FEDADAGRAD; i++) {
        assert_int_equal(co_strategy_parse(co_strategy_name((co_strategy_kind)i), &k), MU_OK);
        assert_int_equal(k, i);
    }
    assert_int_equal(co_strategy_parse("fedsgd", &k), MU_ERR_INVALID);
    co_strategy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fedavg),
        cmocka_unit_test(test_fedavgm),
        cmocka_unit_test(test_fedadam),
        cmocka_unit_test(test_fedadam_bias_correction),
        cmocka_unit_test(test_fedyogi),
        cmocka_unit_test(test_fedadagrad),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_state_roundtrip_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
