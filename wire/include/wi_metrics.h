/* wi_metrics.h - the one JSON line that describes a finished round, for `mutual serve` (stdout)
 * and `mutual sim --metrics FILE` alike.
 *
 *   {"round":N,"kind":"train"|"eval","outcome":"completed"|"aborted","loss":x|null,
 *    "tokens":N,"orgs_selected":N,"orgs_completed":N,"orgs_dropped":N,"bytes_in":N,
 *    "bytes_out":N,"t_start":s,"t_end":s,"duration_s":s,"reason":"...",
 *    "dropped":[{"org":"NAME","stage":"STAGE"},...]|null
 *    [,"epsilon":x|null] [,"record_epsilon":x|null]
 *    <driver fields>}
 *
 * loss is Σ loss·tokens / Σ tokens, null when no token was counted (NaN), never a sentinel.
 * t_start and t_end are the driver's clock in seconds (the network driver's monotonic clock,
 * the simulator's virtual clock); duration_s = t_end − t_start. reason is "" for a completed
 * round. dropped lists every selected org that stopped answering (co_drop: by leaving or by
 * silence) with the first stage it did not answer ("train", "advertise" .. "unmask",
 * "eval"); null when the driver does not know. It can name more orgs than orgs_dropped counts:
 * an org that stops after its masked input arrived (consistency, unmask) is listed, but its
 * input is in the sum (orgs_completed). bytes_in/out are the round machine's payload counts
 * (co_metrics). epsilon and record_epsilon (co_privacy.h: the org-level and record-level ε spent
 * after this round at privacy.delta) appear only when that guarantee is tracked (dp_tracked); null
 * means unbounded (noise 0). Every string is JSON-escaped (wi_str_json_string). Drivers append
 * their own fields between wi_metrics_open and wi_metrics_close (",\"key\":value", strings through
 * wi_str_json_string).
 */
#ifndef WI_METRICS_H
#define WI_METRICS_H

#include <stddef.h>

#include "co_types.h"
#include "wi_json.h"

/* Appends the line's opening brace and every field above. reason (NULL: "") is written for an
 * aborted round only; dropped NULL means unknown (null), else n_dropped entries. Returns
 * wi_str_ok(b). */
int wi_metrics_open(wi_str *b, const co_metrics *m, const char *reason, const co_drop *dropped,
                    size_t n_dropped);

/* Appends "}\n". Returns wi_str_ok(b). */
int wi_metrics_close(wi_str *b);

#endif
