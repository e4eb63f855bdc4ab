/* gv_store.h - governance objects as files. Reading checks framing and codecs (not
 * signatures); writing replaces the file atomically (mu_write_file_atomic: PATH.tmp, fsync,
 * rename, fsync of the folder), so after a crash a file holds its old or its new version,
 * never a torn one: an audit log grows by writing its next version whole, and kill -9 loses
 * at most the entry being appended. Errors name the file: "PATH: why". */
#ifndef GV_STORE_H
#define GV_STORE_H

#include "gv_log.h"

#define GV_FILE_MAX (256u << 20) /* the largest governance file read */

/* A proposal (signed charter bundle) from / to path. MU_OK, MU_ERR_NOTFOUND, MU_ERR_IO,
 * MU_ERR_FORMAT (and the decoders' codes), MU_ERR_NOMEM. */
int gv_signed_load(const char *path, gv_signed *s, mu_diag *diag);
int gv_signed_save(const char *path, const gv_signed *s, mu_diag *diag);

/* A charter chain: *chain allocated (free()), *n versions. */
int gv_chain_load(const char *path, gv_signed **chain, size_t *n, mu_diag *diag);
int gv_chain_save(const char *path, const gv_signed *chain, size_t n, mu_diag *diag);

/* An audit log: *log new (gv_log_free). */
int gv_log_load(const char *path, gv_log **log, mu_diag *diag);
int gv_log_save(const char *path, const gv_log *log, mu_diag *diag);

/* A countersigned head (gv_witness_encode). */
int gv_witness_load(const char *path, gv_witness *w, mu_diag *diag);
int gv_witness_save(const char *path, const gv_witness *w, mu_diag *diag);

/* A member's Ed25519 signing key from path: 64 hex digits (the seed) and an optional newline,
 * as `mutual certs identity` writes an org's identity key. Never creates the file; every
 * copy of the seed is wiped; the caller wipes sk. MU_OK, MU_ERR_NOTFOUND, MU_ERR_IO,
 * MU_ERR_FORMAT ("PATH: not a signing key"). */
int gv_signing_key_load(const char *path, uint8_t sk[GV_SK_BYTES], mu_diag *diag);

#endif
