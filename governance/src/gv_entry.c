/* gv_entry.c - the audit-log entry codec and the signatures over entries, releases, leaves. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gv_buf.h"
#include "gv_internal.h"
#include "gv_log.h"
#include "wi_org.h"
#include "wi_stage.h"

static const char GV_ENTRY_DOMAIN[] = "mutual audit v1";
static const char GV_RELEASE_DOMAIN[] = "mutual release v1";
static const char GV_LEAVE_DOMAIN[] = "mutual leave v1";

static const char *const GV_ENTRY_NAMES[] = {"?",       "charter", "admission", "round",
                                             "release", "restart", "leave"};

const char *gv_entry_kind_name(int kind)
{
    return kind >= GV_ENTRY_CHARTER && kind <= GV_ENTRY_LEAVE ? GV_ENTRY_NAMES[kind] : "?";
}

static int name_ok(const char *s)
{
    return memchr(s, 0, GV_NAME_MAX) && wi_org_name_valid(s);
}

static uint8_t format_of(const gv_entry *e)
{
    return e->format ? e->format : GV_ENTRY_FORMAT;
}

static int check_fields(const gv_entry *e, mu_diag *d)
{
    if (format_of(e) != GV_ENTRY_FORMAT_V1 && format_of(e) != GV_ENTRY_FORMAT)
        return mu_diag_set(d, MU_ERR_INVALID, "entry: format %u unknown", e->format);
    if (e->kind < GV_ENTRY_CHARTER || e->kind > GV_ENTRY_LEAVE)
        return mu_diag_set(d, MU_ERR_INVALID, "entry: kind %u unknown", e->kind);
    if ((e->kind == GV_ENTRY_ADMISSION || e->kind == GV_ENTRY_LEAVE) && !name_ok(e->member))
        return mu_diag_set(d, MU_ERR_INVALID, "entry: member is not a valid org name");
    if (e->kind == GV_ENTRY_ROUND) {
        if (e->n_cohort > GV_COHORT_MAX || e->n_dropped > e->n_cohort)
            return mu_diag_set(d, MU_ERR_INVALID, "entry: cohort %u, dropped %u", e->n_cohort,
                               e->n_dropped);
        for (uint32_t i = 0; i < e->n_cohort; i++)
            if (!name_ok(e->cohort[i]))
                return mu_diag_set(d, MU_ERR_INVALID, "entry: cohort[%u] not an org name", i);
        for (uint32_t i = 0; i < e->n_dropped; i++)
            if (!name_ok(e->dropped[i].name) || e->dropped[i].stage > WI_STAGE_EVAL)
                return mu_diag_set(d, MU_ERR_INVALID, "entry: dropped[%u] bad name or stage", i);
        if (!memchr(e->metrics, 0, sizeof e->metrics))
            return mu_diag_set(d, MU_ERR_INVALID, "entry: metrics longer than %d bytes",
                               GV_METRICS_MAX - 1);
    }
    if (e->kind == GV_ENTRY_RELEASE && e->n_sigs > GV_MEMBERS_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "entry: %u release signatures", e->n_sigs);
    return MU_OK;
}

/* Everything but the signature; the signed part. */
static void put_body(gv_wbuf *w, const gv_entry *e)
{
    gv_w_u8(w, format_of(e));
    gv_w_u8(w, e->kind);
    gv_w_u64(w, e->index);
    gv_w_u64(w, e->time);
    gv_w_bytes(w, e->prev, GV_HASH_BYTES);
    switch (e->kind) {
    case GV_ENTRY_CHARTER:
        gv_w_u64(w, e->charter_version);
        gv_w_bytes(w, e->charter_hash, GV_HASH_BYTES);
        break;
    case GV_ENTRY_ADMISSION:
        gv_w_str(w, e->member);
        gv_w_bytes(w, e->member_pk, GV_PK_BYTES);
        break;
    case GV_ENTRY_ROUND:
        gv_w_u64(w, e->round);
        gv_w_bytes(w, e->config_hash, GV_HASH_BYTES);
        gv_w_bytes(w, e->aggregate_hash, GV_HASH_BYTES);
        gv_w_bytes(w, e->global_hash, GV_HASH_BYTES);
        if (format_of(e) >= GV_ENTRY_FORMAT)
            gv_w_bytes(w, e->state_hash, GV_HASH_BYTES);
        gv_w_u16(w, (uint16_t)e->n_cohort);
        for (uint32_t i = 0; i < e->n_cohort; i++)
            gv_w_str(w, e->cohort[i]);
        gv_w_u16(w, (uint16_t)e->n_dropped);
        for (uint32_t i = 0; i < e->n_dropped; i++) {
            gv_w_str(w, e->dropped[i].name);
            gv_w_u8(w, e->dropped[i].stage);
        }
        gv_w_u16(w, (uint16_t)strlen(e->metrics));
        gv_w_bytes(w, e->metrics, strlen(e->metrics));
        break;
    case GV_ENTRY_RELEASE:
        gv_w_u64(w, e->round);
        gv_w_bytes(w, e->global_hash, GV_HASH_BYTES);
        gv_w_u16(w, (uint16_t)e->n_sigs);
        for (uint32_t i = 0; i < e->n_sigs; i++) {
            gv_w_bytes(w, e->sigs[i].pk, GV_PK_BYTES);
            gv_w_bytes(w, e->sigs[i].sig, GV_SIG_BYTES);
        }
        break;
    case GV_ENTRY_RESTART:
        gv_w_u64(w, e->round);
        gv_w_u64(w, e->instance);
        break;
    case GV_ENTRY_LEAVE:
        gv_w_str(w, e->member);
        gv_w_bytes(w, e->member_sig, GV_SIG_BYTES);
        break;
    }
}

static int encode(const gv_entry *e, int with_sig, uint8_t **out, size_t *len, mu_diag *d)
{
    int rc = check_fields(e, d);
    if (rc)
        return rc;
    gv_wbuf w = {0};
    put_body(&w, e);
    if (with_sig)
        gv_w_bytes(&w, e->sig, GV_SIG_BYTES);
    if (w.err || w.len > GV_ENTRY_MAX_BYTES) {
        free(w.b);
        return mu_diag_set(d, w.err ? w.err : MU_ERR_INVALID, "entry: cannot encode");
    }
    *out = w.b;
    *len = w.len;
    return MU_OK;
}

int gv_entry_encode(const gv_entry *e, uint8_t **out, size_t *len, mu_diag *d)
{
    return encode(e, 1, out, len, d);
}

static void get_body(gv_rbuf *r, gv_entry *e)
{
    switch (e->kind) {
    case GV_ENTRY_CHARTER:
        e->charter_version = gv_r_u64(r);
        gv_r_bytes(r, e->charter_hash, GV_HASH_BYTES);
        break;
    case GV_ENTRY_ADMISSION:
        gv_r_str(r, e->member, sizeof e->member);
        gv_r_bytes(r, e->member_pk, GV_PK_BYTES);
        break;
    case GV_ENTRY_ROUND:
        e->round = gv_r_u64(r);
        gv_r_bytes(r, e->config_hash, GV_HASH_BYTES);
        gv_r_bytes(r, e->aggregate_hash, GV_HASH_BYTES);
        gv_r_bytes(r, e->global_hash, GV_HASH_BYTES);
        if (e->format >= GV_ENTRY_FORMAT)
            gv_r_bytes(r, e->state_hash, GV_HASH_BYTES);
        e->n_cohort = gv_r_u16(r);
        if (e->n_cohort > GV_COHORT_MAX)
            r->err = MU_ERR_FORMAT;
        for (uint32_t i = 0; i < e->n_cohort && !r->err; i++)
            gv_r_str(r, e->cohort[i], GV_NAME_MAX);
        e->n_dropped = gv_r_u16(r);
        if (e->n_dropped > e->n_cohort)
            r->err = MU_ERR_FORMAT;
        for (uint32_t i = 0; i < e->n_dropped && !r->err; i++) {
            gv_r_str(r, e->dropped[i].name, GV_NAME_MAX);
            e->dropped[i].stage = gv_r_u8(r);
        }
        uint16_t ml = gv_r_u16(r);
        if (ml >= GV_METRICS_MAX)
            r->err = MU_ERR_FORMAT;
        else
            gv_r_bytes(r, e->metrics, ml);
        if (!r->err && memchr(e->metrics, 0, ml))
            r->err = MU_ERR_FORMAT;
        break;
    case GV_ENTRY_RELEASE:
        e->round = gv_r_u64(r);
        gv_r_bytes(r, e->global_hash, GV_HASH_BYTES);
        e->n_sigs = gv_r_u16(r);
        if (e->n_sigs > GV_MEMBERS_MAX)
            r->err = MU_ERR_FORMAT;
        for (uint32_t i = 0; i < e->n_sigs && !r->err; i++) {
            gv_r_bytes(r, e->sigs[i].pk, GV_PK_BYTES);
            gv_r_bytes(r, e->sigs[i].sig, GV_SIG_BYTES);
        }
        break;
    case GV_ENTRY_RESTART:
        e->round = gv_r_u64(r);
        e->instance = gv_r_u64(r);
        break;
    case GV_ENTRY_LEAVE:
        gv_r_str(r, e->member, sizeof e->member);
        gv_r_bytes(r, e->member_sig, GV_SIG_BYTES);
        break;
    default:
        r->err = MU_ERR_FORMAT;
    }
}

int gv_entry_decode(gv_entry *e, const uint8_t *b, size_t n, mu_diag *d)
{
    memset(e, 0, sizeof *e);
    if (n > GV_ENTRY_MAX_BYTES)
        return mu_diag_set(d, MU_ERR_FORMAT, "entry: %zu bytes (at most %d)", n,
                           GV_ENTRY_MAX_BYTES);
    gv_rbuf r = {.b = b, .len = n};
    uint8_t fmt = gv_r_u8(&r);
    if (!r.err && fmt != GV_ENTRY_FORMAT_V1 && fmt != GV_ENTRY_FORMAT)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "entry: format %u (this build reads %d..%d)", fmt,
                           GV_ENTRY_FORMAT_V1, GV_ENTRY_FORMAT);
    e->format = fmt;
    e->kind = gv_r_u8(&r);
    e->index = gv_r_u64(&r);
    e->time = gv_r_u64(&r);
    gv_r_bytes(&r, e->prev, GV_HASH_BYTES);
    if (!r.err)
        get_body(&r, e);
    gv_r_bytes(&r, e->sig, GV_SIG_BYTES);
    if (r.err)
        return mu_diag_set(d, MU_ERR_FORMAT, "entry: truncated or malformed at byte %zu of %zu",
                           r.pos, n);
    if (r.pos != n)
        return mu_diag_set(d, MU_ERR_FORMAT, "entry: %zu trailing bytes", n - r.pos);
    int rc = check_fields(e, d);
    return rc ? MU_ERR_FORMAT : MU_OK;
}

int gv_entry_signed_bytes(const gv_entry *e, uint8_t **out, size_t *len, mu_diag *d)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = encode(e, 0, &b, &n, d);
    if (rc)
        return rc;
    uint8_t *m = malloc(sizeof GV_ENTRY_DOMAIN + n);
    if (!m) {
        free(b);
        return mu_diag_set(d, MU_ERR_NOMEM, "entry: out of memory");
    }
    memcpy(m, GV_ENTRY_DOMAIN, sizeof GV_ENTRY_DOMAIN);
    memcpy(m + sizeof GV_ENTRY_DOMAIN, b, n);
    free(b);
    *out = m;
    *len = sizeof GV_ENTRY_DOMAIN + n;
    return MU_OK;
}

int gv_entry_sign(gv_entry *e, const uint8_t sk[GV_SK_BYTES], mu_diag *d)
{
    uint8_t *m = NULL;
    size_t n = 0;
    int rc = gv_entry_signed_bytes(e, &m, &n, d);
    if (rc)
        return rc;
    crypto_sign_detached(e->sig, NULL, m, n, sk);
    free(m);
    return MU_OK;
}

int gv_entry_sig_ok(const gv_entry *e, const uint8_t pk[GV_PK_BYTES])
{
    uint8_t *m = NULL;
    size_t n = 0;
    int rc = gv_entry_signed_bytes(e, &m, &n, NULL);
    if (rc)
        return rc;
    int ok = crypto_sign_verify_detached(e->sig, m, n, pk) == 0;
    free(m);
    return ok;
}

#define RELEASE_MSG_LEN (sizeof GV_RELEASE_DOMAIN + GV_HASH_BYTES + 8 + GV_HASH_BYTES)

static void release_msg(uint8_t m[RELEASE_MSG_LEN], const uint8_t log_id[GV_HASH_BYTES],
                        uint64_t round, const uint8_t global[GV_HASH_BYTES])
{
    uint8_t *p = m;
    memcpy(p, GV_RELEASE_DOMAIN, sizeof GV_RELEASE_DOMAIN);
    p += sizeof GV_RELEASE_DOMAIN;
    memcpy(p, log_id, GV_HASH_BYTES);
    p += GV_HASH_BYTES;
    mu_put_le64(p, round);
    memcpy(p + 8, global, GV_HASH_BYTES);
}

void gv_release_sign(gv_sig *out, const uint8_t log_id[GV_HASH_BYTES], uint64_t round,
                     const uint8_t global[GV_HASH_BYTES], const uint8_t sk[GV_SK_BYTES])
{
    uint8_t m[RELEASE_MSG_LEN];
    release_msg(m, log_id, round, global);
    memcpy(out->pk, sk + 32, GV_PK_BYTES);
    crypto_sign_detached(out->sig, NULL, m, sizeof m, sk);
}

int gv_release_sig_ok(const gv_sig *s, const uint8_t log_id[GV_HASH_BYTES], uint64_t round,
                      const uint8_t global[GV_HASH_BYTES])
{
    uint8_t m[RELEASE_MSG_LEN];
    release_msg(m, log_id, round, global);
    return crypto_sign_verify_detached(s->sig, m, sizeof m, s->pk) == 0;
}

#define LEAVE_MSG_MAX (sizeof GV_LEAVE_DOMAIN + GV_HASH_BYTES + GV_NAME_MAX)

static size_t leave_msg(uint8_t m[LEAVE_MSG_MAX], const uint8_t log_id[GV_HASH_BYTES],
                        const char *name)
{
    size_t nl = strnlen(name, GV_NAME_MAX - 1);
    memcpy(m, GV_LEAVE_DOMAIN, sizeof GV_LEAVE_DOMAIN);
    memcpy(m + sizeof GV_LEAVE_DOMAIN, log_id, GV_HASH_BYTES);
    memcpy(m + sizeof GV_LEAVE_DOMAIN + GV_HASH_BYTES, name, nl);
    return sizeof GV_LEAVE_DOMAIN + GV_HASH_BYTES + nl;
}

void gv_leave_sign(uint8_t sig[GV_SIG_BYTES], const uint8_t log_id[GV_HASH_BYTES], const char *name,
                   const uint8_t sk[GV_SK_BYTES])
{
    uint8_t m[LEAVE_MSG_MAX];
    size_t n = leave_msg(m, log_id, name);
    crypto_sign_detached(sig, NULL, m, n, sk);
}

int gv_leave_sig_ok(const uint8_t sig[GV_SIG_BYTES], const uint8_t log_id[GV_HASH_BYTES],
                    const char *name, const uint8_t pk[GV_PK_BYTES])
{
    uint8_t m[LEAVE_MSG_MAX];
    size_t n = leave_msg(m, log_id, name);
    return crypto_sign_verify_detached(sig, m, n, pk) == 0;
}

int gv_entry_prev(const uint8_t *b, size_t n, uint8_t prev[GV_HASH_BYTES])
{
    gv_rbuf r = {.b = b, .len = n};
    (void)gv_r_u8(&r);  /* format */
    (void)gv_r_u8(&r);  /* kind */
    (void)gv_r_u64(&r); /* index */
    (void)gv_r_u64(&r); /* time */
    gv_r_bytes(&r, prev, GV_HASH_BYTES);
    return r.err ? MU_ERR_FORMAT : MU_OK;
}
