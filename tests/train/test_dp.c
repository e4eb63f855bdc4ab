/* test_dp.c - DP-SGD (tr_dp.h): the per-record clipped sum against a naive twin that runs each
 * record alone, the non-private step when nothing is clipped or added, the noise's
 * distribution, and Poisson / fixed-size sampling. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tr_dp.h"
#include "train/tr_testmodel.h"

enum { B = 6, T = 7 };

typedef struct {
    tr_model *m;
    int32_t in[B * T], tg[B * T];
} fixture;

/* A random model with random LoRA (B nonzero) and a random batch. */
static void setup_model(fixture *f, tr_config cfg, unsigned targets, int freeze_a, float dropout)
{
    mu_diag d = {{0}};
    f->m = tr_model_new(&cfg, &d);
    assert_non_null(f->m);
    tt_fill_base(f->m, 11);
    tr_lora_config lc = {
        .rank = 3, .alpha = 6.0f, .targets = targets, .freeze_a = freeze_a, .dropout = dropout};
    assert_int_equal(tr_lora_attach(f->m, &lc, 5, &d), 0);
    tt_fill_lora(f->m, 17);
    tt_tokens(f->in, B * T, cfg.vocab_size, 3);
    tt_tokens(f->tg, B * T, cfg.vocab_size, 4);
}

static double norm2(const float *g, int64_t n)
{
    double s = 0.0;
    for (int64_t k = 0; k < n; k++)
        s += (double)g[k] * g[k];
    return sqrt(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* (1) The naive twin: each record alone (batch of 1: its own mean token loss), its gradient
 * clipped in double and summed; tr_dp's sum (noise 0, fixed batch: G * B) must agree, and so
 * must the per-record norms. Tolerance: 1e-5 of the largest |sum| plus 1e-4 relative (the
 * two compute the same products in different row blocks, fp32). */
static void naive_twin(tr_config cfg, unsigned targets, int freeze_a)
{
    fixture f;
    setup_model(&f, cfg, targets, freeze_a, 0.0f);
    int64_t n = tr_lora_trainable_count(f.m);
    float *ref = tt_alloc(n), *got = tt_alloc(n);
    double *gi = calloc((size_t)(B * n), sizeof(double)), norms[B], sorted[B];
    assert_non_null(gi);
    mu_diag d = {{0}};
    for (int b = 0; b < B; b++) {
        tr_model_zero_grad(f.m);
        assert_int_equal(tr_model_forward(f.m, f.in + b * T, f.tg + b * T, 1, T, NULL, &d), 0);
        assert_int_equal(tr_model_backward(f.m), 0);
        const float *g = tr_lora_grad(f.m);
        for (int64_t k = 0; k < n; k++)
            gi[b * n + k] = g[k];
        norms[b] = norm2(g, n);
        sorted[b] = norms[b];
    }
    qsort(sorted, B, sizeof(double), cmp_double);
    double C = 0.5 * (sorted[B / 2 - 1] + sorted[B / 2]); /* half the records are clipped */
    for (int b = 0; b < B; b++) {
        double c = norms[b] > C ? C / norms[b] : 1.0;
        for (int64_t k = 0; k < n; k++)
            ref[k] = (float)((double)ref[k] + c * gi[b * n + k]);
    }
    tr_dp_config dc = {
        .clip = C, .noise = 0.0, .sampling = TR_DP_FIXED, .n_records = B, .batch = B, .seed = 1};
    tr_dp *dp = tr_dp_new(&dc, f.m, &d);
    assert_non_null(dp);
    assert_int_equal(tr_dp_grad(dp, f.in, f.tg, B, T, 0, got, n, NULL, &d), 0);
    for (int64_t k = 0; k < n; k++)
        got[k] *= (float)B;
    int nb, clipped;
    const double *dn = tr_dp_norms(dp, &nb, &clipped);
    assert_int_equal(nb, B);
    assert_int_equal(clipped, B / 2);
    tt_assert_close(dn, norms, B, 1e-7, 1e-4, "per-record norms");
    double mx = 0.0;
    for (int64_t k = 0; k < n; k++)
        mx = fmax(mx, fabs((double)ref[k]));
    assert_true(mx > 0.0);
    tt_assert_close(got, ref, n, 1e-5 * mx, 1e-4, "clipped sum vs naive twin");
    tr_dp_free(dp);
    free(gi);
    free(ref);
    free(got);
    tr_model_free(f.m);
}

static void test_naive_twin_gpt2(void **state)
{
    (void)state;
    naive_twin(tt_gpt2_config(), TR_T_GPT2_ALL, 0);
}

static void test_naive_twin_llama_frozen_a(void **state)
{
    (void)state;
    naive_twin(tt_llama_config(), TR_T_LLAMA_ALL, 1);
}

/* (2) Clip infinite, noise 0, fixed batch B: the DP gradient is the batch gradient, and three
 * AdamW steps give the same adapter as tr_train_step, with LoRA dropout on (both runs draw
 * the same masks). Tolerance: gradients 1e-6 of the largest plus 1e-5 relative; weights
 * 1e-6 absolute after the steps (AdamW's update is lr * m / sqrt(v): a relative 1e-5 change
 * in the gradient moves it by about that of lr = 1e-2). */
static void test_no_clip_no_noise_is_plain_step(void **state)
{
    (void)state;
    fixture a, p;
    setup_model(&a, tt_gpt2_config(), TR_T_GPT2_ALL, 0, 0.25f);
    setup_model(&p, tt_gpt2_config(), TR_T_GPT2_ALL, 0, 0.25f);
    int64_t n = tr_lora_trainable_count(a.m);
    mu_diag d = {{0}};
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-2);
    tr_optim *oa = tr_optim_new(&oc, n, &d), *op = tr_optim_new(&oc, n, &d);
    tr_dp_config dc = {.clip = INFINITY,
                       .noise = 0.0,
                       .sampling = TR_DP_FIXED,
                       .n_records = B,
                       .batch = B,
                       .seed = 9};
    tr_dp *dp = tr_dp_new(&dc, p.m, &d);
    assert_non_null(dp);
    float *g = tt_alloc(n);
    for (int s = 0; s < 3; s++) {
        float la, lp;
        /* the plain gradient, then the DP one on an identical model (same forwards count) */
        tr_model_zero_grad(a.m);
        assert_int_equal(tr_model_forward(a.m, a.in, a.tg, B, T, &la, &d), 0);
        assert_int_equal(tr_model_backward(a.m), 0);
        assert_int_equal(tr_dp_grad(dp, p.in, p.tg, B, T, (uint64_t)s, g, n, &lp, &d), 0);
        assert_float_equal(la, lp, 0.0f);
        const float *ga = tr_lora_grad(a.m);
        double mx = 0.0;
        for (int64_t k = 0; k < n; k++)
            mx = fmax(mx, fabs((double)ga[k]));
        tt_assert_close(g, ga, n, 1e-6 * mx, 1e-5, "DP gradient vs batch gradient");
        assert_int_equal(tr_optim_step(oa, tr_lora_trainable(a.m), tr_lora_grad(a.m), n, NULL), 0);
        /* the DP step proper on p (recomputes the same gradient: rewind the dropout count) */
        tr_model_set_forwards(p.m, tr_model_get_forwards(p.m) - 1);
        assert_int_equal(tr_dp_step(dp, op, p.in, p.tg, B, T, (uint64_t)s, NULL, &d), 0);
        tt_assert_close(tr_lora_trainable(p.m), tr_lora_trainable(a.m), n, 1e-6, 0.0,
                        "weights after DP step vs tr_train_step");
    }
    free(g);
    tr_dp_free(dp);
    tr_optim_free(oa);
    tr_optim_free(op);
    tr_model_free(a.m);
    tr_model_free(p.m);
}

static double phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

/* (3) The noise: 10^6 draws of a fixed seed pass a Kolmogorov-Smirnov test against N(0, 1)
 * (D sqrt(n) < 1.95, p = 0.001), with mean and variance within 5 standard errors; seeds
 * and streams reproduce and differ. Then through the step: an empty Poisson batch gives
 * G = z C xi / batch, whose sample std over the coordinates is z C / batch within 5 s.e.;
 * a caller's key gives the same noise for the same key and other noise for another. */
static void test_noise_distribution(void **state)
{
    (void)state;
    enum { NS = 1000000 };
    double *x = malloc(sizeof(double) * NS), *y = malloc(sizeof(double) * 64);
    assert_non_null(x);
    assert_non_null(y);
    tr_dp_gauss(42, 7, x, NS);
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < NS; i++)
        mean += x[i];
    mean /= NS;
    for (int i = 0; i < NS; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= NS - 1;
    assert_true(fabs(mean) < 5.0 / sqrt((double)NS));
    assert_true(fabs(var - 1.0) < 5.0 * sqrt(2.0 / NS));
    tr_dp_gauss(42, 7, y, 64);
    assert_memory_equal(x, y, 64 * sizeof(double));
    tr_dp_gauss(42, 8, y, 64);
    assert_memory_not_equal(x, y, 64 * sizeof(double));
    tr_dp_gauss(43, 7, y, 64);
    assert_memory_not_equal(x, y, 64 * sizeof(double));
    qsort(x, NS, sizeof(double), cmp_double);
    double D = 0.0;
    for (int i = 0; i < NS; i++) {
        double F = phi(x[i]);
        D = fmax(D, fmax(fabs(F - (double)i / NS), fabs((double)(i + 1) / NS - F)));
    }
    print_message("KS D sqrt(n) = %.3f, mean %.2e, var %.6f\n", D * sqrt((double)NS), mean, var);
    assert_true(D * sqrt((double)NS) < 1.95);
    free(x);
    free(y);

    fixture f;
    setup_model(&f, tt_gpt2_config(), TR_T_GPT2_ALL, 0, 0.0f);
    int64_t n = tr_lora_trainable_count(f.m);
    mu_diag d = {{0}};
    tr_dp_config dc = {.clip = 0.5,
                       .noise = 1.3,
                       .sampling = TR_DP_POISSON,
                       .n_records = 100,
                       .batch = 4,
                       .seed = 77};
    tr_dp *dp = tr_dp_new(&dc, f.m, &d);
    float *g = tt_alloc(n), loss;
    assert_int_equal(tr_dp_grad(dp, NULL, NULL, 0, T, 3, g, n, &loss, &d), 0);
    assert_true(isnan(loss));
    double s2 = 0.0, want = 1.3 * 0.5 / 4;
    for (int64_t k = 0; k < n; k++)
        s2 += (double)g[k] * g[k];
    double sd = sqrt(s2 / (double)n);
    assert_true(fabs(sd / want - 1.0) < 5.0 * sqrt(0.5 / (double)n));
    /* a caller's key instead of the seed: the same key the same noise, another key other */
    uint8_t key[TR_DP_KEY_BYTES] = {1, 2, 3};
    float *g1 = tt_alloc(n), *g2 = tt_alloc(n);
    dc.key = key;
    tr_dp *k1 = tr_dp_new(&dc, f.m, &d), *k2 = tr_dp_new(&dc, f.m, &d);
    key[0] = 9;
    tr_dp *k3 = tr_dp_new(&dc, f.m, &d);
    assert_int_equal(tr_dp_grad(k1, NULL, NULL, 0, T, 3, g1, n, NULL, &d), 0);
    assert_int_equal(tr_dp_grad(k2, NULL, NULL, 0, T, 3, g2, n, NULL, &d), 0);
    assert_memory_equal(g1, g2, sizeof(float) * (size_t)n);
    assert_memory_not_equal(g1, g, sizeof(float) * (size_t)n);
    assert_int_equal(tr_dp_grad(k3, NULL, NULL, 0, T, 3, g2, n, NULL, &d), 0);
    assert_memory_not_equal(g1, g2, sizeof(float) * (size_t)n);
    tr_dp_free(k1);
    tr_dp_free(k2);
    tr_dp_free(k3);
    free(g1);
    free(g2);
    free(g);
    tr_dp_free(dp);
    tr_model_free(f.m);
}

/* (4) Poisson: over S steps each of N records is in a step's sample with probability q:
 * the total count within 5 s.e. of S N q, the chi-square of the per-record counts (each
 * Binomial(S, q)) within 5 s.d. of N, and the batch sizes' variance within 15% of
 * N q (1 - q). Fixed: exactly `batch` distinct records, ascending, and every record
 * equally often (the same chi-square). Both: a step's sample is a function of (seed, step). */
static void sampling_check(tr_dp_sampling how)
{
    enum { N = 400, BATCH = 20, S = 3000 };
    fixture f;
    setup_model(&f, tt_gpt2_config(), TR_T_C_ATTN, 0, 0.0f);
    mu_diag d = {{0}};
    tr_dp_config dc = {
        .clip = 1.0, .noise = 1.0, .sampling = how, .n_records = N, .batch = BATCH, .seed = 5};
    tr_dp *dp = tr_dp_new(&dc, f.m, &d);
    assert_non_null(dp);
    int64_t *idx = malloc(sizeof(int64_t) * N), again[N];
    long count[N] = {0};
    double tot = 0.0, sq = 0.0, q = (double)BATCH / N;
    for (int s = 0; s < S; s++) {
        int64_t k = tr_dp_sample(dp, (uint64_t)s, idx);
        assert_true(k >= 0 && k <= N);
        if (how == TR_DP_FIXED)
            assert_int_equal(k, BATCH);
        for (int64_t i = 0; i < k; i++) {
            assert_true(idx[i] >= 0 && idx[i] < N);
            if (i)
                assert_true(idx[i] > idx[i - 1]);
            count[idx[i]]++;
        }
        tot += (double)k;
        sq += (double)k * k;
        if (s == 5) {
            assert_int_equal(tr_dp_sample(dp, 5, again), k);
            assert_memory_equal(again, idx, sizeof(int64_t) * (size_t)k);
        }
    }
    double mean = tot / S, var = sq / S - mean * mean;
    double chi = 0.0, e = S * q;
    for (int i = 0; i < N; i++)
        chi += (count[i] - e) * (count[i] - e) / (e * (1.0 - q));
    print_message("sampling %d: mean batch %.3f var %.3f chi2 %.1f (N %d)\n", (int)how, mean, var,
                  chi, N);
    if (how == TR_DP_POISSON) {
        assert_true(fabs(tot - S * N * q) < 5.0 * sqrt(S * N * q * (1 - q)));
        assert_true(fabs(var / (N * q * (1 - q)) - 1.0) < 0.15);
    } else {
        assert_true(var == 0.0);
    }
    /* Each count is Binomial(S, q) in both (fixed: a record is in a step's sample with
     * probability batch / N), so the statistic has mean N and variance at most about 2N. */
    assert_true(fabs(chi - N) < 5.0 * sqrt(2.0 * N));
    free(idx);
    tr_dp_free(dp);
    tr_model_free(f.m);
}

static void test_poisson_sampling(void **state)
{
    (void)state;
    sampling_check(TR_DP_POISSON);
}

static void test_fixed_sampling(void **state)
{
    (void)state;
    sampling_check(TR_DP_FIXED);
}

/* Bad configs are refused, naming the field. */
static void test_config_checks(void **state)
{
    (void)state;
    tr_dp_config ok = {
        .clip = 1.0, .noise = 1.0, .sampling = TR_DP_POISSON, .n_records = 10, .batch = 2};
    mu_diag d = {{0}};
    assert_int_equal(tr_dp_config_check(&ok, &d), 0);
    tr_dp_config c = ok;
    c.clip = 0;
    assert_int_equal(tr_dp_config_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "clip"));
    c = ok;
    c.clip = INFINITY;
    assert_int_equal(tr_dp_config_check(&c, &d), MU_ERR_INVALID);
    c.noise = 0;
    assert_int_equal(tr_dp_config_check(&c, &d), 0);
    c = ok;
    c.noise = -1;
    assert_int_equal(tr_dp_config_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "noise"));
    c = ok;
    c.batch = 11;
    assert_int_equal(tr_dp_config_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "batch"));
    c = ok;
    c.sampling = 0;
    assert_int_equal(tr_dp_config_check(&c, &d), MU_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naive_twin_gpt2),
        cmocka_unit_test(test_naive_twin_llama_frozen_a),
        cmocka_unit_test(test_no_clip_no_noise_is_plain_step),
        cmocka_unit_test(test_noise_distribution),
        cmocka_unit_test(test_poisson_sampling),
        cmocka_unit_test(test_fixed_sampling),
        cmocka_unit_test(test_config_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
