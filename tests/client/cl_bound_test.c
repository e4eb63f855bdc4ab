/* Attack 6 of issue 10 (unbounded contribution), through the real round machine: five orgs,
 * four honest participant cores and one cheater that runs its own sa_client with a masked
 * input of its choosing (any value below 2^bits passes secure aggregation). The coordinator
 * refuses (aborts the round, the global unchanged, the reason naming the bound) an aggregate
 * whose mean norm is above the clip bound or whose weight sum is outside (0, n·w_max·scale];
 * an honest round and a cheater that stays within the bounds go through. co_aggregate_check
 * itself: honest aggregates at the edge of the bounds pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cl_participant.h"
#include "co_bound.h"
#include "co_round.h"
#include "mu_log.h"

#define NORG    5
#define DIM     16
#define CHEATER 4 /* index of the cheating org */

typedef enum { HONEST, HUGE_VALUES, BIG_WEIGHT, TINY_WEIGHT, SMALL_BIAS, HUGE_TOKENS } cheat_kind;

typedef struct {
    co_round *r;
    cl_participant *p[NORG]; /* [CHEATER] unused */
    uint8_t pk[NORG][32], sk[NORG][64];
    uint32_t id[NORG];
    sa_client *sa; /* the cheater's */
    cheat_kind kind;
    double now;
    co_event last;
    int rounds_seen;
} fed;

static void base_config(co_config *c)
{
    co_config_default(c);
    c->min_orgs = NORG;
    c->wait_s = 0;
    c->rounds = 1;
    c->eval_every = 0;
    c->steps = 1;
    c->batch = 1;
    c->seq = 4;
    c->clip = 1;
    c->weight_max = 1;
    c->scale = 65536; /* well below the largest the bits allow, so that a weight above
                         n·w_max·scale is still a positive number */
    c->seed = 9;
}

static void fed_init(fed *f, cheat_kind kind)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    co_config cfg;
    base_config(&cfg);
    static float x[DIM];
    co_tensor t = {.name = "x", .ndim = 1, .shape = {DIM}, .data = x};
    mu_diag d = {{0}};
    f->r = co_round_new(&cfg, &t, 1, &d);
    if (!f->r)
        fail_msg("co_round_new: %s", d.msg);
    cl_member roster[NORG];
    for (int i = 0; i < NORG; i++) {
        crypto_sign_keypair(f->pk[i], f->sk[i]);
        snprintf(roster[i].name, sizeof roster[i].name, "org-%d", i);
        memcpy(roster[i].pk, f->pk[i], 32);
    }
    for (int i = 0; i < NORG; i++) {
        if (i != CHEATER) {
            cl_participant_config pc = {.name = roster[i].name,
                                        .synthetic = 1,
                                        .synthetic_amp = 1.0, /* norm ~2.3: clipped to 1 */
                                        .members = roster,
                                        .n_members = NORG};
            memcpy(pc.sign_sk, f->sk[i], 64);
            pc.seed[0] = (uint8_t)i;
            f->p[i] = cl_participant_new(&pc, &d);
            assert_non_null(f->p[i]);
        }
        assert_int_equal(co_round_register(f->r, roster[i].name, f->pk[i], &f->id[i], &d), MU_OK);
    }
}

static void fed_free(fed *f)
{
    for (int i = 0; i < NORG; i++)
        cl_participant_free(f->p[i]);
    sa_client_free(f->sa);
    co_round_free(f->r);
    sodium_memzero(f->sk, sizeof f->sk);
}

/* The cheater's masked input: an honest-looking encoding of a zero update, then the attack. */
static void cheat_input(const fed *f, const co_round_config *c, uint32_t *q)
{
    size_t m = co_metric_coords(c->bits, c->quant_n);
    memset(q, 0, (DIM + 1 + m) * sizeof *q); /* zero loss and tokens */
    q[DIM] = (uint32_t)c->scale;             /* weight 1 */
    uint32_t mask = c->bits == 32 ? 0xffffffffu : (1u << c->bits) - 1;
    switch (f->kind) {
    case HONEST:
        break;
    case HUGE_VALUES: /* 2^(bits-2): far beyond clip·scale in every coordinate */
        for (int i = 0; i < DIM; i++)
            q[i] = 1u << (c->bits - 2);
        break;
    case BIG_WEIGHT: /* a weight worth 1000 orgs: the others' updates shrink to nothing */
        q[DIM] = (uint32_t)(1000 * c->scale) & mask;
        break;
    case TINY_WEIGHT: /* cancels all but one unit of the others' weight: the mean explodes */
        q[DIM] = (uint32_t)(-(int64_t)(4 * c->scale - 1)) & mask;
        break;
    case SMALL_BIAS: /* within every bound: half the clip norm in one coordinate */
        q[0] = (uint32_t)(0.5 * c->scale);
        break;
    case HUGE_TOKENS: /* a token digit no org can send: it would skew the round's mean loss */
        q[DIM + m - 1] = mask;
        break;
    }
}

/* What the cheating org does with a task: a READY report, or its own sa_client. */
static void cheater_act(fed *f, const co_task *t, cl_outbox *out)
{
    sa_outbox sob;
    sa_outbox_init(&sob);
    if (t->kind == CO_TASK_TRAIN) {
        co_report rep = {CO_REPORT_READY, t->cfg.round};
        uint8_t *b = malloc(CO_REPORT_BYTES);
        co_report_encode(&rep, b);
        out->items = realloc(out->items, sizeof *out->items * (out->count + 1));
        out->items[out->count++] = (cl_msg){b, CO_REPORT_BYTES};
        out->cap = out->count;
    } else if (t->kind == CO_TASK_SECAGG && t->stage == SA_STAGE_ADVERTISE) {
        sa_config sc = {.round_id = t->cfg.round,
                        .n = t->n_cohort,
                        .org_ids = t->cohort_ids,
                        .sign_pks = (const uint8_t(*)[SA_SIGN_PK_BYTES])t->cohort_pks,
                        .d = DIM + 1 + co_metric_coords(t->cfg.bits, t->cfg.quant_n),
                        .bits = t->cfg.bits,
                        .k = t->cfg.k,
                        .t = t->cfg.t};
        memcpy(sc.instance_nonce, t->cfg.sa_nonce, SA_INSTANCE_NONCE_BYTES);
        f->sa = sa_client_new(&sc, t->org_id, f->sk[CHEATER], NULL, NULL);
        assert_non_null(f->sa);
        uint32_t q[DIM + 1 + CO_METRIC_MAX_COORDS];
        cheat_input(f, &t->cfg, q);
        assert_int_equal(
            sa_client_set_input(f->sa, q, DIM + 1 + co_metric_coords(t->cfg.bits, t->cfg.quant_n)),
            MU_OK);
        assert_int_equal(sa_client_start(f->sa, &sob, NULL), MU_OK);
    } else if (t->kind == CO_TASK_SECAGG && f->sa) {
        sa_client_handle(f->sa, t->sa_msg, t->sa_len, &sob, NULL);
    }
    for (size_t i = 0; i < sob.count; i++) {
        out->items = realloc(out->items, sizeof *out->items * (out->count + 1));
        out->items[out->count++] = (cl_msg){sob.items[i].bytes, sob.items[i].len};
        out->cap = out->count;
        sob.items[i].bytes = NULL;
    }
    sob.count = 0;
    sa_outbox_deinit(&sob);
}

/* One org pulls, acts, pushes. 1 if it pushed something. */
static int org_step(fed *f, int i)
{
    co_task t;
    assert_int_equal(co_round_next_task(f->r, f->id[i], f->now, &t), MU_OK);
    if (t.kind == CO_TASK_WAIT || t.kind == CO_TASK_DONE)
        return 0;
    cl_outbox ob;
    cl_outbox_init(&ob);
    mu_diag d = {{0}};
    if (i == CHEATER) {
        cheater_act(f, &t, &ob);
    } else {
        int rc = cl_participant_handle_task(f->p[i], NULL, &t, NULL, DIM, &ob, &d);
        if (rc != MU_OK && rc != MU_ERR_STATE)
            fail_msg("org %d: %s", i, d.msg);
    }
    int sent = 0;
    for (size_t k = 0; k < ob.count; k++)
        sent |= co_round_on_message(f->r, f->id[i], ob.items[k].bytes, ob.items[k].len, f->now,
                                    &d) == MU_OK;
    cl_outbox_deinit(&ob);
    return sent;
}

/* Runs the one round; returns its ROUND event. */
static co_event run_round(fed *f)
{
    for (int steps = 0; steps < 1000 && !f->rounds_seen; steps++) {
        assert_int_equal(co_round_tick(f->r, f->now), MU_OK);
        co_event ev;
        while (co_round_poll_event(f->r, &ev))
            if (ev.kind == CO_EVENT_ROUND && !f->rounds_seen++)
                f->last = ev;
        if (f->rounds_seen)
            break;
        int progress = 0;
        for (int i = 0; i < NORG; i++)
            progress |= org_step(f, i);
        if (!progress) {
            double next = co_round_next_deadline(f->r);
            if (!isinf(next) && next > f->now)
                f->now = next;
        }
    }
    assert_true(f->rounds_seen > 0);
    return f->last;
}

static double global_norm(fed *f)
{
    size_t dim;
    const float *g = co_round_global(f->r, &dim);
    assert_int_equal(dim, DIM);
    double n2 = 0;
    for (size_t i = 0; i < dim; i++)
        n2 += (double)g[i] * g[i];
    return sqrt(n2);
}

/* Honest rounds, and a cheater within the bounds, are applied: all five inputs in the sum. */
static void test_within_bounds_applied(void **state)
{
    (void)state;
    cheat_kind kinds[] = {HONEST, SMALL_BIAS};
    for (size_t k = 0; k < 2; k++) {
        fed f;
        fed_init(&f, kinds[k]);
        co_event ev = run_round(&f);
        if (ev.metrics.outcome != CO_ROUND_COMPLETED)
            fail_msg("kind %d: round aborted: %s", (int)kinds[k], ev.reason);
        assert_int_equal(ev.metrics.orgs_completed, NORG);
        assert_true(global_norm(&f) > 0);
        fed_free(&f);
    }
}

/* Out-of-range inputs: the round aborts naming the bound, and the global stays where it was. */
static void test_out_of_range_refused(void **state)
{
    (void)state;
    static const struct {
        cheat_kind kind;
        const char *want;
    } cases[] = {{HUGE_VALUES, "above the clip bound"},
                 {BIG_WEIGHT, "weight sum"},
                 {TINY_WEIGHT, "above the clip bound"},
                 {HUGE_TOKENS, "token digit"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fed f;
        fed_init(&f, cases[k].kind);
        co_event ev = run_round(&f);
        assert_int_equal(ev.metrics.outcome, CO_ROUND_ABORTED);
        if (!strstr(ev.reason, cases[k].want) || !strstr(ev.reason, "refusing the aggregate"))
            fail_msg("kind %d: reason '%s', want '%s'", (int)cases[k].kind, ev.reason,
                     cases[k].want);
        assert_true(global_norm(&f) == 0);
        fed_free(&f);
    }
}

/* The bounds themselves: n honest inputs at norm clip and weight w_max, rounded up in every
 * coordinate, pass; one unit above either bound does not. */
static void test_bounds_edge(void **state)
{
    (void)state;
    sa_quant q = {.clip_norm = 1, .scale = 1024, .w_max = 1, .bits = 32, .n = 3};
    uint32_t sum[DIM + 1];
    float mean[DIM];
    /* 3 inputs, each all its norm (clip·scale) in coordinate 0 plus a rounding unit in all */
    for (int i = 0; i < DIM; i++)
        sum[i] = 3;
    sum[0] = 3 * 1024 + 3;
    sum[DIM] = 3 * 1024 - 3; /* every weight rounded down */
    assert_int_equal(sa_quant_mean(mean, DIM, sum, DIM + 1, &q, NULL), MU_OK);
    mu_diag d = {{0}};
    if (co_aggregate_check(mean, DIM, sum, &q, 3, &d) != MU_OK)
        fail_msg("honest edge refused: %s", d.msg);
    sum[DIM] = 3 * 1024;
    assert_int_equal(co_aggregate_check(mean, DIM, sum, &q, 3, &d), MU_OK);
    sum[DIM] = 3 * 1024 + 1; /* above n·ceil(w_max·scale) */
    assert_int_equal(co_aggregate_check(mean, DIM, sum, &q, 3, &d), MU_ERR_PROTOCOL);
    sum[DIM] = 0;
    assert_int_equal(co_aggregate_check(mean, DIM, sum, &q, 3, &d), MU_ERR_PROTOCOL);
    sum[DIM] = 3 * 1024;
    sum[0] = 3 * 1024 * 2; /* twice the clip bound */
    assert_int_equal(sa_quant_mean(mean, DIM, sum, DIM + 1, &q, NULL), MU_OK);
    assert_int_equal(co_aggregate_check(mean, DIM, sum, &q, 3, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "above the clip bound"));
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    if (sa_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_within_bounds_applied),
        cmocka_unit_test(test_out_of_range_refused),
        cmocka_unit_test(test_bounds_edge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
