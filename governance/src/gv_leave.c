/* gv_leave.c - a member's signed leave notice: its codec and its check against a charter. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gv_buf.h"
#include "gv_internal.h"

static const uint8_t GV_LEAVE_MAGIC[4] = {'M', 'U', 'G', 'Q'};

int gv_leave_encode(const gv_leave *l, uint8_t **out, size_t *len, mu_diag *d)
{
    if (!memchr(l->name, 0, sizeof l->name) || !l->name[0])
        return mu_diag_set(d, MU_ERR_INVALID, "leave notice: no member name");
    gv_wbuf w = {0};
    gv_w_bytes(&w, GV_LEAVE_MAGIC, 4);
    gv_w_u16(&w, GV_LEAVE_FORMAT);
    gv_w_bytes(&w, l->log_id, GV_HASH_BYTES);
    gv_w_str(&w, l->name);
    gv_w_bytes(&w, l->sig, GV_SIG_BYTES);
    if (w.err) {
        free(w.b);
        return mu_diag_set(d, w.err, "leave notice: cannot encode (%s)", mu_strerror(w.err));
    }
    *out = w.b;
    *len = w.len;
    return MU_OK;
}

int gv_leave_decode(gv_leave *l, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_rbuf r = {.b = b, .len = n};
    uint8_t magic[4];
    memset(l, 0, sizeof *l);
    if (n > GV_LEAVE_MAX_BYTES)
        return mu_diag_set(d, MU_ERR_FORMAT, "leave notice: %zu bytes (at most %d)", n,
                           GV_LEAVE_MAX_BYTES);
    gv_r_bytes(&r, magic, 4);
    if (r.err || memcmp(magic, GV_LEAVE_MAGIC, 4))
        return mu_diag_set(d, MU_ERR_FORMAT, "not a leave notice (bad magic)");
    uint16_t fmt = gv_r_u16(&r);
    if (!r.err && fmt != GV_LEAVE_FORMAT)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "leave notice: format %u (this build reads %d)",
                           fmt, GV_LEAVE_FORMAT);
    gv_r_bytes(&r, l->log_id, GV_HASH_BYTES);
    gv_r_str(&r, l->name, sizeof l->name);
    gv_r_bytes(&r, l->sig, GV_SIG_BYTES);
    if (r.err)
        return mu_diag_set(d, MU_ERR_FORMAT, "leave notice: truncated or malformed at byte %zu",
                           r.pos);
    if (r.pos != n)
        return mu_diag_set(d, MU_ERR_FORMAT, "leave notice: %zu trailing bytes", n - r.pos);
    return MU_OK;
}

int gv_leave_check(const gv_leave *l, const uint8_t log_id[GV_HASH_BYTES], const gv_charter *c,
                   mu_diag *d)
{
    if (sodium_memcmp(l->log_id, log_id, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "the leave notice of '%s' is for another federation (log id)", l->name);
    const gv_member *m = gv_charter_member(c, l->name);
    if (!m)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "the leave notice names '%s', who is not on the roster of charter "
                           "version %llu",
                           l->name, (unsigned long long)c->version);
    if (!gv_leave_sig_ok(l->sig, log_id, l->name, m->sign_pk))
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "the leave notice of '%s' is not signed by its roster key (charter "
                           "version %llu): a forged notice",
                           l->name, (unsigned long long)c->version);
    return MU_OK;
}
