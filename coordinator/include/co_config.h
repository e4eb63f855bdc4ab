/* co_config.h - the coordinator's configuration: one table of every key, its default, its
 * range and its meaning.
 *
 * The table (co_config_keys) is the single source: co_config_default fills the defaults from
 * it, co_config_check checks every field's range against it, the YAML loader
 * (co_config_yaml.h) reads exactly its keys, and `mutual config keys --markdown` prints the
 * table that docs/coordinator.md holds (a test keeps them equal, and checks that
 * configs/coordinator.yaml mentions every key). Adding a key = one row + a field + its use.
 *
 * Loaded from YAML for `mutual serve --config FILE` (errors are "FILE:LINE:COL: ..."), from
 * the `coordinator:` block of a sim config, or filled in code (co_config_default, set fields,
 * co_config_check). Relative paths are resolved against the config file's folder.
 *
 * This file has no YAML and no I/O: it belongs to the sans-IO core.
 */
#ifndef CO_CONFIG_H
#define CO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "co_strategy.h"
#include "co_types.h"
#include "co_wire.h" /* co_weight_kind, the CO_TASK_* ranges */
#include "mu_err.h"

#define CO_PATH_MAX 1024

/* Completes "org name 'x' ...": the rule of wi_org_name_valid, which allowlist names follow. */
#define CO_CONFIG_ORG_NAME_RULE                                                                    \
    "is not a valid org name (1..63 of A-Z a-z 0-9 . _ -, not starting with . or -: it must "      \
    "be the org's certificate name)"

typedef struct {
    char name[CO_ORG_NAME_MAX];
    int has_pk;
    uint8_t pk[CO_ORG_PK_BYTES];
} co_allowed_org;

typedef struct {
    char name[CO_ORG_NAME_MAX];
    uint64_t seed;
    uint64_t rounds;
    uint32_t eval_every;
    char checkpoint_dir[CO_PATH_MAX];
    char export_dir[CO_PATH_MAX];

    uint32_t min_orgs, max_orgs;
    double fraction, wait_s, available_s;
    double eval_fraction; /* evaluation rounds: a fixed share of the connected orgs; 0 = off */

    uint32_t steps, batch, seq;
    double lr, fedprox_mu;
    co_weight_kind weight;
    double dp_clip, dp_noise; /* DP-SGD inside each org (co_round_config); dp_clip 0 = off */
    int dp_sampling;          /* index into "poisson", "fixed" */

    uint32_t bits, neighbours, threshold;
    double clip, scale, weight_max;

    double ddg_noise; /* distributed discrete Gaussian in the sum (docs/privacy.md); 0 = off */
    uint32_t min_survivors; /* the fewest inputs a noised sum may hold; 0 = cohort.min_orgs */
    uint32_t colluders;     /* orgs that may collude with the coordinator (co_config_colluders) */
    double epsilon_budget;  /* stop before a round that would exceed it (co_privacy.h); 0 = none */
    double delta;           /* the δ of every reported ε */

    co_strategy_params strategy;

    double train_s, advertise_s, share_s, masked_s, consistency_s, unmask_s, eval_s;

    char listen[256];
    char tls_ca[CO_PATH_MAX], tls_cert[CO_PATH_MAX], tls_key[CO_PATH_MAX];
    int insecure;
    uint32_t max_message_mb;

    co_allowed_org *orgs; /* (n_orgs) owned; NULL when any org may register */
    size_t n_orgs;
} co_config;

/* ---- the table ------------------------------------------------------------------------- */

typedef enum {
    CO_KEY_U32,      /* uint32_t; min/max inclusive */
    CO_KEY_U64,      /* uint64_t; min/max inclusive */
    CO_KEY_DOUBLE,   /* double; finite, min (or > min with CO_KEY_ABOVE_MIN) .. max */
    CO_KEY_BOOL,     /* int, 0 or 1 */
    CO_KEY_STR,      /* char[size] */
    CO_KEY_PATH,     /* char[size], resolved against the config file's folder */
    CO_KEY_ADDR,     /* char[size], HOST:PORT (mu_addr_parse) */
    CO_KEY_ENUM,     /* an int-sized enum: the index of the value in `choices` */
    CO_KEY_STRATEGY, /* co_strategy_kind; choosing one resets the strategy.* defaults */
    CO_KEY_ORGS,     /* the allowlist: a list of {name, public_key} (co_allowed_org) */
} co_key_type;

#define CO_KEY_ABOVE_MIN 1u /* the range excludes min: (min, max] */
#define CO_KEY_INPUT     2u /* a file serve reads at start: must exist (CO_CONFIG_CHECK_PATHS) */
#define CO_KEY_TLS       4u /* required unless server.insecure (CO_CONFIG_CHECK_PATHS) */
#define CO_KEY_OUTDIR    8u /* a folder serve writes: must not be a non-folder */

#define CO_KEY_I64_MAX 9223372036854775807.0 /* as a double: 2^63 */

typedef struct {
    const char *section; /* "federation", ...; NULL for a top-level key (orgs) */
    const char *name;    /* the key inside its section */
    co_key_type type;
    size_t offset;              /* offsetof(co_config, field) */
    size_t size;                /* sizeof the field (the capacity of a string) */
    double def;                 /* default of a number, bool or enum index */
    const char *def_str;        /* default of a string or path */
    double min, max;            /* range of a number */
    const char *const *choices; /* CO_KEY_ENUM: NULL-terminated names, index = value */
    unsigned flags;             /* CO_KEY_* flags */
    const char *doc;            /* one line: what it does */
} co_key;

/* The table, in the order keys are read and documented. Static; never NULL. */
const co_key *co_config_keys(size_t *n);

/* "section.name" (or "name") into buf. Returns buf. */
const char *co_key_path(const co_key *k, char *buf, size_t cap);

/* The range or the allowed values of k as text ("[2, 65536]", "(0, 1]", "fedavg | ...",
 * "" when free), and its default as text ("0.0001", "examples", "\"\"", "false"). */
void co_key_range_text(const co_key *k, char *buf, size_t cap);
void co_key_default_text(const co_key *k, char *buf, size_t cap);

/* "bool", "int", "number", "string", "path", "host:port", "list". */
const char *co_key_type_name(const co_key *k);

/* Checks a number against k's range. MU_OK, or MU_ERR_INVALID with why set to
 * "<section.name> must be between A and B, got V" (or "must be > A and at most B"). */
int co_key_check_number(const co_key *k, double v, char *why, size_t cap);

/* ---- filling and checking ---------------------------------------------------------------- */

/* Fills every field with its default from the table (no allowlist). */
void co_config_default(co_config *cfg);

/* Every field's range from the table, then the cross-field checks (max_orgs >= min_orgs,
 * strategy params, duplicate orgs). MU_OK or MU_ERR_INVALID with the reason in diag. */
int co_config_check(const co_config *cfg, mu_diag *diag);
/* The same, with *at (at may be NULL) set to the row at fault, for messages that point at
 * its place in a file (NULL when nothing is wrong). */
int co_config_check_at(const co_config *cfg, const co_key **at, mu_diag *diag);

/* Loads a YAML file over the defaults. Unknown keys, wrong types and out-of-range values are
 * errors with FILE:LINE:COL. On error *cfg holds nothing to free. On success free with
 * co_config_deinit. (co_config_yaml.c; see co_config_yaml.h for loading from a YAML node.) */
int co_config_load(const char *path, co_config *cfg, mu_diag *diag);

/* The same from a string (`name` used in messages and for relative paths), for tests. */
int co_config_parse(const char *name, const char *text, size_t len, co_config *cfg, mu_diag *diag);

void co_config_deinit(co_config *cfg); /* frees the allowlist; NULL-safe */

/* privacy.colluders left unset: the secure-aggregation threat model's count (below). */
#define CO_COLLUDERS_AUTO (CO_WIRE_MAX_COHORT + 1u)

/* The orgs the org-level ε assumes may collude with the coordinator (each can subtract its own
 * noise from a released sum): privacy.colluders, or when unset the count secure aggregation's
 * minimum threshold is built for over a cohort of cohort.max_orgs, sa_max_colluders(max_orgs,
 * max_orgs - 1) (each org colluding with probability 0.05, bound at 2^-40, at most a third:
 * 0 for up to 3 orgs, 3 for 10, 28 for 100). */
uint32_t co_config_colluders(const co_config *cfg);

#endif
