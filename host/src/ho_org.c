/* ho_org.c - an org's policy around the participant core: repeats, replays, restarts, the
 * error classes, signed pushes. See ho_org.h. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ho_org.h"
#include "mu_log.h"
#include "wi_push.h"
#include "wi_stage.h"

/* Where a task sits in the order an org acts: (round, then its wi_task_stage). */
typedef struct {
    uint64_t round;
    int order;
} pos;

struct ho_org {
    cl_participant_config pc; /* name points at `name`; sign_sk wiped by ho_org_free */
    char name[64];
    cl_participant *p;
    uint32_t id;
    uint8_t instance[HO_INSTANCE_BYTES];
    int has_instance;
    pos last; /* the last task handed to the core in this instance, when has_last */
    pos mark; /* the furthest task the core took (answered, or left the round over) */
    int has_last, has_mark;
    int resync; /* the same instance again: the task at `last` may go to the core once more */
    uint64_t out_round; /* the round the org left (0: none) */
    unsigned repeats;   /* identical repeats in a row, for the backoff */
    ho_org_stats st;
};

void ho_reply_init(ho_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    cl_outbox_init(&rep->out);
}

void ho_reply_deinit(ho_reply *rep)
{
    cl_outbox_deinit(&rep->out);
    free(rep->sigs);
    memset(rep, 0, sizeof *rep);
}

static void reset(ho_reply *rep, ho_verdict v)
{
    cl_outbox_clear(&rep->out);
    rep->verdict = v;
    rep->round = 0;
    rep->stage = 0;
    rep->backoff_s = 0;
    rep->repeat = 0;
    rep->rc = MU_OK;
    rep->diag.msg[0] = 0;
}

static ho_verdict fail(ho_reply *rep, int rc, ho_verdict v)
{
    rep->rc = rc;
    rep->verdict = v;
    return v;
}

ho_org *ho_org_new(const cl_participant_config *pc, mu_diag *diag)
{
    if (!pc->name || strlen(pc->name) >= sizeof((ho_org *)0)->name) {
        mu_diag_set(diag, MU_ERR_INVALID, "org name missing or longer than 63 bytes");
        return NULL;
    }
    ho_org *o = calloc(1, sizeof *o);
    if (!o) {
        mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        return NULL;
    }
    o->pc = *pc;
    snprintf(o->name, sizeof o->name, "%s", pc->name);
    o->pc.name = o->name;
    if (!(o->p = cl_participant_new(&o->pc, diag))) {
        ho_org_free(o);
        return NULL;
    }
    return o;
}

void ho_org_free(ho_org *o)
{
    if (!o)
        return;
    cl_participant_free(o->p);
    sodium_memzero(o->pc.sign_sk, sizeof o->pc.sign_sk);
    free(o);
}

cl_participant *ho_org_participant(ho_org *o)
{
    return o->p;
}

void ho_org_set_id(ho_org *o, uint32_t id)
{
    o->id = id;
}

int ho_org_coordinator(ho_org *o, const uint8_t instance[HO_INSTANCE_BYTES], mu_diag *diag)
{
    o->repeats = 0;
    if (!o->has_instance || memcmp(o->instance, instance, HO_INSTANCE_BYTES) == 0) {
        memcpy(o->instance, instance, HO_INSTANCE_BYTES);
        o->has_instance = 1;
        o->resync = o->has_last;
        return 0;
    }
    /* A restarted coordinator runs the round in flight again: forget what we did in the old
     * one (report, update, secure-aggregation keys) and act on its tasks afresh. */
    cl_participant *p = cl_participant_new(&o->pc, diag);
    if (!p)
        return MU_ERR_INVALID;
    cl_participant_free(o->p);
    o->p = p;
    memcpy(o->instance, instance, HO_INSTANCE_BYTES);
    o->has_last = o->has_mark = o->resync = 0;
    o->out_round = 0;
    o->st.restarts++;
    return 1;
}

int ho_task_needs_global(const co_task *task)
{
    return task->kind == CO_TASK_TRAIN || task->kind == CO_TASK_EVAL;
}

static pos task_pos(const co_task *t)
{
    /* TRAIN or EVAL 0 (a round's first task: its secure aggregation follows), ADVERTISE 1 ..
     * UNMASK 5 */
    return (pos){t->cfg.round, t->kind == CO_TASK_EVAL ? WI_STAGE_TRAIN : wi_task_stage(t)};
}

static int pos_cmp(pos a, pos b)
{
    if (a.round != b.round)
        return a.round < b.round ? -1 : 1;
    return a.order < b.order ? -1 : a.order > b.order;
}

/* The task handed to the core last time (whatever came of it), or one not after the
 * furthest task the core took: a repeat or a replay, not acted on again (but see resync).
 * A task the core refused as out of place (MU_ERR_STATE) does not move `mark`, so an old or
 * stray task cannot make the org skip the real ones. */
static int is_repeat(ho_org *o, pos p)
{
    int same = o->has_last && pos_cmp(p, o->last) == 0;
    if (same && o->resync) {
        o->resync = 0;
        return 0;
    }
    return same || (o->has_mark && pos_cmp(p, o->mark) <= 0);
}

ho_verdict ho_org_take(ho_org *o, const uint8_t *bytes, size_t len, co_task *task, ho_reply *rep)
{
    reset(rep, HO_WAIT);
    co_task t;
    int rc = co_task_decode(&t, bytes, len, &rep->diag);
    if (rc != MU_OK) {
        char why[sizeof rep->diag.msg];
        snprintf(why, sizeof why, "%s", rep->diag.msg);
        mu_diag_set(&rep->diag, rc, "the coordinator sent a task we cannot read: %.400s", why);
        return fail(rep, rc, HO_FATAL);
    }
    if (t.org_id != o->id) {
        mu_diag_set(&rep->diag, MU_ERR_PROTOCOL, "a task for org %u, we are %u", t.org_id, o->id);
        co_task_deinit(&t);
        return fail(rep, MU_ERR_PROTOCOL, HO_FATAL);
    }
    ho_verdict v = HO_ACT;
    if (t.kind == CO_TASK_DONE || t.kind == CO_TASK_WAIT) {
        v = t.kind == CO_TASK_DONE ? HO_STOP : HO_WAIT;
    } else {
        rep->round = t.cfg.round;
        rep->stage = wi_push_stage(&t);
        if (o->out_round && t.cfg.round == o->out_round) {
            v = HO_WAIT;
        } else if (is_repeat(o, task_pos(&t))) {
            /* Acting twice cannot help (the coordinator keeps offering a task until the stage
             * closes) and could hand out a second answer: wait for the task to change. */
            o->repeats++;
            o->st.repeats++;
            rep->repeat = 1;
            rep->backoff_s = fmin(0.05 * (double)(1u << (o->repeats < 5 ? o->repeats : 5)), 1.0);
            v = HO_WAIT;
        } else {
            o->repeats = 0;
        }
    }
    rep->verdict = v;
    if (v == HO_ACT)
        *task = t;
    else
        co_task_deinit(&t);
    return v;
}

void ho_org_leave(ho_org *o, uint64_t round)
{
    o->out_round = round;
}

void ho_org_leave_message(const ho_org *o, uint64_t round, uint8_t msg[CO_REPORT_BYTES],
                          uint8_t sig[HO_SIG_BYTES])
{
    co_report rep = {.type = CO_REPORT_LEAVE, .round = round};
    co_report_encode(&rep, msg);
    wi_push_sign(sig, o->pc.sign_sk, o->id, round, WI_STAGE_REPORT, msg, CO_REPORT_BYTES);
}

/* The error-class policy of ho_org.h. */
static ho_verdict classify(const co_task *t, int rc)
{
    if (rc == MU_ERR_STATE)
        return HO_WAIT;
    if (rc == MU_ERR_FORMAT || rc == MU_ERR_CRYPTO || rc == MU_ERR_PROTOCOL || rc == MU_ERR_ABORT)
        return HO_LEAVE;
    if (rc == MU_ERR_INVALID && t->kind == CO_TASK_SECAGG)
        return HO_LEAVE;
    return HO_FATAL;
}

/* Signs every message for (id, round, stage) with the org's identity key. */
static int sign_all(ho_org *o, ho_reply *rep)
{
    if (rep->out.count > rep->cap_sigs) {
        uint8_t(*s)[HO_SIG_BYTES] = realloc(rep->sigs, rep->out.count * sizeof *s);
        if (!s)
            return MU_ERR_NOMEM;
        rep->sigs = s;
        rep->cap_sigs = rep->out.count;
    }
    for (size_t i = 0; i < rep->out.count; i++)
        wi_push_sign(rep->sigs[i], o->pc.sign_sk, o->id, rep->round, rep->stage,
                     rep->out.items[i].bytes, rep->out.items[i].len);
    return MU_OK;
}

ho_verdict ho_org_act(ho_org *o, cl_engine *engine, const co_task *task, const float *global,
                      size_t dim, ho_reply *rep)
{
    reset(rep, HO_WAIT);
    rep->round = task->cfg.round;
    rep->stage = wi_push_stage(task);
    pos p = task_pos(task);
    o->last = p;
    o->has_last = 1;
    o->st.acted++;
    int rc = cl_participant_handle_task(o->p, engine, task, global, dim, &rep->out, &rep->diag);
    ho_verdict v = rc == MU_OK ? HO_PUSH : classify(task, rc);
    if (v != HO_WAIT && (!o->has_mark || pos_cmp(p, o->mark) > 0)) {
        o->mark = p;
        o->has_mark = 1;
    }
    if (rc != MU_OK) {
        if (v == HO_WAIT) {
            mu_debug("%s: round %llu: task ignored: %s", o->name,
                     (unsigned long long)task->cfg.round, rep->diag.msg);
        } else if (v == HO_LEAVE) {
            mu_warn("%s: round %llu: out of this round: %s", o->name,
                    (unsigned long long)task->cfg.round, rep->diag.msg);
            o->out_round = task->cfg.round;
            o->st.left++;
        }
        cl_outbox_clear(&rep->out);
        return fail(rep, rc, v);
    }
    if (rep->out.count == 0)
        return HO_WAIT;
    if ((rc = sign_all(o, rep)) != MU_OK) {
        mu_diag_set(&rep->diag, rc, "out of memory");
        cl_outbox_clear(&rep->out);
        return fail(rep, rc, HO_FATAL);
    }
    rep->verdict = HO_PUSH;
    return HO_PUSH;
}

void ho_org_get_stats(const ho_org *o, ho_org_stats *st)
{
    *st = o->st;
}
