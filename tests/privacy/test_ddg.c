/* test_ddg.c - the distributed discrete Gaussian (dp_ddg.h): the rotation inverts and keeps
 * norms for any dim, conditional rounding keeps the paper's bound, the noise of n orgs sums to
 * the variance the accountant assumes (n·σ² per coordinate after descaling), the per-round RDP
 * is the discrete Gaussian's at the target noise, the wrap bound, and determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp.h"
#include "dp_ddg.h"

static const uint8_t org_seed[DP_SEED_BYTES] = {0x64, 0x64, 0x67, 0x2d, 0x6f, 0x72, 0x67};

static dp_ddg params(uint32_t dim, double noise, uint32_t k)
{
    dp_ddg p = {.dim = dim, .l2 = 1.0, .scale = 256, .noise = noise, .min_survivors = k};
    for (int i = 0; i < DP_DDG_SEED_BYTES; i++)
        p.rot_seed[i] = (uint8_t)(i * 7 + 1);
    return p;
}

/* x (dim) with L2 norm `norm`, from a fixed xorshift. */
static void fill(float *x, uint32_t dim, double norm, uint64_t s)
{
    double n2 = 0;
    for (uint32_t i = 0; i < dim; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) * 0x1.0p-53 - 0.5);
        if (i % 5 == 0)
            x[i] *= 20; /* uneven: a few large coordinates, which the rotation spreads */
        n2 += (double)x[i] * x[i];
    }
    for (uint32_t i = 0; i < dim; i++)
        x[i] = (float)(x[i] * norm / sqrt(n2));
}

static void test_rotation_inverts(void **state)
{
    (void)state;
    static const uint32_t dims[] = {1, 2, 3, 7, 1000, 1024, 4097, 49152};
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
        dp_ddg p = params(dims[t], 0, 1);
        double *v = malloc(dims[t] * sizeof *v), *w = malloc(dims[t] * sizeof *w);
        float *x = malloc(dims[t] * sizeof *x);
        assert_true(v && w && x);
        fill(x, dims[t], 3.0, 99 + t);
        double n0 = 0, n1 = 0, top = 0;
        for (uint32_t i = 0; i < dims[t]; i++)
            n0 += (v[i] = w[i] = x[i]) * (double)x[i];
        dp_ddg_rotate(v, &p, 0);
        for (uint32_t i = 0; i < dims[t]; i++) {
            n1 += v[i] * v[i];
            top = fmax(top, fabs(v[i]));
        }
        assert_true(fabs(n1 - n0) <= 1e-12 * n0);
        if (dims[t] >= 1000) /* flat: no coordinate near the norm (a max of ~4-5 sd of 3/sqrt(P)) */
            assert_true(top < 8 * 3.0 / sqrt(dims[t] / 2.0));
        int moved = dims[t] == 1; /* a 1-value rotation is only a sign */
        for (uint32_t i = 0; i < dims[t]; i++)
            moved |= fabs(v[i] - w[i]) > 1e-9;
        assert_true(moved);
        dp_ddg_rotate(v, &p, 1);
        for (uint32_t i = 0; i < dims[t]; i++)
            assert_true(fabs(v[i] - w[i]) <= 1e-12 * 3.0);
        free(v);
        free(w);
        free(x);
    }
}

/* Noise off: decode(encode(x)) = x up to the rounding (|error| < 1/scale per coordinate before
 * the inverse rotation, so the error norm is below sqrt(dim)/scale), and the rounded vector
 * keeps Δ₂. */
static void test_round_trip_no_noise(void **state)
{
    (void)state;
    uint32_t dim = 3000;
    dp_ddg p = params(dim, 0, 1);
    float *x = malloc(dim * sizeof *x);
    int64_t *q = malloc(dim * sizeof *q);
    double *back = malloc(dim * sizeof *back);
    assert_true(x && q && back);
    fill(x, dim, 1.0, 5);
    dp_rng rng;
    dp_rng_init(&rng, org_seed, 1);
    unsigned tries = 0;
    assert_int_equal(dp_ddg_encode(q, x, &p, &rng, &tries, NULL), MU_OK);
    assert_true(tries >= 1 && tries < 50);
    double n2 = 0, e2 = 0;
    for (uint32_t i = 0; i < dim; i++)
        n2 += (double)q[i] * (double)q[i];
    assert_true(n2 <= dp_ddg_bound(&p) * dp_ddg_bound(&p));
    assert_int_equal(dp_ddg_decode(back, q, &p, NULL), MU_OK);
    for (uint32_t i = 0; i < dim; i++)
        e2 += (back[i] - x[i]) * (back[i] - x[i]);
    assert_true(sqrt(e2) < sqrt((double)dim) / p.scale);
    assert_true(sqrt(e2) > 0); /* it did round */
    dp_rng_deinit(&rng);
    free(x);
    free(q);
    free(back);
}

/* The bound holds when the input sits exactly at l2 and the scale makes rounding matter. */
static void test_conditional_rounding(void **state)
{
    (void)state;
    uint32_t dim = 4096;
    dp_ddg p = params(dim, 0, 1);
    p.scale = 4; /* c = 4 against sqrt(dim)/2 = 32: the rounding dominates the bound */
    float *x = malloc(dim * sizeof *x);
    int64_t *q = malloc(dim * sizeof *q);
    assert_true(x && q);
    fill(x, dim, 1.0, 11);
    dp_rng rng;
    dp_rng_init(&rng, org_seed, 2);
    double b2 = dp_ddg_bound(&p) * dp_ddg_bound(&p);
    unsigned total = 0;
    for (int r = 0; r < 40; r++) {
        unsigned tries;
        assert_int_equal(dp_ddg_encode(q, x, &p, &rng, &tries, NULL), MU_OK);
        double n2 = 0;
        for (uint32_t i = 0; i < dim; i++)
            n2 += (double)q[i] * (double)q[i];
        assert_true(n2 <= b2);
        total += tries;
    }
    /* accepted with probability >= 1 - β: on average fewer than 1/(1 - β) + slack draws */
    assert_true(total <= 40 * (1 / (1 - DP_DDG_BETA)) * 1.5);
    dp_rng_deinit(&rng);
    free(x);
    free(q);
}

/* n orgs: the decoded sum minus the true sum has per-coordinate variance n·σ²/scale² plus at
 * most n/(4·scale²) of rounding; with x = 0 there is no rounding and it is n·σ²/scale² within
 * sampling error (5 standard errors, 2(n σ²)² / dim' of a variance estimate). */
static void check_sum_variance(uint32_t dim, uint32_t n, uint32_t k, double norm)
{
    dp_ddg p = params(dim, 2.0, k);
    float *x = malloc(dim * sizeof *x);
    int64_t *q = malloc(dim * sizeof *q), *sum = calloc(dim, sizeof *sum);
    double *back = malloc(dim * sizeof *back), *truth = calloc(dim, sizeof *truth);
    assert_true(x && q && sum && back && truth);
    for (uint32_t o = 0; o < n; o++) {
        fill(x, dim, norm, 1000 + o);
        if (norm == 0)
            memset(x, 0, dim * sizeof *x);
        for (uint32_t i = 0; i < dim; i++)
            truth[i] += x[i];
        dp_rng rng;
        dp_rng_init(&rng, org_seed, 100 + o);
        assert_int_equal(dp_ddg_encode(q, x, &p, &rng, NULL, NULL), MU_OK);
        dp_rng_deinit(&rng);
        for (uint32_t i = 0; i < dim; i++)
            sum[i] += q[i];
    }
    assert_int_equal(dp_ddg_decode(back, sum, &p, NULL), MU_OK);
    uint64_t num, den;
    assert_int_equal(dp_ddg_sigma2(&p, &num, &den), MU_OK);
    double s2 = (double)num / (double)den;
    /* the accountant's assumption: k orgs' noise reaches the target (noise·Δ₂)², barely above */
    double target = pow(p.noise * dp_ddg_bound(&p), 2);
    assert_true(k * s2 >= target && k * s2 <= target * (1 + 1e-6) + k);
    double m = 0, v = 0;
    for (uint32_t i = 0; i < dim; i++)
        m += (back[i] - truth[i]) * p.scale;
    m /= dim;
    for (uint32_t i = 0; i < dim; i++) {
        double e = (back[i] - truth[i]) * p.scale - m;
        v += e * e;
    }
    v /= dim - 1;
    double want = n * s2, se = want * sqrt(2.0 / dim);
    assert_true(fabs(m) < 5 * sqrt(want / dim));
    if (norm == 0)
        assert_true(fabs(v - want) < 5 * se);
    else
        assert_true(v > want - 5 * se && v < want + n / 4.0 + 5 * se);
    free(x);
    free(q);
    free(sum);
    free(back);
    free(truth);
}

static void test_sum_variance(void **state)
{
    (void)state;
    check_sum_variance(20000, 5, 5, 0);   /* all survive: exactly the target */
    check_sum_variance(20000, 3, 5, 0);   /* 2 of 5 dropped: 3/5 of it, still n·σ² */
    check_sum_variance(12288, 4, 4, 1.0); /* real inputs at the bound: + rounding only */
}

/* RDP per round: with σ large enough that τ is negligible, the discrete Gaussian's α/(2z²) at
 * the target noise (σ² rounding up only lowers it); fewer survivors assumed never lowers it. */
static void test_rdp(void **state)
{
    (void)state;
    dp_ddg p = params(50000, 1.5, 10);
    double ours, ref;
    for (double a = 1.5; a < 64; a *= 2) {
        assert_int_equal(dp_ddg_rdp(&p, a, &ours), MU_OK);
        assert_int_equal(dp_rdp_discrete_gaussian(p.noise, a, &ref), MU_OK);
        assert_true(ours <= ref && ours > ref * (1 - 1e-6));
    }
    /* tiny σ: τ, the distance of a sum of discrete Gaussians from one, adds to the bound */
    dp_ddg t = {.dim = 100, .l2 = 1, .scale = 0.05, .noise = 0.3, .min_survivors = 50};
    assert_int_equal(dp_ddg_rdp(&t, 2.0, &ours), MU_OK);
    assert_int_equal(dp_rdp_discrete_gaussian(t.noise, 2.0, &ref), MU_OK);
    assert_true(ours > ref * 1.01);
    /* c colluders of k = 10: the noise of 10 - c orgs, each σ² = (zΔ₂)²/10, so by hand
     * RDP = α/2 · Δ₂²/((10 - c) σ²) = α/(2z²) · 10/(10 - c), σ² rounded up only lowering it */
    for (uint32_t c = 1; c < 10; c += 4) {
        p.colluders = c;
        assert_int_equal(dp_ddg_rdp(&p, 3.0, &ours), MU_OK);
        double hand = 3.0 / (2 * 1.5 * 1.5) * 10.0 / (10.0 - c);
        assert_true(ours <= hand && ours > hand * (1 - 1e-6));
    }
    p.colluders = 10; /* nobody honest left: no guarantee */
    assert_int_equal(dp_ddg_rdp(&p, 3.0, &ours), MU_OK);
    assert_true(isinf(ours));
    p.colluders = 0;
    p.noise = 0;
    assert_int_equal(dp_ddg_rdp(&p, 2.0, &ours), MU_ERR_INVALID);
}

/* The wrap bound by hand, its growth with n and its fall with bits; a σ² the sampler cannot
 * take is refused. */
static void test_wrap_and_limits(void **state)
{
    (void)state;
    dp_ddg p = params(4096, 1.0, 4);
    uint64_t num, den;
    assert_int_equal(dp_ddg_sigma2(&p, &num, &den), MU_OK);
    double s2 = (double)num / (double)den;
    double v = pow(8 * 256.0, 2) / 4096 + 8 * s2, room = 2048 - 8;
    double want = fmin(1, 2 * 4096 * exp(-room * room / (2 * v)));
    assert_true(fabs(dp_ddg_wrap(&p, 8, 12) - want) <= 1e-12 + 1e-9 * want);
    assert_true(dp_ddg_wrap(&p, 8, 12) > 1e-6);   /* 12 bits: not negligible */
    assert_true(dp_ddg_wrap(&p, 8, 32) < 1e-100); /* 32 bits: negligible */
    assert_true(dp_ddg_wrap(&p, 64, 12) >= dp_ddg_wrap(&p, 8, 12));
    p.scale = 1e6; /* σ² ~ 1e12/4: above the sampler's 2^32 */
    mu_diag d;
    assert_int_equal(dp_ddg_check(&p, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "sampler"));
    p = params(10, 1.0, 0);
    assert_int_equal(dp_ddg_check(&p, NULL), MU_ERR_INVALID);
}

/* The same stream gives the same output; another stream, another; a NaN is refused. */
static void test_determinism(void **state)
{
    (void)state;
    uint32_t dim = 777;
    dp_ddg p = params(dim, 1.0, 3);
    float *x = malloc(dim * sizeof *x);
    int64_t *a = malloc(dim * sizeof *a), *b = malloc(dim * sizeof *b);
    assert_true(x && a && b);
    fill(x, dim, 0.8, 3);
    dp_rng r1, r2, r3;
    dp_rng_init(&r1, org_seed, 7);
    dp_rng_init(&r2, org_seed, 7);
    dp_rng_init(&r3, org_seed, 8);
    assert_int_equal(dp_ddg_encode(a, x, &p, &r1, NULL, NULL), MU_OK);
    assert_int_equal(dp_ddg_encode(b, x, &p, &r2, NULL, NULL), MU_OK);
    assert_memory_equal(a, b, dim * sizeof *a);
    assert_int_equal(dp_ddg_encode(b, x, &p, &r3, NULL, NULL), MU_OK);
    assert_memory_not_equal(a, b, dim * sizeof *a);
    x[5] = NAN;
    assert_int_equal(dp_ddg_encode(b, x, &p, &r3, NULL, NULL), MU_ERR_INVALID);
    dp_rng_deinit(&r1);
    dp_rng_deinit(&r2);
    dp_rng_deinit(&r3);
    free(x);
    free(a);
    free(b);
}

/* The tiled, threaded Walsh-Hadamard transform at a size where stages run across tiles
 * (P = 2^17 > the 2^15 tile): R·e_k is ±(-1)^popcount(j & k)/√P in every coordinate j, exactly,
 * on 1 and 3 threads. */
static void test_rotation_large(void **state)
{
    (void)state;
    uint32_t n = 1u << 17;
    static const uint32_t ks[] = {0, 1, 12345, 65536, 131071};
    double *v = malloc(n * sizeof *v);
    assert_non_null(v);
    double f = 1 / sqrt((double)n);
    for (int th = 1; th <= 3; th += 2)
        for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
            dp_ddg p = params(n, 0, 1);
            p.threads = th;
            memset(v, 0, n * sizeof *v);
            v[ks[c]] = 1;
            dp_ddg_rotate(v, &p, 0);
            double s0 = v[0] > 0 ? 1 : -1; /* the sign D_kk */
            for (uint32_t j = 0; j < n; j++) {
                double want = s0 * (__builtin_popcount(j & ks[c]) & 1 ? -f : f);
                if (v[j] != want)
                    fail_msg("threads %d, k %u: coordinate %u is %.17g, not %.17g", th, ks[c], j,
                             v[j], want);
            }
        }
    free(v);
}

/* The whole encoding (rotation, rounding in blocks, noise) gives the same bits on 1, 2 and 3
 * threads, at a dim with two rotation blocks and several rounding blocks. */
static void test_threads(void **state)
{
    (void)state;
    uint32_t dim = 3 * 65536 + 4097;
    float *x = malloc(dim * sizeof *x);
    int64_t *a = malloc(dim * sizeof *a), *b = malloc(dim * sizeof *b);
    assert_true(x && a && b);
    fill(x, dim, 0.9, 11);
    for (int th = 1; th <= 3; th++) {
        dp_ddg p = params(dim, 1.0, 5);
        p.threads = th;
        dp_rng r;
        dp_rng_init(&r, org_seed, 3);
        assert_int_equal(dp_ddg_encode(th == 1 ? a : b, x, &p, &r, NULL, NULL), MU_OK);
        dp_rng_deinit(&r);
        if (th > 1)
            assert_memory_equal(a, b, dim * sizeof *a);
    }
    free(x);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_large),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_rotation_inverts),
        cmocka_unit_test(test_round_trip_no_noise),
        cmocka_unit_test(test_conditional_rounding),
        cmocka_unit_test(test_sum_variance),
        cmocka_unit_test(test_rdp),
        cmocka_unit_test(test_wrap_and_limits),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
