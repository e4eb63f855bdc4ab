/* sa_msg.h - the SecAgg wire messages: C structs and a compact, versioned binary encoding.
 *
 * Every message starts with a 48-byte header, all integers little-endian:
 *   magic "SA" (2) | version (1) | type (1) | round_id (8) | binding (32) | org (4)
 * `binding` is the config hash for ADVERTISE and KEYS, the session id for every later stage.
 * `org` is the sending org (client->server) or the recipient org (server->client); KEYS,
 * SURVIVORS and UNMASK_REQ are broadcasts (identical for every recipient) with org = SA_TO_ALL.
 * The body depends on the type (counts are uint32, arrays follow them, nothing is optional):
 *   ADVERTISE    c_pk(32) s_pk(32) b_commit(32) sig(64)
 *   KEYS         count, count x { id(4) c_pk(32) s_pk(32) b_commit(32) sig(64) }, ids ascending
 *   SHARES       count, count x { recipient(4) ct(168) }, recipients strictly ascending
 *   DELIVERY     count, count x { sender(4) ct(168) }, senders strictly ascending
 *   MASKED       bits(4) d(4) packed(ceil(d*bits/8)); unused high bits of the last byte are 0
 *   SURVIVORS    count, count x id(4), strictly ascending
 *   CONSIST_SIG  sig(64)
 *   UNMASK_REQ   count, count x id(4) ascending; nsig, nsig x { id(4) sig(64) } ascending
 *   UNMASK       count, count x { owner(4) kind(1: 1 = b, 2 = s_sk) share(64) }, owners asc.
 * The decoder is fed untrusted bytes: it checks every length against the buffer, refuses
 * trailing bytes, counts above SA_MAX_ORGS, unsorted or repeated ids, and unknown kinds.
 */
#ifndef SA_MSG_H
#define SA_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"
#include "sa.h"

#define SA_MSG_HEADER_BYTES 48u

typedef enum {
    SA_MSG_ADVERTISE = 1,
    SA_MSG_KEYS = 2,
    SA_MSG_SHARES = 3,
    SA_MSG_DELIVERY = 4,
    SA_MSG_MASKED = 5,
    SA_MSG_SURVIVORS = 6,
    SA_MSG_CONSIST_SIG = 7,
    SA_MSG_UNMASK_REQ = 8,
    SA_MSG_UNMASK = 9,
} sa_msg_type;

enum { SA_REVEAL_B = 1, SA_REVEAL_S = 2 };

typedef struct {
    uint32_t id;
    uint8_t c_pk[SA_DH_PK_BYTES];    /* encrypts shares */
    uint8_t s_pk[SA_DH_PK_BYTES];    /* derives pairwise masks */
    uint8_t b_commit[SA_HASH_BYTES]; /* commitment to the self-mask seed b (sa_b_commit) */
    uint8_t sig[SA_SIG_BYTES];
} sa_key_entry;

typedef struct {
    uint32_t peer; /* recipient in SHARES, sender in DELIVERY */
    uint8_t ct[SA_SHARE_CT_BYTES];
} sa_ct_entry;

typedef struct {
    uint32_t id;
    uint8_t sig[SA_SIG_BYTES];
} sa_sig_entry;

typedef struct {
    uint32_t owner; /* whose secret this is a share of */
    uint8_t kind;   /* SA_REVEAL_B or SA_REVEAL_S */
    uint8_t share[SA_SHARE_BYTES];
} sa_reveal_entry;

/* One decoded message. Only the fields of its type are meaningful; arrays are owned by the
 * struct when it comes from sa_msg_decode (free with sa_msg_deinit) and borrowed when the
 * caller fills it for sa_msg_encode. */
typedef struct {
    sa_msg_type type;
    uint64_t round_id;
    uint8_t binding[SA_HASH_BYTES];
    uint32_t org;

    sa_key_entry adv;          /* ADVERTISE (adv.id == org) */
    uint8_t sig[SA_SIG_BYTES]; /* CONSIST_SIG */

    size_t n_keys;
    sa_key_entry *keys; /* KEYS */
    size_t n_cts;
    sa_ct_entry *cts; /* SHARES, DELIVERY */
    size_t n_ids;
    uint32_t *ids; /* SURVIVORS, UNMASK_REQ */
    size_t n_sigs;
    sa_sig_entry *sigs; /* UNMASK_REQ */
    size_t n_reveals;
    sa_reveal_entry *reveals; /* UNMASK */

    uint32_t bits, d;      /* MASKED */
    const uint8_t *packed; /* MASKED: sa_pack_len(d, bits) bytes; after decode it points
                            * INTO the decoded buffer (borrowed, not copied) */
} sa_msg;

/* Zeroes *m so that sa_msg_deinit is safe. */
void sa_msg_init(sa_msg *m);

/* The exact encoded length of m, or 0 if m is not encodable (bad type, counts too large). */
size_t sa_msg_encoded_len(const sa_msg *m);

/* Encodes m into buf (cap bytes); *written gets the length. MU_ERR_INVALID if m is not
 * encodable (including ids not strictly ascending), MU_ERR_NOMEM-free: never allocates;
 * MU_ERR_INVALID if cap is too small. */
int sa_msg_encode(const sa_msg *m, uint8_t *buf, size_t cap, size_t *written);

/* Encodes into a new malloc'ed buffer owned by the caller (*out, *out_len). */
int sa_msg_encode_alloc(const sa_msg *m, uint8_t **out, size_t *out_len);

/* Decodes untrusted bytes into *m (which it initialises first). On success m owns its arrays,
 * except m->packed which borrows from buf (buf must outlive m's use of packed). On error
 * returns MU_ERR_FORMAT (reason in diag) or MU_ERR_NOMEM and leaves m holding nothing. */
int sa_msg_decode(sa_msg *m, const uint8_t *buf, size_t len, mu_diag *diag);

/* Frees the arrays a decode allocated and zeroes m. Do not call on caller-filled structs
 * whose arrays the caller owns. */
void sa_msg_deinit(sa_msg *m);

/* Reads the type byte and binding without decoding the body (for routing); MU_ERR_FORMAT if
 * the header is malformed. */
int sa_msg_peek(const uint8_t *buf, size_t len, sa_msg_type *type, uint32_t *org);

#endif
