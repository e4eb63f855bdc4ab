/* test_prg.c - every mask PRG path (portable, AES-NI, VAES; each forced in turn) against
 * OpenSSL's EVP_aes_128_ctr, an independent AES-CTR: many random keys, offsets (unaligned, at
 * chunk boundaries, near the largest vector), lengths, signs and several terms at once, through
 * sa_prg_apply_range and sa_prg_apply (1 and 2 threads). Only this test links OpenSSL; the
 * library never does (core_link_check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"

/* OpenSSL's keystream of `key` for values off .. off+n: the counter starts at block off/4. */
static void ossl_keystream(uint32_t *out, const uint8_t key[SA_PRG_KEY_BYTES], size_t off, size_t n)
{
    size_t b0 = off / 4, skip = off % 4, nb = (skip + n + 3) / 4;
    uint8_t iv[16] = {0};
    for (int b = 0; b < 8; b++)
        iv[15 - b] = (uint8_t)((uint64_t)b0 >> (8 * b));
    uint8_t *zero = calloc(nb ? nb * 16 : 1, 1), *ks = malloc(nb ? nb * 16 : 1);
    assert_non_null(zero);
    assert_non_null(ks);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    int len = 0;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, ks, &len, zero, (int)(nb * 16)), 1);
    assert_int_equal((size_t)len, nb * 16);
    EVP_CIPHER_CTX_free(ctx);
    memcpy(out, ks + 4 * skip, 4 * n);
    free(zero);
    free(ks);
}

/* acc0 + sum_j sign_j * keystream_j, from OpenSSL. */
static void expected(uint32_t *want, const uint32_t *acc0, size_t off, size_t n,
                     const sa_prg_term *terms, size_t nt)
{
    uint32_t *ks = malloc((n ? n : 1) * 4);
    assert_non_null(ks);
    memcpy(want, acc0, 4 * n);
    for (size_t j = 0; j < nt; j++) {
        ossl_keystream(ks, terms[j].key, off, n);
        for (size_t i = 0; i < n; i++)
            want[i] = terms[j].sign > 0 ? want[i] + ks[i] : want[i] - ks[i];
    }
    free(ks);
}

static void random_terms(sa_prg_term *t, size_t nt)
{
    for (size_t j = 0; j < nt; j++) {
        randombytes_buf(t[j].key, sizeof t[j].key);
        t[j].sign = randombytes_uniform(2) ? 1 : -1;
    }
}

/* sa_prg_apply_range on the current path against OpenSSL for (off, n) with nt fresh terms. */
static void check_range(size_t off, size_t n, size_t nt)
{
    sa_prg_term terms[4];
    random_terms(terms, nt);
    uint32_t *acc = malloc((n ? n : 1) * 4), *acc0 = malloc((n ? n : 1) * 4),
             *want = malloc((n ? n : 1) * 4);
    assert_true(acc && acc0 && want);
    randombytes_buf(acc0, 4 * n);
    memcpy(acc, acc0, 4 * n);
    sa_prg_expand(terms, nt);
    sa_prg_apply_range(acc, off, n, terms, nt);
    expected(want, acc0, off, n, terms, nt);
    if (memcmp(acc, want, 4 * n) != 0) {
        size_t i = 0;
        while (acc[i] == want[i])
            i++;
        fail_msg("path %s, off %zu, len %zu, %zu terms: value %zu is %08x, OpenSSL says %08x",
                 sa_prg_path_name(sa_prg_current()), off, n, nt, i, acc[i], want[i]);
    }
    free(acc);
    free(acc0);
    free(want);
}

/* The paths this CPU runs (the portable one always). */
static int paths(sa_prg_path out[3])
{
    int n = 0;
    for (int p = SA_PRG_PORTABLE; p <= SA_PRG_VAES; p++) {
        sa_prg_path saved = sa_prg_current();
        if (sa_prg_force((sa_prg_path)p) == MU_OK)
            out[n++] = (sa_prg_path)p;
        assert_int_equal(sa_prg_force(saved), MU_OK);
    }
    return n;
}

static void test_every_path_matches_openssl(void **state)
{
    (void)state;
    sa_prg_path chosen = sa_prg_current(), ps[3];
    int np = paths(ps);
    print_message("PRG paths on this CPU: %d (chosen: %s)\n", np, sa_prg_path_name(chosen));
    assert_true(np >= 1 && ps[0] == SA_PRG_PORTABLE);
    /* offsets and lengths at every alignment, across chunks and counter-byte carries, and at
     * the end of the largest vector (block indices near 2^28) */
    static const size_t offs[] = {0,
                                  1,
                                  2,
                                  3,
                                  4,
                                  5,
                                  127,
                                  128,
                                  129,
                                  SA_PRG_CHUNK - 3,
                                  SA_PRG_CHUNK,
                                  SA_PRG_CHUNK + 1,
                                  4 * 255 + 2,
                                  4 * 65535 + 1,
                                  4 * 16777215 + 3,
                                  (size_t)SA_MAX_D - 700};
    static const size_t lens[] = {0,  1,  2,  3,  4,   5,   7,   15,  16,
                                  17, 63, 64, 65, 127, 128, 129, 131, 500};
    for (int p = 0; p < np; p++) {
        assert_int_equal(sa_prg_force(ps[p]), MU_OK);
        for (size_t o = 0; o < sizeof offs / sizeof *offs; o++)
            for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
                check_range(offs[o], lens[l], 1 + (o + l) % 3);
        /* lengths that cross one or more chunk boundaries, from unaligned starts */
        check_range(SA_PRG_CHUNK - 5, 2 * SA_PRG_CHUNK + 11, 2);
        check_range(3, 3 * SA_PRG_CHUNK + 1, 1);
        /* many random keys, offsets and lengths */
        for (int r = 0; r < (ps[p] == SA_PRG_PORTABLE ? 40 : 400); r++)
            check_range(randombytes_uniform(1u << 20), randombytes_uniform(700), 1 + r % 4);
    }
    assert_int_equal(sa_prg_force(chosen), MU_OK);
}

/* sa_prg_apply over whole vectors (expansion included, 1 and 2 threads) on every path. */
static void test_every_path_whole_vector(void **state)
{
    (void)state;
    sa_prg_path chosen = sa_prg_current(), ps[3];
    int np = paths(ps);
    static const size_t ds[] = {1, 5, 4 * SA_PRG_CHUNK + 3, 3 * SA_PRG_CHUNK + 1002};
    for (int p = 0; p < np; p++) {
        assert_int_equal(sa_prg_force(ps[p]), MU_OK);
        for (size_t k = 0; k < sizeof ds / sizeof *ds; k++) {
            size_t d = ds[k];
            sa_prg_term terms[3];
            random_terms(terms, 3);
            uint32_t *a1 = malloc(d * 4), *a2 = malloc(d * 4), *acc0 = malloc(d * 4),
                     *want = malloc(d * 4);
            assert_true(a1 && a2 && acc0 && want);
            randombytes_buf(acc0, 4 * d);
            memcpy(a1, acc0, 4 * d);
            memcpy(a2, acc0, 4 * d);
            sa_prg_apply(a1, d, terms, 3, 1);
            sa_prg_apply(a2, d, terms, 3, 2);
            expected(want, acc0, 0, d, terms, 3);
            assert_memory_equal(a1, want, 4 * d);
            assert_memory_equal(a2, want, 4 * d);
            free(a1);
            free(a2);
            free(acc0);
            free(want);
        }
    }
    assert_int_equal(sa_prg_force(chosen), MU_OK);
}

/* The round keys each path expands are the same (and those of OpenSSL's keystream, through
 * the checks above). */
static void test_key_schedules_agree(void **state)
{
    (void)state;
    sa_prg_path chosen = sa_prg_current(), ps[3];
    int np = paths(ps);
    for (int r = 0; r < 50; r++) {
        sa_prg_term t[3];
        randombytes_buf(t[0].key, sizeof t[0].key);
        for (int p = 0; p < np; p++) {
            memcpy(t[p].key, t[0].key, sizeof t[0].key);
            memset(t[p].rk, 0xEE, sizeof t[p].rk);
            assert_int_equal(sa_prg_force(ps[p]), MU_OK);
            sa_prg_expand(&t[p], 1);
            assert_memory_equal(t[p].rk[0], t[0].key, SA_PRG_KEY_BYTES); /* rk[0] is the key */
            assert_memory_equal(t[p].rk, t[0].rk, sizeof t[0].rk);
        }
    }
    assert_int_equal(sa_prg_force(chosen), MU_OK);
}

int main(void)
{
    if (sa_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_schedules_agree),
        cmocka_unit_test(test_every_path_matches_openssl),
        cmocka_unit_test(test_every_path_whole_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
