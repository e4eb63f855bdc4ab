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

/* The smallest c <= k with log2(n) + log2 P[Bin(k, p) >= c+1] <= -bits: the most of k
 * neighbours that are corrupt (or dropped) at any of the n orgs, except with probability
 * 2^-bits. One pass from the top of the tail, O(k). */
static uint32_t tail_bound(uint32_t n, uint32_t k, double p, double bits)
{
    if (p <= 0.0)
        return 0;
    double limit = exp2(-bits - log2((double)n)), total = 0.0;
    for (uint32_t x = k; x >= 1; x--) {
        double lc = lgamma(k + 1.0) - lgamma(x + 1.0) - lgamma(k - x + 1.0);
        total += exp(lc + x * log(p) + (k - x) * log1p(-p));
        if (total > limit)
            return x; /* P[>= x] too large, P[>= x+1] small enough */
    }
    return 0;
}

static uint32_t keff_of(uint32_t n, uint32_t k)
{
    return k < n - 1 ? k : n - 1;
}

/* c for (n, k_eff) under p: the probabilistic bound, never above a third of the neighbours
 * (beyond that the claim is the deterministic one: up to k_eff/3 colluders). */
static uint32_t colluders(uint32_t n, uint32_t k_eff, const sa_graph_params *p)
{
    uint32_t c = tail_bound(n, k_eff, p->corrupt_frac, p->sigma_bits);
    return c < k_eff / 3 ? c : k_eff / 3;
}

static uint32_t threshold_for(uint32_t k_eff, uint32_t c)
{
    return (k_eff + 1 + c) / 2 + 1;
}

uint32_t sa_max_colluders(uint32_t n, uint32_t k_eff)
{
    if (n < 2)
        return 0;
    sa_graph_params p = sa_graph_params_default();
    return colluders(n, keff_of(n, k_eff), &p);
}

uint32_t sa_min_threshold(uint32_t n, uint32_t k_eff)
{
    if (n < 2)
        return 0;
    k_eff = keff_of(n, k_eff);
    return threshold_for(k_eff, sa_max_colluders(n, k_eff));
}

uint32_t sa_max_dropped(uint32_t n, uint32_t k_eff)
{
    if (n < 2)
        return 0;
    sa_graph_params p = sa_graph_params_default();
    k_eff = keff_of(n, k_eff);
    return tail_bound(n, k_eff, p.drop_frac, p.eta_bits);
}

uint32_t sa_min_survivors(uint32_t n, uint32_t t)
{
    if (n < 2)
        return t;
    sa_graph_params p = sa_graph_params_default();
    uint32_t lost = tail_bound(1, n, p.drop_frac, p.eta_bits);
    uint32_t m = n - lost;
    return m > t ? m : t;
}

static int params_ok(uint32_t n, const sa_graph_params *p)
{
    return n >= 2 && n <= SA_MAX_ORGS && p && p->corrupt_frac >= 0 && p->corrupt_frac < 0.5 &&
           p->drop_frac >= 0 && p->drop_frac < 1 && p->sigma_bits > 0 && p->eta_bits > 0;
}

int sa_graph_claim_of(uint32_t n, uint32_t k, uint32_t t, const sa_graph_params *p,
                      sa_graph_claim *out)
{
    if (!params_ok(n, p) || !out)
        return MU_ERR_INVALID;
    uint32_t k_eff = keff_of(n, k);
    double un = log2((double)n);
    out->k_eff = k_eff;
    out->t = t;
    out->c_sigma = tail_bound(n, k_eff, p->corrupt_frac, p->sigma_bits);
    out->c = colluders(n, k_eff, p);
    /* 2t > k_eff + 1 + c holds for every c up to 2t - k_eff - 2 */
    out->c_holds = 2 * t > k_eff + 1 ? (int32_t)(2 * t - k_eff - 2) : -1;
    out->max_dropped = tail_bound(n, k_eff, p->drop_frac, p->eta_bits);
    uint32_t tolerated = k_eff + 1 >= t ? k_eff + 1 - t : 0;
    if (out->max_dropped < tolerated)
        tolerated = out->max_dropped;
    out->dropped_ok = tolerated;
    out->sec_log2 =
        out->c_holds < 0 ? 0.0 : log2_tail(k_eff, p->corrupt_frac, (uint32_t)out->c_holds + 1) + un;
    out->cor_log2 = log2_tail(k_eff, p->drop_frac, tolerated + 1) + un;
    if (out->sec_log2 > 0)
        out->sec_log2 = 0;
    if (out->cor_log2 > 0)
        out->cor_log2 = 0;
    return MU_OK;
}

int sa_graph_choose(uint32_t n, const sa_graph_params *p, uint32_t *k, uint32_t *t)
{
    if (!params_ok(n, p))
        return MU_ERR_INVALID;
    double un = log2((double)n);
    uint32_t kmin = sa_min_degree(n);
    for (uint32_t kk = kmin + (kmin % 2); kk < n - 1; kk += 2) {
        /* the colluders an org may meet among its kk neighbours, at 2^-sigma; a ring whose
         * bound exceeds a third of the neighbours is not worth its dropout cost */
        uint32_t c = tail_bound(n, kk, p->corrupt_frac, p->sigma_bits);
        if (c > kk / 3)
            continue;
        for (uint32_t tt = threshold_for(kk, c); tt <= kk + 1; tt++) {
            double cor = log2_tail(kk, p->drop_frac, kk + 1 - tt) + un; /* < t live holders */
            if (cor <= -p->eta_bits) {
                *k = kk;
                *t = tt;
                return MU_OK;
            }
        }
    }
    *k = n - 1;
    *t = threshold_for(n - 1, colluders(n, n - 1, p));
    return MU_OK;
}
