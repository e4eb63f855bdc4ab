/* The coordinator config: the example file, defaults, and bad values with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "co_config.h"

static void test_example_file(void **state)
{
    (void)state;
    co_config c;
    mu_diag d = {{0}};
    int rc = co_config_load(CO_EXAMPLE_CONFIG, &c, &d);
    if (rc != MU_OK)
        fail_msg("%s", d.msg);
    assert_string_equal(c.name, "credit-union-pilot");
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.eval_every, 2);
    assert_int_equal(c.min_orgs, 3);
    assert_int_equal(c.strategy.kind, CO_STRATEGY_FEDADAM);
    assert_true(c.strategy.eta == 0.01);
    assert_true(c.fedprox_mu == 0.01);
    assert_int_equal(c.weight, CO_WEIGHT_EXAMPLES);
    assert_int_equal(c.n_orgs, 3);
    assert_string_equal(c.orgs[2].name, "health-coop");
    assert_int_equal(c.orgs[0].has_pk, 1);
    assert_int_equal(c.orgs[0].pk[0], 0x3d);
    assert_int_equal(c.orgs[0].pk[31], 0x0c);
    assert_int_equal(c.orgs[1].has_pk, 0);
    assert_string_equal(c.tls_ca, "certs/ca.pem");
    co_config_deinit(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    co_config c;
    mu_diag d = {{0}};
    assert_int_equal(co_config_parse("empty.yaml", "", 0, &c, &d), MU_OK);
    assert_int_equal(c.min_orgs, 2);
    assert_int_equal(c.bits, 32);
    assert_int_equal(c.strategy.kind, CO_STRATEGY_FEDAVG);
    assert_true(c.strategy.eta == 1.0);
    assert_null(c.orgs);
    co_config_deinit(&c);
    const char *t = "strategy:\n  name: fedyogi\n";
    assert_int_equal(co_config_parse("y.yaml", t, strlen(t), &c, &d), MU_OK);
    assert_true(c.strategy.eta == 0.01 && c.strategy.tau == 1e-3);
    co_config_deinit(&c);
}

static void expect_error(const char *text, const char *want)
{
    co_config c;
    mu_diag d = {{0}};
    assert_int_not_equal(co_config_parse("bad.yaml", text, strlen(text), &c, &d), MU_OK);
    if (!strstr(d.msg, want))
        fail_msg("error '%s' does not contain '%s'", d.msg, want);
    assert_null(c.orgs);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("cohort:\n  min_orgs: 1\n", "bad.yaml:2:");
    expect_error("cohort:\n  mni_orgs: 3\n", "unknown key 'mni_orgs'");
    expect_error("cohort:\n  min_orgs: 5\n  max_orgs: 3\n", "max_orgs");
    expect_error("strategy:\n  name: fedsgd\n", "bad.yaml:2:9: unknown strategy 'fedsgd'");
    expect_error("strategy:\n  beta2: 1.5\n", "bad.yaml:2:");
    expect_error("train:\n  weight: tokens\n", "train.weight");
    expect_error("secure_agg:\n  bits: 64\n", "bad.yaml:2:");
    expect_error("orgs:\n  - name: a\n    public_key: abcd\n", "bad.yaml:3:");
    expect_error("orgs:\n  - name: a\n  - name: a\n", "listed twice");
    expect_error("orgs:\n  - public_key: ab\n", "name");
    expect_error("deadlines:\n  masked_s: 0\n", "bad.yaml:2:");
    expect_error("- 1\n- 2\n", "mapping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
