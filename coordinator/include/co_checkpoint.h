/* co_checkpoint.h - crash-safe HDF5 checkpoints of the coordinator.
 *
 * The one I/O helper of the coordinator: the round machine never calls it; the driver does,
 * after every round. A checkpoint is DIR/checkpoint.h5, built in memory (mu_h5.h: a full
 * disk must not reach HDF5, whose failed close crashes the process at exit), then written as
 * DIR/checkpoint.h5.tmp, fsynced, renamed over checkpoint.h5, and the directory fsynced: a
 * crash or a full disk at any moment leaves either the previous checkpoint or the new one,
 * and a leftover .tmp is ignored (and overwritten by the next write).
 *
 * Layout (HDF5 1.10 latest format, so metadata is checksummed; datasets chunked with the
 * Fletcher-32 filter, so data corruption is detected on read):
 *   /                 attrs format_version (=1), round, config_hash (u8[32]),
 *                     strategy (co_strategy_kind), opt_step
 *   /adapter/tNNNNN   float32 tensors in order, each with a string attr "name"
 *   /optimizer/m, v   float32 (d), present when the strategy uses them
 *   /metrics/<field>  one 1-D column per co_metrics field
 *   /orgs/id (u32 n), /orgs/name (u8 n×64), /orgs/public_key (u8 n×32)
 *
 * HDF5's own error printing is switched off (process-wide) by these functions; every error
 * comes back as a code plus one clear line in the mu_diag. Not thread-safe (the Debian HDF5
 * is built without thread safety): call from one thread.
 */
#ifndef CO_CHECKPOINT_H
#define CO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "co_types.h"
#include "mu_err.h"

#define CO_CHECKPOINT_FILE    "checkpoint.h5"
#define CO_CHECKPOINT_VERSION 1

typedef struct {
    uint64_t round; /* rounds finished; the next round is round + 1 */
    uint8_t config_hash[CO_HASH_BYTES];
    co_tensor *tensors; /* the global adapter, in order */
    size_t n_tensors;
    int strategy;        /* co_strategy_kind */
    uint64_t opt_step;   /* co_strategy_step */
    size_t opt_d;        /* length of opt_m / opt_v */
    float *opt_m;        /* NULL when unused */
    float *opt_v;        /* NULL when unused */
    co_metrics *metrics; /* one per finished round, in order */
    size_t n_metrics;
    co_org *orgs;
    size_t n_orgs;
} co_checkpoint;

/* Writes `ck` atomically as DIR/checkpoint.h5 (see above). Reads only from ck; the caller
 * keeps ownership. MU_OK, MU_ERR_INVALID (a tensor with a bad shape or name), MU_ERR_IO
 * (diag names the file and the step that failed, e.g. "DIR/checkpoint.h5.tmp: write: No
 * space left on device"; the previous checkpoint is untouched), MU_ERR_NOMEM. */
int co_checkpoint_write(const char *dir, const co_checkpoint *ck, mu_diag *diag);

/* Loads DIR/checkpoint.h5 into *out (which it overwrites; on success free it with
 * co_checkpoint_deinit). When `expected_hash` is not NULL and differs from the stored config
 * hash, fails with MU_ERR_INVALID unless `override_hash` is set (then it logs a warning).
 * Returns MU_OK; MU_ERR_NOTFOUND when there is no checkpoint (a fresh start); MU_ERR_FORMAT
 * for a truncated, corrupted or foreign file; MU_ERR_NOMEM. On error *out is zeroed and owns
 * nothing. */
int co_checkpoint_load(const char *dir, const uint8_t *expected_hash, int override_hash,
                       co_checkpoint *out, mu_diag *diag);

/* Frees what co_checkpoint_load allocated and zeroes *ck. Never call it on a struct whose
 * pointers you filled yourself. */
void co_checkpoint_deinit(co_checkpoint *ck);

/* The state hash: BLAKE2b-256 over "mutual state v1" and a canonical little-endian encoding
 * of everything a coordinator resumes from: round, strategy, opt_step, each tensor (name,
 * shape, float32 data), opt_m and opt_v, every metrics row (the fields the file stores, not
 * dp_tracked, which load derives) and every org (id, name, key). Not the config hash (the
 * charter governs the config; a round entry names it apart). The same state gives the same
 * hash whether `ck` is a co_round_checkpoint_view or a loaded checkpoint; the audit log's
 * round entries name it (ho_gov.h) and a release bundle is checked against it (ho_bundle.h). */
void co_checkpoint_state_hash(const co_checkpoint *ck, uint8_t out[CO_HASH_BYTES]);

/* BLAKE2b-256 (libsodium crypto_generichash) of a file's bytes: the config hash.
 * MU_OK or MU_ERR_IO / MU_ERR_NOMEM with diag naming the file. */
int co_hash_file(const char *path, uint8_t out[CO_HASH_BYTES], mu_diag *diag);

/* Lowercase hex of the first `n` bytes of a hash into buf (2n+1 bytes). Returns buf. */
char *co_hash_hex(const uint8_t *hash, size_t n, char *buf);

#endif
