/* sim_orgs.h - the per-org metrics lines of `mutual sim --org-metrics FILE` (inside sim/).
 *
 * One JSON line per org per round, for every org that was given a task of the round (the
 * cohort, dropouts included), written when the round ends, orgs in index order:
 *
 *   {"org":"org-N","round":R,"kind":"train"|"eval","outcome":"completed"|"dropped"|
 *    "aborted","stage":S|null,"dropped_at":S|null,"cause":"dropout"|"straggler"|null,
 *    "loss":x|null,"tokens":N}
 *
 * stage is the last stage whose message the coordinator accepted from the org ("train" for a
 * READY report, "advertise" .. "unmask", "eval" for an EVAL report; null: none). outcome is
 * "completed" when the org reached the round's last stage (unmask for training, eval for an
 * evaluation), "dropped" when it did not and the round completed, "aborted" when the round
 * was aborted before the org could finish. dropped_at is the stage the org did not finish
 * (the one after `stage`), cause the injected fault behind it (null: none was injected, the
 * coordinator left it out). loss is the org's own loss_sum / tokens (training: its batches
 * before each step; evaluation: its held-out windows), null when it reported no tokens.
 */
#ifndef SIM_ORGS_H
#define SIM_ORGS_H

#include <stdint.h>
#include <stdio.h>

#include "co_types.h"
#include "mu_err.h"

typedef struct sim_orgs sim_orgs;

/* n orgs, lines to f (borrowed). NULL when out of memory. */
sim_orgs *sim_orgs_new(FILE *f, uint32_t n);
/* Org index's name in the lines (copied; at most SIM_ORGS_NAME_MAX - 1 bytes kept). */
#define SIM_ORGS_NAME_MAX 64
void sim_orgs_name(sim_orgs *t, uint32_t index, const char *name);
void sim_orgs_free(sim_orgs *t); /* NULL is a no-op */

/* Org `index` (0-based) acts on a task of `round` at `stage` (wi_stage). */
void sim_orgs_task(sim_orgs *t, uint32_t index, uint64_t round, int stage);
/* The injected fault at `stage`: cause "dropout" or "straggler" (a string literal). */
void sim_orgs_fault(sim_orgs *t, uint32_t index, uint64_t round, int stage, const char *cause);
/* The coordinator accepted the org's message of `round`, pushed under wi_push stage
 * `push_stage` (1..5, or WI_STAGE_REPORT: msg is a co_report, whose loss and tokens are
 * kept). */
void sim_orgs_accepted(sim_orgs *t, uint32_t index, uint64_t round, uint32_t push_stage,
                       const uint8_t *msg, size_t len);
/* Forgets what the orgs did in the round in flight (a coordinator restart: it starts over). */
void sim_orgs_reset(sim_orgs *t);

/* The round m->round ended: writes its lines and forgets it. MU_OK (also for t NULL),
 * MU_ERR_NOMEM, or MU_ERR_IO (a write failed). */
int sim_orgs_round(sim_orgs *t, const co_metrics *m);

#endif
