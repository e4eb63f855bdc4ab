/* sa_graph.c - the neighbour graph (complete or Harary ring) and the (k, t) rule. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"

long sa_ids_find(const uint32_t *ids, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && ids[lo] == id) ? (long)lo : -1;
}

int sa_ids_ascending(const uint32_t *ids, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (ids[i] <= ids[i - 1])
            return 0;
    return 1;
}

typedef struct {
    uint64_t rank;
    uint32_t idx;
} rank_item;

static int rank_cmp(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

int sa_graph_build(sa_graph *g, const uint8_t session[SA_HASH_BYTES], uint32_t m,
                   const uint32_t *ids, uint32_t k)
{
    memset(g, 0, sizeof *g);
    if (m == 0)
        return MU_ERR_INVALID;
    g->m = m;
    g->k_eff = k < m - 1 ? k : m - 1;
    if (g->k_eff < m - 1 && (g->k_eff % 2) != 0)
        return MU_ERR_INVALID;
    g->pos = malloc(m * sizeof *g->pos);
    g->at = malloc(m * sizeof *g->at);
    rank_item *r = malloc(m * sizeof *r);
    if (!g->pos || !g->at || !r) {
        free(r);
        sa_graph_deinit(g);
        return MU_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < m; i++) {
        uint8_t h[8];
        crypto_generichash(h, sizeof h, (const uint8_t *)&ids[i], 4, session, SA_HASH_BYTES);
        memcpy(&r[i].rank, h, 8);
        r[i].idx = i;
    }
    qsort(r, m, sizeof *r, rank_cmp);
    for (uint32_t p = 0; p < m; p++) {
        g->at[p] = r[p].idx;
        g->pos[r[p].idx] = p;
    }
    free(r);
    return MU_OK;
}

void sa_graph_deinit(sa_graph *g)
{
    free(g->pos);
    free(g->at);
    memset(g, 0, sizeof *g);
}

int sa_graph_adjacent(const sa_graph *g, uint32_t i, uint32_t j)
{
    if (i == j)
        return 0;
    if (g->k_eff >= g->m - 1)
        return 1;
    uint32_t a = g->pos[i], b = g->pos[j];
    uint32_t dist = a > b ? a - b : b - a;
    if (g->m - dist < dist)
        dist = g->m - dist;
    return dist <= g->k_eff / 2;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : (x > y);
}

uint32_t sa_graph_neighbours(const sa_graph *g, uint32_t i, uint32_t *out)
{
    uint32_t c = 0;
    if (g->k_eff >= g->m - 1) {
        for (uint32_t j = 0; j < g->m; j++)
            if (j != i)
                out[c++] = j;
        return c;
    }
    uint32_t p = g->pos[i];
    for (uint32_t s = 1; s <= g->k_eff / 2; s++) {
        out[c++] = g->at[(p + s) % g->m];
        out[c++] = g->at[(p + g->m - s) % g->m];
    }
    qsort(out, c, sizeof *out, u32_cmp);
    return c;
}

/* ---- the (k, t) rule ---- */

sa_graph_params sa_graph_params_default(void)
{
    sa_graph_params p = {0.05, 0.10, 40.0, 20.0};
    return p;
}

/* log2 P[Bin(n, p) >= x], summed in log space. */
static double log2_tail(uint32_t n, double p, uint32_t x)
{
    if (x == 0)
        return 0.0;
    if (x > n || p <= 0.0)
        return -INFINITY;
    double total = 0.0;
    for (uint32_t i = x; i <= n; i++) {
        double lc = lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0);
        total += exp(lc + i * log(p) + (n - i) * log1p(-p));
    }
    return total > 0 ? log2(total) : -INFINITY;
}

int sa_graph_choose(uint32_t n, const sa_graph_params *p, uint32_t *k, uint32_t *t)
{
    if (n < 2 || n > SA_MAX_ORGS || !p || !(p->corrupt_frac >= 0 && p->corrupt_frac < 0.5) ||
        !(p->drop_frac >= 0 && p->drop_frac < 1) || !(p->sigma_bits > 0) || !(p->eta_bits > 0))
        return MU_ERR_INVALID;
    double un = log2((double)n);
    uint32_t kmin = sa_min_degree(n);
    for (uint32_t kk = kmin + (kmin % 2); kk < n - 1; kk += 2) {
        /* holders = kk neighbours + the org itself; the org's own share is honest. */
        for (uint32_t tt = sa_min_threshold(kk); tt <= kk + 1; tt++) {
            double sec = log2_tail(kk, p->corrupt_frac, tt) + un;       /* t corrupt neighbours */
            double cor = log2_tail(kk, p->drop_frac, kk + 1 - tt) + un; /* < t live nbrs */
            if (sec <= -p->sigma_bits && cor <= -p->eta_bits) {
                *k = kk;
                *t = tt;
                return MU_OK;
            }
        }
    }
    *k = n - 1;
    *t = sa_min_threshold(n - 1);
    return MU_OK;
}
