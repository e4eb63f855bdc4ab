/* A cheating coordinator against the real participant core (issue 10): the test plays the
 * coordinator (an sa_server it drives itself, and sa_clients under keys it holds) and hands
 * the target org crafted co_tasks through cl_participant_handle_task. Each attack is first run
 * against a target configured to let it through, to show that it does recover the target's
 * input, then against the real checks: the target refuses and its input is not recovered.
 *
 * Attack 1 (fake cohort): a cohort of the target plus keys the coordinator holds; the sum is
 * then the target's own input. Refused: a key not pinned, a pinned key listed twice, a cohort
 * below the org's minimum.
 *
 * Attack 3 (same-round replay): round R with {A, T, ...}, then R again with {A, ...} after a
 * coordinator (or org) restart: A retrains to the same update, so the difference of the sums
 * is T's input. Refused: A records R before its masked upload and will not aggregate R
 * again, with the record in memory (coordinator restart) or in a file (org restart).
 *
 * Attack 7 in evaluation rounds (the loss oracle): a coordinator that wants one org's held-out
 * loss. The EVAL report it asks for carries no numbers; the only way the loss leaves the org is
 * as the metric coordinates of the round's masked input, so the coordinator must get the
 * target into a "sum" of itself and keys it holds (attack 1 on an evaluation round), replay
 * the round (attack 3), or have the target mask it as a training round's input. A target that
 * trusts the coordinator's keys gives its loss away; the real checks refuse each one.
 *
 * Issue 13 (the noise an org adds): a coordinator that lowers ddg_noise below the org's pin,
 * or turns it off for an org that requires it, is refused before the org trains or
 * advertises; one that scales every org's noise for ddg_min survivors and then shows fewer
 * gets no unmask shares from the target, so the thin sum is never unmasked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_participant.h"
#include "client/cl_tiny.h"
#include "mu_log.h"
#include "sa_msg.h"

#define DIM      8
#define VD       (DIM + 1 + CO_METRIC_MAX_COORDS) /* room for the masked vector */
#define MAX_FAKE 8
#define SCALE    1048576.0 /* 2^20 */
#define TARGET   1u        /* the target's org id; the coordinator's own are 2, 3, ... */
#define ROUND    4u

/* The coordinator's side of one round: its own members (ids 2.., keys it made) and the
 * server. */
typedef struct {
    uint32_t n; /* cohort: the target and n - 1 coordinator members */
    uint32_t ids[MAX_FAKE + 1];
    uint8_t pks[MAX_FAKE + 1][CO_ORG_PK_BYTES];
    uint8_t sks[MAX_FAKE + 1][64];
    sa_client *fake[MAX_FAKE + 1]; /* [0] unused: the target */
    sa_server *server;
    co_round_config cfg;
    uint32_t input[MAX_FAKE + 1][VD]; /* the coordinator members' inputs (default 0) */
    int target_rc;                    /* the first error the target returned */
    uint32_t target_sent;             /* messages the target pushed in secure-aggregation stages */
    uint32_t sent_at[6];              /* of those, per stage */
    uint8_t *adv_target, *adv_member; /* recorded ADVERTISE of the target and of member 2 */
    size_t adv_target_len, adv_member_len;
    const sa_key_entry *swap; /* if set: put this entry in place of its id's in the target's KEYS */
    int stop_after;           /* if set: the coordinator stops (restarts) after closing it */
    uint32_t drop;            /* the last `drop` coordinator members never upload MASKED */
    cl_engine *engine;        /* an evaluating target's model (NULL: synthetic, dim DIM) */
    const float *global;      /* (cfg.dim) the adapter it evaluates */
    const co_round_config *masked_cfg; /* if set: the round config of the target's MASKED task */
} cheat;

/* The masked vector: w·Δ, w and the metric coordinates (co_wire.h) in a training round, the
 * metric coordinates alone in an evaluation round; at most VD values. */
static size_t vd(const cheat *ch)
{
    return co_secagg_dim(&ch->cfg);
}

static co_round_config round_cfg(uint32_t n)
{
    co_round_config c = {.round = ROUND,
                         .dim = DIM,
                         .steps = 1,
                         .lr = 0.01,
                         .batch = 1,
                         .seq = 4,
                         .bits = 32,
                         .clip = 1,
                         .scale = SCALE,
                         .weight_max = 1,
                         .quant_n = n};
    randombytes_buf(c.sa_nonce, sizeof c.sa_nonce); /* a fresh coordinator instance */
    sa_graph_params gp = sa_graph_params_default();
    assert_int_equal(sa_graph_choose(n, &gp, &c.k, &c.t), MU_OK);
    return c;
}

/* Coordinator members 2..n: fresh keys; `dup` > 0 gives member `dup` the key of member 2. */
static void cheat_init(cheat *ch, uint32_t n, uint32_t dup)
{
    memset(ch, 0, sizeof *ch);
    assert_true(n >= 2 && n <= MAX_FAKE + 1);
    ch->n = n;
    ch->cfg = round_cfg(n);
    for (uint32_t i = 0; i < n; i++)
        ch->ids[i] = TARGET + i;
    for (uint32_t i = 1; i < n; i++)
        crypto_sign_keypair(ch->pks[i], ch->sks[i]);
    if (dup) {
        memcpy(ch->pks[dup], ch->pks[1], 32);
        memcpy(ch->sks[dup], ch->sks[1], 64);
    }
}

static void cheat_free(cheat *ch)
{
    for (uint32_t i = 1; i < ch->n; i++)
        sa_client_free(ch->fake[i]);
    sa_server_free(ch->server);
    free(ch->adv_target);
    free(ch->adv_member);
    sodium_memzero(ch->sks, sizeof ch->sks);
}

/* A synthetic target (weight 1) pinning `roster`; its update seed goes to `seed`. */
static cl_participant *make_target(const cl_member *roster, size_t n_roster, uint32_t min_cohort,
                                   int allow_small, uint8_t seed[32])
{
    cl_participant_config pc = {.name = "target",
                                .synthetic = 1,
                                .synthetic_amp = 0.1,
                                .members = roster,
                                .n_members = n_roster,
                                .min_cohort = min_cohort,
                                .allow_small_cohort = allow_small};
    randombytes_buf(pc.seed, sizeof pc.seed);
    memcpy(seed, pc.seed, 32);
    uint8_t pk[32];
    crypto_sign_keypair(pk, pc.sign_sk);
    mu_diag d = {{0}};
    cl_participant *p = cl_participant_new(&pc, &d);
    if (!p)
        fail_msg("cl_participant_new: %s", d.msg);
    return p;
}

/* 1 when got (a recovered input) is the target's update: w·x·scale within the stochastic
 * rounding's one unit, and the weight coordinate exactly 1·scale. */
static int is_target_input(const uint32_t got[VD], const uint8_t seed[32])
{
    float x[DIM];
    cl_synthetic_update(x, DIM, seed, ROUND, 0.1);
    double norm = 0;
    for (int i = 0; i < DIM; i++)
        norm += (double)x[i] * x[i];
    double f = sqrt(norm) > 1 ? 1 / sqrt(norm) : 1; /* clip 1 */
    for (int i = 0; i < DIM; i++)
        if (fabs((double)sa_quant_signed(got[i], 32) - x[i] * f * SCALE) > 1.0)
            return 0;
    return got[DIM] == (uint32_t)SCALE;
}

/* Hands the target one task; counts what it pushes and keeps its first error. */
static void to_target(cheat *ch, cl_participant *p, co_task *t, cl_outbox *out)
{
    mu_diag d = {{0}};
    size_t before = out->count;
    int rc = cl_participant_handle_task(p, ch->engine, t, ch->global, ch->cfg.dim, out, &d);
    if (rc != MU_OK && ch->target_rc == MU_OK) {
        ch->target_rc = rc;
        print_message("target refused: %s\n", d.msg);
    }
    if (t->kind == CO_TASK_SECAGG) {
        ch->target_sent += (uint32_t)(out->count - before);
        ch->sent_at[t->stage < 6 ? t->stage : 0] += (uint32_t)(out->count - before);
    }
}

static uint8_t *copy_of(const uint8_t *b, size_t len)
{
    uint8_t *c = malloc(len);
    assert_non_null(c);
    memcpy(c, b, len);
    return c;
}

/* The KEYS for the target with ch->swap in place of the entry of the same id: a new buffer
 * (*len) the caller frees. */
static uint8_t *swapped_keys(const cheat *ch, const uint8_t *b, size_t *len)
{
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, b, *len, NULL), MU_OK);
    assert_int_equal(m.type, SA_MSG_KEYS);
    int found = 0;
    for (size_t i = 0; i < m.n_keys; i++)
        if (m.keys[i].id == ch->swap->id) {
            m.keys[i] = *ch->swap;
            found = 1;
        }
    assert_true(found);
    uint8_t *out;
    assert_int_equal(sa_msg_encode_alloc(&m, &out, len), MU_OK);
    sa_msg_deinit(&m);
    return out;
}

/* Delivers the server's messages of one closed stage: the target's as a SECAGG task of
 * `stage`, the coordinator members' straight to their clients; their replies (and the
 * target's) go to the server. */
static void deliver(cheat *ch, cl_participant *p, sa_outbox *sob, uint8_t stage)
{
    cl_outbox out;
    cl_outbox_init(&out);
    sa_outbox replies;
    sa_outbox_init(&replies);
    uint32_t rec[MAX_FAKE + 1];
    for (size_t m = 0; m < sob->count; m++) {
        const sa_envelope *e = &sob->items[m];
        size_t nr = 1;
        if (e->to == SA_TO_ALL)
            nr = sa_server_recipients(ch->server, rec, MAX_FAKE + 1);
        else
            rec[0] = e->to;
        for (size_t r = 0; r < nr; r++) {
            uint32_t i = rec[r] - TARGET;
            if (i == 0) {
                co_task t = {.kind = CO_TASK_SECAGG, .org_id = TARGET, .stage = stage};
                t.cfg = ch->masked_cfg && stage == SA_STAGE_MASKED ? *ch->masked_cfg : ch->cfg;
                size_t len = e->len;
                uint8_t *swapped = NULL;
                if (ch->swap && stage == SA_STAGE_SHARE)
                    swapped = swapped_keys(ch, e->bytes, &len);
                t.sa_msg = swapped ? swapped : e->bytes;
                t.sa_len = len;
                to_target(ch, p, &t, &out);
                free(swapped);
            } else if (ch->fake[i] && !(stage == SA_STAGE_MASKED && i >= ch->n - ch->drop)) {
                sa_client_handle(ch->fake[i], e->bytes, e->len, &replies, NULL);
                for (size_t k = 0; k < replies.count; k++)
                    sa_server_handle(ch->server, rec[r], replies.items[k].bytes,
                                     replies.items[k].len, NULL, NULL);
                sa_outbox_clear(&replies);
            }
        }
    }
    for (size_t m = 0; m < out.count; m++)
        sa_server_handle(ch->server, TARGET, out.items[m].bytes, out.items[m].len, NULL, NULL);
    cl_outbox_deinit(&out);
    sa_outbox_deinit(&replies);
}

/* The coordinator's sa_config for the round (ch->pks[0] must hold the target's key). */
static sa_config sa_config_of(const cheat *ch)
{
    sa_config sc = {.round_id = ROUND,
                    .n = ch->n,
                    .org_ids = ch->ids,
                    .sign_pks = (const uint8_t(*)[SA_SIGN_PK_BYTES])ch->pks,
                    .d = (uint32_t)vd(ch),
                    .bits = ch->cfg.bits,
                    .k = ch->cfg.k,
                    .t = ch->cfg.t};
    memcpy(sc.instance_nonce, ch->cfg.sa_nonce, SA_INSTANCE_NONCE_BYTES);
    return sc;
}

/* Runs the round with the target; returns 1 and fills `got` (the sum of the inputs: with the
 * coordinator members' default zero inputs, the target's input) when the server finished,
 * else 0. */
static int cheat_run(cheat *ch, cl_participant *p, uint32_t got[VD])
{
    memcpy(ch->pks[0], cl_participant_pk(p), 32);
    co_task t = {.kind = ch->cfg.kind == CO_ROUND_EVAL ? CO_TASK_EVAL : CO_TASK_TRAIN,
                 .org_id = TARGET,
                 .cfg = ch->cfg};
    cl_outbox out;
    cl_outbox_init(&out);
    to_target(ch, p, &t, &out); /* READY or EVAL */
    assert_int_equal(out.count, 1);
    cl_outbox_clear(&out);
    sa_config sc = sa_config_of(ch);
    mu_diag d = {{0}};
    if (!(ch->server = sa_server_new(&sc, &d)))
        fail_msg("sa_server_new: %s", d.msg);
    co_task adv = {.kind = CO_TASK_SECAGG,
                   .org_id = TARGET,
                   .stage = SA_STAGE_ADVERTISE,
                   .cfg = ch->cfg,
                   .n_cohort = ch->n,
                   .cohort_ids = ch->ids,
                   .cohort_pks = ch->pks};
    to_target(ch, p, &adv, &out);
    for (size_t m = 0; m < out.count; m++) {
        sa_msg_type type;
        uint32_t org;
        if (!ch->adv_target &&
            sa_msg_peek(out.items[m].bytes, out.items[m].len, &type, &org) == MU_OK &&
            type == SA_MSG_ADVERTISE) {
            ch->adv_target = copy_of(out.items[m].bytes, out.items[m].len);
            ch->adv_target_len = out.items[m].len;
        }
        sa_server_handle(ch->server, TARGET, out.items[m].bytes, out.items[m].len, NULL, NULL);
    }
    cl_outbox_deinit(&out);
    for (uint32_t i = 1; i < ch->n; i++) {
        ch->fake[i] = sa_client_new(&sc, ch->ids[i], ch->sks[i], NULL, &d);
        if (!ch->fake[i])
            fail_msg("sa_client_new: %s", d.msg);
        assert_int_equal(sa_client_set_input(ch->fake[i], ch->input[i], vd(ch)), MU_OK);
    }
    for (int stage = SA_STAGE_ADVERTISE; stage <= SA_STAGE_UNMASK; stage++) {
        /* the coordinator's members answer every stage (their first message is ADVERTISE) */
        for (uint32_t i = 1; i < ch->n && stage == SA_STAGE_ADVERTISE; i++) {
            sa_outbox o;
            sa_outbox_init(&o);
            assert_int_equal(sa_client_start(ch->fake[i], &o, NULL), MU_OK);
            if (i == 1 && o.count == 1) {
                ch->adv_member = copy_of(o.items[0].bytes, o.items[0].len);
                ch->adv_member_len = o.items[0].len;
            }
            for (size_t m = 0; m < o.count; m++)
                sa_server_handle(ch->server, ch->ids[i], o.items[m].bytes, o.items[m].len, NULL,
                                 NULL);
            sa_outbox_deinit(&o);
        }
        sa_outbox sob;
        sa_outbox_init(&sob);
        int rc = sa_server_close_stage(ch->server, (sa_stage)stage, &sob, &d);
        if (rc != MU_OK || ch->stop_after == stage) {
            sa_outbox_deinit(&sob);
            return 0;
        }
        if (stage < SA_STAGE_UNMASK)
            deliver(ch, p, &sob, (uint8_t)(stage + 1));
        sa_outbox_deinit(&sob);
    }
    const uint32_t *sum;
    size_t dd;
    if (sa_server_result(ch->server, &sum, &dd) != MU_OK)
        return 0;
    assert_int_equal(dd, vd(ch));
    memcpy(got, sum, sizeof(uint32_t) * dd);
    return 1;
}

/* The roster a target pins: the coordinator members' keys (from == 1: as if the target
 * trusted them) or other keys (honest members the coordinator does not hold). */
static size_t roster_of(const cheat *ch, int trusted, cl_member *r)
{
    for (uint32_t i = 1; i < ch->n; i++) {
        snprintf(r[i - 1].name, sizeof r[i - 1].name, "member-%u", i);
        if (trusted) {
            memcpy(r[i - 1].pk, ch->pks[i], 32);
        } else {
            uint8_t sk[64];
            crypto_sign_keypair(r[i - 1].pk, sk);
        }
    }
    return ch->n - 1;
}

/* The harness is a real attack: a target that trusts the coordinator's keys and accepts a
 * cohort of 2 (what the code did before) gives its exact input away. */
static void test_fake_cohort_works_without_checks(void **state)
{
    (void)state;
    for (uint32_t n = 2; n <= 5; n += 3) {
        cheat ch;
        cheat_init(&ch, n, 0);
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&ch, 1, roster);
        uint8_t seed[32];
        cl_participant *p = make_target(roster, nr, 2, 1, seed);
        uint32_t got[VD];
        assert_true(cheat_run(&ch, p, got));
        assert_int_equal(ch.target_rc, MU_OK);
        assert_true(is_target_input(got, seed));
        cl_participant_free(p);
        cheat_free(&ch);
    }
}

/* Keys the target did not pin, in a cohort big enough: refused at ADVERTISE, nothing sent,
 * the input is not recovered. */
static void test_fake_cohort_unpinned_keys(void **state)
{
    (void)state;
    cheat ch;
    cheat_init(&ch, 5, 0);
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&ch, 0, roster);
    uint8_t seed[32];
    cl_participant *p = make_target(roster, nr, 0, 0, seed);
    uint32_t got[VD];
    int done = cheat_run(&ch, p, got);
    assert_int_equal(ch.target_rc, MU_ERR_INVALID);
    assert_int_equal(ch.target_sent, 0);
    assert_false(done && is_target_input(got, seed));
    cl_participant_free(p);
    cheat_free(&ch);
    /* one unpinned key among pinned ones is enough to refuse */
    cheat_init(&ch, 6, 0);
    nr = roster_of(&ch, 1, roster);
    uint8_t sk[64];
    crypto_sign_keypair(roster[2].pk, sk); /* member 3 is not the key the target pinned */
    p = make_target(roster, nr, 0, 0, seed);
    done = cheat_run(&ch, p, got);
    assert_int_equal(ch.target_rc, MU_ERR_INVALID);
    assert_int_equal(ch.target_sent, 0);
    assert_false(done && is_target_input(got, seed));
    cl_participant_free(p);
    cheat_free(&ch);
}

/* Pinned keys, but fewer than the minimum: the default 5 (and a configured 7) refuse a
 * cohort of 2 and of 5; min_cohort cannot be lowered without allow_small_cohort. */
static void test_fake_cohort_too_small(void **state)
{
    (void)state;
    static const struct {
        uint32_t n, min;
    } cases[] = {{2, 0}, {4, 0}, {5, 7}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cheat ch;
        cheat_init(&ch, cases[c].n, 0);
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&ch, 1, roster);
        uint8_t seed[32];
        cl_participant *p = make_target(roster, nr, cases[c].min, 0, seed);
        uint32_t got[VD];
        int done = cheat_run(&ch, p, got);
        assert_int_equal(ch.target_rc, MU_ERR_INVALID);
        assert_int_equal(ch.target_sent, 0);
        assert_false(done && is_target_input(got, seed));
        cl_participant_free(p);
        cheat_free(&ch);
    }
    cl_participant_config pc = {.name = "x", .min_cohort = CL_MIN_COHORT - 1};
    mu_diag d = {{0}};
    assert_null(cl_participant_new(&pc, &d));
    assert_non_null(strstr(d.msg, "can only be raised"));
}

/* A cohort of 5 whose two coordinator members share one pinned key (one real member counted
 * twice, so the cohort is really smaller): refused. */
static void test_fake_cohort_duplicate_key(void **state)
{
    (void)state;
    cheat ch;
    cheat_init(&ch, 5, 3);
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&ch, 1, roster);
    uint8_t seed[32];
    cl_participant *p = make_target(roster, nr, 0, 0, seed);
    uint32_t got[VD];
    int done = cheat_run(&ch, p, got);
    assert_int_equal(ch.target_rc, MU_ERR_INVALID);
    assert_int_equal(ch.target_sent, 0);
    assert_false(done && is_target_input(got, seed));
    cl_participant_free(p);
    cheat_free(&ch);
}

/* ---- attack 3: same-round replay ------------------------------------------------------- */

/* Org A as a driver makes it after a restart: the same key, seed and record (`rounds`; NULL
 * for a participant that keeps its own, as before the fix). Deterministic, so its update and
 * rounding repeat. */
static cl_participant *make_org_a(const cl_member *roster, size_t nr, const uint8_t sk[64],
                                  cl_round_log *rounds)
{
    cl_participant_config pc = {.name = "org-a",
                                .synthetic = 1,
                                .synthetic_amp = 0.1,
                                .deterministic = 1,
                                .members = roster,
                                .n_members = nr,
                                .rounds = rounds};
    memcpy(pc.sign_sk, sk, 64);
    memset(pc.seed, 7, sizeof pc.seed);
    mu_diag d = {{0}};
    cl_participant *p = cl_participant_new(&pc, &d);
    if (!p)
        fail_msg("cl_participant_new: %s", d.msg);
    return p;
}

/* Runs R with {A, T, 3 coordinator members}, then R with {A, 4 coordinator members}, A being
 * a new participant each time with `log1`, `log2` as its record. Returns 1 when both sums
 * came out and their difference is T's input. */
static int replay_attack(cl_round_log *log1, cl_round_log *log2, int *rc2, uint32_t *sent2)
{
    uint8_t pk_a[32], sk_a[64];
    crypto_sign_keypair(pk_a, sk_a);
    cheat one, two;
    cheat_init(&one, 5, 0);
    cheat_init(&two, 5, 0);
    memcpy(two.pks[1], one.pks[1], 32); /* the same coordinator members, and member 2 of */
    memcpy(two.sks[1], one.sks[1], 64); /* the first run is T, an honest org: input x */
    for (int i = 0; i <= DIM; i++)
        one.input[1][i] = (uint32_t)randombytes_uniform(1u << 20);
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&one, 1, roster);
    memcpy(roster[nr].pk, two.pks[4], 32); /* A pins everyone it aggregates with */
    snprintf(roster[nr].name, sizeof roster[nr].name, "member-5");
    nr++;
    for (uint32_t i = 2; i < 5; i++) { /* run 2's other members: pinned too */
        memcpy(roster[nr].pk, two.pks[i], 32);
        snprintf(roster[nr].name, sizeof roster[nr].name, "member-%u", 4 + i);
        nr++;
    }
    cl_participant *a = make_org_a(roster, nr, sk_a, log1);
    uint32_t sum1[VD], sum2[VD];
    int ok1 = cheat_run(&one, a, sum1);
    assert_int_equal(one.target_rc, MU_OK);
    cl_participant_free(a); /* the coordinator restarts: the driver makes A anew */
    a = make_org_a(roster, nr, sk_a, log2);
    int ok2 = cheat_run(&two, a, sum2);
    *rc2 = two.target_rc;
    *sent2 = two.target_sent;
    cl_participant_free(a);
    int recovered = ok1 && ok2;
    for (int i = 0; recovered && i <= DIM; i++)
        recovered = sum1[i] - sum2[i] == one.input[1][i];
    cheat_free(&one);
    cheat_free(&two);
    sodium_memzero(sk_a, sizeof sk_a);
    return recovered;
}

/* Without a record that outlives the participant (what the code did before), the replay
 * recovers T's exact input. */
static void test_replay_works_without_record(void **state)
{
    (void)state;
    int rc2;
    uint32_t sent2;
    assert_true(replay_attack(NULL, NULL, &rc2, &sent2));
    assert_int_equal(rc2, MU_OK);
}

/* With the driver's record (memory, as the simulator keeps it across coordinator restarts),
 * A refuses the second secure aggregation of R at ADVERTISE: nothing sent, T not recovered. */
static void test_replay_refused_memory(void **state)
{
    (void)state;
    static const uint8_t fed[CL_FEDERATION_BYTES] = {1};
    cl_round_log *log = cl_round_log_open(NULL, fed, NULL);
    assert_non_null(log);
    int rc2;
    uint32_t sent2;
    assert_false(replay_attack(log, log, &rc2, &sent2));
    assert_int_equal(rc2, MU_ERR_ABORT);
    assert_int_equal(sent2, 0);
    assert_true(cl_round_log_has(log, ROUND));
    cl_round_log_free(log);
}

/* With a file (join: next to the identity key), across the org's own restart: the record is
 * read back and the replay refused; another federation's rounds do not count; a damaged file
 * is refused naming its line. */
static void test_replay_refused_file(void **state)
{
    (void)state;
    const char *path = "cl_cheat.rounds";
    unlink(path);
    static const uint8_t fed[CL_FEDERATION_BYTES] = {2}, other[CL_FEDERATION_BYTES] = {3};
    mu_diag d = {{0}};
    cl_round_log *l1 = cl_round_log_open(path, other, &d);
    assert_non_null(l1);
    assert_int_equal(cl_round_log_add(l1, ROUND + 1, &d), MU_OK);
    cl_round_log_free(l1);
    l1 = cl_round_log_open(path, fed, &d);
    assert_non_null(l1);
    assert_false(cl_round_log_has(l1, ROUND + 1)); /* another federation's */
    /* run 1 records R in the file; the org restarts: run 2 reads it back from the file */
    cl_round_log *l2 = NULL;
    int rc2;
    uint32_t sent2;
    uint8_t pk_a[32], sk_a[64];
    crypto_sign_keypair(pk_a, sk_a);
    (void)pk_a;
    {
        cheat one;
        cheat_init(&one, 5, 0);
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&one, 1, roster);
        cl_participant *a = make_org_a(roster, nr, sk_a, l1);
        uint32_t sum[VD];
        assert_true(cheat_run(&one, a, sum));
        cl_participant_free(a);
        cl_round_log_free(l1);
        l2 = cl_round_log_open(path, fed, &d);
        assert_non_null(l2);
        assert_true(cl_round_log_has(l2, ROUND));
        cheat two;
        cheat_init(&two, 5, 0);
        memcpy(two.pks[1], one.pks[1], 32 * 4);
        memcpy(two.sks[1], one.sks[1], 64 * 4);
        a = make_org_a(roster, nr, sk_a, l2);
        int ok = cheat_run(&two, a, sum);
        rc2 = two.target_rc;
        sent2 = two.target_sent;
        assert_false(ok && is_target_input(sum, (const uint8_t[32]){7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                                    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                                    7, 7, 7, 7, 7, 7, 7, 7, 7, 7}));
        cl_participant_free(a);
        cheat_free(&one);
        cheat_free(&two);
    }
    assert_int_equal(rc2, MU_ERR_ABORT);
    assert_int_equal(sent2, 0);
    cl_round_log_free(l2);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("not a record\n", f);
    fclose(f);
    assert_null(cl_round_log_open(path, fed, &d));
    assert_non_null(strstr(d.msg, "cl_cheat.rounds:3:"));
    unlink(path);
    sodium_memzero(sk_a, sizeof sk_a);
}

/* ---- signed messages of one instance of a round replayed in another ---------------------- */

/* Outcome of two_instances. */
typedef struct {
    int adv_rc;           /* the restarted coordinator's server on the target's old ADVERTISE */
    int done;             /* instance 2 produced a sum */
    int recovered;        /* ... and it is the target's input */
    int target_rc;        /* the target's first error in instance 2 */
    uint32_t shares_sent; /* SHARES the target sent in instance 2 */
} instances;

/* Instance 1 of round R stops after ADVERTISE (the coordinator restarts); instance 2 runs R
 * again with the same members and a fresh instance nonce, or (fresh == 0: no freshness, as
 * before the nonce was wired) the same one. With `swap`, the target's KEYS in instance 2 carries
 * member 2's instance-1 advertisement in place of its new one. */
static instances two_instances(int fresh, int swap)
{
    cheat one, two;
    cheat_init(&one, 5, 0);
    cheat_init(&two, 5, 0);
    memcpy(two.pks[1], one.pks[1], 32 * 4); /* the same members in both instances */
    memcpy(two.sks[1], one.sks[1], 64 * 4);
    if (!fresh)
        memcpy(two.cfg.sa_nonce, one.cfg.sa_nonce, CO_SA_NONCE_BYTES);
    assert_true(sodium_memcmp(two.cfg.sa_nonce, one.cfg.sa_nonce, CO_SA_NONCE_BYTES) != 0 ||
                !fresh);
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&one, 1, roster);
    uint8_t seed[32];
    cl_participant *p = make_target(roster, nr, 0, 0, seed);
    one.stop_after = SA_STAGE_ADVERTISE;
    uint32_t got[VD];
    assert_false(cheat_run(&one, p, got));
    assert_int_equal(one.target_rc, MU_OK);
    assert_non_null(one.adv_target);
    assert_non_null(one.adv_member);
    instances r = {0};
    memcpy(two.pks[0], cl_participant_pk(p), 32);
    sa_config sc = sa_config_of(&two);
    mu_diag d = {{0}};
    sa_server *restarted = sa_server_new(&sc, &d);
    assert_non_null(restarted);
    r.adv_rc = sa_server_handle(restarted, TARGET, one.adv_target, one.adv_target_len, NULL, &d);
    sa_server_free(restarted);
    sa_msg old;
    assert_int_equal(sa_msg_decode(&old, one.adv_member, one.adv_member_len, NULL), MU_OK);
    if (swap)
        two.swap = &old.adv;
    r.done = cheat_run(&two, p, got);
    r.recovered = r.done && is_target_input(got, seed);
    r.target_rc = two.target_rc;
    r.shares_sent = two.sent_at[SA_STAGE_SHARE];
    sa_msg_deinit(&old);
    cl_participant_free(p);
    cheat_free(&one);
    cheat_free(&two);
    return r;
}

/* Without a fresh nonce both replays go through: the restarted coordinator accepts the old
 * ADVERTISE, and the target takes the old advertisement of its neighbour and sends it a share
 * (the harness can see a working replay). */
static void test_instance_replay_works_without_fresh_nonce(void **state)
{
    (void)state;
    instances r = two_instances(0, 1);
    assert_int_equal(r.adv_rc, MU_OK);
    assert_int_equal(r.target_rc, MU_OK);
    assert_int_equal(r.shares_sent, 1);
}

/* With a fresh nonce per instance (what co_round draws): the old ADVERTISE is refused by the
 * restarted coordinator, and the target refuses a KEYS carrying its neighbour's old
 * advertisement (a signature that no longer verifies) before it sends a share. */
static void test_instance_replay_refused(void **state)
{
    (void)state;
    instances r = two_instances(1, 1);
    assert_int_equal(r.adv_rc, MU_ERR_FORMAT); /* bound to another config hash */
    assert_int_equal(r.target_rc, MU_ERR_CRYPTO);
    assert_int_equal(r.shares_sent, 0);
    assert_false(r.recovered);
}

/* The honest instance 2 after the restart gives the exact sum (here: the target's input, the
 * coordinator's members adding 0). */
static void test_instance_restart_exact_sum(void **state)
{
    (void)state;
    instances r = two_instances(1, 0);
    assert_int_equal(r.adv_rc, MU_ERR_FORMAT);
    assert_int_equal(r.target_rc, MU_OK);
    assert_int_equal(r.shares_sent, 1);
    assert_true(r.done && r.recovered);
}

/* A SECAGG task without a nonce is refused before anything is sent. */
static void test_no_nonce_refused(void **state)
{
    (void)state;
    cheat ch;
    cheat_init(&ch, 5, 0);
    memset(ch.cfg.sa_nonce, 0, sizeof ch.cfg.sa_nonce);
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&ch, 1, roster);
    uint8_t seed[32];
    cl_participant *p = make_target(roster, nr, 0, 0, seed);
    uint32_t got[VD];
    int done = cheat_run(&ch, p, got);
    assert_int_equal(ch.target_rc, MU_ERR_INVALID);
    assert_int_equal(ch.target_sent, 0);
    assert_false(done && is_target_input(got, seed));
    cl_participant_free(p);
    cheat_free(&ch);
}

/* A synthetic target pinning `roster` with the noise pin (min_noise, require). */
static cl_participant *make_pinned(const cl_member *roster, size_t nr, double min_noise,
                                   int require, uint8_t seed[32])
{
    cl_participant_config pc = {.name = "target",
                                .synthetic = 1,
                                .synthetic_amp = 0.1,
                                .members = roster,
                                .n_members = nr,
                                .min_cohort = 2,
                                .allow_small_cohort = 1,
                                .min_ddg_noise = min_noise,
                                .require_ddg = require};
    randombytes_buf(pc.seed, sizeof pc.seed);
    memcpy(seed, pc.seed, 32);
    uint8_t pk[32];
    crypto_sign_keypair(pk, pc.sign_sk);
    mu_diag d = {{0}};
    cl_participant *p = cl_participant_new(&pc, &d);
    if (!p)
        fail_msg("cl_participant_new: %s", d.msg);
    return p;
}

/* What the target pushes for a TRAIN and an ADVERTISE task of ch->cfg (ddg_noise `z`, ddg_min
 * `m`): MU_OK and 2 messages when it takes the round, else its first error and 0 messages. */
static int pin_round(cheat *ch, cl_participant *p, double z, uint32_t m, uint32_t *sent)
{
    ch->cfg.ddg_noise = z;
    ch->cfg.ddg_min = z > 0 ? m : 0;
    memcpy(ch->pks[0], cl_participant_pk(p), 32);
    cl_outbox out;
    cl_outbox_init(&out);
    co_task t = {.kind = CO_TASK_TRAIN, .org_id = TARGET, .cfg = ch->cfg};
    co_task adv = {.kind = CO_TASK_SECAGG,
                   .org_id = TARGET,
                   .stage = SA_STAGE_ADVERTISE,
                   .cfg = ch->cfg,
                   .n_cohort = ch->n,
                   .cohort_ids = ch->ids,
                   .cohort_pks = ch->pks};
    mu_diag d = {{0}};
    int rc = cl_participant_handle_task(p, NULL, &t, NULL, DIM, &out, &d);
    if (rc == MU_OK)
        rc = cl_participant_handle_task(p, NULL, &adv, NULL, DIM, &out, &d);
    else /* an org whose TRAIN was refused sends nothing for the ADVERTISE either */
        assert_int_not_equal(cl_participant_handle_task(p, NULL, &adv, NULL, DIM, &out, NULL),
                             MU_OK);
    if (rc != MU_OK)
        print_message("target refused: %s\n", d.msg);
    *sent = (uint32_t)out.count;
    cl_outbox_deinit(&out);
    return rc;
}

/* The org's noise pin: at or above min_ddg_noise 2 the round is taken; 1.5 (a coordinator
 * lowering the federation's noise) is refused at TRAIN and at ADVERTISE, nothing sent; noise
 * off is refused only by an org that requires it. */
static void test_ddg_noise_below_pin_refused(void **state)
{
    (void)state;
    static const struct {
        double pin, z;
        int require, ok;
    } cases[] = {{2, 2, 0, 1},   {2, 3, 1, 1}, {2, 1.5, 0, 0}, {2, 1.5, 1, 0},
                 {0, 1.5, 0, 1}, {2, 0, 0, 1}, {2, 0, 1, 0},   {0, 0, 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cheat ch;
        cheat_init(&ch, 5, 0);
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&ch, 1, roster);
        uint8_t seed[32];
        cl_participant *p = make_pinned(roster, nr, cases[i].pin, cases[i].require, seed);
        uint32_t sent = 0;
        int rc = pin_round(&ch, p, cases[i].z, 5, &sent);
        print_message("pin %g require %d noise %g: rc %d, %u sent\n", cases[i].pin,
                      cases[i].require, cases[i].z, rc, sent);
        assert_int_equal(rc, cases[i].ok ? MU_OK : MU_ERR_INVALID);
        assert_int_equal(sent, cases[i].ok ? 2 : 0);
        cl_participant_free(p);
        cheat_free(&ch);
    }
}

/* ddg_min beyond the cohort: every org's noise would be scaled for survivors that cannot
 * exist. Refused at ADVERTISE (its TRAIN is taken: the cohort is not known yet). */
static void test_ddg_min_beyond_cohort_refused(void **state)
{
    (void)state;
    cheat ch;
    cheat_init(&ch, 5, 0);
    ch.cfg.quant_n = 9; /* the coordinator claims a larger federation */
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&ch, 1, roster);
    uint8_t seed[32];
    cl_participant *p = make_pinned(roster, nr, 0, 0, seed);
    uint32_t sent = 0;
    assert_int_equal(pin_round(&ch, p, 1, 6, &sent), MU_ERR_INVALID);
    assert_int_equal(sent, 1); /* READY only */
    cl_participant_free(p);
    cheat_free(&ch);
}

/* ddg_min = n = 7 (each org's noise scaled for 7 survivors), then 2 coordinator members never
 * upload: a survivor set of 5, which secure_agg's own minimum (t = 5 here) allows. The target
 * sends nothing in UNMASK and, with t = 5, the coordinator's 4 surviving members cannot
 * unmask the sum. With all 7 uploading the same round unmasks, and its unnoised metric
 * coordinates are exactly the sum of the 7 orgs'. */
static void test_ddg_survivors_below_ddg_min(void **state)
{
    (void)state;
    for (int honest = 0; honest <= 1; honest++) {
        cheat ch;
        cheat_init(&ch, 7, 0);
        ch.cfg.ddg_noise = 1;
        ch.cfg.ddg_min = 7;
        ch.cfg.scale = 65536; /* the per-org noise variance within the sampler's range */
        ch.drop = honest ? 0 : 2;
        assert_true(sa_min_survivors(ch.n, ch.cfg.t) <= ch.n - 2); /* the attack passes sa */
        uint32_t m = (uint32_t)co_metric_coords(ch.cfg.bits, ch.cfg.quant_n);
        for (uint32_t i = 1; i < ch.n; i++)
            for (uint32_t j = 0; j < m; j++)
                ch.input[i][DIM + 1 + j] = 1000 * i + j;
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&ch, 1, roster);
        uint8_t seed[32];
        cl_participant *p = make_pinned(roster, nr, 1, 1, seed);
        uint32_t got[VD];
        int done = cheat_run(&ch, p, got);
        print_message("drop %u: done %d, target rc %d, sent in MASKED %u, in UNMASK %u\n", ch.drop,
                      done, ch.target_rc, ch.sent_at[SA_STAGE_MASKED], ch.sent_at[SA_STAGE_UNMASK]);
        assert_int_equal(ch.sent_at[SA_STAGE_MASKED], 1);
        if (honest) {
            assert_true(done);
            assert_int_equal(ch.target_rc, MU_OK);
            assert_int_equal(ch.sent_at[SA_STAGE_UNMASK], 1);
            uint32_t want[VD] = {0};
            uint32_t mine[VD] = {0};
            assert_int_equal(co_metric_encode(mine, m, 0, 0, ch.cfg.bits, ch.cfg.quant_n, NULL),
                             MU_OK);
            for (uint32_t j = 0; j < m; j++) {
                want[j] = mine[j];
                for (uint32_t i = 1; i < ch.n; i++)
                    want[j] += ch.input[i][DIM + 1 + j];
                assert_int_equal(got[DIM + 1 + j], want[j]);
            }
        } else {
            assert_false(done);
            assert_int_equal(ch.target_rc, MU_ERR_ABORT);
            assert_int_equal(ch.sent_at[SA_STAGE_UNMASK], 0);
            assert_int_equal(ch.sent_at[SA_STAGE_CONSISTENCY], 0);
        }
        cl_participant_free(p);
        cheat_free(&ch);
    }
}

/* The MASKED task's noise must be the one the org advertised for: a coordinator that lowers
 * ddg_noise (0.5 or off), changes ddg_min (7 to 5: noise scaled for fewer survivors than its
 * advertised survivor minimum) or raises the noise between ADVERTISE and MASKED gets no masked
 * input from the org (it checks before it encodes) and nothing after; the same values
 * (control) give the input. The org has no pin here: only this check stands in the way. */
static void test_ddg_changed_at_masked_refused(void **state)
{
    (void)state;
    const struct {
        double z;
        uint32_t m;
    } at_masked[] = {{1, 7}, {0.5, 7}, {0, 0}, {1, 5}, {2, 7}};
    for (size_t c = 0; c < sizeof at_masked / sizeof at_masked[0]; c++) {
        cheat ch;
        cheat_init(&ch, 7, 0);
        ch.cfg.ddg_noise = 1;
        ch.cfg.ddg_min = 7;
        ch.cfg.scale = 65536;
        co_round_config mc = ch.cfg;
        mc.ddg_noise = at_masked[c].z;
        mc.ddg_min = at_masked[c].m;
        ch.masked_cfg = &mc;
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&ch, 1, roster);
        uint8_t seed[32];
        cl_participant *p = make_pinned(roster, nr, 0, 0, seed);
        uint32_t got[VD];
        int done = cheat_run(&ch, p, got);
        print_message("MASKED with ddg_noise %g, ddg_min %u: done %d, target rc %d, sent in MASKED "
                      "%u\n",
                      mc.ddg_noise, mc.ddg_min, done, ch.target_rc, ch.sent_at[SA_STAGE_MASKED]);
        if (c == 0) {
            assert_true(done);
            assert_int_equal(ch.target_rc, MU_OK);
            assert_int_equal(ch.sent_at[SA_STAGE_MASKED], 1);
        } else { /* the others' sum may still complete, without the target */
            assert_int_equal(ch.target_rc, MU_ERR_INVALID);
            assert_int_equal(ch.sent_at[SA_STAGE_MASKED], 0);
            assert_int_equal(ch.sent_at[SA_STAGE_UNMASK], 0);
        }
        cl_participant_free(p);
        cheat_free(&ch);
    }
}

/* ---- attack 7: one org's held-out loss out of an evaluation round --------------------- */

typedef struct {
    cl_engine *e;
    float *global; /* (dim) zeros: the LoRA B of a fresh adapter */
    size_t dim;
    int32_t tok[200]; /* the target's held-out tokens */
} eval_model;

static void eval_model_init(eval_model *m)
{
    tr_lora_config lc = {.rank = 2, .alpha = 4, .targets = TR_T_C_ATTN | TR_T_C_FC, .freeze_a = 1};
    m->e = cl_engine_from_model(tiny_model(1), &lc, 42, NULL);
    assert_non_null(m->e);
    m->dim = cl_engine_dim(m->e);
    m->global = calloc(m->dim, sizeof *m->global);
    assert_non_null(m->global);
    tiny_tokens(m->tok, 200, 5, 11);
}

static void eval_model_free(eval_model *m)
{
    cl_engine_free(m->e);
    free(m->global);
}

/* An evaluation round of ch's cohort on m's model. */
static void cheat_eval(cheat *ch, const eval_model *m)
{
    ch->cfg.kind = CO_ROUND_EVAL;
    ch->cfg.dim = (uint32_t)m->dim;
    ch->cfg.batch = 2;
    ch->cfg.seq = 8;
    ch->engine = m->e;
    ch->global = m->global;
}

/* A target that evaluates on its 200 held-out tokens (24 windows of 8), pinning `roster`. */
static cl_participant *make_eval_target(const eval_model *m, const cl_member *roster,
                                        size_t n_roster, uint32_t min_cohort, int allow_small)
{
    cl_participant_config pc = {.name = "target",
                                .eval_tokens = m->tok,
                                .n_eval = 200,
                                .members = roster,
                                .n_members = n_roster,
                                .min_cohort = min_cohort,
                                .allow_small_cohort = allow_small};
    randombytes_buf(pc.seed, sizeof pc.seed);
    uint8_t pk[32];
    crypto_sign_keypair(pk, pc.sign_sk);
    mu_diag d = {{0}};
    cl_participant *p = cl_participant_new(&pc, &d);
    if (!p)
        fail_msg("cl_participant_new: %s", d.msg);
    return p;
}

/* 1 when the sum `got` of an evaluation round (with the coordinator members' zero inputs)
 * holds the target's own held-out loss sum (within the fixed-point step) and token count. */
static int is_target_loss(const cheat *ch, const uint32_t got[VD], const cl_participant *p)
{
    cl_eval_info ei;
    cl_participant_last_eval(p, &ei);
    double ls, tk;
    if (ei.round != ROUND || !(ei.tokens > 0) ||
        co_metric_decode(&ls, &tk, got, vd(ch), ch->cfg.bits, ch->cfg.quant_n, ch->n, NULL) !=
            MU_OK)
        return 0;
    return tk == ei.tokens && fabs(ls - ei.loss_sum) <= 0.5 / CO_METRIC_LOSS_SCALE;
}

/* The harness is a real attack on evaluation rounds too: a target that trusts the
 * coordinator's keys and accepts a cohort of 2 gives its held-out loss sum and token count
 * away through the "sum" of itself and the coordinator's zero inputs. */
static void test_eval_fake_cohort_works_without_checks(void **state)
{
    (void)state;
    eval_model m;
    eval_model_init(&m);
    for (uint32_t n = 2; n <= 5; n += 3) {
        cheat ch;
        cheat_init(&ch, n, 0);
        cheat_eval(&ch, &m);
        cl_member roster[MAX_FAKE];
        size_t nr = roster_of(&ch, 1, roster);
        cl_participant *p = make_eval_target(&m, roster, nr, 2, 1);
        uint32_t got[VD];
        assert_true(cheat_run(&ch, p, got));
        assert_int_equal(ch.target_rc, MU_OK);
        assert_int_equal(vd(&ch), co_metric_coords(32, n)); /* the metrics alone */
        assert_true(is_target_loss(&ch, got, p));
        cl_participant_free(p);
        cheat_free(&ch);
    }
    eval_model_free(&m);
}

/* The coordinator asks the target for an evaluation report in the clear, then tries to get
 * the loss out of the round's secure aggregation: the report is 12 bytes (magic, version,
 * type, round) without the loss sum or the token count in any form; a cohort of keys the
 * target did not pin, or of pinned keys below its minimum of 5, is refused at ADVERTISE with
 * nothing sent; a SECAGG task that calls the round a training round (an input shaped w·Δ, w,
 * metrics) is refused; and an evaluation round it took part in is not aggregated again. */
static void test_eval_loss_not_given_away(void **state)
{
    (void)state;
    eval_model m;
    eval_model_init(&m);
    /* the clear report */
    cheat ch;
    cheat_init(&ch, 5, 0);
    cheat_eval(&ch, &m);
    cl_member roster[MAX_FAKE];
    size_t nr = roster_of(&ch, 0, roster); /* honest members' keys: not the coordinator's */
    cl_participant *p = make_eval_target(&m, roster, nr, 0, 0);
    co_task t = {.kind = CO_TASK_EVAL, .org_id = TARGET, .cfg = ch.cfg};
    cl_outbox out;
    cl_outbox_init(&out);
    to_target(&ch, p, &t, &out);
    assert_int_equal(ch.target_rc, MU_OK);
    assert_int_equal(out.count, 1);
    assert_int_equal(out.items[0].len, CO_REPORT_BYTES);
    assert_int_equal(CO_REPORT_BYTES, 12);
    co_report r;
    assert_int_equal(co_report_decode(&r, out.items[0].bytes, out.items[0].len), MU_OK);
    assert_true(r.type == CO_REPORT_EVAL && r.round == ROUND);
    cl_eval_info ei;
    cl_participant_last_eval(p, &ei);
    assert_true(ei.round == ROUND && ei.tokens == 24 * 8 && ei.loss_sum > 0);
    uint8_t want[CO_REPORT_BYTES] = {'C', 'R', CO_WIRE_VERSION, CO_REPORT_EVAL, ROUND};
    assert_memory_equal(out.items[0].bytes, want, CO_REPORT_BYTES); /* nothing else in it */
    cl_outbox_deinit(&out);
    cl_participant_free(p);
    cheat_free(&ch);
    /* the secure aggregation with keys the target did not pin, or too few pinned ones */
    for (int c = 0; c < 2; c++) {
        cheat_init(&ch, c == 0 ? 5 : 4, 0);
        cheat_eval(&ch, &m);
        nr = roster_of(&ch, c == 1, roster);
        p = make_eval_target(&m, roster, nr, 0, 0);
        uint32_t got[VD];
        int done = cheat_run(&ch, p, got);
        assert_int_equal(ch.target_rc, MU_ERR_INVALID);
        assert_int_equal(ch.target_sent, 0);
        assert_false(done && is_target_loss(&ch, got, p));
        cl_participant_free(p);
        cheat_free(&ch);
    }
    /* pinned keys and a cohort of 5: the round itself is taken (the sum of 5), but not as a
     * training round, and not twice */
    cheat_init(&ch, 5, 0);
    cheat_eval(&ch, &m);
    nr = roster_of(&ch, 1, roster);
    p = make_eval_target(&m, roster, nr, 0, 0);
    memcpy(ch.pks[0], cl_participant_pk(p), 32);
    cl_outbox_init(&out);
    to_target(&ch, p, &t, &out);
    co_task adv = {.kind = CO_TASK_SECAGG,
                   .org_id = TARGET,
                   .stage = SA_STAGE_ADVERTISE,
                   .cfg = ch.cfg,
                   .n_cohort = ch.n,
                   .cohort_ids = ch.ids,
                   .cohort_pks = ch.pks};
    adv.cfg.kind = CO_ROUND_TRAIN;
    mu_diag d = {{0}};
    size_t before = out.count;
    assert_int_equal(cl_participant_handle_task(p, m.e, &adv, NULL, m.dim, &out, &d),
                     MU_ERR_INVALID);
    assert_int_equal(out.count, before);
    cl_outbox_deinit(&out);
    uint32_t got[VD];
    assert_true(cheat_run(&ch, p, got)); /* the honest round: the target in a sum of 5 */
    assert_int_equal(ch.target_rc, MU_OK);
    cheat two;
    cheat_init(&two, 5, 0);
    two.cfg = ch.cfg; /* round R again, as a restarted coordinator would run it */
    randombytes_buf(two.cfg.sa_nonce, sizeof two.cfg.sa_nonce);
    memcpy(two.pks, ch.pks, sizeof two.pks);
    memcpy(two.sks, ch.sks, sizeof two.sks);
    two.engine = ch.engine, two.global = ch.global;
    int done = cheat_run(&two, p, got);
    assert_int_equal(two.target_rc, MU_ERR_ABORT);
    assert_int_equal(two.target_sent, 0);
    assert_false(done && is_target_loss(&two, got, p));
    cl_participant_free(p);
    cheat_free(&two);
    cheat_free(&ch);
    eval_model_free(&m);
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    if (sa_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_cohort_works_without_checks),
        cmocka_unit_test(test_fake_cohort_unpinned_keys),
        cmocka_unit_test(test_fake_cohort_too_small),
        cmocka_unit_test(test_fake_cohort_duplicate_key),
        cmocka_unit_test(test_replay_works_without_record),
        cmocka_unit_test(test_replay_refused_memory),
        cmocka_unit_test(test_replay_refused_file),
        cmocka_unit_test(test_instance_replay_works_without_fresh_nonce),
        cmocka_unit_test(test_instance_replay_refused),
        cmocka_unit_test(test_instance_restart_exact_sum),
        cmocka_unit_test(test_no_nonce_refused),
        cmocka_unit_test(test_ddg_noise_below_pin_refused),
        cmocka_unit_test(test_ddg_min_beyond_cohort_refused),
        cmocka_unit_test(test_ddg_survivors_below_ddg_min),
        cmocka_unit_test(test_ddg_changed_at_masked_refused),
        cmocka_unit_test(test_eval_fake_cohort_works_without_checks),
        cmocka_unit_test(test_eval_loss_not_given_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
