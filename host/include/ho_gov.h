/* ho_gov.h - the members' charter enforced by both sides of a running federation (issue 11).
 *
 * Coordinator side (ho_gov): `mutual serve --charter CHAIN --coordinator-key KEY` loads the
 * charter chain, verifies it from genesis, and refuses to start unless its key is the head
 * charter's coordinator key and its config file hashes to the head's training hash. While it
 * runs it refuses to register an org that is not on the roster with that signing key, and
 * writes the audit log (gv_log.h) into the checkpoint folder, one atomic file version per
 * entry (gv_log_save): the charter versions, each admission, each completed round (cohort,
 * drops per stage, config hash, aggregate and global hashes, public metrics) and each restart.
 * The entry of a round is written before its checkpoint, so a crash between the two leaves a
 * round logged but not checkpointed; the restart entry that follows says where it resumed,
 * and the round is logged again when it is run again (gv_log_verify allows that only after a
 * restart). It also keeps each org's countersigned head (ho_gov_witness).
 *
 * Org side (ho_witness): `mutual join --charter CHAIN` verifies the chain, pins the head
 * charter's roster as the only keys it aggregates with and its min_cohort as a floor,
 * refuses a coordinator whose training config hash differs from the charter's, and with each
 * training task verifies the audit log the coordinator shows (every signature, link and rule
 * against its own chain), checks that it extends the head it countersigned before, stops on a
 * fork, countersigns the new head, stores it durably (atomically) and hands it to the driver
 * to send back with its next report.
 *
 * Files are written with mu_write_file_atomic. Nothing here reads a clock (the caller passes
 * `now`) or touches a socket. Thread-safety: none; one thread per object.
 */
#ifndef HO_GOV_H
#define HO_GOV_H

#include <stddef.h>
#include <stdint.h>

#include "cl_participant.h"
#include "co_round.h"
#include "co_types.h"
#include "gv_log.h"
#include "mu_err.h"

#define HO_GOV_LOG_FILE "audit.log" /* in the checkpoint folder */
/* Also there: the leave notices accepted during a round, until its entry is written. */
#define HO_GOV_PENDING_FILE "leave.pending"

/* Test hooks (honoured only in builds with MUTUAL_TEST_HOOKS, i.e. Debug): a coordinator that
 * cheats, so tests can show that the orgs refuse what it no longer refuses itself. */
enum {
    HO_GOV_SKIP_CONFIG = 1, /* start under a config the charter does not name */
    HO_GOV_SKIP_ADMIT = 2,  /* register orgs not on the roster (and do not log them) */
    HO_GOV_SKIP_LEAVE = 4,  /* log leave notices, but keep those members in the rounds */
};

typedef struct ho_gov ho_gov;

typedef struct {
    const char *chain_path;     /* the charter chain file (mutual charter verify --add) */
    const char *key_path;       /* the coordinator's Ed25519 signing key (64 hex digits) */
    const char *dir;            /* the checkpoint folder: audit.log and audit.NAME.witness */
    const uint8_t *config_hash; /* (GV_HASH_BYTES) BLAKE2b-256 of the coordinator config */
    int resumed;                /* resumed from a checkpoint after round `resumed_round` */
    uint64_t resumed_round;
    const uint8_t *resumed_state; /* (GV_HASH_BYTES) its co_checkpoint_state_hash, or NULL */
    uint64_t instance;            /* this coordinator process's random id (restart entries) */
    uint64_t now;                 /* seconds since the epoch, for entry times */
    const co_round *round; /* the round machine, resumed: the global the next round starts from */
    unsigned skip;         /* HO_GOV_SKIP_* (tests only) */
} ho_gov_opts;

/* Loads and verifies the chain (gv_chain_verify), the key (must be the head charter's
 * coordinator key), the config hash (must be the head's training hash) and, when DIR/audit.log
 * exists, the log (gv_log_verify against the chain; its coordinator must be ours) and, when
 * resumed, the checkpoint against the log's entry of the resumed round: its global (the
 * round machine's) must be the global hash named, and resumed_state, when given and the
 * entry is format 2, the state hash named. Then
 * appends what is new: the charter versions the log has not adopted (all of them for a new
 * log) and, for an existing log, a restart entry, then the leave entries of the notices a
 * killed coordinator had accepted during a round (DIR/HO_GOV_PENDING_FILE, each checked
 * again as ho_gov_leave does; the file is then removed). A notice there that does not check
 * (a damaged, edited or foreign file: one serve wrote is whole, mu_write_file_atomic) is not
 * applied and does not stop the start: the file is first kept as
 * DIR/HO_GOV_PENDING_FILE.bad-NOW, a warning names both files and why, and the notices that
 * check are logged. NULL with diag naming the file and why (nothing written then, unless the
 * log or the pending file is what failed; a pending file that cannot be read is such a
 * failure). The key is wiped by ho_gov_free. */
ho_gov *ho_gov_open(const ho_gov_opts *o, mu_diag *diag);
void ho_gov_free(ho_gov *g); /* NULL is a no-op */

/* The head charter (borrowed). */
const gv_charter *ho_gov_charter(const ho_gov *g);

/* An org asks to join: MU_OK when `name` is on the head charter's roster with signing key pk
 * (its first admission is logged and saved); MU_ERR_INVALID with diag otherwise;
 * MU_ERR_IO / MU_ERR_NOMEM when the entry cannot be saved (the org is refused). */
int ho_gov_admit(ho_gov *g, const char *name, const uint8_t pk[GV_PK_BYTES], uint64_t now,
                 mu_diag *diag);

/* The driver handed org `name` task t: a TRAIN or EVAL task puts the org in that round's
 * cohort, for the round's entry (other kinds are ignored). */
void ho_gov_note_task(ho_gov *g, const co_task *t, const char *name);

/* After a ROUND event (before its checkpoint): for a completed round, appends and saves its
 * entry: the cohort (orgs noted for that round and the dropped ones), drops with their
 * stages, the charter's training hash, the aggregate hash (BLAKE2b-256 of the applied update:
 * the new global minus the previous one, float32 LE), the global hash (SHA-256 of the new
 * global as float32 LE, what orgs download and check), the state hash (co_checkpoint_state_hash
 * of the state the round's checkpoint holds: global, optimizer state, round, metrics, orgs)
 * and public metrics (kind, loss, tokens, orgs completed and dropped). MU_OK (also for an aborted
 * round: nothing logged), MU_ERR_IO, MU_ERR_NOMEM; the driver stops on failure (a round it cannot
 * log). */
int ho_gov_on_round(ho_gov *g, const co_round *r, const co_event *ev, uint64_t now, mu_diag *diag);

/* What members sign to release the last logged round: the log id (the genesis charter's
 * hash), that round and its global hash. MU_OK, or MU_ERR_STATE when no round is logged. */
int ho_gov_release_subject(const ho_gov *g, uint8_t log_id[GV_HASH_BYTES], uint64_t *round,
                           uint8_t global_hash[GV_HASH_BYTES]);

/* Members' release signatures (gv_release_sign, untrusted) for the last logged round: once
 * sigs holds the head charter's release quorum of valid voting members' signatures, appends
 * and saves the release entry carrying the valid ones (MU_OK). MU_ERR_CRYPTO with diag when
 * there are too few (nothing logged), MU_ERR_STATE (no round), MU_ERR_IO, MU_ERR_NOMEM. */
int ho_gov_release(ho_gov *g, const gv_sig *sigs, size_t n, uint64_t now, mu_diag *diag);

/* A member's release signature (untrusted: pk || sig, HO_GOV_RELEASE_SIG_BYTES) offered by
 * org `name` for `round`, which must be the last round the log holds: counted when it is
 * that member's roster key, a voting member, and valid over (log id, round, that round's
 * global hash). Returns 1 when it completed the charter's release quorum (the release entry
 * is then logged and saved), 0 when counted, repeated, or the round is already released;
 * MU_ERR_CRYPTO / MU_ERR_PROTOCOL (refused, with diag), MU_ERR_IO, MU_ERR_NOMEM. */
#define HO_GOV_RELEASE_SIG_BYTES (GV_PK_BYTES + GV_SIG_BYTES)
int ho_gov_release_offer(ho_gov *g, const char *name, uint64_t round, const uint8_t *sig,
                         size_t len, uint64_t now, mu_diag *diag);

/* 1 when round `round`'s global may be released (exported): a release entry with the
 * charter's release quorum names it; else 0 with the reason in diag. */
int ho_gov_may_release(const ho_gov *g, uint64_t round, mu_diag *diag);

/* The log as gv_log_encode bytes (borrowed; valid until the log changes): what each training
 * task carries to the orgs. */
int ho_gov_log_bytes(ho_gov *g, const uint8_t **bytes, size_t *len, mu_diag *diag);

/* Org `name` sent its countersignature of a head (untrusted bytes): it must decode, be by
 * that member's roster key and hold for our log (gv_witness_check); then it is saved as
 * DIR/audit.NAME.witness. MU_OK, MU_ERR_FORMAT, MU_ERR_CRYPTO, MU_ERR_PROTOCOL, MU_ERR_IO. */
int ho_gov_witness(ho_gov *g, const char *name, const uint8_t *bytes, size_t len, mu_diag *diag);

/* An org's call under TLS: MU_OK when fpr (GV_FPR_BYTES: the SHA-256 of the certificate the
 * caller presented, verified by TLS; NULL: none) is the head charter's tls_fingerprint for
 * member `name`; MU_ERR_INVALID with diag (both fingerprints) otherwise: a certificate that a
 * charter change replaced, a removed member's, or another CA-valid one for that name. */
int ho_gov_cert_check(const ho_gov *g, const char *name, const uint8_t *fpr, mu_diag *diag);

/* A running coordinator adopts the chain now in chain_path: it must verify from genesis,
 * extend the chain in force (the same versions, then new ones) and keep this coordinator's
 * key and training config; each new version is appended to the log (a charter entry) and
 * takes effect at once (roster, fingerprints, quorums). Returns 1 when it adopted something,
 * 0 when the file holds no new version; MU_ERR_STATE when a new version replaces this
 * coordinator or its config (the caller should stop); MU_ERR_PROTOCOL / MU_ERR_CRYPTO /
 * MU_ERR_FORMAT / MU_ERR_IO with diag when the file is not such a chain (nothing adopted);
 * MU_ERR_IO / MU_ERR_NOMEM when an entry cannot be saved (the versions before it stay
 * adopted). */
int ho_gov_adopt(ho_gov *g, const char *chain_path, uint64_t now, mu_diag *diag);

/* Org `name` sent a leave notice (untrusted gv_leave bytes): it must decode, be for this
 * federation, name `name` (a member sends its own), be signed by that member's roster key
 * (gv_leave_check) and the member must be admitted and not gone. Then it is accepted: logged
 * now (returns 1), or, when in_flight (a round is running), kept until that round's entry is
 * written (returns 0; ho_gov_leave_flush logs it; it is saved, fsynced, in
 * DIR/HO_GOV_PENDING_FILE before this returns, and a coordinator killed before the round's
 * end logs it when ho_gov_open runs again). From then on ho_gov_has_left(name) is 1.
 * MU_ERR_FORMAT, MU_ERR_PROTOCOL, MU_ERR_CRYPTO (forged), MU_ERR_STATE (left already) with
 * diag and nothing changed; MU_ERR_IO / MU_ERR_NOMEM when the entry cannot be saved. */
int ho_gov_leave(ho_gov *g, const char *name, const uint8_t *notice, size_t len, int in_flight,
                 uint64_t now, mu_diag *diag);
/* After a round's entry (ho_gov_on_round, also for an aborted round): logs the notices kept
 * for it and takes them out of HO_GOV_PENDING_FILE (the file goes when none is left).
 * MU_OK, MU_ERR_IO, MU_ERR_NOMEM (those not logged stay kept, in memory and file). */
int ho_gov_leave_flush(ho_gov *g, uint64_t now, mu_diag *diag);
/* 1 when member `name` left by its own notice (accepted now or logged before a restart): the
 * driver refuses its calls and puts it in no cohort. Always 0 with HO_GOV_SKIP_LEAVE. */
int ho_gov_has_left(const ho_gov *g, const char *name);

/* ---- the org's side ------------------------------------------------------------------------ */

typedef struct ho_witness ho_witness;

/* Loads and verifies the chain at chain_path and, when it exists, the head this org
 * countersigned before (head_path). sk: the org's Ed25519 signing key (copied, wiped by
 * ho_witness_free); its public key must be on the head charter's roster. NULL with diag. */
ho_witness *ho_witness_open(const char *chain_path, const char *head_path,
                            const uint8_t sk[GV_SK_BYTES], mu_diag *diag);
void ho_witness_free(ho_witness *w); /* NULL is a no-op */

const gv_charter *ho_witness_charter(const ho_witness *w);

/* The head charter's roster as cl_member entries (*out calloc'd, free() it) for the
 * participant's pinned cohort members. MU_OK or MU_ERR_NOMEM. */
int ho_witness_roster(const ho_witness *w, cl_member **out, size_t *n);

/* MU_OK when hash (the coordinator's training config hash, GV_HASH_BYTES; NULL: it did not
 * say) is the head charter's; MU_ERR_INVALID with diag otherwise. */
int ho_witness_check_config(const ho_witness *w, const uint8_t *hash, mu_diag *diag);

/* A log the coordinator shows (untrusted gv_log_encode bytes): decodes it, verifies it
 * against this org's chain (gv_log_verify), requires it to have adopted the chain's head,
 * and checks it extends the head countersigned before (gv_witness_check). Then countersigns
 * its last entry, saves that head (atomically, before returning it) and encodes it in out.
 * MU_OK; MU_ERR_FORMAT, MU_ERR_CRYPTO, MU_ERR_PROTOCOL ("equivocation: ..." for a fork) with
 * diag; MU_ERR_IO when the head cannot be saved (nothing countersigned then). */
int ho_witness_take(ho_witness *w, const uint8_t *log, size_t len, uint8_t out[GV_WITNESS_BYTES],
                    mu_diag *diag);

/* The org consents to release the last round of the log it took last (ho_witness_take) if
 * `global` (dim floats: the adapter the coordinator streamed after that round) is the one
 * the log names: SHA-256 of its float32 LE bytes = the round's global hash. Then signs the
 * release (gv_release_sign) into out (pk || sig) and *round. MU_OK; MU_ERR_STATE (no round
 * logged yet, or already signed for it); MU_ERR_PROTOCOL with diag when the global differs
 * (nothing signed); MU_ERR_NOMEM. */
int ho_witness_release_sign(ho_witness *w, const float *global, size_t dim, uint64_t *round,
                            uint8_t out[HO_GOV_RELEASE_SIG_BYTES], mu_diag *diag);

/* MU_OK unless task t's cohort (cohort_pks; empty for most tasks) holds the key of a member
 * whose leave notice is in the log this org took last (ho_witness_take): then
 * MU_ERR_PROTOCOL with diag, and the org takes no part in that round. */
int ho_witness_cohort_check(const ho_witness *w, const co_task *t, mu_diag *diag);

/* The push signature (wi_push_sign, the org's key) of a governance-only push: no payload. */
void ho_witness_push_sign(const ho_witness *w, uint64_t org_id, uint64_t round, uint32_t stage,
                          uint8_t sig[GV_SIG_BYTES]);

#endif
