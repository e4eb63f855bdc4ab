/* tr_data.h - token datasets in HDF5 and the fixed data order.
 *
 * A dataset file holds a 1-D integer dataset "/tokens" (uint16, uint32 or int32, N tokens)
 * with an integer attribute "vocab_size" on it (or on the root group). Every token id must lie
 * in [0, vocab_size). Optional: a string attribute "tokenizer_sha256" on /tokens (the SHA-256
 * of the tokenizer.json the ids come from; training refuses a model whose tokenizer.json
 * differs), and "/mask", uint8 (N), 1 where the token counts as a training target, 0 where
 * it does not (a prediction across a document boundary, a prompt): batches put
 * TR_DATA_IGNORE in those targets, which the loss skips.
 *
 * Data order, the same everywhere so runs reproduce: in step s (from 0), batch row i (from
 * 0) reads the window starting at
 *     p = ((s*B + i)*T) mod (N - T)
 * inputs are tokens[p .. p+T-1], targets tokens[p+1 .. p+T]. N must exceed T.
 *
 * Errors name the file (and the dataset or index) in the diag; HDF5's own error printing
 * is switched off while these functions run. A tr_data is immutable once opened: batches
 * may be read from several threads. Opening and writing may be called from several threads
 * too: train/'s HDF5 calls are serialized by one lock (serial HDF5 is not thread-safe), but
 * other code calling HDF5 at the same moment is not covered by it.
 */
#ifndef TR_DATA_H
#define TR_DATA_H

#include <stdint.h>

#include "mu_err.h"

typedef struct tr_data tr_data;

#define TR_DATA_IGNORE  (-1) /* a target the loss leaves out (tr_model.h) */
#define TR_DATA_SHA_HEX 65   /* a SHA-256 in hex, NUL included */

/* Reads the whole of /tokens into memory (as int32) and checks every id against
 * vocab_size. NULL with *err (may be NULL) and the diag set on failure: MU_ERR_NOTFOUND
 * for a missing file or missing /tokens, MU_ERR_FORMAT for a wrong rank or type, a missing
 * vocab_size or "FILE: /tokens[k] = v is not below vocab_size V". */
tr_data *tr_data_open(const char *path, int *err, mu_diag *diag);
void tr_data_free(tr_data *d); /* NULL is a no-op */

int64_t tr_data_len(const tr_data *d); /* N */
int tr_data_vocab(const tr_data *d);   /* vocab_size */
const int32_t *tr_data_tokens(const tr_data *d);
const char *tr_data_path(const tr_data *d);
const uint8_t *tr_data_mask(const tr_data *d);          /* (N), or NULL: no /mask */
const char *tr_data_tokenizer_sha256(const tr_data *d); /* hex, or NULL: none recorded */

/* The SHA-256 (hex) of `path`'s bytes, or of path/tokenizer.json when path is a folder.
 * MU_OK, or MU_ERR_NOTFOUND / MU_ERR_IO naming the file. */
int tr_data_tokenizer_hash(const char *path, char hex[TR_DATA_SHA_HEX], mu_diag *diag);

/* Whether the model in model_dir (vocab_size model_vocab) can train on d: MU_ERR_INVALID
 * when d's vocab_size exceeds model_vocab, or when d names a tokenizer and model_dir's
 * tokenizer.json is missing or has another SHA-256 (the message says which and how to
 * re-import). A file naming no tokenizer (byte-level, or older) passes on vocab alone. */
int tr_data_check_model(const tr_data *d, const char *model_dir, int model_vocab, mu_diag *diag);

/* The window start for step s, row i (the formula above; no overflow for any s).
 * Requires n > T, B >= 1, T >= 1. */
int64_t tr_data_window(int64_t n, int B, int T, uint64_t s, int i);

/* Fills inputs and targets, each [B, T] int32 row-major, with step s's batch (masked-out
 * targets TR_DATA_IGNORE).
 * MU_ERR_INVALID "FILE: N tokens, too few for sequence length T" when N <= T, or for
 * B < 1 or T < 1. */
int tr_data_batch(const tr_data *d, uint64_t s, int B, int T, int32_t *inputs, int32_t *targets,
                  mu_diag *diag);

/* Records for DP-SGD (tr_dp.h), the unit it protects: record k is the window of T + 1
 * tokens starting at k (T + 1), inputs tokens[k(T+1) .. k(T+1)+T-1], targets one further.
 * Records never share a token, so one token of the data is in exactly one record; the
 * N mod (T + 1) tokens at the end are in none. tr_data_records = floor(N / (T + 1)). */
int64_t tr_data_records(const tr_data *d, int T);
/* Fills inputs and targets [B, T] with records idx[0..B) (masked-out targets
 * TR_DATA_IGNORE). MU_ERR_INVALID "FILE: record k is
 * not in [0, R)" or when no record fits. */
int tr_data_gather(const tr_data *d, const int64_t *idx, int B, int T, int32_t *inputs,
                   int32_t *targets, mu_diag *diag);

/* Writes a dataset file at `path` (built in memory, then replaced atomically as in
 * tr_state.h, so a full disk leaves the old file and gives MU_ERR_IO): /tokens as uint16
 * when vocab_size <= 65536, else uint32, with the vocab_size attribute. Ids must be in
 * [0, vocab_size) (else MU_ERR_INVALID). */
int tr_data_write(const char *path, const int32_t *tokens, int64_t n, int vocab_size,
                  mu_diag *diag);

/* tr_data_write plus, when `sources` is non-NULL and non-empty, a string attribute
 * "sources" on /tokens recording where the tokens came from (`mutual data import` writes
 * one line per input file, "SHA256HEX SIZE PATH", in token order). Readers ignore it, so
 * files with and without it open alike. */
int tr_data_write_sources(const char *path, const int32_t *tokens, int64_t n, int vocab_size,
                          const char *sources, mu_diag *diag);

/* Everything a dataset file can hold; mask, sources and tokenizer_sha256 may be NULL. */
typedef struct {
    const int32_t *tokens; /* (n) */
    const uint8_t *mask;   /* (n) 0 or 1, or NULL: no /mask */
    int64_t n;
    int vocab_size;
    const char *sources;
    const char *tokenizer_sha256;
} tr_data_out;

/* tr_data_write with all of it. MU_ERR_INVALID for an id out of range or a mask not 0/1. */
int tr_data_write_out(const char *path, const tr_data_out *o, mu_diag *diag);

#endif
