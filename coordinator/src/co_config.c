/* co_config.c - coordinator config defaults and checks (no YAML: see co_config_yaml.c). */
#include "co_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void co_config_default(co_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->name, sizeof cfg->name, "mutual");
    cfg->rounds = 10;
    snprintf(cfg->checkpoint_dir, sizeof cfg->checkpoint_dir, "checkpoints");
    cfg->min_orgs = 2;
    cfg->max_orgs = 100;
    cfg->fraction = 1.0;
    cfg->wait_s = 10;
    cfg->available_s = 120;
    cfg->steps = 20;
    cfg->batch = 8;
    cfg->seq = 128;
    cfg->lr = 1e-4;
    cfg->weight = CO_WEIGHT_EXAMPLES;
    cfg->bits = 32;
    cfg->clip = 1.0;
    cfg->weight_max = 1e4;
    co_strategy_params_default(&cfg->strategy, CO_STRATEGY_FEDAVG);
    cfg->train_s = 1800;
    cfg->advertise_s = 60;
    cfg->share_s = 60;
    cfg->masked_s = 600;
    cfg->consistency_s = 60;
    cfg->unmask_s = 120;
    cfg->eval_s = 600;
    snprintf(cfg->listen, sizeof cfg->listen, "0.0.0.0:7443");
    cfg->max_message_mb = 64;
}

void co_config_deinit(co_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->orgs);
    cfg->orgs = NULL;
    cfg->n_orgs = 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int co_config_check(const co_config *cfg, mu_diag *diag)
{
    if (cfg->min_orgs < 2)
        return mu_diag_set(diag, MU_ERR_INVALID, "cohort.min_orgs must be at least 2");
    if (cfg->max_orgs < cfg->min_orgs)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "cohort.max_orgs (%u) is below cohort.min_orgs (%u)", cfg->max_orgs,
                           cfg->min_orgs);
    if (!(cfg->fraction > 0 && cfg->fraction <= 1))
        return mu_diag_set(diag, MU_ERR_INVALID, "cohort.fraction must be in (0, 1]");
    if (cfg->bits < 8 || cfg->bits > 32)
        return mu_diag_set(diag, MU_ERR_INVALID, "secure_agg.bits must be in [8, 32]");
    if (!(cfg->clip > 0) || !(cfg->weight_max > 0) || cfg->scale < 0)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "secure_agg.clip and weight_max must be > 0, scale >= 0");
    if (cfg->steps < 1 || cfg->batch < 1 || cfg->seq < 1 || !(cfg->lr > 0) || cfg->fedprox_mu < 0)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "train: steps, batch, seq, lr must be > 0 and "
                           "fedprox_mu >= 0");
    double dl[] = {cfg->train_s,       cfg->advertise_s, cfg->share_s, cfg->masked_s,
                   cfg->consistency_s, cfg->unmask_s,    cfg->eval_s};
    for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++)
        if (!(dl[i] > 0))
            return mu_diag_set(diag, MU_ERR_INVALID, "deadlines: every stage needs a time > 0");
    char msg[128];
    if (co_strategy_params_check(&cfg->strategy, msg, sizeof msg) != MU_OK)
        return mu_diag_set(diag, MU_ERR_INVALID, "strategy: %s", msg);
    if (cfg->n_orgs < 2)
        return MU_OK;
    /* duplicates: sort pointers to the names and compare neighbours, O(n log n) */
    const char **names = malloc(cfg->n_orgs * sizeof *names);
    if (!names)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_orgs; i++)
        names[i] = cfg->orgs[i].name;
    qsort(names, cfg->n_orgs, sizeof *names, cmp_name);
    for (size_t i = 1; i < cfg->n_orgs; i++)
        if (strcmp(names[i], names[i - 1]) == 0) {
            int rc = mu_diag_set(diag, MU_ERR_INVALID, "orgs: '%s' is listed twice", names[i]);
            free(names);
            return rc;
        }
    free(names);
    return MU_OK;
}
