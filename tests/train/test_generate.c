/* Generation (tr_generate.h): the KV-cache forward against the full-sequence eval forward,
 * position by position, for GPT-2, Llama (GQA, llama3 rope_scaling, biases) and Qwen3 (q/k
 * norms, head_dim != C / H, tied head), Gemma 2 (softcaps, sliding window) and Gemma 3 (q/k
 * norms, window, local RoPE), with and without a LoRA adapter, fed in several chunk
 * sizes and on 1 and 2 threads; greedy decoding against the argmax of the full forward; the
 * samplers' distributions against the softmax by a chi-square bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "tr_generate.h"
#include "train/tr_testmodel.h"

#define SEQ 80 /* more than TR_GEN_CHUNK: prefill runs in two chunks */

static tr_config cfg_gpt2(void)
{
    return (tr_config){.family = TR_GPT2,
                       .vocab_size = 41,
                       .max_pos = 96,
                       .d_model = 32,
                       .n_layer = 2,
                       .n_head = 4,
                       .norm_eps = 1e-5f,
                       .tied_head = 1};
}

static tr_config cfg_llama(void)
{
    return (tr_config){.family = TR_LLAMA,
                       .vocab_size = 37,
                       .max_pos = 96,
                       .d_model = 32,
                       .n_layer = 2,
                       .n_head = 4,
                       .n_kv_head = 2,
                       .d_ff = 48,
                       .norm_eps = 1e-6f,
                       .rope_theta = 1000.0f,
                       .rope_scaling = {.type = TR_ROPE_LLAMA3,
                                        .factor = 8.0,
                                        .low_freq_factor = 1.0,
                                        .high_freq_factor = 4.0,
                                        .orig_max_pos = 16},
                       .qkv_bias = 1,
                       .o_bias = 1};
}

static tr_config cfg_qwen3(void)
{
    return (tr_config){.family = TR_LLAMA,
                       .vocab_size = 43,
                       .max_pos = 96,
                       .d_model = 32,
                       .n_layer = 2,
                       .n_head = 4,
                       .n_kv_head = 1,
                       .head_dim = 16,
                       .d_ff = 40,
                       .norm_eps = 1e-6f,
                       .rope_theta = 1e6f,
                       .tied_head = 1,
                       .qk_norm = 1};
}

/* Gemma 2: softcaps that bite, a window of 6 on the even layers (the cache holds all 80
 * positions, so only the window limits what a row reads); Gemma 3: q/k norms, window 5 on two
 * of three layers, local RoPE theta. */
static tr_config cfg_gemma(int v)
{
    tr_config c = {.family = TR_LLAMA,
                   .vocab_size = 39,
                   .max_pos = 96,
                   .d_model = 32,
                   .n_layer = 3,
                   .n_head = 4,
                   .n_kv_head = 2,
                   .head_dim = 12,
                   .d_ff = 40,
                   .norm_eps = 1e-6f,
                   .rope_theta = 10000.0f,
                   .tied_head = 1,
                   .gemma = v,
                   .attn_scalar = 10.0f};
    if (v == 2) {
        c.attn_softcap = 1.5f;
        c.final_softcap = 2.0f;
        c.sliding_window = 6;
        c.sliding_pattern = 2;
    } else {
        c.qk_norm = 1;
        c.sliding_window = 5;
        c.sliding_pattern = 3;
        c.rope_local_theta = 100.0f;
        c.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LINEAR, .factor = 2.0};
    }
    return c;
}

/* Wide enough that the few-row products split their columns over 2 threads. */
static tr_config cfg_wide(void)
{
    return (tr_config){.family = TR_LLAMA,
                       .vocab_size = 1200,
                       .max_pos = 96,
                       .d_model = 256,
                       .n_layer = 1,
                       .n_head = 4,
                       .n_kv_head = 2,
                       .d_ff = 512,
                       .norm_eps = 1e-6f,
                       .rope_theta = 10000.0f};
}

static tr_model *make(tr_config c, int lora, uint64_t seed)
{
    tr_model *m = tr_model_new(&c, NULL);
    assert_non_null(m);
    tt_fill_base(m, seed);
    if (lora) {
        tr_lora_config l = {.rank = 4,
                            .alpha = 8.0f,
                            .targets = c.family == TR_GPT2 ? TR_T_GPT2_ALL : TR_T_LLAMA_ALL};
        assert_int_equal(tr_lora_attach(m, &l, seed + 1, NULL), MU_OK);
        tt_fill_lora(m, seed + 2);
    }
    return m;
}

/* Largest |cached - full| over every logit of positions first..SEQ-1, fed in pieces of
 * `piece` tokens after a prefill of `first` tokens, relative to the largest |full| logit. */
static double cache_vs_full(tr_model *m, const int32_t *tok, int first, int piece)
{
    int V = tr_model_config(m)->vocab_size;
    assert_int_equal(tr_model_eval(m, tok, NULL, 1, SEQ, NULL, NULL), MU_OK);
    const float *full = tr_model_logits(m);
    double scale = 0.0, worst = 0.0;
    for (int64_t i = 0; i < (int64_t)SEQ * V; i++)
        scale = fmax(scale, fabs(full[i]));
    tr_gen *g = tr_gen_new(m, SEQ, NULL);
    assert_non_null(g);
    float *lg = tt_alloc(V);
    for (int at = 0; at < SEQ;) {
        int n = at == 0 ? first : (SEQ - at < piece ? SEQ - at : piece);
        assert_int_equal(tr_gen_feed(g, tok + at, n, lg, NULL), MU_OK);
        at += n;
        assert_int_equal(tr_gen_pos(g), at);
        const float *ref = full + (int64_t)(at - 1) * V;
        for (int v = 0; v < V; v++)
            worst = fmax(worst, fabs((double)lg[v] - ref[v]));
    }
    free(lg);
    tr_gen_free(g);
    return worst / scale;
}

static void check_family(tr_config c, const char *name, int threads)
{
    tr_threads_set(threads);
    int32_t tok[SEQ];
    for (int lora = 0; lora <= 1; lora++) {
        tr_model *m = make(c, lora, 100 + (uint64_t)lora);
        tt_tokens(tok, SEQ, c.vocab_size, 7);
        static const int splits[][2] = {{67, 1}, {1, 1}, {5, 5}, {20, 17}};
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            double r = cache_vs_full(m, tok, splits[s][0], splits[s][1]);
            printf("%s lora %d threads %d prefill %d then %d: max |diff| %.2e of max |logit|\n",
                   name, lora, threads, splits[s][0], splits[s][1], r);
            /* fp32 sums of up to K = max(C, F) terms in another order: K/2 ulps of scale */
            const tr_config *v = tr_model_config(m);
            double tol = 0.5 * (v->d_model > v->d_ff ? v->d_model : v->d_ff) * FLT_EPSILON;
            if (!(r <= tol))
                fail_msg("%s: cached logits differ from the full forward by %.3g > %.3g", name, r,
                         tol);
        }
        tr_model_free(m);
    }
    tr_threads_set(0);
}

static void test_cache_gpt2(void **st)
{
    (void)st;
    check_family(cfg_gpt2(), "gpt2", 1);
}

static void test_cache_llama(void **st)
{
    (void)st;
    check_family(cfg_llama(), "llama", 1);
    check_family(cfg_llama(), "llama", 2);
}

static void test_cache_qwen3(void **st)
{
    (void)st;
    check_family(cfg_qwen3(), "qwen3", 1);
}

static void test_cache_gemma(void **st)
{
    (void)st;
    check_family(cfg_gemma(2), "gemma2", 1);
    check_family(cfg_gemma(2), "gemma2", 2);
    check_family(cfg_gemma(3), "gemma3", 1);
}

static void test_cache_wide(void **st)
{
    (void)st;
    check_family(cfg_wide(), "wide", 2);
}

static void test_feed_errors(void **st)
{
    (void)st;
    tr_model *m = make(cfg_llama(), 0, 3);
    mu_diag d = {0};
    assert_null(tr_gen_new(m, 97, &d));
    assert_null(tr_gen_new(m, -1, NULL));
    tr_gen *g = tr_gen_new(m, 4, NULL);
    assert_non_null(g);
    int32_t tok[5] = {1, 2, 3, 4, 5}, bad[1] = {37};
    assert_int_equal(tr_gen_feed(g, tok, 5, NULL, &d), MU_ERR_INVALID);
    assert_int_equal(tr_gen_feed(g, tok, 0, NULL, NULL), MU_ERR_INVALID);
    assert_int_equal(tr_gen_feed(g, bad, 1, NULL, &d), MU_ERR_INVALID);
    assert_int_equal(tr_gen_pos(g), 0);
    assert_int_equal(tr_gen_feed(g, tok, 4, NULL, NULL), MU_OK);
    assert_int_equal(tr_gen_feed(g, tok, 1, NULL, NULL), MU_ERR_INVALID);
    tr_gen_reset(g);
    assert_int_equal(tr_gen_feed(g, tok, 4, NULL, NULL), MU_OK);
    tr_gen_free(g);
    tr_gen_free(NULL);
    tr_model_free(m);
}

/* Greedy decoding with the cache gives, at every step, the argmax of the full forward over
 * the prompt and what was generated so far. */
static void test_greedy_is_argmax(void **st)
{
    (void)st;
    tr_config cs[3] = {cfg_gpt2(), cfg_llama(), cfg_qwen3()};
    for (int k = 0; k < 3; k++) {
        tr_model *m = make(cs[k], 1, 50 + (uint64_t)k);
        int V = cs[k].vocab_size, P = 6, NGEN = 40;
        int32_t tok[SEQ];
        tt_tokens(tok, P, V, 11);
        tr_sample_config sc = {.temperature = 0.0f, .top_p = 1.0f};
        tr_sampler *s = tr_sampler_new(&sc, 1, V, NULL);
        tr_gen *g = tr_gen_new(m, P + NGEN, NULL);
        assert_non_null(s);
        assert_non_null(g);
        float *lg = tt_alloc(V);
        assert_int_equal(tr_gen_feed(g, tok, P, lg, NULL), MU_OK);
        for (int i = 0; i < NGEN; i++) {
            tok[P + i] = tr_sampler_pick(s, lg, V);
            assert_int_equal(tr_gen_feed(g, tok + P + i, 1, lg, NULL), MU_OK);
        }
        assert_int_equal(tr_model_eval(m, tok, NULL, 1, P + NGEN, NULL, NULL), MU_OK);
        const float *full = tr_model_logits(m);
        for (int i = 0; i < NGEN; i++)
            assert_int_equal(tok[P + i], tr_argmax(full + (int64_t)(P + i - 1) * V, V));
        free(lg);
        tr_gen_free(g);
        tr_sampler_free(s);
        tr_model_free(m);
    }
}

static void test_top_p_small_is_greedy(void **st)
{
    (void)st;
    enum { V = 500 };
    float lg[V];
    for (int k = 0; k < 50; k++) {
        tt_fill(lg, V, 900 + (uint64_t)k, 4.0f);
        tr_sample_config sc = {.temperature = 1.0f, .top_p = 1e-6f};
        tr_sampler *s = tr_sampler_new(&sc, (uint64_t)k, V, NULL);
        assert_int_equal(tr_sampler_pick(s, lg, V), tr_argmax(lg, V));
        tr_sampler_free(s);
        sc = (tr_sample_config){.temperature = 0.7f, .top_k = 1, .top_p = 1.0f};
        s = tr_sampler_new(&sc, (uint64_t)k, V, NULL);
        assert_int_equal(tr_sampler_pick(s, lg, V), tr_argmax(lg, V));
        tr_sampler_free(s);
    }
}

/* Counts of `draws` picks against the expected probabilities: fails on a token drawn that
 * has probability 0, or a chi-square above `bound`. */
static void chi_square(const tr_sample_config *sc, const float *lg, int V, const double *want,
                       double bound, const char *what)
{
    enum { DRAWS = 200000 };
    long count[16] = {0};
    tr_sampler *s = tr_sampler_new(sc, 12345, V, NULL);
    assert_non_null(s);
    for (int i = 0; i < DRAWS; i++) {
        int32_t t = tr_sampler_pick(s, lg, V);
        assert_true(t >= 0 && t < V);
        count[t]++;
    }
    tr_sampler_free(s);
    double chi = 0.0;
    for (int v = 0; v < V; v++) {
        if (want[v] == 0.0) {
            if (count[v])
                fail_msg("%s: token %d drawn %ld times, probability 0", what, v, count[v]);
            continue;
        }
        double e = want[v] * DRAWS;
        chi += (count[v] - e) * (count[v] - e) / e;
    }
    printf("%s: chi-square %.2f (bound %.1f)\n", what, chi, bound);
    if (!(chi <= bound))
        fail_msg("%s: chi-square %.2f above %.1f", what, chi, bound);
}

static void test_sampler_distribution(void **st)
{
    (void)st;
    enum { V = 10 };
    const float lg[V] = {1.0f, 2.5f, -0.5f, 0.3f, 2.0f, 1.7f, -1.0f, 0.9f, 2.2f, 0.0f};
    const float T = 0.8f;
    double p[V], tot = 0.0;
    for (int v = 0; v < V; v++)
        tot += p[v] = exp((lg[v] - 2.5) / T);
    for (int v = 0; v < V; v++)
        p[v] /= tot;
    /* chi-square critical values at 1e-4: 9 dof 33.7, 3 dof 21.1, 4 dof 23.5 */
    tr_sample_config sc = {.temperature = T, .top_p = 1.0f};
    chi_square(&sc, lg, V, p, 33.7, "temperature 0.8");

    /* top-k 4: ids 1 (2.5), 8 (2.2), 4 (2.0), 5 (1.7), renormalised */
    double q[V] = {0}, qt = p[1] + p[8] + p[4] + p[5];
    q[1] = p[1] / qt, q[8] = p[8] / qt, q[4] = p[4] / qt, q[5] = p[5] / qt;
    sc.top_k = 4;
    chi_square(&sc, lg, V, q, 21.1, "top-k 4");

    /* top-p: the smallest most-likely set reaching p: 1, 8, 4 hold 0.331 + 0.227 + 0.177 =
     * 0.735 >= 0.62, while 1, 8 hold 0.558 < 0.62. */
    double r[V] = {0}, rt = p[1] + p[8] + p[4];
    assert_true(p[1] + p[8] < 0.62 && rt >= 0.62);
    r[1] = p[1] / rt, r[8] = p[8] / rt, r[4] = p[4] / rt;
    sc.top_k = 0;
    sc.top_p = 0.62f;
    chi_square(&sc, lg, V, r, 18.4, "top-p 0.62"); /* 2 dof */

    /* top-k 4 then top-p 0.75 of what is left: 1, 8, 4 hold 0.735 / 0.857 = 0.86 >= 0.75,
     * 1, 8 0.65 < 0.75. */
    sc.top_k = 4;
    sc.top_p = 0.75f;
    assert_true((p[1] + p[8]) / qt < 0.75 && rt / qt >= 0.75);
    chi_square(&sc, lg, V, r, 18.4, "top-k 4 + top-p 0.75");
}

static void test_sampler_seed(void **st)
{
    (void)st;
    enum { V = 300, N = 200 };
    float lg[V];
    tt_fill(lg, V, 5, 3.0f);
    tr_sample_config sc = {.temperature = 1.2f, .top_k = 50, .top_p = 0.9f};
    int32_t a[N], b[N], c[N];
    tr_sampler *s1 = tr_sampler_new(&sc, 42, V, NULL), *s2 = tr_sampler_new(&sc, 42, V, NULL);
    tr_sampler *s3 = tr_sampler_new(&sc, 43, V, NULL);
    for (int i = 0; i < N; i++) {
        a[i] = tr_sampler_pick(s1, lg, V);
        b[i] = tr_sampler_pick(s2, lg, V);
        c[i] = tr_sampler_pick(s3, lg, V);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
    tr_sampler_free(s1);
    tr_sampler_free(s2);
    tr_sampler_free(s3);

    mu_diag d = {0};
    tr_sample_config bad[] = {
        {-1.0f, 0, 1.0f}, {1.0f, -1, 1.0f}, {1.0f, 0, 0.0f}, {1.0f, 0, 1.5f}, {NAN, 0, 1.0f}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(tr_sampler_new(&bad[i], 1, V, &d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_gpt2),           cmocka_unit_test(test_cache_llama),
        cmocka_unit_test(test_cache_qwen3),          cmocka_unit_test(test_cache_gemma),
        cmocka_unit_test(test_cache_wide),           cmocka_unit_test(test_feed_errors),
        cmocka_unit_test(test_greedy_is_argmax),     cmocka_unit_test(test_top_p_small_is_greedy),
        cmocka_unit_test(test_sampler_distribution), cmocka_unit_test(test_sampler_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
