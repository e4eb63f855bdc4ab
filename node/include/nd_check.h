/* nd_check.h - what `mutual serve` and `mutual join` would refuse at start, refused from the
 * config file alone, each problem as "FILE:LINE:COL: ..." at the key at fault: for
 * `mutual config check --kind coordinator|org`.
 *
 * Beyond the loaders (types, ranges, unknown keys, addresses with a valid port): insecure
 * mode on a non-loopback address; a secure-aggregation quantisation that could overflow with
 * cohort.max_orgs orgs (co_round_check_config); TLS files missing or unreadable, or an identity
 * that does not work: key not matching the certificate, not signed by the CA, expired, wrong name
 * (nd_preflight.c; unless insecure); the base model folder without a readable config.json
 * (coordinator and org) or weights (org); data files that are not readable token datasets; an
 * identity key join could not create (it makes one missing folder level, not more). Paths are
 * relative to the config file's folder, as serve and join read them. Nothing is written, bound or
 * dialed.
 */
#ifndef ND_CHECK_H
#define ND_CHECK_H

#include "mu_err.h"

/* MU_OK, or MU_ERR_INVALID / MU_ERR_NOTFOUND with the first problem in diag. */
int nd_check_serve_config(const char *path, mu_diag *diag);
int nd_check_join_config(const char *path, mu_diag *diag);

#endif
