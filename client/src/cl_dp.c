/* cl_dp.c - an org's local training with DP-SGD (train/include/tr_dp.h), when the round
 * config asks for it: records are the disjoint windows of seq + 1 tokens of the org's data,
 * each step's batch a Poisson or fixed-size sample of them, noise keyed by the job's key. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"
#include "tr_data.h"
#include "tr_dp.h"

/* Copies records idx[0..k) of the job's tokens into the engine's batch (grown to fit). */
static int gather(cl_engine *e, const cl_train_job *job, const int64_t *idx, int64_t k)
{
    size_t T = job->seq, need = (size_t)k * T;
    if (need > e->cap) {
        int32_t *in = realloc(e->inputs, need * sizeof *in);
        if (!in)
            return MU_ERR_NOMEM;
        e->inputs = in;
        int32_t *tg = realloc(e->targets, need * sizeof *tg);
        if (!tg)
            return MU_ERR_NOMEM;
        e->targets = tg;
        e->cap = need;
    }
    for (int64_t i = 0; i < k; i++) {
        const int32_t *w = job->tokens + idx[i] * (int64_t)(T + 1);
        memcpy(e->inputs + (size_t)i * T, w, T * sizeof(int32_t));
        memcpy(e->targets + (size_t)i * T, w + 1, T * sizeof(int32_t));
    }
    return MU_OK;
}

int cl_engine_train_dp(cl_engine *e, const cl_train_job *job, float *delta, double *loss_sum,
                       double *tokens, mu_diag *diag)
{
    tr_model *m = e->model;
    int64_t n = (int64_t)e->dim, records = job->n_tokens / ((int64_t)job->seq + 1);
    if (records < (int64_t)job->batch)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "DP-SGD: %lld records of seq %u + 1 tokens, fewer than batch %u",
                           (long long)records, job->seq, job->batch);
    if (job->seq > (uint32_t)tr_model_config(m)->max_pos)
        return mu_diag_set(diag, MU_ERR_INVALID, "sequence length %u exceeds the model's %d",
                           job->seq, tr_model_config(m)->max_pos);
    int rc = tr_lora_set(m, job->global, n);
    if (rc != MU_OK)
        return mu_diag_set(diag, rc, "the global adapter does not fit the model");
    tr_dp_config dc = {.clip = job->dp_clip,
                       .noise = job->dp_noise,
                       .sampling = job->dp_sampling == 2 ? TR_DP_FIXED : TR_DP_POISSON,
                       .n_records = records,
                       .batch = (int)job->batch,
                       .key = job->dp_key};
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, job->lr);
    tr_dp *dp = tr_dp_new(&dc, m, diag);
    tr_optim *o = dp ? tr_optim_new(&oc, n, diag) : NULL;
    int64_t *idx = o ? malloc(sizeof *idx * (size_t)records) : NULL;
    if (!idx) {
        rc = dp && o ? mu_diag_set(diag, MU_ERR_NOMEM, "out of memory") : MU_ERR_INVALID;
        goto out;
    }
    tr_model_set_forwards(m, job->forwards);
    float *w = tr_lora_trainable(m), *g = tr_lora_grad(m);
    double ls = 0, tk = 0;
    for (uint32_t j = 0; j < job->steps; j++) {
        uint64_t s = job->first_step + j;
        int64_t k = tr_dp_sample(dp, s, idx);
        float loss = 0;
        if ((rc = gather(e, job, idx, k)) != MU_OK ||
            (rc = tr_dp_grad(dp, e->inputs, e->targets, (int)k, (int)job->seq, s, g, n, &loss,
                             diag)) != MU_OK)
            goto out;
        if (job->fedprox_mu > 0) /* post-processing of the private gradient */
            for (int64_t q = 0; q < n; q++)
                g[q] += (float)job->fedprox_mu * (w[q] - job->global[q]);
        if ((rc = tr_optim_step(o, w, g, n, NULL)) != MU_OK)
            goto out;
        if (k > 0) {
            ls += (double)loss * (double)k * job->seq;
            tk += (double)k * job->seq;
        }
    }
    for (int64_t q = 0; q < n; q++)
        delta[q] = w[q] - job->global[q];
    *loss_sum = ls;
    *tokens = tk;
out:
    /* as cl_engine_train: keep the global, not what the org's data taught the model */
    memcpy(tr_lora_trainable(m), job->global, (size_t)n * sizeof(float));
    tr_model_zero_grad(m);
    if (idx)
        sodium_memzero(idx, sizeof *idx * (size_t)records);
    free(idx);
    tr_optim_free(o);
    tr_dp_free(dp);
    return rc == MU_ERR_NOMEM ? mu_diag_set(diag, rc, "out of memory") : rc;
}
