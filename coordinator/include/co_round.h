/* co_round.h - the coordinator's round state machine, sans-IO.
 *
 * One co_round object runs a whole federation: the registry of orgs, the global adapter (one
 * flat float vector with named tensor views), the server strategy, the metrics history, and
 * the round in flight. It never touches a socket, a file, a clock, a thread or the log (what
 * happened comes back as events, co_round_poll_event, with their log lines): the driver
 * (the gRPC server of `mutual serve`, or the in-process simulator of `mutual sim`) passes
 * time in as `now` (seconds, any monotonic origin) and calls:
 *
 *   co_round_register(name, pk)      an org joins (Join RPC); gives its id
 *   co_round_next_task(id, now)      an org pulls (PullTask); answers with a co_task
 *   co_round_on_message(id, bytes)   an org pushes (PushStage / UploadMasked): a co_report
 *                                    (magic "CR") or a SecAgg message (magic "SA")
 *   co_round_leave(id)               an org is stopping (its LEAVE report): dropped now
 *   co_round_tick(now)               the timer: starts rounds, fires stage deadlines
 *   co_round_poll_event(&ev)         after any call: rounds that finished, to checkpoint
 *   co_round_status / global / tensors / history   read-only views (Status RPC, adapter
 *                                    download, PEFT export)
 *
 * A round, as the state machine sees it:
 *
 *   IDLE    wait until at least cohort.min_orgs orgs are connected (pulled within
 *           cohort.available_s), then wait cohort.wait_s more for others (or until every
 *           org is connected: every org of the allow-list cohort `orgs` when there is one,
 *           else every registered org). Rounds start only in co_round_tick.
 *   select  n = clamp(ceil(fraction · connected), min_orgs, max_orgs) orgs: the connected orgs
 *           sorted by BLAKE2b(seed, round, id), the first n. Deterministic from the seed, the
 *           round number and the set of connected orgs.
 *   TRAIN   each selected org gets a TRAIN task (round config), downloads the global,
 *           trains, and sends a READY report (no numbers). Deadline deadlines.train_s. Orgs
 *           that miss it are dropped; fewer than min_orgs ready aborts.
 *   SECAGG  the ready orgs form the secure-aggregation cohort (sa_server over
 *           d = co_secagg_dim: w·Δ, w and the metric coordinates of the loss sum and token
 *           count). Five stages, each with its own deadline; a stage closes at its deadline or
 *           as soon as every expected org has answered. sa_server drops orgs that miss a stage
 *           and aborts when fewer than the threshold remain.
 *   leave   an org that leaves (co_round_leave, or its LEAVE report) is dropped at once: in
 *           TRAIN or EVAL as if it missed the deadline (its report, if any, unused), in
 *           SECAGG as a dropout of the open stage; a stage then closes as soon as every
 *           remaining expected org has answered.
 *           Each ROUND event lists the orgs that stopped answering and the first stage each
 *           did not answer (co_event.dropped), whether they left or went silent.
 *   apply   sum → sa_quant_mean → Δ (weighted mean of the survivors' deltas) → strategy →
 *           new global; a ROUND event with the metrics.
 *   EVAL    every federation.eval_every training rounds: selected orgs evaluate the global
 *           and send EVAL reports (no numbers); deadline deadlines.eval_s. The orgs that
 *           reported (at least min_orgs, else the round aborts) then run the SECAGG stages as a
 *           training round does, over d = M: only the metric coordinates of their held-out loss
 *           sum and token count, so the round's loss is the survivors' total, never one org's
 *           (issue 10 attack 7). Nothing is applied to the global.
 *   DONE    after federation.rounds training rounds, completed or aborted (0 = never), and
 *           the evaluation round that follows the last one if one is due. Counting aborted
 *           rounds makes every run end, whatever the dropouts.
 *
 * An aborted round (too few ready orgs, too few survivors, a config the SecAgg check
 * refuses) produces a ROUND event with outcome CO_ROUND_ABORTED, leaves the global and the
 * optimizer state untouched, and the next round (next number) starts at a later tick.
 *
 * Rejected input (every rejection leaves the state unchanged, and the round goes on with the
 * others): MU_ERR_NOTFOUND an org id that is not registered; MU_ERR_FORMAT malformed bytes;
 * MU_ERR_PROTOCOL a duplicate/replayed message, a report for another round or of the wrong
 * kind, or an org that is not in the cohort; MU_ERR_STATE a message for a stage that is not
 * open yet (out of order);
 * MU_ERR_TIMEOUT a message for a stage that has closed (late); MU_ERR_CRYPTO a bad signature.
 *
 * Thread-safety: none; one thread owns a co_round (the driver's loop). Borrowed pointers
 * (task arrays and payloads, views) stay valid until the next call to a function not marked
 * read-only here.
 */
#ifndef CO_ROUND_H
#define CO_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include "co_checkpoint.h"
#include "co_config.h"
#include "co_privacy.h"
#include "co_types.h"
#include "co_wire.h"
#include "mu_err.h"

typedef enum {
    CO_PHASE_IDLE = 0,
    CO_PHASE_TRAIN = 1,
    CO_PHASE_SECAGG = 2,
    CO_PHASE_EVAL = 3,
    CO_PHASE_DONE = 4,
} co_phase;

typedef struct co_round co_round;

/* A coordinator for `cfg` (copied, including the allowlist) whose global adapter starts as
 * `tensors` (copied, in order, into one flat vector: this order is the flat order the orgs
 * must use). NULL with diag on an invalid config, a quantisation (clip, scale, weight_max,
 * bits) whose sum could overflow with cohort.max_orgs orgs, no tensors, more than 2^30 - 1
 * floats, or allocation failure. */
co_round *co_round_new(const co_config *cfg, const co_tensor *tensors, size_t n_tensors,
                       mu_diag *diag);
void co_round_free(co_round *r); /* NULL is a no-op */

/* What co_round_new refuses about a config alone, without building anything: co_config_check,
 * then a quantisation whose sum could overflow with cohort.max_orgs orgs (or whose chosen
 * scale falls below 1). For `mutual config check`. MU_OK or MU_ERR_INVALID with diag. */
int co_round_check_config(const co_config *cfg, mu_diag *diag);

/* *a := the privacy accountant co_round_new builds for cfg and an adapter of dim values
 * (co_privacy.h; the scale chosen for cohort.max_orgs). MU_OK or MU_ERR_INVALID with diag
 * (what co_round_new would refuse about the quantisation). For `mutual privacy --config`. */
int co_round_privacy_plan(const co_config *cfg, uint32_t dim, co_privacy *a, mu_diag *diag);

/* The round machine's accountant (read-only). */
const co_privacy *co_round_privacy(const co_round *r);

/* Resumes from a loaded checkpoint: global adapter (names and shapes must match), optimizer
 * state (reset, with a NOTICE event saying so, if the strategy changed), round counter,
 * metrics, orgs. Only before the first round starts (else MU_ERR_STATE). MU_ERR_INVALID on a
 * mismatch, MU_ERR_NOMEM; on any error nothing changed. */
int co_round_restore(co_round *r, const co_checkpoint *ck, mu_diag *diag);

/* Fills *ck with views of the state to pass to co_checkpoint_write (borrowed: do not
 * co_checkpoint_deinit it). Read-only. */
void co_round_checkpoint_view(const co_round *r, const uint8_t config_hash[CO_HASH_BYTES],
                              co_checkpoint *ck);

/* Registers org `name` (its certificate name, 1..63 printable bytes) with its Ed25519 key.
 * A new org gets the next id (co_round_status's orgs_registered grows by one; the driver logs
 * it), MU_ERR_NOMEM registers nothing.
 * Registering again with the same key returns the same id (reconnects); another key is
 * MU_ERR_CRYPTO, as is a key not matching the allowlist's pin or not a valid point.
 * MU_ERR_INVALID when an allowlist exists and does not name the org, or the name is bad. */
int co_round_register(co_round *r, const char *name, const uint8_t pk[CO_ORG_PK_BYTES],
                      uint32_t *id, mu_diag *diag);

/* The org with this id, or NULL. Read-only. */
const co_org *co_round_org(const co_round *r, uint32_t id);
/* The id of the org with this name, or 0. Read-only. */
uint32_t co_round_find_org(const co_round *r, const char *name);

/* What org `id` should do now; also marks it connected at `now`. The task is borrowed (see
 * above); the driver encodes it (co_task_encode) or hands it over in memory. Repeated pulls
 * give the same task until the org answers, so a retried pull is harmless.
 * MU_OK or MU_ERR_NOTFOUND for an unregistered org. */
int co_round_next_task(co_round *r, uint32_t id, double now, co_task *task);

/* One message from org `id` (authenticated by the transport). See the rejections above. */
int co_round_on_message(co_round *r, uint32_t id, const uint8_t *msg, size_t len, double now,
                        mu_diag *diag);

/* The transport saw org `id` go away (a cancelled call, a closed connection): it no longer
 * counts as connected for cohort selection until it pulls again. It stays in the round in
 * flight (if it comes back before the deadline, its answers count). MU_OK or
 * MU_ERR_NOTFOUND. */
int co_round_disconnect(co_round *r, uint32_t id);

/* Org `id` is stopping: it no longer counts as connected (until it pulls again), and if it is
 * in the round in flight it is dropped now (see "leave" above). Leaving again, or outside a round,
 * changes nothing else. The driver calls it for an authenticated LEAVE; co_round_on_message does
 * for a LEAVE report (refused with MU_ERR_PROTOCOL when its round is later than the latest round).
 * MU_OK or MU_ERR_NOTFOUND. */
int co_round_leave(co_round *r, uint32_t id, double now);

/* Starts a round when the cohort conditions hold and fires deadlines that passed. Returns
 * MU_OK, or MU_ERR_NOMEM when no round could start (nothing changed: tick again later). A
 * round in flight never fails a tick: running out of memory in it aborts it (a ROUND event
 * with the reason), and its ROUND and DONE events and history entry are reserved when it
 * starts, so that a finished round is always queued. */
int co_round_tick(co_round *r, double now);

/* When the driver should tick next at the latest (INFINITY: nothing is timed). Read-only. */
double co_round_next_deadline(const co_round *r);

/* Increases whenever some org's task may have changed (long polls re-check). Read-only. */
uint64_t co_round_version(const co_round *r);

/* What happened, for the driver to act on and to log: the round machine never logs.
 *   ROUND        a round finished or aborted: checkpoint, export, log
 *   DONE         the federation is over
 *   ROUND_START  a round started (metrics.round, kind, orgs_selected, t_start; orgs_connected)
 *   NOTICE       something the operator should know (reason), e.g. a reset optimizer */
typedef enum {
    CO_EVENT_ROUND = 1,
    CO_EVENT_DONE = 2,
    CO_EVENT_ROUND_START = 3,
    CO_EVENT_NOTICE = 4,
} co_event_kind;
typedef struct {
    co_event_kind kind;
    co_metrics metrics;      /* ROUND: the round that just finished or aborted */
    uint32_t orgs_connected; /* ROUND_START: the connected orgs the cohort was drawn from */
    char reason[256];        /* ROUND aborted: why; NOTICE: the message */
    /* ROUND: the selected orgs that stopped answering (left or went silent), in the order
     * they were dropped, each with the first stage it did not answer; NULL when none */
    const co_drop *dropped;
    uint32_t n_dropped;
} co_event;

/* Takes the oldest pending event: 1 and *ev filled, or 0 when there is none. ev->dropped is
 * borrowed: valid until the next co_round_poll_event or co_round_free. After a ROUND event
 * the driver checkpoints (co_round_checkpoint_view + co_checkpoint_write) and exports. */
int co_round_poll_event(co_round *r, co_event *ev);

/* The log line for `ev` (no trailing newline, "" for DONE) in buf (cap bytes, truncated); a
 * ROUND line ends with "; dropped: NAME at STAGE, ..." when orgs dropped (co_drops_describe).
 * Returns 1 when it is a warning (an aborted round, a NOTICE), else 0 (information). */
int co_event_describe(const co_event *ev, char *buf, size_t cap);

/* "NAME at STAGE, NAME at STAGE" for n drops into buf (cap bytes, truncated; "" for none). */
void co_drops_describe(const co_drop *d, size_t n, char *buf, size_t cap);

typedef struct {
    uint64_t round; /* the round in flight, or the last one */
    co_phase phase;
    int stage;              /* sa_stage while SECAGG, else 0 */
    const char *stage_name; /* "idle", "train", "advertise", ..., "eval", "done" */
    uint32_t orgs_registered, orgs_connected, orgs_in_cohort, orgs_pending;
    double deadline;                /* of the current stage; INFINITY when none */
    uint64_t train_rounds_done;     /* completed training rounds */
    double epsilon, record_epsilon; /* spent so far (co_privacy.h; NaN: not tracked) */
    double epsilon_all_honest;      /* org level if no org colludes (NaN: not tracked) */
    uint32_t colluders;             /* the colluding orgs `epsilon` allows for */
    double epsilon_budget, delta;   /* privacy.epsilon_budget (0 = none), privacy.delta */
    int has_last;
    co_metrics last; /* the last finished round, when has_last */
} co_status;

/* Read-only. */
void co_round_status(const co_round *r, double now, co_status *st);

/* The global adapter as one flat vector (dim floats) and as named tensors viewing it.
 * Read-only; valid until the next state-changing call. */
const float *co_round_global(const co_round *r, size_t *dim);
const co_tensor *co_round_tensors(const co_round *r, size_t *n);
const co_metrics *co_round_history(const co_round *r, size_t *n);
const co_strategy *co_round_strategy(const co_round *r);

/* Adds transport bytes the state machine does not see (adapter downloads) to the round in
 * flight's counters. */
void co_round_add_bytes(co_round *r, uint64_t bytes_in, uint64_t bytes_out);

/* "idle", "train", "advertise", "share", "masked", "consistency", "unmask", "eval", "done". */
const char *co_phase_name(co_phase phase, int stage);

#endif
