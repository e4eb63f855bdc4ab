/* nd_serve_gov.c - `mutual serve --charter`: what the serve driver hands the host layer's
 * governance (ho_gov.h): its options, the cohort of each round (the orgs handed its TRAIN or
 * EVAL task, and those dropped), the round's hashes and public metrics. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mu_grow.h"
#include "mu_log.h"
#include "nd_serve_int.h"
#include "wi_blob.h"

int nd_srv_gov_open(server *s, const uint8_t instance[8], mu_diag *d)
{
    if (!s->o.charter_path)
        return MU_OK;
    size_t nh = 0;
    const co_metrics *hist = co_round_history(s->r, &nh);
    ho_gov_opts go = {.chain_path = s->o.charter_path,
                      .key_path = s->o.coordinator_key,
                      .dir = s->cfg.checkpoint_dir,
                      .config_hash = s->cfg_hash,
                      .resumed = nh > 0,
                      .resumed_round = nh ? hist[nh - 1].round : 0,
                      .now = (uint64_t)time(NULL),
                      .skip = s->o.cheat};
    for (int i = 0; i < 8; i++)
        go.instance = go.instance << 8 | instance[i];
    if (s->o.cheat)
        mu_warn("serve: *** TEST MODE: skipping the coordinator's own charter checks (%s%s) ***",
                s->o.cheat & HO_GOV_SKIP_CONFIG ? "config " : "",
                s->o.cheat & HO_GOV_SKIP_ADMIT ? "admission" : "");
    s->gov = ho_gov_open(&go, d);
    if (!s->gov)
        return MU_ERR_INVALID;
    const gv_charter *c = ho_gov_charter(s->gov);
    mu_info("serve: governed by charter '%s' version %llu (%u members); audit log %s/%s",
            c->federation, (unsigned long long)c->version, c->n_members, s->cfg.checkpoint_dir,
            HO_GOV_LOG_FILE);
    return MU_OK;
}

void nd_srv_gov_tasked(server *s, const co_task *t)
{
    if (!s->gov || (t->kind != CO_TASK_TRAIN && t->kind != CO_TASK_EVAL))
        return;
    if (t->cfg.round != s->gov_round) {
        s->gov_round = t->cfg.round;
        s->n_tasked = 0;
    }
    for (size_t i = 0; i < s->n_tasked; i++)
        if (s->tasked[i] == t->org_id)
            return;
    if (MU_GROW(&s->tasked, &s->cap_tasked, s->n_tasked + 1, 16) == MU_OK)
        s->tasked[s->n_tasked++] = t->org_id;
}

/* BLAKE2b-256 of the applied update, new global − `before` (float32 LE). */
static int update_hash(server *s, const blob *before, uint8_t out[GV_HASH_BYTES], mu_diag *d)
{
    size_t dim = 0;
    const float *g = co_round_global(s->r, &dim);
    float *v = malloc((dim ? dim : 1) * sizeof *v);
    uint8_t *b = malloc(wi_blob_len(dim) ? wi_blob_len(dim) : 1);
    int rc = v && b ? wi_blob_decode(v, dim, before->data, before->len, d) : MU_ERR_NOMEM;
    if (rc == MU_OK) {
        for (size_t i = 0; i < dim; i++)
            v[i] = g[i] - v[i];
        wi_blob_encode(b, wi_blob_len(dim), v, dim);
        crypto_generichash(out, GV_HASH_BYTES, b, wi_blob_len(dim), NULL, 0);
    }
    free(v);
    free(b);
    return rc;
}

int nd_srv_gov_round(server *s, const co_event *ev, const blob *before, mu_diag *d)
{
    const co_metrics *m = &ev->metrics;
    if (!s->gov || m->outcome != CO_ROUND_COMPLETED)
        return MU_OK;
    const char *names[GV_COHORT_MAX];
    uint32_t n = 0;
    if (m->round == s->gov_round)
        for (size_t i = 0; i < s->n_tasked && n < GV_COHORT_MAX; i++) {
            const co_org *o = co_round_org(s->r, s->tasked[i]);
            if (o)
                names[n++] = o->name;
        }
    for (uint32_t j = 0; j < ev->n_dropped && n < GV_COHORT_MAX; j++) {
        int seen = 0;
        for (uint32_t i = 0; i < n && !seen; i++)
            seen = !strcmp(names[i], ev->dropped[j].name);
        if (!seen)
            names[n++] = ev->dropped[j].name;
    }
    uint8_t agg[GV_HASH_BYTES];
    int rc = update_hash(s, before, agg, d);
    if (rc)
        return rc;
    char metrics[256];
    snprintf(metrics, sizeof metrics,
             "{\"kind\":\"%s\",\"loss\":%.6g,\"tokens\":%.0f,\"orgs_completed\":%u,"
             "\"orgs_dropped\":%u}",
             m->kind == CO_ROUND_EVAL ? "eval" : "train", isfinite(m->loss) ? m->loss : 0.0,
             m->tokens, m->orgs_completed, m->orgs_dropped);
    ho_gov_round r = {.round = m->round,
                      .cohort = names,
                      .n_cohort = n,
                      .dropped = ev->dropped,
                      .n_dropped = ev->n_dropped,
                      .aggregate_hash = agg,
                      .global_hash = s->cur->sha,
                      .metrics = metrics};
    return ho_gov_log_round(s->gov, &r, (uint64_t)time(NULL), d);
}
