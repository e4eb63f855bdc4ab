/* wi_bytes.c - hex text through libsodium. */
#include "wi_bytes.h"

#include <sodium.h>
#include <string.h>

#include "mu_err.h"

int wi_hex_encode(char *out, size_t out_cap, const uint8_t *b, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2 || out_cap < 2 * n + 1)
        return MU_ERR_INVALID;
    sodium_bin2hex(out, out_cap, b, n);
    return MU_OK;
}

int wi_hex_decode(uint8_t *out, size_t n, const char *hex)
{
    size_t len = strlen(hex), got = 0;
    const char *end = NULL;
    if (len != 2 * n || sodium_hex2bin(out, n, hex, len, NULL, &got, &end) != 0 || got != n ||
        end != hex + len) {
        memset(out, 0, n);
        return MU_ERR_FORMAT;
    }
    return MU_OK;
}
