/* test_blocks.c - building blocks: PRG known answer, Shamir with a fixed polynomial,
 * packing, quantisation, graph rule, config minimums, message codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"
#include "sa_test_util.h"

/* ---- PRG ---- */

/* AES-128 with the all-zero key on the all-zero block (keystream block 0 of that key), and the
 * same for every path this CPU runs; the thorough comparison against OpenSSL is sa_prg. */
static void test_prg_known_answer(void **state)
{
    (void)state;
    /* FIPS-197 / the well-known AES-128(0^128, 0^128) */
    static const uint8_t expect[16] = {0x66, 0xe9, 0x4b, 0xd4, 0xef, 0x8a, 0x2c, 0x3b,
                                       0x88, 0x4c, 0xfa, 0x59, 0xca, 0x34, 0x2b, 0x2e};
    sa_prg_path chosen = sa_prg_current();
    for (int path = SA_PRG_PORTABLE; path <= SA_PRG_VAES; path++) {
        if (sa_prg_force((sa_prg_path)path) != MU_OK)
            continue;
        sa_prg_term term = {{0}, 1, {{0}}};
        uint32_t acc[4] = {0};
        sa_prg_apply(acc, 4, &term, 1, 1);
        assert_memory_equal(acc, expect, 16);
        /* subtracting the same mask returns to zero */
        term.sign = -1;
        sa_prg_apply(acc, 4, &term, 1, 1);
        for (int i = 0; i < 4; i++)
            assert_int_equal(acc[i], 0);
    }
    assert_int_equal(sa_prg_force(chosen), MU_OK);
    assert_int_equal(sa_prg_force((sa_prg_path)7), MU_ERR_UNSUPPORTED);
    assert_int_equal(sa_prg_current(), chosen);
}

/* The chosen path: identical sums for 1 and 2 threads over many chunks. */
static void test_prg_threads_identical(void **state)
{
    (void)state;
    const size_t d = 100003;
    sa_prg_term terms[3];
    for (int j = 0; j < 3; j++) {
        for (int b = 0; b < (int)SA_PRG_KEY_BYTES; b++)
            terms[j].key[b] = (uint8_t)(7 * j + 3 * b + 1);
        terms[j].sign = j == 1 ? -1 : 1;
    }
    uint32_t *a1 = calloc(d, 4), *a2 = calloc(d, 4);
    assert_non_null(a1);
    assert_non_null(a2);
    for (size_t i = 0; i < d; i++)
        a1[i] = a2[i] = (uint32_t)(i * 2654435761u);
    sa_prg_apply(a1, d, terms, 3, 1);
    sa_prg_apply(a2, d, terms, 3, 2);
    assert_memory_equal(a1, a2, d * 4);
    size_t same = 0; /* and the masks did change the vector */
    for (size_t i = 0; i < d; i++)
        same += a1[i] == (uint32_t)(i * 2654435761u);
    assert_true(same < 10);
    free(a1);
    free(a2);
}

/* ---- Shamir ---- */

/* L - 1 and L - 3, little-endian (L = 2^252 + 27742317777372353535851937790883648493). */
static const uint8_t L_MINUS_1[32] = {
    0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
static const uint8_t L_MINUS_3[32] = {
    0xea, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

static void test_shamir_fixed_polynomial(void **state)
{
    (void)state;
    uint8_t coeffs[3][32] = {{5}, {3}, {2}}; /* f(x) = 5 + 3x + 2x^2 */
    uint8_t y[32], want[32];
    uint64_t xs[3] = {1, 2, 3};
    uint64_t fx[3] = {10, 19, 32};
    uint8_t sh[3][64] = {{0}};
    for (int i = 0; i < 3; i++) {
        sa_shamir_eval(y, (const uint8_t(*)[32])coeffs, 3, xs[i]);
        sa_scalar_from_u64(want, fx[i]);
        assert_memory_equal(y, want, 32);
        memcpy(sh[i], y, 32); /* limb 0; limb 1 = 0 polynomial */
    }
    /* wrap-around: g(x) = 7 + (L-1) x, so g(2) = 5 and g(10) = L - 3 */
    uint8_t g[2][32] = {{7}};
    memcpy(g[1], L_MINUS_1, 32);
    sa_shamir_eval(y, (const uint8_t(*)[32])g, 2, 2);
    sa_scalar_from_u64(want, 5);
    assert_memory_equal(y, want, 32);
    sa_shamir_eval(y, (const uint8_t(*)[32])g, 2, 10);
    assert_memory_equal(y, L_MINUS_3, 32);

    uint8_t lambda[3][32], secret[32];
    assert_int_equal(sa_shamir_lagrange(lambda, xs, 3), MU_OK);
    const uint8_t *p[3] = {sh[0], sh[1], sh[2]};
    assert_int_equal(sa_shamir_combine(secret, p, (const uint8_t(*)[32])lambda, 3), MU_OK);
    uint8_t expect[32] = {5};
    assert_memory_equal(secret, expect, 32);
    /* a repeated or zero x-coordinate is refused */
    uint64_t bad[3] = {1, 2, 2};
    assert_int_equal(sa_shamir_lagrange(lambda, bad, 3), MU_ERR_INVALID);
    uint64_t zero[2] = {0, 1};
    assert_int_equal(sa_shamir_lagrange(lambda, zero, 2), MU_ERR_INVALID);
    uint64_t huge[2] = {1, (uint64_t)1 << 33}; /* beyond id + 1 for any uint32 id */
    assert_int_equal(sa_shamir_lagrange(lambda, huge, 2), MU_ERR_INVALID);
    /* the largest x-coordinates (ids near 2^32) still reconstruct */
    uint64_t top[3] = {0xFFFFFFFEull, 0xFFFFFFFDull, 0x1ull};
    for (int i = 0; i < 3; i++) {
        sa_shamir_eval(y, (const uint8_t(*)[32])coeffs, 3, top[i]);
        memcpy(sh[i], y, 32);
    }
    assert_int_equal(sa_shamir_lagrange(lambda, top, 3), MU_OK);
    assert_int_equal(sa_shamir_combine(secret, p, (const uint8_t(*)[32])lambda, 3), MU_OK);
    assert_memory_equal(secret, expect, 32);
}

static void test_shamir_random_subsets(void **state)
{
    (void)state;
    uint8_t seed[32] = {9};
    sa_rng_seeded st;
    sa_rng_seeded_init(&st, seed);
    sa_rng rng = sa_rng_from_seeded(&st);
    uint8_t secret[32], got[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(0xF0 + i); /* high bits set in both limbs */
    enum { M = 9, T = 5 };
    uint64_t xs[M];
    for (int i = 0; i < M; i++)
        xs[i] = 1000 + 7 * (uint64_t)i + 1;
    uint8_t sh[M][64];
    assert_int_equal(sa_shamir_split(sh, xs, M, T, secret, &rng, 1), MU_OK);
    assert_int_equal(sa_shamir_split(sh, xs, M, M + 1, secret, &rng, 1), MU_ERR_INVALID);
    { /* the same rng gives the same shares on 2 threads */
        sa_rng_seeded st2;
        sa_rng_seeded_init(&st2, seed);
        sa_rng rng2 = sa_rng_from_seeded(&st2);
        uint8_t sh2[M][64];
        assert_int_equal(sa_shamir_split(sh2, xs, M, T, secret, &rng2, 2), MU_OK);
        assert_memory_equal(sh2, sh, sizeof sh);
    }
    for (int start = 0; start + T <= M; start++) {
        uint64_t sx[T];
        const uint8_t *p[T];
        uint8_t lambda[T][32];
        for (int j = 0; j < T; j++) {
            sx[j] = xs[start + j];
            p[j] = sh[start + j];
        }
        assert_int_equal(sa_shamir_lagrange(lambda, sx, T), MU_OK);
        assert_int_equal(sa_shamir_combine(got, p, (const uint8_t(*)[32])lambda, T), MU_OK);
        assert_memory_equal(got, secret, 32);
        /* a corrupted share no longer reconstructs (limb out of range or wrong secret) */
        uint8_t bad[64];
        memcpy(bad, sh[start], 64);
        bad[3] ^= 1;
        p[0] = bad;
        int rc = sa_shamir_combine(got, p, (const uint8_t(*)[32])lambda, T);
        assert_true(rc == MU_ERR_CRYPTO || memcmp(got, secret, 32) != 0);
    }
    /* t-1 shares do not give the secret */
    uint8_t lambda4[T - 1][32];
    const uint8_t *p4[T - 1] = {sh[0], sh[1], sh[2], sh[3]};
    assert_int_equal(sa_shamir_lagrange(lambda4, xs, T - 1), MU_OK);
    int rc = sa_shamir_combine(got, p4, (const uint8_t(*)[32])lambda4, T - 1);
    assert_true(rc == MU_ERR_CRYPTO || memcmp(got, secret, 32) != 0);
}

/* ---- packing ---- */

static void test_pack_roundtrip(void **state)
{
    (void)state;
    size_t ds[] = {0, 1, 7, 15, 17, 1000};
    uint32_t v[1000], acc[1000];
    uint8_t buf[4000];
    for (uint32_t bits = 1; bits <= 32; bits++)
        for (size_t di = 0; di < sizeof ds / sizeof *ds; di++) {
            size_t d = ds[di];
            uint32_t mask = bits == 32 ? 0xFFFFFFFFu : (1u << bits) - 1;
            for (size_t i = 0; i < d; i++)
                v[i] = (uint32_t)(i * 2654435761u + bits) & mask;
            size_t len = sa_pack_len(d, bits);
            assert_int_equal(len, (d * bits + 7) / 8);
            assert_int_equal(sa_pack(buf, len, v, d, bits), MU_OK);
            for (size_t i = 0; i < d; i++)
                acc[i] = 5;
            assert_int_equal(sa_unpack_add(acc, d, buf, len, bits), MU_OK);
            for (size_t i = 0; i < d; i++)
                assert_int_equal(acc[i], v[i] + 5);
            if (d)
                assert_int_equal(sa_unpack_add(acc, d, buf, len - 1, bits), MU_ERR_INVALID);
        }
    assert_int_equal(sa_pack(buf, 1, v, 1, 0), MU_ERR_INVALID);
    assert_int_equal(sa_pack(buf, 5, v, 1, 33), MU_ERR_INVALID);
}

/* ---- quantisation ---- */

static void test_quant(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_quant q = {1.0, 1024.0, 1.0, 20, 100};
    assert_int_equal(sa_quant_check(&q, &diag), MU_OK);
    q.n = 1000; /* 1000 * 1025 > 2^19 - 1 */
    assert_int_equal(sa_quant_check(&q, &diag), MU_ERR_INVALID);
    assert_non_null(strstr(diag.msg, "can reach"));
    q.n = 100;

    uint8_t seed[32] = {1};
    sa_rng_seeded st;
    sa_rng_seeded_init(&st, seed);
    sa_rng rng = sa_rng_from_seeded(&st);
    float x[4] = {0.3f, -0.2f, 0.0f, 0.1f};
    uint32_t out[5];
    assert_int_equal(sa_quant_encode(out, 5, x, 4, 0.5, &q, &rng, &diag), MU_OK);
    assert_int_equal(sa_quant_signed(out[4], 20), 512);
    assert_int_equal(sa_quant_encode(out, 4, x, 4, 0.5, &q, &rng, &diag), MU_ERR_INVALID);
    assert_int_equal(sa_quant_encode(out, 5, x, 4, 2.0, &q, &rng, &diag), MU_ERR_INVALID);
    x[2] = NAN;
    assert_int_equal(sa_quant_encode(out, 5, x, 4, 0.5, &q, &rng, &diag), MU_ERR_INVALID);
    assert_non_null(strstr(diag.msg, "NaN"));
    x[2] = INFINITY;
    assert_int_equal(sa_quant_encode(out, 5, x, 4, 0.5, &q, &rng, &diag), MU_ERR_INVALID);
    x[2] = 0;

    /* clipping: a vector of norm 10 is scaled to norm 1 */
    float big[2] = {6.0f, 8.0f};
    uint32_t ob[3];
    assert_int_equal(sa_quant_encode(ob, 3, big, 2, 1.0, &q, &rng, &diag), MU_OK);
    int64_t a = sa_quant_signed(ob[0], 20), b = sa_quant_signed(ob[1], 20);
    assert_true(llabs(a - 614) <= 1 && llabs(b - 819) <= 1);

    /* unbiased rounding: the mean of many roundings of 0.3/1024 * 1024 is close to 0.3 */
    float small[1] = {0.3f / 1024.0f};
    double total = 0;
    for (int i = 0; i < 20000; i++) {
        assert_int_equal(sa_quant_encode(ob, 2, small, 1, 1.0, &q, &rng, &diag), MU_OK);
        total += (double)sa_quant_signed(ob[0], 20);
    }
    assert_true(fabs(total / 20000 - 0.3) < 0.02);

    /* weighted mean of two orgs: w=1 x=0.25, w=3 x=-0.5 -> (0.25 - 1.5)/4 = -0.3125 */
    uint32_t s1[2], s2[2], sum[2];
    float v1[1] = {0.25f}, v2[1] = {-0.5f}, mean[1];
    q.w_max = 4.0;
    assert_int_equal(sa_quant_encode(s1, 2, v1, 1, 1.0, &q, &rng, &diag), MU_OK);
    assert_int_equal(sa_quant_encode(s2, 2, v2, 1, 3.0, &q, &rng, &diag), MU_OK);
    for (int i = 0; i < 2; i++)
        sum[i] = (s1[i] + s2[i]) & 0xFFFFF;
    assert_int_equal(sa_quant_mean(mean, 1, sum, 2, &q, &diag), MU_OK);
    assert_true(fabs(mean[0] + 0.3125) < 1e-3);
    assert_int_equal(sa_quant_signed(0xFFFFF, 20), -1);
    assert_int_equal(sa_quant_signed(0x80000000u, 32), INT32_MIN);
}

/* ---- graph and config ---- */

static void test_graph_rule(void **state)
{
    (void)state;
    sa_graph_params p = sa_graph_params_default();
    uint32_t ns[] = {10, 100, 1000, 10000};
    for (int i = 0; i < 4; i++) {
        uint32_t k, t;
        assert_int_equal(sa_graph_choose(ns[i], &p, &k, &t), MU_OK);
        print_message("n=%u: k=%u t=%u\n", ns[i], k, t);
        assert_true(k >= sa_min_degree(ns[i]));
        assert_true(k == ns[i] - 1 || k % 2 == 0);
        uint32_t k_eff = k < ns[i] - 1 ? k : ns[i] - 1;
        assert_true(t >= sa_min_threshold(ns[i], k_eff) && t <= k_eff + 1);
    }
    p.corrupt_frac = 0.6;
    uint32_t k, t;
    assert_int_equal(sa_graph_choose(100, &p, &k, &t), MU_ERR_INVALID);

    /* Harary ring: k_eff neighbours each, symmetric, consistent with adjacency */
    uint8_t session[32] = {3};
    uint32_t ids[50];
    for (uint32_t i = 0; i < 50; i++)
        ids[i] = 10 + 3 * i;
    sa_graph g;
    assert_int_equal(sa_graph_build(&g, session, 50, ids, 8), MU_OK);
    uint32_t nb[8];
    for (uint32_t i = 0; i < 50; i++) {
        assert_int_equal(sa_graph_neighbours(&g, i, nb), 8);
        uint32_t deg = 0;
        for (uint32_t j = 0; j < 50; j++) {
            assert_int_equal(sa_graph_adjacent(&g, i, j), sa_graph_adjacent(&g, j, i));
            deg += (uint32_t)sa_graph_adjacent(&g, i, j);
        }
        assert_int_equal(deg, 8);
        for (int j = 0; j < 8; j++) {
            assert_true(sa_graph_adjacent(&g, i, nb[j]));
            if (j)
                assert_true(nb[j] > nb[j - 1]);
        }
    }
    sa_graph_deinit(&g);
    assert_int_equal(sa_graph_build(&g, session, 50, ids, 7), MU_ERR_INVALID);
    sa_graph_deinit(&g);
}

static void test_config_minimums(void **state)
{
    (void)state;
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, 20, 4, 32, 8, 6, 1, &diag), MU_OK);
    sa_config c = w.cfg;
    assert_int_equal(sa_config_check(&c, &diag), MU_OK);
    c.t = 5; /* 9 holders and up to 2 colluders: minimum is 6 */
    assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
    assert_non_null(strstr(diag.msg, "threshold"));
    assert_null(sa_server_new(&c, &diag));
    assert_null(sa_client_new(&c, w.ids[0], w.sks[0], NULL, &diag));
    c.t = 10; /* more than the holders */
    assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
    c = w.cfg;
    c.k = 4; /* below ceil(log2 20) = 5 */
    c.t = 3;
    assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
    assert_non_null(strstr(diag.msg, "degree"));
    assert_null(sa_server_new(&c, &diag));
    assert_null(sa_client_new(&c, w.ids[0], w.sks[0], NULL, &diag));
    c = w.cfg;
    c.k = 9; /* odd and not complete */
    assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
    c = w.cfg;
    c.bits = 33;
    assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
    c = w.cfg;
    w.ids[3] = w.ids[2]; /* duplicate ids */
    assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
    w.ids[3] = w.ids[2] + 7;
    /* a client key that does not match the config */
    assert_null(sa_client_new(&w.cfg, w.ids[0], w.sks[1], NULL, &diag));
    assert_null(sa_client_new(&w.cfg, 5, w.sks[0], NULL, &diag));
    sa_world_free(&w);
}

/* ---- message codec ---- */

static void check_truncations(const uint8_t *buf, size_t len)
{
    sa_msg m;
    mu_diag diag = {{0}};
    for (size_t l = 0; l < len; l++)
        assert_int_equal(sa_msg_decode(&m, buf, l, &diag), MU_ERR_FORMAT);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(sa_msg_decode(&m, longer, len + 1, &diag), MU_ERR_FORMAT);
    free(longer);
}

static void test_msg_codec(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_key_entry keys[2] = {{7, {1}, {2}, {10}, {3}}, {9, {4}, {5}, {11}, {6}}};
    sa_ct_entry cts[2] = {{11, {1, 2, 3}}, {12, {4, 5, 6}}};
    uint32_t ids[3] = {1, 5, 9};
    sa_sig_entry sigs[2] = {{1, {9}}, {5, {8}}};
    sa_reveal_entry rev[2] = {{2, SA_REVEAL_B, {1}}, {3, SA_REVEAL_S, {2}}};
    uint8_t packed[3] = {0xff, 0xff, 0x0f}; /* 5 values at 4 bits = 20 bits */
    sa_msg in[9];
    for (int i = 0; i < 9; i++) {
        sa_msg_init(&in[i]);
        in[i].type = (sa_msg_type)(i + 1);
        in[i].round_id = 0x0102030405060708ull;
        in[i].binding[0] = (uint8_t)i;
        in[i].org = 77;
    }
    in[0].adv.c_pk[0] = 1;
    in[0].adv.b_commit[31] = 3;
    in[0].adv.sig[63] = 2;
    in[1].keys = keys, in[1].n_keys = 2;
    in[2].cts = cts, in[2].n_cts = 2;
    in[3].cts = cts, in[3].n_cts = 2;
    in[4].bits = 4, in[4].d = 5, in[4].packed = packed;
    in[5].ids = ids, in[5].n_ids = 3;
    in[6].sig[0] = 42;
    in[7].ids = ids, in[7].n_ids = 3, in[7].sigs = sigs, in[7].n_sigs = 2;
    in[8].reveals = rev, in[8].n_reveals = 2;
    for (int i = 0; i < 9; i++) {
        uint8_t *buf;
        size_t len;
        assert_int_equal(sa_msg_encode_alloc(&in[i], &buf, &len), MU_OK);
        assert_int_equal(len, sa_msg_encoded_len(&in[i]));
        sa_msg out;
        assert_int_equal(sa_msg_decode(&out, buf, len, &diag), MU_OK);
        assert_int_equal(out.type, in[i].type);
        assert_true(out.round_id == in[i].round_id);
        assert_int_equal(out.org, 77);
        assert_memory_equal(out.binding, in[i].binding, 32);
        uint8_t *again;
        size_t len2;
        assert_int_equal(sa_msg_encode_alloc(&out, &again, &len2), MU_OK);
        assert_int_equal(len2, len);
        assert_memory_equal(again, buf, len);
        free(again);
        sa_msg_deinit(&out);
        check_truncations(buf, len);
        /* wrong version (the old 1 and the AES-256 3 too) and unknown type are refused */
        buf[2] = SA_WIRE_VERSION + 1;
        assert_int_equal(sa_msg_decode(&out, buf, len, &diag), MU_ERR_FORMAT);
        buf[2] = 3;
        assert_int_equal(sa_msg_decode(&out, buf, len, &diag), MU_ERR_FORMAT);
        buf[2] = 1;
        assert_int_equal(sa_msg_decode(&out, buf, len, &diag), MU_ERR_FORMAT);
        buf[2] = SA_WIRE_VERSION;
        buf[3] = 10;
        assert_int_equal(sa_msg_decode(&out, buf, len, &diag), MU_ERR_FORMAT);
        free(buf);
    }
    /* unsorted ids are not encodable, and not decodable */
    uint32_t unsorted[3] = {5, 1, 9};
    in[5].ids = unsorted;
    uint8_t tmp[256];
    size_t wlen;
    assert_int_equal(sa_msg_encode(&in[5], tmp, sizeof tmp, &wlen), MU_ERR_INVALID);
    in[5].ids = ids;
    assert_int_equal(sa_msg_encode(&in[5], tmp, sizeof tmp, &wlen), MU_OK);
    memcpy(tmp + SA_MSG_HEADER_BYTES + 4, &unsorted[0], 4); /* first id 5, second 5 */
    sa_msg out;
    assert_int_equal(sa_msg_decode(&out, tmp, wlen, &diag), MU_ERR_FORMAT);
    /* a huge count does not allocate or read past the end */
    memset(tmp + SA_MSG_HEADER_BYTES, 0xff, 4);
    assert_int_equal(sa_msg_decode(&out, tmp, wlen, &diag), MU_ERR_FORMAT);
    /* MASKED with padding bits set is refused */
    uint8_t bad_pack[3] = {0xff, 0xff, 0x1f};
    in[4].packed = bad_pack;
    assert_int_equal(sa_msg_encode(&in[4], tmp, sizeof tmp, &wlen), MU_OK);
    assert_int_equal(sa_msg_decode(&out, tmp, wlen, &diag), MU_ERR_FORMAT);
    /* unknown reveal kind */
    rev[1].kind = 3;
    assert_int_equal(sa_msg_encode(&in[8], tmp, sizeof tmp, &wlen), MU_ERR_INVALID);
    assert_int_equal(sa_msg_decode(&out, NULL, 0, &diag), MU_ERR_FORMAT);
}

int main(void)
{
    if (sa_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prg_known_answer),
        cmocka_unit_test(test_prg_threads_identical),
        cmocka_unit_test(test_shamir_fixed_polynomial),
        cmocka_unit_test(test_shamir_random_subsets),
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_quant),
        cmocka_unit_test(test_graph_rule),
        cmocka_unit_test(test_config_minimums),
        cmocka_unit_test(test_msg_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
