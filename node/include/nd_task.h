/* nd_task.h - the protobuf Task's mirror of the co_task it carries.
 *
 * Task.payload is the co_task encoding (co_wire.h): the one source of what to do. Task.kind,
 * round and stage repeat three of its fields for clients that do not decode the payload
 * (a monitor, a log line). serve fills them from the task with nd_task_mirror_set; join
 * refuses a Task whose mirror disagrees with its decoded payload (nd_task_mirror_check), so
 * the two can never silently diverge.
 */
#ifndef ND_TASK_H
#define ND_TASK_H

#include "co_wire.h"
#include "mu_err.h"
#include "mutual.pb-c.h"

/* Sets m->kind, m->round (0 for WAIT and DONE) and m->stage (0 unless SECAGG) from t. */
void nd_task_mirror_set(Mutual__V1__Task *m, const co_task *t);

/* MU_OK if m's kind, round and stage are what nd_task_mirror_set makes of t, else
 * MU_ERR_PROTOCOL with the field and both values in diag. */
int nd_task_mirror_check(const Mutual__V1__Task *m, const co_task *t, mu_diag *diag);

#endif
