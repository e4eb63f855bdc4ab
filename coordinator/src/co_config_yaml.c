/* co_config_yaml.c - loading a coordinator config from YAML (libyaml via mu_yaml). */
#include "co_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_addr.h"
#include "mu_yaml.h"

typedef struct {
    const mu_yaml_doc *doc;
    mu_diag *diag;
    int rc;
} ld;

static const mu_yaml_node *section(ld *l, const char *name, const char *const *keys)
{
    const mu_yaml_node *m = mu_yaml_get(l->doc->root, name);
    if (!m || l->rc)
        return NULL;
    l->rc = mu_yaml_check_keys(l->doc, m, keys, l->diag);
    return l->rc ? NULL : m;
}

static void get_u32(ld *l, const mu_yaml_node *m, const char *key, long long lo, long long hi,
                    uint32_t *out)
{
    long long v = *out;
    if (m && !l->rc && (l->rc = mu_yaml_get_int(l->doc, m, key, lo, hi, &v, l->diag)) == 0)
        *out = (uint32_t)v;
}

static void get_dbl(ld *l, const mu_yaml_node *m, const char *key, double lo, double hi,
                    double *out)
{
    if (m && !l->rc)
        l->rc = mu_yaml_get_double(l->doc, m, key, lo, hi, out, l->diag);
}

static void get_str(ld *l, const mu_yaml_node *m, const char *key, char *out, size_t cap)
{
    const char *s = NULL;
    if (!m || l->rc || (l->rc = mu_yaml_get_str(l->doc, m, key, &s, l->diag)) != 0 || !s)
        return;
    if (strlen(s) >= cap) {
        l->rc = mu_yaml_error(l->doc, mu_yaml_get(m, key), l->diag, "'%s' is too long (max %zu)",
                              key, cap - 1);
        return;
    }
    memcpy(out, s, strlen(s) + 1);
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void load_orgs(ld *l, co_config *cfg)
{
    const mu_yaml_node *seq = mu_yaml_get(l->doc->root, "orgs");
    if (!seq || l->rc)
        return;
    if (seq->kind != MU_YAML_SEQ) {
        l->rc = mu_yaml_error(l->doc, seq, l->diag, "'orgs' must be a list of {name, public_key}");
        return;
    }
    cfg->orgs = calloc(seq->n_items ? seq->n_items : 1, sizeof *cfg->orgs);
    if (!cfg->orgs) {
        l->rc = mu_diag_set(l->diag, MU_ERR_NOMEM, "out of memory");
        return;
    }
    static const char *const keys[] = {"name", "public_key", NULL};
    for (size_t i = 0; i < seq->n_items && !l->rc; i++) {
        const mu_yaml_node *o = seq->items[i];
        co_allowed_org *a = &cfg->orgs[i];
        if ((l->rc = mu_yaml_check_keys(l->doc, o, keys, l->diag)) != 0 ||
            (l->rc = mu_yaml_require(l->doc, o, "name", l->diag)) != 0)
            return;
        get_str(l, o, "name", a->name, sizeof a->name);
        char hex[2 * CO_ORG_PK_BYTES + 8] = "";
        get_str(l, o, "public_key", hex, sizeof hex);
        if (l->rc)
            return;
        if (!a->name[0]) {
            l->rc = mu_yaml_error(l->doc, mu_yaml_get(o, "name"), l->diag, "empty org name");
            return;
        }
        cfg->n_orgs++;
        if (!hex[0])
            continue;
        if (strlen(hex) != 2 * CO_ORG_PK_BYTES) {
            l->rc = mu_yaml_error(l->doc, mu_yaml_get(o, "public_key"), l->diag,
                                  "public_key must be 64 hex digits (an Ed25519 key)");
            return;
        }
        for (size_t k = 0; k < CO_ORG_PK_BYTES; k++) {
            int hi = hex_val(hex[2 * k]), lo = hex_val(hex[2 * k + 1]);
            if (hi < 0 || lo < 0) {
                l->rc = mu_yaml_error(l->doc, mu_yaml_get(o, "public_key"), l->diag,
                                      "public_key must be 64 hex digits (an Ed25519 key)");
                return;
            }
            a->pk[k] = (uint8_t)(hi << 4 | lo);
        }
        a->has_pk = 1;
    }
}

static int load_doc(const mu_yaml_doc *doc, co_config *cfg, mu_diag *diag)
{
    ld l = {doc, diag, 0};
    if (!doc->root)
        return co_config_check(cfg, diag);
    if (doc->root->kind != MU_YAML_MAP)
        return mu_yaml_error(doc, doc->root, diag, "a config file must be a mapping of keys");
    /* "model" (base model and LoRA shape) is read by the serve driver: nd_model_spec_load */
    static const char *const top[] = {"federation", "cohort", "train", "secure_agg", "strategy",
                                      "deadlines",  "server", "orgs",  "model",      NULL};
    if ((l.rc = mu_yaml_check_keys(doc, doc->root, top, diag)) != 0)
        return l.rc;

    static const char *const kf[] = {"name",           "seed",       "rounds", "eval_every",
                                     "checkpoint_dir", "export_dir", NULL};
    const mu_yaml_node *m = section(&l, "federation", kf);
    get_str(&l, m, "name", cfg->name, sizeof cfg->name);
    long long v = (long long)cfg->seed;
    if (m && !l.rc && (l.rc = mu_yaml_get_int(doc, m, "seed", 0, INT64_MAX, &v, diag)) == 0)
        cfg->seed = (uint64_t)v;
    v = (long long)cfg->rounds;
    if (m && !l.rc && (l.rc = mu_yaml_get_int(doc, m, "rounds", 0, 1000000000, &v, diag)) == 0)
        cfg->rounds = (uint64_t)v;
    get_u32(&l, m, "eval_every", 0, 1000000, &cfg->eval_every);
    get_str(&l, m, "checkpoint_dir", cfg->checkpoint_dir, sizeof cfg->checkpoint_dir);
    get_str(&l, m, "export_dir", cfg->export_dir, sizeof cfg->export_dir);

    static const char *const kc[] = {"min_orgs", "max_orgs",    "fraction",
                                     "wait_s",   "available_s", NULL};
    m = section(&l, "cohort", kc);
    get_u32(&l, m, "min_orgs", 2, 65536, &cfg->min_orgs);
    get_u32(&l, m, "max_orgs", 2, 65536, &cfg->max_orgs);
    get_dbl(&l, m, "fraction", 1e-9, 1, &cfg->fraction);
    get_dbl(&l, m, "wait_s", 0, 1e7, &cfg->wait_s);
    get_dbl(&l, m, "available_s", 1e-3, 1e7, &cfg->available_s);

    static const char *const kt[] = {"steps", "lr", "batch", "seq", "fedprox_mu", "weight", NULL};
    m = section(&l, "train", kt);
    get_u32(&l, m, "steps", 1, 1000000, &cfg->steps);
    get_dbl(&l, m, "lr", 1e-12, 10, &cfg->lr);
    get_u32(&l, m, "batch", 1, 65536, &cfg->batch);
    get_u32(&l, m, "seq", 1, 1000000, &cfg->seq);
    get_dbl(&l, m, "fedprox_mu", 0, 1e6, &cfg->fedprox_mu);
    char weight[32] = "";
    get_str(&l, m, "weight", weight, sizeof weight);
    if (!l.rc && weight[0]) {
        if (strcmp(weight, "examples") == 0)
            cfg->weight = CO_WEIGHT_EXAMPLES;
        else if (strcmp(weight, "uniform") == 0)
            cfg->weight = CO_WEIGHT_UNIFORM;
        else
            l.rc = mu_yaml_error(doc, mu_yaml_get(m, "weight"), diag,
                                 "train.weight must be 'examples' or 'uniform'");
    }

    static const char *const ks[] = {"bits",  "neighbours", "threshold", "clip",
                                     "scale", "weight_max", NULL};
    m = section(&l, "secure_agg", ks);
    get_u32(&l, m, "bits", 8, 32, &cfg->bits);
    get_u32(&l, m, "neighbours", 0, 65535, &cfg->neighbours);
    get_u32(&l, m, "threshold", 0, 65536, &cfg->threshold);
    get_dbl(&l, m, "clip", 1e-12, 1e12, &cfg->clip);
    get_dbl(&l, m, "scale", 0, 1e18, &cfg->scale);
    get_dbl(&l, m, "weight_max", 1e-12, 1e15, &cfg->weight_max);

    static const char *const kst[] = {"name",  "eta", "momentum",        "beta1",
                                      "beta2", "tau", "bias_correction", NULL};
    m = section(&l, "strategy", kst);
    char sname[32] = "";
    get_str(&l, m, "name", sname, sizeof sname);
    if (!l.rc && sname[0]) {
        co_strategy_kind kind;
        if (co_strategy_parse(sname, &kind) != MU_OK)
            l.rc = mu_yaml_error(doc, mu_yaml_get(m, "name"), diag,
                                 "unknown strategy '%s' (expected fedavg, fedavgm, fedadam, "
                                 "fedyogi or fedadagrad)",
                                 sname);
        else
            co_strategy_params_default(&cfg->strategy, kind);
    }
    get_dbl(&l, m, "eta", 1e-12, 1e6, &cfg->strategy.eta);
    get_dbl(&l, m, "momentum", 0, 0.999999, &cfg->strategy.momentum);
    get_dbl(&l, m, "beta1", 0, 0.999999, &cfg->strategy.beta1);
    get_dbl(&l, m, "beta2", 0, 0.999999, &cfg->strategy.beta2);
    get_dbl(&l, m, "tau", 1e-15, 1e6, &cfg->strategy.tau);
    if (m && !l.rc)
        l.rc = mu_yaml_get_bool(doc, m, "bias_correction", &cfg->strategy.bias_correction, diag);

    static const char *const kd[] = {"train_s",       "advertise_s", "share_s", "masked_s",
                                     "consistency_s", "unmask_s",    "eval_s",  NULL};
    m = section(&l, "deadlines", kd);
    get_dbl(&l, m, "train_s", 1e-3, 1e7, &cfg->train_s);
    get_dbl(&l, m, "advertise_s", 1e-3, 1e7, &cfg->advertise_s);
    get_dbl(&l, m, "share_s", 1e-3, 1e7, &cfg->share_s);
    get_dbl(&l, m, "masked_s", 1e-3, 1e7, &cfg->masked_s);
    get_dbl(&l, m, "consistency_s", 1e-3, 1e7, &cfg->consistency_s);
    get_dbl(&l, m, "unmask_s", 1e-3, 1e7, &cfg->unmask_s);
    get_dbl(&l, m, "eval_s", 1e-3, 1e7, &cfg->eval_s);

    static const char *const kv[] = {"listen",   "tls_ca",         "tls_cert", "tls_key",
                                     "insecure", "max_message_mb", NULL};
    m = section(&l, "server", kv);
    get_str(&l, m, "listen", cfg->listen, sizeof cfg->listen);
    const char *why = NULL;
    if (m && !l.rc && mu_yaml_get(m, "listen") &&
        mu_addr_parse(cfg->listen, NULL, 0, NULL, &why) != MU_OK)
        l.rc = mu_yaml_error(doc, mu_yaml_get(m, "listen"), diag, "server.listen '%s' %s",
                             cfg->listen, why);
    get_str(&l, m, "tls_ca", cfg->tls_ca, sizeof cfg->tls_ca);
    get_str(&l, m, "tls_cert", cfg->tls_cert, sizeof cfg->tls_cert);
    get_str(&l, m, "tls_key", cfg->tls_key, sizeof cfg->tls_key);
    if (m && !l.rc)
        l.rc = mu_yaml_get_bool(doc, m, "insecure", &cfg->insecure, diag);
    get_u32(&l, m, "max_message_mb", 1, 2047, &cfg->max_message_mb);

    load_orgs(&l, cfg);
    if (l.rc)
        return l.rc;
    int rc = co_config_check(cfg, diag);
    if (rc != MU_OK) {
        char inner[sizeof diag->msg];
        snprintf(inner, sizeof inner, "%s", diag ? diag->msg : "");
        return mu_diag_set(diag, rc, "%s: %s", doc->path, inner);
    }
    return MU_OK;
}

static int finish(mu_yaml_doc *doc, co_config *cfg, mu_diag *diag)
{
    co_config_default(cfg);
    if (!doc)
        return MU_ERR_INVALID;
    int rc = load_doc(doc, cfg, diag);
    mu_yaml_free(doc);
    if (rc != MU_OK)
        co_config_deinit(cfg);
    return rc;
}

int co_config_load(const char *path, co_config *cfg, mu_diag *diag)
{
    mu_yaml_doc *doc = mu_yaml_load(path, diag);
    if (!doc) {
        co_config_default(cfg);
        return MU_ERR_INVALID;
    }
    return finish(doc, cfg, diag);
}

int co_config_parse(const char *name, const char *text, size_t len, co_config *cfg, mu_diag *diag)
{
    mu_yaml_doc *doc = mu_yaml_parse(name, text, len, diag);
    if (!doc) {
        co_config_default(cfg);
        return MU_ERR_INVALID;
    }
    return finish(doc, cfg, diag);
}
