/* sim_internal.h - what the files of sim/ share: the state of a run, one thread owns it. */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

#include <inttypes.h>

#include "cl_participant.h"
#include "co_round.h"
#include "ho_gov.h"
#include "ho_org.h"
#include "mu_progress.h"
#include "sim.h"
#include "sim_orgs.h"
#include "tr_data.h"

typedef struct {
    ho_org *h; /* the org as the host layer runs it: participant and policy */
    uint32_t id;
    uint8_t *held; /* a straggler's message, pushed after the deadline */
    size_t held_len;
    uint64_t held_round;
    uint32_t held_stage;
    uint8_t held_sig[HO_SIG_BYTES];
    uint8_t *replay; /* an encoded task to deliver again (replay fault) */
    size_t replay_len;
    int replay_armed; /* the org acted on a later task: deliver the replay at its next pull */
    /* this step */
    co_task task;
    int has_task, straggle;
    ho_reply rep;
    cl_round_log *rounds; /* in memory; kept across injected coordinator restarts */
} vorg;

typedef struct {
    const sim_config *cfg;
    const sim_run_opts *opts;
    co_round *r;
    vorg *orgs;
    uint32_t n;
    cl_member *roster; /* (n) every org's key: each org pins all of them */
    cl_engine **eng;
    int n_eng, threads;
    size_t dim;
    tr_data **data; /* (n_data) */
    size_t n_data;
    int32_t *split_tokens;
    double now, t0;
    double last_event_wall; /* wall time of the previous ROUND event */
    double *round_wall;     /* (rounds) wall seconds each round took */
    size_t cap_wall;
    int done;
    uint64_t rounds, completed, aborted, late_rejected, dropped_in, left_in, restarts, replays;
    int restarted;    /* the configured restart has happened */
    int checkpointed; /* this run has written a checkpoint */
    float *global0;   /* (dim) the first global, for a restart before any checkpoint */
    mu_progress bar;
    uint64_t bar_round;
    uint8_t config_hash[CO_HASH_BYTES];
    uint8_t ckpt_state[CO_HASH_BYTES]; /* the checkpoint a restart resumed (state hash) */
    int resumed_ckpt;
    sim_orgs *orgrep; /* --org-metrics lines, or NULL */
    ho_gov *gov;      /* --charter: the audit log; NULL: none */
} sim;

/* SplitMix64's mixing function, and a uniform double in [0, 1) from a counter state. */
uint64_t sim_mix64(uint64_t x);
double sim_uniform(uint64_t *state);

/* sim_run.c: the coordinator (s->r) from the first global, and the orgs' (re)registration,
 * which also tells each org's host layer the coordinator instance (the restart count). */
int sim_make_round(sim *s, mu_diag *diag);
int sim_register_orgs(sim *s, mu_diag *diag);
/* --charter: opens the audit log (ho_gov_open) for the coordinator s->r, as serve does at each
 * start: resumed after the last round s->r's history holds, instance s->restarts; so after an
 * injected restart the log gets its restart entry. Every org is admitted by the roster. MU_OK
 * without --charter. */
int sim_gov_open(sim *s, mu_diag *diag);

/* sim_faults.c */
/* 1 if the faults f hit org `org` (1-based) at `stage` of `round`: a script entry, or a draw
 * from (seed, kind, org, round, stage) below the stage's probability. */
int sim_fault_hits(const sim_faults *f, uint64_t seed, uint64_t kind, uint32_t org, uint64_t round,
                   int stage);
/* The encoded task org o gets this step (*buf malloc'd, the caller frees it): its pending
 * replay once armed (*replayed = 1), else the coordinator's. MU_OK, MU_ERR_NOMEM, or
 * co_round_next_task's code. */
int sim_next_task_bytes(sim *s, vorg *o, uint8_t **buf, size_t *len, int *replayed);
/* The configured coordinator restart, once its round and stage have come: MU_OK (also when
 * it is not due) or the error of resuming from the checkpoint. */
int sim_restart(sim *s, mu_diag *diag);

#endif
