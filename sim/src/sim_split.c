/* sim_split.c - dealing one pooled dataset to virtual orgs (IID or Dirichlet non-IID). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

uint64_t sim_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

double sim_uniform(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ull;
    return (double)(sim_mix64(*state) >> 11) * 0x1p-53;
}

static double normal(uint64_t *st)
{
    double u1 = sim_uniform(st), u2 = sim_uniform(st);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Gamma(a, 1), Marsaglia & Tsang 2000; a < 1 through Gamma(a+1)·U^(1/a). */
static double gamma_draw(uint64_t *st, double a)
{
    if (a < 1) {
        double u = sim_uniform(st);
        return gamma_draw(st, a + 1) * pow(u > 0 ? u : 1e-300, 1.0 / a);
    }
    double d = a - 1.0 / 3, c = 1.0 / sqrt(9 * d);
    for (;;) {
        double x = normal(st), v = 1 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = sim_uniform(st);
        if (log(u > 0 ? u : 1e-300) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

int sim_split_tokens(const int32_t *tokens, int64_t n, sim_split split, uint32_t orgs,
                     uint32_t chunks, double alpha, uint64_t seed, int32_t *out, int64_t *counts,
                     mu_diag *diag)
{
    if (orgs < 1 || (split != SIM_SPLIT_IID && split != SIM_SPLIT_DIRICHLET) ||
        (split == SIM_SPLIT_DIRICHLET && !(alpha > 0)))
        return mu_diag_set(diag, MU_ERR_INVALID, "bad split");
    if (chunks == 0)
        chunks = split == SIM_SPLIT_IID ? 16 * orgs : 8;
    if (n < (int64_t)chunks)
        return mu_diag_set(diag, MU_ERR_INVALID, "%" PRId64 " tokens, fewer than %u chunks", n,
                           chunks);
    int64_t clen = n / chunks;
    uint64_t st = sim_mix64(seed ^ 0x73706c6974ull); /* "split" */
    /* owner[c][j]: tokens of chunk c that go to org j (iid: the whole chunk to one org). */
    int64_t *take = calloc((size_t)chunks * orgs, sizeof *take);
    uint32_t *perm = malloc(sizeof *perm * chunks);
    double *p = malloc(sizeof *p * orgs);
    int rc = MU_OK;
    if (!take || !perm || !p) {
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        goto out_free;
    }
    for (uint32_t c = 0; c < chunks; c++) {
        int64_t len = c + 1 == chunks ? n - (int64_t)c * clen : clen;
        if (split == SIM_SPLIT_IID) {
            perm[c] = c;
            continue;
        }
        double sum = 0;
        for (uint32_t j = 0; j < orgs; j++)
            sum += p[j] = gamma_draw(&st, alpha);
        int64_t given = 0;
        for (uint32_t j = 0; j + 1 < orgs; j++) {
            int64_t k = sum > 0 ? (int64_t)floor(p[j] / sum * (double)len) : len / orgs;
            if (k > len - given)
                k = len - given;
            take[(size_t)c * orgs + j] = k;
            given += k;
        }
        take[(size_t)c * orgs + orgs - 1] = len - given;
    }
    if (split == SIM_SPLIT_IID) { /* Fisher-Yates, then chunk perm[c] to org c mod orgs */
        for (uint32_t c = chunks - 1; c > 0; c--) {
            uint32_t r = (uint32_t)(sim_uniform(&st) * (c + 1));
            uint32_t t = perm[c];
            perm[c] = perm[r > c ? c : r];
            perm[r > c ? c : r] = t;
        }
        for (uint32_t c = 0; c < chunks; c++) {
            uint32_t k = perm[c];
            take[(size_t)k * orgs + c % orgs] = k + 1 == chunks ? n - (int64_t)k * clen : clen;
        }
    }
    int64_t o = 0;
    for (uint32_t j = 0; j < orgs; j++) {
        int64_t cnt = 0;
        for (uint32_t c = 0; c < chunks; c++) {
            int64_t start = (int64_t)c * clen;
            for (uint32_t i = 0; i < j; i++) /* pieces of earlier orgs come first */
                start += take[(size_t)c * orgs + i];
            int64_t k = take[(size_t)c * orgs + j];
            if (split == SIM_SPLIT_IID)
                start = (int64_t)c * clen;
            memcpy(out + o, tokens + start, sizeof(int32_t) * (size_t)k);
            o += k;
            cnt += k;
        }
        counts[j] = cnt;
    }
out_free:
    free(take);
    free(perm);
    free(p);
    return rc;
}
