/* mu_bytes.h - little-endian integers in byte buffers, the one copy for every module (wire,
 * governance, secure_agg, privacy, train, HDF5 checksums). Header-only, no I/O: part of
 * mu_base, so a sans-IO core can use it. Each reads or writes exactly 2, 4 or 8 bytes at p,
 * whatever the host's byte order and alignment. */
#ifndef MU_BYTES_H
#define MU_BYTES_H

#include <stdint.h>

static inline void mu_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void mu_put_le32(uint8_t *p, uint32_t v)
{
    mu_put_le16(p, (uint16_t)v);
    mu_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void mu_put_le64(uint8_t *p, uint64_t v)
{
    mu_put_le32(p, (uint32_t)v);
    mu_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t mu_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t mu_le32(const uint8_t *p)
{
    return (uint32_t)mu_le16(p) | (uint32_t)mu_le16(p + 2) << 16;
}

static inline uint64_t mu_le64(const uint8_t *p)
{
    return (uint64_t)mu_le32(p) | (uint64_t)mu_le32(p + 4) << 32;
}

#endif
