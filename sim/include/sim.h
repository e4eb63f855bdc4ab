/* sim.h - `mutual sim`: a federation of virtual orgs in one process.
 *
 * The simulator is one more driver of the sans-IO cores: it owns a co_round (the coordinator)
 * and one cl_participant per virtual org, and carries every task and message between them in
 * memory through the same encodings the gRPC layer sends (co_task_encode/decode, co_report,
 * sa_msg bytes). Nothing is re-implemented here.
 *
 * Time is virtual: `now` starts at 0 and only the driver moves it. While some org has
 * something to do, time stands still; when nobody can act, it jumps to the coordinator's next
 * deadline (co_round_next_deadline) and the timer fires (co_round_tick). So a run is a pure
 * function of the config and the seed.
 *
 * Each step: tick; then, org by org in a fixed order and in chunks of SIM_CHUNK orgs, pull the
 * task (encoded and decoded as on the wire), act on it (in parallel: one OpenMP parallel-for
 * over the chunk's orgs, each on its worker thread's engine), and push the replies in org
 * order. Orgs' results do not depend on which thread or engine ran them, and the coordinator
 * sees the same messages in the same order, so `sequential` gives the same bits.
 *
 * Threads: OpenMP nested parallelism is switched off (max active levels 1), so inside the
 * parallel loop every kernel and OpenBLAS call runs on one thread; with `sequential` the
 * process runs with 1 thread too. Either way each org trains with one thread.
 */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "co_config.h"
#include "mu_err.h"
#include "tr_model.h"
#include "wi_stage.h" /* stages are wi_stage: WI_STAGE_TRAIN .. WI_STAGE_EVAL */

#define SIM_CHUNK 16 /* orgs pulled, run and pushed together */

typedef enum { SIM_SPLIT_FILES = 0, SIM_SPLIT_IID = 1, SIM_SPLIT_DIRICHLET = 2 } sim_split;

/* One scripted event: org `org` (1-based index) at `stage` of `round` (0 = every round). */
typedef struct {
    uint32_t org;
    uint64_t round;
    int stage;
} sim_event;

/* Dropouts or stragglers: a probability per stage, and a script. */
typedef struct {
    double prob[WI_ORG_STAGES]; /* by wi_stage, TRAIN .. EVAL */
    sim_event *script;          /* (n_script) owned */
    size_t n_script;
} sim_faults;

typedef struct {
    uint64_t seed;
    int threads; /* worker threads; 0 = all cores */
    int checkpoint;
    uint32_t max_aborted; /* stop once this many rounds have aborted (default 10) */

    /* model */
    char base[CO_PATH_MAX]; /* HF folder, resolved against the config's folder; "" = none */
    char model_name[512];   /* model.name: base_model_name_or_path of exported adapters */
    tr_lora_config lora;
    uint64_t lora_seed;
    uint32_t synthetic_dim; /* > 0: synthetic-update mode (no base model) */
    double synthetic_amp;

    /* data */
    sim_split split;
    char **files; /* (n_files) owned, resolved */
    size_t n_files;
    uint8_t (*org_seeds)[32]; /* (n_files) participant seeds given as {path, seed} */
    uint8_t *has_org_seed;    /* (n_files) */
    char pool[CO_PATH_MAX];
    uint32_t orgs;
    double alpha;
    uint32_t chunks; /* 0 = default (iid: 16 per org; dirichlet: 8) */
    double eval_fraction;

    sim_faults dropout, stragglers;
    /* Leaves: as a dropout, but the org says so (a signed LEAVE report, as `mutual join` on
     * SIGTERM), so the coordinator drops it at once instead of at the stage's deadline. */
    sim_faults leave;
    /* Replays: when a draw or the script hits (org, round, stage), the task the org acted on
     * there is delivered to it again after its next task (through the host layer, which must
     * not act on it twice). */
    sim_faults replay;
    /* A coordinator restart once round restart.round has stage restart.stage open (org
     * unused): the co_round is dropped, a new one resumes from the last checkpoint, the orgs
     * register again and see a new coordinator instance. Needs checkpoint. */
    int has_restart;
    sim_event restart;
    co_config co; /* the coordinator */
} sim_config;

/* Loads a sim config (keys in docs/sim.md and configs/sim.yaml). Every error is
 * "FILE:LINE:COL: ..." and MU_ERR_INVALID (MU_ERR_NOTFOUND/IO for an unreadable file). On
 * error *cfg holds nothing to free; on success free with sim_config_deinit. */
int sim_config_load(const char *path, sim_config *cfg, mu_diag *diag);
int sim_config_parse(const char *name, const char *text, size_t len, sim_config *cfg,
                     mu_diag *diag);
void sim_config_deinit(sim_config *cfg);

/* ---- data split -------------------------------------------------------------------------- */

/* How a pooled dataset of n tokens is dealt to `orgs` orgs:
 *   iid        the pool is cut into `chunks` equal contiguous blocks (the last takes the
 *              remainder); the blocks are shuffled with the seed and dealt round-robin, each
 *              org's blocks kept in pool order.
 *   dirichlet  the pool is cut into `chunks` equal contiguous "domains"; for each domain c,
 *              p_c ~ Dirichlet(alpha, ..., alpha) over the orgs (Gamma(alpha) draws,
 *              normalised), and domain c is cut into `orgs` contiguous pieces of lengths
 *              floor(p_c,j · len) (the last org takes the rounding remainder); org j's data
 *              is its pieces in domain order. Small alpha: each domain goes mostly to one org;
 *              large alpha: every org gets about 1/orgs of every domain (NIID-Bench's
 *              label-Dirichlet partition, with domains in place of labels).
 * Writes each org's token count to counts[orgs] and the tokens, org after org, to out (n).
 * MU_ERR_INVALID for a bad split or fewer tokens than chunks. */
int sim_split_tokens(const int32_t *tokens, int64_t n, sim_split split, uint32_t orgs,
                     uint32_t chunks, double alpha, uint64_t seed, int32_t *out, int64_t *counts,
                     mu_diag *diag);

/* ---- running ----------------------------------------------------------------------------- */

typedef struct {
    const char *config_path; /* for the config hash of checkpoints */
    const char *out_dir;     /* final adapter: PEFT folder + global.f32; NULL = none */
    FILE *metrics;           /* JSON lines, one per round; NULL = none */
    FILE *org_metrics;       /* JSON lines, one per org per round (docs/sim.md); NULL = none */
    int sequential;
    int progress;      /* draw a progress bar per round (on a terminal) */
    int checkpointing; /* every org's engine with per-layer activation checkpointing (the
                        * orgs' memory, as an org config's training.checkpointing; same bits) */
    int bf16;          /* every org's engine with the frozen base in bf16 (as an org config's
                        * training.bf16): the updates differ from fp32's by bf16 rounding */
    /* The members' charter (host/include/ho_gov.h): with charter_path, the coordinator
     * signs with coordinator_key and writes the audit log audit_dir/audit.log (charter,
     * admissions, rounds; then, since the simulator holds every org's key, each org signs
     * the release of the last round and the final adapter is exported only once the
     * charter's release quorum is logged). Org i's signing key is org_keys_dir/org-I.key
     * (64 hex digits, as `mutual certs identity` writes); NULL: derived from the seed. */
    const char *charter_path, *coordinator_key, *audit_dir, *org_keys_dir;
} sim_run_opts;

typedef struct {
    uint64_t rounds, completed, aborted;
    double wall_s, virtual_s;
    size_t dim;
    float *global; /* (dim) final global adapter, owned: free() */
    void *history; /* co_metrics array (n_history), owned: free() */
    size_t n_history;
    double *round_wall_s;     /* (n_history) wall seconds of each round, owned: free() */
    uint64_t late_rejected;   /* straggler messages the coordinator refused as late */
    uint64_t orgs_dropped_in; /* injected dropouts */
    uint64_t orgs_left_in;    /* injected leaves (a LEAVE report, as on SIGTERM) */
    uint64_t restarts;        /* injected coordinator restarts */
    uint64_t replays;         /* injected replayed tasks */
    uint64_t tasks_acted;     /* tasks the orgs' participant cores acted on (ho_org_stats) */
    uint64_t tasks_repeated;  /* repeats and replays the host layer did not act on */
} sim_result;

/* Runs the federation to the end (federation.rounds training rounds). Returns MU_OK (every
 * round finished, completed or aborted, and outputs written) or an error with diag. */
int sim_run(const sim_config *cfg, const sim_run_opts *opts, sim_result *res, mu_diag *diag);
void sim_result_deinit(sim_result *res);

/* Prints the per-round table. */
void sim_print_table(FILE *out, const sim_result *res);

/* ---- a summary over seeds (mutual sim --seeds) -------------------------------------------- */

/* One run's numbers for a paper's table. */
typedef struct {
    uint64_t seed;
    double final_train_loss;      /* the last completed training round's loss; NaN: none */
    double final_eval_loss;       /* the last completed evaluation round's loss; NaN: none */
    uint64_t bytes_in, bytes_out; /* summed over every round (co_metrics, as serve counts) */
    double wall_s, virtual_s;
    uint64_t completed, aborted; /* rounds */
} sim_seed_run;

/* The numbers of res, a run with `seed`. */
void sim_seed_run_of(const sim_result *res, uint64_t seed, sim_seed_run *run);

/* Writes one JSON object (and a newline) summarising n runs:
 *   {"seeds":[...],"summary":{M:{"n":N,"mean":x,"std":x,"min":x,"max":x},...},"runs":[...]}
 * for M = final_train_loss, final_eval_loss, bytes_in, bytes_out, bytes (in + out), wall_s,
 * virtual_s; each runs[] entry has the seed and every M, completed and aborted. n counts the
 * runs whose value is finite (a loss may be null); std is the sample standard deviation
 * (n - 1 in the denominator), null for n < 2; mean, min and max are null for n = 0.
 * MU_OK, MU_ERR_NOMEM, or MU_ERR_IO (the write failed). */
int sim_seeds_write(FILE *f, const sim_seed_run *runs, size_t n);

/* The per-org seeds the simulator derives (BLAKE2b keyed by "mutual-sim-" + what, over the
 * seed and the 0-based org index): what = "keys" (the Ed25519 identity) or "org" (the
 * participant's seed: its randomness and synthetic updates). For tests that check a
 * simulated aggregate. */
void sim_org_seed(uint64_t seed, uint32_t index, const char *what, uint8_t out[32]);

/* Inside an OpenMP parallel loop as the simulator runs it, the number of threads an inner
 * parallel region gets (1 when nested parallelism is off, which sim_run ensures). For tests. */
int sim_inner_threads(int outer_threads);

#endif
