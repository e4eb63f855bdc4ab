/* sa_prg_x86.c - the AES-128-CTR mask kernels on AES-NI (128-bit) and VAES (512-bit).
 *
 * Counter blocks are kept as little-endian 64-bit lanes (the block index in the high lane of
 * each 128-bit block) and byte-swapped into big-endian counters with one shuffle; many
 * independent blocks are in flight so that the AES units' latency is hidden, and the
 * keystream is added straight into the (L1-resident) accumulator. Each function carries its
 * own target attribute, so the file builds without -m flags and the library still runs on
 * CPUs without these instructions (sa_prg_select asks CPUID first). */
#include <stddef.h>

#include "sa_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* ---- key schedule (AES-NI; VAES CPUs have it too) ---- */

#define AESNI __attribute__((target("aes,sse4.1")))

/* One AES-128 key-schedule step: the next round key from the previous one `a` and
 * aeskeygenassist(a, rcon) (its word 3 is RotWord(SubWord(a[3])) ^ rcon). */
AESNI static __m128i expand_step(__m128i a, __m128i assist)
{
    assist = _mm_shuffle_epi32(assist, 0xff);
    __m128i t = _mm_slli_si128(a, 4); /* word i of a ^= words 0..i-1: the w[i-4] chain */
    a = _mm_xor_si128(a, t);
    t = _mm_slli_si128(t, 4);
    a = _mm_xor_si128(a, t);
    t = _mm_slli_si128(t, 4);
    a = _mm_xor_si128(a, t);
    return _mm_xor_si128(a, assist);
}

#define EXPAND_STEP(i, rcon)                                                                       \
    do {                                                                                           \
        a = expand_step(a, _mm_aeskeygenassist_si128(a, rcon));                                    \
        _mm_storeu_si128((__m128i *)rk[i], a);                                                     \
    } while (0)

AESNI static void aesni_expand(uint8_t rk[SA_PRG_ROUNDS + 1][16],
                               const uint8_t key[SA_PRG_KEY_BYTES])
{
    _Static_assert(SA_PRG_KEY_BYTES == 16 && SA_PRG_ROUNDS == 10, "the AES-128 key schedule");
    __m128i a = _mm_loadu_si128((const __m128i *)key);
    _mm_storeu_si128((__m128i *)rk[0], a);
    EXPAND_STEP(1, 0x01);
    EXPAND_STEP(2, 0x02);
    EXPAND_STEP(3, 0x04);
    EXPAND_STEP(4, 0x08);
    EXPAND_STEP(5, 0x10);
    EXPAND_STEP(6, 0x20);
    EXPAND_STEP(7, 0x40);
    EXPAND_STEP(8, 0x80);
    EXPAND_STEP(9, 0x1b);
    EXPAND_STEP(10, 0x36);
}

/* ---- AES-NI: 8 blocks in flight ---- */

#define AESNI_WIDE 8

AESNI static void aesni_add_blocks(uint32_t *acc, uint64_t blk, size_t nblocks,
                                   const uint8_t rk[SA_PRG_ROUNDS + 1][16], int neg)
{
    __m128i k[SA_PRG_ROUNDS + 1];
    for (unsigned r = 0; r <= SA_PRG_ROUNDS; r++)
        k[r] = _mm_loadu_si128((const __m128i *)rk[r]);
    const __m128i swap = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9, 8);
    const __m128i one = _mm_set_epi64x(1, 0);
    __m128i ctr = _mm_set_epi64x((long long)blk, 0);
    size_t j = 0;
    for (; j + AESNI_WIDE <= nblocks; j += AESNI_WIDE) {
        __m128i s[AESNI_WIDE];
        for (int x = 0; x < AESNI_WIDE; x++) {
            s[x] = _mm_xor_si128(_mm_shuffle_epi8(ctr, swap), k[0]);
            ctr = _mm_add_epi64(ctr, one);
        }
        for (unsigned r = 1; r < SA_PRG_ROUNDS; r++)
            for (int x = 0; x < AESNI_WIDE; x++)
                s[x] = _mm_aesenc_si128(s[x], k[r]);
        for (int x = 0; x < AESNI_WIDE; x++) {
            s[x] = _mm_aesenclast_si128(s[x], k[SA_PRG_ROUNDS]);
            __m128i *p = (__m128i *)(acc + 4 * (j + (size_t)x));
            __m128i v = _mm_loadu_si128(p);
            _mm_storeu_si128(p, neg ? _mm_sub_epi32(v, s[x]) : _mm_add_epi32(v, s[x]));
        }
    }
    for (; j < nblocks; j++) {
        __m128i s = _mm_xor_si128(_mm_shuffle_epi8(ctr, swap), k[0]);
        ctr = _mm_add_epi64(ctr, one);
        for (unsigned r = 1; r < SA_PRG_ROUNDS; r++)
            s = _mm_aesenc_si128(s, k[r]);
        s = _mm_aesenclast_si128(s, k[SA_PRG_ROUNDS]);
        __m128i *p = (__m128i *)(acc + 4 * j);
        __m128i v = _mm_loadu_si128(p);
        _mm_storeu_si128(p, neg ? _mm_sub_epi32(v, s) : _mm_add_epi32(v, s));
    }
}

static const sa_prg_kernels aesni = {aesni_expand, aesni_add_blocks};

/* ---- VAES: 8 x 4 blocks in flight ---- */

#define VAES      __attribute__((target("aes,sse4.1,avx2,avx512f,avx512bw,vaes")))
#define VAES_WIDE 8 /* zmm registers of 4 blocks each per iteration */

VAES static void vaes_add_blocks(uint32_t *acc, uint64_t blk, size_t nblocks,
                                 const uint8_t rk[SA_PRG_ROUNDS + 1][16], int neg)
{
    __m512i k[SA_PRG_ROUNDS + 1];
    for (unsigned r = 0; r <= SA_PRG_ROUNDS; r++)
        k[r] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)rk[r]));
    const __m512i swap =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9, 8));
    const __m512i four = _mm512_set_epi64(4, 0, 4, 0, 4, 0, 4, 0);
    __m512i ctr = _mm512_set_epi64((long long)(blk + 3), 0, (long long)(blk + 2), 0,
                                   (long long)(blk + 1), 0, (long long)blk, 0);
    size_t j = 0;
    for (; j + 4 * VAES_WIDE <= nblocks; j += 4 * VAES_WIDE) {
        __m512i s[VAES_WIDE];
        for (int x = 0; x < VAES_WIDE; x++) {
            s[x] = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, swap), k[0]);
            ctr = _mm512_add_epi64(ctr, four);
        }
        for (unsigned r = 1; r < SA_PRG_ROUNDS; r++)
            for (int x = 0; x < VAES_WIDE; x++)
                s[x] = _mm512_aesenc_epi128(s[x], k[r]);
        for (int x = 0; x < VAES_WIDE; x++) {
            s[x] = _mm512_aesenclast_epi128(s[x], k[SA_PRG_ROUNDS]);
            uint32_t *p = acc + 4 * (j + 4 * (size_t)x);
            __m512i v = _mm512_loadu_si512(p);
            _mm512_storeu_si512(p, neg ? _mm512_sub_epi32(v, s[x]) : _mm512_add_epi32(v, s[x]));
        }
    }
    for (; j < nblocks; j += 4) { /* the last 1..31 blocks, 4 at a time, masked at the end */
        size_t left = nblocks - j < 4 ? nblocks - j : 4;
        __mmask16 m = (__mmask16)((1u << (4 * left)) - 1);
        __m512i s = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, swap), k[0]);
        ctr = _mm512_add_epi64(ctr, four);
        for (unsigned r = 1; r < SA_PRG_ROUNDS; r++)
            s = _mm512_aesenc_epi128(s, k[r]);
        s = _mm512_aesenclast_epi128(s, k[SA_PRG_ROUNDS]);
        uint32_t *p = acc + 4 * j;
        __m512i v = _mm512_maskz_loadu_epi32(m, p);
        _mm512_mask_storeu_epi32(p, m, neg ? _mm512_sub_epi32(v, s) : _mm512_add_epi32(v, s));
    }
}

static const sa_prg_kernels vaes = {aesni_expand, vaes_add_blocks};

const sa_prg_kernels *sa_prg_kernels_aesni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1") ? &aesni : NULL;
}

const sa_prg_kernels *sa_prg_kernels_vaes(void)
{
    __builtin_cpu_init();
    return sa_prg_kernels_aesni() && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("vaes")
               ? &vaes
               : NULL;
}

#else /* no x86-64 vector paths in this build */

const sa_prg_kernels *sa_prg_kernels_aesni(void)
{
    return NULL;
}

const sa_prg_kernels *sa_prg_kernels_vaes(void)
{
    return NULL;
}

#endif
