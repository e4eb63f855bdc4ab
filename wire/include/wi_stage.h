/* wi_stage.h - the one numbering of a round's stages, shared by the coordinator, the org, the
 * network driver's push envelope and the simulator's fault tables.
 *
 * The secure-aggregation stages have the numbers of sa_stage (SA_STAGE_ADVERTISE ..
 * SA_STAGE_UNMASK); TRAIN and EVAL are the stages an org trains or evaluates in; IDLE and
 * DONE are the coordinator's states between rounds and after the last one. REPORT is the
 * stage a READY or EVAL report travels under in a signed push (wi_push.h), kept at 100 so
 * it can never be mistaken for a secure-aggregation stage.
 */
#ifndef WI_STAGE_H
#define WI_STAGE_H

#include "co_wire.h"

typedef enum {
    WI_STAGE_TRAIN = 0,
    WI_STAGE_ADVERTISE = 1, /* = SA_STAGE_ADVERTISE */
    WI_STAGE_SHARE = 2,
    WI_STAGE_MASKED = 3,
    WI_STAGE_CONSISTENCY = 4,
    WI_STAGE_UNMASK = 5, /* = SA_STAGE_UNMASK */
    WI_STAGE_EVAL = 6,
    WI_STAGE_IDLE = 7,
    WI_STAGE_DONE = 8,
    WI_STAGE_REPORT = 100,
} wi_stage;

/* TRAIN .. EVAL: the stages an org acts in, numbered 0 .. WI_ORG_STAGES - 1. */
#define WI_ORG_STAGES 7

/* "train", "advertise", "share", "masked", "consistency", "unmask", "eval", "idle", "done",
 * "report"; "?" for any other number. Static, never NULL. */
const char *wi_stage_name(int stage);

/* The stage called `name` (one of the names above), or -1. */
int wi_stage_from_name(const char *name);

/* 1 for ADVERTISE .. UNMASK, else 0. */
int wi_stage_is_secagg(int stage);

/* The stage an org is in when it handles t: TRAIN, EVAL, the SECAGG task's stage, IDLE for
 * WAIT and DONE for DONE. */
int wi_task_stage(const co_task *t);

#endif
