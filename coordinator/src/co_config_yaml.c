/* co_config_yaml.c - loading a coordinator config from YAML (libyaml via mu_yaml), driven by
 * the table of co_config.c: one generic reader per key type. */
#include "co_config_yaml.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mu_addr.h"
#include "wi_bytes.h"
#include "wi_org.h"

#define SECTION_MAX_KEYS 32

typedef struct {
    const mu_yaml_doc *doc;
    mu_diag *diag;
} ld;

static void *field(co_config *cfg, const co_key *k)
{
    return (char *)cfg + k->offset;
}

static int read_string(ld *l, const mu_yaml_node *n, const co_key *k, char *out)
{
    const char *s;
    int rc = mu_yaml_as_str(l->doc, n, &s, l->diag);
    if (rc)
        return rc;
    char path[96];
    co_key_path(k, path, sizeof path);
    if (strlen(s) >= k->size)
        return mu_yaml_error(l->doc, n, l->diag, "%s is too long (max %zu bytes)", path,
                             k->size - 1);
    memcpy(out, s, strlen(s) + 1);
    if (k->type != CO_KEY_ADDR)
        return MU_OK;
    const char *why = NULL;
    if (mu_addr_parse(out, NULL, 0, NULL, &why) != MU_OK)
        return mu_yaml_error(l->doc, n, l->diag, "%s '%s' %s", path, out, why);
    return MU_OK;
}

static int read_choice(ld *l, const mu_yaml_node *n, const co_key *k, co_config *cfg)
{
    const char *s;
    int rc = mu_yaml_as_str(l->doc, n, &s, l->diag);
    if (rc)
        return rc;
    if (k->type == CO_KEY_STRATEGY) {
        co_strategy_kind kind;
        if (co_strategy_parse(s, &kind) != MU_OK)
            return mu_yaml_error(l->doc, n, l->diag,
                                 "unknown strategy '%s' (expected fedavg, fedavgm, fedadam, "
                                 "fedyogi or fedadagrad)",
                                 s);
        co_strategy_params_default(&cfg->strategy, kind); /* the keys after it override */
        return MU_OK;
    }
    for (int i = 0; k->choices[i]; i++)
        if (strcmp(s, k->choices[i]) == 0) {
            *(int *)field(cfg, k) = i;
            return MU_OK;
        }
    char path[96], allowed[128];
    co_key_range_text(k, allowed, sizeof allowed);
    return mu_yaml_error(l->doc, n, l->diag, "%s must be one of %s, got '%s'",
                         co_key_path(k, path, sizeof path), allowed, s);
}

static int read_number(ld *l, const mu_yaml_node *n, const co_key *k, co_config *cfg)
{
    double v;
    long long iv = 0;
    int rc = k->type == CO_KEY_DOUBLE
                 ? mu_yaml_as_double(l->doc, n, -1e308, 1e308, &v, l->diag)
                 : mu_yaml_as_int(l->doc, n, LLONG_MIN, LLONG_MAX, &iv, l->diag);
    if (rc)
        return rc;
    if (k->type != CO_KEY_DOUBLE)
        v = (double)iv;
    char why[256];
    if (co_key_check_number(k, v, why, sizeof why) != MU_OK)
        return mu_yaml_error(l->doc, n, l->diag, "%s", why);
    if (k->type == CO_KEY_U32)
        *(uint32_t *)field(cfg, k) = (uint32_t)iv;
    else if (k->type == CO_KEY_U64)
        *(uint64_t *)field(cfg, k) = (uint64_t)iv;
    else
        *(double *)field(cfg, k) = v;
    return MU_OK;
}

static int read_orgs(ld *l, const mu_yaml_node *seq, co_config *cfg);

static int read_key(ld *l, const mu_yaml_node *n, const co_key *k, co_config *cfg)
{
    switch (k->type) {
    case CO_KEY_U32:
    case CO_KEY_U64:
    case CO_KEY_DOUBLE:
        return read_number(l, n, k, cfg);
    case CO_KEY_BOOL:
        return mu_yaml_as_bool(l->doc, n, (int *)field(cfg, k), l->diag);
    case CO_KEY_STR:
    case CO_KEY_ADDR:
        return read_string(l, n, k, field(cfg, k));
    case CO_KEY_PATH:
        return mu_yaml_as_path(l->doc, n, field(cfg, k), k->size, l->diag);
    case CO_KEY_ENUM:
    case CO_KEY_STRATEGY:
        return read_choice(l, n, k, cfg);
    case CO_KEY_ORGS:
        return read_orgs(l, n, cfg);
    }
    return MU_ERR_INVALID;
}

static int read_pk(ld *l, const mu_yaml_node *n, co_allowed_org *a)
{
    const char *hex;
    int rc = mu_yaml_as_str(l->doc, n, &hex, l->diag);
    if (rc || !hex[0])
        return rc;
    if (wi_hex_decode(a->pk, sizeof a->pk, hex) != MU_OK)
        return mu_yaml_error(l->doc, n, l->diag,
                             "public_key must be 64 hex digits (an Ed25519 key)");
    a->has_pk = 1;
    return MU_OK;
}

static int read_orgs(ld *l, const mu_yaml_node *seq, co_config *cfg)
{
    if (seq->kind != MU_YAML_SEQ)
        return mu_yaml_error(l->doc, seq, l->diag, "'orgs' must be a list of {name, public_key}");
    cfg->orgs = calloc(seq->n_items ? seq->n_items : 1, sizeof *cfg->orgs);
    if (!cfg->orgs)
        return mu_diag_set(l->diag, MU_ERR_NOMEM, "out of memory");
    static const char *const keys[] = {"name", "public_key", NULL};
    for (size_t i = 0; i < seq->n_items; i++) {
        const mu_yaml_node *o = seq->items[i], *name;
        co_allowed_org *a = &cfg->orgs[i];
        const char *s;
        int rc;
        if ((rc = mu_yaml_check_keys(l->doc, o, keys, l->diag)) != 0 ||
            (rc = mu_yaml_require(l->doc, o, "name", l->diag)) != 0 ||
            (rc = mu_yaml_as_str(l->doc, name = mu_yaml_get(o, "name"), &s, l->diag)) != 0)
            return rc;
        if (!s[0])
            return mu_yaml_error(l->doc, name, l->diag, "empty org name");
        if (!wi_org_name_valid(s))
            return mu_yaml_error(l->doc, name, l->diag, "org name '%.80s' %s", s,
                                 CO_CONFIG_ORG_NAME_RULE);
        memcpy(a->name, s, strlen(s) + 1);
        cfg->n_orgs++;
        if (mu_yaml_get(o, "public_key") && (rc = read_pk(l, mu_yaml_get(o, "public_key"), a)))
            return rc;
    }
    return MU_OK;
}

/* The top-level keys (the table's sections, its top-level keys, and `model`), or the keys of
 * one section, NULL-terminated. */
static void key_names(const char *section, const char **out)
{
    size_t n, used = 0;
    const co_key *k = co_config_keys(&n);
    for (size_t i = 0; i < n && used < SECTION_MAX_KEYS; i++) {
        const char *name = section
                               ? (k[i].section && !strcmp(k[i].section, section) ? k[i].name : NULL)
                               : (k[i].section ? k[i].section : k[i].name);
        if (name && (!used || strcmp(out[used - 1], name)))
            out[used++] = name;
    }
    if (!section && used < SECTION_MAX_KEYS)
        out[used++] = "model"; /* the serve driver's: tr_model_spec */
    out[used] = NULL;
}

static int read_all(ld *l, const mu_yaml_node *root, co_config *cfg)
{
    const char *names[SECTION_MAX_KEYS + 1];
    key_names(NULL, names);
    int rc = mu_yaml_check_keys(l->doc, root, names, l->diag);
    size_t n;
    const co_key *k = co_config_keys(&n);
    for (size_t i = 0; i < n && !rc; i++) {
        const mu_yaml_node *sec = k[i].section ? mu_yaml_get(root, k[i].section) : root;
        if (!sec)
            continue;
        if (k[i].section &&
            (i == 0 || !k[i - 1].section || strcmp(k[i - 1].section, k[i].section))) {
            key_names(k[i].section, names);
            if ((rc = mu_yaml_check_keys(l->doc, sec, names, l->diag)))
                break;
        }
        const mu_yaml_node *node = mu_yaml_get(sec, k[i].name);
        if (node)
            rc = read_key(l, node, &k[i], cfg);
    }
    return rc;
}

/* What serve would refuse at start about the files it names. */
static int check_paths(ld *l, const mu_yaml_node *root, const co_config *cfg)
{
    size_t n;
    const co_key *k = co_config_keys(&n);
    char path[96];
    for (size_t i = 0; i < n; i++) {
        if (!(k[i].flags & (CO_KEY_INPUT | CO_KEY_OUTDIR)))
            continue;
        const char *v = (const char *)cfg + k[i].offset;
        const mu_yaml_node *sec = k[i].section ? mu_yaml_get(root, k[i].section) : root;
        const mu_yaml_node *node = mu_yaml_get(sec, k[i].name);
        co_key_path(&k[i], path, sizeof path);
        if ((k[i].flags & CO_KEY_TLS) && cfg->insecure)
            continue;
        if ((k[i].flags & CO_KEY_TLS) && !v[0])
            return mu_yaml_error(l->doc, sec ? sec : root, l->diag,
                                 "%s is required (or server.insecure: true for a local "
                                 "experiment)",
                                 path);
        struct stat st;
        if (!v[0] || !node)
            continue;
        if ((k[i].flags & CO_KEY_INPUT) && access(v, R_OK) != 0)
            return mu_yaml_error(l->doc, node, l->diag, "%s '%s': %s", path, v, strerror(errno));
        if ((k[i].flags & CO_KEY_OUTDIR) && stat(v, &st) == 0 && !S_ISDIR(st.st_mode))
            return mu_yaml_error(l->doc, node, l->diag, "%s '%s' exists and is not a folder", path,
                                 v);
    }
    return MU_OK;
}

int co_config_from_yaml(const mu_yaml_doc *doc, const mu_yaml_node *root, unsigned flags,
                        co_config *cfg, mu_diag *diag)
{
    co_config_default(cfg);
    ld l = {doc, diag};
    int rc = MU_OK;
    if (root && root->kind != MU_YAML_MAP)
        return mu_yaml_error(doc, root, diag, "a config file must be a mapping of keys");
    if (root)
        rc = read_all(&l, root, cfg);
    if (rc == MU_OK && (flags & CO_CONFIG_CHECK_PATHS))
        rc = check_paths(&l, root, cfg);
    const co_key *at = NULL;
    mu_diag inner = {{0}};
    if (rc == MU_OK && (rc = co_config_check_at(cfg, &at, &inner)) != MU_OK) {
        /* point at the key at fault, else its section, else the block */
        const mu_yaml_node *sec = at && at->section ? mu_yaml_get(root, at->section) : root;
        const mu_yaml_node *node = at ? mu_yaml_get(sec, at->name) : NULL;
        if (rc == MU_ERR_NOMEM)
            mu_diag_set(diag, rc, "%s: %s", doc->path, inner.msg);
        else
            mu_yaml_error(doc, node ? node : sec ? sec : root, diag, "%s", inner.msg);
    }
    if (rc != MU_OK)
        co_config_deinit(cfg);
    return rc;
}

static int finish(mu_yaml_doc *doc, co_config *cfg, mu_diag *diag)
{
    if (!doc) {
        co_config_default(cfg);
        return MU_ERR_INVALID;
    }
    int rc = co_config_from_yaml(doc, doc->root, 0, cfg, diag);
    mu_yaml_free(doc);
    return rc;
}

int co_config_load(const char *path, co_config *cfg, mu_diag *diag)
{
    return finish(mu_yaml_load(path, diag), cfg, diag);
}

int co_config_parse(const char *name, const char *text, size_t len, co_config *cfg, mu_diag *diag)
{
    return finish(mu_yaml_parse(name, text, len, diag), cfg, diag);
}
