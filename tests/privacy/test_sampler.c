/* test_sampler.c - the exact discrete Gaussian sampler: a chi-square test of 10^6 draws
 * (fixed seed) against the exact pmf for three σ², the mean and variance, determinism of the
 * stream, and the rational conversion of σ². */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp_sample.h"

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

static void check_sigma2(uint64_t num, uint64_t den, uint64_t stream)
{
    double s2 = (double)num / (double)den;
    long k = (long)ceil(40 * sqrt(s2)) + 40;
    double *p = exact_pmf(s2, k);
    int64_t *v = malloc(sizeof(int64_t) * DRAWS);
    long *count = calloc((size_t)(2 * k + 1), sizeof(long));
    assert_non_null(v);
    assert_non_null(count);
    dp_rng rng;
    dp_rng_init(&rng, seed, stream);
    assert_int_equal(dp_dgauss_sample(&rng, num, den, v, DRAWS), MU_OK);
    dp_rng_deinit(&rng);
    double mean = 0, var = 0, evar = 0;
    for (size_t i = 0; i < DRAWS; i++) {
        assert_true(v[i] >= -k && v[i] <= k);
        count[v[i] + k]++;
        mean += (double)v[i];
    }
    mean /= DRAWS;
    for (size_t i = 0; i < DRAWS; i++)
        var += ((double)v[i] - mean) * ((double)v[i] - mean);
    var /= DRAWS - 1;
    for (long x = -k; x <= k; x++)
        evar += (double)x * x * p[x + k];
    /* bins: every integer with expected count >= 5; each tail lumped into its edge bin */
    long lo = 0;
    while (lo > -k && DRAWS * p[lo - 1 + k] >= 5)
        lo--;
    double chi2 = 0, e_tail = 0, o_tail = 0;
    for (long x = -k; x <= lo; x++) {
        e_tail += DRAWS * p[x + k];
        o_tail += (double)count[x + k];
    }
    chi2 += (o_tail - e_tail) * (o_tail - e_tail) / e_tail;
    e_tail = o_tail = 0;
    for (long x = -lo; x <= k; x++) {
        e_tail += DRAWS * p[x + k];
        o_tail += (double)count[x + k];
    }
    chi2 += (o_tail - e_tail) * (o_tail - e_tail) / e_tail;
    for (long x = lo + 1; x < -lo; x++) {
        double e = DRAWS * p[x + k];
        chi2 += ((double)count[x + k] - e) * ((double)count[x + k] - e) / e;
    }
    double df = (double)(-2 * lo + 1) - 1; /* bins - 1 */
    print_message("sigma2 %g: chi2 %.1f on %.0f df (0.999 quantile %.1f), mean %.4f, var %.4f "
                  "(exact %.4f)\n",
                  s2, chi2, df, chi2_q999(df), mean, var, evar);
    if (!(chi2 < chi2_q999(df)))
        fail_msg("sigma2 %g: chi2 %.1f >= %.1f on %.0f df", s2, chi2, chi2_q999(df), df);
    /* mean within 5 standard errors of 0, variance within 5 of the exact variance */
    assert_true(fabs(mean) < 5 * sqrt(evar / DRAWS));
    assert_true(fabs(var - evar) < 5 * evar * sqrt(2.0 / DRAWS));
    free(count);
    free(v);
    free(p);
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
        cmocka_unit_test(test_small_sigma),   cmocka_unit_test(test_mid_sigma),
        cmocka_unit_test(test_large_sigma),   cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_below_uniform), cmocka_unit_test(test_sigma2_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
