/* cl_engine.c - the model an org trains: a base model with LoRA attached, and the local
 * training and evaluation loops the participant runs on it. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"
#include "mu_log.h"
#include "tr_bf16.h"
#include "tr_hf.h"

cl_engine *cl_engine_from_model(tr_model *m, const tr_lora_config *lora, uint64_t lora_seed,
                                mu_diag *diag)
{
    if (!m)
        return NULL;
    cl_engine *e = calloc(1, sizeof *e);
    if (!e) {
        mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        goto out_free_model;
    }
    e->model = m;
    if (tr_lora_get_config(m) == NULL && tr_lora_attach(m, lora, lora_seed, diag) != MU_OK)
        goto out_free_engine;
    e->dim = (size_t)tr_lora_trainable_count(m);
    if (e->dim == 0) {
        mu_diag_set(diag, MU_ERR_INVALID, "LoRA has no trainable parameters");
        goto out_free_engine;
    }
    return e;
out_free_engine:
    free(e);
out_free_model:
    tr_model_free(m);
    return NULL;
}

cl_engine *cl_engine_new(const char *base_dir, const tr_lora_config *lora, uint64_t lora_seed,
                         const cl_engine_opts *opts, mu_diag *diag)
{
    cl_engine_opts o = opts ? *opts : (cl_engine_opts){0};
    if ((o.bf16 != 0 && o.bf16 != 1) || (o.checkpointing != 0 && o.checkpointing != 1)) {
        mu_diag_set(diag, MU_ERR_INVALID, "engine options bf16 %d, checkpointing %d: not 0 or 1",
                    o.bf16, o.checkpointing);
        return NULL;
    }
    tr_model *m = tr_hf_model_load_bf16(base_dir, o.bf16, NULL, diag);
    if (!m)
        return NULL;
    tr_model_set_checkpointing(m, o.checkpointing); /* 0 or 1: cannot fail */
    return cl_engine_from_model(m, lora, lora_seed, diag);
}

void cl_engine_free(cl_engine *e)
{
    if (!e)
        return;
    /* the LoRA vector (a global or what the last task left) and the scratch batch (the
     * org's tokens) */
    sodium_memzero(tr_lora_trainable(e->model), e->dim * sizeof(float));
    tr_model_free(e->model);
    if (e->inputs)
        sodium_memzero(e->inputs, e->cap * sizeof *e->inputs);
    if (e->targets)
        sodium_memzero(e->targets, e->cap * sizeof *e->targets);
    free(e->inputs);
    free(e->targets);
    free(e);
}

tr_model *cl_engine_model(cl_engine *e)
{
    return e->model;
}

size_t cl_engine_dim(const cl_engine *e)
{
    return e->dim;
}

int cl_engine_set_checkpointing(cl_engine *e, int on)
{
    return tr_model_set_checkpointing(e->model, on);
}

void cl_engine_log_opts(cl_engine *e, const char *who)
{
    if (tr_model_bf16(e->model))
        mu_info("%s: bf16 base (%s): the update differs from fp32's by bf16 rounding", who,
                tr_bf16_kernel_name());
    if (tr_model_checkpointing(e->model))
        mu_info("%s: per-layer activation checkpointing on (%d layers)", who,
                tr_model_config(e->model)->n_layer);
}

static int reserve_batch(cl_engine *e, size_t n)
{
    if (n <= e->cap)
        return MU_OK;
    int32_t *in = realloc(e->inputs, n * sizeof *in);
    if (!in)
        return MU_ERR_NOMEM;
    e->inputs = in;
    int32_t *tg = realloc(e->targets, n * sizeof *tg);
    if (!tg)
        return MU_ERR_NOMEM;
    e->targets = tg;
    e->cap = n;
    return MU_OK;
}

static int check_shape(cl_engine *e, int64_t n_tokens, int B, int T, const char *what,
                       mu_diag *diag)
{
    const tr_config *mc = tr_model_config(e->model);
    if (T > mc->max_pos)
        return mu_diag_set(diag, MU_ERR_INVALID, "sequence length %d exceeds the model's %d", T,
                           mc->max_pos);
    if (n_tokens <= T)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%" PRId64 " %s tokens, too few for sequence length %d", n_tokens, what,
                           T);
    if (reserve_batch(e, (size_t)B * (size_t)T) != MU_OK)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    return MU_OK;
}

int cl_engine_train(cl_engine *e, const cl_train_job *job, float *delta, double *loss_sum,
                    double *tokens, mu_diag *diag)
{
    if (job->dp_clip > 0)
        return cl_engine_train_dp(e, job, delta, loss_sum, tokens, diag);
    int B = (int)job->batch, T = (int)job->seq, rc;
    int64_t n = (int64_t)e->dim;
    if ((rc = check_shape(e, job->n_tokens, B, T, "training", diag)) != MU_OK)
        return rc;
    tr_model *m = e->model;
    if ((rc = tr_lora_set(m, job->global, n)) != MU_OK)
        return mu_diag_set(diag, rc, "the global adapter does not fit the model");
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, job->lr);
    tr_optim *o = tr_optim_new(&oc, n, diag);
    if (!o)
        return MU_ERR_NOMEM;
    tr_model_set_forwards(m, job->forwards);
    float *w = tr_lora_trainable(m), *g = tr_lora_grad(m);
    double ls = 0;
    for (uint32_t j = 0; j < job->steps; j++) {
        uint64_t s = job->first_step + j;
        for (int i = 0; i < B; i++) {
            int64_t p = tr_data_window(job->n_tokens, B, T, s, i);
            memcpy(e->inputs + (size_t)i * T, job->tokens + p, sizeof(int32_t) * (size_t)T);
            memcpy(e->targets + (size_t)i * T, job->tokens + p + 1, sizeof(int32_t) * (size_t)T);
        }
        float loss;
        tr_model_zero_grad(m);
        if ((rc = tr_model_forward(m, e->inputs, e->targets, B, T, &loss, diag)) != MU_OK ||
            (rc = tr_model_backward(m)) != MU_OK)
            goto out_free_optim;
        if (job->fedprox_mu > 0) {
            float mu = (float)job->fedprox_mu;
            for (int64_t k = 0; k < n; k++)
                g[k] += mu * (w[k] - job->global[k]);
        }
        if ((rc = tr_optim_step(o, w, g, n, NULL)) != MU_OK)
            goto out_free_optim;
        ls += (double)loss * B * T;
    }
    for (int64_t k = 0; k < n; k++)
        delta[k] = w[k] - job->global[k];
    *loss_sum = ls;
    *tokens = (double)job->steps * B * T;
out_free_optim:
    /* The trained weights and the last gradient are the update in other words: the engine
     * keeps the global instead (the optimizer wipes its moments when freed). */
    memcpy(w, job->global, (size_t)n * sizeof *w);
    tr_model_zero_grad(m);
    tr_optim_free(o);
    return rc;
}

int cl_engine_eval(cl_engine *e, const float *global, const int32_t *tokens, int64_t n_tokens,
                   uint32_t batch, uint32_t seq, double *loss_sum, double *n_out, mu_diag *diag)
{
    int B = (int)batch, T = (int)seq, rc;
    if ((rc = check_shape(e, n_tokens, B, T, "held-out", diag)) != MU_OK)
        return rc;
    if ((rc = tr_lora_set(e->model, global, (int64_t)e->dim)) != MU_OK)
        return mu_diag_set(diag, rc, "the global adapter does not fit the model");
    int64_t windows = (n_tokens - 1) / T;
    double ls = 0, tk = 0;
    for (int64_t k0 = 0; k0 < windows; k0 += B) {
        int b = (int)(windows - k0 < B ? windows - k0 : B);
        for (int i = 0; i < b; i++) {
            int64_t p = (k0 + i) * T;
            memcpy(e->inputs + (size_t)i * T, tokens + p, sizeof(int32_t) * (size_t)T);
            memcpy(e->targets + (size_t)i * T, tokens + p + 1, sizeof(int32_t) * (size_t)T);
        }
        float loss;
        if ((rc = tr_model_eval(e->model, e->inputs, e->targets, b, T, &loss, diag)) != MU_OK)
            return rc;
        ls += (double)loss * b * T;
        tk += (double)b * T;
    }
    *loss_sum = ls;
    *n_out = tk;
    return MU_OK;
}
