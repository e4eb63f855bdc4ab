/* co_config.c - the coordinator's config table, defaults and checks (no YAML, no I/O: the
 * loader is co_config_yaml.c). */
#include "co_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa.h"
#include "wi_org.h"

_Static_assert(sizeof(co_weight_kind) == sizeof(int), "CO_KEY_ENUM fields are int-sized");
_Static_assert(sizeof(co_strategy_kind) == sizeof(int), "CO_KEY_STRATEGY fields are int-sized");

#define F(field) offsetof(co_config, field), sizeof(((co_config *)0)->field)

static const char *const weight_names[] = {"examples", "uniform", NULL};
static const char *const dp_sampling_names[] = {"poisson", "fixed", NULL};

/* One row per key. The ranges of what goes into a task are the wire's (CO_TASK_*: what an
 * org accepts), so the coordinator never sends a task its orgs refuse; a test checks that
 * every row's field has the size its type says. */
static const co_key keys[] = {
    {"federation", "name", CO_KEY_STR, F(name), .def_str = "mutual",
     .doc = "the federation's name, shown by `mutual status`"},
    {"federation", "seed", CO_KEY_U64, F(seed), 0, .max = CO_KEY_I64_MAX,
     .doc = "cohort sampling and per-round seeds"},
    {"federation", "rounds", CO_KEY_U64, F(rounds), 10, .max = 1e9,
     .doc = "training rounds to run, completed or aborted; 0 = until stopped"},
    {"federation", "eval_every", CO_KEY_U32, F(eval_every), 0, .max = 1e6,
     .doc = "an evaluation round after every k completed training rounds; 0 = never"},
    {"federation", "checkpoint_dir", CO_KEY_PATH, F(checkpoint_dir), .def_str = "checkpoints",
     .flags = CO_KEY_OUTDIR, .doc = "checkpoint.h5 lives here, rewritten atomically each round"},
    {"federation", "export_dir", CO_KEY_PATH, F(export_dir), .def_str = "", .flags = CO_KEY_OUTDIR,
     .doc = "the global adapter as a PEFT folder per round; \"\" = none"},

    {"cohort", "min_orgs", CO_KEY_U32, F(min_orgs), 2, .min = 2, .max = CO_WIRE_MAX_COHORT,
     .doc = "a round starts only with at least this many connected orgs"},
    {"cohort", "max_orgs", CO_KEY_U32, F(max_orgs), 100, .min = 2, .max = CO_WIRE_MAX_COHORT,
     .doc = "at most this many orgs per round (>= min_orgs)"},
    {"cohort", "fraction", CO_KEY_DOUBLE, F(fraction), 1, .max = 1, .flags = CO_KEY_ABOVE_MIN,
     .doc = "share of the connected orgs sampled into a round"},
    {"cohort", "wait_s", CO_KEY_DOUBLE, F(wait_s), 10, .max = 1e7,
     .doc = "once min_orgs are connected, wait this long for more"},
    {"cohort", "available_s", CO_KEY_DOUBLE, F(available_s), 120, .min = 1e-3, .max = 1e7,
     .doc = "an org is connected if it pulled a task within this window"},

    {"cohort", "eval_fraction", CO_KEY_DOUBLE, F(eval_fraction), 0, .max = 1,
     .doc = "share of the connected orgs in an evaluation round, the same orgs every time "
            "(ranked by seed and org, not by round); 0 = like training: cohort.fraction, "
            "sampled anew each round"},

    {"train", "steps", CO_KEY_U32, F(steps), 20, .min = 1, .max = CO_TASK_MAX_STEPS,
     .doc = "local optimizer steps per round"},
    {"train", "lr", CO_KEY_DOUBLE, F(lr), 1e-4, .max = CO_TASK_MAX_LR, .flags = CO_KEY_ABOVE_MIN,
     .doc = "local learning rate"},
    {"train", "batch", CO_KEY_U32, F(batch), 8, .min = 1, .max = CO_TASK_MAX_BATCH,
     .doc = "sequences per local step"},
    {"train", "seq", CO_KEY_U32, F(seq), 128, .min = 1, .max = CO_TASK_MAX_SEQ,
     .doc = "tokens per sequence"},
    {"train", "fedprox_mu", CO_KEY_DOUBLE, F(fedprox_mu), 0, .max = CO_TASK_MAX_FEDPROX_MU,
     .doc = "FedProx: each org adds mu/2 ||w - w_global||^2 to its loss; 0 = off"},
    {"train", "weight", CO_KEY_ENUM, F(weight), CO_WEIGHT_EXAMPLES, .choices = weight_names,
     .doc = "each org's weight in the mean: its dataset size, or 1"},
    {"train", "dp_clip", CO_KEY_DOUBLE, F(dp_clip), 0, .max = CO_TASK_MAX_CLIP,
     .doc = "DP-SGD inside each org: clip every record's gradient to this L2 norm; 0 = off"},
    {"train", "dp_noise", CO_KEY_DOUBLE, F(dp_noise), 1, .max = CO_TASK_MAX_DP_NOISE,
     .doc = "DP-SGD noise multiplier: Gaussian noise of std dp_noise x dp_clip per step"},
    {"train", "dp_sampling", CO_KEY_ENUM, F(dp_sampling), 0, .choices = dp_sampling_names,
     .doc = "DP-SGD batches: poisson (each record with probability batch / records) or fixed"},

    {"secure_agg", "bits", CO_KEY_U32, F(bits), 32, .min = CO_TASK_MIN_BITS,
     .max = CO_TASK_MAX_BITS, .doc = "masked arithmetic mod 2^bits"},
    {"secure_agg", "neighbours", CO_KEY_U32, F(neighbours), 0, .max = CO_TASK_MAX_K,
     .doc = "SecAgg+ neighbours per org; 0 = chosen from the cohort size"},
    {"secure_agg", "threshold", CO_KEY_U32, F(threshold), 0, .max = CO_TASK_MAX_T,
     .doc = "Shamir threshold; 0 = chosen with the neighbours"},
    {"secure_agg", "clip", CO_KEY_DOUBLE, F(clip), 1, .max = CO_TASK_MAX_CLIP,
     .flags = CO_KEY_ABOVE_MIN, .doc = "each org's delta is clipped to this L2 norm"},
    {"secure_agg", "scale", CO_KEY_DOUBLE, F(scale), 0, .max = CO_TASK_MAX_SCALE,
     .doc = "fixed-point scale; 0 = the largest power of two that cannot overflow"},
    {"secure_agg", "weight_max", CO_KEY_DOUBLE, F(weight_max), 1e4, .max = CO_TASK_MAX_WEIGHT_MAX,
     .flags = CO_KEY_ABOVE_MIN, .doc = "the largest weight an org may send (bounds the sum)"},

    {"privacy", "ddg_noise", CO_KEY_DOUBLE, F(ddg_noise), 0, .max = CO_TASK_MAX_DP_NOISE,
     .doc = "org-level DP: each org adds discrete Gaussian noise so the sum of min_survivors "
            "orgs has noise multiplier ddg_noise (std / the rounded L2 bound); 0 = off"},
    {"privacy", "min_survivors", CO_KEY_U32, F(min_survivors), 0, .max = CO_WIRE_MAX_COHORT,
     .doc = "with ddg_noise: the noise is split over this many orgs and a round whose sum holds "
            "fewer aborts before unmasking; 0 = cohort.min_orgs"},
    {"privacy", "colluders", CO_KEY_U32, F(colluders), CO_COLLUDERS_AUTO, .max = CO_COLLUDERS_AUTO,
     .doc = "with ddg_noise: orgs that may collude with the coordinator and subtract their own "
            "noise; the org-level epsilon counts min_survivors - colluders honest orgs' noise; "
            "65537 (the default) = secure aggregation's bound for cohort.max_orgs (0 up to 3 "
            "orgs, 3 for 10, 28 for 100)"},
    {"privacy", "epsilon_budget", CO_KEY_DOUBLE, F(epsilon_budget), 0, .max = 1e6,
     .doc = "the federation stops before a training round that would take the org-level or "
            "record-level epsilon above this; 0 = no budget"},
    {"privacy", "delta", CO_KEY_DOUBLE, F(delta), 1e-5, .max = 0.5, .flags = CO_KEY_ABOVE_MIN,
     .doc = "the delta of every epsilon reported (metrics, status, budget)"},

    {"strategy", "name", CO_KEY_STRATEGY, F(strategy.kind), CO_STRATEGY_FEDAVG,
     .doc = "server strategy; choosing one sets its defaults for the keys below"},
    {"strategy", "eta", CO_KEY_DOUBLE, F(strategy.eta), 1, .max = 1e6, .flags = CO_KEY_ABOVE_MIN,
     .doc = "server learning rate (default 0.01 for fedadam, fedyogi, fedadagrad)"},
    {"strategy", "momentum", CO_KEY_DOUBLE, F(strategy.momentum), 0.9, .max = 0.999999,
     .doc = "fedavgm: server momentum"},
    {"strategy", "beta1", CO_KEY_DOUBLE, F(strategy.beta1), 0.9, .max = 0.999999,
     .doc = "adaptive strategies: first moment"},
    {"strategy", "beta2", CO_KEY_DOUBLE, F(strategy.beta2), 0.99, .max = 0.999999,
     .doc = "adaptive strategies: second moment"},
    {"strategy", "tau", CO_KEY_DOUBLE, F(strategy.tau), 1e-3, .max = 1e6, .flags = CO_KEY_ABOVE_MIN,
     .doc = "adaptive strategies: adaptivity"},
    {"strategy", "bias_correction", CO_KEY_BOOL, F(strategy.bias_correction), 0,
     .doc = "adaptive strategies: Adam-style bias correction of eta"},

    {"deadlines", "train_s", CO_KEY_DOUBLE, F(train_s), 1800, .min = 1e-3, .max = 1e7,
     .doc = "seconds for download, local training and the ready report"},
    {"deadlines", "advertise_s", CO_KEY_DOUBLE, F(advertise_s), 60, .min = 1e-3, .max = 1e7,
     .doc = "secure aggregation stage 1: keys"},
    {"deadlines", "share_s", CO_KEY_DOUBLE, F(share_s), 60, .min = 1e-3, .max = 1e7,
     .doc = "stage 2: encrypted shares"},
    {"deadlines", "masked_s", CO_KEY_DOUBLE, F(masked_s), 600, .min = 1e-3, .max = 1e7,
     .doc = "stage 3: the masked update (the big upload)"},
    {"deadlines", "consistency_s", CO_KEY_DOUBLE, F(consistency_s), 60, .min = 1e-3, .max = 1e7,
     .doc = "stage 4: signed survivor set"},
    {"deadlines", "unmask_s", CO_KEY_DOUBLE, F(unmask_s), 120, .min = 1e-3, .max = 1e7,
     .doc = "stage 5: shares for unmasking"},
    {"deadlines", "eval_s", CO_KEY_DOUBLE, F(eval_s), 600, .min = 1e-3, .max = 1e7,
     .doc = "evaluation rounds: local evaluation and report"},

    {"server", "listen", CO_KEY_ADDR, F(listen), .def_str = "0.0.0.0:7443",
     .doc = "address `mutual serve` listens on"},
    {"server", "tls_ca", CO_KEY_PATH, F(tls_ca), .def_str = "", .flags = CO_KEY_INPUT | CO_KEY_TLS,
     .doc = "the federation CA; org certificates must be signed by it"},
    {"server", "tls_cert", CO_KEY_PATH, F(tls_cert), .def_str = "",
     .flags = CO_KEY_INPUT | CO_KEY_TLS, .doc = "the coordinator's certificate"},
    {"server", "tls_key", CO_KEY_PATH, F(tls_key), .def_str = "",
     .flags = CO_KEY_INPUT | CO_KEY_TLS, .doc = "the coordinator's TLS key"},
    {"server", "insecure", CO_KEY_BOOL, F(insecure), 0,
     .doc = "plaintext gRPC on a loopback address, for local experiments only"},
    {"server", "max_message_mb", CO_KEY_U32, F(max_message_mb), 64, .min = 1, .max = 2047,
     .doc = "gRPC message size limit, both directions"},

    {NULL, "orgs", CO_KEY_ORGS, offsetof(co_config, orgs), sizeof(co_allowed_org *),
     .doc = "orgs allowed to register: {name, public_key (64 hex, optional)}; absent = any "
            "org with a certificate from the federation CA"},
};

const co_key *co_config_keys(size_t *n)
{
    *n = sizeof keys / sizeof keys[0];
    return keys;
}

const char *co_key_path(const co_key *k, char *buf, size_t cap)
{
    if (k->section)
        snprintf(buf, cap, "%s.%s", k->section, k->name);
    else
        snprintf(buf, cap, "%s", k->name);
    return buf;
}

const char *co_key_type_name(const co_key *k)
{
    static const char *const names[] = {"int",  "int",       "number", "bool",   "string",
                                        "path", "host:port", "string", "string", "list"};
    return names[k->type];
}

static int is_int(const co_key *k)
{
    return k->type == CO_KEY_U32 || k->type == CO_KEY_U64;
}

static void num_text(const co_key *k, double v, char *buf, size_t cap)
{
    if (is_int(k) && v >= CO_KEY_I64_MAX)
        snprintf(buf, cap, "2^63-1");
    else if (is_int(k))
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%g", v);
}

void co_key_range_text(const co_key *k, char *buf, size_t cap)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    if (k->type == CO_KEY_ENUM || k->type == CO_KEY_STRATEGY) {
        size_t used = 0;
        for (int i = 0;; i++) {
            const char *c = k->type == CO_KEY_ENUM        ? k->choices[i]
                            : i <= CO_STRATEGY_FEDADAGRAD ? co_strategy_name((co_strategy_kind)i)
                                                          : NULL;
            if (!c || used >= cap)
                break;
            int w = snprintf(buf + used, cap - used, "%s%s", i ? " | " : "", c);
            used += w > 0 ? (size_t)w : 0;
        }
        return;
    }
    if (!is_int(k) && k->type != CO_KEY_DOUBLE)
        return;
    num_text(k, k->min, lo, sizeof lo);
    num_text(k, k->max, hi, sizeof hi);
    snprintf(buf, cap, "%s%s, %s]", k->flags & CO_KEY_ABOVE_MIN ? "(" : "[", lo, hi);
}

void co_key_default_text(const co_key *k, char *buf, size_t cap)
{
    switch (k->type) {
    case CO_KEY_BOOL:
        snprintf(buf, cap, "%s", k->def != 0 ? "true" : "false");
        break;
    case CO_KEY_ENUM:
        snprintf(buf, cap, "%s", k->choices[(int)k->def]);
        break;
    case CO_KEY_STRATEGY:
        snprintf(buf, cap, "%s", co_strategy_name((co_strategy_kind)k->def));
        break;
    case CO_KEY_STR:
    case CO_KEY_PATH:
    case CO_KEY_ADDR:
        snprintf(buf, cap, k->def_str[0] ? "%s" : "\"%s\"", k->def_str);
        break;
    case CO_KEY_ORGS:
        snprintf(buf, cap, "absent");
        break;
    default:
        num_text(k, k->def, buf, cap);
    }
}

int co_key_check_number(const co_key *k, double v, char *why, size_t cap)
{
    int low = k->flags & CO_KEY_ABOVE_MIN ? !(v > k->min) : !(v >= k->min);
    if (!low && v <= k->max)
        return MU_OK;
    char path[96], lo[32], hi[32], got[32];
    co_key_path(k, path, sizeof path);
    num_text(k, k->min, lo, sizeof lo);
    num_text(k, k->max, hi, sizeof hi);
    if (is_int(k))
        snprintf(got, sizeof got, "%.0f", v);
    else
        snprintf(got, sizeof got, "%g", v);
    if (k->flags & CO_KEY_ABOVE_MIN)
        snprintf(why, cap, "%s must be above %s and at most %s, got %s", path, lo, hi, got);
    else
        snprintf(why, cap, "%s must be between %s and %s, got %s", path, lo, hi, got);
    return MU_ERR_INVALID;
}

/* The value of a numeric, bool or enum field as a double. */
static double field_number(const co_config *cfg, const co_key *k)
{
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case CO_KEY_U32:
        return *(const uint32_t *)(const void *)p;
    case CO_KEY_U64:
        return (double)*(const uint64_t *)(const void *)p;
    case CO_KEY_DOUBLE:
        return *(const double *)(const void *)p;
    default:
        return *(const int *)(const void *)p;
    }
}

static void set_default(co_config *cfg, const co_key *k)
{
    char *p = (char *)cfg + k->offset;
    switch (k->type) {
    case CO_KEY_U32:
        *(uint32_t *)(void *)p = (uint32_t)k->def;
        break;
    case CO_KEY_U64:
        *(uint64_t *)(void *)p = (uint64_t)k->def;
        break;
    case CO_KEY_DOUBLE:
        *(double *)(void *)p = k->def;
        break;
    case CO_KEY_BOOL:
    case CO_KEY_ENUM:
    case CO_KEY_STRATEGY:
        *(int *)(void *)p = (int)k->def;
        break;
    case CO_KEY_STR:
    case CO_KEY_PATH:
    case CO_KEY_ADDR:
        snprintf(p, k->size, "%s", k->def_str);
        break;
    case CO_KEY_ORGS:
        break;
    }
}

void co_config_default(co_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        set_default(cfg, &keys[i]);
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

/* Each field against its row: numbers in range, enums one of their names, bools 0/1. */
static int check_fields(const co_config *cfg, const co_key **at, mu_diag *diag)
{
    char why[256], path[96];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const co_key *k = &keys[i];
        double v = field_number(cfg, k);
        if (is_int(k) || k->type == CO_KEY_DOUBLE) {
            if (co_key_check_number(k, v, why, sizeof why) != MU_OK) {
                *at = k;
                return mu_diag_set(diag, MU_ERR_INVALID, "%s", why);
            }
        } else if (k->type == CO_KEY_BOOL || k->type == CO_KEY_ENUM || k->type == CO_KEY_STRATEGY) {
            int n = 2;
            if (k->type == CO_KEY_ENUM)
                for (n = 0; k->choices[n]; n++)
                    ;
            if (k->type == CO_KEY_STRATEGY)
                n = CO_STRATEGY_FEDADAGRAD + 1;
            if (!(v >= 0 && v < n)) {
                *at = k;
                return mu_diag_set(diag, MU_ERR_INVALID, "%s has no value %g",
                                   co_key_path(k, path, sizeof path), v);
            }
        }
    }
    return MU_OK;
}

static const co_key *row(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(keys[i].name, name) &&
            (section ? keys[i].section && !strcmp(keys[i].section, section) : !keys[i].section))
            return &keys[i];
    return NULL;
}

uint32_t co_config_colluders(const co_config *cfg)
{
    if (cfg->colluders != CO_COLLUDERS_AUTO)
        return cfg->colluders;
    return cfg->max_orgs >= 2 ? sa_max_colluders(cfg->max_orgs, cfg->max_orgs - 1) : 0;
}

int co_config_check(const co_config *cfg, mu_diag *diag)
{
    return co_config_check_at(cfg, NULL, diag);
}

int co_config_check_at(const co_config *cfg, const co_key **at, mu_diag *diag)
{
    const co_key *unused;
    if (!at)
        at = &unused;
    *at = NULL;
    int rc = check_fields(cfg, at, diag);
    if (rc != MU_OK)
        return rc;
    if (cfg->max_orgs < cfg->min_orgs) {
        *at = row("cohort", "max_orgs");
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "cohort.max_orgs (%u) is below cohort.min_orgs (%u)", cfg->max_orgs,
                           cfg->min_orgs);
    }
    if (cfg->ddg_noise > 0 && cfg->min_survivors > cfg->max_orgs) {
        *at = row("privacy", "min_survivors");
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "privacy.min_survivors (%u) is above cohort.max_orgs (%u): every round "
                           "would abort",
                           cfg->min_survivors, cfg->max_orgs);
    }
    if (cfg->epsilon_budget > 0 && !(cfg->ddg_noise > 0) && !(cfg->dp_clip > 0)) {
        *at = row("privacy", "epsilon_budget");
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "privacy.epsilon_budget %g without noise: set privacy.ddg_noise or "
                           "train.dp_clip",
                           cfg->epsilon_budget);
    }
    if ((uint64_t)cfg->batch * cfg->seq > CO_TASK_MAX_BATCH_TOKENS) {
        *at = row("train", "seq");
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "train.batch x train.seq (%u x %u) is above %u tokens, more than an "
                           "org accepts in a task",
                           cfg->batch, cfg->seq, CO_TASK_MAX_BATCH_TOKENS);
    }
    char msg[128];
    if (co_strategy_params_check(&cfg->strategy, msg, sizeof msg) != MU_OK) {
        *at = row("strategy", "name");
        return mu_diag_set(diag, MU_ERR_INVALID, "strategy: %s", msg);
    }
    for (size_t i = 0; i < cfg->n_orgs; i++)
        if (!wi_org_name_valid(cfg->orgs[i].name)) {
            *at = row(NULL, "orgs");
            return mu_diag_set(diag, MU_ERR_INVALID, "orgs: org name '%.80s' %s", cfg->orgs[i].name,
                               CO_CONFIG_ORG_NAME_RULE);
        }
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
            *at = row(NULL, "orgs");
            rc = mu_diag_set(diag, MU_ERR_INVALID, "orgs: '%s' is listed twice", names[i]);
            free(names);
            return rc;
        }
    free(names);
    return MU_OK;
}
