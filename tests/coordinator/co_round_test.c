/* The round state machine driven in process by N virtual orgs running the real secure_agg
 * client, with every task and report going through the wire encodings. Every call into the
 * round machine runs under allocation-failure injection (mu_nomem.h), which fails nothing
 * except in test_nomem_every_allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "co_checkpoint.h"
#include "co_round.h"
#include "mu_log.h"
#include "mu_nomem.h"
#include "sa.h"
#include "wi_stage.h"

#define MAXN 40
#define DIM  37 /* 4x6 + 13 */

enum { NEVER = 0, AT_TRAIN = 100, AT_EVAL = 101 }; /* or an sa_stage */

typedef struct {
    uint32_t id;
    uint8_t pk[32], sk[64];
    sa_client *sa;
    sa_rng_seeded rng_state;
    float delta[DIM];
    double w, loss, tokens;
    int drop_at;   /* stop answering from this stage on (AT_TRAIN or an sa_stage) */
    int late_at;   /* hold this stage's answer until after its deadline */
    int leave_at;  /* send a LEAVE report instead of answering this stage (once) */
    uint8_t *held; /* the held message */
    size_t held_len;
    int late_rc;   /* what the coordinator said to the late message */
    uint8_t *last; /* (last_len) the last message it pushed, for replays */
    size_t last_len;
    uint64_t round;                /* the round the org is in */
    int eval_reports;              /* EVAL tasks answered */
    double eval_loss, eval_tokens; /* what it evaluated: the masked input of the eval round */
} vorg;

typedef struct {
    co_round *r;
    vorg orgs[MAXN];
    int n;
    double now;
    uint64_t rounds_seen;
    co_event last; /* the last ROUND event; its dropped list copied into last_drops */
    co_drop last_drops[MAXN];
    int n_events, n_starts;
    uint64_t started; /* the round of the last ROUND_START */
    co_event start;   /* the last ROUND_START */
    int done;
    uint32_t last_k, last_t; /* the SecAgg+ degree and threshold of the last secagg task */
    uint8_t last_nonce[CO_SA_NONCE_BYTES]; /* and its instance nonce */
} fed;

static float init_a[24], init_b[13];

static void make_tensors(co_tensor t[2])
{
    for (int i = 0; i < 24; i++)
        init_a[i] = 0.01f * (float)i;
    for (int i = 0; i < 13; i++)
        init_b[i] = -0.5f + 0.05f * (float)i;
    t[0] = (co_tensor){.name = "lora_A", .ndim = 2, .shape = {4, 6}, .data = init_a};
    t[1] = (co_tensor){.name = "lora_B", .ndim = 1, .shape = {13}, .data = init_b};
}

static void base_config(co_config *c)
{
    co_config_default(c);
    c->min_orgs = 3;
    c->wait_s = 0;
    c->rounds = 0;
    c->clip = 10;
    c->weight_max = 100;
    c->seed = 7;
}

/* A tick that out of memory starts nothing, so ticking again is the retry. */
static void tick(fed *f)
{
    int rc;
    NOMEM(rc = co_round_tick(f->r, f->now));
    if (rc == MU_ERR_NOMEM)
        NOMEM(rc = co_round_tick(f->r, f->now));
    assert_int_equal(rc, MU_OK);
}

/* 0 when co_round_new ran out of memory (nothing to free), else 1 with n orgs registered. */
static int fed_try_init(fed *f, const co_config *cfg, int n)
{
    memset(f, 0, sizeof *f);
    co_tensor t[2];
    make_tensors(t);
    mu_diag d = {{0}};
    NOMEM(f->r = co_round_new(cfg, t, 2, &d));
    if (!f->r && nomem_failed && strstr(d.msg, "out of memory"))
        return 0;
    if (!f->r)
        fail_msg("co_round_new: %s", d.msg);
    f->n = n;
    for (int i = 0; i < n; i++) {
        vorg *o = &f->orgs[i];
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t)(i + 1);
        crypto_sign_seed_keypair(o->pk, o->sk, seed);
        char name[32];
        snprintf(name, sizeof name, "org-%d", i);
        int rc;
        NOMEM(rc = co_round_register(f->r, name, o->pk, &o->id, &d));
        if (rc == MU_ERR_NOMEM) /* registered nothing: register again */
            NOMEM(rc = co_round_register(f->r, name, o->pk, &o->id, &d));
        assert_int_equal(rc, MU_OK);
        assert_int_equal(o->id, i + 1);
        o->w = 1.0 + i;          /* weights 1, 2, 3, ... */
        o->loss = 2.0 + 0.1 * i; /* training loss */
        o->tokens = 100.0 * (i + 1);
    }
    return 1;
}

static void fed_init(fed *f, const co_config *cfg, int n)
{
    assert_int_equal(fed_try_init(f, cfg, n), 1);
}

static void fed_free(fed *f)
{
    for (int i = 0; i < f->n; i++) {
        sa_client_free(f->orgs[i].sa);
        free(f->orgs[i].held);
        free(f->orgs[i].last);
    }
    co_round_free(f->r);
}

/* The org's update for `round`: distinct per org and round, norm well below the clip. */
static void make_delta(vorg *o, uint64_t round)
{
    for (int k = 0; k < DIM; k++)
        o->delta[k] = 0.01f * (float)((int)(o->id * 7 + k * 3 + round * 5) % 11 - 5);
}

static void push(fed *f, vorg *o, const uint8_t *msg, size_t len, int stage)
{
    if (o->late_at == stage) {
        free(o->held);
        o->held = malloc(len);
        assert_non_null(o->held);
        memcpy(o->held, msg, len);
        o->held_len = len;
        return;
    }
    free(o->last);
    o->last = malloc(len);
    assert_non_null(o->last);
    memcpy(o->last, msg, len);
    o->last_len = len;
    mu_diag d = {{0}};
    int rc;
    NOMEM(rc = co_round_on_message(f->r, o->id, msg, len, f->now, &d));
    if (rc == MU_ERR_NOMEM) /* refused without effect: the same message again is accepted */
        NOMEM(rc = co_round_on_message(f->r, o->id, msg, len, f->now, &d));
    if (rc != MU_OK)
        fail_msg("org %u stage %d: rejected %d (%s)", o->id, stage, rc, d.msg);
}

static void push_outbox(fed *f, vorg *o, sa_outbox *ob, int stage)
{
    for (size_t i = 0; i < ob->count; i++) {
        assert_int_equal(ob->items[i].to, SA_TO_SERVER);
        push(f, o, ob->items[i].bytes, ob->items[i].len, stage);
    }
    sa_outbox_clear(ob);
}

static void start_secagg(vorg *o, const co_task *t)
{
    int eval = t->cfg.kind == CO_ROUND_EVAL;
    sa_config sc = {.round_id = t->cfg.round,
                    .n = t->n_cohort,
                    .org_ids = t->cohort_ids,
                    .sign_pks = (const uint8_t(*)[SA_SIGN_PK_BYTES])t->cohort_pks,
                    .d = co_secagg_dim(&t->cfg),
                    .bits = t->cfg.bits,
                    .k = t->cfg.k,
                    .t = t->cfg.t};
    memcpy(sc.instance_nonce, t->cfg.sa_nonce, SA_INSTANCE_NONCE_BYTES);
    uint8_t seed[32] = {0};
    seed[0] = (uint8_t)o->id;
    seed[1] = (uint8_t)t->cfg.round;
    sa_rng_seeded_init(&o->rng_state, seed);
    sa_rng rng = sa_rng_from_seeded(&o->rng_state);
    mu_diag d = {{0}};
    sa_client_free(o->sa);
    o->sa = sa_client_new(&sc, o->id, o->sk, &rng, &d);
    if (!o->sa)
        fail_msg("sa_client_new: %s", d.msg);
    sa_quant q = {.clip_norm = t->cfg.clip,
                  .scale = t->cfg.scale,
                  .w_max = t->cfg.weight_max,
                  .bits = t->cfg.bits,
                  .n = t->cfg.quant_n};
    uint32_t qv[DIM + 1 + CO_METRIC_MAX_COORDS];
    size_t m = co_metric_coords(t->cfg.bits, t->cfg.quant_n);
    assert_int_equal(t->cfg.dim, DIM);
    if (eval) { /* an evaluation round masks its loss sum and tokens alone */
        assert_int_equal(sc.d, m);
        assert_int_equal(
            co_metric_encode(qv, m, o->eval_loss, o->eval_tokens, t->cfg.bits, t->cfg.quant_n, &d),
            MU_OK);
        assert_int_equal(sa_client_set_input(o->sa, qv, m), MU_OK);
        return;
    }
    if (sa_quant_encode(qv, DIM + 1, o->delta, DIM, o->w, &q, &rng, &d) != MU_OK)
        fail_msg("sa_quant_encode: %s", d.msg);
    /* the training loss and tokens travel in the masked input (co_wire.h) */
    assert_int_equal(co_metric_encode(qv + DIM + 1, m, o->loss * o->tokens, o->tokens, t->cfg.bits,
                                      t->cfg.quant_n, &d),
                     MU_OK);
    assert_int_equal(sa_client_set_input(o->sa, qv, DIM + 1 + m), MU_OK);
}

/* One org pulls and acts. Returns 1 if it sent something. */
static int org_step(fed *f, vorg *o)
{
    co_task borrowed, t;
    assert_int_equal(co_round_next_task(f->r, o->id, f->now, &borrowed), MU_OK);
    uint8_t *buf = malloc(co_task_encoded_len(&borrowed));
    assert_non_null(buf);
    size_t len;
    assert_int_equal(co_task_encode(&borrowed, buf, co_task_encoded_len(&borrowed), &len), MU_OK);
    mu_diag d = {{0}};
    assert_int_equal(co_task_decode(&t, buf, len, &d), MU_OK);
    free(buf);
    int sent = 0, stage = t.kind == CO_TASK_SECAGG ? t.stage : AT_TRAIN;
    if (t.kind == CO_TASK_DONE)
        f->done = 1;
    int dropped = (o->drop_at == AT_TRAIN && t.kind != CO_TASK_EVAL) ||
                  (o->drop_at && t.kind == CO_TASK_SECAGG && stage >= o->drop_at);
    if (o->drop_at == AT_TRAIN && t.kind == CO_TASK_SECAGG && t.cfg.kind == CO_ROUND_TRAIN)
        fail_msg("org %u dropped at training but got a secagg task", o->id);
    int at = t.kind == CO_TASK_EVAL ? AT_EVAL : stage;
    if (o->leave_at && o->leave_at == at &&
        (t.kind == CO_TASK_TRAIN || t.kind == CO_TASK_EVAL || t.kind == CO_TASK_SECAGG)) {
        co_report rep = {CO_REPORT_LEAVE, t.cfg.round};
        uint8_t b[CO_REPORT_BYTES];
        co_report_encode(&rep, b);
        push(f, o, b, sizeof b, -2);
        o->leave_at = NEVER;
        co_task_deinit(&t);
        return 1;
    }
    if (t.kind == CO_TASK_TRAIN && !dropped && o->held_len == 0) {
        o->round = t.cfg.round;
        make_delta(o, t.cfg.round);
        co_report rep = {CO_REPORT_READY, t.cfg.round};
        uint8_t b[CO_REPORT_BYTES];
        co_report_encode(&rep, b);
        push(f, o, b, sizeof b, AT_TRAIN);
        sent = 1;
    } else if (t.kind == CO_TASK_EVAL) {
        o->round = t.cfg.round;
        o->eval_loss = 1.5 * 50 * o->id;
        o->eval_tokens = 50.0 * o->id;
        co_report rep = {CO_REPORT_EVAL, t.cfg.round};
        uint8_t b[CO_REPORT_BYTES];
        co_report_encode(&rep, b);
        push(f, o, b, sizeof b, -1);
        o->eval_reports++;
        sent = 1;
    } else if (t.kind == CO_TASK_SECAGG && !dropped && o->held_len == 0) {
        f->last_k = t.cfg.k;
        f->last_t = t.cfg.t;
        memcpy(f->last_nonce, t.cfg.sa_nonce, CO_SA_NONCE_BYTES);
        sa_outbox ob;
        sa_outbox_init(&ob);
        if (t.stage == SA_STAGE_ADVERTISE) {
            start_secagg(o, &t);
            assert_int_equal(sa_client_start(o->sa, &ob, &d), MU_OK);
        } else {
            int rc = sa_client_handle(o->sa, t.sa_msg, t.sa_len, &ob, &d);
            if (rc != MU_OK)
                fail_msg("org %u: sa_client_handle stage %d: %s", o->id, t.stage, d.msg);
        }
        sent = ob.count > 0;
        push_outbox(f, o, &ob, t.stage);
        sa_outbox_deinit(&ob);
    }
    co_task_deinit(&t);
    return sent;
}

static void drain_events(fed *f)
{
    co_event ev;
    while (co_round_poll_event(f->r, &ev)) {
        f->n_events++;
        if (ev.kind == CO_EVENT_ROUND_START) {
            /* each round is announced once, before it ends, with its cohort */
            assert_int_equal(ev.metrics.round, f->started + 1);
            assert_true(ev.metrics.orgs_selected >= 2);
            assert_true(ev.orgs_connected >= ev.metrics.orgs_selected);
            f->started = ev.metrics.round;
            f->start = ev;
            f->n_starts++;
        }
        if (ev.kind == CO_EVENT_ROUND) {
            assert_int_equal(ev.metrics.round, f->started);
            assert_true(ev.n_dropped <= ev.metrics.orgs_selected && ev.n_dropped <= MAXN);
            assert_true(ev.n_dropped == 0 || ev.dropped != NULL);
            if (ev.n_dropped)
                memcpy(f->last_drops, ev.dropped, ev.n_dropped * sizeof *ev.dropped);
            ev.dropped = f->last_drops; /* borrowed only until the next poll */
            f->last = ev;
            f->rounds_seen++;
        }
    }
}

/* Runs until `rounds` more ROUND events (or `max_steps`). Orgs act whenever they can; when
 * nobody can, time jumps to the next deadline. Held (late) messages are sent right after the
 * stage they belong to has closed. */
static void run_rounds(fed *f, uint64_t rounds)
{
    uint64_t target = f->rounds_seen + rounds;
    for (int steps = 0; f->rounds_seen < target && steps < 10000; steps++) {
        tick(f);
        drain_events(f);
        if (f->rounds_seen >= target)
            break;
        int progress = 0;
        for (int i = 0; i < f->n; i++)
            progress |= org_step(f, &f->orgs[i]);
        drain_events(f);
        if (progress)
            continue;
        double next = co_round_next_deadline(f->r);
        if (isinf(next)) {
            uint64_t v0 = co_round_version(f->r);
            tick(f); /* the pulls connected them */
            if (co_round_version(f->r) == v0)
                fail_msg("stuck: nothing to do and no deadline");
            continue;
        }
        f->now = next > f->now ? next : f->now;
        uint64_t v = co_round_version(f->r);
        tick(f);
        drain_events(f);
        if (co_round_version(f->r) != v) {
            for (int i = 0; i < f->n; i++) {
                vorg *o = &f->orgs[i];
                if (!o->held_len)
                    continue;
                mu_diag d = {{0}};
                o->late_rc = co_round_on_message(f->r, o->id, o->held, o->held_len, f->now, &d);
                o->held_len = 0;
                o->late_at = 0;
                o->drop_at = SA_STAGE_ADVERTISE; /* out for the rest of the round */
            }
        }
    }
    assert_true(f->rounds_seen >= target);
}

/* The expected new global: old + Σ w·δ / Σ w over the orgs in `in_sum`. */
static void expect_global(fed *f, const float *old, const int *in_sum, uint64_t round)
{
    double num[DIM] = {0}, den = 0;
    for (int i = 0; i < f->n; i++) {
        if (!in_sum[i])
            continue;
        vorg *o = &f->orgs[i];
        make_delta(o, round);
        for (int k = 0; k < DIM; k++)
            num[k] += o->w * o->delta[k];
        den += o->w;
    }
    size_t dim;
    const float *g = co_round_global(f->r, &dim);
    assert_int_equal(dim, DIM);
    for (int k = 0; k < DIM; k++) {
        double want = old[k] + num[k] / den;
        if (fabs(g[k] - want) > 1e-5)
            fail_msg("coordinate %d: got %.8f, want %.8f", k, g[k], want);
    }
}

static void snapshot(fed *f, float *out)
{
    size_t dim;
    memcpy(out, co_round_global(f->r, &dim), DIM * sizeof(float));
}

static const int all5[MAXN] = {1, 1, 1, 1, 1};

static void test_full_round_and_checkpoint(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    fed f;
    fed_init(&f, &cfg, 5);
    float old[DIM];
    snapshot(&f, old);
    /* Nobody has pulled yet: nobody is connected, no round starts. */
    assert_int_equal(co_round_tick(f.r, 0), MU_OK);
    co_status st;
    co_round_status(f.r, 0, &st);
    assert_int_equal(st.phase, CO_PHASE_IDLE);
    assert_int_equal(st.orgs_registered, 5);
    assert_int_equal(st.orgs_connected, 0);
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
    assert_int_equal(f.last.metrics.round, 1);
    assert_int_equal(f.last.metrics.orgs_selected, 5);
    assert_int_equal(f.last.metrics.orgs_completed, 5);
    assert_int_equal(f.last.metrics.orgs_dropped, 0);
    assert_true(f.last.metrics.bytes_in > 5 * DIM * 4);
    assert_true(f.last.metrics.bytes_out > 0);
    /* loss = Σ loss·tokens / Σ tokens = Σ (2+0.1i)·100(i+1) / 1500 */
    double ls = 0, tk = 0;
    for (int i = 0; i < 5; i++) {
        ls += (2.0 + 0.1 * i) * 100.0 * (i + 1);
        tk += 100.0 * (i + 1);
    }
    /* the totals from the secure sum: tokens exact, each org's loss sum within half a step */
    assert_true(f.last.metrics.tokens == tk);
    assert_true(fabs(f.last.metrics.loss - ls / tk) <= 5 * 0.5 / CO_METRIC_LOSS_SCALE / tk + 1e-15);
    expect_global(&f, old, all5, 1);
    co_round_status(f.r, f.now, &st);
    assert_int_equal(st.train_rounds_done, 1);
    assert_int_equal(st.has_last, 1);

    /* Checkpoint, then resume in a fresh coordinator: same global, orgs, history, round. */
    char cmd[] = "rm -rf co_round_ck && mkdir co_round_ck";
    assert_int_equal(system(cmd), 0);
    uint8_t hash[CO_HASH_BYTES] = {1, 2, 3};
    co_checkpoint view, got;
    co_round_checkpoint_view(f.r, hash, &view);
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("co_round_ck", &view, &d), MU_OK);
    assert_int_equal(co_checkpoint_load("co_round_ck", hash, 0, &got, &d), MU_OK);
    co_tensor t[2];
    make_tensors(t);
    co_round *r2 = co_round_new(&cfg, t, 2, &d);
    assert_non_null(r2);
    assert_int_equal(co_round_restore(r2, &got, &d), MU_OK);
    co_checkpoint_deinit(&got);
    size_t d1, d2, nh;
    assert_memory_equal(co_round_global(f.r, &d1), co_round_global(r2, &d2), DIM * sizeof(float));
    assert_int_equal(co_round_find_org(r2, "org-3"), f.orgs[3].id);
    assert_memory_equal(co_round_org(r2, f.orgs[3].id)->pk, f.orgs[3].pk, 32);
    assert_non_null(co_round_history(r2, &nh));
    assert_int_equal(nh, 1);
    co_round_status(r2, 0, &st);
    assert_int_equal(st.round, 1);
    assert_int_equal(st.train_rounds_done, 1);
    /* A checkpoint of another adapter (a renamed or reshaped tensor) is refused. */
    assert_int_equal(co_checkpoint_load("co_round_ck", hash, 0, &got, &d), MU_OK);
    co_round *r3 = co_round_new(&cfg, t, 2, &d);
    assert_non_null(r3);
    got.tensors[1].shape[0] = 12;
    assert_int_equal(co_round_restore(r3, &got, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "lora_B"));
    got.tensors[1].shape[0] = 13;
    assert_int_equal(co_round_restore(r3, &got, &d), MU_OK);
    assert_int_equal(co_strategy_step(co_round_strategy(r3)), 1);
    co_checkpoint_deinit(&got);
    co_round_free(r3);
    /* Restoring twice, or after a round started, is refused. */
    assert_int_equal(co_checkpoint_load("co_round_ck", hash, 0, &got, &d), MU_OK);
    assert_int_equal(co_round_restore(f.r, &got, &d), MU_ERR_STATE);
    co_checkpoint_deinit(&got);
    co_round_free(r2);

    /* A second round continues from the new global. */
    snapshot(&f, old);
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.round, 2);
    expect_global(&f, old, all5, 2);
    fed_free(&f);
}

/* One org drops at each stage in turn; the round completes with the others, and its input
 * is in the sum exactly when it had sent its masked input. */
static void test_dropout_each_stage(void **state)
{
    (void)state;
    const int stages[] = {AT_TRAIN,        SA_STAGE_ADVERTISE,   SA_STAGE_SHARE,
                          SA_STAGE_MASKED, SA_STAGE_CONSISTENCY, SA_STAGE_UNMASK};
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++) {
        co_config cfg;
        base_config(&cfg);
        fed f;
        fed_init(&f, &cfg, 5);
        float old[DIM];
        snapshot(&f, old);
        f.orgs[2].drop_at = stages[s];
        run_rounds(&f, 1);
        int in_sum[MAXN] = {1, 1, 1, 1, 1};
        int dropped_before_upload = stages[s] == AT_TRAIN || stages[s] <= SA_STAGE_MASKED;
        in_sum[2] = !dropped_before_upload;
        if (f.last.metrics.outcome != CO_ROUND_COMPLETED)
            fail_msg("drop at %d: round aborted: %s", stages[s], f.last.reason);
        assert_int_equal(f.last.metrics.orgs_completed, dropped_before_upload ? 4 : 5);
        assert_int_equal(f.last.metrics.orgs_dropped, dropped_before_upload ? 1 : 0);
        expect_global(&f, old, in_sum, 1);
        assert_true(f.now > 0); /* a deadline had to pass */
        /* the silent org is named, with the stage it did not answer */
        assert_int_equal(f.last.n_dropped, 1);
        assert_int_equal(f.last.dropped[0].org_id, 3);
        assert_string_equal(f.last.dropped[0].name, "org-2");
        assert_int_equal(f.last.dropped[0].stage,
                         stages[s] == AT_TRAIN ? WI_STAGE_TRAIN : stages[s]);
        fed_free(&f);
    }
}

static void pull_all(fed *f);

/* One org leaves (a LEAVE report) at each stage in turn, instead of answering: the round
 * completes with the others at once, without any deadline passing (the clock stays at 0),
 * its input in the sum exactly when it had sent its masked input, and the round's dropped
 * list names it with that stage. */
static void test_leave_each_stage(void **state)
{
    (void)state;
    const int stages[] = {AT_TRAIN,        SA_STAGE_ADVERTISE,   SA_STAGE_SHARE,
                          SA_STAGE_MASKED, SA_STAGE_CONSISTENCY, SA_STAGE_UNMASK};
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++) {
        co_config cfg;
        base_config(&cfg);
        fed f;
        fed_init(&f, &cfg, 5);
        float old[DIM];
        snapshot(&f, old);
        f.orgs[2].leave_at = stages[s];
        run_rounds(&f, 1);
        if (f.last.metrics.outcome != CO_ROUND_COMPLETED)
            fail_msg("leave at %d: round aborted: %s", stages[s], f.last.reason);
        assert_true(f.now == 0); /* no deadline waited for */
        int before_upload = stages[s] == AT_TRAIN || stages[s] <= SA_STAGE_MASKED;
        int in_sum[MAXN] = {1, 1, 1, 1, 1};
        in_sum[2] = !before_upload;
        assert_int_equal(f.last.metrics.orgs_completed, before_upload ? 4 : 5);
        expect_global(&f, old, in_sum, 1);
        assert_int_equal(f.last.n_dropped, 1);
        assert_int_equal(f.last.dropped[0].org_id, 3);
        assert_string_equal(f.last.dropped[0].name, "org-2");
        int want = stages[s] == AT_TRAIN ? WI_STAGE_TRAIN : stages[s];
        assert_int_equal(f.last.dropped[0].stage, want);
        char line[400], part[64];
        co_event_describe(&f.last, line, sizeof line);
        snprintf(part, sizeof part, "; dropped: org-2 at %s", wi_stage_name(want));
        assert_non_null(strstr(line, part));
        fed_free(&f);
    }
}

/* Leaving outside the round, twice, for a later round, or then pushing anyway; two orgs
 * leaving one after the other; an org leaving an evaluation round. */
static void test_leave_edges(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.eval_every = 1;
    fed f;
    fed_init(&f, &cfg, 5);
    mu_diag d = {{0}};
    uint8_t b[CO_REPORT_BYTES];
    co_report rep = {CO_REPORT_LEAVE, 0};
    co_report_encode(&rep, b);
    assert_int_equal(co_round_leave(f.r, 99, 0), MU_ERR_NOTFOUND);
    /* idle: nothing but "not connected" (no round starts without it) */
    pull_all(&f);
    assert_int_equal(co_round_on_message(f.r, f.orgs[0].id, b, sizeof b, 0, &d), MU_OK);
    co_status st;
    co_round_status(f.r, 0, &st);
    assert_int_equal(st.orgs_connected, 4);
    /* a leave for a round that has not started is refused */
    rep.round = 1;
    co_report_encode(&rep, b);
    assert_int_equal(co_round_on_message(f.r, f.orgs[1].id, b, sizeof b, 0, &d), MU_ERR_PROTOCOL);
    /* two orgs leave the same round at different stages: both named, in order (org-0 is
     * not in it: it left before the round started, so was not connected) */
    f.orgs[3].leave_at = AT_TRAIN;
    f.orgs[4].leave_at = SA_STAGE_SHARE;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
    assert_int_equal(f.last.metrics.orgs_selected, 4);
    assert_int_equal(f.last.metrics.orgs_completed, 2);
    assert_true(f.now == 0);
    assert_int_equal(f.last.n_dropped, 2);
    assert_string_equal(f.last.dropped[0].name, "org-3");
    assert_int_equal(f.last.dropped[0].stage, WI_STAGE_TRAIN);
    assert_string_equal(f.last.dropped[1].name, "org-4");
    assert_int_equal(f.last.dropped[1].stage, WI_STAGE_SHARE);
    /* evaluation round 2: org-1 leaves instead of reporting; the others' reports close it */
    f.orgs[1].leave_at = AT_EVAL;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.kind, CO_ROUND_EVAL);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
    assert_true(f.now == 0);
    assert_int_equal(f.last.n_dropped, 1);
    assert_string_equal(f.last.dropped[0].name, "org-1");
    assert_int_equal(f.last.dropped[0].stage, WI_STAGE_EVAL);
    /* round 3 in TRAIN: a second leave changes nothing, a report after it is refused */
    tick(&f);
    drain_events(&f);
    co_task t;
    assert_int_equal(co_round_next_task(f.r, f.orgs[0].id, f.now, &t), MU_OK);
    assert_int_equal(t.kind, CO_TASK_TRAIN);
    assert_int_equal(co_round_leave(f.r, f.orgs[0].id, f.now), MU_OK);
    assert_int_equal(co_round_leave(f.r, f.orgs[0].id, f.now), MU_OK);
    assert_int_equal(co_round_next_task(f.r, f.orgs[0].id, f.now, &t), MU_OK);
    assert_int_equal(t.kind, CO_TASK_WAIT);
    co_report ready = {CO_REPORT_READY, 3};
    co_report_encode(&ready, b);
    assert_int_equal(co_round_on_message(f.r, f.orgs[0].id, b, sizeof b, f.now, &d),
                     MU_ERR_PROTOCOL);
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.round, 3);
    assert_int_equal(f.last.n_dropped, 1);
    assert_string_equal(f.last.dropped[0].name, "org-0");
    /* everyone else's rounds go on: a round with nobody dropped lists nobody */
    run_rounds(&f, 1);
    run_rounds(&f, 1);
    assert_int_equal(f.last.n_dropped, 0);
    fed_free(&f);
}

/* Messages that arrive after their stage's deadline are refused; the round goes on. */
static void test_missed_deadlines(void **state)
{
    (void)state;
    const int stages[] = {AT_TRAIN, SA_STAGE_SHARE, SA_STAGE_MASKED};
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++) {
        co_config cfg;
        base_config(&cfg);
        fed f;
        fed_init(&f, &cfg, 5);
        float old[DIM];
        snapshot(&f, old);
        f.orgs[4].late_at = stages[s];
        run_rounds(&f, 1);
        assert_int_equal(f.orgs[4].late_rc, MU_ERR_TIMEOUT);
        assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
        int in_sum[MAXN] = {1, 1, 1, 1, 0};
        expect_global(&f, old, in_sum, 1);
        fed_free(&f);
    }
}

static int replay(fed *f, vorg *as, const vorg *from)
{
    mu_diag d = {{0}};
    return co_round_on_message(f->r, as->id, from->last, from->last_len, f->now, &d);
}

static void pull_all(fed *f)
{
    co_task t;
    for (int i = 0; i < f->n; i++)
        assert_int_equal(co_round_next_task(f->r, f->orgs[i].id, f->now, &t), MU_OK);
}

static void test_replay_out_of_order_unregistered(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    fed f;
    fed_init(&f, &cfg, 3);
    vorg *a = &f.orgs[0], *b = &f.orgs[1], *c = &f.orgs[2];
    co_task t;
    mu_diag d = {{0}};
    uint8_t junk[8] = "SAxxxxx";
    /* Unregistered ids are refused everywhere. */
    assert_int_equal(co_round_next_task(f.r, 99, 0, &t), MU_ERR_NOTFOUND);
    assert_int_equal(co_round_next_task(f.r, 0, 0, &t), MU_ERR_NOTFOUND);
    assert_int_equal(co_round_on_message(f.r, 99, junk, sizeof junk, 0, &d), MU_ERR_NOTFOUND);

    pull_all(&f);
    assert_int_equal(co_round_tick(f.r, 0), MU_OK);
    assert_int_equal(co_round_next_task(f.r, a->id, 0, &t), MU_OK);
    assert_int_equal(t.kind, CO_TASK_TRAIN);
    assert_int_equal(t.cfg.round, 1);
    assert_int_equal(t.cfg.dim, DIM);
    assert_true(t.cfg.scale > 0);
    /* A SecAgg message before secure aggregation started: out of order. */
    assert_int_equal(co_round_on_message(f.r, a->id, junk, sizeof junk, 0, &d), MU_ERR_STATE);
    assert_int_equal(co_round_on_message(f.r, a->id, junk, 3, 0, &d), MU_ERR_STATE);
    uint8_t garbage[5] = {1, 2, 3, 4, 5};
    assert_int_equal(co_round_on_message(f.r, a->id, garbage, sizeof garbage, 0, &d),
                     MU_ERR_FORMAT);
    /* READY, then the same READY again (replay), then one for another round. */
    assert_int_equal(org_step(&f, a), 1);
    assert_int_equal(replay(&f, a, a), MU_ERR_PROTOCOL);
    co_report rep = {CO_REPORT_READY, 5};
    uint8_t buf[CO_REPORT_BYTES];
    co_report_encode(&rep, buf);
    assert_int_equal(co_round_on_message(f.r, b->id, buf, sizeof buf, 0, &d), MU_ERR_PROTOCOL);
    rep = (co_report){CO_REPORT_EVAL, 1};
    co_report_encode(&rep, buf);
    assert_int_equal(co_round_on_message(f.r, b->id, buf, sizeof buf, 0, &d), MU_ERR_PROTOCOL);
    buf[3] = 9; /* unknown report type */
    assert_int_equal(co_round_on_message(f.r, b->id, buf, sizeof buf, 0, &d), MU_ERR_FORMAT);
    assert_int_equal(org_step(&f, b), 1);
    assert_int_equal(org_step(&f, c), 1);
    co_status st;
    co_round_status(f.r, 0, &st);
    assert_int_equal(st.phase, CO_PHASE_SECAGG);
    assert_string_equal(st.stage_name, "advertise");
    assert_int_equal(st.orgs_pending, 3);
    /* ADVERTISE, replayed while the stage is open (duplicate), and after it closed (late). */
    assert_int_equal(org_step(&f, a), 1);
    assert_int_equal(replay(&f, a, a), MU_ERR_PROTOCOL);
    assert_int_equal(co_round_next_task(f.r, a->id, 0, &t), MU_OK);
    assert_int_equal(t.kind, CO_TASK_WAIT); /* answered: nothing more this stage */
    assert_int_equal(org_step(&f, b), 1);
    assert_int_equal(org_step(&f, c), 1);
    co_round_status(f.r, 0, &st);
    assert_string_equal(st.stage_name, "share");
    assert_int_equal(replay(&f, a, a), MU_ERR_TIMEOUT);
    /* org a's SHARES pushed again under b's identity: refused, no effect. */
    assert_int_equal(org_step(&f, a), 1);
    assert_int_not_equal(replay(&f, b, a), MU_OK);
    assert_int_equal(replay(&f, a, a), MU_ERR_PROTOCOL);
    /* The READY replayed now is still a duplicate. */
    rep = (co_report){CO_REPORT_READY, 1};
    co_report_encode(&rep, buf);
    assert_int_equal(co_round_on_message(f.r, a->id, buf, sizeof buf, 0, &d), MU_ERR_PROTOCOL);
    float old[DIM];
    co_tensor tt[2];
    make_tensors(tt);
    memcpy(old, init_a, sizeof init_a);
    memcpy(old + 24, init_b, sizeof init_b);
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
    int in_sum[MAXN] = {1, 1, 1};
    expect_global(&f, old, in_sum, 1);
    assert_int_equal(f.now, 0); /* everything went through without waiting for a deadline */
    fed_free(&f);
}

static void test_registration(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    uint8_t pk[3][32], sk[64], seed[32] = {0};
    for (int i = 0; i < 3; i++) {
        seed[0] = (uint8_t)(40 + i);
        crypto_sign_seed_keypair(pk[i], sk, seed);
    }
    co_allowed_org allow[2] = {{"north", 0, {0}}, {"south", 1, {0}}};
    memcpy(allow[1].pk, pk[1], 32);
    cfg.orgs = allow;
    cfg.n_orgs = 2;
    co_tensor t[2];
    make_tensors(t);
    mu_diag d = {{0}};
    co_round *r = co_round_new(&cfg, t, 2, &d);
    assert_non_null(r);
    uint32_t id = 0, id2 = 0;
    assert_int_equal(co_round_register(r, "west", pk[0], &id, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "west"));
    assert_int_equal(co_round_register(r, "south", pk[0], &id, &d), MU_ERR_CRYPTO);
    assert_int_equal(co_round_register(r, "south", pk[1], &id, &d), MU_OK);
    assert_int_equal(co_round_register(r, "north", pk[2], &id2, &d), MU_OK);
    assert_int_not_equal(id, id2);
    uint32_t again = 0;
    assert_int_equal(co_round_register(r, "north", pk[2], &again, &d), MU_OK);
    assert_int_equal(again, id2);
    assert_int_equal(co_round_register(r, "north", pk[0], &again, &d), MU_ERR_CRYPTO);
    uint8_t bad[32];
    memset(bad, 0xff, sizeof bad);
    assert_int_equal(co_round_register(r, "north", bad, &again, &d), MU_ERR_CRYPTO);
    assert_int_equal(co_round_register(r, "has space", pk[0], &again, &d), MU_ERR_INVALID);
    assert_int_equal(co_round_register(r, "", pk[0], &again, &d), MU_ERR_INVALID);
    assert_string_equal(co_round_org(r, id)->name, "south");
    assert_null(co_round_org(r, 3));
    co_round_free(r);
}

/* With an allow-list of three, two orgs registered and connected do not start round 1 at
 * once: the third, slower to start, gets cohort.wait_s to join (the first round used to start
 * as soon as every org registered so far was connected, so a late one missed it). */
static void test_waits_for_listed_orgs(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.min_orgs = 2;
    cfg.wait_s = 5;
    uint8_t pk[3][32], sk[64], seed[32] = {0};
    co_allowed_org allow[3] = {{"a", 0, {0}}, {"b", 0, {0}}, {"c", 0, {0}}};
    co_tensor t[2];
    make_tensors(t);
    mu_diag d = {{0}};
    cfg.orgs = allow;
    cfg.n_orgs = 3;
    co_round *r = co_round_new(&cfg, t, 2, &d);
    assert_non_null(r);
    uint32_t id[3];
    co_task task;
    for (int i = 0; i < 2; i++) {
        seed[0] = (uint8_t)(60 + i);
        crypto_sign_seed_keypair(pk[i], sk, seed);
        assert_int_equal(co_round_register(r, allow[i].name, pk[i], &id[i], &d), MU_OK);
        assert_int_equal(co_round_next_task(r, id[i], 0.0, &task), MU_OK);
    }
    assert_int_equal(co_round_tick(r, 0.0), MU_OK);
    assert_int_equal(co_round_next_task(r, id[0], 1.0, &task), MU_OK);
    assert_int_equal(task.kind, CO_TASK_WAIT); /* not started: "c" may still come */
    /* "c" joins within wait_s: the round starts at once, with all three */
    seed[0] = 62;
    crypto_sign_seed_keypair(pk[2], sk, seed);
    assert_int_equal(co_round_register(r, "c", pk[2], &id[2], &d), MU_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(co_round_next_task(r, id[i], 2.0, &task), MU_OK);
    assert_int_equal(co_round_tick(r, 2.0), MU_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(co_round_next_task(r, id[i], 2.5, &task), MU_OK);
        assert_int_equal(task.kind, CO_TASK_TRAIN);
    }
    co_round_free(r);

    /* "c" never comes: the round starts wait_s after two were connected, with those two */
    r = co_round_new(&cfg, t, 2, &d);
    assert_non_null(r);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(co_round_register(r, allow[i].name, pk[i], &id[i], &d), MU_OK);
        assert_int_equal(co_round_next_task(r, id[i], 0.0, &task), MU_OK);
    }
    assert_int_equal(co_round_tick(r, 0.0), MU_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(co_round_next_task(r, id[i], 4.9, &task), MU_OK);
    assert_int_equal(co_round_tick(r, 4.9), MU_OK);
    assert_int_equal(co_round_next_task(r, id[0], 4.9, &task), MU_OK);
    assert_int_equal(task.kind, CO_TASK_WAIT);
    assert_int_equal(co_round_tick(r, 5.0), MU_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(co_round_next_task(r, id[i], 5.0, &task), MU_OK);
        assert_int_equal(task.kind, CO_TASK_TRAIN);
    }
    co_round_free(r);
}

/* A quantisation that could overflow with max_orgs is refused at setup, not mid-federation. */
static void test_overflow_refused_at_setup(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.bits = 16;
    cfg.scale = 1000; /* 100 orgs · (100·10·1000 + 1) > 2^15 - 1 */
    co_tensor t[2];
    make_tensors(t);
    mu_diag d = {{0}};
    assert_null(co_round_new(&cfg, t, 2, &d));
    assert_non_null(strstr(d.msg, "16-bit"));
    cfg.scale = 0; /* automatic: 2^15 / 100 orgs leaves 326 per org; w·clip = 1000: < 1 */
    assert_null(co_round_new(&cfg, t, 2, &d));
    assert_non_null(strstr(d.msg, "scale below 1"));
    cfg.weight_max = 1;
    cfg.clip = 1;
    co_round *r = co_round_new(&cfg, t, 2, &d);
    if (!r)
        fail_msg("%s", d.msg);
    co_round_free(r);
}

static void test_abort_below_threshold(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    fed f;
    fed_init(&f, &cfg, 3);
    float old[DIM], now_g[DIM];
    snapshot(&f, old);
    /* Two of three drop during training: 1 ready < min_orgs 3. */
    f.orgs[0].drop_at = AT_TRAIN;
    f.orgs[1].drop_at = AT_TRAIN;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_ABORTED);
    assert_non_null(strstr(f.last.reason, "ready"));
    snapshot(&f, now_g);
    assert_memory_equal(old, now_g, sizeof old);
    /* Two of three drop before their masked input: 1 survivor < threshold. */
    f.orgs[0].drop_at = SA_STAGE_MASKED;
    f.orgs[1].drop_at = SA_STAGE_MASKED;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.round, 2);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_ABORTED);
    assert_non_null(strstr(f.last.reason, "secure aggregation"));
    snapshot(&f, now_g);
    assert_memory_equal(old, now_g, sizeof old);
    /* The next round runs with everyone and completes. */
    f.orgs[0].drop_at = f.orgs[1].drop_at = NEVER;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.round, 3);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
    int in_sum[MAXN] = {1, 1, 1};
    expect_global(&f, old, in_sum, 3);
    size_t nh;
    const co_metrics *h = co_round_history(f.r, &nh);
    assert_int_equal(nh, 3);
    assert_int_equal(h[0].outcome, CO_ROUND_ABORTED);
    assert_int_equal(h[0].orgs_dropped, 3);
    fed_free(&f);
}

/* federation.rounds counts aborted training rounds too, so a run always ends. */
static void test_aborted_rounds_count(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.rounds = 2;
    fed f;
    fed_init(&f, &cfg, 3);
    f.orgs[0].drop_at = AT_TRAIN;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_ABORTED);
    f.orgs[0].drop_at = NEVER;
    run_rounds(&f, 1);
    assert_int_equal(f.last.metrics.outcome, CO_ROUND_COMPLETED);
    co_status st;
    co_round_status(f.r, f.now, &st);
    assert_int_equal(st.phase, CO_PHASE_DONE);
    assert_int_equal(st.train_rounds_done, 1);
    fed_free(&f);
}

static void test_eval_rounds_and_done(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.eval_every = 1;
    cfg.rounds = 2;
    fed f;
    fed_init(&f, &cfg, 3);
    run_rounds(&f, 4);
    size_t nh;
    const co_metrics *h = co_round_history(f.r, &nh);
    assert_int_equal(nh, 4);
    const uint8_t kinds[4] = {CO_ROUND_TRAIN, CO_ROUND_EVAL, CO_ROUND_TRAIN, CO_ROUND_EVAL};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(h[i].kind, kinds[i]);
        assert_int_equal(h[i].outcome, CO_ROUND_COMPLETED);
    }
    /* Σ 1.5·50·id / Σ 50·id over ids 1..3 */
    assert_true(fabs(h[1].loss - 1.5) < 1e-12);
    assert_true(h[1].tokens == 300.0);
    assert_int_equal(f.orgs[0].eval_reports, 2);
    co_status st;
    co_round_status(f.r, f.now, &st);
    assert_int_equal(st.phase, CO_PHASE_DONE);
    assert_string_equal(st.stage_name, "done");
    co_task t;
    assert_int_equal(co_round_next_task(f.r, f.orgs[1].id, f.now, &t), MU_OK);
    assert_int_equal(t.kind, CO_TASK_DONE);
    co_event ev;
    assert_int_equal(co_round_poll_event(f.r, &ev), 0);
    assert_int_equal(f.n_events, 9); /* 4 round starts, 4 rounds, done */
    assert_int_equal(f.n_starts, 4);
    fed_free(&f);
}

static void expect_line(const co_event *ev, int warn, const char *want)
{
    char line[400];
    assert_int_equal(co_event_describe(ev, line, sizeof line), warn);
    assert_string_equal(line, want);
}

/* The round machine logs nothing: every line a driver logs comes from an event. */
static void test_events_carry_the_log_lines(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.eval_every = 1;
    fed f;
    fed_init(&f, &cfg, 3);
    f.orgs[0].drop_at = AT_TRAIN;
    run_rounds(&f, 1);
    expect_line(&f.start, 0, "coordinator: round 1 (train) starts with 3 of 3 connected orgs");
    expect_line(&f.last, 1,
                "coordinator: round 1 aborted: only 2 of 3 selected orgs were ready "
                "(cohort.min_orgs 3); dropped: org-0 at train");
    f.orgs[0].drop_at = NEVER;
    run_rounds(&f, 1);
    char want[200];
    snprintf(want, sizeof want, "coordinator: round 2 done: 3 of 3 orgs in the sum, loss %.4f",
             f.last.metrics.loss);
    expect_line(&f.last, 0, want);
    run_rounds(&f, 1);
    expect_line(&f.start, 0, "coordinator: round 3 (eval) starts with 3 of 3 connected orgs");
    expect_line(&f.last, 0,
                "coordinator: evaluation round 3: loss 1.5000 over 300 tokens from 3 orgs");
    co_event done = {.kind = CO_EVENT_DONE};
    expect_line(&done, 0, "");

    /* A checkpoint of FedAvg restored under FedAdam: the optimizer starts from zero, and a
     * NOTICE says so (once). */
    co_checkpoint view;
    uint8_t hash[CO_HASH_BYTES] = {0};
    co_round_checkpoint_view(f.r, hash, &view);
    co_config adam = cfg;
    co_strategy_params_default(&adam.strategy, CO_STRATEGY_FEDADAM);
    co_tensor t[2];
    make_tensors(t);
    mu_diag d = {{0}};
    co_round *r2 = co_round_new(&adam, t, 2, &d);
    assert_non_null(r2);
    assert_int_equal(co_round_restore(r2, &view, &d), MU_OK);
    co_event ev;
    assert_int_equal(co_round_poll_event(r2, &ev), 1);
    assert_int_equal(ev.kind, CO_EVENT_NOTICE);
    expect_line(&ev, 1,
                "restore: the checkpoint's optimizer state does not fit strategy fedadam; "
                "starting it from zero");
    assert_int_equal(co_round_poll_event(r2, &ev), 0);
    co_round_free(r2);
    fed_free(&f);
}

/* cohort.eval_fraction: evaluation rounds measure a fixed set of orgs. 6 orgs, training
 * samples 3 per round (fraction 0.5), 4 training + 4 evaluation rounds. */
static void eval_cohort_run(double eval_fraction, int reports[6], uint32_t *eval_selected)
{
    co_config cfg;
    base_config(&cfg);
    cfg.min_orgs = 2;
    cfg.fraction = 0.5;
    cfg.eval_every = 1;
    cfg.rounds = 4;
    cfg.eval_fraction = eval_fraction;
    fed f;
    fed_init(&f, &cfg, 6);
    run_rounds(&f, 8);
    size_t nh;
    const co_metrics *h = co_round_history(f.r, &nh);
    assert_int_equal(nh, 8);
    *eval_selected = 0;
    for (size_t i = 0; i < nh; i++) {
        assert_int_equal(h[i].outcome, CO_ROUND_COMPLETED);
        if (h[i].kind == CO_ROUND_TRAIN)
            assert_int_equal(h[i].orgs_selected, 3);
        else
            *eval_selected += h[i].orgs_selected;
    }
    for (int i = 0; i < 6; i++)
        reports[i] = f.orgs[i].eval_reports;
    fed_free(&f);
}

static void test_eval_cohort_fixed(void **state)
{
    (void)state;
    int rep[6];
    uint32_t sel;
    eval_cohort_run(1.0, rep, &sel); /* every org evaluates every time */
    assert_int_equal(sel, 4 * 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rep[i], 4);
    eval_cohort_run(0.5, rep, &sel); /* the same 3 orgs every time */
    assert_int_equal(sel, 4 * 3);
    int always = 0;
    for (int i = 0; i < 6; i++) {
        assert_true(rep[i] == 0 || rep[i] == 4);
        always += rep[i] == 4;
    }
    assert_int_equal(always, 3);
    eval_cohort_run(0, rep, &sel); /* off: sampled anew each round, as training is */
    assert_int_equal(sel, 4 * 3);
    int mixed = 0;
    for (int i = 0; i < 6; i++)
        mixed |= rep[i] > 0 && rep[i] < 4;
    assert_true(mixed);
}

static uint32_t selected_mask(co_round *r, const fed *f, double now)
{
    uint32_t mask = 0;
    co_task t;
    for (int i = 0; i < f->n; i++) {
        assert_int_equal(co_round_next_task(r, f->orgs[i].id, now, &t), MU_OK);
        if (t.kind == CO_TASK_TRAIN)
            mask |= 1u << i;
    }
    return mask;
}

static void test_cohort_selection(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.min_orgs = 2;
    cfg.fraction = 0.5;
    cfg.wait_s = 10;
    fed f1, f2;
    fed_init(&f1, &cfg, 6);
    fed_init(&f2, &cfg, 6);
    /* 4 of 6 connected: wait wait_s for the others, then sample ceil(0.5·4) = 2. */
    co_task t;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(co_round_next_task(f1.r, f1.orgs[i].id, 0, &t), MU_OK);
        assert_int_equal(co_round_next_task(f2.r, f2.orgs[i].id, 0, &t), MU_OK);
    }
    assert_int_equal(co_round_tick(f1.r, 0), MU_OK);
    assert_true(co_round_next_deadline(f1.r) == 10);
    assert_int_equal(co_round_tick(f1.r, 5), MU_OK);
    co_status st;
    co_round_status(f1.r, 5, &st);
    assert_int_equal(st.phase, CO_PHASE_IDLE);
    assert_int_equal(st.orgs_connected, 4);
    assert_int_equal(co_round_tick(f1.r, 10), MU_OK);
    assert_int_equal(co_round_tick(f2.r, 0), MU_OK);
    assert_int_equal(co_round_tick(f2.r, 10), MU_OK);
    co_round_status(f1.r, 10, &st);
    assert_int_equal(st.phase, CO_PHASE_TRAIN);
    assert_int_equal(st.orgs_in_cohort, 2);
    uint32_t m1 = selected_mask(f1.r, &f1, 10), m2 = selected_mask(f2.r, &f2, 10);
    /* An org the transport saw go away no longer counts as connected. */
    assert_int_equal(co_round_disconnect(f1.r, f1.orgs[5].id), MU_OK);
    assert_int_equal(co_round_disconnect(f1.r, 77), MU_ERR_NOTFOUND);
    co_round_status(f1.r, 10, &st);
    assert_int_equal(st.orgs_connected, 5);
    assert_int_equal(__builtin_popcount(m1), 2);
    assert_int_equal(m1, m2);        /* same seed, same round, same connected orgs */
    assert_int_equal(m1 & ~0xfu, 0); /* only connected orgs */
    fed_free(&f1);
    fed_free(&f2);

    /* Over rounds the sample changes (all 6 connected: 3 per round). */
    cfg.wait_s = 0;
    fed f;
    fed_init(&f, &cfg, 6);
    uint32_t first = 0, union_mask = 0;
    for (int round = 0; round < 6; round++) {
        pull_all(&f);
        assert_int_equal(co_round_tick(f.r, f.now), MU_OK);
        uint32_t m = selected_mask(f.r, &f, f.now);
        assert_int_equal(__builtin_popcount(m), 3);
        if (round == 0)
            first = m;
        union_mask |= m;
        run_rounds(&f, 1);
    }
    assert_true(union_mask != first);
    fed_free(&f);
}

/* Kill-and-resume: a coordinator that checkpoints after round 1 and restarts from the file
 * ends round 2 with the same global bits and optimizer state as one that never stopped. */
static void test_resume_gives_same_bits(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    co_strategy_params_default(&cfg.strategy, CO_STRATEGY_FEDADAM);
    cfg.strategy.eta = 0.1;
    fed a, b;
    fed_init(&a, &cfg, 4);
    run_rounds(&a, 2);

    fed_init(&b, &cfg, 4);
    run_rounds(&b, 1);
    assert_int_equal(system("rm -rf co_round_resume && mkdir co_round_resume"), 0);
    uint8_t hash[CO_HASH_BYTES] = {9};
    co_checkpoint view, got;
    co_round_checkpoint_view(b.r, hash, &view);
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("co_round_resume", &view, &d), MU_OK);
    /* The "killed" coordinator is gone; a new one resumes from the file. */
    co_round_free(b.r);
    co_tensor t[2];
    make_tensors(t);
    b.r = co_round_new(&cfg, t, 2, &d);
    assert_non_null(b.r);
    assert_int_equal(co_checkpoint_load("co_round_resume", hash, 0, &got, &d), MU_OK);
    assert_int_equal(co_round_restore(b.r, &got, &d), MU_OK);
    co_checkpoint_deinit(&got);
    run_rounds(&b, 1);
    assert_int_equal(b.last.metrics.round, 2);
    size_t da, db;
    assert_memory_equal(co_round_global(a.r, &da), co_round_global(b.r, &db), DIM * sizeof(float));
    const co_strategy *sa_ = co_round_strategy(a.r), *sb = co_round_strategy(b.r);
    assert_int_equal(co_strategy_step(sa_), 2);
    assert_int_equal(co_strategy_step(sb), 2);
    assert_memory_equal(co_strategy_m(sa_), co_strategy_m(sb), DIM * sizeof(float));
    assert_memory_equal(co_strategy_v(sa_), co_strategy_v(sb), DIM * sizeof(float));
    fed_free(&a);
    fed_free(&b);
}

/* Each secure aggregation gets a fresh instance nonce: never zero, another in the next round,
 * and another for the same round in a restarted coordinator with the same config and seed. */
static void test_instance_nonce_fresh(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    fed a, b;
    fed_init(&a, &cfg, 4);
    run_rounds(&a, 1);
    uint8_t first[CO_SA_NONCE_BYTES];
    memcpy(first, a.last_nonce, sizeof first);
    assert_false(sodium_is_zero(first, sizeof first));
    run_rounds(&a, 1);
    assert_int_equal(a.last.metrics.round, 2);
    assert_false(sodium_is_zero(a.last_nonce, sizeof first));
    assert_memory_not_equal(a.last_nonce, first, sizeof first);
    fed_init(&b, &cfg, 4);
    run_rounds(&b, 1);
    assert_int_equal(b.last.metrics.round, 1);
    assert_int_equal(b.last.metrics.outcome, CO_ROUND_COMPLETED);
    assert_memory_not_equal(b.last_nonce, first, sizeof first);
    fed_free(&a);
    fed_free(&b);
}

/* A larger cohort on a SecAgg+ neighbour graph (not complete), with orgs dropping at two
 * different stages. */
/* Registration, a whole federation (train, train, eval: fewer rounds when one aborts) and a
 * restore, with the k-th allocation of the round machine failing, for every k until the
 * scenario runs with none failing. Each call fails with MU_ERR_NOMEM and changes nothing (the
 * fixture retries it: fed_try_init, tick, push) or succeeds; a round that runs out of memory
 * aborts and is still announced, queued and recorded; no leak (LeakSanitizer), no crash. */
static void test_nomem_every_allocation(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.eval_every = 2;
    cfg.rounds = 2;
    long k, aborted = 0;
    for (k = 0; k < 100000; k++) {
        nomem_arm(k);
        fed f;
        if (!fed_try_init(&f, &cfg, 3))
            continue;
        co_status st;
        for (int i = 0; i < 4; i++) {
            co_round_status(f.r, f.now, &st);
            if (st.phase == CO_PHASE_DONE)
                break;
            run_rounds(&f, 1);
        }
        assert_int_equal(st.phase, CO_PHASE_DONE);
        size_t nh;
        const co_metrics *h = co_round_history(f.r, &nh);
        assert_int_equal(nh, f.rounds_seen);
        assert_int_equal(f.n_starts, f.rounds_seen); /* every round started has ended */
        for (size_t i = 0; i < nh; i++) {
            if (h[i].outcome == CO_ROUND_ABORTED && !nomem_failed)
                fail_msg("round %zu aborted with no allocation failing", i + 1);
            aborted += h[i].outcome == CO_ROUND_ABORTED;
        }
        /* a checkpoint of it restores into a fresh coordinator */
        co_checkpoint view;
        uint8_t hash[CO_HASH_BYTES] = {0};
        co_round_checkpoint_view(f.r, hash, &view);
        co_tensor t[2];
        make_tensors(t);
        mu_diag d = {{0}};
        co_round *r2;
        NOMEM(r2 = co_round_new(&cfg, t, 2, &d));
        if (r2) {
            int rc;
            NOMEM(rc = co_round_restore(r2, &view, &d));
            if (rc == MU_ERR_NOMEM) /* restored nothing: restore again */
                NOMEM(rc = co_round_restore(r2, &view, &d));
            assert_int_equal(rc, MU_OK);
            size_t nh2, d1, d2;
            const co_metrics *h2 = co_round_history(r2, &nh2);
            assert_int_equal(nh2, nh);
            assert_memory_equal(h2, h, nh * sizeof *h);
            assert_memory_equal(co_round_global(r2, &d2), co_round_global(f.r, &d1),
                                DIM * sizeof(float));
            co_round_free(r2);
        }
        int failed = nomem_failed;
        fed_free(&f);
        if (!failed)
            break;
    }
    /* every allocation of the scenario failed once, and some failures aborted a round */
    assert_true(k > 50);
    assert_true(aborted > 0);
    print_message("co_round: %ld allocations failed in turn, %ld rounds aborted\n", k, aborted);
}

static void test_larger_cohort(void **state)
{
    (void)state;
    co_config cfg;
    base_config(&cfg);
    cfg.max_orgs = MAXN;
    /* a ring: since issue 10 the chosen graph for 40 orgs is the complete one */
    cfg.neighbours = 12;
    cfg.threshold = sa_min_threshold(MAXN, 12);
    fed f;
    fed_init(&f, &cfg, MAXN);
    float old[DIM];
    snapshot(&f, old);
    f.orgs[1].drop_at = SA_STAGE_SHARE;
    f.orgs[6].drop_at = SA_STAGE_UNMASK;
    f.orgs[20].drop_at = SA_STAGE_MASKED;
    run_rounds(&f, 1);
    if (f.last.metrics.outcome != CO_ROUND_COMPLETED)
        fail_msg("aborted: %s", f.last.reason);
    assert_true(f.last_k < MAXN - 1); /* a neighbour graph, not the complete one */
    print_message("n %d: k %u, t %u\n", MAXN, f.last_k, f.last_t);
    int in_sum[MAXN];
    for (int i = 0; i < MAXN; i++)
        in_sum[i] = i != 1 && i != 20;
    expect_global(&f, old, in_sum, 1);
    assert_int_equal(f.last.metrics.orgs_completed, MAXN - 2);
    fed_free(&f);
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    assert_int_equal(sa_init(), MU_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_round_and_checkpoint),
        cmocka_unit_test(test_dropout_each_stage),
        cmocka_unit_test(test_leave_each_stage),
        cmocka_unit_test(test_leave_edges),
        cmocka_unit_test(test_missed_deadlines),
        cmocka_unit_test(test_replay_out_of_order_unregistered),
        cmocka_unit_test(test_registration),
        cmocka_unit_test(test_waits_for_listed_orgs),
        cmocka_unit_test(test_overflow_refused_at_setup),
        cmocka_unit_test(test_abort_below_threshold),
        cmocka_unit_test(test_aborted_rounds_count),
        cmocka_unit_test(test_eval_rounds_and_done),
        cmocka_unit_test(test_eval_cohort_fixed),
        cmocka_unit_test(test_events_carry_the_log_lines),
        cmocka_unit_test(test_cohort_selection),
        cmocka_unit_test(test_resume_gives_same_bits),
        cmocka_unit_test(test_instance_nonce_fresh),
        cmocka_unit_test(test_larger_cohort),
        cmocka_unit_test(test_nomem_every_allocation),
    };
    if (getenv("CO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CO_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
