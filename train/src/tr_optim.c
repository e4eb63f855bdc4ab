/* tr_optim.c - AdamW and SGD written to round where torch.optim rounds, global-norm clipping,
 * the training step and the thread setting. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tr_internal.h"
#include "tr_prof.h"

struct tr_optim {
    tr_optim_config cfg;
    int64_t n, step;
    float *mem; /* m1 (n) then m2 (n, AdamW only): one allocation */
};

tr_optim_config tr_optim_defaults(tr_optim_kind kind, double lr)
{
    tr_optim_config c = {.kind = kind, .lr = lr};
    if (kind == TR_ADAMW) {
        c.beta1 = 0.9;
        c.beta2 = 0.999;
        c.eps = 1e-8;
    }
    return c;
}

tr_optim *tr_optim_new(const tr_optim_config *cfg, int64_t n, mu_diag *d)
{
    const tr_optim_config *c = cfg;
    if (c->kind != TR_ADAMW && c->kind != TR_SGD) {
        mu_diag_set(d, MU_ERR_INVALID, "optimizer: unknown kind %d", (int)c->kind);
        return NULL;
    }
    if (n < 0 || !(c->lr >= 0.0) || !isfinite(c->lr) || !(c->weight_decay >= 0.0) ||
        !(c->grad_clip >= 0.0) || !isfinite(c->weight_decay)) {
        mu_diag_set(d, MU_ERR_INVALID, "optimizer: lr, weight_decay and grad_clip must be >= 0");
        return NULL;
    }
    if (c->kind == TR_ADAMW && (!(c->beta1 >= 0.0 && c->beta1 < 1.0) ||
                                !(c->beta2 >= 0.0 && c->beta2 < 1.0) || !(c->eps >= 0.0))) {
        mu_diag_set(d, MU_ERR_INVALID, "optimizer: AdamW betas must be in [0, 1), eps >= 0");
        return NULL;
    }
    if (c->kind == TR_SGD && !(c->momentum >= 0.0 && c->momentum < 1.0)) {
        mu_diag_set(d, MU_ERR_INVALID, "optimizer: SGD momentum must be in [0, 1)");
        return NULL;
    }
    tr_optim *o = calloc(1, sizeof *o);
    int64_t len = (c->kind == TR_ADAMW ? 2 : 1) * n;
    if (o)
        o->mem = calloc((size_t)(len ? len : 1), sizeof(float));
    if (!o || !o->mem) {
        free(o);
        mu_diag_set(d, MU_ERR_NOMEM, "optimizer: out of memory for %lld parameters", (long long)n);
        return NULL;
    }
    o->cfg = *c;
    o->n = n;
    return o;
}

void tr_optim_free(tr_optim *o)
{
    if (!o)
        return;
    /* The moments are running averages of the gradients of someone's data: wiped (through a
     * volatile pointer, so that the stores are not dropped as dead before free). */
    volatile float *m = o->mem;
    int64_t len = (o->cfg.kind == TR_ADAMW ? 2 : 1) * o->n;
    for (int64_t i = 0; i < len; i++)
        m[i] = 0;
    free(o->mem);
    free(o);
}

const tr_optim_config *tr_optim_get_config(const tr_optim *o)
{
    return &o->cfg;
}

void tr_optim_reset(tr_optim *o)
{
    memset(o->mem, 0, sizeof(float) * (size_t)((o->cfg.kind == TR_ADAMW ? 2 : 1) * o->n));
    o->step = 0;
}

int64_t tr_optim_state_len(const tr_optim *o)
{
    return o->n;
}

float *tr_optim_m1(tr_optim *o)
{
    return o->mem;
}

float *tr_optim_m2(tr_optim *o)
{
    return o->cfg.kind == TR_ADAMW ? o->mem + o->n : NULL;
}

int64_t tr_optim_get_step(const tr_optim *o)
{
    return o->step;
}

void tr_optim_set_step(tr_optim *o, int64_t step)
{
    o->step = step;
}

float tr_grad_clip(float *g, int64_t n, double max_norm)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)g[i] * g[i];
    float norm = (float)sqrt(ss);
    if (max_norm > 0.0) {
        /* torch.nn.utils.clip_grad_norm_: coef = max / (norm + 1e-6), clamped to 1. */
        float coef = (float)max_norm / (norm + 1e-6f);
        if (coef < 1.0f)
            for (int64_t i = 0; i < n; i++)
                g[i] *= coef;
    }
    return norm;
}

/* torch.optim.AdamW, single-tensor path (torch 1.13): Python doubles become float where
 * they meet a float tensor; bias corrections are computed in double. */
static void adamw_step(tr_optim *o, float *p, const float *g)
{
    const tr_optim_config *c = &o->cfg;
    int64_t t = o->step;
    float decay = (float)(1.0 - c->lr * c->weight_decay);
    float b1 = (float)c->beta1, b2 = (float)c->beta2;
    float a1 = (float)(1.0 - c->beta1), a2 = (float)(1.0 - c->beta2);
    double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    float step_size = (float)(c->lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = (float)c->eps;
    float *m1 = o->mem, *m2 = o->mem + o->n;
    for (int64_t i = 0; i < o->n; i++) {
        if (c->weight_decay != 0.0)
            p[i] *= decay;
        m1[i] = m1[i] * b1 + g[i] * a1;
        m2[i] = m2[i] * b2 + a2 * g[i] * g[i];
        float denom = sqrtf(m2[i]) / bc2_sqrt + eps;
        p[i] = p[i] + -step_size * m1[i] / denom;
    }
}

/* torch.optim.SGD (dampening 0, no nesterov): weight decay added to the gradient; the
 * momentum buffer starts as a copy of the first gradient. */
static void sgd_step(tr_optim *o, float *p, const float *g)
{
    const tr_optim_config *c = &o->cfg;
    float wd = (float)c->weight_decay, mom = (float)c->momentum, lr = (float)c->lr;
    float *buf = o->mem;
    for (int64_t i = 0; i < o->n; i++) {
        float d = g[i];
        if (c->weight_decay != 0.0)
            d = d + p[i] * wd;
        if (c->momentum != 0.0) {
            buf[i] = o->step == 1 ? d : buf[i] * mom + d;
            d = buf[i];
        }
        p[i] += -lr * d;
    }
}

int tr_optim_step(tr_optim *o, float *params, float *grad, int64_t n, float *grad_norm)
{
    if (n != o->n)
        return MU_ERR_INVALID;
    float norm = tr_grad_clip(grad, n, o->cfg.grad_clip);
    if (grad_norm)
        *grad_norm = norm;
    o->step++;
    if (o->cfg.kind == TR_ADAMW)
        adamw_step(o, params, grad);
    else
        sgd_step(o, params, grad);
    return MU_OK;
}

int tr_train_step(tr_model *m, tr_optim *o, const int32_t *inputs, const int32_t *targets, int B,
                  int T, float *loss, mu_diag *d)
{
    if (!m->has_lora)
        return mu_diag_set(d, MU_ERR_STATE, "train: no LoRA adapters attached");
    if (!targets)
        return mu_diag_set(d, MU_ERR_INVALID, "train: targets are required");
    double t0 = tr_prof_start();
    tr_model_zero_grad(m);
    tr_prof_stop(TR_PROF_OPTIM, t0);
    int err = tr_model_forward(m, inputs, targets, B, T, loss, d);
    if (err < 0)
        return err;
    if ((err = tr_model_backward(m)) < 0)
        return mu_diag_set(d, err, "train: backward failed");
    t0 = tr_prof_start();
    err = tr_optim_step(o, m->lora_mem, m->lora_grad, m->n_train, NULL);
    tr_prof_stop(TR_PROF_OPTIM, t0);
    if (err < 0)
        return mu_diag_set(d, err, "train: optimizer built for %lld parameters, model has %lld",
                           (long long)o->n, (long long)m->n_train);
    return MU_OK;
}

void tr_threads_set(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int tr_threads_get(void)
{
    return omp_get_max_threads();
}
