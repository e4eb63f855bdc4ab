/* sa_msg.c - encoding and strict decoding of the wire messages (layout in sa_msg.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mu_bytes.h"
#include "sa_internal.h"

#define KEY_ENTRY_BYTES    (4u + 2u * SA_DH_PK_BYTES + SA_HASH_BYTES + SA_SIG_BYTES)
#define CT_ENTRY_BYTES     (4u + SA_SHARE_CT_BYTES)
#define SIG_ENTRY_BYTES    (4u + SA_SIG_BYTES)
#define REVEAL_ENTRY_BYTES (4u + 1u + SA_SHARE_BYTES)

void sa_msg_init(sa_msg *m)
{
    memset(m, 0, sizeof *m);
}

void sa_msg_deinit(sa_msg *m)
{
    free(m->keys);
    free(m->cts);
    free(m->ids);
    free(m->sigs);
    if (m->reveals)
        sodium_memzero(m->reveals, m->n_reveals * sizeof *m->reveals);
    free(m->reveals);
    memset(m, 0, sizeof *m);
}

size_t sa_msg_encoded_len(const sa_msg *m)
{
    size_t h = SA_MSG_HEADER_BYTES;
    switch (m->type) {
    case SA_MSG_ADVERTISE:
        return h + 2 * SA_DH_PK_BYTES + SA_HASH_BYTES + SA_SIG_BYTES;
    case SA_MSG_KEYS:
        return m->n_keys > SA_MAX_ORGS ? 0 : h + 4 + m->n_keys * KEY_ENTRY_BYTES;
    case SA_MSG_SHARES:
    case SA_MSG_DELIVERY:
        return m->n_cts > SA_MAX_ORGS ? 0 : h + 4 + m->n_cts * CT_ENTRY_BYTES;
    case SA_MSG_MASKED:
        if (m->bits < 1 || m->bits > 32 || m->d > SA_MAX_D)
            return 0;
        return h + 8 + sa_pack_len(m->d, m->bits);
    case SA_MSG_SURVIVORS:
        return m->n_ids > SA_MAX_ORGS ? 0 : h + 4 + 4 * m->n_ids;
    case SA_MSG_CONSIST_SIG:
        return h + SA_SIG_BYTES;
    case SA_MSG_UNMASK_REQ:
        if (m->n_ids > SA_MAX_ORGS || m->n_sigs > SA_MAX_ORGS)
            return 0;
        return h + 8 + 4 * m->n_ids + m->n_sigs * SIG_ENTRY_BYTES;
    case SA_MSG_UNMASK:
        return m->n_reveals > SA_MAX_ORGS ? 0 : h + 4 + m->n_reveals * REVEAL_ENTRY_BYTES;
    }
    return 0;
}

/* ---- writer ---- */

typedef struct {
    uint8_t *p;
} wr;

static void w_bytes(wr *w, const void *src, size_t n)
{
    memcpy(w->p, src, n);
    w->p += n;
}

static void w32(wr *w, uint32_t v)
{
    uint8_t b[4];
    mu_put_le32(b, v);
    w_bytes(w, b, 4);
}

static void w64(wr *w, uint64_t v)
{
    uint8_t b[8];
    mu_put_le64(b, v);
    w_bytes(w, b, 8);
}

static int ascending_keys(const sa_msg *m)
{
    for (size_t i = 1; i < m->n_keys; i++)
        if (m->keys[i].id <= m->keys[i - 1].id)
            return 0;
    return 1;
}

static int ascending_cts(const sa_msg *m)
{
    for (size_t i = 1; i < m->n_cts; i++)
        if (m->cts[i].peer <= m->cts[i - 1].peer)
            return 0;
    return 1;
}

static int ascending_sigs(const sa_msg *m)
{
    for (size_t i = 1; i < m->n_sigs; i++)
        if (m->sigs[i].id <= m->sigs[i - 1].id)
            return 0;
    return 1;
}

static int ascending_reveals(const sa_msg *m)
{
    for (size_t i = 0; i < m->n_reveals; i++) {
        if (i > 0 && m->reveals[i].owner <= m->reveals[i - 1].owner)
            return 0;
        if (m->reveals[i].kind != SA_REVEAL_B && m->reveals[i].kind != SA_REVEAL_S)
            return 0;
    }
    return 1;
}

int sa_msg_encode(const sa_msg *m, uint8_t *buf, size_t cap, size_t *written)
{
    size_t len = sa_msg_encoded_len(m);
    if (len == 0 || len > cap)
        return MU_ERR_INVALID;
    if (!ascending_keys(m) || !ascending_cts(m) || !sa_ids_ascending(m->ids, m->n_ids) ||
        !ascending_sigs(m) || !ascending_reveals(m))
        return MU_ERR_INVALID;
    wr w = {buf};
    w_bytes(&w, "SA", 2);
    *w.p++ = SA_WIRE_VERSION;
    *w.p++ = (uint8_t)m->type;
    w64(&w, m->round_id);
    w_bytes(&w, m->binding, SA_HASH_BYTES);
    w32(&w, m->org);
    switch (m->type) {
    case SA_MSG_ADVERTISE:
        w_bytes(&w, m->adv.c_pk, SA_DH_PK_BYTES);
        w_bytes(&w, m->adv.s_pk, SA_DH_PK_BYTES);
        w_bytes(&w, m->adv.b_commit, SA_HASH_BYTES);
        w_bytes(&w, m->adv.sig, SA_SIG_BYTES);
        break;
    case SA_MSG_KEYS:
        w32(&w, (uint32_t)m->n_keys);
        for (size_t i = 0; i < m->n_keys; i++) {
            w32(&w, m->keys[i].id);
            w_bytes(&w, m->keys[i].c_pk, SA_DH_PK_BYTES);
            w_bytes(&w, m->keys[i].s_pk, SA_DH_PK_BYTES);
            w_bytes(&w, m->keys[i].b_commit, SA_HASH_BYTES);
            w_bytes(&w, m->keys[i].sig, SA_SIG_BYTES);
        }
        break;
    case SA_MSG_SHARES:
    case SA_MSG_DELIVERY:
        w32(&w, (uint32_t)m->n_cts);
        for (size_t i = 0; i < m->n_cts; i++) {
            w32(&w, m->cts[i].peer);
            w_bytes(&w, m->cts[i].ct, SA_SHARE_CT_BYTES);
        }
        break;
    case SA_MSG_MASKED:
        w32(&w, m->bits);
        w32(&w, m->d);
        if (m->d)
            w_bytes(&w, m->packed, sa_pack_len(m->d, m->bits));
        break;
    case SA_MSG_SURVIVORS:
        w32(&w, (uint32_t)m->n_ids);
        for (size_t i = 0; i < m->n_ids; i++)
            w32(&w, m->ids[i]);
        break;
    case SA_MSG_CONSIST_SIG:
        w_bytes(&w, m->sig, SA_SIG_BYTES);
        break;
    case SA_MSG_UNMASK_REQ:
        w32(&w, (uint32_t)m->n_ids);
        for (size_t i = 0; i < m->n_ids; i++)
            w32(&w, m->ids[i]);
        w32(&w, (uint32_t)m->n_sigs);
        for (size_t i = 0; i < m->n_sigs; i++) {
            w32(&w, m->sigs[i].id);
            w_bytes(&w, m->sigs[i].sig, SA_SIG_BYTES);
        }
        break;
    case SA_MSG_UNMASK:
        w32(&w, (uint32_t)m->n_reveals);
        for (size_t i = 0; i < m->n_reveals; i++) {
            w32(&w, m->reveals[i].owner);
            *w.p++ = m->reveals[i].kind;
            w_bytes(&w, m->reveals[i].share, SA_SHARE_BYTES);
        }
        break;
    }
    *written = len;
    return MU_OK;
}

int sa_msg_encode_alloc(const sa_msg *m, uint8_t **out, size_t *out_len)
{
    size_t len = sa_msg_encoded_len(m);
    if (len == 0)
        return MU_ERR_INVALID;
    uint8_t *buf = malloc(len);
    if (!buf)
        return MU_ERR_NOMEM;
    int rc = sa_msg_encode(m, buf, len, out_len);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return MU_OK;
}

/* ---- reader ---- */

typedef struct {
    const uint8_t *p;
    size_t left;
} rd;

static int r_bytes(rd *r, void *dst, size_t n)
{
    if (r->left < n)
        return 0;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return 1;
}

static int r32(rd *r, uint32_t *v)
{
    uint8_t b[4];
    if (!r_bytes(r, b, 4))
        return 0;
    *v = mu_le32(b);
    return 1;
}

/* Reads a count and checks that count * entry bytes fit in what is left. */
static int r_count(rd *r, size_t entry, size_t *count)
{
    uint32_t c;
    if (!r32(r, &c) || c > SA_MAX_ORGS || (size_t)c * entry > r->left)
        return 0;
    *count = c;
    return 1;
}

static void *alloc_n(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static int decode_body(sa_msg *m, rd *r, mu_diag *diag)
{
    switch (m->type) {
    case SA_MSG_ADVERTISE:
        m->adv.id = m->org;
        if (!r_bytes(r, m->adv.c_pk, SA_DH_PK_BYTES) || !r_bytes(r, m->adv.s_pk, SA_DH_PK_BYTES) ||
            !r_bytes(r, m->adv.b_commit, SA_HASH_BYTES) || !r_bytes(r, m->adv.sig, SA_SIG_BYTES))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: short ADVERTISE");
        return MU_OK;
    case SA_MSG_KEYS:
        if (!r_count(r, KEY_ENTRY_BYTES, &m->n_keys))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: bad KEYS count");
        if (!(m->keys = alloc_n(m->n_keys, sizeof *m->keys)))
            return MU_ERR_NOMEM;
        for (size_t i = 0; i < m->n_keys; i++) {
            r32(r, &m->keys[i].id);
            r_bytes(r, m->keys[i].c_pk, SA_DH_PK_BYTES);
            r_bytes(r, m->keys[i].s_pk, SA_DH_PK_BYTES);
            r_bytes(r, m->keys[i].b_commit, SA_HASH_BYTES);
            r_bytes(r, m->keys[i].sig, SA_SIG_BYTES);
        }
        if (!ascending_keys(m))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: KEYS ids not ascending");
        return MU_OK;
    case SA_MSG_SHARES:
    case SA_MSG_DELIVERY:
        if (!r_count(r, CT_ENTRY_BYTES, &m->n_cts))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: bad share count");
        if (!(m->cts = alloc_n(m->n_cts, sizeof *m->cts)))
            return MU_ERR_NOMEM;
        for (size_t i = 0; i < m->n_cts; i++) {
            r32(r, &m->cts[i].peer);
            r_bytes(r, m->cts[i].ct, SA_SHARE_CT_BYTES);
        }
        if (!ascending_cts(m))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: share peers not ascending");
        return MU_OK;
    case SA_MSG_MASKED: {
        if (!r32(r, &m->bits) || !r32(r, &m->d))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: short MASKED");
        if (m->bits < 1 || m->bits > 32 || m->d > SA_MAX_D)
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: MASKED bits=%u d=%u", m->bits,
                               m->d);
        size_t plen = sa_pack_len(m->d, m->bits);
        if (r->left < plen)
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: MASKED payload too short");
        m->packed = r->p;
        uint32_t used = (uint32_t)(((uint64_t)m->d * m->bits) % 8);
        if (used && (r->p[plen - 1] >> used) != 0)
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: MASKED padding bits set");
        r->p += plen;
        r->left -= plen;
        return MU_OK;
    }
    case SA_MSG_SURVIVORS:
    case SA_MSG_UNMASK_REQ:
        if (!r_count(r, 4, &m->n_ids))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: bad id count");
        if (!(m->ids = alloc_n(m->n_ids, sizeof *m->ids)))
            return MU_ERR_NOMEM;
        for (size_t i = 0; i < m->n_ids; i++)
            r32(r, &m->ids[i]);
        if (!sa_ids_ascending(m->ids, m->n_ids))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: ids not ascending");
        if (m->type == SA_MSG_SURVIVORS)
            return MU_OK;
        if (!r_count(r, SIG_ENTRY_BYTES, &m->n_sigs))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: bad signature count");
        if (!(m->sigs = alloc_n(m->n_sigs, sizeof *m->sigs)))
            return MU_ERR_NOMEM;
        for (size_t i = 0; i < m->n_sigs; i++) {
            r32(r, &m->sigs[i].id);
            r_bytes(r, m->sigs[i].sig, SA_SIG_BYTES);
        }
        if (!ascending_sigs(m))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: signers not ascending");
        return MU_OK;
    case SA_MSG_CONSIST_SIG:
        if (!r_bytes(r, m->sig, SA_SIG_BYTES))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: short CONSIST_SIG");
        return MU_OK;
    case SA_MSG_UNMASK:
        if (!r_count(r, REVEAL_ENTRY_BYTES, &m->n_reveals))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: bad reveal count");
        if (!(m->reveals = alloc_n(m->n_reveals, sizeof *m->reveals)))
            return MU_ERR_NOMEM;
        for (size_t i = 0; i < m->n_reveals; i++) {
            r32(r, &m->reveals[i].owner);
            r_bytes(r, &m->reveals[i].kind, 1);
            r_bytes(r, m->reveals[i].share, SA_SHARE_BYTES);
        }
        if (!ascending_reveals(m))
            return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: bad reveal list");
        return MU_OK;
    }
    return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: unknown message type %d", (int)m->type);
}

static int decode_header(sa_msg *m, rd *r, mu_diag *diag)
{
    uint8_t magic[2], ver, type;
    uint32_t lo, hi;
    if (!r_bytes(r, magic, 2) || !r_bytes(r, &ver, 1) || !r_bytes(r, &type, 1) || !r32(r, &lo) ||
        !r32(r, &hi) || !r_bytes(r, m->binding, SA_HASH_BYTES) || !r32(r, &m->org))
        return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: message shorter than its header");
    if (magic[0] != 'S' || magic[1] != 'A')
        return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: not a secure_agg message");
    if (ver != SA_WIRE_VERSION)
        return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: wire version %u (expected %u)", ver,
                           SA_WIRE_VERSION);
    if (type < SA_MSG_ADVERTISE || type > SA_MSG_UNMASK)
        return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: unknown message type %u", type);
    m->type = (sa_msg_type)type;
    m->round_id = (uint64_t)hi << 32 | lo;
    return MU_OK;
}

int sa_msg_peek(const uint8_t *buf, size_t len, sa_msg_type *type, uint32_t *org)
{
    sa_msg m;
    sa_msg_init(&m);
    rd r = {buf, len};
    int rc = decode_header(&m, &r, NULL);
    if (rc == MU_OK) {
        *type = m.type;
        *org = m.org;
    }
    return rc;
}

int sa_msg_decode(sa_msg *m, const uint8_t *buf, size_t len, mu_diag *diag)
{
    sa_msg_init(m);
    if (!buf && len)
        return mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: NULL message");
    rd r = {buf, len};
    int rc = decode_header(m, &r, diag);
    if (rc == MU_OK)
        rc = decode_body(m, &r, diag);
    if (rc == MU_OK && r.left != 0)
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: %zu trailing bytes", r.left);
    if (rc)
        sa_msg_deinit(m);
    return rc;
}
