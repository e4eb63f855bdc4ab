/* The org side of the host layer: every task kind and error class gets the verdict ho_org.h
 * promises; repeats and replays are not acted on (with growing backoff); a reconnect to the
 * same coordinator answers the last task identically; a new coordinator instance starts the
 * round over. A synthetic participant (no model) keeps it fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "ho_org.h"
#include "wi_stage.h"
#include "mu_log.h"

#define DIM 16

static ho_org *make_org(void)
{
    cl_participant_config pc = {
        .name = "org-a", .synthetic = 1, .synthetic_amp = 0.1, .deterministic = 1};
    uint8_t pk[32];
    crypto_sign_keypair(pk, pc.sign_sk);
    mu_diag d = {{0}};
    ho_org *o = ho_org_new(&pc, &d);
    if (!o)
        fail_msg("ho_org_new: %s", d.msg);
    ho_org_set_id(o, 7);
    static const uint8_t inst[HO_INSTANCE_BYTES] = {1};
    assert_int_equal(ho_org_coordinator(o, inst, &d), 0);
    return o;
}

static co_task task(co_task_kind kind, uint64_t round, uint8_t stage)
{
    co_task t = {.kind = kind, .org_id = 7, .stage = stage};
    t.cfg = (co_round_config){.round = round,
                              .dim = DIM,
                              .steps = 1,
                              .lr = 0.01,
                              .batch = 1,
                              .seq = 4,
                              .bits = 16,
                              .clip = 1,
                              .scale = 1,
                              .weight_max = 1,
                              .quant_n = 3};
    return t;
}

/* Encodes t and hands it to ho_org_take. */
static ho_verdict take(ho_org *o, const co_task *t, co_task *out, ho_reply *rep)
{
    uint8_t buf[4096];
    size_t len = 0;
    assert_int_equal(co_task_encode(t, buf, sizeof buf, &len), MU_OK);
    ho_verdict v = ho_org_take(o, buf, len, out, rep);
    if (v == HO_FATAL && t->org_id == 7)
        print_message("take: %s\n", rep->diag.msg);
    return v;
}

/* take + act on a task that must be acted on; returns the act verdict. */
static ho_verdict take_act(ho_org *o, const co_task *t, ho_reply *rep)
{
    static const float global[DIM];
    co_task got;
    assert_int_equal(take(o, t, &got, rep), HO_ACT);
    ho_verdict v = ho_org_act(o, NULL, &got, global, DIM, rep);
    co_task_deinit(&got);
    return v;
}

static void test_kinds_and_bad_bytes(void **state)
{
    (void)state;
    ho_org *o = make_org();
    ho_reply rep;
    ho_reply_init(&rep);
    co_task got, t = task(CO_TASK_WAIT, 0, 0);
    assert_int_equal(take(o, &t, &got, &rep), HO_WAIT);
    assert_int_equal(rep.repeat, 0);
    t = task(CO_TASK_DONE, 0, 0);
    assert_int_equal(take(o, &t, &got, &rep), HO_STOP);
    static const uint8_t junk[] = "not a task";
    assert_int_equal(ho_org_take(o, junk, sizeof junk, &got, &rep), HO_FATAL);
    assert_int_equal(rep.rc, MU_ERR_FORMAT);
    assert_non_null(strstr(rep.diag.msg, "cannot read"));
    t = task(CO_TASK_TRAIN, 1, 0);
    t.org_id = 8;
    assert_int_equal(take(o, &t, &got, &rep), HO_FATAL);
    assert_int_equal(rep.rc, MU_ERR_PROTOCOL);
    /* INVALID in a TRAIN task (the org's dim is not the task's) is fatal */
    t = task(CO_TASK_TRAIN, 1, 0);
    assert_int_equal(take(o, &t, &got, &rep), HO_ACT);
    static const float g[DIM];
    assert_int_equal(ho_org_act(o, NULL, &got, g, DIM - 1, &rep), HO_FATAL);
    assert_int_equal(rep.rc, MU_ERR_INVALID);
    co_task_deinit(&got);
    ho_reply_deinit(&rep);
    ho_org_free(o);
}

static void test_repeats_and_reconnect(void **state)
{
    (void)state;
    ho_org *o = make_org();
    ho_reply rep;
    ho_reply_init(&rep);
    co_task t = task(CO_TASK_TRAIN, 1, 0), got;
    assert_int_equal(take_act(o, &t, &rep), HO_PUSH);
    assert_int_equal(rep.out.count, 1);
    assert_int_equal(rep.stage, WI_STAGE_REPORT);
    assert_int_equal(rep.round, 1);
    uint8_t report[CO_REPORT_BYTES];
    assert_int_equal(rep.out.items[0].len, CO_REPORT_BYTES);
    memcpy(report, rep.out.items[0].bytes, CO_REPORT_BYTES);
    /* the same task again and again: not acted on, backoff doubling up to 1 s */
    double want[] = {0.1, 0.2, 0.4, 0.8, 1.0, 1.0};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(take(o, &t, &got, &rep), HO_WAIT);
        assert_int_equal(rep.repeat, 1);
        assert_true(rep.backoff_s > want[i] - 1e-9 && rep.backoff_s < want[i] + 1e-9);
    }
    /* reconnected to the same coordinator: the last task once more, answered identically */
    mu_diag d;
    static const uint8_t inst[HO_INSTANCE_BYTES] = {1};
    assert_int_equal(ho_org_coordinator(o, inst, &d), 0);
    assert_int_equal(take_act(o, &t, &rep), HO_PUSH);
    assert_memory_equal(rep.out.items[0].bytes, report, CO_REPORT_BYTES);
    assert_int_equal(take(o, &t, &got, &rep), HO_WAIT);
    /* a stage before ADVERTISE is refused by the core (STATE): ignored, and it does not
     * count as taken, so the real ADVERTISE that follows is still acted on */
    co_task share = task(CO_TASK_SECAGG, 1, SA_STAGE_SHARE);
    assert_int_equal(take_act(o, &share, &rep), HO_WAIT);
    assert_int_equal(rep.rc, MU_ERR_STATE);
    assert_int_equal(rep.repeat, 0);
    /* an old task after a later one is a replay: not acted on */
    assert_int_equal(take(o, &t, &got, &rep), HO_WAIT);
    assert_int_equal(rep.repeat, 1);
    co_task adv = task(CO_TASK_SECAGG, 1, SA_STAGE_ADVERTISE);
    uint32_t ids[3] = {6, 8, 9};
    uint8_t pks[3][CO_ORG_PK_BYTES] = {{0}};
    adv.n_cohort = 3;
    adv.cohort_ids = ids;
    adv.cohort_pks = pks;
    adv.cfg.k = 2;
    adv.cfg.t = 2;
    /* we are not in that cohort: INVALID in a SECAGG task takes us out of the round */
    assert_int_equal(take_act(o, &adv, &rep), HO_LEAVE);
    assert_int_equal(rep.rc, MU_ERR_INVALID);
    co_task unmask = task(CO_TASK_SECAGG, 1, SA_STAGE_UNMASK);
    assert_int_equal(take(o, &unmask, &got, &rep), HO_WAIT); /* out of round 1 */
    assert_int_equal(rep.repeat, 0);
    /* the next round is acted on */
    co_task t2 = task(CO_TASK_TRAIN, 2, 0);
    assert_int_equal(take_act(o, &t2, &rep), HO_PUSH);
    ho_org_stats st;
    ho_org_get_stats(o, &st);
    assert_int_equal(st.acted, 5);
    assert_int_equal(st.left, 1);
    assert_int_equal(st.restarts, 0);
    ho_reply_deinit(&rep);
    ho_org_free(o);
}

static void test_restart(void **state)
{
    (void)state;
    ho_org *o = make_org();
    ho_reply rep;
    ho_reply_init(&rep);
    co_task t = task(CO_TASK_TRAIN, 3, 0), got;
    assert_int_equal(take_act(o, &t, &rep), HO_PUSH);
    co_task eval = task(CO_TASK_EVAL, 4, 0);
    assert_int_equal(take_act(o, &eval, &rep), HO_PUSH);
    assert_int_equal(take(o, &t, &got, &rep), HO_WAIT);
    /* a new coordinator instance resumed from round 2's checkpoint: round 3 again */
    mu_diag d;
    static const uint8_t other[HO_INSTANCE_BYTES] = {2};
    assert_int_equal(ho_org_coordinator(o, other, &d), 1);
    assert_int_equal(take_act(o, &t, &rep), HO_PUSH);
    ho_org_stats st;
    ho_org_get_stats(o, &st);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(st.acted, 3);
    ho_reply_deinit(&rep);
    ho_org_free(o);
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_and_bad_bytes),
        cmocka_unit_test(test_repeats_and_reconnect),
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
