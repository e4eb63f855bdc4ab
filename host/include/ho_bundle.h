/* ho_bundle.h - the release bundle (issue 11, exit rights): the federation's full state after a
 * released round, one file every member fetches, verifies and keeps, from which a new
 * coordinator resumes when the members replace the old one.
 *
 * Format (all integers little-endian): "MUBN", u16 version (1), u64 round, then three sections,
 * each u64 length + bytes: the coordinator checkpoint (checkpoint.h5: global adapter, server
 * optimizer state, round, metrics, orgs), the audit log (gv_log_encode) and the charter chain
 * (gv_chain_encode). Nothing may follow.
 *
 * ho_bundle_verify checks a bundle (untrusted bytes) against a chain the verifier trusts: the
 * bundle's chain verifies and each of its versions is the trusted chain's version (the trusted
 * chain may be longer: it may name a new coordinator); the log verifies under the trusted
 * chain (gv_log_verify: every signature, link and rule); the log holds a release entry for the
 * bundle's round (gv_log_verify checked its quorum) naming the round's global hash; the
 * checkpoint is at that round, its global adapter (float32 LE, SHA-256) is the one the log
 * names, and its whole state (co_checkpoint_state_hash: global, server optimizer state m, v
 * and step, round counter, metrics, orgs) hashes to the state hash of that round's entry. A
 * round entry of format 1 (written before state hashes) names none: such a bundle is refused.
 *
 * Reading the checkpoint goes through HDF5, which reads files only: verify writes it to a
 * fresh temporary folder under tmp_dir (removed before returning). */
#ifndef HO_BUNDLE_H
#define HO_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "gv_chain.h"
#include "mu_err.h"

#define HO_BUNDLE_MAX     (1024u << 20) /* the largest bundle accepted */
#define HO_BUNDLE_VERSION 1

typedef struct { /* borrowed views into the bundle's bytes */
    uint64_t round;
    const uint8_t *ckpt, *log, *chain;
    size_t ckpt_len, log_len, chain_len;
} ho_bundle;

/* Frames the parts into *out (malloc'ed, caller frees). MU_OK or MU_ERR_NOMEM. */
int ho_bundle_encode(uint64_t round, const uint8_t *ckpt, size_t ckpt_len, const uint8_t *log,
                     size_t log_len, const uint8_t *chain, size_t chain_len, uint8_t **out,
                     size_t *len, mu_diag *diag);

/* Splits untrusted bytes into their sections (framing only). MU_OK or MU_ERR_FORMAT. */
int ho_bundle_decode(ho_bundle *b, const uint8_t *bytes, size_t len, mu_diag *diag);

/* Reads DIR/checkpoint.h5 and the chain file, and frames them with the log bytes. MU_OK,
 * MU_ERR_IO / MU_ERR_NOTFOUND (naming the file), MU_ERR_NOMEM. */
int ho_bundle_make(const char *ckpt_dir, const char *chain_path, uint64_t round, const uint8_t *log,
                   size_t log_len, uint8_t **out, size_t *len, mu_diag *diag);

/* Verifies untrusted bundle bytes against the trusted chain (see above). MU_OK with *round
 * the bundle's round; MU_ERR_FORMAT, MU_ERR_CRYPTO, MU_ERR_PROTOCOL, MU_ERR_IO, MU_ERR_NOMEM
 * with diag saying which check failed. */
int ho_bundle_verify(const uint8_t *bytes, size_t len, const gv_signed *chain, size_t n_chain,
                     const char *tmp_dir, uint64_t *round, mu_diag *diag);

/* Writes a bundle's checkpoint and audit log into dir (checkpoint.h5, audit.log, atomically)
 * for a coordinator to resume from. Call it only on a verified bundle. */
int ho_bundle_unpack(const uint8_t *bytes, size_t len, const char *dir, mu_diag *diag);

#endif
