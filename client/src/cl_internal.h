/* cl_internal.h - what the participant and the engine share inside client/. */
#ifndef CL_INTERNAL_H
#define CL_INTERNAL_H

#include <inttypes.h>

#include "cl_participant.h"
#include "tr_data.h"

struct cl_engine {
    tr_model *model;
    size_t dim;
    int32_t *inputs, *targets; /* (cap) scratch batch */
    size_t cap;
};

/* One round of local training (see cl_participant.h for the data order). */
typedef struct {
    const float *global; /* (dim) */
    const int32_t *tokens;
    int64_t n_tokens;
    uint32_t steps, batch, seq;
    double lr, fedprox_mu;
    uint64_t first_step; /* data step of local step 0 */
    uint64_t forwards;   /* LoRA dropout counter to start from */
    /* DP-SGD (co_round_config dp_*): dp_clip 0 = off; dp_key keys its noise and sampling */
    double dp_clip, dp_noise;
    uint8_t dp_sampling;
    const uint8_t *dp_key; /* (TR_DP_KEY_BYTES) */
} cl_train_job;

/* delta (dim) = trained - global. */
int cl_engine_train(cl_engine *e, const cl_train_job *job, float *delta, double *loss_sum,
                    double *tokens, mu_diag *diag);
/* cl_engine_train when job->dp_clip > 0: DP-SGD on the org's records (cl_dp.c). */
int cl_engine_train_dp(cl_engine *e, const cl_train_job *job, float *delta, double *loss_sum,
                       double *tokens, mu_diag *diag);
int cl_engine_eval(cl_engine *e, const float *global, const int32_t *tokens, int64_t n_tokens,
                   uint32_t batch, uint32_t seq, double *loss_sum, double *n_out, mu_diag *diag);

/* The first dim + 1 values of the masked input when c->ddg_noise > 0: w·clip(x) (x has dim
 * values) through dp_ddg_encode with the round's co_round_config_ddg, its noise and rounding
 * drawn from the stream keyed by `key` (the org's secret), mod 2^bits; then the exact weight
 * coordinate SR(w·scale) from rng_w (NULL: system randomness), as sa_quant_encode writes it.
 * threads: for the noise (the output does not depend on it).
 * MU_OK, MU_ERR_INVALID (a config dp_ddg_check refuses, a wrap probability above
 * CO_DDG_MAX_WRAP, a NaN), MU_ERR_NOMEM or MU_ERR_ABORT (dp_ddg_encode). */
int cl_ddg_encode(uint32_t *q, const float *x, size_t dim, double w, const co_round_config *c,
                  const uint8_t key[DP_SEED_BYTES], const sa_rng *rng_w, int threads,
                  mu_diag *diag);

/* What an org checks in an ADVERTISE task's cohort (cl_participant.h, "Whom an org
 * aggregates with"). members is sorted by key (cl_roster_copy). */
typedef struct {
    const char *name;       /* the org, for messages */
    const uint8_t *self_pk; /* (SA_SIGN_PK_BYTES) */
    const cl_member *members;
    size_t n_members;
    uint32_t min_cohort;
} cl_cohort_rule;

/* *out := a sorted copy of members (NULL when n is 0). MU_OK or MU_ERR_NOMEM. */
int cl_roster_copy(cl_member **out, const cl_member *members, size_t n);
/* MU_OK, or MU_ERR_INVALID naming what is wrong with the cohort, or MU_ERR_NOMEM. */
int cl_cohort_check(const cl_cohort_rule *rule, const co_task *t, mu_diag *diag);

#endif
