/* The coordinator config: the example file, defaults, and bad values with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void test_listen_port(void **state)
{
    (void)state;
    expect_error("server:\n  listen: 127.0.0.1:99999\n",
                 "bad.yaml:2:11: server.listen '127.0.0.1:99999' has a port above 65535");
    expect_error("server:\n  listen: 127.0.0.1\n",
                 "bad.yaml:2:11: server.listen '127.0.0.1' has no port");
    expect_error("server:\n  listen: 127.0.0.1:0\n",
                 "bad.yaml:2:11: server.listen '127.0.0.1:0' has port 0");
    expect_error("server:\n  listen: \"host:x\"\n",
                 "bad.yaml:2:11: server.listen 'host:x' has a port that is not a number");
    co_config c;
    mu_diag d = {{0}};
    const char *t = "server:\n  listen: 127.0.0.1:65535\n";
    assert_int_equal(co_config_parse("ok.yaml", t, strlen(t), &c, &d), MU_OK);
    co_config_deinit(&c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 200,000 allowed orgs are checked in well under a second (the old pairwise check took a
 * minute), and a duplicate among them is still found. */
static void test_large_allowlist(void **state)
{
    (void)state;
    enum { N = 200000 };
    co_config c;
    co_config_default(&c);
    c.orgs = calloc(N, sizeof *c.orgs);
    assert_non_null(c.orgs);
    c.n_orgs = N;
    for (size_t i = 0; i < N; i++)
        snprintf(c.orgs[i].name, sizeof c.orgs[i].name, "org-%zu", (i * 7919) % N);
    mu_diag d = {{0}};
    double t0 = now_s();
    int rc = co_config_check(&c, &d);
    double dt = now_s() - t0;
    if (rc != MU_OK)
        fail_msg("%s", d.msg);
    if (dt > 5.0)
        fail_msg("checking %d orgs took %.1f s", N, dt);
    snprintf(c.orgs[N - 1].name, sizeof c.orgs[N - 1].name, "%s", c.orgs[12345].name);
    assert_int_equal(co_config_check(&c, &d), MU_ERR_INVALID);
    char want[128];
    snprintf(want, sizeof want, "orgs: '%s' is listed twice", c.orgs[12345].name);
    assert_string_equal(d.msg, want);
    co_config_deinit(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),    cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_listen_port),
        cmocka_unit_test(test_large_allowlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
