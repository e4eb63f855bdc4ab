/* sa_config.c - library init, error strings and round-config validation. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"

int sa_init(void)
{
    if (sodium_init() < 0)
        return MU_ERR_CRYPTO;
    sa_prg_select();
    return MU_OK;
}

const char *sa_strerror(int err)
{
    switch (err) {
    case MU_ERR_CRYPTO:
        return "secure aggregation: a signature or ciphertext check failed";
    case MU_ERR_PROTOCOL:
        return "secure aggregation: the peer broke the protocol";
    case MU_ERR_ABORT:
        return "secure aggregation: aborted (too few orgs left to continue safely)";
    case MU_ERR_TIMEOUT:
        return "secure aggregation: message for a closed stage";
    default:
        return mu_strerror(err);
    }
}

const char *sa_stage_name(sa_stage stage)
{
    static const char *const names[] = {"?",           "advertise", "share", "masked",
                                        "consistency", "unmask",    "done",  "aborted"};
    return stage >= SA_STAGE_ADVERTISE && stage <= SA_STAGE_ABORTED ? names[stage] : names[0];
}

uint32_t sa_min_degree(uint32_t n)
{
    if (n < 2)
        return 0;
    uint32_t lg = 0;
    while (lg < 32 && ((uint64_t)1 << lg) < n)
        lg++;
    uint32_t k = lg > 4 ? lg : 4;
    return k < n - 1 ? k : n - 1;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : (x > y);
}

int sa_config_check(const sa_config *cfg, mu_diag *diag)
{
    if (!cfg || !cfg->org_ids || !cfg->sign_pks)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: config without org list");
    if (cfg->n < 2 || cfg->n > SA_MAX_ORGS)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: cohort of %u orgs (need 2..%u)",
                           cfg->n, SA_MAX_ORGS);
    if (cfg->d > SA_MAX_D)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: d=%u exceeds %u", cfg->d, SA_MAX_D);
    if (cfg->bits < 1 || cfg->bits > 32)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: bits=%u (need 1..32)", cfg->bits);
    if (cfg->min_survivors > cfg->n)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: a minimum of %u survivors in a cohort of %u orgs",
                           cfg->min_survivors, cfg->n);
    uint32_t k_eff = cfg->k < cfg->n - 1 ? cfg->k : cfg->n - 1;
    if (k_eff < sa_min_degree(cfg->n))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: degree k=%u is below the minimum %u for n=%u", cfg->k,
                           sa_min_degree(cfg->n), cfg->n);
    if (k_eff < cfg->n - 1 && k_eff % 2)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: degree k=%u must be even (Harary ring) or >= n-1", cfg->k);
    /* 2t > k_eff + 1 + c: the coordinator, showing different survivor sets to different
     * holders and joined by c colluding holders, never collects t shares of both b and s_sk
     * of one org (each honest holder reveals one kind). */
    uint32_t tmin = sa_min_threshold(cfg->n, k_eff);
    if (cfg->t < tmin)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: threshold t=%u is below the minimum %u for %u share "
                           "holders and up to %u colluders (2t > k_eff+1+c)",
                           cfg->t, tmin, k_eff + 1, sa_max_colluders(cfg->n, k_eff));
    if (cfg->t > k_eff + 1)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: threshold t=%u exceeds the %u share holders", cfg->t,
                           k_eff + 1);
    uint32_t *ids = malloc(cfg->n * sizeof *ids);
    if (!ids)
        return MU_ERR_NOMEM;
    memcpy(ids, cfg->org_ids, cfg->n * sizeof *ids);
    qsort(ids, cfg->n, sizeof *ids, u32_cmp);
    int ok = sa_ids_ascending(ids, cfg->n) && ids[cfg->n - 1] < SA_TO_ALL;
    free(ids);
    if (!ok)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg: org ids must be distinct and below 0x%08X", SA_TO_ALL);
    return MU_OK;
}
