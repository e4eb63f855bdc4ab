/* gv_charter.c - the charter's rules, canonical codec and hash. */
#include "gv_charter.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gv_buf.h"
#include "wi_org.h"

static const uint8_t GV_CHARTER_MAGIC[4] = {'M', 'U', 'G', 'C'};

static const char *const GV_KIND_NAMES[GV_KIND_COUNT] = {"admit", "change_config", "release",
                                                         "change_coordinator"};

const char *gv_kind_name(int kind)
{
    return kind >= 0 && kind < GV_KIND_COUNT ? GV_KIND_NAMES[kind] : "?";
}

int gv_kind_parse(const char *name)
{
    for (int k = 0; name && k < GV_KIND_COUNT; k++)
        if (!strcmp(name, GV_KIND_NAMES[k]))
            return k;
    return -1;
}

static int is_zero(const uint8_t *b, size_t n)
{
    return sodium_is_zero(b, n);
}

static int id_valid(const char *s)
{
    if (!s[0])
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return 0;
    return 1;
}

uint32_t gv_charter_voters(const gv_charter *c)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < c->n_members && i < GV_MEMBERS_MAX; i++)
        v += c->members[i].role == GV_ROLE_MEMBER;
    return v;
}

static int check_members(const gv_charter *c, mu_diag *d)
{
    if (c->n_members == 0 || c->n_members > GV_MEMBERS_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "members: %u entries (1 .. %d)", c->n_members,
                           GV_MEMBERS_MAX);
    for (uint32_t i = 0; i < c->n_members; i++) {
        const gv_member *m = &c->members[i];
        if (!memchr(m->name, 0, sizeof m->name) || !wi_org_name_valid(m->name))
            return mu_diag_set(d, MU_ERR_INVALID, "members[%u].name: not a valid org name", i);
        if (m->role != GV_ROLE_MEMBER && m->role != GV_ROLE_OBSERVER)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "members[%u].role: %u is neither member nor "
                               "observer",
                               i, m->role);
        if (is_zero(m->sign_pk, GV_PK_BYTES))
            return mu_diag_set(d, MU_ERR_INVALID, "members[%u].signing_key: all zero", i);
        if (i > 0 && strcmp(c->members[i - 1].name, m->name) >= 0)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "members[%u].name: '%s' not after '%s' "
                               "(sorted, unique)",
                               i, m->name, c->members[i - 1].name);
        for (uint32_t j = 0; j < i; j++)
            if (!memcmp(c->members[j].sign_pk, m->sign_pk, GV_PK_BYTES))
                return mu_diag_set(d, MU_ERR_INVALID, "members[%u].signing_key: also %s's", i,
                                   c->members[j].name);
    }
    if (gv_charter_voters(c) == 0)
        return mu_diag_set(d, MU_ERR_INVALID, "members: none with role member (nobody votes)");
    return MU_OK;
}

int gv_charter_check(const gv_charter *c, mu_diag *d)
{
    if (!memchr(c->federation, 0, sizeof c->federation) || !id_valid(c->federation))
        return mu_diag_set(d, MU_ERR_INVALID, "federation: empty or not printable ASCII");
    if (c->version == 0)
        return mu_diag_set(d, MU_ERR_INVALID, "version: 0 (genesis is 1)");
    if ((c->version == 1) != is_zero(c->parent, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_INVALID, "parent: %s",
                           c->version == 1 ? "genesis has no parent" : "missing for version > 1");
    if (is_zero(c->coord_pk, GV_PK_BYTES))
        return mu_diag_set(d, MU_ERR_INVALID, "coordinator.key: all zero");
    if (!memchr(c->coord_addr, 0, sizeof c->coord_addr) || !id_valid(c->coord_addr))
        return mu_diag_set(d, MU_ERR_INVALID, "coordinator.address: empty or not printable");
    int rc = check_members(c, d);
    if (rc)
        return rc;
    uint32_t voters = gv_charter_voters(c);
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        const gv_quorum *q = &c->quorum[k];
        if (q->k == 0 && q->n == 0)
            continue;
        if (q->k == 0 || q->k > q->n || q->n != voters)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "rules.%s: %u-of-%u with %u voting members "
                               "(n must be the voting members, 1 <= k <= n)",
                               gv_kind_name(k), q->k, q->n, voters);
    }
    if (c->privacy.min_cohort == 0 || c->privacy.min_cohort > GV_MEMBERS_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "privacy.min_cohort: %u (1 .. %d)",
                           c->privacy.min_cohort, GV_MEMBERS_MAX);
    if (c->privacy.secagg_threshold > 1000)
        return mu_diag_set(d, MU_ERR_INVALID, "privacy.secagg_threshold: %u per mille (> 1000)",
                           c->privacy.secagg_threshold);
    return MU_OK;
}

int gv_charter_encode(const gv_charter *c, uint8_t **out, size_t *len, mu_diag *d)
{
    int rc = gv_charter_check(c, d);
    if (rc)
        return rc;
    gv_wbuf w = {0};
    int pinned = !is_zero(c->coord_fpr, GV_FPR_BYTES);
    gv_w_bytes(&w, GV_CHARTER_MAGIC, 4);
    gv_w_u16(&w, pinned ? GV_CHARTER_FORMAT_COORD_FPR : GV_CHARTER_FORMAT);
    gv_w_str(&w, c->federation);
    gv_w_u64(&w, c->version);
    gv_w_bytes(&w, c->parent, GV_HASH_BYTES);
    gv_w_bytes(&w, c->coord_pk, GV_PK_BYTES);
    gv_w_str(&w, c->coord_addr);
    if (pinned)
        gv_w_bytes(&w, c->coord_fpr, GV_FPR_BYTES);
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        gv_w_u32(&w, c->quorum[k].k);
        gv_w_u32(&w, c->quorum[k].n);
    }
    gv_w_u32(&w, c->privacy.min_cohort);
    gv_w_u32(&w, c->privacy.secagg_threshold);
    gv_w_u32(&w, c->privacy.dp_epsilon_milli);
    gv_w_bytes(&w, c->training_hash, GV_HASH_BYTES);
    gv_w_u16(&w, (uint16_t)c->n_members);
    for (uint32_t i = 0; i < c->n_members; i++) {
        gv_w_str(&w, c->members[i].name);
        gv_w_bytes(&w, c->members[i].sign_pk, GV_PK_BYTES);
        gv_w_bytes(&w, c->members[i].tls_fpr, GV_FPR_BYTES);
        gv_w_u8(&w, c->members[i].role);
    }
    if (w.err) {
        free(w.b);
        return mu_diag_set(d, w.err, "charter: cannot encode (%s)", mu_strerror(w.err));
    }
    *out = w.b;
    *len = w.len;
    return MU_OK;
}

int gv_charter_decode(gv_charter *c, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_rbuf r = {.b = b, .len = n};
    uint8_t magic[4];
    memset(c, 0, sizeof *c);
    gv_r_bytes(&r, magic, 4);
    if (r.err || memcmp(magic, GV_CHARTER_MAGIC, 4))
        return mu_diag_set(d, MU_ERR_FORMAT, "charter: not a mutual charter (bad magic)");
    uint16_t fmt = gv_r_u16(&r);
    if (!r.err && fmt != GV_CHARTER_FORMAT && fmt != GV_CHARTER_FORMAT_COORD_FPR)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "charter: format %u (this build reads %d, %d)",
                           fmt, GV_CHARTER_FORMAT, GV_CHARTER_FORMAT_COORD_FPR);
    gv_r_str(&r, c->federation, sizeof c->federation);
    c->version = gv_r_u64(&r);
    gv_r_bytes(&r, c->parent, GV_HASH_BYTES);
    gv_r_bytes(&r, c->coord_pk, GV_PK_BYTES);
    gv_r_str(&r, c->coord_addr, sizeof c->coord_addr);
    if (fmt == GV_CHARTER_FORMAT_COORD_FPR) {
        gv_r_bytes(&r, c->coord_fpr, GV_FPR_BYTES);
        if (!r.err && is_zero(c->coord_fpr, GV_FPR_BYTES)) /* one encoding per charter */
            return mu_diag_set(d, MU_ERR_FORMAT,
                               "charter: format %d with an all-zero coordinator fingerprint",
                               GV_CHARTER_FORMAT_COORD_FPR);
    }
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        c->quorum[k].k = gv_r_u32(&r);
        c->quorum[k].n = gv_r_u32(&r);
    }
    c->privacy.min_cohort = gv_r_u32(&r);
    c->privacy.secagg_threshold = gv_r_u32(&r);
    c->privacy.dp_epsilon_milli = gv_r_u32(&r);
    gv_r_bytes(&r, c->training_hash, GV_HASH_BYTES);
    uint16_t nm = gv_r_u16(&r);
    if (!r.err && (nm == 0 || nm > GV_MEMBERS_MAX))
        return mu_diag_set(d, MU_ERR_FORMAT, "charter: %u members (1 .. %d)", nm, GV_MEMBERS_MAX);
    for (uint32_t i = 0; i < nm && !r.err; i++) {
        gv_r_str(&r, c->members[i].name, sizeof c->members[i].name);
        gv_r_bytes(&r, c->members[i].sign_pk, GV_PK_BYTES);
        gv_r_bytes(&r, c->members[i].tls_fpr, GV_FPR_BYTES);
        c->members[i].role = gv_r_u8(&r);
    }
    c->n_members = nm;
    if (r.err)
        return mu_diag_set(d, MU_ERR_FORMAT, "charter: truncated or malformed at byte %zu of %zu",
                           r.pos, n);
    if (r.pos != n)
        return mu_diag_set(d, MU_ERR_FORMAT, "charter: %zu trailing bytes", n - r.pos);
    return gv_charter_check(c, d);
}

int gv_charter_hash(const gv_charter *c, uint8_t out[GV_HASH_BYTES], mu_diag *d)
{
    uint8_t *b;
    size_t n;
    int rc = gv_charter_encode(c, &b, &n, d);
    if (rc)
        return rc;
    crypto_generichash(out, GV_HASH_BYTES, b, n, NULL, 0);
    free(b);
    return MU_OK;
}

uint32_t gv_quorum_need(const gv_charter *c, gv_kind kind)
{
    uint32_t voters = gv_charter_voters(c);
    const gv_quorum *q = &c->quorum[kind];
    if (q->k == 0)
        return voters / 2 + 1;
    return q->k;
}

const gv_member *gv_charter_member(const gv_charter *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (!strcmp(c->members[i].name, name))
            return &c->members[i];
    return NULL;
}

const gv_member *gv_charter_member_by_key(const gv_charter *c, const uint8_t pk[GV_PK_BYTES])
{
    for (uint32_t i = 0; i < c->n_members; i++)
        if (!memcmp(c->members[i].sign_pk, pk, GV_PK_BYTES))
            return &c->members[i];
    return NULL;
}

static int roster_differs(const gv_charter *a, const gv_charter *b)
{
    if (a->n_members != b->n_members)
        return 1;
    for (uint32_t i = 0; i < a->n_members; i++) {
        const gv_member *x = &a->members[i], *y = &b->members[i];
        if (strcmp(x->name, y->name) || x->role != y->role ||
            memcmp(x->sign_pk, y->sign_pk, GV_PK_BYTES) ||
            memcmp(x->tls_fpr, y->tls_fpr, GV_FPR_BYTES))
            return 1;
    }
    return 0;
}

unsigned gv_charter_diff(const gv_charter *p, const gv_charter *c)
{
    unsigned mask = 0;
    if (roster_differs(p, c))
        mask |= 1u << GV_KIND_ADMIT;
    if (memcmp(p->training_hash, c->training_hash, GV_HASH_BYTES) ||
        memcmp(&p->privacy, &c->privacy, sizeof p->privacy))
        mask |= 1u << GV_KIND_CONFIG;
    if (memcmp(p->coord_pk, c->coord_pk, GV_PK_BYTES) || strcmp(p->coord_addr, c->coord_addr) ||
        memcmp(p->coord_fpr, c->coord_fpr, GV_FPR_BYTES))
        mask |= 1u << GV_KIND_COORDINATOR;
    /* The n of a k-of-n follows the roster; only a change of k or of majority is a rule change. */
    for (int k = 0; k < GV_KIND_COUNT; k++)
        if (p->quorum[k].k != c->quorum[k].k)
            mask |= (1u << GV_KIND_COUNT) - 1;
    return mask;
}

uint32_t gv_charter_need(const gv_charter *parent, unsigned mask)
{
    uint32_t need = 0;
    for (int k = 0; k < GV_KIND_COUNT; k++)
        if (mask & (1u << k)) {
            uint32_t q = gv_quorum_need(parent, (gv_kind)k);
            need = q > need ? q : need;
        }
    return need;
}
