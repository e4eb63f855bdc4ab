/* Task and report encodings: round trips, and untrusted bytes (every truncation, trailing
 * bytes, flipped bytes, bad counts) refused without a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "co_wire.h"

static uint32_t ids[3] = {2, 5, 9};
static uint8_t pks[3][CO_ORG_PK_BYTES];
static uint8_t sa[40];

static co_task sample(void)
{
    for (int i = 0; i < 3; i++)
        memset(pks[i], 0x10 + i, CO_ORG_PK_BYTES);
    for (int i = 0; i < 40; i++)
        sa[i] = (uint8_t)(i * 7);
    co_task t = {.kind = CO_TASK_SECAGG,
                 .org_id = 5,
                 .deadline = 123.5,
                 .cfg = {.round = 42,
                         .kind = CO_ROUND_TRAIN,
                         .weight = 1,
                         .seed = 0x0123456789abcdefull,
                         .steps = 20,
                         .batch = 8,
                         .seq = 128,
                         .lr = 1e-4,
                         .fedprox_mu = 0.01,
                         .dim = 1000,
                         .bits = 32,
                         .k = 2,
                         .t = 2,
                         .quant_n = 3,
                         .clip = 1.0,
                         .scale = 2048,
                         .weight_max = 1e4},
                 .stage = 2,
                 .n_cohort = 3,
                 .cohort_ids = ids,
                 .cohort_pks = pks,
                 .sa_msg = sa,
                 .sa_len = sizeof sa};
    return t;
}

static uint8_t *encode(const co_task *t, size_t *len)
{
    size_t cap = co_task_encoded_len(t);
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    assert_int_equal(co_task_encode(t, buf, cap, len), MU_OK);
    assert_int_equal(*len, cap);
    assert_int_equal(co_task_encode(t, buf, cap - 1, len), MU_ERR_INVALID);
    assert_int_equal(co_task_encode(t, buf, cap, len), MU_OK);
    return buf;
}

static void test_task_round_trip(void **state)
{
    (void)state;
    co_task t = sample(), u;
    size_t len;
    uint8_t *buf = encode(&t, &len);
    mu_diag d = {{0}};
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_OK);
    assert_int_equal(u.kind, t.kind);
    assert_int_equal(u.org_id, 5);
    assert_true(u.deadline == 123.5);
    const co_round_config *a = &u.cfg, *b = &t.cfg;
    assert_true(a->round == b->round && a->kind == b->kind && a->weight == b->weight &&
                a->seed == b->seed && a->steps == b->steps && a->batch == b->batch &&
                a->seq == b->seq && a->lr == b->lr && a->fedprox_mu == b->fedprox_mu &&
                a->dim == b->dim && a->bits == b->bits && a->k == b->k && a->t == b->t &&
                a->quant_n == b->quant_n && a->clip == b->clip && a->scale == b->scale &&
                a->weight_max == b->weight_max);
    assert_int_equal(u.stage, 2);
    assert_int_equal(u.n_cohort, 3);
    assert_memory_equal(u.cohort_ids, ids, sizeof ids);
    assert_memory_equal(u.cohort_pks, pks, sizeof pks);
    assert_int_equal(u.sa_len, sizeof sa);
    assert_memory_equal(u.sa_msg, sa, sizeof sa);
    co_task_deinit(&u);
    free(buf);

    co_task w = {.kind = CO_TASK_WAIT, .org_id = 1};
    buf = encode(&w, &len);
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_OK);
    assert_int_equal(u.kind, CO_TASK_WAIT);
    assert_null(u.cohort_ids);
    assert_null(u.sa_msg);
    co_task_deinit(&u);
    free(buf);
}

static void test_task_bad_bytes(void **state)
{
    (void)state;
    co_task t = sample(), u;
    size_t len;
    uint8_t *buf = encode(&t, &len);
    mu_diag d = {{0}};
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(co_task_decode(&u, buf, cut, &d), MU_ERR_FORMAT);
        assert_null(u.owned_);
    }
    buf[len] = 0;
    assert_int_equal(co_task_decode(&u, buf, len + 1, &d), MU_ERR_FORMAT);
    /* Every single flipped byte: refused, or decoded into something that owns its memory. */
    uint8_t *m = malloc(len);
    assert_non_null(m);
    int refused = 0;
    for (size_t pos = 0; pos < len; pos++) {
        memcpy(m, buf, len);
        m[pos] ^= 0xff;
        int rc = co_task_decode(&u, m, len, &d);
        if (rc == MU_OK)
            co_task_deinit(&u);
        else
            refused++;
    }
    assert_true(refused > 0);
    /* Cohort ids out of order. */
    uint32_t bad_ids[3] = {5, 2, 9};
    t.cohort_ids = bad_ids;
    free(buf);
    buf = encode(&t, &len);
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "ascending"));
    /* A huge cohort count with no bytes behind it. */
    co_task w = {.kind = CO_TASK_WAIT};
    free(buf);
    buf = encode(&w, &len);
    size_t count_at = len - 8; /* n_cohort (4) then sa_len (4) */
    buf[count_at + 3] = 0x7f;
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_ERR_FORMAT);
    free(m);
    free(buf);
}

static void test_report(void **state)
{
    (void)state;
    co_report r = {CO_REPORT_READY, 7, 123.25, 1000}, u;
    uint8_t b[CO_REPORT_BYTES];
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_OK);
    assert_int_equal(u.type, CO_REPORT_READY);
    assert_int_equal(u.round, 7);
    assert_true(u.loss_sum == 123.25 && u.tokens == 1000);
    assert_int_equal(co_report_decode(&u, b, sizeof b - 1), MU_ERR_FORMAT);
    r.loss_sum = NAN;
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    r.loss_sum = 1;
    r.tokens = -1;
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    r.tokens = 2e18;
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    r.tokens = INFINITY;
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    r.tokens = 1;
    co_report_encode(&r, b);
    b[2] = 2; /* version */
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    b[2] = 1;
    b[3] = 3; /* type */
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_round_trip),
        cmocka_unit_test(test_task_bad_bytes),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
