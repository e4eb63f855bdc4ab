/* sa_pack.c - b-bit packing of the masked vector, LSB first. */
#include <string.h>

#include "sa_internal.h"

size_t sa_pack_len(size_t d, uint32_t bits)
{
    return (size_t)(((uint64_t)d * bits + 7) / 8);
}

/* Both directions move 32-bit words through a 64-bit bit buffer (at most 63 bits held),
 * so each value costs a shift, a mask and an add; only the last < 4 bytes go one by one. */
int sa_pack(uint8_t *out, size_t out_len, const uint32_t *v, size_t d, uint32_t bits)
{
    if (bits < 1 || bits > 32 || out_len != sa_pack_len(d, bits))
        return MU_ERR_INVALID;
    if (bits == 32) {
        memcpy(out, v, d * 4);
        return MU_OK;
    }
    uint64_t mask = ((uint64_t)1 << bits) - 1, acc = 0;
    unsigned have = 0;
    size_t o = 0;
    for (size_t i = 0; i < d; i++) {
        acc |= ((uint64_t)v[i] & mask) << have;
        have += bits;
        if (have >= 32) {
            uint32_t w = (uint32_t)acc;
            memcpy(out + o, &w, 4);
            o += 4;
            acc >>= 32;
            have -= 32;
        }
    }
    while (have > 0) {
        out[o++] = (uint8_t)acc;
        acc >>= 8;
        have = have > 8 ? have - 8 : 0;
    }
    return MU_OK;
}

int sa_unpack_add(uint32_t *acc, size_t d, const uint8_t *in, size_t in_len, uint32_t bits)
{
    if (bits < 1 || bits > 32 || in_len != sa_pack_len(d, bits))
        return MU_ERR_INVALID;
    if (bits == 32) {
        for (size_t i = 0; i < d; i++) {
            uint32_t x;
            memcpy(&x, in + 4 * i, 4);
            acc[i] += x;
        }
        return MU_OK;
    }
    uint64_t mask = ((uint64_t)1 << bits) - 1, buf = 0;
    unsigned have = 0;
    size_t o = 0;
    for (size_t i = 0; i < d; i++) {
        if (have < bits) {
            if (o + 4 <= in_len) {
                uint32_t w;
                memcpy(&w, in + o, 4);
                buf |= (uint64_t)w << have;
                o += 4;
                have += 32;
            } else {
                while (have < bits) {
                    buf |= (uint64_t)in[o++] << have;
                    have += 8;
                }
            }
        }
        acc[i] += (uint32_t)(buf & mask);
        buf >>= bits;
        have -= bits;
    }
    return MU_OK;
}
