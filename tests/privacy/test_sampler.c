/* test_sampler.c - the exact discrete Gaussian samplers: chi-square tests of 10^6 draws (fixed
 * seed) against the exact pmf for four σ² (the ziggurat), for the CKS fast form, two for the
 * bitwise reference and for the CKS form with every comparison forced onto its slow path; the
 * ziggurat with few strips and an early tail (coupling from the past runs often), forced onto
 * its exact path, and its tables checked exhaustively; the slow path against
 * near-ties that need 2048 bits; both exp(-γ) evaluations and the log against references; the
 * threaded fill against the thread count; determinism and the rational conversion of σ². */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp_exact.h"
#include "dp_sample.h"
#include "dp_sample_internal.h"

#define DRAWS 1000000

static const uint8_t seed[DP_SEED_BYTES] = {0x6d, 0x75, 0x74, 0x75, 0x61, 0x6c, 0x2d, 0x64, 0x70};

/* The exact pmf of N_Z(0, s2) on [-k, k], normalised by the sum over that support (k is wide
 * enough that the mass outside is below e^-800). */
static double *exact_pmf(double s2, long k)
{
    double *p = malloc(sizeof(double) * (size_t)(2 * k + 1));
    assert_non_null(p);
    double z = 0;
    for (long x = -k; x <= k; x++)
        z += p[x + k] = exp(-(double)x * x / (2 * s2));
    for (long x = -k; x <= k; x++)
        p[x + k] /= z;
    return p;
}

/* The 0.999 quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
static double chi2_q999(double df)
{
    double h = 2.0 / (9 * df);
    return df * pow(1 - h + 3.090 * sqrt(h), 3);
}

enum { FAST, REF, FORCED_SLOW, CKS, ZIG_HOOK, ZIG_FORCED };

/* The ziggurat's shape for ZIG_HOOK and ZIG_FORCED (0: the defaults). */
static unsigned zig_q;
static uint64_t zig_M;

/* draws draws of N_Z(0, num/den) by `how` against the exact pmf. */
static void check_sigma2_by(uint64_t num, uint64_t den, uint64_t stream, int how, size_t draws)
{
    double s2 = (double)num / (double)den;
    long k = (long)ceil(40 * sqrt(s2)) + 40;
    double *p = exact_pmf(s2, k);
    int64_t *v = malloc(sizeof(int64_t) * draws);
    long *count = calloc((size_t)(2 * k + 1), sizeof(long));
    assert_non_null(v);
    assert_non_null(count);
    dp_rng rng;
    dp_rng_init(&rng, seed, stream);
    dp_sample_stats st = {0};
    if (how == FAST) {
        assert_int_equal(dp_dgauss_sample(&rng, num, den, v, draws), MU_OK);
    } else if (how == CKS) {
        assert_int_equal(dp_dgauss_sample_cks(&rng, num, den, v, draws), MU_OK);
    } else if (how == ZIG_HOOK || how == ZIG_FORCED) {
        dp_zig z;
        dp_zig_build(&z, num, den, zig_q, zig_M);
        assert_false(z.undecided);
        dp_zig_sample(&z, &rng, v, draws, how == ZIG_FORCED, &st);
        print_message("zig q %u M %llu: %llu sure, %llu fast, %llu slow, %llu tail draws, %llu "
                      "shifts\n",
                      z.q, (unsigned long long)z.M, (unsigned long long)st.sure,
                      (unsigned long long)st.fast, (unsigned long long)st.slow[0],
                      (unsigned long long)st.tail, (unsigned long long)st.shifts);
        if (how == ZIG_FORCED) { /* no comparison decided on the fast path, none given up */
            assert_true(st.fast == 0 && st.gave_up == 0);
            assert_true(st.slow[0] > draws / 100);
        }
    } else if (how == REF)
        assert_int_equal(dp_dgauss_sample_ref(&rng, num, den, v, draws), MU_OK);
    else
        assert_int_equal(dp_dgauss_sample_hook(&rng, num, den, v, draws, 1, &st), MU_OK);
    dp_rng_deinit(&rng);
    if (how == FORCED_SLOW) { /* every comparison went to the slow path and was decided there */
        assert_true(st.fast == 0);
        assert_true(st.slow[0] > 2 * draws);
        assert_true(st.gave_up == 0);
    }
    double mean = 0, var = 0, evar = 0;
    for (size_t i = 0; i < draws; i++) {
        assert_true(v[i] >= -k && v[i] <= k);
        count[v[i] + k]++;
        mean += (double)v[i];
    }
    mean /= (double)draws;
    for (size_t i = 0; i < draws; i++)
        var += ((double)v[i] - mean) * ((double)v[i] - mean);
    var /= (double)(draws - 1);
    for (long x = -k; x <= k; x++)
        evar += (double)x * x * p[x + k];
    /* bins: every integer with expected count >= 5; each tail lumped into its edge bin */
    long lo = 0;
    while (lo > -k && (double)draws * p[lo - 1 + k] >= 5)
        lo--;
    double chi2 = 0, e_tail = 0, o_tail = 0;
    for (long x = -k; x <= lo; x++) {
        e_tail += (double)draws * p[x + k];
        o_tail += (double)count[x + k];
    }
    chi2 += (o_tail - e_tail) * (o_tail - e_tail) / e_tail;
    e_tail = o_tail = 0;
    for (long x = -lo; x <= k; x++) {
        e_tail += (double)draws * p[x + k];
        o_tail += (double)count[x + k];
    }
    chi2 += (o_tail - e_tail) * (o_tail - e_tail) / e_tail;
    for (long x = lo + 1; x < -lo; x++) {
        double e = (double)draws * p[x + k];
        chi2 += ((double)count[x + k] - e) * ((double)count[x + k] - e) / e;
    }
    double df = (double)(-2 * lo + 1) - 1; /* bins - 1 */
    print_message("%s sigma2 %g: chi2 %.1f on %.0f df (0.999 quantile %.1f), mean %.4f, var %.4f "
                  "(exact %.4f)\n",
                  how == FAST         ? "zig"
                  : how == REF        ? "ref"
                  : how == CKS        ? "cks"
                  : how == ZIG_HOOK   ? "zig-shaped"
                  : how == ZIG_FORCED ? "zig-forced-slow"
                                      : "forced-slow",
                  s2, chi2, df, chi2_q999(df), mean, var, evar);
    if (!(chi2 < chi2_q999(df)))
        fail_msg("sigma2 %g: chi2 %.1f >= %.1f on %.0f df", s2, chi2, chi2_q999(df), df);
    /* mean within 5 standard errors of 0, variance within 5 of the exact variance */
    assert_true(fabs(mean) < 5 * sqrt(evar / (double)draws));
    assert_true(fabs(var - evar) < 5 * evar * sqrt(2.0 / (double)draws));
    free(count);
    free(v);
    free(p);
}

static void check_sigma2(uint64_t num, uint64_t den, uint64_t stream)
{
    check_sigma2_by(num, den, stream, FAST, DRAWS);
}

static void test_small_sigma(void **state)
{
    (void)state;
    check_sigma2(9, 4, 1); /* σ = 1.5: the lattice is visible, variance below σ² */
}

static void test_mid_sigma(void **state)
{
    (void)state;
    check_sigma2(100, 1, 2); /* σ = 10 */
}

static void test_large_sigma(void **state)
{
    (void)state;
    check_sigma2(1000000, 1, 3); /* σ = 1000 */
}

static void test_huge_sigma(void **state)
{
    (void)state;
    check_sigma2(100000000, 1, 4); /* σ = 10^4 */
}

/* The bitwise reference and the forced slow path pass the same test (fewer draws for the
 * slow path: every comparison there costs microseconds). */
static void test_ref_sampler(void **state)
{
    (void)state;
    check_sigma2_by(9, 4, 11, REF, DRAWS);
    check_sigma2_by(100, 1, 12, REF, DRAWS);
}

static void test_forced_slow(void **state)
{
    (void)state;
    check_sigma2_by(9, 4, 13, FORCED_SLOW, 100000);
    check_sigma2_by(1000000, 1, 14, FORCED_SLOW, 100000);
}

/* The CKS fast form (the previous default) still passes at every σ². */
static void test_cks_sampler(void **state)
{
    (void)state;
    check_sigma2_by(9, 4, 15, CKS, DRAWS);
    check_sigma2_by(100, 1, 16, CKS, DRAWS);
    check_sigma2_by(100000000, 1, 17, CKS, DRAWS);
}

/* The ziggurat with few strips and the centre ending early, so that wedges, the tail's coupling
 * from the past (chains of many steps) and its shifts all run often: still the exact law. */
static void test_zig_tail(void **state)
{
    (void)state;
    const struct {
        uint64_t num, den;
        unsigned q;
        uint64_t M;
    } c[] = {
        {9, 4, 1, 1},       /* c(0) = e^-8/9: tail draws about a third */
        {100, 1, 2, 3},     /* c(0) = e^-0.08: chains of about 12 steps */
        {100, 1, 1, 10},    /* c(0) = e^-0.605 */
        {10000, 1, 3, 150}, /* σ = 100, M = 1.5σ */
        {100000000, 1, 7, 25000},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        zig_q = c[i].q;
        zig_M = c[i].M;
        check_sigma2_by(c[i].num, c[i].den, 30 + i, ZIG_HOOK, DRAWS / 4);
    }
    zig_q = 0;
    zig_M = 0;
}

/* The ziggurat with every comparison on the exact path (wedges, the tail's A test). */
static void test_zig_forced_slow(void **state)
{
    (void)state;
    zig_q = 2;
    zig_M = 4;
    check_sigma2_by(9, 4, 40, ZIG_FORCED, 100000);
    zig_q = 0;
    zig_M = 0;
    check_sigma2_by(1000000, 1, 41, ZIG_FORCED, 100000);
}

/* [exp(-m²/(2σ²)) > y] in long double, y = a/2^q; the boundaries the tests build are far from
 * ties at this precision (checked: the margin must exceed 1e-15). */
static int above_ld(uint64_t m, uint64_t num, uint64_t den, uint64_t a, unsigned q)
{
    long double g = (long double)m * m * den / (2.0L * num), y = ldexpl((long double)a, -(int)q);
    long double e = expl(-g);
    if (fabsl(e - y) < 1e-15L * y)
        fail_msg("tie too close for the long double check: m %llu", (unsigned long long)m);
    return e > y;
}

/* max{m : exp(-m²/(2σ²)) > a/2^q} in long double, from the closed form and stepped to it. */
static uint64_t end_ld(uint64_t num, uint64_t den, uint64_t a, unsigned q)
{
    long double s2 = (long double)num / den;
    long double g = sqrtl(2 * s2 * -logl(ldexpl((long double)a, -(int)q)));
    uint64_t X = g > 2 ? (uint64_t)g - 2 : 0;
    while (X > 0 && !above_ld(X, num, den, a, q))
        X--;
    while (above_ld(X + 1, num, den, a, q))
        X++;
    assert_true(above_ld(X, num, den, a, q));
    return X;
}

/* The ziggurat's tables, exhaustively: every (bucket, v) cell maps to one (strip, magnitude) and
 * back, each strip's magnitudes 0..width-1 exactly once, the reject item `pad` times, sure
 * exactly for magnitudes below the strip's bound; widths and bounds against long double. */
static void test_zig_tables(void **state)
{
    (void)state;
    const struct {
        uint64_t num, den;
        unsigned q;
        uint64_t M;
    } c[] = {
        {9, 4, 0, 0},
        {100, 1, 0, 0},
        {100, 1, 2, 3},
        {10000, 1, 0, 0},
        {1000000, 1, 0, 0},
        {100000000, 1, 0, 0},
        {12345677, 64, 5, 0},
        {DP_SIGMA2_NUM_MAX, 1, 0, 0},
        {1, DP_SIGMA2_DEN_MAX, 0, 0},
    };
    for (size_t t = 0; t < sizeof c / sizeof c[0]; t++) {
        dp_zig z;
        dp_zig_build(&z, c[t].num, c[t].den, c[t].q, c[t].M);
        assert_false(z.undecided);
        uint32_t n = 1u << z.q;
        uint64_t total = 0;
        for (uint32_t j = 0; j < n; j++) {
            uint64_t a = n - 1 - j; /* strip j: heights [a/2^q, (a+1)/2^q) */
            uint64_t X = a > 0 ? end_ld(z.num, z.den, a, z.q) : z.M;
            uint64_t wide = X < z.M ? X + 1 : z.M + 1;
            assert_int_equal(z.width[j], wide);
            total += wide;
            if (j == 0) {
                assert_int_equal(z.sure[j], 0);
            } else { /* below the strip above's end */
                uint64_t Xp = end_ld(z.num, z.den, a + 1, z.q);
                assert_int_equal(z.sure[j], (Xp < z.M ? Xp : z.M) + 1);
            }
        }
        assert_int_equal(total + z.pad, (uint64_t)z.K * DP_ZIG_BUCKETS);
        uint8_t *seen = calloc(total + z.pad, 1);
        uint64_t *base = calloc(n + 1, sizeof(uint64_t)), pads = 0;
        assert_non_null(seen);
        assert_non_null(base);
        for (uint32_t j = 1; j <= n; j++)
            base[j] = base[j - 1] + (j - 1 < n ? z.width[j - 1] : 0);
        for (uint32_t b = 0; b < DP_ZIG_BUCKETS; b++) {
            const dp_zig_bucket *bk = &z.bk[b];
            for (uint32_t v = 0; v < z.K; v++) {
                uint32_t item = v < bk->tau ? z.own[b] : z.alias[b];
                uint32_t m = v < bk->tau ? v : (uint32_t)((int64_t)v + bk->delta);
                int sure = v < bk->so || (v >= bk->tau && v < bk->sa);
                if (item == n) {
                    pads++;
                    assert_false(sure);
                    continue;
                }
                assert_true(item < n && m < z.width[item]);
                assert_int_equal(sure, m < z.sure[item]);
                assert_int_equal(seen[base[item] + m], 0);
                seen[base[item] + m] = 1;
            }
        }
        assert_int_equal(pads, z.pad);
        for (uint64_t i = 0; i < total; i++)
            assert_int_equal(seen[i], 1);
        free(seen);
        free(base);
    }
}

/* Lemire's multiply-and-reject on the batch's 24-bit input is exactly uniform: over all 2^24
 * inputs, every cell of a bucket is hit by the same number of accepted inputs, floor(2^24/K). */
static void test_zig_lemire(void **state)
{
    (void)state;
    const uint64_t s2[] = {100000000, DP_SIGMA2_NUM_MAX};
    for (size_t t = 0; t < 2; t++) {
        dp_zig z;
        dp_zig_build(&z, s2[t], 1, 0, 0);
        uint32_t b8 = 17, lo = UINT32_MAX, hi = 0;
        uint32_t *count = calloc(z.M + 2, sizeof(uint32_t));
        assert_non_null(count);
        uint64_t accepted = 0;
        for (uint32_t x = 0; x < 1u << 24; x++) {
            uint32_t m, sure;
            if (!dp_zig_cell_hook(&z, b8, x, 0, &m, &sure))
                continue;
            assert_true(m <= z.M);
            count[m]++;
            accepted++;
        }
        /* by magnitude: a magnitude in both of the bucket's pieces (two strips) counts twice */
        uint64_t cells = 0;
        for (uint32_t m = 0; m <= z.M; m++)
            if (count[m]) {
                cells++;
                lo = count[m] < lo ? count[m] : lo;
                hi = count[m] > hi ? count[m] : hi;
            }
        uint32_t want = (1u << 24) / z.K;
        print_message("lemire K %u: %llu accepted over %llu magnitudes, %u..%u each (want %u)\n",
                      z.K, (unsigned long long)accepted, (unsigned long long)cells, lo, hi, want);
        assert_int_equal(accepted, (uint64_t)want * z.K);
        assert_true(lo % want == 0 && hi % want == 0); /* a magnitude in both pieces: 2·want */
        free(count);
    }
}

/* Reference values floor(exp(-n/d) · 2^256), from Python's decimal module at 150 digits. */
static const struct {
    dp_u128 n, d;
    uint64_t v[5];
} exp_ref[] = {
    {(dp_u128)0ull, (dp_u128)1ull, {0x0ull, 0x0ull, 0x0ull, 0x0ull, 0x1ull}},
    {(dp_u128)1ull,
     (dp_u128)1ull,
     {0x3024b9d0a507daedull, 0xda9805aab56c7733ull, 0xbadec7829054f90dull, 0x5e2d58d8b3bcdf1aull,
      0x0ull}},
    {(dp_u128)1ull,
     (dp_u128)3ull,
     {0x1fe12615380ce967ull, 0xa86a1feb960e6212ull, 0xc5984c9c50ebe4c9ull, 0xb76e989179752689ull,
      0x0ull}},
    {(dp_u128)7ull,
     (dp_u128)3ull,
     {0xe4040f7c78e7a663ull, 0xa6784a0d55521f55ull, 0x9091f41b3ea83993ull, 0x18d327a69b3be5a8ull,
      0x0ull}},
    {(dp_u128)64ull,
     (dp_u128)1ull,
     {0x1d820ca177e1bab2ull, 0xf265d5f96940384bull, 0xcb4ea3990ull, 0x0ull, 0x0ull}},
    {(dp_u128)1ull,
     (dp_u128)65537ull,
     {0x6adfc048b21fa7c9ull, 0xddb8d1b029cb3a19ull, 0x5ffbd338d386c168ull, 0xffff00017ffdd558ull,
      0x0ull}},
    {((dp_u128)6ull << 64 | 12776324570088369205ull),
     (dp_u128)4611686018427400249ull,
     {0xb6b65c7d647c72a1ull, 0xda907824807dbb7cull, 0x2113f6011e0bde6cull, 0x299916cull, 0x0ull}},
    {((dp_u128)33554431ull << 64 | 18446744073709551615ull),
     ((dp_u128)524288ull << 64 | 7ull),
     {0xfc693135013039a3ull, 0xf265d5f96c096224ull, 0xcb4ea3990ull, 0x0ull, 0x0ull}},
};

/* dp_mp_exp within its stated bound of the references, and that bound not vacuous. */
static void test_mp_exp(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof exp_ref / sizeof exp_ref[0]; i++) {
        uint64_t e[5], lo[5], hi[5];
        uint64_t err = dp_mp_exp(e, exp_ref[i].n, exp_ref[i].d, 4);
        assert_true(err < 1u << 16);
        memcpy(lo, exp_ref[i].v, sizeof lo);
        memcpy(hi, exp_ref[i].v, sizeof hi);
        dp_mp_add_small(hi, err + 1, 4); /* the reference is rounded down: within 1 */
        if (!dp_mp_sub_small(lo, err, 4))
            memset(lo, 0, sizeof lo);
        if (dp_mp_cmp(e, lo, 4) < 0 || dp_mp_cmp(e, hi, 4) > 0)
            fail_msg("exp_ref[%zu]: dp_mp_exp outside its bound %llu", i, (unsigned long long)err);
    }
}

/* A multi-limb value (L+1 limbs) as a double, from its two leading nonzero limbs. */
static double mp_to_double(const uint64_t *a, unsigned L)
{
    int j = (int)L;
    while (j > 0 && !a[j])
        j--;
    double hi = (double)a[j], lo = j > 0 ? (double)a[j - 1] : 0;
    return ldexp(hi, 64 * (j - (int)L)) + ldexp(lo, 64 * (j - 1 - (int)L));
}

/* dp_fexp's relative error (claimed below 2^-49) against dp_mp_exp at 256 bits, on a grid
 * of γ = n / 2^20 over [0, 64] with every table boundary. */
static void test_fexp_bound(void **state)
{
    (void)state;
    double worst = 0;
    for (uint64_t n = 0; n <= 64u << 20; n += (n & 0x3fff) == 0 ? 1 : 4093) {
        uint64_t e[5];
        dp_mp_exp(e, n, 1u << 20, 4);
        double ref = mp_to_double(e, 4), x = (double)n * 0x1p-20;
        double rel = fabs(dp_fexp(x) - ref) / ref;
        worst = rel > worst ? rel : worst;
    }
    print_message("dp_fexp: worst relative error %.3g (2^%.1f)\n", worst, log2(worst));
    assert_true(worst < 0x1p-49);
}

/* dp_fnlog32's absolute error (claimed below 2^-46) against long double logl. */
static void test_fnlog_bound(void **state)
{
    (void)state;
    double worst = 0;
    uint32_t x = 12345;
    for (uint64_t i = 0; i < 2000000; i++) {
        uint32_t u;
        if (i < 64) /* powers of two and their neighbours */
            u = (uint32_t)((1ull << (i / 2)) - (i & 1));
        else if (i < 64 + 4096)
            u = 0xffffffffu - (uint32_t)(i - 64);
        else
            u = x = x * 1664525u + 1013904223u;
        if (!u)
            continue;
        long double ref = -logl((long double)u / 4294967296.0L);
        double err = (double)fabsl((long double)dp_fnlog32(u) - ref);
        worst = err > worst ? err : worst;
    }
    print_message("dp_fnlog32: worst absolute error %.3g (2^%.1f)\n", worst, log2(worst));
    assert_true(worst < 0x1p-46);
}

/* t = e ± 2^-1100, e and t of L+1 limbs. */
static void nudge(uint64_t *t, const uint64_t *e, unsigned L, int below)
{
    unsigned b = 64 * L - 1100; /* bit 1100 after the point */
    uint64_t one[DP_MP_LIMBS_MAX + 1] = {0}, c = 0;
    one[b / 64] = 1ull << (b % 64);
    for (unsigned i = 0; i <= L; i++) {
        if (below) {
            uint64_t s = one[i] + c;
            c = (s < c) | (e[i] < s);
            t[i] = e[i] - s;
        } else {
            uint64_t s = e[i] + one[i], c1 = s < e[i];
            t[i] = s + c;
            c = c1 | (t[i] < s);
        }
    }
}

/* The slow path against near-ties: U equal to exp(-γ) to 4096 bits but 2^-1100 below or
 * above: decided correctly, and at 2048 bits (slow[3]); U = 0 and U near 1 on the fast path. */
static void test_near_ties(void **state)
{
    (void)state;
    const dp_u128 n[] = {1, 7, 64, 123456789, 1};
    const dp_u128 d[] = {1, 3, 1, 10000000, 65537};
    dp_rng r;
    dp_rng_init(&r, seed, 21);
    for (size_t c = 0; c < sizeof n / sizeof n[0]; c++) {
        uint64_t e[DP_MP_LIMBS_MAX + 1], t[DP_MP_LIMBS_MAX + 1], w[DP_MP_LIMBS_MAX];
        unsigned L = 64; /* 4096 bits: error far below 2^-1100 */
        dp_mp_exp(e, n[c], d[c], L);
        for (int below = 0; below <= 1; below++) {
            nudge(t, e, L, below);
            for (unsigned i = 0; i < L; i++)
                w[i] = t[L - 1 - i];
            dp_sample_stats st = {0};
            assert_int_equal(dp_lt_exp_hook(&r, w, L, n[c], d[c], &st), below);
            assert_true(st.fast == 0 && st.slow[3] == 1 && st.gave_up == 0);
        }
    }
    uint64_t zero = 0, ones = ~0ull;
    dp_sample_stats st = {0};
    assert_int_equal(dp_lt_exp_hook(&r, &zero, 1, 1, 1, &st), 1);
    assert_int_equal(dp_lt_exp_hook(&r, &ones, 1, 1, 1, &st), 0);
    assert_true(st.fast == 2);
    dp_rng_deinit(&r);
}

/* Every decision of the acceptance squeeze agrees with the exact comparison, for U at and
 * around its two thresholds and at random, γ on a grid of [0, 1] and beyond. */
static void test_squeeze_exact(void **state)
{
    (void)state;
    dp_rng r;
    dp_rng_init(&r, seed, 22);
    uint64_t decided = 0;
    for (uint64_t n = 0; n <= 1100000; n += 997) { /* γ = n / 2^20 */
        double g = (double)n * 0x1p-20;
        double p2 = 1 - g + g * g / 2, p3 = p2 - g * g * g / 6;
        int64_t edges[2] = {(int64_t)(p3 * 0x1p32), (int64_t)(p2 * 0x1p32)};
        for (int e = 0; e < 2; e++)
            for (int64_t dt = -40; dt <= 40; dt++) {
                int64_t top = edges[e] + dt * (dt < -20 || dt > 20 ? 4096 : 1);
                if (top < 0 || top > 0xffffffffll)
                    continue;
                int sq = dp_squeeze_hook(g, (uint32_t)top);
                if (sq < 0)
                    continue;
                uint64_t w = (uint64_t)top << 32 | dp_rng_below(&r, 1ull << 32);
                if (dp_lt_exp_hook(&r, &w, 1, n, 1u << 20, NULL) != sq)
                    fail_msg("squeeze wrong at gamma %.9g, U top %lld", g, (long long)top);
                decided++;
            }
    }
    dp_rng_deinit(&r);
    print_message("squeeze: %llu decisions checked\n", (unsigned long long)decided);
    assert_true(decided > 50000);
}

/* The fast path of the discrete Laplace magnitude agrees with the exact search wherever it
 * decides: U's 32 bits at random and at the boundaries exp(-k/t) of every k near the start
 * and in the tail, for small and large t. */
static void test_geom_exact(void **state)
{
    (void)state;
    const uint64_t ts[] = {1, 2, 11, 101, 10001, 65537};
    dp_rng r;
    dp_rng_init(&r, seed, 23);
    uint64_t decided = 0, undecided = 0;
    for (size_t c = 0; c < sizeof ts / sizeof ts[0]; c++) {
        uint64_t t = ts[c];
        for (uint64_t i = 0; i < 40000; i++) {
            uint32_t top;
            if (i < 20000) { /* just around exp(-k/t) for k = i / 8 (and 40 t further out) */
                uint64_t k = i / 8 + (i & 4 ? 40 * t : 0);
                double b = exp(-(double)k / (double)t) * 0x1p32;
                int64_t v = (int64_t)b + (int64_t)(i & 3) - 2;
                if (v < 0 || v > 0xffffffffll)
                    continue;
                top = (uint32_t)v;
            } else {
                top = (uint32_t)dp_rng_below(&r, 1ull << 32);
            }
            uint64_t mf, ms;
            if (!dp_geom_hook(&r, t, top, 1, &mf)) {
                undecided++;
                continue;
            }
            assert_int_equal(dp_geom_hook(&r, t, top, 0, &ms), 1);
            if (mf != ms)
                fail_msg("t %llu, U top %u: fast %llu, exact %llu", (unsigned long long)t, top,
                         (unsigned long long)mf, (unsigned long long)ms);
            decided++;
        }
    }
    dp_rng_deinit(&r);
    print_message("geometric fast path: %llu decided, %llu left to the exact search\n",
                  (unsigned long long)decided, (unsigned long long)undecided);
    assert_true(decided > 100000 && undecided > 0);
}

/* dp_dgauss_fill: the same output on 1, 2 and 3 threads (n not a multiple of the block), a
 * different one for another stream, blocks not copies of each other, the law's mean and
 * variance. */
static void test_fill_threads(void **state)
{
    (void)state;
    size_t n = 3 * DP_FILL_BLOCK + 1234;
    int64_t *a = malloc(sizeof(int64_t) * n), *b = malloc(sizeof(int64_t) * n);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(dp_dgauss_fill(seed, 5, 10000, 1, a, n, 1), MU_OK);
    for (int th = 2; th <= 3; th++) {
        memset(b, 0, sizeof(int64_t) * n);
        assert_int_equal(dp_dgauss_fill(seed, 5, 10000, 1, b, n, th), MU_OK);
        assert_memory_equal(a, b, sizeof(int64_t) * n);
    }
    for (int th = 1; th <= 3; th++) { /* the adding form: the same draws, added */
        for (size_t i = 0; i < n; i++)
            b[i] = (int64_t)i * 7 - 1000;
        assert_int_equal(dp_dgauss_fill_add(seed, 5, 10000, 1, b, n, th), MU_OK);
        for (size_t i = 0; i < n; i++)
            if (b[i] != a[i] + (int64_t)i * 7 - 1000)
                fail_msg("fill_add on %d threads differs at %zu", th, i);
    }
    assert_int_equal(dp_dgauss_fill(seed, 6, 10000, 1, b, n, 2), MU_OK);
    assert_memory_not_equal(a, b, sizeof(int64_t) * n);
    assert_memory_not_equal(a, a + DP_FILL_BLOCK, sizeof(int64_t) * 1000);
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += (double)a[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += ((double)a[i] - mean) * ((double)a[i] - mean);
    var /= (double)(n - 1);
    assert_true(fabs(mean) < 5 * sqrt(10000.0 / (double)n));
    assert_true(fabs(var - 10000) < 5 * 10000 * sqrt(2.0 / (double)n));
    assert_int_equal(dp_dgauss_fill(seed, 5, 10000, 1, b, n, 0), MU_ERR_INVALID);
    assert_int_equal(dp_dgauss_fill(seed, 5, 0, 1, b, n, 1), MU_ERR_INVALID);
    free(a);
    free(b);
}

/* The same seed and stream give the same draws; another stream gives others. */
static void test_deterministic(void **state)
{
    (void)state;
    int64_t a[64], b[64], c[64];
    dp_rng r;
    dp_rng_init(&r, seed, 7);
    assert_int_equal(dp_dgauss_sample(&r, 100, 1, a, 64), MU_OK);
    dp_rng_init(&r, seed, 7);
    assert_int_equal(dp_dgauss_sample(&r, 100, 1, b, 64), MU_OK);
    dp_rng_init(&r, seed, 8);
    assert_int_equal(dp_dgauss_sample(&r, 100, 1, c, 64), MU_OK);
    dp_rng_deinit(&r);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    for (size_t i = 0; i < sizeof r; i++) /* deinit wiped the key and the buffer */
        assert_int_equal(((uint8_t *)&r)[i], 0);
}

/* dp_rng_below is uniform: a small chi-square over 6 values. */
static void test_below_uniform(void **state)
{
    (void)state;
    long n[6] = {0};
    dp_rng r;
    dp_rng_init(&r, seed, 9);
    for (int i = 0; i < 600000; i++)
        n[dp_rng_below(&r, 6)]++;
    dp_rng_deinit(&r);
    double chi2 = 0;
    for (int i = 0; i < 6; i++)
        chi2 += (n[i] - 100000.0) * (n[i] - 100000.0) / 100000.0;
    assert_true(chi2 < 20.5); /* 0.999 quantile of chi-square(5) */
}

static void test_sigma2_conversion(void **state)
{
    (void)state;
    uint64_t num, den;
    assert_int_equal(dp_sigma2_from_double(2.25, &num, &den), MU_OK);
    assert_true(num == 9 && den == 4);
    assert_int_equal(dp_sigma2_from_double(1e4, &num, &den), MU_OK);
    assert_true(num == 10000 && den == 1);
    assert_int_equal(dp_sigma2_from_double(0.1, &num, &den), MU_ERR_INVALID);
    assert_int_equal(dp_sigma2_from_double(0, &num, &den), MU_ERR_INVALID);
    assert_int_equal(dp_sigma2_from_double(1e10, &num, &den), MU_ERR_INVALID);
    int64_t x;
    dp_rng r;
    dp_rng_init(&r, seed, 0);
    assert_int_equal(dp_dgauss_sample(&r, 0, 1, &x, 1), MU_ERR_INVALID);
    assert_int_equal(dp_dgauss_sample(&r, 1, 0, &x, 1), MU_ERR_INVALID);
    assert_int_equal(dp_dgauss_sample(&r, 1ull << 32, 1, &x, 1), MU_ERR_INVALID);
    assert_int_equal(dp_dgauss_sample(&r, 1, DP_SIGMA2_DEN_MAX + 1, &x, 1), MU_ERR_INVALID);
    assert_int_equal(dp_dgauss_sample(&r, DP_SIGMA2_NUM_MAX, 1, &x, 1), MU_OK);
    dp_rng_deinit(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_sigma),     cmocka_unit_test(test_mid_sigma),
        cmocka_unit_test(test_large_sigma),     cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_below_uniform),   cmocka_unit_test(test_sigma2_conversion),
        cmocka_unit_test(test_huge_sigma),      cmocka_unit_test(test_ref_sampler),
        cmocka_unit_test(test_forced_slow),     cmocka_unit_test(test_mp_exp),
        cmocka_unit_test(test_fexp_bound),      cmocka_unit_test(test_fnlog_bound),
        cmocka_unit_test(test_near_ties),       cmocka_unit_test(test_fill_threads),
        cmocka_unit_test(test_squeeze_exact),   cmocka_unit_test(test_geom_exact),
        cmocka_unit_test(test_cks_sampler),     cmocka_unit_test(test_zig_tail),
        cmocka_unit_test(test_zig_forced_slow), cmocka_unit_test(test_zig_tables),
        cmocka_unit_test(test_zig_lemire),
    };
    if (getenv("DP_SAMPLER_ONLY")) /* e.g. DP_SAMPLER_ONLY=test_near_ties */
        cmocka_set_test_filter(getenv("DP_SAMPLER_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
