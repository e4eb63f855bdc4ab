/* cl_cohort.c - whom an org aggregates with: the cohort of an ADVERTISE task against the org's
 * pinned roster and minimum cohort size (cl_participant.h, attack 1 of issue 10). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"

static int member_cmp(const void *a, const void *b)
{
    return memcmp(((const cl_member *)a)->pk, ((const cl_member *)b)->pk, SA_SIGN_PK_BYTES);
}

int cl_roster_copy(cl_member **out, const cl_member *members, size_t n)
{
    *out = NULL;
    if (n == 0)
        return MU_OK;
    cl_member *r = malloc(n * sizeof *r);
    if (!r)
        return MU_ERR_NOMEM;
    memcpy(r, members, n * sizeof *r);
    qsort(r, n, sizeof *r, member_cmp);
    *out = r;
    return MU_OK;
}

/* The index of pk in the sorted roster, or -1. */
static long roster_find(const cl_member *r, size_t n, const uint8_t *pk)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(r[mid].pk, pk, SA_SIGN_PK_BYTES);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int cl_cohort_check(const cl_cohort_rule *rule, const co_task *t, mu_diag *diag)
{
    if (t->n_cohort < rule->min_cohort)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: round %llu: a cohort of %u orgs, this org takes part only in "
                           "cohorts of at least %u",
                           rule->name, (unsigned long long)t->cfg.round, t->n_cohort,
                           rule->min_cohort);
    if (rule->n_members == 0)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: no pinned cohort members (org config cohort.members): "
                           "refusing to aggregate with keys only the coordinator vouches for",
                           rule->name);
    uint8_t *seen = calloc(rule->n_members, 1);
    if (!seen)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    int rc = MU_OK, self = 0;
    for (uint32_t i = 0; i < t->n_cohort && rc == MU_OK; i++) {
        const uint8_t *pk = t->cohort_pks[i];
        if (sodium_memcmp(pk, rule->self_pk, SA_SIGN_PK_BYTES) == 0) {
            if (self++)
                rc = mu_diag_set(diag, MU_ERR_INVALID,
                                 "org %s: round %llu: this org's key is in the cohort twice",
                                 rule->name, (unsigned long long)t->cfg.round);
            continue;
        }
        long at = roster_find(rule->members, rule->n_members, pk);
        if (at < 0)
            rc = mu_diag_set(diag, MU_ERR_INVALID,
                             "org %s: round %llu: cohort member id %u has a key not in this "
                             "org's pinned members",
                             rule->name, (unsigned long long)t->cfg.round, t->cohort_ids[i]);
        else if (seen[at]++)
            rc = mu_diag_set(diag, MU_ERR_INVALID,
                             "org %s: round %llu: pinned member %s is in the cohort twice",
                             rule->name, (unsigned long long)t->cfg.round, rule->members[at].name);
    }
    free(seen);
    return rc;
}
