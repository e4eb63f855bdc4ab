/* co_strategy.c - FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad on flat float vectors. */
#include "co_strategy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_err.h"

struct co_strategy {
    co_strategy_params p;
    size_t d;
    uint64_t step;
    float *state; /* (n_state * d): m then v, one allocation */
};

static const char *const names[] = {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"};

void co_strategy_params_default(co_strategy_params *p, co_strategy_kind kind)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->eta = 1.0;
    p->momentum = 0.9;
    p->beta1 = 0.9;
    p->beta2 = 0.99;
    p->tau = 1e-3;
    if (kind == CO_STRATEGY_FEDADAM || kind == CO_STRATEGY_FEDYOGI ||
        kind == CO_STRATEGY_FEDADAGRAD)
        p->eta = 1e-2;
}

int co_strategy_params_check(const co_strategy_params *p, char *msg, size_t msg_len)
{
    const char *bad = NULL;
    if ((unsigned)p->kind > CO_STRATEGY_FEDADAGRAD)
        bad = "unknown strategy kind";
    else if (!(p->eta > 0) || !isfinite(p->eta))
        bad = "server learning rate eta must be > 0";
    else if (!(p->momentum >= 0 && p->momentum < 1))
        bad = "momentum must be in [0, 1)";
    else if (!(p->beta1 >= 0 && p->beta1 < 1))
        bad = "beta1 must be in [0, 1)";
    else if (!(p->beta2 >= 0 && p->beta2 < 1))
        bad = "beta2 must be in [0, 1)";
    else if (!(p->tau > 0) || !isfinite(p->tau))
        bad = "tau must be > 0";
    if (!bad)
        return MU_OK;
    if (msg && msg_len)
        snprintf(msg, msg_len, "%s", bad);
    return MU_ERR_INVALID;
}

const char *co_strategy_name(co_strategy_kind kind)
{
    return (unsigned)kind <= CO_STRATEGY_FEDADAGRAD ? names[kind] : "?";
}

int co_strategy_parse(const char *name, co_strategy_kind *kind)
{
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *kind = (co_strategy_kind)i;
            return MU_OK;
        }
    }
    return MU_ERR_INVALID;
}

static int n_state_of(co_strategy_kind kind)
{
    switch (kind) {
    case CO_STRATEGY_FEDAVG:
        return 0;
    case CO_STRATEGY_FEDAVGM:
        return 1;
    default:
        return 2;
    }
}

co_strategy *co_strategy_new(const co_strategy_params *p, size_t d)
{
    if (co_strategy_params_check(p, NULL, 0) != MU_OK)
        return NULL;
    co_strategy *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    s->d = d;
    size_t n = (size_t)n_state_of(p->kind) * d;
    if (n) {
        s->state = calloc(n, sizeof(float));
        if (!s->state) {
            free(s);
            return NULL;
        }
    }
    return s;
}

void co_strategy_free(co_strategy *s)
{
    if (!s)
        return;
    free(s->state);
    free(s);
}

static void apply_adaptive(co_strategy *s, float *x, const float *delta)
{
    const co_strategy_params *p = &s->p;
    float *m = s->state, *v = s->state + s->d;
    double eta = p->eta;
    if (p->bias_correction) {
        double t = (double)(s->step + 1);
        eta = p->eta * sqrt(1.0 - pow(p->beta2, t)) / (1.0 - pow(p->beta1, t));
    }
    for (size_t i = 0; i < s->d; i++) {
        double g = delta[i], g2 = g * g;
        double mi = p->beta1 * m[i] + (1.0 - p->beta1) * g;
        double vi = v[i];
        if (p->kind == CO_STRATEGY_FEDADAM) {
            vi = p->beta2 * vi + (1.0 - p->beta2) * g2;
        } else if (p->kind == CO_STRATEGY_FEDYOGI) {
            double diff = vi - g2;
            double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
            vi = vi - (1.0 - p->beta2) * g2 * sign;
        } else {
            vi = vi + g2;
        }
        m[i] = (float)mi;
        v[i] = (float)vi;
        x[i] = (float)((double)x[i] + eta * mi / (sqrt(vi) + p->tau));
    }
}

int co_strategy_apply(co_strategy *s, float *x, const float *delta, size_t d)
{
    if (d != s->d)
        return MU_ERR_INVALID;
    for (size_t i = 0; i < d; i++)
        if (!isfinite(delta[i]))
            return MU_ERR_INVALID;
    const co_strategy_params *p = &s->p;
    switch (p->kind) {
    case CO_STRATEGY_FEDAVG:
        for (size_t i = 0; i < d; i++)
            x[i] = (float)((double)x[i] + p->eta * delta[i]);
        break;
    case CO_STRATEGY_FEDAVGM:
        for (size_t i = 0; i < d; i++) {
            double mi = p->momentum * s->state[i] + delta[i];
            s->state[i] = (float)mi;
            x[i] = (float)((double)x[i] + p->eta * mi);
        }
        break;
    default:
        apply_adaptive(s, x, delta);
        break;
    }
    s->step++;
    return MU_OK;
}

const co_strategy_params *co_strategy_get_params(const co_strategy *s)
{
    return &s->p;
}

size_t co_strategy_dim(const co_strategy *s)
{
    return s->d;
}

int co_strategy_n_state(const co_strategy *s)
{
    return n_state_of(s->p.kind);
}

uint64_t co_strategy_step(const co_strategy *s)
{
    return s->step;
}

const float *co_strategy_m(const co_strategy *s)
{
    return n_state_of(s->p.kind) >= 1 ? s->state : NULL;
}

const float *co_strategy_v(const co_strategy *s)
{
    return n_state_of(s->p.kind) >= 2 ? s->state + s->d : NULL;
}

int co_strategy_set_state(co_strategy *s, uint64_t step, const float *m, const float *v, size_t d)
{
    int n = n_state_of(s->p.kind);
    if (d != s->d || (m != NULL) != (n >= 1) || (v != NULL) != (n >= 2))
        return MU_ERR_INVALID;
    if (m && d)
        memcpy(s->state, m, d * sizeof(float));
    if (v && d)
        memcpy(s->state + d, v, d * sizeof(float));
    s->step = step;
    return MU_OK;
}
