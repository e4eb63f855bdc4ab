/* co_wire.h - what the coordinator and an org say to each other around the SecAgg messages.
 *
 * Two kinds of opaque byte strings, so any transport (gRPC PullTask / PushStage, or the
 * in-process simulator) carries them without knowing their insides:
 *
 *   task    coordinator -> org: what to do now (wait, train, evaluate, a secure-aggregation
 *           stage with the server's message for this org, or done). The answer to a pull.
 *   report  org -> coordinator: "trained" (READY) or "evaluated" (EVAL), with no numbers: the
 *           loss and token count travel masked, or "I am stopping" (LEAVE).
 *           SecAgg messages (sa_msg.h, magic "SA") travel the same way, unchanged;
 *           co_round_on_message tells them apart by magic.
 *
 * Encoding: little-endian, fixed fields, then counted arrays; magic "CT" (task) or "CR"
 * (report), then a version byte (CO_WIRE_VERSION). Decoders take untrusted bytes, check every
 * length, and refuse trailing bytes, unknown kinds and counts above SA_MAX_ORGS.
 *
 * Every round's loss sum and token count travel inside the secure sum (extra coordinates,
 * "Metrics inside the secure sum" below), so the coordinator learns only the round's totals over
 * the secure aggregation's survivors, as it does for the update (issue 10 attack 7): a training
 * org's masked input is w·Δ, w and the metric coordinates; an evaluation org's is the metric
 * coordinates of its held-out loss sum and token count alone. No report carries a number.
 */
#ifndef CO_WIRE_H
#define CO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "co_types.h"
#include "dp_ddg.h"
#include "mu_err.h"

/* Moves with every change of either encoding, so a peer of another version is refused as such
 * (not as a malformed message). 2: the LEAVE report kind. 3: DP-SGD in the round config. 4: READY
 * carries no loss or tokens; they are the metric coordinates of the masked input
 * (d = dim + 1 + co_metric_coords). 5: the round config's secure-aggregation instance nonce.
 * 6: the distributed discrete Gaussian (ddg_noise, ddg_min). 7: EVAL carries no loss or tokens
 * either (an evaluation round is a secure aggregation of d = co_metric_coords values), so no
 * report has those fields: 12 bytes instead of 28. */
#define CO_WIRE_VERSION    7
#define CO_REPORT_BYTES    12     /* "CR" ver type round(8) */
#define CO_WIRE_MAX_COHORT 65536u /* = SA_MAX_ORGS */
#define CO_SA_NONCE_BYTES  16u    /* = SA_INSTANCE_NONCE_BYTES */

/* The range of every round-config field an org accepts (co_round_config_check). The
 * coordinator's config (co_config.h) documents the same ranges for its keys. An org refuses a
 * task outside them before it allocates anything for it. */
#define CO_TASK_MAX_STEPS        1000000u
#define CO_TASK_MAX_BATCH        65536u
#define CO_TASK_MAX_SEQ          1000000u
#define CO_TASK_MAX_BATCH_TOKENS (1u << 28) /* batch·seq: fits the model's int index math */
#define CO_TASK_MAX_DIM          ((1u << 30) - 1 - CO_METRIC_MAX_COORDS) /* d <= SA_MAX_D */
#define CO_TASK_MIN_BITS         8u
#define CO_TASK_MAX_BITS         32u
#define CO_TASK_MAX_K            (CO_WIRE_MAX_COHORT - 1) /* secure_agg.neighbours */
#define CO_TASK_MAX_T            CO_WIRE_MAX_COHORT       /* secure_agg.threshold */
#define CO_TASK_MAX_QUANT_N      CO_WIRE_MAX_COHORT       /* orgs selected for the round */
#define CO_TASK_MAX_LR           10.0                     /* lr in (0, 10] */
#define CO_TASK_MAX_FEDPROX_MU   1e6                      /* [0, 1e6] */
#define CO_TASK_MAX_CLIP         1e12                     /* (0, 1e12] */
#define CO_TASK_MAX_SCALE        1e18 /* [0, 1e18]; 0 = chosen by the coordinator */
#define CO_TASK_MAX_WEIGHT_MAX   1e15 /* (0, 1e15] */
#define CO_TASK_MAX_DP_NOISE     1e6  /* dp_noise in [0, 1e6] */

/* ---- Metrics inside the secure sum ----
 * A training org's masked input is dim + 1 + M values: its quantised w·Δ and w (sa_quant_encode),
 * then M = co_metric_coords(bits, quant_n) metric coordinates; an evaluation org's is those M
 * alone (co_secagg_dim). The metric coordinates are its loss sum and its token count
 * as fixed-point integers written in base 2^L digits, L = co_metric_limb_bits(bits, quant_n) the
 * largest L with quant_n·(2^L − 1) <= 2^bits − 1, so the sum of every digit over the cohort never
 * wraps and the coordinator recombines exact totals from the summed digits.
 *   tokens    rounded to an integer, capped at CO_METRIC_MAX_TOKENS per org and round
 *   loss sum  clipped to [0, CO_METRIC_MAX_LOSS · tokens] (a mean loss per token of at most 64
 *             nats), then round(loss_sum · CO_METRIC_LOSS_SCALE): each org's loss sum is off by
 *             at most 1/(2·CO_METRIC_LOSS_SCALE), the total by n times that
 * Totals are recombined in double: exact while a quantised total is below 2^53 (a loss sum
 * total below 2^37 nats: 2^36 tokens at a mean loss of 2), within about 2^-52 relative above.
 * E.g. M = 5 at 32 bits for 2..2048 orgs (L 30..21), 12 at 16 bits for 100 orgs, 21 at 8 bits
 * for 5, 102 at worst (L = 1: 8 bits, 86..255 orgs); L = 0 (quant_n >= 2^bits) is refused. */
#define CO_METRIC_MAX_TOKENS 1099511627775.0 /* 2^40 − 1 */
#define CO_METRIC_MAX_LOSS   64.0
#define CO_METRIC_LOSS_SCALE 65536.0
#define CO_METRIC_TOKEN_BITS 40u
#define CO_METRIC_LOSS_BITS  62u /* 2^40 tokens · 64 · 2^16 */
#define CO_METRIC_MAX_COORDS (CO_METRIC_TOKEN_BITS + CO_METRIC_LOSS_BITS)

/* L for a sum of n inputs at `bits` (0 when even one-bit digits could wrap). */
uint32_t co_metric_limb_bits(uint32_t bits, uint32_t n);
/* M, the metric coordinates after w (0 when L is 0). */
uint32_t co_metric_coords(uint32_t bits, uint32_t n);
/* Writes the m = co_metric_coords(bits, n) metric coordinates of one org's loss sum and token
 * count into out (clipped as stated above). MU_ERR_INVALID for a wrong m or a NaN/Inf. */
int co_metric_encode(uint32_t *out, size_t m, double loss_sum, double tokens, uint32_t bits,
                     uint32_t n, mu_diag *diag);
/* The totals from the m summed metric coordinates of n_inputs (<= n_quant) inputs quantised
 * for n_quant orgs. MU_ERR_PROTOCOL (totals 0) if a digit sum is above n_inputs·(2^L − 1): an
 * org sent an out-of-range digit; MU_ERR_INVALID for a wrong m. */
int co_metric_decode(double *loss_sum, double *tokens, const uint32_t *sum, size_t m, uint32_t bits,
                     uint32_t n_quant, uint32_t n_inputs, mu_diag *diag);

/* How an org weighs its update: its example count (capped at weight_max) or 1. */
typedef enum { CO_WEIGHT_EXAMPLES = 0, CO_WEIGHT_UNIFORM = 1 } co_weight_kind;

typedef enum {
    CO_TASK_WAIT = 0,   /* nothing for this org now; pull again */
    CO_TASK_TRAIN = 1,  /* download the global adapter, train with cfg, send a READY report */
    CO_TASK_EVAL = 2,   /* download the global adapter, evaluate, send an EVAL report */
    CO_TASK_SECAGG = 3, /* a secure-aggregation stage: see co_task.stage */
    CO_TASK_DONE = 4,   /* the federation has finished; stop */
} co_task_kind;

/* The round config an org trains with. FedProx: each org adds fedprox_mu/2·‖w − w_global‖²
 * to its local loss (0 = off). The secure-aggregation fields define the sa_config and sa_quant
 * both sides use:
 *   sa_config { round_id = round, d = dim + 1, bits, k, t, the cohort of the SECAGG task }
 *   sa_quant  { clip_norm = clip, scale, w_max = weight_max, bits, n = quant_n }
 * where quant_n is the number of orgs selected for the round (an upper bound on the cohort,
 * so the overflow check holds for any subset). k and t are 0 until the SECAGG stage starts.
 * sa_nonce is sa_config.instance_nonce: 16 bytes the coordinator draws fresh each time it starts
 * a secure aggregation (all zero until then), hashed into the config hash every ADVERTISE signs,
 * so signed messages recorded in one instance of a round are refused in another (a restarted
 * coordinator's); an org refuses a SECAGG task whose nonce is all zero. */
typedef struct {
    uint64_t round;
    uint8_t kind;   /* co_round_kind */
    uint8_t weight; /* co_weight_kind */
    uint64_t seed;  /* per-round seed derived from federation.seed and round */
    uint32_t steps, batch, seq;
    double lr, fedprox_mu;
    uint32_t dim; /* floats in the flat adapter vector */
    uint32_t bits, k, t, quant_n;
    uint8_t sa_nonce[CO_SA_NONCE_BYTES];
    double clip, scale, weight_max;
    /* DP-SGD inside each org (train/include/tr_dp.h), per record: dp_clip 0 = off (then
     * dp_noise and dp_sampling are 0); else per-record clip in (0, CO_TASK_MAX_CLIP], noise
     * multiplier in [0, CO_TASK_MAX_DP_NOISE], sampling 1 Poisson or 2 fixed-size batches
     * (batch = the expected batch). Each org keys its noise with its own random key. */
    double dp_clip, dp_noise;
    uint8_t dp_sampling;
    /* Distributed discrete Gaussian in the secure sum (privacy/include/dp_ddg.h, co_ddg): 0 =
     * off (then ddg_min is 0); else the sum's noise multiplier in (0, CO_TASK_MAX_DP_NOISE] and
     * the fewest inputs a released sum holds, in [1, quant_n]. */
    double ddg_noise;
    uint32_t ddg_min;
} co_round_config;

/* One task. Arrays are borrowed from the co_round (valid until the next call that changes it)
 * or, after co_task_decode, owned by the task (free with co_task_deinit).
 *   SECAGG, stage == SA_STAGE_ADVERTISE: cohort_ids/cohort_pks hold the cohort (ascending);
 *     the org builds its sa_client from cfg + cohort, sets its quantised input, calls
 *     sa_client_start and pushes the ADVERTISE bytes.
 *   SECAGG, later stages: sa_msg is the server's message for this org; the org feeds it to
 *     sa_client_handle and pushes what comes out. */
typedef struct {
    co_task_kind kind;
    uint32_t org_id;
    double deadline; /* coordinator time at which the current stage closes (0 for WAIT/DONE);
                        a network driver sends the org "seconds left" instead, since the
                        org's clock differs */
    co_round_config cfg;
    uint8_t stage; /* sa_stage, SECAGG only */
    uint32_t n_cohort;
    uint32_t *cohort_ids;
    uint8_t (*cohort_pks)[CO_ORG_PK_BYTES];
    const uint8_t *sa_msg;
    size_t sa_len;
    void *owned_; /* decode's allocation; NULL for borrowed tasks */
} co_task;

/* The distributed discrete Gaussian of a training round with c->ddg_noise > 0, as both sides
 * build it (dp_ddg.h): dim = c->dim, l2 = weight_max·clip (an org sends w·clip(Δ)), scale,
 * noise = ddg_noise, min_survivors = ddg_min, and the rotation's public seed
 * BLAKE2b-256("mutual ddg rotation v1" ‖ le64(seed) ‖ le64(round)). */
void co_round_config_ddg(const co_round_config *c, dp_ddg *p);
/* The largest probability (dp_ddg_wrap over quant_n honest inputs) that a noised round's sum
 * wraps: the coordinator refuses a config above it at setup, an org refuses such a task. */
#define CO_DDG_MAX_WRAP 1e-9

/* Checks a round config against the CO_TASK_* ranges, kind and weight against their enums, and
 * that no double is NaN or infinite. MU_OK, or MU_ERR_PROTOCOL with the field and its value in
 * diag. co_task_decode calls it for TRAIN, EVAL and SECAGG tasks; cl_participant_handle_task
 * calls it too, for tasks handed over in memory. */
int co_round_config_check(const co_round_config *c, mu_diag *diag);

/* The values an org masks in a round of this config: dim + 1 + M for a training round, M for an
 * evaluation round (M = co_metric_coords(bits, quant_n)); the sa_config's d on both sides. */
uint32_t co_secagg_dim(const co_round_config *c);

/* The checks co_task_decode makes on a decoded task: for TRAIN, EVAL and SECAGG the round
 * config (co_round_config_check), a finite deadline, for SECAGG a stage in [1, 5]
 * (ADVERTISE..UNMASK) and a cohort of at most CO_WIRE_MAX_COHORT with ids ascending. MU_OK or
 * MU_ERR_PROTOCOL with the reason in diag. */
int co_task_check(const co_task *t, mu_diag *diag);

/* The exact encoded length of t. */
size_t co_task_encoded_len(const co_task *t);
/* Encodes into buf (cap bytes). MU_ERR_INVALID if cap is too small or counts are too big. */
int co_task_encode(const co_task *t, uint8_t *buf, size_t cap, size_t *written);
/* Decodes untrusted bytes. On success *t owns its arrays (co_task_deinit); on error returns
 * MU_ERR_FORMAT (malformed bytes), MU_ERR_PROTOCOL (well-formed, but a field out of range:
 * co_task_check, refused before anything is allocated) or MU_ERR_NOMEM, with the reason in
 * diag, and *t owns nothing. */
int co_task_decode(co_task *t, const uint8_t *buf, size_t len, mu_diag *diag);
void co_task_deinit(co_task *t);

/* READY: trained; EVAL: evaluated (the round's secure aggregation follows: the loss sum and
 * token count are its metric coordinates); LEAVE: the org is stopping and leaves the round in
 * flight now (its round is the last round the org knew of), so the coordinator drops it at once
 * instead of at the stage's deadline. No report carries a loss or a token count. */
typedef enum { CO_REPORT_READY = 1, CO_REPORT_EVAL = 2, CO_REPORT_LEAVE = 3 } co_report_type;

typedef struct {
    co_report_type type;
    uint64_t round;
} co_report;

/* Encodes into exactly CO_REPORT_BYTES bytes of buf. */
void co_report_encode(const co_report *r, uint8_t buf[CO_REPORT_BYTES]);

/* MU_OK, or MU_ERR_FORMAT for a wrong length (a version-6 report of 28 bytes with its loss and
 * tokens included), magic, version or type. */
int co_report_decode(co_report *r, const uint8_t *buf, size_t len);

#endif
