/* nd_orgcfg.c - an org's YAML config for `mutual join` (paths relative to the config file's
 * folder), and its Ed25519 identity key file. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co_config.h"
#include "mu_addr.h"
#include "mu_log.h"
#include "mu_yaml.h"
#include "nd_orgcfg.h"
#include "wi_bytes.h"
#include "wi_org.h"

/* A string (or, with is_path, a path resolved against the config file's folder). */
static int get(const mu_yaml_doc *doc, const mu_yaml_node *m, const char *key, int required,
               int is_path, char *out, size_t cap, mu_diag *d)
{
    if (!m)
        return required
                   ? mu_diag_set(d, MU_ERR_INVALID, "%s: missing section for '%s'", doc->path, key)
                   : MU_OK;
    int rc = required ? mu_yaml_require(doc, m, key, d) : MU_OK;
    const char *v = NULL;
    if (rc == MU_OK && is_path && mu_yaml_get(m, key))
        return mu_yaml_as_path(doc, mu_yaml_get(m, key), out, cap, d);
    if (rc == MU_OK)
        rc = mu_yaml_get_str(doc, m, key, &v, d);
    if (rc == MU_OK && v) {
        if (strlen(v) >= cap)
            return mu_yaml_error(doc, mu_yaml_get(m, key), d, "'%s' is too long", key);
        snprintf(out, cap, "%s", v);
    }
    return rc;
}

static int str(const mu_yaml_doc *doc, const mu_yaml_node *m, const char *key, int required,
               char *out, size_t cap, mu_diag *d)
{
    return get(doc, m, key, required, 0, out, cap, d);
}

static int get_path(const mu_yaml_doc *doc, const mu_yaml_node *m, const char *key, int required,
                    char *out, size_t cap, mu_diag *d)
{
    return get(doc, m, key, required, 1, out, cap, d);
}

static int section(const mu_yaml_doc *doc, const char *name, const char *const *keys, int required,
                   const mu_yaml_node **out, mu_diag *d)
{
    *out = mu_yaml_get(doc->root, name);
    if (!*out)
        return required ? mu_yaml_require(doc, doc->root, name, d) : MU_OK;
    return mu_yaml_check_keys(doc, *out, keys, d);
}

/* cohort.members: a list of {name, pk: 64 hex digits}, no key twice. */
static int load_members(const mu_yaml_doc *doc, const mu_yaml_node *seq, nd_orgcfg *c, mu_diag *d)
{
    static const char *const km[] = {"name", "pk", NULL};
    if (seq->kind != MU_YAML_SEQ)
        return mu_yaml_error(doc, seq, d, "cohort.members must be a list of {name, pk}");
    if (seq->n_items > ND_MAX_MEMBERS)
        return mu_yaml_error(doc, seq, d, "cohort.members has %zu entries, at most %d",
                             seq->n_items, ND_MAX_MEMBERS);
    for (size_t i = 0; i < seq->n_items; i++) {
        const mu_yaml_node *m = seq->items[i];
        cl_member *e = &c->members[i];
        char hex[80] = "";
        int rc;
        if (m->kind != MU_YAML_MAP)
            return mu_yaml_error(doc, m, d, "a cohort member must be {name, pk}");
        if ((rc = mu_yaml_check_keys(doc, m, km, d)) ||
            (rc = str(doc, m, "name", 1, e->name, sizeof e->name, d)) ||
            (rc = str(doc, m, "pk", 1, hex, sizeof hex, d)))
            return rc;
        if (wi_hex_decode(e->pk, sizeof e->pk, hex) != MU_OK)
            return mu_yaml_error(doc, mu_yaml_get(m, "pk"), d,
                                 "cohort member %s: pk must be 64 hex digits (mutual certs "
                                 "identity --key FILE prints it)",
                                 e->name);
        for (size_t j = 0; j < i; j++)
            if (memcmp(c->members[j].pk, e->pk, sizeof e->pk) == 0)
                return mu_yaml_error(doc, mu_yaml_get(m, "pk"), d,
                                     "cohort members %s and %s have the same pk",
                                     c->members[j].name, e->name);
    }
    c->n_members = seq->n_items;
    return MU_OK;
}

/* cohort.members: the list itself, or the name of a YAML file holding it (relative to the
 * config's folder): one roster file that every member keeps an identical copy of. */
static int load_roster(const mu_yaml_doc *doc, const mu_yaml_node *n, nd_orgcfg *c, mu_diag *d)
{
    if (n->kind != MU_YAML_SCALAR)
        return load_members(doc, n, c, d);
    char path[ND_PATH_MAX];
    int rc = mu_yaml_as_path(doc, n, path, sizeof path, d);
    if (rc != MU_OK)
        return rc;
    mu_diag why = {{0}};
    mu_yaml_doc *roster = mu_yaml_load(path, &why);
    if (!roster)
        return mu_yaml_error(doc, n, d, "cohort.members: %s", why.msg);
    rc = roster->root
             ? load_members(roster, roster->root, c, d)
             : mu_diag_set(d, MU_ERR_INVALID, "%s: an empty roster (cohort.members)", path);
    mu_yaml_free(roster);
    return rc;
}

/* cohort: {min_size, members} and testing.min_cohort. */
static int load_cohort(const mu_yaml_doc *doc, const mu_yaml_node *co, const mu_yaml_node *x,
                       nd_orgcfg *c, mu_diag *d)
{
    long long v = CL_MIN_COHORT;
    int rc;
    if (co && mu_yaml_get(co, "min_size") &&
        (rc = mu_yaml_get_int(doc, co, "min_size", CL_MIN_COHORT, CO_WIRE_MAX_COHORT, &v, d)))
        return rc;
    c->min_cohort = (uint32_t)v;
    if (co && mu_yaml_get(co, "members") &&
        (rc = load_roster(doc, mu_yaml_get(co, "members"), c, d)))
        return rc;
    if (x && mu_yaml_get(x, "min_cohort")) {
        if ((rc = mu_yaml_get_int(doc, x, "min_cohort", 1, CO_WIRE_MAX_COHORT, &v, d)))
            return rc;
        c->min_cohort = (uint32_t)v;
        c->small_cohort = 1;
    }
    return MU_OK;
}

static int load_doc(const mu_yaml_doc *doc, nd_orgcfg *c, mu_diag *d)
{
    static const char *const top[] = {"org",    "coordinator", "tls",       "model",
                                      "data",   "threads",     "reconnect", "testing",
                                      "cohort", "privacy",     "training",  NULL};
    static const char *const ko[] = {"name", "identity_key", NULL};
    static const char *const kc[] = {"address", "server_name", NULL};
    static const char *const kt[] = {"ca", "cert", "key", "insecure", NULL};
    static const char *const km[] = {"base", NULL};
    static const char *const kd[] = {"train", "eval", NULL};
    static const char *const kr[] = {"initial_s", "max_s", "give_up_s", NULL};
    static const char *const kx[] = {"deterministic_seed", "min_cohort", NULL};
    static const char *const kh[] = {"min_size", "members", NULL};
    static const char *const kp[] = {"min_ddg_noise", "require_ddg", NULL};
    static const char *const kg[] = {"checkpointing", "bf16", NULL};
    if (!doc->root || doc->root->kind != MU_YAML_MAP)
        return mu_diag_set(d, MU_ERR_INVALID, "%s: an org config must be a mapping", doc->path);
    const mu_yaml_node *o, *co, *t, *m, *da, *re, *x, *ch, *pv, *tg;
    int rc;
    if ((rc = mu_yaml_check_keys(doc, doc->root, top, d)) ||
        (rc = section(doc, "org", ko, 1, &o, d)) ||
        (rc = section(doc, "coordinator", kc, 1, &co, d)) ||
        (rc = section(doc, "tls", kt, 0, &t, d)) || (rc = section(doc, "model", km, 1, &m, d)) ||
        (rc = section(doc, "data", kd, 1, &da, d)) ||
        (rc = section(doc, "reconnect", kr, 0, &re, d)) ||
        (rc = section(doc, "testing", kx, 0, &x, d)) ||
        (rc = section(doc, "cohort", kh, 0, &ch, d)) || (rc = load_cohort(doc, ch, x, c, d)) ||
        (rc = section(doc, "privacy", kp, 0, &pv, d)) ||
        (rc = section(doc, "training", kg, 0, &tg, d)))
        return rc;
    if (tg && ((rc = mu_yaml_get_bool(doc, tg, "checkpointing", &c->checkpointing, d)) ||
               (rc = mu_yaml_get_bool(doc, tg, "bf16", &c->bf16, d))))
        return rc;
    if (pv && ((rc = mu_yaml_get_double(doc, pv, "min_ddg_noise", 0, CO_TASK_MAX_DP_NOISE,
                                        &c->min_ddg_noise, d)) ||
               (rc = mu_yaml_get_bool(doc, pv, "require_ddg", &c->require_ddg, d))))
        return rc;
    char seed_hex[80] = "";
    if (x && (rc = str(doc, x, "deterministic_seed", 0, seed_hex, sizeof seed_hex, d)))
        return rc;
    if (seed_hex[0]) {
        if (wi_hex_decode(c->seed, sizeof c->seed, seed_hex) != MU_OK)
            return mu_yaml_error(doc, mu_yaml_get(x, "deterministic_seed"), d,
                                 "deterministic_seed must be 64 hex digits");
        c->deterministic = 1;
    }
    if ((rc = str(doc, o, "name", 1, c->name, sizeof c->name, d)) ||
        (rc = get_path(doc, o, "identity_key", 1, c->identity_key, sizeof c->identity_key, d)) ||
        (rc = str(doc, co, "address", 1, c->address, sizeof c->address, d)) ||
        (rc = str(doc, co, "server_name", 0, c->server_name, sizeof c->server_name, d)) ||
        (rc = get_path(doc, m, "base", 1, c->base, sizeof c->base, d)) ||
        (rc = get_path(doc, da, "train", 1, c->train, sizeof c->train, d)) ||
        (rc = get_path(doc, da, "eval", 0, c->eval, sizeof c->eval, d)))
        return rc;
    if (!wi_org_name_valid(c->name))
        return mu_yaml_error(doc, mu_yaml_get(o, "name"), d, "org.name '%.80s' %s", c->name,
                             CO_CONFIG_ORG_NAME_RULE);
    const char *why = NULL;
    if (mu_addr_parse(c->address, NULL, 0, NULL, &why) != MU_OK)
        return mu_yaml_error(doc, mu_yaml_get(co, "address"), d, "coordinator.address '%s' %s",
                             c->address, why);
    if (t && ((rc = get_path(doc, t, "ca", 0, c->ca, sizeof c->ca, d)) ||
              (rc = get_path(doc, t, "cert", 0, c->cert, sizeof c->cert, d)) ||
              (rc = get_path(doc, t, "key", 0, c->key, sizeof c->key, d)) ||
              (rc = mu_yaml_get_bool(doc, t, "insecure", &c->insecure, d))))
        return rc;
    long long threads = c->threads;
    if ((rc = mu_yaml_get_int(doc, doc->root, "threads", 0, 1024, &threads, d)))
        return rc;
    c->threads = (int)threads;
    if (re &&
        ((rc = mu_yaml_get_double(doc, re, "initial_s", 1e-3, 3600, &c->backoff_initial_s, d)) ||
         (rc = mu_yaml_get_double(doc, re, "max_s", 1e-3, 86400, &c->backoff_max_s, d)) ||
         (rc = mu_yaml_get_double(doc, re, "give_up_s", 0, 1e9, &c->give_up_s, d))))
        return rc;
    if (!c->insecure && (!c->ca[0] || !c->cert[0] || !c->key[0]))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "%s: tls.ca, tls.cert and tls.key are required (or tls.insecure: true "
                           "for a local experiment)",
                           doc->path);
    return MU_OK;
}

int nd_orgcfg_load(const char *path, nd_orgcfg *c, mu_diag *d)
{
    memset(c, 0, sizeof *c);
    c->backoff_initial_s = 0.5;
    c->backoff_max_s = 30;
    mu_yaml_doc *doc = mu_yaml_load(path, d);
    if (!doc)
        return MU_ERR_INVALID;
    int rc = load_doc(doc, c, d);
    mu_yaml_free(doc);
    return rc;
}

/* The folder of a new key file (one level, mode 0700: it holds a secret), when missing. */
static int key_folder_make(const char *path, mu_diag *d)
{
    const char *slash = strrchr(path, '/');
    char dir[ND_PATH_MAX];
    if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir)
        return MU_OK;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (mkdir(dir, 0700) == 0) {
        mu_info("join: created %s (mode 0700) for the identity key", dir);
        return MU_OK;
    }
    if (errno == EEXIST)
        return MU_OK;
    return mu_diag_set(d, MU_ERR_IO, "%s: cannot create the identity key's folder: %s", dir,
                       strerror(errno));
}

/* The key file holds the 32-byte Ed25519 seed as 64 hex digits and a newline. */
int nd_identity_load(const char *path, uint8_t pk[32], uint8_t sk[64], mu_diag *d)
{
    uint8_t seed[32];
    char hexs[65] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0 && errno == ENOENT) {
        int rc = key_folder_make(path, d);
        if (rc != MU_OK)
            return rc;
        randombytes_buf(seed, sizeof seed);
        wi_hex_encode(hexs, sizeof hexs, seed, sizeof seed);
        int w = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (w < 0)
            return mu_diag_set(d, MU_ERR_IO, "%s: cannot create the identity key: %s", path,
                               strerror(errno));
        int ok = write(w, hexs, 64) == 64 && write(w, "\n", 1) == 1 && fsync(w) == 0;
        ok = close(w) == 0 && ok;
        sodium_memzero(hexs, sizeof hexs);
        if (!ok) {
            unlink(path);
            return mu_diag_set(d, MU_ERR_IO, "%s: cannot write the identity key", path);
        }
        mu_info("join: created a new Ed25519 identity key in %s (mode 0600)", path);
    } else if (fd < 0) {
        return mu_diag_set(d, MU_ERR_IO, "%s: %s", path, strerror(errno));
    } else {
        struct stat st;
        if (fstat(fd, &st) == 0 && (st.st_mode & 077))
            mu_warn("join: %s is readable by others (mode %03o); it should be 0600", path,
                    (unsigned)(st.st_mode & 0777));
        ssize_t n = read(fd, hexs, 64);
        close(fd);
        if (n != 64 || wi_hex_decode(seed, sizeof seed, hexs) != MU_OK) {
            sodium_memzero(hexs, sizeof hexs);
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: not an identity key (64 hex digits expected)",
                               path);
        }
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(hexs, sizeof hexs);
    return MU_OK;
}
