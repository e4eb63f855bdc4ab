/* co_config.h - the coordinator's configuration: every key, its default and its range.
 *
 * Loaded from YAML for `mutual serve --config FILE` (errors are "FILE:LINE:COL: ..."), or
 * filled in code by the simulator (co_config_default, then set fields, then co_config_check).
 * configs/coordinator.yaml is a commented example with every key; docs/coordinator.md
 * explains them.
 *
 *   federation.name            string   "mutual"     shown by status
 *   federation.seed            int      0            cohort sampling and per-round seeds
 *   federation.rounds          int      10           training rounds to run, completed or
 *                                                    aborted; 0 = until stopped
 *   federation.eval_every      int      0            an evaluation round after every k
 *                                                    training rounds; 0 = never
 *   federation.checkpoint_dir  string   "checkpoints"
 *   federation.export_dir      string   ""           PEFT folder per round ("" = none)
 *   cohort.min_orgs            int      2            [2, 65536]
 *   cohort.max_orgs            int      100          [min_orgs, 65536]
 *   cohort.fraction            double   1.0          (0, 1]: share of connected orgs sampled
 *   cohort.wait_s              double   10           wait this long for more orgs once
 *                                                    min_orgs are connected
 *   cohort.available_s         double   120          "connected" = seen within this window
 *   train.steps                int      20           local steps per round [1, 10^6]
 *   train.lr                   double   1e-4         local learning rate (0, 10]
 *   train.batch                int      8            [1, 65536]
 *   train.seq                  int      128          [1, 10^6]
 *   train.fedprox_mu           double   0            FedProx μ ≥ 0 (0 = plain local SGD)
 *   train.weight               string   "examples"   "examples" or "uniform"
 *   secure_agg.bits            int      32           [8, 32]
 *   secure_agg.neighbours      int      0            0 = chosen by sa_graph_choose
 *   secure_agg.threshold       int      0            0 = chosen by sa_graph_choose
 *   secure_agg.clip            double   1.0          L2 clip of each org's delta, > 0
 *   secure_agg.scale           double   0            fixed-point scale; 0 = the largest power
 *                                                    of two that cannot overflow with max_orgs
 *                                                    (refused if that is below 1)
 *   secure_agg.weight_max      double   1e4          largest weight an org may send, > 0
 *   strategy.name              string   "fedavg"     fedavg|fedavgm|fedadam|fedyogi|fedadagrad
 *   strategy.eta, momentum, beta1, beta2, tau, bias_correction   see co_strategy.h
 *   deadlines.train_s          double   1800         per stage, seconds, > 0
 *   deadlines.advertise_s, share_s, consistency_s  60;  masked_s 600;  unmask_s 120;
 *   deadlines.eval_s           600
 *   server.listen              string   "0.0.0.0:7443"   (read by the serve driver)
 *   server.tls_ca, tls_cert, tls_key   string  ""
 *   server.insecure            bool     false
 *   server.max_message_mb      int      64           [1, 2047]
 *   orgs                       list of {name, public_key (64 hex, optional)}; absent =
 *                              any org with a valid certificate may register
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

    uint32_t steps, batch, seq;
    double lr, fedprox_mu;
    co_weight_kind weight;

    uint32_t bits, neighbours, threshold;
    double clip, scale, weight_max;

    co_strategy_params strategy;

    double train_s, advertise_s, share_s, masked_s, consistency_s, unmask_s, eval_s;

    char listen[256];
    char tls_ca[CO_PATH_MAX], tls_cert[CO_PATH_MAX], tls_key[CO_PATH_MAX];
    int insecure;
    uint32_t max_message_mb;

    co_allowed_org *orgs; /* (n_orgs) owned; NULL when any org may register */
    size_t n_orgs;
} co_config;

/* Fills every field with its default (no allowlist). */
void co_config_default(co_config *cfg);

/* Cross-field checks (max_orgs >= min_orgs, strategy params, ...). MU_OK or MU_ERR_INVALID
 * with the reason in diag. co_config_load calls it. */
int co_config_check(const co_config *cfg, mu_diag *diag);

/* Loads a YAML file over the defaults. Unknown keys, wrong types and out-of-range values are
 * errors with FILE:LINE:COL. On error *cfg holds nothing to free. On success free with
 * co_config_deinit. */
int co_config_load(const char *path, co_config *cfg, mu_diag *diag);

/* The same from a string (`name` used in messages), for tests. */
int co_config_parse(const char *name, const char *text, size_t len, co_config *cfg, mu_diag *diag);

void co_config_deinit(co_config *cfg); /* frees the allowlist; NULL-safe */

#endif
