/* ho_org.h - what an org does with a task, written once for both drivers.
 *
 * `mutual join` (node/, over gRPC) and `mutual sim` (sim/, in memory) both hand every task
 * they pull to an ho_org and do what it answers; the participant core (cl_participant.h)
 * does the work, this layer decides what each outcome means for the org:
 *
 *   bytes = pull                         PullTask payload, or co_task_encode in the simulator
 *   ho_org_take(o, bytes, &task, &rep)   HO_ACT: act on task (after downloading the global
 *                                        when ho_task_needs_global); HO_WAIT; HO_STOP; HO_FATAL
 *   ho_org_act(o, engine, &task, global, &rep)
 *                                        HO_PUSH: push rep.out.items[i] with rep.sigs[i]
 *                                        for (rep.round, rep.stage); HO_WAIT; HO_LEAVE;
 *                                        HO_FATAL
 *
 * One policy for every error class of cl_participant_handle_task:
 *   MU_ERR_STATE                      ignored (HO_WAIT): a stage already answered, or a
 *                                     SECAGG task for a round the org did not train in
 *   MU_ERR_FORMAT, MU_ERR_CRYPTO,     the org is out of this round (HO_LEAVE): nothing is
 *   MU_ERR_PROTOCOL, MU_ERR_ABORT     pushed and later tasks of the round are not acted on;
 *                                     the coordinator drops it at the stage's deadline
 *   MU_ERR_INVALID in a SECAGG task   out of the round too: the coordinator's round config
 *                                     or cohort is what is wrong, not the org
 *   MU_ERR_INVALID in TRAIN or EVAL,  fatal (HO_FATAL): the org's own setup (dim, engine,
 *   MU_ERR_NOMEM, any other code      data) cannot work, or it ran out of memory
 *
 * Repeats and replays: within one coordinator instance the tasks an org acts on move forward
 * (round, then TRAIN or EVAL < ADVERTISE < ... < UNMASK). The task handed to the core last
 * time, or one at or before the furthest task the core took (answered, or left the round
 * over), is not acted on again (HO_WAIT, with backoff_s growing 0.1, 0.2, 0.4, 0.8, then 1 s
 * for a task repeated over and over): an identical pull repeated because the coordinator did
 * not take the answer, or an old task delivered again (a replay), never makes the org train,
 * mask or unmask twice, so it cannot leak a second masked input or both kinds of share. A
 * task the core refuses as out of place (MU_ERR_STATE) does not count as taken, so a stray
 * task cannot make the org skip the real ones. The one exception is after
 * ho_org_coordinator reports the same instance again (a reconnect after a network failure,
 * when the last answer may have been lost): the last task is handed to the core once more,
 * whose own rules (cl_participant.h "Repeated tasks") answer it identically (the same READY
 * report) or not at all (MU_ERR_STATE).
 *
 * Coordinator restarts: the driver tells the org which coordinator instance it talks to
 * (node: JoinReply's federation_config.instance; sim: a counter bumped by an injected
 * restart). A new instance resumed from its checkpoint and runs the round in flight again,
 * so the org forgets that round (a new participant: no report, update or secure-aggregation
 * keys kept) and acts on its tasks afresh.
 *
 * Pushes are signed (wi_push.h: Ed25519ph over org id, round, stage, payload) with the org's
 * identity key, which is held here and wiped by ho_org_free; the coordinator side verifies
 * every message before the round machine sees it (ho_coord_deliver, ho_coord.h), in both
 * drivers.
 *
 * Thread-safety: one thread at a time per ho_org; distinct ho_orgs may act concurrently.
 */
#ifndef HO_ORG_H
#define HO_ORG_H

#include <stddef.h>
#include <stdint.h>

#include "cl_participant.h"
#include "co_wire.h"
#include "mu_err.h"
#include "wi_push.h"

#define HO_INSTANCE_BYTES 8 /* a coordinator instance id */
#define HO_SIG_BYTES      WI_PUSH_SIG_BYTES

typedef enum {
    HO_WAIT = 0, /* nothing to do now: pull again (after backoff_s when it is > 0) */
    HO_ACT,      /* ho_org_take: act on the task */
    HO_PUSH,     /* ho_org_act: push every message of rep.out, in order, with its signature */
    HO_LEAVE,    /* out of this round: nothing pushed; go on pulling */
    HO_STOP,     /* the federation is over */
    HO_FATAL,    /* stop with rep.rc / rep.diag */
} ho_verdict;

/* What the org answers; reusable across tasks (ho_reply_init once, ho_reply_deinit at the
 * end; every take/act resets it). */
typedef struct {
    ho_verdict verdict;
    uint64_t round;   /* the task's round (0 for WAIT/DONE) */
    uint32_t stage;   /* wi_push_stage: secure-agg stage 1..5, or WI_STAGE_REPORT (a report) */
    double backoff_s; /* HO_WAIT for a repeated task: how long a networked org should sleep */
    int repeat;       /* HO_WAIT: the task was a repeat or a replay and was not acted on */
    cl_outbox out;    /* HO_PUSH: the messages (owned by the reply) */
    uint8_t (*sigs)[HO_SIG_BYTES]; /* (out.count) their push signatures (wi_push_sign) */
    size_t cap_sigs;
    int rc;       /* the core's code behind HO_LEAVE / HO_FATAL / an ignored task; else MU_OK */
    mu_diag diag; /* its reason */
} ho_reply;

void ho_reply_init(ho_reply *rep);
void ho_reply_deinit(ho_reply *rep);

/* What an org has done, for drivers and tests. */
typedef struct {
    uint64_t acted;    /* tasks handed to the participant core */
    uint64_t repeats;  /* tasks not acted on because they were repeats or replays */
    uint64_t left;     /* rounds left (HO_LEAVE) */
    uint64_t restarts; /* coordinator restarts seen */
} ho_org_stats;

typedef struct ho_org ho_org;

/* An org from the participant config (copied, name included; the key is kept to sign
 * pushes and to start the participant over after a restart, and wiped by ho_org_free; the
 * caller wipes its own copy). The data arrays and the pinned roster (pc->members) stay
 * borrowed and must outlive the ho_org: a coordinator restart makes a new participant from
 * them. NULL with diag on a bad config or out of memory. */
ho_org *ho_org_new(const cl_participant_config *pc, mu_diag *diag);
void ho_org_free(ho_org *o); /* NULL is a no-op */

/* The participant (name, public key, last training, delta for test dumps). Borrowed: it is
 * replaced when the coordinator restarts. */
cl_participant *ho_org_participant(ho_org *o);

/* The id the coordinator gave this org (JoinReply / co_round_register); tasks for another id
 * are refused, and pushes are signed for it. */
void ho_org_set_id(ho_org *o, uint32_t id);

/* Which coordinator instance the org talks to now, after each (re)join. 0: the same one as
 * before (or the first): the last task may be answered once more; 1: a new instance: the
 * round in flight starts over (a new participant); MU_ERR_NOMEM or MU_ERR_INVALID (making
 * the participant failed) with diag. */
int ho_org_coordinator(ho_org *o, const uint8_t instance[HO_INSTANCE_BYTES], mu_diag *diag);

/* Decodes one task (untrusted bytes) and decides: HO_ACT (*task filled, owned by the caller:
 * co_task_deinit), HO_WAIT (a WAIT task, a repeat or replay, a round the org left), HO_STOP
 * (DONE), or HO_FATAL (bytes that do not decode: MU_ERR_FORMAT; a task for another org:
 * MU_ERR_PROTOCOL). Only HO_ACT leaves anything in *task. */
ho_verdict ho_org_take(ho_org *o, const uint8_t *bytes, size_t len, co_task *task, ho_reply *rep);

/* 1 when the org needs the global adapter (dim floats) to act on task (TRAIN, EVAL). */
int ho_task_needs_global(const co_task *task);

/* The driver takes the org out of `round` (an injected dropout or a straggler's late answer):
 * later tasks of that round are not acted on. */
void ho_org_leave(ho_org *o, uint64_t round);

/* The org is stopping (a signal): the LEAVE report to push (co_wire.h) for `round`, the
 * last round it knew of, and its push signature for (id, round, WI_STAGE_REPORT), so the
 * coordinator drops it from the round in flight at once (co_round_leave) instead of waiting
 * for the stage's deadline. Never fails. */
void ho_org_leave_message(const ho_org *o, uint64_t round, uint8_t msg[CO_REPORT_BYTES],
                          uint8_t sig[HO_SIG_BYTES]);

/* Acts on a task ho_org_take returned HO_ACT for (engine and global as
 * cl_participant_handle_task wants them) and applies the policy above. Returns rep->verdict:
 * HO_PUSH (rep->out holds at least one message, each signed), HO_WAIT, HO_LEAVE, HO_FATAL.
 * Marks the task acted on whatever the outcome. */
ho_verdict ho_org_act(ho_org *o, cl_engine *engine, const co_task *task, const float *global,
                      size_t dim, ho_reply *rep);

void ho_org_get_stats(const ho_org *o, ho_org_stats *st);

#endif
