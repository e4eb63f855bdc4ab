/* cl_participant.h - one org's side of a federation, sans-IO.
 *
 * A cl_participant is an org: its identity (Ed25519 key pair), its local data (token arrays),
 * and the secure-aggregation client of the round in flight. A cl_engine is the model it
 * trains with: a base model loaded once (read-only after loading) with LoRA attached. The two
 * are separate so that a simulator with hundreds of orgs keeps one engine per worker thread
 * and swaps each org's LoRA vector in (the global adapter) and out (its delta), while
 * `mutual join` keeps one engine for its one org. Nothing here opens a socket, reads a clock
 * or a file (except cl_engine_new, which loads the base model), or starts a thread.
 *
 * The driver (gRPC `mutual join`, or `mutual sim`) loops:
 *
 *   task = pull (co_round_next_task in memory, or PullTask + co_task_decode)
 *   global = the coordinator's flat adapter vector (TRAIN and EVAL only: DownloadAdapter)
 *   cl_participant_handle_task(p, engine, &task, global, dim, &out, diag)
 *   push every out.items[i] to the coordinator (co_round_on_message, or PushStage /
 *   UploadMasked), then cl_outbox_clear(&out)
 *
 * What each task does:
 *   WAIT, DONE   nothing (out stays empty).
 *   TRAIN        LoRA trainable vector := global; cfg.steps AdamW steps (lr cfg.lr, torch
 *                defaults otherwise, fresh moments each round) on the org's training tokens.
 *                Data order: local step j of round r (r from 1) reads data step
 *                s = (r - 1)·steps + j of tr_data.h's order, i.e. batch row i starts at
 *                ((s·B + i)·T) mod (N − T), so rounds read different windows. FedProx
 *                (cfg.fedprox_mu = μ > 0): μ·(w − w_global) is added to the gradient before
 *                each optimizer step. Then Δ = local − global is kept for the secure-
 *                aggregation stages, and a READY report goes out, without numbers: its
 *                loss sum (Σ batch loss·B·T) and steps·B·T tokens go into the masked input.
 *                LoRA dropout masks use the forward counter hash(org seed, round), so they
 *                do not depend on which engine ran before.
 *                With cfg.dp_clip > 0 the steps are DP-SGD (train/include/tr_dp.h) instead:
 *                each step's batch is a Poisson (dp_sampling 1) or fixed-size (2) sample of
 *                the org's records, the disjoint windows of T + 1 tokens, gradients clipped
 *                per record to dp_clip with noise dp_noise·dp_clip, keyed by 32 bytes of
 *                system randomness per round (from the org seed when `simulated`); the
 *                token count is of the sampled tokens.
 *   EVAL         LoRA := global; cross-entropy over the org's held-out tokens in
 *                non-overlapping windows (window k starts at k·T, k < (N_eval − 1)/T), B
 *                windows per forward; the loss sum and token count are kept for the round's
 *                secure aggregation and an EVAL report without numbers goes out (issue 10
 *                attack 7: the coordinator learns the held-out loss only as a total).
 *   SECAGG       ADVERTISE: a new sa_client from cfg (with its instance nonce, cfg.sa_nonce:
 *                an all-zero nonce is MU_ERR_INVALID, nothing sent) and the cohort;
 *                sa_client_start.
 *                MASKED (the server's DELIVERY): Δ is clipped and quantised with
 *                sa_quant_encode (w·Δ and w), the loss sum and tokens appended as metric
 *                coordinates (co_metric_encode), set as the input, and Δ is freed; then
 *                sa_client_handle. In an evaluation round the input is the metric
 *                coordinates of the held-out loss sum and tokens alone (d = co_secagg_dim).
 *                Other stages: sa_client_handle. A SECAGG task whose cfg.kind is not what
 *                the org did in the round (trained or evaluated) is MU_ERR_INVALID, nothing
 *                sent; the noise pin below applies to training rounds only (an evaluation
 *                masks no update). The weight w is the org's example count
 *                floor(N_train / T) capped at cfg.weight_max when cfg.weight is
 *                CO_WEIGHT_EXAMPLES, else 1.
 *
 * Repeated tasks (a retried pull): a TRAIN for the round already trained (an EVAL for the round
 * already evaluated), before any secure-aggregation stage, sends the same READY (EVAL) report
 * again without training (evaluating); after the round's secure aggregation has begun, a TRAIN
 * for it (a coordinator that restarted the round) trains again from the new global. A SECAGG
 * stage already answered is MU_ERR_STATE.
 *
 * Once per round (attack 3 of issue 10, same-round replay): before its masked upload the org
 * records the round in cfg.rounds (durably, with a file); an ADVERTISE or MASKED task for a
 * round recorded there is refused with MU_ERR_ABORT, whoever recorded it (this participant,
 * or an earlier one of the same org before a coordinator or org restart). Only the MASKED
 * task of the secure aggregation that recorded it may be retried (after MU_ERR_NOMEM).
 *
 * Whom an org aggregates with (attack 1 of issue 10, the fake cohort): the coordinator chooses
 * the cohort, so an org that believed the task's member list could be shown a cohort of
 * itself plus keys the coordinator holds, and the "sum" would be its own update. Before it
 * advertises, the org checks the cohort itself: every member's key must be in its pinned
 * roster (cfg.members, from a source the coordinator does not control: the org config's
 * cohort.members), no key may appear twice, and the cohort must have at least
 * max(CL_MIN_COHORT, cfg.min_cohort) members. Otherwise the ADVERTISE task is MU_ERR_INVALID
 * and nothing is sent. An empty roster trusts no one: every secure aggregation is refused.
 *
 * The org's noise pin (issue 13): with ddg_noise > 0 an org adds noise scaled so that the sum
 * of ddg_min inputs has the task's noise multiplier; both numbers come from the coordinator.
 * The org refuses, before it trains or advertises, a task whose noise is below its own pin
 * (cfg.min_ddg_noise), a task without noise when it requires noise (cfg.require_ddg), and a
 * task whose ddg_min exceeds the cohort. It makes ddg_min binding: its sa_client gets it as
 * sa_config.min_survivors, so it sends no unmask shares for a survivor set smaller than the
 * number its noise was scaled for; and its MASKED task must carry the ddg_noise and ddg_min
 * of the ADVERTISE task it answered (else MU_ERR_INVALID, nothing sent).
 *
 * Determinism: with `deterministic` set, every random choice (stochastic rounding, data
 * windows, LoRA dropout) comes from the participant's seed and the round number, so a run
 * repeats bit for bit. The secure-aggregation keys and masks come from the seed only when
 * `simulated` is set as well (the simulator, which runs the coordinator itself); otherwise
 * they come from system randomness, which does not change the sum. A real org leaves both
 * off.
 *
 * Thread-safety: a participant and an engine are each used by one thread at a time; distinct
 * participants and engines may run concurrently (a simulator's parallel loop over orgs).
 */
#ifndef CL_PARTICIPANT_H
#define CL_PARTICIPANT_H

#include <stddef.h>
#include <stdint.h>

#include "cl_rounds.h"
#include "co_wire.h"
#include "mu_err.h"
#include "sa.h"
#include "tr_model.h"

/* ---- engine: the model an org trains ------------------------------------------------- */

typedef struct cl_engine cl_engine;

/* An org's own training choices (its org config's `training:`, mutual sim --checkpointing,
 * --bf16): its memory and speed, not the federation's; nothing sent changes form. Zero
 * (or NULL) is fp32 without checkpointing. */
typedef struct {
    int checkpointing; /* per-layer activation checkpointing: the update has the same bits */
    int bf16; /* the frozen base's 2-D weights held in bf16, loaded so (tr_hf_model_load_bf16:
               * no fp32 copy, half the base's memory), their products in bf16 with fp32
               * sums: the update differs from fp32's by bf16 rounding only */
} cl_engine_opts;

/* Loads the Hugging Face model folder `base_dir` as `opts` says (NULL: the defaults) and
 * attaches LoRA (`lora`, A drawn from `lora_seed`: with freeze_a every org and the
 * coordinator must use the same seed). NULL with diag on failure; MU_ERR_INVALID in diag for
 * an option other than 0 or 1. */
cl_engine *cl_engine_new(const char *base_dir, const tr_lora_config *lora, uint64_t lora_seed,
                         const cl_engine_opts *opts, mu_diag *diag);
/* The same from a model built in memory; takes ownership of `m` (also on failure: freed). */
cl_engine *cl_engine_from_model(tr_model *m, const tr_lora_config *lora, uint64_t lora_seed,
                                mu_diag *diag);
void cl_engine_free(cl_engine *e); /* wipes the LoRA vector and token scratch; NULL: no-op */

/* The model (LoRA attached). Its trainable vector holds the last task's global adapter: after
 * TRAIN the trained weights are replaced by the global again and the gradient zeroed, so that
 * only Δ (wiped when freed) holds what the org's data taught the model. */
tr_model *cl_engine_model(cl_engine *e);
/* Length of the flat trainable LoRA vector: the federation's dim. */
size_t cl_engine_dim(const cl_engine *e);
/* Per-layer activation checkpointing in this org's training (on 1, off 0; off by default):
 * an org's own memory decision, not the federation's. Backward recomputes each layer's
 * activations from its input by the same kernels in the same order, so every update (plain
 * and DP) has the same bits as without it (tr_model_set_checkpointing). MU_OK, or
 * MU_ERR_INVALID for another value. */
int cl_engine_set_checkpointing(cl_engine *e, int on);
/* Logs at info level, prefixed `who`, the engine's options that are on: the bf16 base and
 * the kernel its products run on (tr_bf16_kernel_name), activation checkpointing. */
void cl_engine_log_opts(cl_engine *e, const char *who);

/* ---- outgoing bytes ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *bytes; /* owned by the outbox */
    size_t len;
} cl_msg;

typedef struct {
    cl_msg *items; /* (count), every one goes to the coordinator, in order */
    size_t count, cap;
} cl_outbox;

void cl_outbox_init(cl_outbox *ob);
void cl_outbox_clear(cl_outbox *ob);  /* frees the messages, keeps the array */
void cl_outbox_deinit(cl_outbox *ob); /* frees everything */

/* ---- participant ------------------------------------------------------------------------ */

/* The smallest cohort an org takes part in unless its config says more (or it is in a
 * simulator or test, allow_small_cohort): the sum of fewer inputs says too much about each. */
#define CL_MIN_COHORT 5u

/* One member of the org's pinned roster: a name (for messages) and its Ed25519 key. */
typedef struct {
    char name[CO_ORG_NAME_MAX];
    uint8_t pk[SA_SIGN_PK_BYTES];
} cl_member;

typedef struct {
    const char *name;                  /* 1..63 bytes, copied */
    uint8_t sign_sk[SA_SIGN_SK_BYTES]; /* Ed25519 secret key, libsodium layout (copied, wiped) */
    /* Local data, borrowed: must outlive the participant. Token ids must be below the
     * model's vocabulary. Either may be NULL/0 when the org never trains or never evaluates. */
    const int32_t *train_tokens;
    int64_t n_train;
    const int32_t *eval_tokens;
    int64_t n_eval;
    /* Synthetic-update mode (protocol experiments at scale without a model): TRAIN trains
     * nothing and reports 0 loss over 0 tokens; the update is a vector of dim values drawn
     * uniformly from [-synthetic_amp, synthetic_amp] from the seed, the org and the round,
     * produced only when the masked input is due (so no n·d memory is held). Weight 1. */
    int synthetic;
    double synthetic_amp;
    int deterministic; /* see the header comment */
    uint8_t seed[32];  /* with deterministic (and for synthetic updates) */
    /* OpenMP threads for the secure-aggregation client (sa_client_set_threads: its
     * per-neighbour signature checks, key agreements, share encryption and Shamir evaluations,
     * and the mask expansion): 0 or 1 = one thread (what the simulator wants: its orgs already
     * run in parallel); an org on its own machine gives it all its cores. Every message is the
     * same bytes for any value. */
    int mask_threads;
    /* The pinned roster (copied): the only keys this org accepts in a cohort (see the header
     * comment). Its own key need not be listed. */
    const cl_member *members;
    size_t n_members;
    /* Smallest cohort accepted: 0 = CL_MIN_COHORT; a value below CL_MIN_COHORT is refused by
     * cl_participant_new unless allow_small_cohort (tests and the simulator only). */
    uint32_t min_cohort;
    int allow_small_cohort;
    /* The noise this org adds itself, pinned from a source the coordinator does not control
     * (the org config's privacy section; see "The org's noise pin" above): a TRAIN or
     * ADVERTISE task whose ddg_noise is below min_ddg_noise (when the task has noise), or 0
     * with require_ddg, is MU_ERR_INVALID and nothing is sent. 0 / 0 = take the task's. */
    double min_ddg_noise;
    int require_ddg;
    int simulated; /* the driver runs the coordinator itself: see Determinism above */
    /* Where the rounds this org has put a masked input into are recorded (cl_rounds.h;
     * borrowed: it must outlive the participant, and the driver keeps the same one across
     * coordinator restarts). NULL: the participant keeps its own in memory, lost with it. */
    cl_round_log *rounds;
} cl_participant_config;

typedef struct cl_participant cl_participant;

/* NULL with diag on a bad config (name, negative counts, min_cohort below CL_MIN_COHORT
 * without allow_small_cohort) or out of memory. */
cl_participant *cl_participant_new(const cl_participant_config *cfg, mu_diag *diag);
void cl_participant_free(cl_participant *p); /* wipes the key; NULL is a no-op */

const char *cl_participant_name(const cl_participant *p);
/* The Ed25519 public key to register (co_round_register / Join). */
const uint8_t *cl_participant_pk(const cl_participant *p);

/* Acts on one task (see the header comment) and appends what to push to `out`.
 * `engine` is needed for TRAIN and EVAL unless synthetic (else MU_ERR_INVALID); `global`
 * (dim floats, borrowed) for TRAIN and EVAL; dim must equal task->cfg.dim and the engine's
 * dim. First, before anything is allocated, the task is checked (co_task_check: every
 * round-config field in its CO_TASK_* range) and, for TRAIN and EVAL with an engine, seq
 * against the model's context (batch·seq·vocab is not limited: training and evaluation take
 * the loss in chunks and never hold those logits, tr_model_set_ce_chunk). Returns MU_OK, or:
 *   MU_ERR_PROTOCOL a task field out of range (co_task_check): nothing done
 *   MU_ERR_INVALID  wrong dim, no engine, seq beyond the model's context, too little data
 *                   for the sequence length; an ADVERTISE
 *                   whose cohort the org does not accept (not this org's key, a key not in
 *                   the roster or listed twice, fewer members than the minimum); a SECAGG
 *                   task for a training round the org evaluated in, or the reverse
 *   MU_ERR_STATE    a SECAGG task for a round this org did not train or evaluate in, or a
 *                   stage it has already answered (a repeated pull): nothing pushed
 *   the sa_client_handle codes (FORMAT, STATE: ignored; CRYPTO, PROTOCOL, ABORT: this org
 *   is out of the round), the train engine's codes,
 *   MU_ERR_ABORT    an ADVERTISE or MASKED task for a round this org already put a masked
 *                   input into (cfg.rounds): nothing pushed
 *   MU_ERR_IO       the round could not be recorded before the masked upload: nothing pushed
 *   MU_ERR_NOMEM    nothing pushed; the same task again is handled afresh (a TRAIN trains
 *                   again), except when secure_agg gave the round up for this org (its
 *                   client ran out of memory mid-stage): the same task then gets MU_ERR_ABORT.
 * On any error nothing new is in `out`. */
int cl_participant_handle_task(cl_participant *p, cl_engine *engine, const co_task *task,
                               const float *global, size_t dim, cl_outbox *out, mu_diag *diag);

/* The last TRAIN's results, for drivers and tests: the round (0 if none), the training loss
 * sum and tokens, and the weight that will be (or was) sent. */
typedef struct {
    uint64_t round;
    double loss_sum, tokens, weight;
} cl_train_info;
void cl_participant_last_train(const cl_participant *p, cl_train_info *info);

/* The last EVAL's results, for drivers and tests (never sent in the clear): the round (0 if
 * none), the held-out loss sum and tokens that are (or were) its metric coordinates. */
typedef struct {
    uint64_t round;
    double loss_sum, tokens;
} cl_eval_info;
void cl_participant_last_eval(const cl_participant *p, cl_eval_info *info);

/* The update Δ of the last TRAIN (dim floats) while it is held, i.e. between TRAIN and the
 * MASKED stage; NULL otherwise and always in synthetic mode. Borrowed. For tests. */
const float *cl_participant_delta(const cl_participant *p, size_t *dim);

/* The synthetic update of org `seed` for `round` (dim floats), as the participant makes it.
 * For tests and for checking a simulated aggregate. */
void cl_synthetic_update(float *out, size_t dim, const uint8_t seed[32], uint64_t round,
                         double amp);

#endif
