/* The summary over seeds (sim_seeds_write): a run's final training and evaluation loss are
 * its last completed rounds' (aborted rounds skipped), bytes are summed over every round;
 * mean, sample standard deviation (n - 1), min and max over the finite values, null where
 * nothing can be said (no value, or std of one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "co_types.h"
#include "sim.h"

static co_metrics round_of(uint8_t kind, uint8_t outcome, double loss, uint64_t in, uint64_t out)
{
    co_metrics m = {0};
    m.kind = kind;
    m.outcome = outcome;
    m.loss = loss;
    m.bytes_in = in;
    m.bytes_out = out;
    return m;
}

static void test_run_of(void **state)
{
    (void)state;
    co_metrics h[4] = {round_of(CO_ROUND_TRAIN, CO_ROUND_COMPLETED, 3.0, 10, 100),
                       round_of(CO_ROUND_EVAL, CO_ROUND_COMPLETED, 2.5, 1, 50),
                       round_of(CO_ROUND_TRAIN, CO_ROUND_COMPLETED, 2.0, 10, 100),
                       round_of(CO_ROUND_TRAIN, CO_ROUND_ABORTED, 9.0, 5, 7)};
    sim_result res = {
        .history = h, .n_history = 4, .wall_s = 1.5, .virtual_s = 60, .completed = 3, .aborted = 1};
    sim_seed_run r;
    sim_seed_run_of(&res, 7, &r);
    assert_int_equal(r.seed, 7);
    assert_true(r.final_train_loss == 2.0); /* the aborted round's 9.0 is not a result */
    assert_true(r.final_eval_loss == 2.5);
    assert_int_equal(r.bytes_in, 26);
    assert_int_equal(r.bytes_out, 257);
    assert_true(r.wall_s == 1.5 && r.virtual_s == 60);
    assert_int_equal(r.completed, 3);
    assert_int_equal(r.aborted, 1);
    res.n_history = 1; /* no evaluation round: null, not 0 */
    sim_seed_run_of(&res, 7, &r);
    assert_true(isnan(r.final_eval_loss));
}

static char *write_json(const sim_seed_run *runs, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(sim_seeds_write(f, runs, n), MU_OK);
    long len = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)len + 1);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return s;
}

static void test_summary(void **state)
{
    (void)state;
    sim_seed_run runs[3] = {
        {.seed = 1, .final_train_loss = 1, .final_eval_loss = NAN, .bytes_in = 10, .bytes_out = 1},
        {.seed = 2, .final_train_loss = 2, .final_eval_loss = 5, .bytes_in = 20, .bytes_out = 2},
        {.seed = 3, .final_train_loss = 4, .final_eval_loss = NAN, .bytes_in = 30, .bytes_out = 3}};
    char *s = write_json(runs, 3);
    assert_non_null(strstr(s, "{\"seeds\":[1,2,3],\"summary\":{"));
    /* mean 7/3, std sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2) / 2) = sqrt(7/3) */
    assert_non_null(strstr(s, "\"final_train_loss\":{\"n\":3,\"mean\":2.33333333,"
                              "\"std\":1.52752523,\"min\":1,\"max\":4}"));
    /* one finite value: a mean, no spread */
    assert_non_null(
        strstr(s, "\"final_eval_loss\":{\"n\":1,\"mean\":5,\"std\":null,\"min\":5,\"max\":5}"));
    assert_non_null(strstr(s, "\"bytes\":{\"n\":3,\"mean\":22,\"std\":11,\"min\":11,\"max\":33}"));
    assert_non_null(strstr(s, "\"runs\":[{\"seed\":1,\"final_train_loss\":1,"
                              "\"final_eval_loss\":null,\"bytes_in\":10,\"bytes_out\":1,"
                              "\"bytes\":11,"));
    assert_int_equal(s[strlen(s) - 1], '\n');
    free(s);
    sim_seed_run none = {.seed = 9, .final_train_loss = NAN, .final_eval_loss = NAN};
    s = write_json(&none, 1);
    assert_non_null(strstr(
        s, "\"final_train_loss\":{\"n\":0,\"mean\":null,\"std\":null,\"min\":null,\"max\":null}"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_run_of),
                                       cmocka_unit_test(test_summary)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
