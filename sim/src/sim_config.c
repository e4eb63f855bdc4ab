/* sim_config.c - the YAML config of `mutual sim`: every key checked, FILE:LINE:COL errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "co_config_yaml.h"
#include "co_round.h"
#include "mu_file.h"
#include "mu_yaml.h"
#include "sim.h"
#include "tr_spec.h"
#include "wi_bytes.h"

typedef struct {
    const mu_yaml_doc *doc;
    mu_diag *diag;
} ld;

/* A data file (relative to the config file's folder) that must be readable: the run would
 * fail on it later, so the config is refused now, at its position. */
static int data_path(ld *l, const mu_yaml_node *node, const char *what, char *out, size_t cap)
{
    const char *s;
    int rc = mu_yaml_as_str(l->doc, node, &s, l->diag);
    if (rc)
        return rc;
    if (!s[0])
        return mu_yaml_error(l->doc, node, l->diag, "%s is empty", what);
    if ((rc = mu_yaml_as_path(l->doc, node, out, cap, l->diag)))
        return rc;
    if (access(out, R_OK) != 0)
        return mu_yaml_error(l->doc, node, l->diag, "%s '%s': %s", what, out, strerror(errno));
    return MU_OK;
}

static int get_data_path(ld *l, const mu_yaml_node *m, const char *key, char *out, size_t cap)
{
    const mu_yaml_node *n = mu_yaml_get(m, key);
    char what[64];
    snprintf(what, sizeof what, "data.%s", key);
    return n ? data_path(l, n, what, out, cap) : MU_OK;
}

static int get_u32(ld *l, const mu_yaml_node *m, const char *key, long long lo, long long hi,
                   uint32_t *out)
{
    long long v = *out;
    int rc = mu_yaml_get_int(l->doc, m, key, lo, hi, &v, l->diag);
    if (rc == MU_OK)
        *out = (uint32_t)v;
    return rc;
}

static int parse_stage(ld *l, const mu_yaml_node *node, int *stage)
{
    const char *s;
    int rc = mu_yaml_as_str(l->doc, node, &s, l->diag);
    if (rc)
        return rc;
    int st = wi_stage_from_name(s);
    if (st >= 0 && st < WI_ORG_STAGES) {
        *stage = st;
        return MU_OK;
    }
    return mu_yaml_error(l->doc, node, l->diag,
                         "unknown stage '%s' (expected train, advertise, share, masked, "
                         "consistency, unmask or eval)",
                         s);
}

/* An org as a 1-based index or the name "org-N". */
static int parse_org(ld *l, const mu_yaml_node *node, uint32_t *org)
{
    const char *s;
    int rc = mu_yaml_as_str(l->doc, node, &s, l->diag);
    if (rc)
        return rc;
    const char *num = strncmp(s, "org-", 4) == 0 ? s + 4 : s;
    char *end;
    unsigned long v = strtoul(num, &end, 10);
    if (!num[0] || *end || v < 1 || v > 65536)
        return mu_yaml_error(l->doc, node, l->diag,
                             "org must be an index 1..65536 or a name 'org-N', got '%s'", s);
    *org = (uint32_t)v;
    return MU_OK;
}

static int load_faults(ld *l, const mu_yaml_node *root, const char *key, uint32_t orgs,
                       sim_faults *f)
{
    const mu_yaml_node *m = mu_yaml_get(root, key);
    if (!m)
        return MU_OK;
    static const char *const keys[] = {"train",  "advertise", "share",  "masked", "consistency",
                                       "unmask", "eval",      "script", NULL};
    int rc = mu_yaml_check_keys(l->doc, m, keys, l->diag);
    for (int s = 0; s < WI_ORG_STAGES && !rc; s++)
        rc = mu_yaml_get_double(l->doc, m, wi_stage_name(s), 0, 1, &f->prob[s], l->diag);
    const mu_yaml_node *seq = mu_yaml_get(m, "script");
    if (rc || !seq)
        return rc;
    if (seq->kind != MU_YAML_SEQ)
        return mu_yaml_error(l->doc, seq, l->diag,
                             "'script' must be a list of {org, round, "
                             "stage}");
    f->script = calloc(seq->n_items ? seq->n_items : 1, sizeof *f->script);
    if (!f->script)
        return mu_diag_set(l->diag, MU_ERR_NOMEM, "out of memory");
    static const char *const ek[] = {"org", "round", "stage", NULL};
    for (size_t i = 0; i < seq->n_items; i++) {
        const mu_yaml_node *e = seq->items[i];
        sim_event *ev = &f->script[i];
        long long round = 0;
        if ((rc = mu_yaml_check_keys(l->doc, e, ek, l->diag)) ||
            (rc = mu_yaml_require(l->doc, e, "org", l->diag)) ||
            (rc = mu_yaml_require(l->doc, e, "stage", l->diag)) ||
            (rc = parse_org(l, mu_yaml_get(e, "org"), &ev->org)) ||
            (rc = parse_stage(l, mu_yaml_get(e, "stage"), &ev->stage)) ||
            (rc = mu_yaml_get_int(l->doc, e, "round", 0, 1000000000, &round, l->diag)))
            return rc;
        ev->round = (uint64_t)round;
        f->n_script++;
        if (ev->org > orgs)
            return mu_yaml_error(l->doc, mu_yaml_get(e, "org"), l->diag,
                                 "org %u does not exist (there are %u orgs)", ev->org, orgs);
    }
    return MU_OK;
}

/* restart: {round: R, stage: S}: the coordinator restarts once round R has stage S open. */
static int load_restart(ld *l, const mu_yaml_node *root, sim_config *c)
{
    const mu_yaml_node *m = mu_yaml_get(root, "restart");
    if (!m)
        return MU_OK;
    static const char *const keys[] = {"round", "stage", NULL};
    long long round = 0;
    int rc;
    if ((rc = mu_yaml_check_keys(l->doc, m, keys, l->diag)) ||
        (rc = mu_yaml_require(l->doc, m, "round", l->diag)) ||
        (rc = mu_yaml_require(l->doc, m, "stage", l->diag)) ||
        (rc = mu_yaml_get_int(l->doc, m, "round", 1, 1000000000, &round, l->diag)) ||
        (rc = parse_stage(l, mu_yaml_get(m, "stage"), &c->restart.stage)))
        return rc;
    if (!c->checkpoint)
        return mu_yaml_error(l->doc, m, l->diag,
                             "'restart' needs 'checkpoint: true': the restarted coordinator "
                             "resumes from its checkpoint");
    c->restart.round = (uint64_t)round;
    c->has_restart = 1;
    return MU_OK;
}

static int load_model(ld *l, const mu_yaml_node *root, sim_config *c)
{
    const mu_yaml_node *m = mu_yaml_get(root, "model");
    if (!m)
        return mu_yaml_error(l->doc, root, l->diag, "missing key 'model'");
    static const char *const extra[] = {"synthetic_dim", "synthetic_amp", NULL};
    tr_model_spec spec;
    int rc = tr_model_spec_parse(l->doc, m, extra, TR_SPEC_BASE_OPTIONAL, &spec, l->diag);
    if (rc || (rc = get_u32(l, m, "synthetic_dim", 0, (1 << 30) - 2, &c->synthetic_dim)) ||
        (rc = mu_yaml_get_double(l->doc, m, "synthetic_amp", 0, 1e6, &c->synthetic_amp, l->diag)))
        return rc;
    snprintf(c->base, sizeof c->base, "%s", spec.base);
    snprintf(c->model_name, sizeof c->model_name, "%s", spec.name);
    c->lora = spec.lora;
    c->lora_seed = spec.seed;
    if (c->synthetic_dim && c->base[0])
        return mu_yaml_error(l->doc, mu_yaml_get(m, "base"), l->diag,
                             "synthetic_dim and base exclude each other");
    if (!c->synthetic_dim && !c->base[0])
        return mu_yaml_error(l->doc, m, l->diag,
                             "model needs 'base' (a Hugging Face folder) or "
                             "'synthetic_dim'");
    return MU_OK;
}

/* An org's participant seed: 64 hex digits (absent: derived from the sim seed). */
static int parse_org_seed(ld *l, const mu_yaml_node *node, uint8_t out[32], uint8_t *has)
{
    if (!node)
        return MU_OK;
    const char *s;
    int rc = mu_yaml_as_str(l->doc, node, &s, l->diag);
    if (rc)
        return rc;
    if (wi_hex_decode(out, 32, s) != MU_OK)
        return mu_yaml_error(l->doc, node, l->diag, "seed must be 64 hex digits");
    *has = 1;
    return MU_OK;
}

static int load_data(ld *l, const mu_yaml_node *root, sim_config *c)
{
    const mu_yaml_node *m = mu_yaml_get(root, "data");
    if (!m)
        return mu_yaml_error(l->doc, root, l->diag, "missing key 'data'");
    static const char *const keys[] = {"files", "file",   "orgs",          "split",
                                       "alpha", "chunks", "eval_fraction", NULL};
    const char *split = NULL;
    int rc = mu_yaml_check_keys(l->doc, m, keys, l->diag);
    if (rc || (rc = get_data_path(l, m, "file", c->pool, sizeof c->pool)) ||
        (rc = get_u32(l, m, "orgs", 2, 65536, &c->orgs)) ||
        (rc = mu_yaml_get_str(l->doc, m, "split", &split, l->diag)) ||
        (rc = mu_yaml_get_double(l->doc, m, "alpha", 1e-3, 1e6, &c->alpha, l->diag)) ||
        (rc = get_u32(l, m, "chunks", 0, 1 << 24, &c->chunks)) ||
        (rc = mu_yaml_get_double(l->doc, m, "eval_fraction", 0, 0.9, &c->eval_fraction, l->diag)))
        return rc;
    const mu_yaml_node *files = mu_yaml_get(m, "files");
    if (files) {
        if (files->kind != MU_YAML_SEQ || files->n_items < 2)
            return mu_yaml_error(l->doc, files, l->diag,
                                 "'files' must be a list of at least 2 HDF5 files, one per org");
        if (c->pool[0] || mu_yaml_get(m, "orgs") || split)
            return mu_yaml_error(l->doc, files, l->diag,
                                 "'files' excludes 'file', 'orgs' and 'split'");
        c->files = calloc(files->n_items, sizeof *c->files);
        if (!c->files)
            return mu_diag_set(l->diag, MU_ERR_NOMEM, "out of memory");
        c->org_seeds = calloc(files->n_items, sizeof *c->org_seeds);
        c->has_org_seed = calloc(files->n_items, sizeof *c->has_org_seed);
        if (!c->org_seeds || !c->has_org_seed)
            return mu_diag_set(l->diag, MU_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < files->n_items; i++) {
            const mu_yaml_node *item = files->items[i], *pn = item;
            if (item->kind == MU_YAML_MAP) { /* {path: FILE, seed: HEX} */
                static const char *const fk[] = {"path", "seed", NULL};
                if ((rc = mu_yaml_check_keys(l->doc, item, fk, l->diag)) ||
                    (rc = mu_yaml_require(l->doc, item, "path", l->diag)) ||
                    (rc = parse_org_seed(l, mu_yaml_get(item, "seed"), c->org_seeds[i],
                                         &c->has_org_seed[i])))
                    return rc;
                pn = mu_yaml_get(item, "path");
            }
            if (!(c->files[i] = calloc(1, CO_PATH_MAX)))
                return mu_diag_set(l->diag, MU_ERR_NOMEM, "out of memory");
            c->n_files++;
            if ((rc = data_path(l, pn, "data.files", c->files[i], CO_PATH_MAX)))
                return rc;
        }
        c->orgs = (uint32_t)files->n_items;
        c->split = SIM_SPLIT_FILES;
        return MU_OK;
    }
    if (!mu_yaml_get(m, "orgs"))
        return mu_yaml_error(l->doc, m, l->diag, "data needs 'files' (one per org) or 'orgs'");
    if (!c->pool[0] && !c->synthetic_dim)
        return mu_yaml_error(l->doc, m, l->diag,
                             "data needs 'file' (a pooled dataset to split) "
                             "or 'files'");
    c->split = SIM_SPLIT_IID;
    if (split && strcmp(split, "dirichlet") == 0)
        c->split = SIM_SPLIT_DIRICHLET;
    else if (split && strcmp(split, "iid") != 0)
        return mu_yaml_error(l->doc, mu_yaml_get(m, "split"), l->diag,
                             "split must be 'iid' or 'dirichlet', got '%s'", split);
    return MU_OK;
}

/* `coordinator:` is a block of this file, read through the coordinator's table directly (its
 * errors point into this file; its paths are relative to this file's folder), or the name of
 * a coordinator config file (relative to this file's folder; its own paths relative to it). */
static int load_coordinator(ld *l, const mu_yaml_node *co, co_config *out)
{
    if (co->kind == MU_YAML_MAP)
        return co_config_from_yaml(l->doc, co, 0, out, l->diag);
    if (co->kind != MU_YAML_SCALAR)
        return mu_yaml_error(l->doc, co, l->diag, "'coordinator' must be a mapping or a file name");
    char path[CO_PATH_MAX];
    int rc = mu_yaml_as_path(l->doc, co, path, sizeof path, l->diag);
    return rc ? rc : co_config_load(path, out, l->diag);
}

static int load_doc(ld *l, sim_config *c)
{
    const mu_yaml_node *root = l->doc->root;
    if (!root || root->kind != MU_YAML_MAP)
        return mu_yaml_error(l->doc, root, l->diag, "a sim config must be a mapping of keys");
    static const char *const keys[] = {
        "seed",       "threads", "checkpoint", "max_aborted", "model",       "data", "dropout",
        "stragglers", "replay",  "leave",      "restart",     "coordinator", NULL};
    long long seed = 0, threads = 0;
    int rc = mu_yaml_check_keys(l->doc, root, keys, l->diag);
    if (rc || (rc = mu_yaml_get_int(l->doc, root, "seed", 0, INT64_MAX, &seed, l->diag)) ||
        (rc = mu_yaml_get_int(l->doc, root, "threads", 0, 1024, &threads, l->diag)) ||
        (rc = mu_yaml_get_bool(l->doc, root, "checkpoint", &c->checkpoint, l->diag)) ||
        (rc = get_u32(l, root, "max_aborted", 1, 1000000, &c->max_aborted)) ||
        (rc = load_model(l, root, c)) || (rc = load_data(l, root, c)) ||
        (rc = load_faults(l, root, "dropout", c->orgs, &c->dropout)) ||
        (rc = load_faults(l, root, "stragglers", c->orgs, &c->stragglers)) ||
        (rc = load_faults(l, root, "replay", c->orgs, &c->replay)) ||
        (rc = load_faults(l, root, "leave", c->orgs, &c->leave)) || (rc = load_restart(l, root, c)))
        return rc;
    c->seed = (uint64_t)seed;
    c->threads = (int)threads;
    const mu_yaml_node *co = mu_yaml_get(root, "coordinator");
    if (!co)
        return mu_yaml_error(l->doc, root, l->diag, "missing key 'coordinator'");
    co_config_deinit(&c->co);
    if ((rc = load_coordinator(l, co, &c->co)))
        return rc;
    if (c->co.rounds == 0)
        return mu_yaml_error(l->doc, co, l->diag,
                             "federation.rounds must be at least 1 in a simulation");
    if (c->co.min_orgs > c->orgs)
        return mu_yaml_error(l->doc, co, l->diag, "cohort.min_orgs is %u but there are %u orgs",
                             c->co.min_orgs, c->orgs);
    mu_diag q = {{0}}; /* what co_round_new would refuse when the run starts */
    if (co_round_check_config(&c->co, &q) != MU_OK)
        return mu_yaml_error(l->doc, co, l->diag, "secure_agg: %s", q.msg);
    return MU_OK;
}

static void defaults(sim_config *c)
{
    memset(c, 0, sizeof *c);
    tr_model_spec spec;
    tr_model_spec_default(&spec);
    c->lora = spec.lora;
    c->alpha = 0.5;
    c->max_aborted = 10;
    c->eval_fraction = 0.1;
    c->synthetic_amp = 0.01;
    co_config_default(&c->co);
}

static int parse_text(const char *name, const char *text, size_t len, sim_config *cfg,
                      mu_diag *diag)
{
    defaults(cfg);
    mu_yaml_doc *doc = mu_yaml_parse(name, text, len, diag);
    if (!doc)
        return MU_ERR_INVALID;
    ld l = {.doc = doc, .diag = diag};
    int rc = load_doc(&l, cfg);
    mu_yaml_free(doc);
    if (rc != MU_OK) {
        sim_config_deinit(cfg);
        return rc ? rc : MU_ERR_INVALID;
    }
    return MU_OK;
}

int sim_config_parse(const char *name, const char *text, size_t len, sim_config *cfg, mu_diag *diag)
{
    return parse_text(name, text, len, cfg, diag);
}

int sim_config_load(const char *path, sim_config *cfg, mu_diag *diag)
{
    defaults(cfg);
    char *text;
    size_t len;
    int rc = mu_read_file(path, 16u << 20, &text, &len, diag);
    if (rc)
        return rc;
    rc = parse_text(path, text, len, cfg, diag);
    free(text);
    return rc;
}

void sim_config_deinit(sim_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_files; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg->org_seeds);
    free(cfg->has_org_seed);
    cfg->org_seeds = NULL;
    cfg->has_org_seed = NULL;
    free(cfg->dropout.script);
    free(cfg->stragglers.script);
    free(cfg->replay.script);
    free(cfg->leave.script);
    co_config_deinit(&cfg->co);
    cfg->files = NULL;
    cfg->n_files = 0;
    cfg->dropout.script = cfg->stragglers.script = cfg->replay.script = cfg->leave.script = NULL;
}
