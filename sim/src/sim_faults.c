/* sim_faults.c - what the simulator injects: fault draws (dropouts, stragglers, replays),
 * replayed tasks, the coordinator restart. */
#include <stdlib.h>
#include <string.h>

#include "co_checkpoint.h"
#include "mu_log.h"
#include "sim_internal.h"
#include "wi_stage.h"

/* A deterministic draw in [0, 1) for (seed, kind, org, round, stage). */
static double draw(uint64_t seed, uint64_t kind, uint32_t org, uint64_t round, int stage)
{
    uint64_t st = sim_mix64(
        seed ^ sim_mix64(kind ^ sim_mix64(org ^ sim_mix64(round ^ sim_mix64((uint64_t)stage)))));
    return sim_uniform(&st);
}

int sim_fault_hits(const sim_faults *f, uint64_t seed, uint64_t kind, uint32_t org, uint64_t round,
                   int stage)
{
    for (size_t i = 0; i < f->n_script; i++)
        if (f->script[i].org == org && f->script[i].stage == stage &&
            (f->script[i].round == 0 || f->script[i].round == round))
            return 1;
    return f->prob[stage] > 0 && draw(seed, kind, org, round, stage) < f->prob[stage];
}

/* The task org o is given this step, encoded as on the wire: the coordinator's, or a replay
 * fault's earlier task once the org has acted on a later one. *replayed says which. */
int sim_next_task_bytes(sim *s, vorg *o, uint8_t **buf, size_t *len, int *replayed)
{
    *replayed = 0;
    if (o->replay && o->replay_armed) {
        *buf = o->replay;
        *len = o->replay_len;
        o->replay = NULL;
        o->replay_armed = 0;
        *replayed = 1;
        return MU_OK;
    }
    co_task b;
    int rc = co_round_next_task(s->r, o->id, s->now, &b);
    if (rc != MU_OK)
        return rc;
    if (s->gov) /* the round's cohort, for its audit entry */
        ho_gov_note_task(s->gov, &b, cl_participant_name(ho_org_participant(o->h)));
    size_t cap = co_task_encoded_len(&b);
    *buf = malloc(cap ? cap : 1);
    if (!*buf)
        return MU_ERR_NOMEM;
    if ((rc = co_task_encode(&b, *buf, cap, len)) != MU_OK) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* The injected coordinator restart (like kill -9 of `mutual serve`): the co_round and what
 * it had in flight are gone; a new one resumes from the last checkpoint, the orgs register
 * again and see a new coordinator instance, so the round in flight starts over. */
int sim_restart(sim *s, mu_diag *diag)
{
    co_status st;
    co_round_status(s->r, s->now, &st);
    int stage = st.phase == CO_PHASE_SECAGG ? st.stage
                : st.phase == CO_PHASE_EVAL ? WI_STAGE_EVAL
                                            : WI_STAGE_TRAIN;
    const sim_event *e = &s->cfg->restart;
    if (!s->cfg->has_restart || s->restarted || st.phase == CO_PHASE_DONE ||
        st.phase == CO_PHASE_IDLE || st.round < e->round ||
        (st.round == e->round && stage < e->stage))
        return MU_OK;
    mu_info("sim: the coordinator restarts in round %" PRIu64 " at %s", st.round,
            wi_stage_name(stage));
    s->restarted = 1;
    s->restarts++;
    sim_orgs_reset(s->orgrep); /* the round in flight starts over */
    co_round_free(s->r);
    s->r = NULL;
    for (uint32_t i = 0; i < s->n; i++) { /* what was on its way to or from it is lost */
        vorg *o = &s->orgs[i];
        free(o->held);
        free(o->replay);
        o->held = o->replay = NULL;
        o->replay_armed = 0;
    }
    int rc = sim_make_round(s, diag);
    if (rc != MU_OK)
        return rc;
    if (s->checkpointed) { /* else no round of this run had finished: a fresh start (a
                            * checkpoint left in the folder by an earlier run is not ours) */
        co_checkpoint ck;
        rc = co_checkpoint_load(s->cfg->co.checkpoint_dir, s->config_hash, 0, &ck, diag);
        if (rc != MU_OK)
            return rc;
        co_checkpoint_state_hash(&ck, s->ckpt_state);
        s->resumed_ckpt = 1;
        rc = co_round_restore(s->r, &ck, diag);
        co_checkpoint_deinit(&ck);
        if (rc != MU_OK)
            return rc;
    }
    if (s->gov) { /* the new coordinator reopens the audit log: its restart entry */
        ho_gov_free(s->gov);
        s->gov = NULL;
        if ((rc = sim_gov_open(s, diag)) != MU_OK)
            return rc;
    }
    return sim_register_orgs(s, diag);
}
