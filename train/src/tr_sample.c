/* tr_sample.c - picking the next token from logits: greedy, temperature, top-k, top-p
 * (tr_generate.h). */
#include <math.h>
#include <stdlib.h>

#include "tr_generate.h"
#include "tr_kernels.h"

typedef struct {
    float p;
    int32_t id;
} cand;

struct tr_sampler {
    tr_sample_config c;
    uint64_t seed, draws;
    int cap;
    float *p; /* (cap) exp((logit - max) / temperature) */
    cand *cd; /* (cap) candidates for top-k / top-p */
};

int tr_sample_config_check(const tr_sample_config *c, mu_diag *d)
{
    if (!(c->temperature >= 0.0f) || !isfinite(c->temperature))
        return mu_diag_set(d, MU_ERR_INVALID, "temperature %g: must be >= 0 (0: greedy)",
                           (double)c->temperature);
    if (c->top_k < 0)
        return mu_diag_set(d, MU_ERR_INVALID, "top-k %d: must be >= 0 (0: no limit)", c->top_k);
    if (!(c->top_p > 0.0f && c->top_p <= 1.0f))
        return mu_diag_set(d, MU_ERR_INVALID, "top-p %g: must be in (0, 1]", (double)c->top_p);
    return MU_OK;
}

tr_sampler *tr_sampler_new(const tr_sample_config *c, uint64_t seed, int V, mu_diag *d)
{
    if (tr_sample_config_check(c, d) < 0)
        return NULL;
    if (V < 1) {
        mu_diag_set(d, MU_ERR_INVALID, "sampler: vocabulary of %d", V);
        return NULL;
    }
    tr_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->p = malloc(sizeof(float) * (size_t)V);
        s->cd = malloc(sizeof(cand) * (size_t)V);
    }
    if (!s || !s->p || !s->cd) {
        tr_sampler_free(s);
        mu_diag_set(d, MU_ERR_NOMEM, "sampler: out of memory");
        return NULL;
    }
    s->c = *c;
    s->seed = seed;
    s->cap = V;
    return s;
}

void tr_sampler_free(tr_sampler *s)
{
    if (!s)
        return;
    free(s->p);
    free(s->cd);
    free(s);
}

int32_t tr_argmax(const float *x, int V)
{
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* The next uniform in [0, 1): draw i of this seed, 53 bits. */
static double uniform(tr_sampler *s)
{
    uint64_t z = tr_splitmix64(s->seed ^ tr_splitmix64(++s->draws));
    return (double)(z >> 11) * 0x1p-53;
}

/* Most likely first; among equal probabilities the lowest id, so the order is total. */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Collects into s->cd every token with p >= t for falling t until the set surely holds the
 * top-k tokens (top_k set) or the nucleus (top-p only): both are prefixes of the sorted
 * order, and the set of p >= t is one too. Returns the count, sorted. */
static int candidates(tr_sampler *s, int V, double total)
{
    const float *p = s->p;
    int n = 0;
    for (float t = 1.0f;; t *= 0.0625f) {
        if (t < 1e-30f)
            t = 0.0f;
        n = 0;
        double mass = 0.0;
        for (int i = 0; i < V; i++)
            if (p[i] >= t) {
                s->cd[n++] = (cand){p[i], i};
                mass += p[i];
            }
        int enough = s->c.top_k > 0 ? n >= s->c.top_k : mass >= (double)s->c.top_p * total;
        if (enough || t == 0.0f)
            break;
    }
    qsort(s->cd, (size_t)n, sizeof(cand), cand_cmp);
    return n;
}

int32_t tr_sampler_pick(tr_sampler *s, const float *logits, int V)
{
    const tr_sample_config *c = &s->c;
    if (V > s->cap)
        abort(); /* a programming error: the sampler was made for a smaller vocabulary */
    if (c->temperature == 0.0f || c->top_k == 1)
        return tr_argmax(logits, V);
    float mx = logits[tr_argmax(logits, V)], inv = 1.0f / c->temperature;
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        s->p[i] = expf((logits[i] - mx) * inv);
        total += s->p[i];
    }
    if (c->top_k == 0 && c->top_p >= 1.0f) {
        double r = uniform(s) * total, acc = 0.0;
        int32_t last = 0;
        for (int i = 0; i < V; i++) {
            if (s->p[i] == 0.0f)
                continue;
            acc += s->p[i];
            last = i;
            if (r < acc)
                return i;
        }
        return last;
    }
    int n = candidates(s, V, total);
    if (c->top_k > 0 && n > c->top_k)
        n = c->top_k;
    /* top-p applies to what top-k left (HF's order), or to the whole distribution. */
    double kept = c->top_k > 0 ? 0.0 : total;
    for (int i = 0; c->top_k > 0 && i < n; i++)
        kept += s->cd[i].p;
    /* The nucleus: each candidate whose more likely ones hold less than top_p of the mass. */
    double lim = (double)c->top_p * kept, acc = 0.0;
    int keep = 0;
    while (keep < n && (keep == 0 || acc < lim))
        acc += s->cd[keep++].p;
    double r = uniform(s) * acc;
    acc = 0.0;
    for (int i = 0; i < keep; i++) {
        acc += s->cd[i].p;
        if (r < acc)
            return s->cd[i].id;
    }
    return s->cd[keep - 1].id;
}
