/* sa_table.h - the rows of the (k, t) and threat-model table in docs/secure_agg.md, computed
 * by the code that chooses the parameters (sa_graph_choose, sa_graph_claim_of). Shared by
 * sa_params (prints the table) and the sa_doc_table test (checks the doc holds these rows). */
#ifndef SA_TABLE_H
#define SA_TABLE_H

#include <stdio.h>

#include "sa.h"

#define SA_TABLE_HEADER                                                                            \
    "| n | k | t | coordinator + c colluders learn nothing, c ≤ | log2 P[an org has more] | "    \
    "neighbours that may drop | log2 P[an org loses more] |\n"                                     \
    "|---|---|---|---|---|---|---|\n"

/* One row for cohort n at (k, t); k = t = 0 means the values sa_graph_choose picks. Returns
 * the snprintf length, or -1 on bad parameters. */
static inline int sa_table_row(char *buf, size_t cap, uint32_t n, uint32_t k, uint32_t t)
{
    sa_graph_params p = sa_graph_params_default();
    if (k == 0 && sa_graph_choose(n, &p, &k, &t) != MU_OK)
        return -1;
    sa_graph_claim c;
    if (sa_graph_claim_of(n, k, t, &p, &c) != MU_OK)
        return -1;
    const char *kind = c.k_eff >= n - 1 ? " (complete)" : "";
    return snprintf(buf, cap, "| %u | %u%s | %u | %d | %.1f | %u | %.1f |", n, c.k_eff, kind, c.t,
                    (int)c.c_holds, c.sec_log2, c.dropped_ok, c.cor_log2);
}

/* The rows the doc carries: the chosen (k, t) for n = 10 .. 10000, then Flower's k = 12 at
 * n = 100 with the smallest threshold a client accepts there. */
#define SA_TABLE_ROWS 6
static inline void sa_table_params(int i, uint32_t *n, uint32_t *k, uint32_t *t)
{
    static const uint32_t ns[] = {10, 20, 100, 1000, 10000};
    *k = *t = 0;
    if (i < 5) {
        *n = ns[i];
    } else {
        *n = 100;
        *k = 12;
        *t = sa_min_threshold(100, 12);
    }
}

#endif
