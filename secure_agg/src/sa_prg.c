/* sa_prg.c - ChaCha20 masks expanded into small keystream buffers and added in place.
 *
 * The naive fusion (one keystream call per value or per vector) is memory-bound; here each
 * chunk of SA_PRG_CHUNK accumulator values stays in L1 while every term's keystream for
 * that chunk is generated into an 8 KiB buffer and added, so the cost per term is the
 * ChaCha20 rate plus one L1-resident add. */
#include <omp.h>
#include <sodium.h>
#include <string.h>

#include "sa_internal.h"

static const uint8_t zeros[SA_PRG_CHUNK * 4];

void sa_prg_apply_range(uint32_t *acc, size_t off, size_t len, const sa_prg_term *terms,
                        size_t nterms)
{
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
    uint32_t ks[SA_PRG_CHUNK] __attribute__((aligned(64)));
    while (len > 0) {
        size_t n = len < SA_PRG_CHUNK ? len : SA_PRG_CHUNK;
        uint32_t ic = (uint32_t)(off / 16);
        for (size_t j = 0; j < nterms; j++) {
            crypto_stream_chacha20_ietf_xor_ic((uint8_t *)ks, zeros, n * 4, nonce, ic,
                                               terms[j].key);
            if (terms[j].sign > 0)
                for (size_t i = 0; i < n; i++)
                    acc[i] += ks[i];
            else
                for (size_t i = 0; i < n; i++)
                    acc[i] -= ks[i];
        }
        acc += n;
        off += n;
        len -= n;
    }
    sodium_memzero(ks, sizeof ks);
}

void sa_prg_apply(uint32_t *acc, size_t d, const sa_prg_term *terms, size_t nterms, int threads)
{
    size_t nchunks = (d + SA_PRG_CHUNK - 1) / SA_PRG_CHUNK;
    if (threads == 0)
        threads = omp_get_max_threads();
    if (threads <= 1 || nchunks < 2) {
        sa_prg_apply_range(acc, 0, d, terms, nterms);
        return;
    }
    /* Each chunk is one independent range: any split gives the same sums. */
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (size_t c = 0; c < nchunks; c++) {
        size_t off = c * SA_PRG_CHUNK;
        size_t n = d - off < SA_PRG_CHUNK ? d - off : SA_PRG_CHUNK;
        sa_prg_apply_range(acc + off, off, n, terms, nterms);
    }
}
