/* gv_buf.h - the bounded byte writer and reader behind every governance encoding. Private.
 * A writer that runs out of room or memory stays failed (err set) and ignores later puts; a
 * reader that runs past the end stays failed and returns zeros, so codecs check once. */
#ifndef GV_BUF_H
#define GV_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *b;
    size_t len, cap;
    int err;
} gv_wbuf;

typedef struct {
    const uint8_t *b;
    size_t len, pos;
    int err;
} gv_rbuf;

void gv_w_bytes(gv_wbuf *w, const void *p, size_t n);
void gv_w_u8(gv_wbuf *w, uint8_t v);
void gv_w_u16(gv_wbuf *w, uint16_t v);
void gv_w_u32(gv_wbuf *w, uint32_t v);
void gv_w_u64(gv_wbuf *w, uint64_t v);
/* A string as u16 length + bytes (no NUL). */
void gv_w_str(gv_wbuf *w, const char *s);

void gv_r_bytes(gv_rbuf *r, void *p, size_t n);
uint8_t gv_r_u8(gv_rbuf *r);
uint16_t gv_r_u16(gv_rbuf *r);
uint32_t gv_r_u32(gv_rbuf *r);
uint64_t gv_r_u64(gv_rbuf *r);
/* Reads a u16-length string into out[cap]: fails (err) if it is empty, cap or more bytes long,
 * or holds a NUL. */
void gv_r_str(gv_rbuf *r, char *out, size_t cap);

#endif
