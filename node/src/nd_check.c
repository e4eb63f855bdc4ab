/* nd_check.c - refuse from the config what serve or join would refuse at start (nd_check.h). */
#include "nd_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "co_config_yaml.h"
#include "co_round.h"
#include "nd_internal.h"
#include "nd_orgcfg.h"
#include "tr_data.h"
#include "tr_hf.h"

/* The node at section.key of doc, or the section, or the root: where to point. */
static const mu_yaml_node *at(const mu_yaml_doc *doc, const char *section, const char *key)
{
    const mu_yaml_node *s = mu_yaml_get(doc->root, section);
    const mu_yaml_node *n = mu_yaml_get(s, key);
    return n ? n : s ? s : doc->root;
}

static int insecure_refused(const mu_yaml_doc *doc, const char *section, const char *key,
                            const char *what, const char *addr, mu_diag *d)
{
    mu_diag inner = {{0}};
    if (nd_insecure_check(what, addr, &inner) == MU_OK)
        return MU_OK;
    return mu_yaml_error(doc, at(doc, section, key), d, "%s", inner.msg);
}

int nd_check_serve_config(const char *path, mu_diag *d)
{
    mu_yaml_doc *doc = mu_yaml_load(path, d);
    if (!doc)
        return MU_ERR_INVALID;
    co_config cfg;
    nd_model_spec spec;
    int rc = co_config_from_yaml(doc, doc->root, CO_CONFIG_CHECK_PATHS, &cfg, d);
    if (rc == MU_OK) {
        if (cfg.insecure)
            rc = insecure_refused(doc, "server", "listen", "listen address", cfg.listen, d);
        mu_diag inner = {{0}};
        if (rc == MU_OK && co_round_check_config(&cfg, &inner) != MU_OK)
            rc = mu_yaml_error(doc, at(doc, "secure_agg", "bits"), d, "secure_agg: %s", inner.msg);
        if (rc == MU_OK && !cfg.insecure && nd_tls_check_server(&cfg, 0, &inner) != MU_OK)
            rc = mu_yaml_error(doc, at(doc, "server", "tls_cert"), d, "%s", inner.msg);
        co_config_deinit(&cfg);
    }
    if (rc == MU_OK)
        rc = nd_model_spec_load(path, &spec, d);
    mu_yaml_free(doc);
    return rc;
}

static int readable(const mu_yaml_doc *doc, const char *section, const char *key, const char *file,
                    mu_diag *d)
{
    if (access(file, R_OK) == 0)
        return MU_OK;
    return mu_yaml_error(doc, at(doc, section, key), d, "%s.%s '%s': %s", section, key, file,
                         strerror(errno));
}

/* join creates the identity key on its first run, and its folder (one level) when missing. */
static int key_folder(const mu_yaml_doc *doc, const char *file, mu_diag *d)
{
    if (access(file, F_OK) == 0)
        return readable(doc, "org", "identity_key", file, d);
    char dir[ND_PATH_MAX];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
    if (!dir[0])
        snprintf(dir, sizeof dir, "/");
    if (access(dir, F_OK) != 0) { /* join would make it: its parent must take it */
        slash = strrchr(dir, '/');
        if (slash)
            dir[slash == dir ? 1 : slash - dir] = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    if (access(dir, W_OK) == 0)
        return MU_OK;
    return mu_yaml_error(doc, at(doc, "org", "identity_key"), d,
                         "org.identity_key '%s': cannot create it in '%s': %s", file, dir,
                         strerror(errno));
}

static int model_folder(const mu_yaml_doc *doc, const char *base, mu_diag *d)
{
    tr_config mc;
    mu_diag inner = {{0}};
    char w[ND_PATH_MAX + 64], idx[ND_PATH_MAX + 64];
    if (tr_hf_config_load(base, &mc, &inner) != MU_OK)
        return mu_yaml_error(doc, at(doc, "model", "base"), d, "%s", inner.msg);
    snprintf(w, sizeof w, "%s/%s", base, TR_HF_WEIGHTS);
    snprintf(idx, sizeof idx, "%s/%s.index.json", base, TR_HF_WEIGHTS);
    if (access(w, R_OK) == 0 || access(idx, R_OK) == 0)
        return MU_OK;
    return mu_yaml_error(doc, at(doc, "model", "base"), d, "model.base '%s': no readable %s", base,
                         TR_HF_WEIGHTS);
}

static int dataset(const mu_yaml_doc *doc, const char *key, const char *file, mu_diag *d)
{
    int err = 0;
    mu_diag inner = {{0}};
    tr_data *td = tr_data_open(file, &err, &inner);
    if (td) {
        tr_data_free(td);
        return MU_OK;
    }
    return mu_yaml_error(doc, at(doc, "data", key), d, "data.%s: %s", key, inner.msg);
}

static int check_org(const mu_yaml_doc *doc, const nd_orgcfg *c, mu_diag *d)
{
    int rc;
    if (c->insecure && (rc = insecure_refused(doc, "coordinator", "address", "coordinator address",
                                              c->address, d)))
        return rc;
    if (!c->insecure && ((rc = readable(doc, "tls", "ca", c->ca, d)) ||
                         (rc = readable(doc, "tls", "cert", c->cert, d)) ||
                         (rc = readable(doc, "tls", "key", c->key, d))))
        return rc;
    mu_diag inner = {{0}};
    if (!c->insecure && nd_tls_check_org(c, &inner) != MU_OK)
        return mu_yaml_error(doc, at(doc, "tls", "cert"), d, "%s", inner.msg);
    if ((rc = key_folder(doc, c->identity_key, d)) || (rc = model_folder(doc, c->base, d)) ||
        (rc = dataset(doc, "train", c->train, d)))
        return rc;
    return c->eval[0] ? dataset(doc, "eval", c->eval, d) : MU_OK;
}

int nd_check_join_config(const char *path, mu_diag *d)
{
    nd_orgcfg c;
    int rc = nd_orgcfg_load(path, &c, d);
    if (rc != MU_OK)
        return rc;
    mu_yaml_doc *doc = mu_yaml_load(path, d);
    if (!doc)
        return MU_ERR_INVALID;
    rc = check_org(doc, &c, d);
    mu_yaml_free(doc);
    return rc;
}
