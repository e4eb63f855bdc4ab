/* sim_orgs.h - the per-org metrics lines of `mutual sim --org-metrics FILE` (inside sim/).
 *
 * One JSON line per org per round, for every org that was given a task of the round (the
 * cohort, dropouts included), written when the round ends, orgs in index order:
 *
 *   {"org":"org-N","round":R,"kind":"train"|"eval","outcome":"completed"|"dropped"|
 *    "aborted","stage":S|null,"dropped_at":S|null,"cause":"dropout"|"leave"|"straggler"|null,
 *    "loss":x|null,"tokens":N}
 *
 * stage is the last stage whose message the coordinator accepted from the org ("train" for a
 * READY report, "eval" for an EVAL report, then "advertise" .. "unmask": both kinds of round
 * end in a secure aggregation; null: none). outcome is "aborted" when the round was aborted,
 * else "completed" when the org counts in the round's orgs_completed (its masked input is in
 * the sum), else "dropped". dropped_at is the coordinator's word (co_event.dropped, the round
 * line's "dropped"): the first stage the org did not answer, or null; an org that stops after its
 * masked input arrived is "completed" with dropped_at "consistency" or "unmask". cause is
 * the fault the simulator injected into the org this round ("dropout", "leave", "straggler"), or
 * null. loss is the org's own loss_sum / tokens (training: its batches before each step, read
 * from the org itself, since its READY report carries none; evaluation: its held-out windows,
 * read from the org too, since they travel only inside the secure sum), null when it had no
 * tokens.
 */
#ifndef SIM_ORGS_H
#define SIM_ORGS_H

#include <stdint.h>
#include <stdio.h>

#include "co_round.h"
#include "ho_org.h"
#include "mu_err.h"

typedef struct sim_orgs sim_orgs;

/* n orgs, lines to f (borrowed). NULL when out of memory. */
sim_orgs *sim_orgs_new(FILE *f, uint32_t n);
/* Org index's name in the lines (copied; at most SIM_ORGS_NAME_MAX - 1 bytes kept). */
#define SIM_ORGS_NAME_MAX 64
void sim_orgs_name(sim_orgs *t, uint32_t index, const char *name);
/* Org index's host state (borrowed, outlives t): its participant's training loss for the
 * lines (read when a READY is accepted; the participant may be replaced by a restart). */
void sim_orgs_org(sim_orgs *t, uint32_t index, ho_org *o);
void sim_orgs_free(sim_orgs *t); /* NULL is a no-op */

/* Org `index` (0-based) acts on a task of `round`. */
void sim_orgs_task(sim_orgs *t, uint32_t index, uint64_t round);
/* A fault injected into the org in `round`: cause "dropout", "leave" or "straggler" (a string
 * literal; the first one of the round is kept). */
void sim_orgs_fault(sim_orgs *t, uint32_t index, uint64_t round, const char *cause);
/* The coordinator accepted the org's message of `round`, pushed under wi_push stage
 * `push_stage` (1..5, or WI_STAGE_REPORT: msg is a co_report; an EVAL report's loss and
 * tokens are the participant's last evaluation, a READY's its last training). */
void sim_orgs_accepted(sim_orgs *t, uint32_t index, uint64_t round, uint32_t push_stage,
                       const uint8_t *msg, size_t len);
/* Forgets what the orgs did in the round in flight (a coordinator restart: it starts over). */
void sim_orgs_reset(sim_orgs *t);

/* The ROUND event ev ended its round: writes the round's lines and forgets it. MU_OK (also
 * for t NULL), MU_ERR_NOMEM, or MU_ERR_IO (a write failed). */
int sim_orgs_round(sim_orgs *t, const co_event *ev);

#endif
