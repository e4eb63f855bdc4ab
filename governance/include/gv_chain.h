/* gv_chain.h - proposals, their signatures and the chain of charters.
 *
 * A proposal is a charter version and the signatures gathered for it (a "signed charter"; the
 * file the CLI passes around). Each signature is Ed25519 by a member's signing key over
 * "mutual charter v1" || the charter's hash. Version 1 (genesis) is valid once every member on
 * its roster signed it; version v > 1 once it names version v − 1's hash as parent, keeps the
 * federation id, changes something, and is signed by as many of the PARENT's voting members
 * as the parent's quorum for the strictest kind of change it makes (gv_charter_diff). */
#ifndef GV_CHAIN_H
#define GV_CHAIN_H

#include "gv_charter.h"

#define GV_CHAIN_MAX 4096 /* charter versions in one chain */

typedef struct {
    uint8_t pk[GV_PK_BYTES];
    uint8_t sig[GV_SIG_BYTES];
} gv_sig;

typedef struct {
    gv_charter charter;
    uint32_t n_sigs;
    gv_sig sigs[GV_MEMBERS_MAX]; /* distinct keys */
} gv_signed;

/* Signs s->charter with sk (GV_SK_BYTES, libsodium layout), replacing an earlier signature by
 * the same key. MU_OK, MU_ERR_INVALID (the charter does not encode; GV_MEMBERS_MAX signatures
 * already), MU_ERR_NOMEM. The key is only read. */
int gv_signed_sign(gv_signed *s, const uint8_t sk[GV_SK_BYTES], mu_diag *diag);

/* How many distinct voting members of `voters` (the parent charter, or the charter itself for
 * genesis) have a valid signature in s; with all_members, members of any role count (genesis).
 * Signatures by keys not on that roster, or that do not verify, are not counted; 0 when the
 * charter cannot be hashed (out of memory; gv_chain_verify reports that as MU_ERR_NOMEM). */
uint32_t gv_signed_count(const gv_signed *s, const gv_charter *voters, int all_members);

/* The bundle encoding: "MUGS", u16 format, u32 length + canonical charter, u16 count + (pk,
 * sig) pairs. encode: new buffer *out (caller frees). decode: exactly n untrusted bytes;
 * MU_ERR_FORMAT for malformed bytes or a repeated key, with the reason in diag. */
int gv_signed_encode(const gv_signed *s, uint8_t **out, size_t *len, mu_diag *diag);
int gv_signed_decode(gv_signed *s, const uint8_t *b, size_t n, mu_diag *diag);

/* Checks chain[0..n) from genesis to head: every link, signature and quorum. MU_OK, or
 * MU_ERR_CRYPTO (too few valid signatures), MU_ERR_PROTOCOL (a broken link: version, parent,
 * federation id, no change) or as gv_charter_encode, with *bad (may be NULL) the index of the
 * first bad version and diag "charter version V: why". */
int gv_chain_verify(const gv_signed *chain, size_t n, size_t *bad, mu_diag *diag);

/* Checks that `next` may follow `parent` (a verified charter): the link and quorum part of
 * gv_chain_verify. Same returns. */
int gv_chain_check_link(const gv_charter *parent, const gv_signed *next, mu_diag *diag);

/* A chain file: "MUGH", u16 format, u32 count, then u32 length + bundle for each version.
 * encode takes n >= 1 versions; decode allocates *chain (caller frees with free()), *n its
 * length, and checks framing and every bundle, not signatures (gv_chain_verify does). */
int gv_chain_encode(const gv_signed *chain, size_t n, uint8_t **out, size_t *len, mu_diag *diag);
int gv_chain_decode(gv_signed **chain, size_t *n, const uint8_t *b, size_t len, mu_diag *diag);

#endif
