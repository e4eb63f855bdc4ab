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
} cl_train_job;

/* delta (dim) = trained - global. */
int cl_engine_train(cl_engine *e, const cl_train_job *job, float *delta, double *loss_sum,
                    double *tokens, mu_diag *diag);
int cl_engine_eval(cl_engine *e, const float *global, const int32_t *tokens, int64_t n_tokens,
                   uint32_t batch, uint32_t seq, double *loss_sum, double *n_out, mu_diag *diag);

#endif
