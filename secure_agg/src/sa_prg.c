/* sa_prg.c - AES-128-CTR masks added in place, and the choice of implementation.
 *
 * Each chunk of SA_PRG_CHUNK accumulator values stays in L1 while every term's keystream for
 * that chunk is generated and added straight into it (no keystream buffer on the vector
 * paths), so the cost per term is the AES rate plus one L1-resident add. The vector kernels
 * live in sa_prg_x86.c; this file holds the portable constant-time AES (the reference the
 * others must equal, with OpenSSL as the independent one in the tests) and the dispatch. */
#include <omp.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "mu_bytes.h"
#include "sa_internal.h"

/* ---- portable constant-time AES-128 ----
 * Eight bytes at a time in a uint64 (SWAR): GF(2^8) products by shift-and-masked-xor, the
 * S-box as the affine map of x^254, so no memory access depends on a secret. */

#define LO_BITS 0x0101010101010101ull

static uint64_t xtime8(uint64_t a)
{
    return ((a & 0x7f7f7f7f7f7f7f7full) << 1) ^ (((a >> 7) & LO_BITS) * 0x1b);
}

/* Bytewise a * b in GF(2^8) mod x^8 + x^4 + x^3 + x + 1. */
static uint64_t gmul8(uint64_t a, uint64_t b)
{
    uint64_t r = 0;
    for (int i = 0; i < 8; i++) {
        r ^= a & (((b >> i) & LO_BITS) * 0xff);
        a = xtime8(a);
    }
    return r;
}

static uint64_t rotl8(uint64_t b, int n)
{
    uint64_t hi = LO_BITS * ((0xffu << n) & 0xffu), lo = LO_BITS * (0xffu >> (8 - n));
    return ((b << n) & hi) | ((b >> (8 - n)) & lo);
}

/* The AES S-box on each byte: affine(x^254) (x^254 = x^-1, and 0 for 0). */
static uint64_t sbox8(uint64_t x)
{
    uint64_t x2 = gmul8(x, x), x3 = gmul8(x2, x), x6 = gmul8(x3, x3), x12 = gmul8(x6, x6);
    uint64_t x15 = gmul8(x12, x3), y = gmul8(x15, x15); /* x^30 */
    y = gmul8(y, y);                                    /* x^60 */
    y = gmul8(y, y);                                    /* x^120 */
    y = gmul8(y, y);                                    /* x^240 */
    y = gmul8(gmul8(y, x12), x2);                       /* x^254 */
    return y ^ rotl8(y, 1) ^ rotl8(y, 2) ^ rotl8(y, 3) ^ rotl8(y, 4) ^ (LO_BITS * 0x63);
}

static void sub_bytes(uint8_t s[16])
{
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + 8, 8);
    a = sbox8(a);
    b = sbox8(b);
    memcpy(s, &a, 8);
    memcpy(s + 8, &b, 8);
}

static void portable_expand(uint8_t rk[SA_PRG_ROUNDS + 1][16], const uint8_t key[SA_PRG_KEY_BYTES])
{
    enum { NK = SA_PRG_KEY_BYTES / 4, NW = 4 * (SA_PRG_ROUNDS + 1) }; /* AES-128: 4 and 44 */
    uint8_t w[NW][4];
    memcpy(w, key, SA_PRG_KEY_BYTES);
    uint8_t rcon = 1;
    for (int i = NK; i < NW; i++) {
        uint8_t t[8] = {w[i - 1][0], w[i - 1][1], w[i - 1][2], w[i - 1][3]};
        if (i % NK == 0) { /* RotWord, SubWord, Rcon */
            uint8_t r0 = t[0];
            t[0] = t[1], t[1] = t[2], t[2] = t[3], t[3] = r0;
            uint64_t v;
            memcpy(&v, t, 8);
            v = sbox8(v);
            memcpy(t, &v, 8);
            t[0] ^= rcon;
            rcon = (uint8_t)((rcon << 1) ^ ((rcon >> 7) * 0x1b));
        }
        for (int b = 0; b < 4; b++)
            w[i][b] = w[i - NK][b] ^ t[b];
        sodium_memzero(t, sizeof t);
    }
    _Static_assert(sizeof w == (SA_PRG_ROUNDS + 1) * 16, "44 words of round keys");
    memcpy(rk, w, sizeof w);
    sodium_memzero(w, sizeof w);
}

static uint8_t xt(uint8_t a)
{
    return (uint8_t)((a << 1) ^ ((a >> 7) * 0x1b));
}

/* out = AES-128_rk(in): the FIPS-197 rounds on a column-major state. */
static void portable_block(uint8_t out[16], const uint8_t in[16],
                           const uint8_t rk[SA_PRG_ROUNDS + 1][16])
{
    uint8_t s[16], t[16];
    for (int i = 0; i < 16; i++)
        s[i] = in[i] ^ rk[0][i];
    for (unsigned r = 1; r <= SA_PRG_ROUNDS; r++) {
        sub_bytes(s);
        for (int c = 0; c < 4; c++) /* ShiftRows: row i moves left by i */
            for (int i = 0; i < 4; i++)
                t[i + 4 * c] = s[i + 4 * ((c + i) % 4)];
        if (r < SA_PRG_ROUNDS) {
            for (int c = 0; c < 4; c++) { /* MixColumns */
                uint8_t *a = t + 4 * c, a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
                uint8_t all = a0 ^ a1 ^ a2 ^ a3;
                a[0] = a0 ^ all ^ xt(a0 ^ a1);
                a[1] = a1 ^ all ^ xt(a1 ^ a2);
                a[2] = a2 ^ all ^ xt(a2 ^ a3);
                a[3] = a3 ^ all ^ xt(a3 ^ a0);
            }
        }
        for (int i = 0; i < 16; i++)
            s[i] = t[i] ^ rk[r][i];
    }
    memcpy(out, s, 16);
    sodium_memzero(s, sizeof s);
    sodium_memzero(t, sizeof t);
}

/* The counter block of keystream block j: j as a 128-bit big-endian integer. */
static void counter_block(uint8_t ctr[16], uint64_t j)
{
    memset(ctr, 0, 8);
    for (int b = 0; b < 8; b++)
        ctr[15 - b] = (uint8_t)(j >> (8 * b));
}

static void portable_add_blocks(uint32_t *acc, uint64_t blk, size_t nblocks,
                                const uint8_t rk[SA_PRG_ROUNDS + 1][16], int neg)
{
    uint8_t ctr[16], ks[16];
    for (size_t j = 0; j < nblocks; j++) {
        counter_block(ctr, blk + j);
        portable_block(ks, ctr, rk);
        for (int i = 0; i < 4; i++) {
            uint32_t v = mu_le32(ks + 4 * i);
            acc[4 * j + i] = neg ? acc[4 * j + i] - v : acc[4 * j + i] + v;
        }
    }
    sodium_memzero(ks, sizeof ks);
}

static const sa_prg_kernels portable = {portable_expand, portable_add_blocks};

/* ---- dispatch ---- */

static _Atomic int current = -1; /* an sa_prg_path; -1 before the first choice */

static const sa_prg_kernels *kernels_of(int path)
{
    return path == SA_PRG_VAES    ? sa_prg_kernels_vaes()
           : path == SA_PRG_AESNI ? sa_prg_kernels_aesni()
                                  : &portable;
}

void sa_prg_select(void)
{
    int path = sa_prg_kernels_vaes()    ? SA_PRG_VAES
               : sa_prg_kernels_aesni() ? SA_PRG_AESNI
                                        : SA_PRG_PORTABLE;
    atomic_store_explicit(&current, path, memory_order_relaxed);
}

int sa_prg_force(sa_prg_path path)
{
    if ((int)path < SA_PRG_PORTABLE || path > SA_PRG_VAES || !kernels_of((int)path))
        return MU_ERR_UNSUPPORTED;
    atomic_store_explicit(&current, (int)path, memory_order_relaxed);
    return MU_OK;
}

sa_prg_path sa_prg_current(void)
{
    if (atomic_load_explicit(&current, memory_order_relaxed) < 0)
        sa_prg_select();
    return (sa_prg_path)atomic_load_explicit(&current, memory_order_relaxed);
}

const char *sa_prg_path_name(sa_prg_path path)
{
    return path == SA_PRG_VAES ? "vaes" : path == SA_PRG_AESNI ? "aesni" : "portable";
}

/* ---- applying terms ---- */

void sa_prg_expand(sa_prg_term *terms, size_t nterms)
{
    const sa_prg_kernels *k = kernels_of((int)sa_prg_current());
    for (size_t j = 0; j < nterms; j++)
        k->expand(terms[j].rk, terms[j].key);
}

/* acc[0 .. n) ±= PRG(term)[off .. off+n): whole blocks by the kernel, the partial block at
 * either end through a one-block buffer. */
static void apply_one(const sa_prg_kernels *k, uint32_t *acc, size_t off, size_t n,
                      const sa_prg_term *t)
{
    int neg = t->sign < 0;
    size_t i = 0;
    uint32_t ks[4];
    if (off % 4 != 0 && n > 0) {
        memset(ks, 0, sizeof ks);
        k->add_blocks(ks, off / 4, 1, t->rk, 0);
        for (size_t p = off % 4; p < 4 && i < n; p++, i++)
            acc[i] = neg ? acc[i] - ks[p] : acc[i] + ks[p];
    }
    size_t full = (n - i) / 4;
    if (full) {
        k->add_blocks(acc + i, (off + i) / 4, full, t->rk, neg);
        i += 4 * full;
    }
    if (i < n) {
        memset(ks, 0, sizeof ks);
        k->add_blocks(ks, (off + i) / 4, 1, t->rk, 0);
        for (size_t p = 0; i < n; p++, i++)
            acc[i] = neg ? acc[i] - ks[p] : acc[i] + ks[p];
    }
    sodium_memzero(ks, sizeof ks);
}

void sa_prg_apply_range(uint32_t *acc, size_t off, size_t len, const sa_prg_term *terms,
                        size_t nterms)
{
    const sa_prg_kernels *k = kernels_of((int)sa_prg_current());
    while (len > 0) {
        size_t n = len < SA_PRG_CHUNK ? len : SA_PRG_CHUNK;
        for (size_t j = 0; j < nterms; j++)
            apply_one(k, acc, off, n, &terms[j]);
        acc += n;
        off += n;
        len -= n;
    }
}

void sa_prg_apply(uint32_t *acc, size_t d, sa_prg_term *terms, size_t nterms, int threads)
{
    sa_prg_expand(terms, nterms);
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
