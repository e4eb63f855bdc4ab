/* gv_buf.c - bounded, growing little-endian writer and strict reader. */
#include "gv_buf.h"

#include <stdlib.h>
#include <string.h>

#include "mu_err.h"
#include "mu_grow.h"
#include "wi_bytes.h"

#define GV_WBUF_LIMIT (1u << 30) /* no governance object comes near a GiB */

void gv_w_bytes(gv_wbuf *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > GV_WBUF_LIMIT - w->len) {
        w->err = MU_ERR_INVALID;
        return;
    }
    if (MU_GROW(&w->b, &w->cap, w->len + n, 256) != MU_OK) {
        w->err = MU_ERR_NOMEM;
        return;
    }
    if (n)
        memcpy(w->b + w->len, p, n);
    w->len += n;
}

void gv_w_u8(gv_wbuf *w, uint8_t v)
{
    gv_w_bytes(w, &v, 1);
}

void gv_w_u16(gv_wbuf *w, uint16_t v)
{
    uint8_t b[2];
    mu_put_le16(b, v);
    gv_w_bytes(w, b, 2);
}

void gv_w_u32(gv_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    mu_put_le32(b, v);
    gv_w_bytes(w, b, 4);
}

void gv_w_u64(gv_wbuf *w, uint64_t v)
{
    uint8_t b[8];
    mu_put_le64(b, v);
    gv_w_bytes(w, b, 8);
}

void gv_w_str(gv_wbuf *w, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX) {
        w->err = MU_ERR_INVALID;
        return;
    }
    gv_w_u16(w, (uint16_t)n);
    gv_w_bytes(w, s, n);
}

void gv_r_bytes(gv_rbuf *r, void *p, size_t n)
{
    if (r->err || n > r->len - r->pos) {
        r->err = MU_ERR_FORMAT;
        memset(p, 0, n);
        return;
    }
    memcpy(p, r->b + r->pos, n);
    r->pos += n;
}

uint8_t gv_r_u8(gv_rbuf *r)
{
    uint8_t v;
    gv_r_bytes(r, &v, 1);
    return v;
}

uint16_t gv_r_u16(gv_rbuf *r)
{
    uint8_t b[2];
    gv_r_bytes(r, b, 2);
    return mu_le16(b);
}

uint32_t gv_r_u32(gv_rbuf *r)
{
    uint8_t b[4];
    gv_r_bytes(r, b, 4);
    return mu_le32(b);
}

uint64_t gv_r_u64(gv_rbuf *r)
{
    uint8_t b[8];
    gv_r_bytes(r, b, 8);
    return mu_le64(b);
}

void gv_r_str(gv_rbuf *r, char *out, size_t cap)
{
    size_t n = gv_r_u16(r);
    out[0] = '\0';
    if (r->err)
        return;
    if (n == 0 || n >= cap || n > r->len - r->pos || memchr(r->b + r->pos, 0, n)) {
        r->err = MU_ERR_FORMAT;
        return;
    }
    memcpy(out, r->b + r->pos, n);
    out[n] = '\0';
    r->pos += n;
}
