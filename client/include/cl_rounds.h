/* cl_rounds.h - the rounds an org has put a masked input into, kept where a coordinator cannot
 * make the org forget them (issue 10, attack 3: same-round replay).
 *
 * An org offered round R again would train to the same update, so a coordinator that ran R
 * with {A, B, T} and again with {A, B} would learn T's update from the difference of the two
 * sums. The participant therefore records (federation, R) here before its masked upload and
 * refuses a second secure aggregation for R, also after a coordinator restart (which makes
 * the driver start a new participant) and, with a file, after the org's own restart.
 *
 * The federation id is the driver's (32 bytes, e.g. a hash of the coordinator address from the
 * org's own config): never a value the coordinator sends, or it could pick a fresh one.
 *
 * File format: one line per record, "<64 hex digits of the federation> <round>\n", appended
 * and fsync'ed before cl_round_log_add returns. Records of other federations are kept.
 *
 * Thread-safety: one thread at a time per log.
 */
#ifndef CL_ROUNDS_H
#define CL_ROUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"

#define CL_FEDERATION_BYTES 32

typedef struct cl_round_log cl_round_log;

/* A log for `federation`: kept in memory only when path is NULL (the simulator), else read
 * from path (created with mode 0600 if missing) and appended to. NULL with diag on an
 * unreadable or malformed file (MU_ERR_IO / MU_ERR_FORMAT naming the file and line) or out of
 * memory. */
cl_round_log *cl_round_log_open(const char *path, const uint8_t federation[CL_FEDERATION_BYTES],
                                mu_diag *diag);
void cl_round_log_free(cl_round_log *l); /* NULL is a no-op */

/* 1 when round is recorded for the log's federation, else 0. */
int cl_round_log_has(const cl_round_log *l, uint64_t round);

/* Records round (durably, with a file: written and fsync'ed). MU_OK, MU_ERR_IO or
 * MU_ERR_NOMEM with diag; on error the round is not recorded. */
int cl_round_log_add(cl_round_log *l, uint64_t round, mu_diag *diag);

#endif
