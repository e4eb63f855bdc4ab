/* gv_log.h - the federation's audit log: an append-only hash chain of entries, each signed by
 * the coordinator, which anyone holding the log and the charter chain can verify, and which
 * members countersign (witness) so that a coordinator showing two members different logs
 * (a fork, equivocation) or a shortened log is caught.
 *
 * Entry i holds i, the hash of entry i − 1 (zeros for entry 0), a kind and its body, and the
 * coordinator's Ed25519 signature over "mutual audit v1" || the encoding without the
 * signature; an entry's hash is BLAKE2b-256 of its whole encoding, signature included. The log
 * id is the genesis charter's hash (entry 0 adopts it). Sans-IO: the CLI reads and writes
 * files (each new version of a log file replaces the old one atomically). */
#ifndef GV_LOG_H
#define GV_LOG_H

#include "gv_chain.h"

#define GV_COHORT_MAX      GV_MEMBERS_MAX
#define GV_METRICS_MAX     1024    /* public metrics JSON, bytes including the NUL */
#define GV_ENTRY_MAX_BYTES 65536   /* one encoded entry */
#define GV_LOG_MAX         1000000 /* entries in one log */

typedef enum {
    GV_ENTRY_CHARTER = 1,   /* a charter version takes effect */
    GV_ENTRY_ADMISSION = 2, /* a roster member joined the federation's rounds */
    GV_ENTRY_ROUND = 3,     /* a round finished */
    GV_ENTRY_RELEASE = 4,   /* members released a round's global adapter */
    GV_ENTRY_RESTART = 5,   /* the coordinator restarted from a checkpoint */
    GV_ENTRY_LEAVE = 6,     /* a member left, by its own signed notice */
} gv_entry_kind;

typedef struct {
    char name[GV_NAME_MAX];
    uint8_t stage; /* wi_stage: the stage it dropped at */
} gv_dropped;

/* One decoded entry. Which fields a kind uses:
 * CHARTER: charter_version, charter_hash (signed by the coordinator of THAT charter).
 * ADMISSION: member, member_pk.   LEAVE: member, member_sig (gv_leave_sign).
 * ROUND: round, config_hash, aggregate_hash, global_hash, state_hash (format 2 on), cohort,
 *   dropped, metrics.
 * RELEASE: round, global_hash, sigs (gv_release_sign by voting members).
 * RESTART: round (the checkpoint resumed), instance. */
/* Entry formats: 1 had no state hash; 2 (what this build writes) adds to ROUND entries the
 * state_hash, co_checkpoint_state_hash of the coordinator's state after the round (global
 * adapter, optimizer state, round counter, metrics, orgs). Format 1 entries still decode and
 * verify (logs written before); gv_log_verify refuses a format-1 entry after a format-2 one
 * (no going back), and a release bundle needs a format-2 entry for its round (ho_bundle.h). */
#define GV_ENTRY_FORMAT_V1 1
#define GV_ENTRY_FORMAT    2

typedef struct {
    uint8_t format;       /* GV_ENTRY_FORMAT_V1 or GV_ENTRY_FORMAT; 0 encodes as GV_ENTRY_FORMAT */
    uint64_t index, time; /* time: seconds since the epoch, as the coordinator says */
    uint8_t prev[GV_HASH_BYTES];
    uint8_t kind;
    uint64_t charter_version, round, instance;
    uint8_t charter_hash[GV_HASH_BYTES];
    char member[GV_NAME_MAX];
    uint8_t member_pk[GV_PK_BYTES], member_sig[GV_SIG_BYTES];
    uint8_t config_hash[GV_HASH_BYTES], aggregate_hash[GV_HASH_BYTES], global_hash[GV_HASH_BYTES];
    uint8_t state_hash[GV_HASH_BYTES]; /* ROUND, format 2 on */
    uint32_t n_cohort, n_dropped, n_sigs;
    char cohort[GV_COHORT_MAX][GV_NAME_MAX];
    gv_dropped dropped[GV_COHORT_MAX];
    gv_sig sigs[GV_MEMBERS_MAX];
    char metrics[GV_METRICS_MAX];
    uint8_t sig[GV_SIG_BYTES]; /* the coordinator's */
} gv_entry;

/* "charter", "admission", "round", "release", "restart", "leave", or "?". */
const char *gv_entry_kind_name(int kind);

/* Entry codec. encode: new buffer (caller frees), MU_ERR_INVALID for out-of-range fields.
 * decode: exactly n untrusted bytes, MU_ERR_FORMAT with the reason; re-encodes identically. */
int gv_entry_encode(const gv_entry *e, uint8_t **out, size_t *len, mu_diag *diag);
int gv_entry_decode(gv_entry *e, const uint8_t *b, size_t n, mu_diag *diag);

/* Signs e (its current fields) with the coordinator key sk into e->sig. MU_OK or as encode. */
int gv_entry_sign(gv_entry *e, const uint8_t sk[GV_SK_BYTES], mu_diag *diag);

/* A member's signatures: releasing (log id, round, global hash), leaving (log id, name). */
void gv_release_sign(gv_sig *out, const uint8_t log_id[GV_HASH_BYTES], uint64_t round,
                     const uint8_t global_hash[GV_HASH_BYTES], const uint8_t sk[GV_SK_BYTES]);
/* 1 when s is a valid release signature by s->pk over (log id, round, global hash). */
int gv_release_sig_ok(const gv_sig *s, const uint8_t log_id[GV_HASH_BYTES], uint64_t round,
                      const uint8_t global_hash[GV_HASH_BYTES]);
void gv_leave_sign(uint8_t sig[GV_SIG_BYTES], const uint8_t log_id[GV_HASH_BYTES], const char *name,
                   const uint8_t sk[GV_SK_BYTES]);

/* A member's leave notice (what `mutual charter leave` writes and the member sends the
 * coordinator): "MUGQ", u16 format, the log id (the genesis charter's hash), the member's
 * name (u16 length + bytes) and its gv_leave_sign signature over (log id, name). */
#define GV_LEAVE_FORMAT    1
#define GV_LEAVE_MAX_BYTES (4 + 2 + GV_HASH_BYTES + 2 + GV_NAME_MAX + GV_SIG_BYTES)
typedef struct {
    uint8_t log_id[GV_HASH_BYTES];
    char name[GV_NAME_MAX];
    uint8_t sig[GV_SIG_BYTES];
} gv_leave;
/* encode: new buffer (caller frees); MU_ERR_INVALID without a name. decode: exactly n untrusted
 * bytes, MU_ERR_FORMAT / MU_ERR_UNSUPPORTED with the reason (the signature is not checked). */
int gv_leave_encode(const gv_leave *l, uint8_t **out, size_t *len, mu_diag *diag);
int gv_leave_decode(gv_leave *l, const uint8_t *b, size_t n, mu_diag *diag);
/* MU_OK when l is for log_id and signed by the key charter c gives the member it names;
 * MU_ERR_PROTOCOL (another federation, not on the roster) or MU_ERR_CRYPTO (not signed by
 * that key: forged) with diag. */
int gv_leave_check(const gv_leave *l, const uint8_t log_id[GV_HASH_BYTES], const gv_charter *c,
                   mu_diag *diag);

typedef struct gv_log gv_log;

/* An empty log, or NULL (out of memory). gv_log_free(NULL) is a no-op. */
gv_log *gv_log_new(void);
void gv_log_free(gv_log *log);
size_t gv_log_len(const gv_log *log);

/* Sets e->index and e->prev to follow the log, signs with sk and appends. MU_OK, or an error
 * from encode (nothing appended), MU_ERR_INVALID when the log is full, MU_ERR_NOMEM. */
int gv_log_append(gv_log *log, gv_entry *e, const uint8_t sk[GV_SK_BYTES], mu_diag *diag);

/* Appends already encoded bytes (checked with gv_entry_decode, not verified). */
int gv_log_append_raw(gv_log *log, const uint8_t *b, size_t n, mu_diag *diag);

/* Entry i decoded into *e / its encoded bytes (borrowed, valid until the log changes) / its
 * hash. MU_OK or MU_ERR_INVALID (i out of range). */
int gv_log_entry(const gv_log *log, size_t i, gv_entry *e);
int gv_log_raw(const gv_log *log, size_t i, const uint8_t **b, size_t *n);
int gv_log_entry_hash(const gv_log *log, size_t i, uint8_t out[GV_HASH_BYTES]);

/* The file form: "MUGL", u16 format, u32 count, then u32 length + entry for each. */
int gv_log_encode(const gv_log *log, uint8_t **out, size_t *len, mu_diag *diag);
/* A new log in *out from untrusted bytes (framing and each entry's codec checked, not the
 * signatures: gv_log_verify does). MU_ERR_FORMAT naming the entry. */
int gv_log_decode(gv_log **out, const uint8_t *b, size_t n, mu_diag *diag);

/* Verifies the charter chain (gv_chain_verify), then every entry of the log against it: index,
 * hash link, the coordinator's signature under the charter in force, and the rules: entry 0
 * adopts genesis, charters are adopted in chain order, admitted members are on the roster
 * with that key, a round's config hash is the charter's training config, its cohort holds
 * only admitted members (none left) and at least privacy.min_cohort survivors, a release
 * names a logged round's global hash once and carries the release quorum of voting members'
 * signatures, a leave is signed by the member. MU_OK, or MU_ERR_CRYPTO (a signature),
 * MU_ERR_PROTOCOL (a link or rule) with *bad_entry the first bad entry (SIZE_MAX when the
 * chain is at fault) and diag "entry I (kind): why" or "charter version V: why". */
int gv_log_verify(const gv_log *log, const gv_signed *chain, size_t n_chain, size_t *bad_entry,
                  mu_diag *diag);

/* A member's countersignature of a log head: Ed25519 over "mutual witness v1" || log id ||
 * index (u64) || the hash of entry `index`. */
typedef struct {
    uint8_t log_id[GV_HASH_BYTES];
    uint64_t index;
    uint8_t head[GV_HASH_BYTES];
    uint8_t pk[GV_PK_BYTES];
    uint8_t sig[GV_SIG_BYTES];
} gv_witness;

/* The witness file form: "MUGW", u16 format, then the fields in order (GV_WITNESS_BYTES).
 * decode: exactly GV_WITNESS_BYTES untrusted bytes, MU_ERR_FORMAT otherwise (the signature
 * is checked by gv_witness_check). */
#define GV_WITNESS_BYTES (4 + 2 + GV_HASH_BYTES + 8 + GV_HASH_BYTES + GV_PK_BYTES + GV_SIG_BYTES)
void gv_witness_encode(const gv_witness *w, uint8_t out[GV_WITNESS_BYTES]);
int gv_witness_decode(gv_witness *w, const uint8_t *b, size_t n, mu_diag *diag);

/* Countersigns the log's current last entry with sk. MU_OK, MU_ERR_STATE (empty log). */
int gv_witness_sign(gv_witness *w, const gv_log *log, const uint8_t sk[GV_SK_BYTES]);

/* Checks a log the coordinator now shows against a head a member countersigned before: the
 * witness signature verifies, and the log has the same id, at w->index the same entry, and
 * every hash link up to it (so it extends the witnessed head). The caller decides whose key
 * w->pk must be. MU_OK; MU_ERR_CRYPTO (the witness does not verify); MU_ERR_PROTOCOL:
 * "equivocation" (another entry at or before that index: the log forked), a log shorter than
 * the witnessed head (entries removed), or another log id; MU_ERR_NOMEM. */
int gv_witness_check(const gv_witness *w, const gv_log *log, mu_diag *diag);

#endif
