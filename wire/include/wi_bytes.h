/* wi_bytes.h - hex text, for every module that reads or writes it, through libsodium
 * (sodium_bin2hex / sodium_hex2bin); and, from mu_base's mu_bytes.h, little-endian integers. */
#ifndef WI_BYTES_H
#define WI_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "mu_bytes.h"

/* Writes the 2n lower-case hex digits of b[0..n) and a NUL into out (out_cap >= 2n + 1, else
 * MU_ERR_INVALID and out untouched). MU_OK. */
int wi_hex_encode(char *out, size_t out_cap, const uint8_t *b, size_t n);

/* Decodes exactly 2n hex digits (either case, nothing else: no spaces, no prefix) from the
 * NUL-terminated `hex` into out[0..n). MU_OK, or MU_ERR_FORMAT (wrong length or a non-hex
 * character) with out zeroed. */
int wi_hex_decode(uint8_t *out, size_t n, const char *hex);

#endif
