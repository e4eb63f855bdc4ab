/* co_round.c - registry, cohort selection, round phases, SecAgg stages, strategy. */
#include "co_round.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "co_bound.h"
#include "co_ddg.h"
#include "co_privacy.h"
#include "mu_bytes.h"
#include "mu_grow.h"
#include "sa.h"
#include "wi_org.h"
#include "wi_stage.h"

#define MAX_ORGS (1u << 20)

typedef struct { /* one org of the SecAgg cohort */
    uint32_t id;
    int answered;        /* has answered the open stage */
    const uint8_t *mail; /* the server's message for the open stage, borrowed from r->ob */
    size_t mail_len;
} member;

typedef struct {      /* the round state of one registered org; r->reg holds its identity */
    double last_seen; /* < 0: never pulled */
    int selected, reported;
    int left;       /* sent a LEAVE in the round in flight: expected no more */
    int noted;      /* its drop is in r->drops */
    int32_t member; /* index into r->members, or -1 */
} slot;

struct co_round {
    co_config cfg; /* owns its copy of the allowlist */
    co_strategy *strategy;
    float *global; /* (dim) */
    float *delta;  /* (dim) scratch: the weighted mean of the deltas */
    size_t dim;
    co_tensor *tensors; /* (n_tensors) views into global; names owned */
    size_t n_tensors;

    co_org *reg; /* (n_orgs) the registry, id = index + 1 */
    slot *orgs;  /* (n_orgs) parallel to reg */
    size_t n_orgs, cap_orgs, cap_reg;
    co_metrics *history;
    size_t n_history, cap_history;
    co_event *events;
    size_t n_events, head_events, cap_events;

    uint64_t round;           /* the round in flight, or the last one used */
    uint64_t train_done;      /* training rounds completed (schedules evaluation rounds) */
    uint64_t train_attempted; /* training rounds completed or aborted (ends the federation) */
    int next_is_eval;
    co_phase phase;
    double deadline;
    double ready_since; /* when min_orgs first were connected; < 0: not now */
    uint64_t version;
    co_metrics cur;
    co_round_config rcfg;
    sa_quant quant;
    co_privacy acct;     /* what a released round costs (co_privacy.h) */
    uint64_t n_released; /* training rounds whose sum was unmasked */

    sa_server *sa;
    sa_outbox ob, scratch;
    member *members; /* (n_members) ascending ids */
    uint32_t n_members;
    uint32_t *member_ids; /* (n_members) */
    uint8_t (*member_pks)[CO_ORG_PK_BYTES];
    uint32_t *ids_tmp; /* (n_members) scratch */

    co_drop *drops; /* (n_drops) the round in flight's dropped orgs; room for every org */
    uint32_t n_drops, cap_drops;
    co_drop *polled_drops; /* the last polled event's list (co_round_poll_event) */
};

static int choose_quant(co_round *r, uint32_t n, mu_diag *d);

/* ---- small helpers --------------------------------------------------------------------- */

static uint64_t hash_u64(uint64_t seed, uint64_t round, uint32_t id, const char *tag)
{
    uint8_t in[20 + 16], out[8];
    size_t tl = strlen(tag);
    mu_put_le64(in, seed);
    mu_put_le64(in + 8, round);
    mu_put_le32(in + 16, id);
    memcpy(in + 20, tag, tl);
    crypto_generichash(out, sizeof out, in, 20 + tl, NULL, 0);
    return mu_le64(out);
}

static slot *find_slot(co_round *r, uint32_t id)
{
    return (id >= 1 && id <= r->n_orgs) ? &r->orgs[id - 1] : NULL;
}

static int connected(const co_round *r, const slot *s, double now)
{
    return s->last_seen >= 0 && now - s->last_seen <= r->cfg.available_s;
}

/* Room for `events` more events and `history` more history entries, so that what follows
 * cannot fail to queue or record. MU_OK or MU_ERR_NOMEM (nothing else changed). */
static int reserve(co_round *r, size_t events, size_t history)
{
    if (r->head_events == r->n_events)
        r->head_events = r->n_events = 0;
    if (MU_GROW(&r->events, &r->cap_events, r->n_events + events, 16) != MU_OK ||
        MU_GROW(&r->history, &r->cap_history, r->n_history + history, 16) != MU_OK)
        return MU_ERR_NOMEM;
    return MU_OK;
}

/* Queues an event into the room reserve() made (running out of it is a bug: abort). */
static co_event *push_event(co_round *r, co_event_kind kind, const co_metrics *m,
                            const char *reason)
{
    if (r->head_events == r->n_events)
        r->head_events = r->n_events = 0;
    if (r->n_events >= r->cap_events)
        abort();
    co_event *ev = &r->events[r->n_events++];
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    if (m)
        ev->metrics = *m;
    if (reason)
        snprintf(ev->reason, sizeof ev->reason, "%s", reason);
    return ev;
}

_Static_assert(WI_STAGE_ADVERTISE == (int)SA_STAGE_ADVERTISE &&
                   WI_STAGE_UNMASK == (int)SA_STAGE_UNMASK,
               "wire stages 1..5 are the secure-aggregation stages");

const char *co_phase_name(co_phase phase, int stage)
{
    switch (phase) {
    case CO_PHASE_IDLE:
        return wi_stage_name(WI_STAGE_IDLE);
    case CO_PHASE_TRAIN:
        return wi_stage_name(WI_STAGE_TRAIN);
    case CO_PHASE_SECAGG: /* the server's own DONE and ABORTED keep secure_agg's names */
        if (wi_stage_is_secagg(stage))
            return wi_stage_name(stage);
        return stage == SA_STAGE_DONE || stage == SA_STAGE_ABORTED ? sa_stage_name((sa_stage)stage)
                                                                   : "secagg";
    case CO_PHASE_EVAL:
        return wi_stage_name(WI_STAGE_EVAL);
    case CO_PHASE_DONE:
        return wi_stage_name(WI_STAGE_DONE);
    }
    return "?";
}

/* ---- lifecycle ------------------------------------------------------------------------- */

co_round *co_round_new(const co_config *cfg, const co_tensor *tensors, size_t n_tensors,
                       mu_diag *diag)
{
    if (co_config_check(cfg, diag) != MU_OK)
        return NULL;
    if (sa_init() != MU_OK) {
        mu_diag_set(diag, MU_ERR_CRYPTO, "coordinator: libsodium failed to initialise");
        return NULL;
    }
    if (n_tensors == 0) {
        mu_diag_set(diag, MU_ERR_INVALID, "coordinator: the global adapter has no tensors");
        return NULL;
    }
    uint64_t dim = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const co_tensor *t = &tensors[i];
        if (!t->name || !t->name[0] || strlen(t->name) >= CO_TENSOR_NAME_MAX || t->ndim < 1 ||
            t->ndim > CO_TENSOR_MAX_DIMS || !t->data) {
            mu_diag_set(diag, MU_ERR_INVALID, "coordinator: tensor %zu has a bad name or shape", i);
            return NULL;
        }
        uint64_t numel = 1;
        for (int k = 0; k < t->ndim && numel < SA_MAX_D; k++)
            numel = t->shape[k] < SA_MAX_D ? numel * t->shape[k] : SA_MAX_D;
        dim += numel;
        if (dim > CO_TASK_MAX_DIM) {
            mu_diag_set(diag, MU_ERR_INVALID, "coordinator: the adapter has more than %u values",
                        CO_TASK_MAX_DIM);
            return NULL;
        }
    }
    co_round *r = calloc(1, sizeof *r);
    if (!r)
        goto out_nomem;
    r->cfg = *cfg;
    r->cfg.orgs = NULL;
    r->cfg.n_orgs = 0;
    if (cfg->n_orgs) {
        r->cfg.orgs = malloc(cfg->n_orgs * sizeof *cfg->orgs);
        if (!r->cfg.orgs)
            goto out_free;
        memcpy(r->cfg.orgs, cfg->orgs, cfg->n_orgs * sizeof *cfg->orgs);
        r->cfg.n_orgs = cfg->n_orgs;
    }
    r->dim = (size_t)dim;
    r->global = malloc(r->dim * sizeof(float));
    r->delta = malloc(r->dim * sizeof(float));
    r->tensors = calloc(n_tensors, sizeof *r->tensors);
    r->strategy = co_strategy_new(&cfg->strategy, r->dim);
    if (!r->global || !r->delta || !r->tensors || !r->strategy)
        goto out_free;
    r->n_tensors = n_tensors;
    size_t off = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        co_tensor *t = &r->tensors[i];
        *t = tensors[i];
        t->name = NULL;
        char *name = strdup(tensors[i].name);
        if (!name)
            goto out_free;
        t->name = name;
        size_t n = (size_t)co_tensor_numel(t);
        t->data = r->global + off;
        memcpy(t->data, tensors[i].data, n * sizeof(float));
        off += n;
    }
    sa_outbox_init(&r->ob);
    sa_outbox_init(&r->scratch);
    /* Refuse at setup a quantisation that could overflow with the largest cohort. */
    if (choose_quant(r, r->cfg.max_orgs, diag) != MU_OK ||
        co_privacy_init(&r->acct, &r->cfg, (uint32_t)r->dim, r->quant.scale, diag) != MU_OK) {
        co_round_free(r);
        return NULL;
    }
    r->phase = CO_PHASE_IDLE;
    r->ready_since = -1;
    r->deadline = INFINITY;
    return r;
out_free:
    co_round_free(r);
out_nomem:
    mu_diag_set(diag, MU_ERR_NOMEM, "coordinator: out of memory");
    return NULL;
}

static void end_secagg(co_round *r)
{
    sa_server_free(r->sa);
    r->sa = NULL;
    sa_outbox_clear(&r->ob);
    sa_outbox_clear(&r->scratch);
    for (size_t i = 0; i < r->n_orgs; i++)
        r->orgs[i].member = -1;
    free(r->members);
    free(r->member_ids);
    free(r->member_pks);
    free(r->ids_tmp);
    r->members = NULL;
    r->member_ids = NULL;
    r->member_pks = NULL;
    r->ids_tmp = NULL;
    r->n_members = 0;
}

void co_round_free(co_round *r)
{
    if (!r)
        return;
    end_secagg(r);
    sa_outbox_deinit(&r->ob);
    sa_outbox_deinit(&r->scratch);
    for (size_t i = 0; r->tensors && i < r->n_tensors; i++)
        free((char *)r->tensors[i].name);
    free(r->tensors);
    free(r->global);
    free(r->delta);
    co_strategy_free(r->strategy);
    free(r->orgs);
    free(r->reg);
    free(r->history);
    for (size_t i = r->head_events; i < r->n_events; i++)
        free((void *)r->events[i].dropped);
    free(r->events);
    free(r->drops);
    free(r->polled_drops);
    co_config_deinit(&r->cfg);
    free(r);
}

/* ---- registry and checkpoints ---------------------------------------------------------- */

int co_round_register(co_round *r, const char *name, const uint8_t pk[CO_ORG_PK_BYTES],
                      uint32_t *id, mu_diag *diag)
{
    if (!wi_org_name_valid(name))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "register: an org name is 1-63 of [A-Za-z0-9._-], not starting "
                           "with '.' or '-'");
    if (!crypto_core_ed25519_is_valid_point(pk))
        return mu_diag_set(diag, MU_ERR_CRYPTO, "register: '%s' sent an invalid Ed25519 key", name);
    if (r->cfg.n_orgs) {
        const co_allowed_org *a = NULL;
        for (size_t i = 0; i < r->cfg.n_orgs && !a; i++)
            if (strcmp(r->cfg.orgs[i].name, name) == 0)
                a = &r->cfg.orgs[i];
        if (!a)
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "register: '%s' is not in this federation's orgs list", name);
        if (a->has_pk && sodium_memcmp(a->pk, pk, CO_ORG_PK_BYTES) != 0)
            return mu_diag_set(diag, MU_ERR_CRYPTO,
                               "register: '%s' sent a key that differs from its pinned key", name);
    }
    uint32_t existing = co_round_find_org(r, name);
    if (existing) {
        if (sodium_memcmp(r->reg[existing - 1].pk, pk, CO_ORG_PK_BYTES) != 0)
            return mu_diag_set(diag, MU_ERR_CRYPTO, "register: '%s' is registered with another key",
                               name);
        *id = existing;
        return MU_OK;
    }
    if (r->n_orgs >= MAX_ORGS)
        return mu_diag_set(diag, MU_ERR_INVALID, "register: too many orgs (%u)", MAX_ORGS);
    if (MU_GROW(&r->orgs, &r->cap_orgs, r->n_orgs + 1, 16) != MU_OK ||
        MU_GROW(&r->reg, &r->cap_reg, r->n_orgs + 1, 16) != MU_OK)
        return mu_diag_set(diag, MU_ERR_NOMEM, "register: out of memory");
    slot *s = &r->orgs[r->n_orgs];
    memset(s, 0, sizeof *s);
    s->last_seen = -1;
    s->member = -1;
    co_org *o = &r->reg[r->n_orgs];
    memset(o, 0, sizeof *o);
    o->id = (uint32_t)r->n_orgs + 1;
    snprintf(o->name, sizeof o->name, "%s", name);
    memcpy(o->pk, pk, CO_ORG_PK_BYTES);
    r->n_orgs++;
    *id = o->id;
    return MU_OK;
}

const co_org *co_round_org(const co_round *r, uint32_t id)
{
    return (id >= 1 && id <= r->n_orgs) ? &r->reg[id - 1] : NULL;
}

uint32_t co_round_find_org(const co_round *r, const char *name)
{
    for (size_t i = 0; i < r->n_orgs; i++)
        if (strcmp(r->reg[i].name, name) == 0)
            return r->reg[i].id;
    return 0;
}

static void schedule_next(co_round *r)
{
    r->next_is_eval = 0;
    if (!r->cfg.eval_every || !r->n_history)
        return;
    const co_metrics *last = &r->history[r->n_history - 1];
    if (last->kind == CO_ROUND_TRAIN && last->outcome == CO_ROUND_COMPLETED &&
        r->train_done % r->cfg.eval_every == 0)
        r->next_is_eval = 1;
}

int co_round_restore(co_round *r, const co_checkpoint *ck, mu_diag *diag)
{
    if (r->phase != CO_PHASE_IDLE || r->round != 0 || r->n_orgs || r->n_history)
        return mu_diag_set(diag, MU_ERR_STATE, "restore: only before the first round");
    if (ck->n_tensors != r->n_tensors)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "restore: the checkpoint has %zu tensors, the adapter %zu",
                           ck->n_tensors, r->n_tensors);
    for (size_t i = 0; i < r->n_tensors; i++) {
        const co_tensor *a = &ck->tensors[i], *b = &r->tensors[i];
        if (strcmp(a->name, b->name) != 0 || a->ndim != b->ndim ||
            memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) != 0)
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "restore: tensor %zu is '%s' in the checkpoint, '%s' here (or its "
                               "shape differs)",
                               i, a->name, b->name);
    }
    for (size_t i = 0; i < ck->n_orgs; i++)
        if (ck->orgs[i].id != i + 1 || !wi_org_name_valid(ck->orgs[i].name))
            return mu_diag_set(diag, MU_ERR_INVALID, "restore: org %zu has a bad id or name", i);
    if (MU_GROW(&r->orgs, &r->cap_orgs, ck->n_orgs, 16) != MU_OK ||
        MU_GROW(&r->reg, &r->cap_reg, ck->n_orgs, 16) != MU_OK ||
        reserve(r, 1, ck->n_metrics) != MU_OK)
        return mu_diag_set(diag, MU_ERR_NOMEM, "restore: out of memory");
    const co_strategy_params *sp = co_strategy_get_params(r->strategy);
    size_t opt_d = ck->opt_m ? ck->opt_d : r->dim; /* FedAvg keeps only its step count */
    if (ck->strategy != (int)sp->kind ||
        co_strategy_set_state(r->strategy, ck->opt_step, ck->opt_m, ck->opt_v, opt_d) != MU_OK) {
        if (co_strategy_n_state(r->strategy) > 0) {
            co_event *ev = push_event(r, CO_EVENT_NOTICE, NULL, NULL);
            snprintf(ev->reason, sizeof ev->reason,
                     "restore: the checkpoint's optimizer state does not fit strategy %s; "
                     "starting it from zero",
                     co_strategy_name(sp->kind));
        }
    }
    for (size_t i = 0; i < r->n_tensors; i++)
        memcpy(r->tensors[i].data, ck->tensors[i].data,
               (size_t)co_tensor_numel(&r->tensors[i]) * sizeof(float));
    for (size_t i = 0; i < ck->n_orgs; i++) {
        slot *s = &r->orgs[i];
        memset(s, 0, sizeof *s);
        r->reg[i] = ck->orgs[i];
        s->last_seen = -1;
        s->member = -1;
    }
    r->n_orgs = ck->n_orgs;
    if (ck->n_metrics)
        memcpy(r->history, ck->metrics, ck->n_metrics * sizeof *r->history);
    r->n_history = ck->n_metrics;
    r->round = ck->round;
    r->train_done = r->train_attempted = 0;
    r->n_released = 0;
    for (size_t i = 0; i < r->n_history; i++) {
        r->n_released += r->history[i].released; /* the budget survives a restart */
        if (r->history[i].kind != CO_ROUND_TRAIN)
            continue;
        r->train_attempted++;
        r->train_done += r->history[i].outcome == CO_ROUND_COMPLETED;
    }
    schedule_next(r);
    r->version++;
    return MU_OK;
}

void co_round_checkpoint_view(const co_round *r, const uint8_t config_hash[CO_HASH_BYTES],
                              co_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    ck->round = r->round;
    memcpy(ck->config_hash, config_hash, CO_HASH_BYTES);
    ck->tensors = r->tensors;
    ck->n_tensors = r->n_tensors;
    ck->strategy = (int)co_strategy_get_params(r->strategy)->kind;
    ck->opt_step = co_strategy_step(r->strategy);
    ck->opt_m = (float *)co_strategy_m(r->strategy);
    ck->opt_v = (float *)co_strategy_v(r->strategy);
    ck->opt_d = ck->opt_m ? r->dim : 0;
    ck->metrics = r->history;
    ck->n_metrics = r->n_history;
    ck->orgs = r->reg;
    ck->n_orgs = r->n_orgs;
}

/* ---- ending a round -------------------------------------------------------------------- */

static int federation_done(const co_round *r)
{
    return r->cfg.rounds && r->train_attempted >= r->cfg.rounds && !r->next_is_eval;
}

/* 1 when the next round is a training round that would take a tracked ε above
 * privacy.epsilon_budget (the reason in why). */
static int budget_spent(const co_round *r, char *why, size_t cap)
{
    return !r->next_is_eval && co_privacy_over(&r->acct, r->n_released + 1, why, cap);
}

static void record(co_round *r, double now, const char *reason)
{
    r->cur.t_end = now;
    r->n_released += r->cur.released;
    co_privacy_epsilon(&r->acct, r->n_released, &r->cur.epsilon, &r->cur.record_epsilon);
    r->cur.dp_tracked = (uint8_t)(r->acct.org_on | r->acct.record_on << 1);
    if (r->n_history >= r->cap_history) /* reserved by start_round: running out is a bug */
        abort();
    r->history[r->n_history++] = r->cur;
    if (r->cur.kind == CO_ROUND_TRAIN) {
        r->train_attempted++;
        r->train_done += r->cur.outcome == CO_ROUND_COMPLETED;
    }
    schedule_next(r);
    co_event *ev = push_event(r, CO_EVENT_ROUND, &r->cur, reason);
    ev->dropped = r->drops; /* the event owns the list now */
    ev->n_dropped = r->n_drops;
    r->drops = NULL;
    r->n_drops = r->cap_drops = 0;
    end_secagg(r);
    for (size_t i = 0; i < r->n_orgs; i++) {
        slot *s = &r->orgs[i];
        s->selected = s->reported = s->left = s->noted = 0;
    }
    r->phase = CO_PHASE_IDLE;
    r->deadline = INFINITY;
    r->version++;
    char why[256];
    if (federation_done(r)) {
        r->phase = CO_PHASE_DONE;
        push_event(r, CO_EVENT_DONE, NULL, NULL);
    } else if (budget_spent(r, why, sizeof why)) {
        r->phase = CO_PHASE_DONE;
        push_event(r, CO_EVENT_DONE, NULL, why);
    }
}

static void abort_round(co_round *r, double now, const char *reason)
{
    r->cur.outcome = CO_ROUND_ABORTED;
    r->cur.orgs_completed = 0;
    r->cur.orgs_dropped = r->cur.orgs_selected;
    r->cur.loss = NAN;
    r->cur.tokens = 0;
    record(r, now, reason);
}

/* Org `id` stopped answering at `stage` (a wi_stage): the round's dropped list names it, once,
 * with the first stage it did not answer. */
static void note_drop(co_round *r, uint32_t id, int stage)
{
    slot *s = &r->orgs[id - 1];
    if (s->noted || r->n_drops >= r->cap_drops) /* start_round made room for every org */
        return;
    co_drop *d = &r->drops[r->n_drops++];
    memset(d, 0, sizeof *d);
    d->org_id = id;
    d->stage = (uint8_t)stage;
    snprintf(d->name, sizeof d->name, "%s", r->reg[id - 1].name);
    s->noted = 1;
}

/* The selected orgs that have not reported by the end of TRAIN or EVAL. */
static void note_silent_reporters(co_round *r, int stage)
{
    for (size_t i = 0; i < r->n_orgs; i++)
        if (r->orgs[i].selected && !r->orgs[i].reported)
            note_drop(r, (uint32_t)i + 1, stage);
}

static void finish_train(co_round *r, double now)
{
    mu_diag d = {{0}};
    const uint32_t *sum = NULL;
    size_t d_sum = 0, m = co_metric_coords(r->rcfg.bits, r->rcfg.quant_n);
    if (sa_server_result(r->sa, &sum, &d_sum) != MU_OK || d_sum != co_secagg_dim(&r->rcfg)) {
        abort_round(r, now, "secure aggregation gave no sum");
        return;
    }
    r->cur.released = 1; /* unmasked: it counts against the budget whatever follows */
    size_t n = sa_server_survivors(r->sa, r->ids_tmp, r->n_members);
    if (n > r->n_members)
        n = r->n_members;
    int rc = r->rcfg.ddg_noise > 0
                 ? co_ddg_mean(r->delta, sum, &r->rcfg, (uint32_t)n, &d)
                 : sa_quant_mean(r->delta, r->dim, sum, r->dim + 1, &r->quant, &d);
    if (rc != MU_OK && rc != MU_ERR_PROTOCOL) {
        char why[300];
        snprintf(why, sizeof why, "dequantising the sum: %.200s", d.msg);
        abort_round(r, now, why);
        return;
    }
    if (rc == MU_ERR_PROTOCOL ||
        (!(r->rcfg.ddg_noise > 0) &&
         co_aggregate_check(r->delta, r->dim, sum, &r->quant, n, &d) != MU_OK)) {
        abort_round(r, now, d.msg); /* an out-of-range input: nothing applied */
        return;
    }
    double loss_sum, tokens; /* the round's totals: the only loss the coordinator sees */
    if (co_metric_decode(&loss_sum, &tokens, sum + r->dim + 1, m, r->rcfg.bits, r->rcfg.quant_n,
                         (uint32_t)n, &d) != MU_OK) {
        abort_round(r, now, d.msg);
        return;
    }
    if (co_strategy_apply(r->strategy, r->global, r->delta, r->dim) != MU_OK) {
        abort_round(r, now, "the aggregated update is not finite");
        return;
    }
    r->cur.tokens = tokens;
    r->cur.loss = tokens > 0 ? loss_sum / tokens : NAN;
    r->cur.outcome = CO_ROUND_COMPLETED;
    r->cur.orgs_completed = (uint32_t)n;
    r->cur.orgs_dropped = r->cur.orgs_selected - (uint32_t)n;
    record(r, now, NULL);
}

/* An evaluation round's secure sum is its M metric coordinates alone: the coordinator learns the
 * held-out loss sum and token count of the survivors together, never one org's. */
static void finish_eval(co_round *r, double now)
{
    mu_diag d = {{0}};
    const uint32_t *sum = NULL;
    size_t d_sum = 0, m = co_metric_coords(r->rcfg.bits, r->rcfg.quant_n);
    if (sa_server_result(r->sa, &sum, &d_sum) != MU_OK || d_sum != co_secagg_dim(&r->rcfg)) {
        abort_round(r, now, "secure aggregation gave no sum");
        return;
    }
    size_t n = sa_server_survivors(r->sa, r->ids_tmp, r->n_members);
    if (n > r->n_members)
        n = r->n_members;
    double loss_sum, tokens;
    if (co_metric_decode(&loss_sum, &tokens, sum, m, r->rcfg.bits, r->rcfg.quant_n, (uint32_t)n,
                         &d) != MU_OK) {
        abort_round(r, now, d.msg);
        return;
    }
    r->cur.tokens = tokens;
    r->cur.loss = tokens > 0 ? loss_sum / tokens : NAN;
    r->cur.outcome = CO_ROUND_COMPLETED;
    r->cur.orgs_completed = (uint32_t)n;
    r->cur.orgs_dropped = r->cur.orgs_selected - (uint32_t)n;
    record(r, now, NULL);
}

/* ---- the secure aggregation stages ----------------------------------------------------- */

static double stage_time(const co_round *r, int stage)
{
    switch (stage) {
    case SA_STAGE_ADVERTISE:
        return r->cfg.advertise_s;
    case SA_STAGE_SHARE:
        return r->cfg.share_s;
    case SA_STAGE_MASKED:
        return r->cfg.masked_s;
    case SA_STAGE_CONSISTENCY:
        return r->cfg.consistency_s;
    default:
        return r->cfg.unmask_s;
    }
}

static member *find_member(co_round *r, uint32_t id)
{
    slot *s = find_slot(r, id);
    return (s && s->member >= 0) ? &r->members[s->member] : NULL;
}

static void deliver(co_round *r, uint32_t to, const sa_envelope *e)
{
    member *m = find_member(r, to);
    if (!m)
        return;
    m->mail = e->bytes;
    m->mail_len = e->len;
    r->cur.bytes_out += e->len;
}

/* 1 when member m is one the open stage waits for: every member in ADVERTISE, later the
 * ones the server sent a message for this stage (its recipients are the ones it expects). */
static int expected(const co_round *r, const member *m)
{
    return sa_server_stage(r->sa) == SA_STAGE_ADVERTISE || m->mail != NULL;
}

/* How many orgs the open stage still waits for: sa_server_pending, less the expected members
 * that left (they will not answer; the stage need not wait for its deadline). */
static size_t secagg_pending(const co_round *r)
{
    size_t pending = sa_server_pending(r->sa), gone = 0;
    for (uint32_t i = 0; i < r->n_members; i++) {
        const member *m = &r->members[i];
        gone += r->orgs[m->id - 1].left && !m->answered && expected(r, m);
    }
    return pending > gone ? pending - gone : 0;
}

/* Closes the open stage (deadline or everyone answered), routes the server's messages, and
 * keeps closing while a stage waits for nobody. A member that did not answer the stage is
 * noted as dropped at it (the stages only narrow the cohort: it never answers again). */
/* privacy.ddg_noise: a sum of fewer than ddg_min inputs holds less noise than promised, so
 * the round aborts once the masked inputs are in, before any share is asked for. */
static int too_few_survivors(co_round *r, double now)
{
    if (!(r->rcfg.ddg_noise > 0))
        return 0;
    size_t n = sa_server_survivors(r->sa, r->ids_tmp, r->n_members);
    if (n >= r->rcfg.ddg_min)
        return 0;
    char why[200];
    snprintf(why, sizeof why,
             "only %zu masked inputs, below privacy.min_survivors %u: not unmasking a sum with "
             "less noise than promised",
             n, r->rcfg.ddg_min);
    abort_round(r, now, why);
    return 1;
}

static void close_stages(co_round *r, double now)
{
    while (r->phase == CO_PHASE_SECAGG) {
        sa_stage stage = sa_server_stage(r->sa);
        for (uint32_t i = 0; i < r->n_members; i++)
            if (!r->members[i].answered)
                note_drop(r, r->members[i].id, (int)stage);
        for (uint32_t i = 0; i < r->n_members; i++) {
            r->members[i].mail = NULL;
            r->members[i].mail_len = 0;
            r->members[i].answered = 0;
        }
        sa_outbox_clear(&r->ob);
        mu_diag d = {{0}};
        int rc = sa_server_close_stage(r->sa, stage, &r->ob, &d);
        if (rc != MU_OK) {
            char why[300];
            snprintf(why, sizeof why, "secure aggregation stage %s: %.200s",
                     co_phase_name(CO_PHASE_SECAGG, stage), d.msg[0] ? d.msg : mu_strerror(rc));
            abort_round(r, now, why);
            return;
        }
        r->version++;
        if (stage == SA_STAGE_MASKED && too_few_survivors(r, now))
            return;
        sa_stage next = sa_server_stage(r->sa);
        if (next == SA_STAGE_DONE) {
            if (r->cur.kind == CO_ROUND_EVAL)
                finish_eval(r, now);
            else
                finish_train(r, now);
            return;
        }
        for (size_t i = 0; i < r->ob.count; i++) {
            const sa_envelope *e = &r->ob.items[i];
            if (e->to == SA_TO_ALL) {
                size_t n = sa_server_recipients(r->sa, r->ids_tmp, r->n_members);
                for (size_t k = 0; k < n && k < r->n_members; k++)
                    deliver(r, r->ids_tmp[k], e);
            } else {
                deliver(r, e->to, e);
            }
        }
        r->deadline = now + stage_time(r, next);
        if (secagg_pending(r) > 0)
            return;
    }
}

/* The orgs that reported (READY after training, EVAL after evaluating) become the SecAgg
 * cohort. */
static void start_secagg(co_round *r, double now)
{
    int eval = r->cur.kind == CO_ROUND_EVAL;
    note_silent_reporters(r, eval ? WI_STAGE_EVAL : WI_STAGE_TRAIN);
    uint32_t n = 0;
    for (size_t i = 0; i < r->n_orgs; i++)
        if (r->orgs[i].selected && r->orgs[i].reported)
            n++;
    if (n < r->cfg.min_orgs) {
        char why[160];
        snprintf(why, sizeof why, "only %u of %u selected orgs %s (cohort.min_orgs %u)", n,
                 r->cur.orgs_selected, eval ? "evaluated" : "were ready", r->cfg.min_orgs);
        abort_round(r, now, why);
        return;
    }
    r->members = calloc(n, sizeof *r->members);
    r->member_ids = calloc(n, sizeof *r->member_ids);
    r->member_pks = calloc(n, sizeof *r->member_pks);
    if (!r->members || !r->member_ids || !r->member_pks) {
        abort_round(r, now, "out of memory");
        return;
    }
    r->n_members = n;
    for (size_t i = 0, k = 0; i < r->n_orgs; i++) {
        if (!(r->orgs[i].selected && r->orgs[i].reported))
            continue;
        r->orgs[i].member = (int32_t)k;
        r->members[k].id = r->reg[i].id;
        r->member_ids[k] = r->reg[i].id;
        memcpy(r->member_pks[k], r->reg[i].pk, CO_ORG_PK_BYTES);
        k++;
    }
    uint32_t k = 0, t = 0;
    sa_graph_params gp = sa_graph_params_default();
    if ((r->cfg.neighbours == 0 || r->cfg.threshold == 0) &&
        sa_graph_choose(n, &gp, &k, &t) != MU_OK) {
        abort_round(r, now, "no SecAgg+ graph fits this cohort size");
        return;
    }
    if (r->cfg.neighbours)
        k = r->cfg.neighbours;
    if (r->cfg.threshold)
        t = r->cfg.threshold;
    /* A fresh instance nonce each time a secure aggregation starts (a restarted coordinator
     * draws new ones): advertisements and everything signed after them in another instance of
     * this round no longer verify. */
    randombytes_buf(r->rcfg.sa_nonce, sizeof r->rcfg.sa_nonce);
    sa_config sc = {.round_id = r->cur.round,
                    .n = n,
                    .org_ids = r->member_ids,
                    .sign_pks = (const uint8_t(*)[SA_SIGN_PK_BYTES])r->member_pks,
                    .d = co_secagg_dim(&r->rcfg),
                    .bits = r->cfg.bits,
                    .k = k,
                    .t = t};
    _Static_assert(CO_SA_NONCE_BYTES == SA_INSTANCE_NONCE_BYTES, "one nonce size");
    memcpy(sc.instance_nonce, r->rcfg.sa_nonce, SA_INSTANCE_NONCE_BYTES);
    mu_diag d = {{0}};
    r->sa = sa_server_new(&sc, &d);
    if (!r->sa) {
        char why[300];
        snprintf(why, sizeof why, "secure aggregation refused the round config: %.200s", d.msg);
        abort_round(r, now, why);
        return;
    }
    r->rcfg.k = k;
    r->rcfg.t = t;
    r->phase = CO_PHASE_SECAGG;
    r->deadline = now + r->cfg.advertise_s;
    r->version++;
}

/* ---- starting a round ------------------------------------------------------------------ */

/* The quantisation of a round of n orgs under cfg (the scale chosen when secure_agg.scale is
 * 0): MU_OK, or MU_ERR_INVALID when the sum could overflow or the scale falls below 1. */
static int quant_for(const co_config *cfg, uint32_t dim, uint32_t n, sa_quant *q, mu_diag *d)
{
    if (cfg->ddg_noise > 0 && co_metric_coords(cfg->bits, n) != 0)
        return co_ddg_quant(cfg, dim, n, q, d); /* privacy.ddg_noise: rotated, noised */
    *q = (sa_quant){.clip_norm = cfg->clip,
                    .scale = cfg->scale,
                    .w_max = cfg->weight_max,
                    .bits = cfg->bits,
                    .n = n};
    if (q->scale == 0) {
        /* The largest power of two with n·(ceil(w_max·max(clip,1)·scale) + 1) <= 2^(bits-1)-1. */
        double cap = ldexp(1.0, (int)cfg->bits - 1) - 1;
        double per = floor(cap / n) - 1;
        double m = cfg->weight_max * (cfg->clip > 1 ? cfg->clip : 1);
        if (!(per > 0))
            return mu_diag_set(d, MU_ERR_INVALID, "%u orgs at %u bits leave no room for a sum", n,
                               cfg->bits);
        q->scale = ldexp(1.0, (int)floor(log2(per / m)));
        while (q->scale > 0 && n * (ceil(m * q->scale) + 1) > cap)
            q->scale /= 2;
        if (q->scale < 1)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "%u orgs at %u bits with weight_max·clip = %g leave a fixed-point "
                               "scale below 1; raise secure_agg.bits or lower weight_max, clip or "
                               "cohort.max_orgs",
                               n, cfg->bits, m);
    }
    if (co_metric_coords(cfg->bits, n) == 0)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "%u orgs at %u bits leave no room for the loss and token sums", n,
                           cfg->bits);
    return sa_quant_check(q, d);
}

static int choose_quant(co_round *r, uint32_t n, mu_diag *d)
{
    return quant_for(&r->cfg, (uint32_t)r->dim, n, &r->quant, d);
}

int co_round_privacy_plan(const co_config *cfg, uint32_t dim, co_privacy *a, mu_diag *diag)
{
    sa_quant q;
    int rc = co_config_check(cfg, diag);
    if (rc == MU_OK)
        rc = quant_for(cfg, dim, cfg->max_orgs, &q, diag);
    return rc != MU_OK ? rc : co_privacy_init(a, cfg, dim, q.scale, diag);
}

const co_privacy *co_round_privacy(const co_round *r)
{
    return &r->acct;
}

int co_round_check_config(const co_config *cfg, mu_diag *diag)
{
    int rc = co_config_check(cfg, diag);
    sa_quant q;
    return rc != MU_OK ? rc : quant_for(cfg, 0, cfg->max_orgs, &q, diag);
}

/* MU_OK, or MU_ERR_NOMEM with nothing started. Reserves the round's events (ROUND_START,
 * ROUND, DONE) and its history entry first, so that its end is always queued. */
static int start_round(co_round *r, double now)
{
    free(r->ids_tmp);
    r->ids_tmp = calloc(r->n_orgs, sizeof *r->ids_tmp);
    uint64_t *score = calloc(r->n_orgs, sizeof *score);
    free(r->drops);
    r->drops = calloc(r->n_orgs ? r->n_orgs : 1, sizeof *r->drops);
    r->n_drops = 0;
    r->cap_drops = r->drops ? (uint32_t)r->n_orgs : 0;
    if (!r->ids_tmp || !score || !r->drops || reserve(r, 3, 1) != MU_OK) {
        free(score);
        return MU_ERR_NOMEM;
    }
    r->round++;
    /* cohort.eval_fraction: evaluation rounds rank the orgs by a score that does not depend on
     * the round, so every evaluation measures the same orgs (while they are connected). */
    int fixed = r->next_is_eval && r->cfg.eval_fraction > 0;
    double fraction = fixed ? r->cfg.eval_fraction : r->cfg.fraction;
    uint32_t n_conn = 0;
    for (size_t i = 0; i < r->n_orgs; i++) {
        if (!connected(r, &r->orgs[i], now))
            continue;
        uint32_t id = (uint32_t)i + 1;
        uint64_t sc = fixed ? hash_u64(r->cfg.seed, 0, id, "eval-cohort")
                            : hash_u64(r->cfg.seed, r->round, id, "cohort");
        size_t k = n_conn++; /* insertion sort by (score, id): n is small next to training */
        while (k > 0 && (score[k - 1] > sc || (score[k - 1] == sc && r->ids_tmp[k - 1] > id))) {
            score[k] = score[k - 1];
            r->ids_tmp[k] = r->ids_tmp[k - 1];
            k--;
        }
        score[k] = sc;
        r->ids_tmp[k] = id;
    }
    free(score);
    uint32_t n = (uint32_t)ceil(fraction * n_conn);
    if (n < r->cfg.min_orgs)
        n = r->cfg.min_orgs;
    if (n > r->cfg.max_orgs)
        n = r->cfg.max_orgs;
    if (n > n_conn)
        n = n_conn;
    for (uint32_t i = 0; i < n; i++)
        r->orgs[r->ids_tmp[i] - 1].selected = 1;

    co_round_kind kind = r->next_is_eval ? CO_ROUND_EVAL : CO_ROUND_TRAIN;
    memset(&r->cur, 0, sizeof r->cur);
    r->cur.round = r->round;
    r->cur.kind = (uint8_t)kind;
    r->cur.orgs_selected = n;
    r->cur.t_start = now;
    r->cur.loss = NAN;
    r->cur.epsilon = r->cur.record_epsilon = NAN;
    co_round_config *c = &r->rcfg;
    memset(c, 0, sizeof *c);
    c->round = r->round;
    c->kind = (uint8_t)kind;
    c->weight = (uint8_t)r->cfg.weight;
    c->seed = hash_u64(r->cfg.seed, r->round, 0, "round");
    c->steps = r->cfg.steps;
    c->batch = r->cfg.batch;
    c->seq = r->cfg.seq;
    c->lr = r->cfg.lr;
    c->fedprox_mu = r->cfg.fedprox_mu;
    c->dim = (uint32_t)r->dim;
    c->bits = r->cfg.bits;
    c->quant_n = n;
    c->clip = r->cfg.clip;
    c->weight_max = r->cfg.weight_max;
    c->dp_clip = r->cfg.dp_clip;
    c->dp_noise = r->cfg.dp_clip > 0 ? r->cfg.dp_noise : 0;
    c->dp_sampling = r->cfg.dp_clip > 0 ? (uint8_t)(r->cfg.dp_sampling + 1) : 0;
    r->version++;
    push_event(r, CO_EVENT_ROUND_START, &r->cur, NULL)->orgs_connected = n_conn;
    if (kind == CO_ROUND_EVAL) {
        r->phase = CO_PHASE_EVAL;
        r->deadline = now + r->cfg.eval_s;
        return MU_OK;
    }
    mu_diag d = {{0}};
    r->phase = CO_PHASE_TRAIN;
    r->deadline = now + r->cfg.train_s;
    /* co_round_new checked the config for max_orgs >= n, so this cannot fail in practice. */
    if (choose_quant(r, n, &d) != MU_OK) {
        char why[300];
        snprintf(why, sizeof why, "quantisation: %.200s", d.msg);
        abort_round(r, now, why);
        return MU_OK;
    }
    c->scale = r->quant.scale;
    if (r->cfg.ddg_noise > 0) {
        c->ddg_noise = r->cfg.ddg_noise;
        c->ddg_min = co_ddg_min(&r->cfg);
        if (n < c->ddg_min) {
            char why[160];
            snprintf(why, sizeof why, "only %u orgs selected, below privacy.min_survivors %u", n,
                     c->ddg_min);
            c->ddg_noise = 0, c->ddg_min = 0;
            abort_round(r, now, why);
        }
    }
    return MU_OK;
}

/* ---- the driver's calls ---------------------------------------------------------------- */

static void close_phase(co_round *r, double now)
{
    if (r->phase == CO_PHASE_TRAIN || r->phase == CO_PHASE_EVAL)
        start_secagg(r, now);
    else if (r->phase == CO_PHASE_SECAGG)
        close_stages(r, now);
}

/* TRAIN or EVAL: closes the phase once every selected org has reported. */
static void close_if_reported(co_round *r, double now)
{
    for (size_t i = 0; i < r->n_orgs; i++)
        if (r->orgs[i].selected && !r->orgs[i].reported)
            return;
    close_phase(r, now); /* no need to wait for the deadline */
}

int co_round_tick(co_round *r, double now)
{
    if (r->phase != CO_PHASE_IDLE && r->phase != CO_PHASE_DONE && now >= r->deadline)
        close_phase(r, now);
    char why[256] = "";
    if (r->phase == CO_PHASE_IDLE && (federation_done(r) || budget_spent(r, why, sizeof why))) {
        if (reserve(r, 1, 0) != MU_OK)
            return MU_ERR_NOMEM;
        r->phase = CO_PHASE_DONE;
        push_event(r, CO_EVENT_DONE, NULL, why[0] ? why : NULL);
        r->version++;
    }
    if (r->phase != CO_PHASE_IDLE)
        return MU_OK;
    uint32_t n_conn = 0;
    for (size_t i = 0; i < r->n_orgs; i++)
        n_conn += (uint32_t)connected(r, &r->orgs[i], now);
    if (n_conn < r->cfg.min_orgs) {
        r->ready_since = -1;
        return MU_OK;
    }
    if (r->ready_since < 0)
        r->ready_since = now;
    /* Every org that can take part is here: no reason to wait. With an allow-list (orgs:),
     * that is every listed org, not only those registered so far: one slower to start than
     * the others gets cohort.wait_s to join instead of missing the first round. */
    size_t expected = r->cfg.n_orgs > r->n_orgs ? r->cfg.n_orgs : r->n_orgs;
    if (n_conn == expected || now - r->ready_since >= r->cfg.wait_s)
        return start_round(r, now);
    return MU_OK;
}

double co_round_next_deadline(const co_round *r)
{
    if (r->phase == CO_PHASE_TRAIN || r->phase == CO_PHASE_SECAGG || r->phase == CO_PHASE_EVAL)
        return r->deadline;
    if (r->phase == CO_PHASE_IDLE && r->ready_since >= 0)
        return r->ready_since + r->cfg.wait_s;
    return INFINITY;
}

uint64_t co_round_version(const co_round *r)
{
    return r->version;
}

int co_round_next_task(co_round *r, uint32_t id, double now, co_task *task)
{
    memset(task, 0, sizeof *task);
    slot *s = find_slot(r, id);
    if (!s)
        return MU_ERR_NOTFOUND;
    s->last_seen = now;
    task->org_id = id;
    task->kind = CO_TASK_WAIT;
    task->cfg.round = r->round;
    if (r->phase == CO_PHASE_DONE) {
        task->kind = CO_TASK_DONE;
        return MU_OK;
    }
    if ((r->phase == CO_PHASE_TRAIN || r->phase == CO_PHASE_EVAL) && s->selected && !s->reported) {
        task->kind = r->phase == CO_PHASE_TRAIN ? CO_TASK_TRAIN : CO_TASK_EVAL;
        task->cfg = r->rcfg;
        task->deadline = r->deadline;
        return MU_OK;
    }
    if (r->phase != CO_PHASE_SECAGG || s->member < 0 || s->left)
        return MU_OK;
    const member *m = &r->members[s->member];
    sa_stage stage = sa_server_stage(r->sa);
    if (m->answered)
        return MU_OK;
    if (stage == SA_STAGE_ADVERTISE) {
        task->n_cohort = r->n_members;
        task->cohort_ids = r->member_ids;
        task->cohort_pks = r->member_pks;
    } else if (!m->mail) {
        return MU_OK; /* dropped at an earlier stage: nothing more this round */
    }
    task->kind = CO_TASK_SECAGG;
    task->cfg = r->rcfg;
    task->deadline = r->deadline;
    task->stage = (uint8_t)stage;
    task->sa_msg = m->mail;
    task->sa_len = m->mail_len;
    return MU_OK;
}

static int on_report(co_round *r, slot *s, const uint8_t *msg, size_t len, double now,
                     mu_diag *diag)
{
    co_report rep;
    uint32_t id = (uint32_t)(s - r->orgs) + 1;
    if (co_report_decode(&rep, msg, len) != MU_OK)
        return mu_diag_set(diag, MU_ERR_FORMAT, "org %u: malformed report", id);
    if (rep.type == CO_REPORT_LEAVE) {
        if (rep.round > r->round)
            return mu_diag_set(diag, MU_ERR_PROTOCOL,
                               "org %u: leave for round %llu, but round %llu is the latest", id,
                               (unsigned long long)rep.round, (unsigned long long)r->round);
        r->cur.bytes_in += len;
        return co_round_leave(r, id, now);
    }
    if (rep.round != r->round || !s->selected)
        return mu_diag_set(diag, MU_ERR_PROTOCOL,
                           "org %u: report for round %llu, but it is not in round %llu's cohort",
                           id, (unsigned long long)rep.round, (unsigned long long)r->round);
    co_phase want = rep.type == CO_REPORT_READY ? CO_PHASE_TRAIN : CO_PHASE_EVAL;
    if ((want == CO_PHASE_TRAIN) != (r->cur.kind == CO_ROUND_TRAIN))
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "org %u: wrong kind of report for round %llu", id,
                           (unsigned long long)r->round);
    if (s->reported)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "org %u: duplicate report", id);
    if (r->phase != want)
        return mu_diag_set(diag, MU_ERR_TIMEOUT, "org %u: report after the deadline", id);
    s->reported = 1; /* no numbers: the round's loss is in its secure sum */
    r->cur.bytes_in += len;
    r->version++;
    close_if_reported(r, now);
    return MU_OK;
}

int co_round_on_message(co_round *r, uint32_t id, const uint8_t *msg, size_t len, double now,
                        mu_diag *diag)
{
    slot *s = find_slot(r, id);
    if (!s)
        return mu_diag_set(diag, MU_ERR_NOTFOUND, "message from unregistered org %u", id);
    s->last_seen = now;
    if (len >= 2 && msg[0] == 'C' && msg[1] == 'R')
        return on_report(r, s, msg, len, now, diag);
    if (len < 2 || msg[0] != 'S' || msg[1] != 'A')
        return mu_diag_set(diag, MU_ERR_FORMAT, "org %u: unknown message", id);
    if (r->phase == CO_PHASE_TRAIN && s->selected)
        return mu_diag_set(diag, MU_ERR_STATE, "org %u: secure aggregation has not started", id);
    if (r->phase != CO_PHASE_SECAGG)
        return mu_diag_set(diag, MU_ERR_TIMEOUT, "org %u: no secure aggregation is open", id);
    if (s->member < 0)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "org %u: not in this round's cohort", id);
    if (s->left)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "org %u: left this round", id);
    sa_outbox_clear(&r->scratch);
    int rc = sa_server_handle(r->sa, id, msg, len, &r->scratch, diag);
    sa_outbox_clear(&r->scratch);
    if (rc != MU_OK)
        return rc;
    r->members[s->member].answered = 1;
    r->cur.bytes_in += len;
    r->version++;
    if (secagg_pending(r) == 0)
        close_stages(r, now);
    return MU_OK;
}

int co_round_leave(co_round *r, uint32_t id, double now)
{
    slot *s = find_slot(r, id);
    if (!s)
        return MU_ERR_NOTFOUND;
    s->last_seen = -1;
    if (!s->selected || s->left)
        return MU_OK; /* not in the round in flight, or left it already */
    s->left = 1;
    r->version++;
    if (r->phase == CO_PHASE_TRAIN || r->phase == CO_PHASE_EVAL) {
        /* as if it missed the deadline: out of the cohort, its report (if any) unused */
        note_drop(r, id, r->phase == CO_PHASE_TRAIN ? WI_STAGE_TRAIN : WI_STAGE_EVAL);
        s->selected = s->reported = 0;
        close_if_reported(r, now);
    } else if (r->phase == CO_PHASE_SECAGG && s->member >= 0 && secagg_pending(r) == 0) {
        close_stages(r, now); /* as a dropout: the stage closes without it */
    }
    return MU_OK;
}

int co_round_disconnect(co_round *r, uint32_t id)
{
    slot *s = find_slot(r, id);
    if (!s)
        return MU_ERR_NOTFOUND;
    s->last_seen = -1;
    return MU_OK;
}

int co_round_poll_event(co_round *r, co_event *ev)
{
    if (r->head_events >= r->n_events)
        return 0;
    free(r->polled_drops); /* the previous event's list: valid until now */
    *ev = r->events[r->head_events];
    r->polled_drops = (co_drop *)ev->dropped;
    r->events[r->head_events++].dropped = NULL;
    return 1;
}

void co_drops_describe(const co_drop *d, size_t n, char *buf, size_t cap)
{
    size_t at = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        int k = snprintf(buf + at, cap - at, "%s%s at %s", i ? ", " : "", d[i].name,
                         wi_stage_name(d[i].stage));
        at += k > 0 ? (size_t)k : 0;
    }
}

int co_event_describe(const co_event *ev, char *buf, size_t cap)
{
    const co_metrics *m = &ev->metrics;
    unsigned long long round = (unsigned long long)m->round;
    int warn = 0;
    if (ev->kind == CO_EVENT_ROUND_START) {
        snprintf(buf, cap, "coordinator: round %llu (%s) starts with %u of %u connected orgs",
                 round, m->kind == CO_ROUND_EVAL ? "eval" : "train", m->orgs_selected,
                 ev->orgs_connected);
    } else if (ev->kind == CO_EVENT_ROUND && m->outcome == CO_ROUND_ABORTED) {
        snprintf(buf, cap, "coordinator: round %llu aborted: %s", round, ev->reason);
        warn = 1;
    } else if (ev->kind == CO_EVENT_ROUND && m->kind == CO_ROUND_EVAL) {
        snprintf(buf, cap,
                 "coordinator: evaluation round %llu: loss %.4f over %.0f tokens from %u orgs",
                 round, m->loss, m->tokens, m->orgs_completed);
    } else if (ev->kind == CO_EVENT_ROUND) {
        snprintf(buf, cap, "coordinator: round %llu done: %u of %u orgs in the sum, loss %.4f",
                 round, m->orgs_completed, m->orgs_selected, m->loss);
    } else if (ev->kind == CO_EVENT_NOTICE) {
        snprintf(buf, cap, "%s", ev->reason);
        warn = 1;
    } else if (ev->kind == CO_EVENT_DONE && ev->reason[0]) {
        snprintf(buf, cap, "coordinator: federation stopped: %s", ev->reason);
        warn = 1;
    } else if (cap) {
        buf[0] = '\0';
    }
    size_t len = cap ? strlen(buf) : 0;
    if (ev->kind == CO_EVENT_ROUND && ev->n_dropped && len + 12 < cap) {
        memcpy(buf + len, "; dropped: ", 12);
        co_drops_describe(ev->dropped, ev->n_dropped, buf + len + 11, cap - len - 11);
    }
    return warn;
}

void co_round_status(const co_round *r, double now, co_status *st)
{
    memset(st, 0, sizeof *st);
    st->round = r->round;
    st->phase = r->phase;
    st->stage = r->phase == CO_PHASE_SECAGG ? (int)sa_server_stage(r->sa) : 0;
    st->stage_name = co_phase_name(r->phase, st->stage);
    st->orgs_registered = (uint32_t)r->n_orgs;
    for (size_t i = 0; i < r->n_orgs; i++) {
        st->orgs_connected += (uint32_t)connected(r, &r->orgs[i], now);
        st->orgs_in_cohort += (uint32_t)r->orgs[i].selected;
    }
    if (r->phase == CO_PHASE_TRAIN || r->phase == CO_PHASE_EVAL) {
        for (size_t i = 0; i < r->n_orgs; i++)
            st->orgs_pending += (uint32_t)(r->orgs[i].selected && !r->orgs[i].reported);
    } else if (r->phase == CO_PHASE_SECAGG) {
        st->orgs_pending = (uint32_t)secagg_pending(r);
    }
    st->deadline = co_round_next_deadline(r);
    st->train_rounds_done = r->train_done;
    co_privacy_epsilon(&r->acct, r->n_released, &st->epsilon, &st->record_epsilon);
    st->epsilon_all_honest = co_privacy_epsilon_all_honest(&r->acct, r->n_released);
    st->colluders = r->acct.colluders;
    st->epsilon_budget = r->acct.budget;
    st->delta = r->acct.delta;
    if (r->n_history) {
        st->has_last = 1;
        st->last = r->history[r->n_history - 1];
    }
}

const float *co_round_global(const co_round *r, size_t *dim)
{
    *dim = r->dim;
    return r->global;
}

const co_tensor *co_round_tensors(const co_round *r, size_t *n)
{
    *n = r->n_tensors;
    return r->tensors;
}

const co_metrics *co_round_history(const co_round *r, size_t *n)
{
    *n = r->n_history;
    return r->history;
}

const co_strategy *co_round_strategy(const co_round *r)
{
    return r->strategy;
}

void co_round_add_bytes(co_round *r, uint64_t bytes_in, uint64_t bytes_out)
{
    r->cur.bytes_in += bytes_in;
    r->cur.bytes_out += bytes_out;
}
