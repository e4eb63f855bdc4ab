/* cmd_charter_yaml.c - the charter's YAML form (docs/governance.md) into a gv_charter, with
 * FILE:LINE:COL errors. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_charter.h"
#include "mu_file.h"
#include "mu_yaml.h"
#include "wi_bytes.h"
#include "wi_org.h"

#define TRAINING_CONFIG_MAX (64u << 20)

/* n bytes of hex from a scalar (colons between byte pairs allowed, as openssl prints
 * fingerprints). */
static int get_hex(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, uint8_t *out,
                   size_t n, mu_diag *d)
{
    const mu_yaml_node *v = mu_yaml_get(map, key);
    const char *s;
    if (!v)
        return mu_yaml_require(doc, map, key, d);
    int rc = mu_yaml_as_str(doc, v, &s, d);
    if (rc)
        return rc;
    char hex[2 * 64 + 1];
    size_t k = 0;
    for (; *s && k < sizeof hex - 1; s++)
        if (*s != ':')
            hex[k++] = *s;
    hex[k] = '\0';
    if (*s || wi_hex_decode(out, n, hex) != MU_OK)
        return mu_yaml_error(doc, v, d, "%s: %zu hex digits expected", key, 2 * n);
    return MU_OK;
}

static int get_text(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, char *out,
                    size_t cap, mu_diag *d)
{
    const char *s = NULL;
    int rc = mu_yaml_require(doc, map, key, d);
    if (!rc)
        rc = mu_yaml_get_str(doc, map, key, &s, d);
    if (rc)
        return rc;
    if (strlen(s) >= cap)
        return mu_yaml_error(doc, mu_yaml_get(map, key), d, "%s: longer than %zu bytes", key,
                             cap - 1);
    strcpy(out, s);
    return MU_OK;
}

static int parse_member(const mu_yaml_doc *doc, const mu_yaml_node *m, gv_member *out, mu_diag *d)
{
    static const char *const keys[] = {"name", "signing_key", "tls_fingerprint", "role", NULL};
    int rc = mu_yaml_check_keys(doc, m, keys, d);
    if (!rc)
        rc = get_text(doc, m, "name", out->name, sizeof out->name, d);
    if (!rc && !wi_org_name_valid(out->name))
        rc = mu_yaml_error(doc, mu_yaml_get(m, "name"), d,
                           "name: '%s' is not an org name "
                           "(1-63 of [A-Za-z0-9._-], not starting with '.' or '-')",
                           out->name);
    if (!rc)
        rc = get_hex(doc, m, "signing_key", out->sign_pk, GV_PK_BYTES, d);
    if (!rc)
        rc = get_hex(doc, m, "tls_fingerprint", out->tls_fpr, GV_FPR_BYTES, d);
    const char *role = "member";
    if (!rc)
        rc = mu_yaml_get_str(doc, m, "role", &role, d);
    if (rc)
        return rc;
    if (!strcmp(role, "member"))
        out->role = GV_ROLE_MEMBER;
    else if (!strcmp(role, "observer"))
        out->role = GV_ROLE_OBSERVER;
    else
        return mu_yaml_error(doc, mu_yaml_get(m, "role"), d, "role: '%s' (member or observer)",
                             role);
    return MU_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const gv_member *)a)->name, ((const gv_member *)b)->name);
}

static int parse_members(const mu_yaml_doc *doc, const mu_yaml_node *root, gv_charter *c,
                         mu_diag *d)
{
    const mu_yaml_node *ms = mu_yaml_get(root, "members");
    if (!ms)
        return mu_yaml_require(doc, root, "members", d);
    if (ms->kind != MU_YAML_SEQ || ms->n_items == 0 || ms->n_items > GV_MEMBERS_MAX)
        return mu_yaml_error(doc, ms, d, "members: a list of 1 to %d members", GV_MEMBERS_MAX);
    for (size_t i = 0; i < ms->n_items; i++) {
        int rc = parse_member(doc, ms->items[i], &c->members[i], d);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->members[j].name, c->members[i].name) ||
                !memcmp(c->members[j].sign_pk, c->members[i].sign_pk, GV_PK_BYTES))
                return mu_yaml_error(doc, ms->items[i], d,
                                     "members: '%s' repeats %s's name or "
                                     "signing key",
                                     c->members[i].name, c->members[j].name);
    }
    c->n_members = (uint32_t)ms->n_items;
    qsort(c->members, c->n_members, sizeof c->members[0], by_name);
    return MU_OK;
}

static int parse_rules(const mu_yaml_doc *doc, const mu_yaml_node *root, gv_charter *c, mu_diag *d)
{
    static const char *const keys[] = {"admit", "change_config", "release", "change_coordinator",
                                       NULL};
    const mu_yaml_node *r = mu_yaml_get(root, "rules");
    int rc = r ? mu_yaml_check_keys(doc, r, keys, d) : mu_yaml_require(doc, root, "rules", d);
    for (int k = 0; !rc && k < GV_KIND_COUNT; k++) {
        const char *s = NULL;
        rc = mu_yaml_require(doc, r, keys[k], d);
        if (!rc)
            rc = mu_yaml_get_str(doc, r, keys[k], &s, d);
        if (rc)
            return rc;
        unsigned kk, nn;
        char tail;
        if (!strcmp(s, "majority"))
            c->quorum[k] = (gv_quorum){0, 0};
        else if (sscanf(s, "%u-of-%u%c", &kk, &nn, &tail) == 2 && kk >= 1 && kk <= nn)
            c->quorum[k] = (gv_quorum){kk, nn};
        else
            return mu_yaml_error(doc, mu_yaml_get(r, keys[k]), d,
                                 "rules.%s: '%s' (K-of-N with 1 <= K <= N, or majority)", keys[k],
                                 s);
    }
    return rc;
}

static int parse_privacy(const mu_yaml_doc *doc, const mu_yaml_node *root, gv_charter *c,
                         mu_diag *d)
{
    static const char *const keys[] = {"min_cohort", "secagg_threshold", "dp_epsilon", NULL};
    const mu_yaml_node *p = mu_yaml_get(root, "privacy");
    int rc = p ? mu_yaml_check_keys(doc, p, keys, d) : mu_yaml_require(doc, root, "privacy", d);
    long long min = 0, thr = 0;
    double eps = 0;
    if (!rc)
        rc = mu_yaml_require(doc, p, "min_cohort", d);
    if (!rc)
        rc = mu_yaml_get_int(doc, p, "min_cohort", 1, GV_MEMBERS_MAX, &min, d);
    if (!rc)
        rc = mu_yaml_get_int(doc, p, "secagg_threshold", 0, 1000, &thr, d);
    if (!rc)
        rc = mu_yaml_get_double(doc, p, "dp_epsilon", 0, 1e6, &eps, d);
    c->privacy.min_cohort = (uint32_t)min;
    c->privacy.secagg_threshold = (uint32_t)thr;
    c->privacy.dp_epsilon_milli = (uint32_t)(eps * 1000 + 0.5);
    return rc;
}

/* training: {config: FILE} (hashed) or {config_hash: HEX}. */
static int parse_training(const mu_yaml_doc *doc, const mu_yaml_node *root, gv_charter *c,
                          mu_diag *d)
{
    static const char *const keys[] = {"config", "config_hash", NULL};
    const mu_yaml_node *t = mu_yaml_get(root, "training");
    int rc = t ? mu_yaml_check_keys(doc, t, keys, d) : mu_yaml_require(doc, root, "training", d);
    if (rc)
        return rc;
    const mu_yaml_node *file = mu_yaml_get(t, "config");
    if (!file == !mu_yaml_get(t, "config_hash"))
        return mu_yaml_error(doc, t, d,
                             "training: give exactly one of config (a file, hashed) "
                             "and config_hash");
    if (!file)
        return get_hex(doc, t, "config_hash", c->training_hash, GV_HASH_BYTES, d);
    char path[4096];
    rc = mu_yaml_as_path(doc, file, path, sizeof path, d);
    if (rc)
        return rc;
    char *b;
    size_t n;
    mu_diag why = {{0}};
    if (mu_read_file(path, TRAINING_CONFIG_MAX, &b, &n, &why) != MU_OK)
        return mu_yaml_error(doc, file, d, "training.config: %s", why.msg);
    crypto_generichash(c->training_hash, GV_HASH_BYTES, (const uint8_t *)b, n, NULL, 0);
    free(b);
    return MU_OK;
}

int cli_charter_yaml(const char *path, gv_charter *c, mu_diag *d)
{
    static const char *const keys[] = {"federation", "coordinator", "members", "rules",
                                       "privacy",    "training",    NULL};
    static const char *const ckeys[] = {"key", "address", "tls_fingerprint", NULL};
    memset(c, 0, sizeof *c);
    c->version = 1;
    mu_yaml_doc *doc = mu_yaml_load(path, d);
    if (!doc)
        return MU_ERR_INVALID;
    const mu_yaml_node *root = doc->root, *co = mu_yaml_get(root, "coordinator");
    int rc = root ? mu_yaml_check_keys(doc, root, keys, d)
                  : mu_diag_set(d, MU_ERR_INVALID, "%s: empty charter", path);
    if (!rc)
        rc = get_text(doc, root, "federation", c->federation, sizeof c->federation, d);
    if (!rc)
        rc = co ? mu_yaml_check_keys(doc, co, ckeys, d)
                : mu_yaml_require(doc, root, "coordinator", d);
    if (!rc)
        rc = get_hex(doc, co, "key", c->coord_pk, GV_PK_BYTES, d);
    if (!rc)
        rc = get_text(doc, co, "address", c->coord_addr, sizeof c->coord_addr, d);
    if (!rc && mu_yaml_get(co, "tls_fingerprint")) /* optional: orgs then pin its certificate */
        rc = get_hex(doc, co, "tls_fingerprint", c->coord_fpr, GV_FPR_BYTES, d);
    if (!rc && mu_yaml_get(co, "tls_fingerprint") && sodium_is_zero(c->coord_fpr, GV_FPR_BYTES))
        rc = mu_yaml_error(doc, mu_yaml_get(co, "tls_fingerprint"), d, "tls_fingerprint: all zero");
    if (!rc)
        rc = parse_members(doc, root, c, d);
    if (!rc)
        rc = parse_rules(doc, root, c, d);
    if (!rc)
        rc = parse_privacy(doc, root, c, d);
    if (!rc)
        rc = parse_training(doc, root, c, d);
    mu_diag why = {{0}};
    if (!rc && (rc = gv_charter_check(c, &why)) != MU_OK)
        mu_diag_set(d, rc, "%s: %s", path, why.msg);
    mu_yaml_free(doc);
    return rc;
}
