/* sim_orgs.c - the per-org metrics lines (sim_orgs.h). Every function takes t NULL as "no lines".
 */
#include "sim_orgs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "co_wire.h"
#include "wi_json.h"
#include "wi_stage.h"

typedef struct {
    uint64_t round;    /* the round this record is about; 0 = none */
    int in_round;      /* given a task of that round */
    int reached;       /* furthest accepted stage (wi_stage, in round order), -1 = none */
    const char *cause; /* injected fault, or NULL */
    double loss_sum, tokens;
} org_rec;

struct sim_orgs {
    FILE *f;
    uint32_t n;
    org_rec *rec;                     /* (n) */
    char (*names)[SIM_ORGS_NAME_MAX]; /* (n) */
    ho_org **hosts;                   /* (n) borrowed, or NULL */
};

static void rec_reset(org_rec *r, uint64_t round)
{
    *r = (org_rec){.round = round, .reached = -1};
}

sim_orgs *sim_orgs_new(FILE *f, uint32_t n)
{
    sim_orgs *t = calloc(1, sizeof *t);
    if (!t || !(t->rec = calloc(n ? n : 1, sizeof *t->rec)) ||
        !(t->names = calloc(n ? n : 1, sizeof *t->names)) ||
        !(t->hosts = calloc(n ? n : 1, sizeof *t->hosts))) {
        sim_orgs_free(t);
        return NULL;
    }
    t->f = f;
    t->n = n;
    sim_orgs_reset(t);
    return t;
}

void sim_orgs_free(sim_orgs *t)
{
    if (!t)
        return;
    free(t->rec);
    free(t->names);
    free(t->hosts);
    free(t);
}

void sim_orgs_name(sim_orgs *t, uint32_t index, const char *name)
{
    if (t && index < t->n)
        snprintf(t->names[index], sizeof t->names[index], "%s", name);
}

void sim_orgs_org(sim_orgs *t, uint32_t index, ho_org *o)
{
    if (t && index < t->n)
        t->hosts[index] = o;
}

void sim_orgs_reset(sim_orgs *t)
{
    for (uint32_t i = 0; t && i < t->n; i++)
        rec_reset(&t->rec[i], 0);
}

/* A stage's place in its round: a TRAIN or EVAL report first, then the secure aggregation. */
static int order(int stage)
{
    return stage == WI_STAGE_EVAL ? WI_STAGE_TRAIN : stage;
}

/* The record of org index for round, started over when it was about an earlier round; NULL
 * for a task of an earlier round (a replay) or a bad index. */
static org_rec *rec_for(sim_orgs *t, uint32_t index, uint64_t round)
{
    if (!t || index >= t->n)
        return NULL;
    org_rec *r = &t->rec[index];
    if (round < r->round)
        return NULL;
    if (round > r->round)
        rec_reset(r, round);
    return r;
}

void sim_orgs_task(sim_orgs *t, uint32_t index, uint64_t round)
{
    org_rec *r = rec_for(t, index, round);
    if (r)
        r->in_round = 1;
}

void sim_orgs_fault(sim_orgs *t, uint32_t index, uint64_t round, const char *cause)
{
    org_rec *r = rec_for(t, index, round);
    if (r && !r->cause) {
        r->in_round = 1;
        r->cause = cause;
    }
}

void sim_orgs_accepted(sim_orgs *t, uint32_t index, uint64_t round, uint32_t push_stage,
                       const uint8_t *msg, size_t len)
{
    org_rec *r = rec_for(t, index, round);
    if (!r)
        return;
    int stage = (int)push_stage;
    if (push_stage == WI_STAGE_REPORT) {
        co_report rep;
        if (co_report_decode(&rep, msg, len) != MU_OK)
            return;
        stage = rep.type == CO_REPORT_EVAL ? WI_STAGE_EVAL : WI_STAGE_TRAIN;
        r->loss_sum = r->tokens = 0;
        const cl_participant *p = t->hosts[index] ? ho_org_participant(t->hosts[index]) : NULL;
        if (p && rep.type == CO_REPORT_READY) { /* the org's own numbers: no report has any */
            cl_train_info info;
            cl_participant_last_train(p, &info);
            r->loss_sum = info.round == round ? info.loss_sum : 0;
            r->tokens = info.round == round ? info.tokens : 0;
        } else if (p && rep.type == CO_REPORT_EVAL) {
            cl_eval_info info;
            cl_participant_last_eval(p, &info);
            r->loss_sum = info.round == round ? info.loss_sum : 0;
            r->tokens = info.round == round ? info.tokens : 0;
        }
    }
    if (r->reached < 0 || order(stage) > order(r->reached))
        r->reached = stage;
}

/* The coordinator's drop of the org called name in ev (the first stage it did not answer),
 * or NULL. */
static const co_drop *drop_of(const co_event *ev, const char *name)
{
    for (uint32_t i = 0; ev->dropped && i < ev->n_dropped; i++)
        if (!strcmp(ev->dropped[i].name, name))
            return &ev->dropped[i];
    return NULL;
}

static void write_line(wi_str *b, const org_rec *r, const co_event *ev, const char *name)
{
    const co_metrics *m = &ev->metrics;
    int eval = m->kind == CO_ROUND_EVAL;
    /* counted as the coordinator counts orgs_completed: its masked input is in the sum */
    int counted = r->reached >= 0 && order(r->reached) >= WI_STAGE_MASKED;
    const char *outcome = m->outcome != CO_ROUND_COMPLETED ? "aborted"
                          : counted                        ? "completed"
                                                           : "dropped";
    const co_drop *d = drop_of(ev, name);
    wi_str_printf(b, "{\"org\":");
    wi_str_json_string(b, name);
    wi_str_printf(b, ",\"round\":%llu,\"kind\":\"%s\",\"outcome\":\"%s\",\"stage\":",
                  (unsigned long long)m->round, eval ? "eval" : "train", outcome);
    wi_str_json_string(b, r->reached >= 0 ? wi_stage_name(r->reached) : NULL);
    wi_str_printf(b, ",\"dropped_at\":");
    wi_str_json_string(b, d ? wi_stage_name(d->stage) : NULL);
    wi_str_printf(b, ",\"cause\":");
    wi_str_json_string(b, r->cause);
    wi_str_printf(b, ",\"loss\":");
    wi_str_json_number(b, r->tokens > 0 ? r->loss_sum / r->tokens : NAN);
    wi_str_printf(b, ",\"tokens\":%.0f}\n", r->tokens);
}

int sim_orgs_round(sim_orgs *t, const co_event *ev)
{
    const co_metrics *m = &ev->metrics;
    if (!t)
        return MU_OK;
    wi_str b;
    wi_str_init(&b);
    for (uint32_t i = 0; i < t->n; i++) {
        org_rec *r = &t->rec[i];
        if (r->round == m->round && r->in_round)
            write_line(&b, r, ev, t->names[i]);
        if (r->round <= m->round)
            rec_reset(r, 0);
    }
    int rc = wi_str_ok(&b);
    if (rc == MU_OK && b.len && (fwrite(b.s, 1, b.len, t->f) != b.len || fflush(t->f) != 0))
        rc = MU_ERR_IO;
    wi_str_deinit(&b);
    return rc;
}
