/* gv_chain.c - proposal signatures, bundles, and the chain check. */
#include "gv_chain.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gv_buf.h"
#include "gv_internal.h"
#include "mu_grow.h"

#define GV_SIGNED_FORMAT 1
static const uint8_t GV_SIGNED_MAGIC[4] = {'M', 'U', 'G', 'S'};
static const uint8_t GV_CHAIN_MAGIC[4] = {'M', 'U', 'G', 'H'};
static const char GV_CHARTER_DOMAIN[] = "mutual charter v1";

/* The signed message: the domain (with its NUL) then the charter's hash. */
static int sig_message(const gv_charter *c, uint8_t msg[sizeof GV_CHARTER_DOMAIN + GV_HASH_BYTES],
                       mu_diag *d)
{
    memcpy(msg, GV_CHARTER_DOMAIN, sizeof GV_CHARTER_DOMAIN);
    return gv_charter_hash(c, msg + sizeof GV_CHARTER_DOMAIN, d);
}

int gv_signed_sign(gv_signed *s, const uint8_t sk[GV_SK_BYTES], mu_diag *d)
{
    uint8_t msg[sizeof GV_CHARTER_DOMAIN + GV_HASH_BYTES];
    int rc = sig_message(&s->charter, msg, d);
    if (rc)
        return rc;
    const uint8_t *pk = sk + 32;
    uint32_t i = 0;
    while (i < s->n_sigs && memcmp(s->sigs[i].pk, pk, GV_PK_BYTES))
        i++;
    if (i == GV_MEMBERS_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "proposal: %d signatures already", GV_MEMBERS_MAX);
    memcpy(s->sigs[i].pk, pk, GV_PK_BYTES);
    crypto_sign_detached(s->sigs[i].sig, NULL, msg, sizeof msg, sk);
    if (i == s->n_sigs)
        s->n_sigs++;
    return MU_OK;
}

uint32_t gv_signed_count(const gv_signed *s, const gv_charter *voters, int all_members)
{
    uint8_t h[GV_HASH_BYTES];
    if (gv_charter_hash(&s->charter, h, NULL))
        return 0;
    return gv_signed_count_hash(s, h, voters, all_members);
}

uint32_t gv_signed_count_hash(const gv_signed *s, const uint8_t hash[GV_HASH_BYTES],
                              const gv_charter *voters, int all_members)
{
    uint8_t msg[sizeof GV_CHARTER_DOMAIN + GV_HASH_BYTES];
    memcpy(msg, GV_CHARTER_DOMAIN, sizeof GV_CHARTER_DOMAIN);
    memcpy(msg + sizeof GV_CHARTER_DOMAIN, hash, GV_HASH_BYTES);
    uint32_t count = 0;
    for (uint32_t i = 0; i < s->n_sigs && i < GV_MEMBERS_MAX; i++) {
        const gv_member *m = gv_charter_member_by_key(voters, s->sigs[i].pk);
        if (!m || (!all_members && m->role != GV_ROLE_MEMBER))
            continue;
        int dup = 0;
        for (uint32_t j = 0; j < i && !dup; j++)
            dup = !memcmp(s->sigs[j].pk, s->sigs[i].pk, GV_PK_BYTES);
        if (!dup && !crypto_sign_verify_detached(s->sigs[i].sig, msg, sizeof msg, s->sigs[i].pk))
            count++;
    }
    return count;
}

int gv_signed_encode(const gv_signed *s, uint8_t **out, size_t *len, mu_diag *d)
{
    uint8_t *cb;
    size_t cn;
    int rc = gv_charter_encode(&s->charter, &cb, &cn, d);
    if (rc)
        return rc;
    gv_wbuf w = {0};
    gv_w_bytes(&w, GV_SIGNED_MAGIC, 4);
    gv_w_u16(&w, GV_SIGNED_FORMAT);
    gv_w_u32(&w, (uint32_t)cn);
    gv_w_bytes(&w, cb, cn);
    free(cb);
    gv_w_u16(&w, (uint16_t)s->n_sigs);
    for (uint32_t i = 0; i < s->n_sigs; i++) {
        gv_w_bytes(&w, s->sigs[i].pk, GV_PK_BYTES);
        gv_w_bytes(&w, s->sigs[i].sig, GV_SIG_BYTES);
    }
    if (w.err || s->n_sigs > GV_MEMBERS_MAX) {
        free(w.b);
        return mu_diag_set(d, w.err ? w.err : MU_ERR_INVALID, "proposal: cannot encode");
    }
    *out = w.b;
    *len = w.len;
    return MU_OK;
}

int gv_signed_decode(gv_signed *s, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_rbuf r = {.b = b, .len = n};
    uint8_t magic[4];
    gv_r_bytes(&r, magic, 4);
    if (r.err || memcmp(magic, GV_SIGNED_MAGIC, 4))
        return mu_diag_set(d, MU_ERR_FORMAT, "proposal: not a signed charter (bad magic)");
    if (gv_r_u16(&r) != GV_SIGNED_FORMAT)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "proposal: unknown format version");
    uint32_t cn = gv_r_u32(&r);
    if (r.err || cn > n - r.pos)
        return mu_diag_set(d, MU_ERR_FORMAT, "proposal: charter length %u past the end", cn);
    int rc = gv_charter_decode(&s->charter, b + r.pos, cn, d);
    if (rc)
        return rc;
    r.pos += cn;
    uint16_t ns = gv_r_u16(&r);
    if (r.err || ns > GV_MEMBERS_MAX)
        return mu_diag_set(d, MU_ERR_FORMAT, "proposal: %u signatures (at most %d)", ns,
                           GV_MEMBERS_MAX);
    s->n_sigs = ns;
    for (uint32_t i = 0; i < ns; i++) {
        gv_r_bytes(&r, s->sigs[i].pk, GV_PK_BYTES);
        gv_r_bytes(&r, s->sigs[i].sig, GV_SIG_BYTES);
        for (uint32_t j = 0; j < i && !r.err; j++)
            if (!memcmp(s->sigs[j].pk, s->sigs[i].pk, GV_PK_BYTES))
                return mu_diag_set(d, MU_ERR_FORMAT, "proposal: signature %u repeats a key", i);
    }
    if (r.err || r.pos != n)
        return mu_diag_set(d, MU_ERR_FORMAT, "proposal: truncated or trailing bytes");
    return MU_OK;
}

int gv_chain_check_link(const gv_charter *p, const gv_signed *next, mu_diag *d)
{
    const gv_charter *c = &next->charter;
    uint8_t ph[GV_HASH_BYTES], ch[GV_HASH_BYTES];
    int rc = gv_charter_hash(p, ph, d);
    if (!rc)
        rc = gv_charter_hash(c, ch, d);
    if (rc)
        return rc;
    if (strcmp(c->federation, p->federation))
        return mu_diag_set(d, MU_ERR_PROTOCOL, "federation '%s' is not the parent's '%s'",
                           c->federation, p->federation);
    if (c->version != p->version + 1)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "follows version %llu",
                           (unsigned long long)p->version);
    if (memcmp(c->parent, ph, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL, "parent hash is not version %llu's hash",
                           (unsigned long long)p->version);
    unsigned mask = gv_charter_diff(p, c);
    if (!mask)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "changes nothing");
    uint32_t need = gv_charter_need(p, mask), have = gv_signed_count_hash(next, ch, p, 0);
    if (have < need) {
        int strictest = 0;
        for (int k = 0; k < GV_KIND_COUNT; k++)
            if ((mask & (1u << k)) && gv_quorum_need(p, (gv_kind)k) == need) {
                strictest = k;
                break;
            }
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "%s needs %u signatures of version %llu's voting "
                           "members, has %u",
                           gv_kind_name(strictest), need, (unsigned long long)p->version, have);
    }
    return MU_OK;
}

static int check_genesis(const gv_signed *g, mu_diag *d)
{
    const gv_charter *c = &g->charter;
    int rc = gv_charter_check(c, d);
    if (rc)
        return rc;
    if (c->version != 1)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "the first charter is not a genesis (version 1)");
    uint8_t h[GV_HASH_BYTES];
    rc = gv_charter_hash(c, h, d);
    if (rc)
        return rc;
    uint32_t have = gv_signed_count_hash(g, h, c, 1);
    if (have < c->n_members)
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "genesis needs all %u founding members' "
                           "signatures, has %u",
                           c->n_members, have);
    return MU_OK;
}

int gv_chain_verify(const gv_signed *chain, size_t n, size_t *bad, mu_diag *d)
{
    mu_diag why = {{0}};
    if (n == 0 || n > GV_CHAIN_MAX) {
        if (bad)
            *bad = 0;
        return mu_diag_set(d, MU_ERR_INVALID, "charter chain: %zu versions (1 .. %d)", n,
                           GV_CHAIN_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = i == 0 ? check_genesis(&chain[0], &why)
                        : gv_chain_check_link(&chain[i - 1].charter, &chain[i], &why);
        if (rc) {
            if (bad)
                *bad = i;
            return mu_diag_set(d, rc, "charter version %llu: %s",
                               (unsigned long long)chain[i].charter.version, why.msg);
        }
    }
    return MU_OK;
}

int gv_chain_encode(const gv_signed *chain, size_t n, uint8_t **out, size_t *len, mu_diag *d)
{
    if (n == 0 || n > GV_CHAIN_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "charter chain: %zu versions (1 .. %d)", n,
                           GV_CHAIN_MAX);
    gv_wbuf w = {0};
    gv_w_bytes(&w, GV_CHAIN_MAGIC, 4);
    gv_w_u16(&w, GV_SIGNED_FORMAT);
    gv_w_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *b;
        size_t bn;
        int rc = gv_signed_encode(&chain[i], &b, &bn, d);
        if (rc) {
            free(w.b);
            return rc;
        }
        gv_w_u32(&w, (uint32_t)bn);
        gv_w_bytes(&w, b, bn);
        free(b);
    }
    if (w.err) {
        free(w.b);
        return mu_diag_set(d, w.err, "charter chain: cannot encode");
    }
    *out = w.b;
    *len = w.len;
    return MU_OK;
}

int gv_chain_decode(gv_signed **chain, size_t *n, const uint8_t *b, size_t len, mu_diag *d)
{
    gv_rbuf r = {.b = b, .len = len};
    uint8_t magic[4];
    gv_r_bytes(&r, magic, 4);
    if (r.err || memcmp(magic, GV_CHAIN_MAGIC, 4))
        return mu_diag_set(d, MU_ERR_FORMAT, "charter chain: bad magic");
    if (gv_r_u16(&r) != GV_SIGNED_FORMAT)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "charter chain: unknown format version");
    uint32_t count = gv_r_u32(&r);
    if (r.err || count == 0 || count > GV_CHAIN_MAX)
        return mu_diag_set(d, MU_ERR_FORMAT, "charter chain: %u versions (1 .. %d)", count,
                           GV_CHAIN_MAX);
    /* Grown as versions decode, so a count the bytes cannot back allocates little. */
    gv_signed *c = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t bn = gv_r_u32(&r);
        mu_diag why = {{0}};
        if (MU_GROW(&c, &cap, (size_t)i + 1, 4) != MU_OK) {
            free(c);
            return mu_diag_set(d, MU_ERR_NOMEM, "charter chain: out of memory");
        }
        int rc = r.err || bn > len - r.pos ? MU_ERR_FORMAT
                                           : gv_signed_decode(&c[i], b + r.pos, bn, &why);
        if (rc) {
            free(c);
            return mu_diag_set(d, rc, "charter chain: entry %u: %s", i,
                               why.msg[0] ? why.msg : "truncated");
        }
        r.pos += bn;
    }
    if (r.pos != len) {
        free(c);
        return mu_diag_set(d, MU_ERR_FORMAT, "charter chain: %zu trailing bytes", len - r.pos);
    }
    *chain = c;
    *n = count;
    return MU_OK;
}
