/* gv_charter.h - a federation's charter: who its members are, who coordinates it, which quorum
 * each kind of decision needs, its privacy policy and its training config. Its canonical byte
 * encoding is deterministic (one encoding per charter), versioned and length-checked; the
 * BLAKE2b-256 hash of that encoding is the charter's identity, and the genesis charter's hash
 * is the federation's. Sans-IO: no files, no YAML (the CLI parses the human form). */
#ifndef GV_CHARTER_H
#define GV_CHARTER_H

#include <stddef.h>
#include <stdint.h>

#include "co_types.h"
#include "mu_err.h"

#define GV_HASH_BYTES     32  /* BLAKE2b-256 */
#define GV_PK_BYTES       32  /* Ed25519 public key */
#define GV_SK_BYTES       64  /* Ed25519 secret key (libsodium layout: seed || pk) */
#define GV_SIG_BYTES      64  /* Ed25519 signature */
#define GV_FPR_BYTES      32  /* SHA-256 of a member's TLS certificate (DER) */
#define GV_FED_ID_MAX     64  /* federation id, bytes including the NUL */
#define GV_ADDR_MAX       256 /* coordinator HOST:PORT, bytes including the NUL */
#define GV_NAME_MAX       CO_ORG_NAME_MAX
#define GV_MEMBERS_MAX    128 /* roster entries */
#define GV_CHARTER_FORMAT 1   /* the encoding's version; a decoder refuses any other */
/* Format 1 plus the coordinator's TLS fingerprint, used only when coord_fpr is set: a charter
 * without it keeps its format 1 bytes and hash. */
#define GV_CHARTER_FORMAT_COORD_FPR 2

/* A member either votes (counts towards quorums) or only observes. */
typedef enum { GV_ROLE_MEMBER = 1, GV_ROLE_OBSERVER = 2 } gv_role;

/* The decisions a quorum is set for. A charter change is of one or more of the first, third
 * and fourth kinds (gv_charter_diff); releases are audit-log events (gv_log.h). */
typedef enum {
    GV_KIND_ADMIT = 0,       /* roster changes: admit, remove, re-key, change a role */
    GV_KIND_CONFIG = 1,      /* training config or privacy policy */
    GV_KIND_RELEASE = 2,     /* releasing a global adapter */
    GV_KIND_COORDINATOR = 3, /* the coordinator's key or address */
    GV_KIND_COUNT = 4,
} gv_kind;

/* k of the n voting members; k == 0 and n == 0 mean a strict majority (floor(n/2) + 1). A
 * k-of-n quorum's n must equal the charter's number of voting members. */
typedef struct {
    uint32_t k, n;
} gv_quorum;

typedef struct {
    char name[GV_NAME_MAX]; /* wi_org_name_valid */
    uint8_t sign_pk[GV_PK_BYTES];
    uint8_t tls_fpr[GV_FPR_BYTES];
    uint8_t role; /* gv_role */
} gv_member;

typedef struct {
    uint32_t min_cohort;       /* fewest orgs a released aggregate may come from (>= 1) */
    uint32_t secagg_threshold; /* SecAgg+ reconstruction threshold, per mille of the cohort;
                                  0 = the coordinator config's default */
    uint32_t dp_epsilon_milli; /* differential-privacy budget x 1000; 0 = none yet */
} gv_privacy;

typedef struct {
    char federation[GV_FED_ID_MAX]; /* printable ASCII, no spaces */
    uint64_t version;               /* 1 = genesis */
    uint8_t parent[GV_HASH_BYTES];  /* the previous version's hash; zeros for genesis */
    uint8_t coord_pk[GV_PK_BYTES];
    char coord_addr[GV_ADDR_MAX];
    uint8_t coord_fpr[GV_FPR_BYTES]; /* SHA-256 of its TLS certificate (DER); zeros: not pinned */
    gv_quorum quorum[GV_KIND_COUNT];
    gv_privacy privacy;
    uint8_t training_hash[GV_HASH_BYTES]; /* BLAKE2b-256 of the coordinator config file */
    uint32_t n_members;
    gv_member members[GV_MEMBERS_MAX]; /* sorted by name (strcmp), names and keys unique */
} gv_charter;

/* The name of a kind ("admit", "change_config", "release", "change_coordinator"), or "?". */
const char *gv_kind_name(int kind);
/* GV_KIND_* for such a name, or -1. */
int gv_kind_parse(const char *name);

/* MU_OK if c is a charter the encoding accepts (every field above in range, members sorted
 * and unique, at least one voting member, quorums satisfiable, genesis iff version 1 and a
 * zero parent), else MU_ERR_INVALID naming the field in diag. */
int gv_charter_check(const gv_charter *c, mu_diag *diag);

/* Encodes c canonically into a new buffer *out (caller frees) of *len bytes. MU_OK,
 * MU_ERR_INVALID (gv_charter_check failed, said why in diag) or MU_ERR_NOMEM. */
int gv_charter_encode(const gv_charter *c, uint8_t **out, size_t *len, mu_diag *diag);

/* Decodes exactly n bytes (untrusted) into *c: MU_OK, or MU_ERR_FORMAT / MU_ERR_UNSUPPORTED
 * (another format version) / MU_ERR_INVALID (decodes, but gv_charter_check refuses it), with
 * the reason in diag. Bytes that decode re-encode to the same bytes. */
int gv_charter_decode(gv_charter *c, const uint8_t *b, size_t n, mu_diag *diag);

/* The charter's identity: BLAKE2b-256 of its canonical encoding. MU_OK or as encode. */
int gv_charter_hash(const gv_charter *c, uint8_t out[GV_HASH_BYTES], mu_diag *diag);

/* Voting members of c. */
uint32_t gv_charter_voters(const gv_charter *c);

/* How many voting members' signatures decision `kind` needs under c (1 .. voters). */
uint32_t gv_quorum_need(const gv_charter *c, gv_kind kind);

/* The member named `name`, or NULL. */
const gv_member *gv_charter_member(const gv_charter *c, const char *name);
/* The member whose signing key is pk, or NULL. */
const gv_member *gv_charter_member_by_key(const gv_charter *c, const uint8_t pk[GV_PK_BYTES]);

/* Which kinds of decision turning `parent` into `child` makes: a bit (1u << GV_KIND_*) for each
 * of roster (admit), training config or privacy (change_config), coordinator key, address or
 * TLS fingerprint (change_coordinator); a change of the rules themselves sets every kind's bit, so
 * it needs the strictest quorum. Version, parent hash and federation id are not compared. */
unsigned gv_charter_diff(const gv_charter *parent, const gv_charter *child);

/* The number of signatures a change of kinds `mask` needs under `parent`: the largest
 * gv_quorum_need over the kinds set (0 for an empty mask). */
uint32_t gv_charter_need(const gv_charter *parent, unsigned mask);

#endif
