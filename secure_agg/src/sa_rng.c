/* sa_rng.c - injectable randomness: system randomness or a seeded ChaCha20 stream. */
#include <sodium.h>
#include <string.h>

#include "sa_internal.h"

void sa_rng_fill(const sa_rng *rng, void *buf, size_t len)
{
    if (rng && rng->fill)
        rng->fill(rng->ctx, buf, len);
    else
        randombytes_buf(buf, len);
}

void sa_rng_seeded_init(sa_rng_seeded *st, const uint8_t seed[32])
{
    memcpy(st->key, seed, sizeof st->key);
    st->counter = 0;
}

/* Each call starts on a fresh 64-byte block so that draws never overlap. The ChaCha20 nonce
 * carries the high 32 bits of the block counter. */
static void seeded_fill(void *ctx, void *buf, size_t len)
{
    sa_rng_seeded *st = ctx;
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    uint32_t hi = (uint32_t)(st->counter >> 32);
    memcpy(nonce, &hi, sizeof hi);
    memset(buf, 0, len);
    crypto_stream_chacha20_ietf_xor_ic(buf, buf, len, nonce, (uint32_t)st->counter, st->key);
    st->counter += (len + 63) / 64;
}

sa_rng sa_rng_from_seeded(sa_rng_seeded *st)
{
    sa_rng r = {seeded_fill, st};
    return r;
}
