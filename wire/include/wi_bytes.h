/* wi_bytes.h - little-endian integers and hex text, for every module that reads or writes
 * either. Hex goes through libsodium (sodium_bin2hex / sodium_hex2bin). */
#ifndef WI_BYTES_H
#define WI_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline void wi_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void wi_put_le64(uint8_t *p, uint64_t v)
{
    wi_put_le32(p, (uint32_t)v);
    wi_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t wi_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t wi_le64(const uint8_t *p)
{
    return (uint64_t)wi_le32(p) | (uint64_t)wi_le32(p + 4) << 32;
}

/* Writes the 2n lower-case hex digits of b[0..n) and a NUL into out (out_cap >= 2n + 1, else
 * MU_ERR_INVALID and out untouched). MU_OK. */
int wi_hex_encode(char *out, size_t out_cap, const uint8_t *b, size_t n);

/* Decodes exactly 2n hex digits (either case, nothing else: no spaces, no prefix) from the
 * NUL-terminated `hex` into out[0..n). MU_OK, or MU_ERR_FORMAT (wrong length or a non-hex
 * character) with out zeroed. */
int wi_hex_decode(uint8_t *out, size_t n, const char *hex);

#endif
