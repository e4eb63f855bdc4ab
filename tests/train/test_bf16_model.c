/* The bf16 base (tr_model_set_bf16) on tiny random models: which tensors become bf16 and how
 * (round to nearest even, back exactly), the loss and LoRA gradients against the fp32 path
 * within bf16's tolerance, the same bits on a second run, generation against the full
 * forward, bf16 loading from an HF folder, and the non-finite check on bf16 tensors.
 *
 * Tolerances, bf16 mode against the fp32 path on the same (unrounded) weights: loss within
 * 5e-3 relative, LoRA gradients within 8e-2 relative L2 error (measured when written: loss
 * 1.7e-3 / 1.7e-4 and gradients 4.3e-2 / 1.6e-2 for the Llama / GPT-2 models, whose random
 * weights of scale 0.5 make large activations), and closer to fp32 on the bf16-rounded
 * weights (then only the activations' rounding is left). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tr_bf16.h"
#include "tr_generate.h"
#include "tr_hf.h"
#include "train/tr_testmodel.h"

#define B 2
#define T 24

static tr_config cfg_llama(void)
{
    return (tr_config){.family = TR_LLAMA,
                       .vocab_size = 67,
                       .max_pos = 32,
                       .d_model = 40,
                       .n_layer = 2,
                       .n_head = 4,
                       .n_kv_head = 2,
                       .d_ff = 56,
                       .norm_eps = 1e-6f,
                       .rope_theta = 1000.0f,
                       .qkv_bias = 1,
                       .tied_head = 0};
}

static tr_config cfg_gpt2(void)
{
    return (tr_config){.family = TR_GPT2,
                       .vocab_size = 53,
                       .max_pos = 32,
                       .d_model = 36,
                       .n_layer = 2,
                       .n_head = 3,
                       .norm_eps = 1e-5f,
                       .tied_head = 1};
}

static tr_model *make(tr_config c, uint64_t seed)
{
    mu_diag d = {{0}};
    tr_model *m = tr_model_new(&c, &d);
    assert_non_null(m);
    tt_fill_base(m, seed);
    tr_lora_config lc = {
        .rank = 4, .alpha = 8.0f, .targets = c.family == TR_GPT2 ? TR_T_GPT2_ALL : TR_T_LLAMA_ALL};
    assert_int_equal(tr_lora_attach(m, &lc, 7, &d), MU_OK);
    tt_fill_lora(m, seed + 1);
    return m;
}

/* One forward + backward; returns the loss, gradient copied into g (trainable count). */
static float step(tr_model *m, int chunk, float *g)
{
    int32_t in[B * T], tg[B * T];
    const tr_config *c = tr_model_config(m);
    tt_tokens(in, B * T, c->vocab_size, 11);
    tt_tokens(tg, B * T, c->vocab_size, 12);
    tg[3] = -1; /* an ignored target */
    mu_diag d = {{0}};
    float loss = 0.0f;
    assert_int_equal(tr_model_set_ce_chunk(m, chunk), MU_OK);
    tr_model_zero_grad(m);
    if (tr_model_forward(m, in, tg, B, T, &loss, &d) < 0)
        fail_msg("%s", d.msg);
    assert_int_equal(tr_model_backward(m), MU_OK);
    memcpy(g, tr_lora_grad(m), sizeof(float) * (size_t)tr_lora_trainable_count(m));
    return loss;
}

#define rel_l2 tt_rel_l2

static void test_storage(void **state)
{
    (void)state;
    tr_config cfgs[2] = {cfg_llama(), cfg_gpt2()};
    for (int k = 0; k < 2; k++) {
        tr_model *m = make(cfgs[k], 5);
        int n = tr_model_base_count(m);
        float **keep = calloc((size_t)n, sizeof *keep);
        assert_non_null(keep);
        for (int i = 0; i < n; i++) {
            tr_tensor t;
            tr_model_base_tensor(m, i, &t);
            assert_null(t.bf16);
            keep[i] = tt_alloc(t.numel);
            memcpy(keep[i], t.data, sizeof(float) * (size_t)t.numel);
        }
        assert_int_equal(tr_model_bf16(m), 0);
        assert_int_equal(tr_model_set_bf16(m, 2), MU_ERR_INVALID);
        assert_int_equal(tr_model_set_bf16(m, 1), MU_OK);
        assert_int_equal(tr_model_bf16(m), 1);
        int n2 = 0;
        for (int i = 0; i < n; i++) {
            tr_tensor t;
            tr_model_base_tensor(m, i, &t);
            if (t.ndim == 2) { /* every 2-D tensor, rounded to nearest even */
                n2++;
                assert_null(t.data);
                assert_non_null(t.bf16);
                for (int64_t j = 0; j < t.numel; j++)
                    assert_int_equal(t.bf16[j], tr_bf16_from_f32(keep[i][j]));
            } else { /* norms and biases: fp32, unchanged */
                assert_null(t.bf16);
                assert_memory_equal(t.data, keep[i], sizeof(float) * (size_t)t.numel);
            }
        }
        assert_true(n2 >= 9);
        assert_int_equal(tr_model_check_finite(m, 0, "base", NULL), MU_OK);
        assert_int_equal(tr_model_set_bf16(m, 0), MU_OK);
        for (int i = 0; i < n; i++) {
            tr_tensor t;
            tr_model_base_tensor(m, i, &t);
            assert_null(t.bf16);
            for (int64_t j = 0; j < t.numel; j++)
                assert_true(t.data[j] == (t.ndim == 2 ? tr_bf16_to_f32(tr_bf16_from_f32(keep[i][j]))
                                                      : keep[i][j]));
            free(keep[i]);
        }
        /* a NaN in a bf16 tensor is found and named */
        assert_int_equal(tr_model_set_bf16(m, 1), MU_OK);
        tr_tensor t;
        tr_model_base_tensor(m, 0, &t);
        t.bf16[5] = 0x7fc0;
        mu_diag d = {{0}};
        assert_int_equal(tr_model_check_finite(m, 0, "base", &d), MU_ERR_INVALID);
        assert_non_null(strstr(d.msg, "non-finite value (nan) at index 5"));
        free(keep);
        tr_model_free(m);
    }
}

/* bf16 against fp32 on the same model, native and portable, full and chunked head. */
static void check_vs_fp32(tr_config c)
{
    tr_model *m = make(c, 21);
    int64_t np = tr_lora_trainable_count(m);
    float *g32 = tt_alloc(np), *gr = tt_alloc(np), *g16 = tt_alloc(np), *g2 = tt_alloc(np);
    float l32 = step(m, TR_CE_FULL, g32);
    /* fp32 on the bf16-rounded weights */
    assert_int_equal(tr_model_set_bf16(m, 1), MU_OK);
    assert_int_equal(tr_model_set_bf16(m, 0), MU_OK);
    float lr = step(m, TR_CE_FULL, gr);
    assert_int_equal(tr_model_set_bf16(m, 1), MU_OK);
    for (int portable = 0; portable < 2; portable++) {
        if (!portable && !tr_bf16_cpu_native())
            continue;
        tr_bf16_set_portable(portable);
        for (int chunk = TR_CE_FULL; chunk <= 7; chunk += 8) {
            float l16 = step(m, chunk, g16);
            double el = fabs((double)l16 - l32) / fabs((double)l32);
            double eg = rel_l2(g16, g32, np), er = rel_l2(g16, gr, np);
            print_message("%s %s chunk %d: loss %.7f vs fp32 %.7f (relative %.2g), gradients "
                          "relative L2 %.3g vs fp32, %.3g vs fp32 on rounded weights\n",
                          c.family == TR_GPT2 ? "gpt2" : "llama", portable ? "portable" : "native",
                          chunk, (double)l16, (double)l32, el, eg, er);
            assert_true(el <= 5e-3);
            assert_true(eg <= 8e-2);
            assert_true(er <= eg); /* rounding the weights is part of the difference */
            (void)lr;
            /* same seed + config = same bits */
            float l2 = step(m, chunk, g2);
            assert_true(l2 == l16);
            assert_memory_equal(g2, g16, sizeof(float) * (size_t)np);
        }
    }
    tr_bf16_set_portable(0);
    free(g32), free(gr), free(g16), free(g2);
    tr_model_free(m);
}

static void test_vs_fp32_llama(void **state)
{
    (void)state;
    check_vs_fp32(cfg_llama());
}

static void test_vs_fp32_gpt2(void **state)
{
    (void)state;
    check_vs_fp32(cfg_gpt2());
}

/* Generation on a bf16 base: every fed token's logits against the eval forward's. */
static void test_generate(void **state)
{
    (void)state;
    tr_config cs[2] = {cfg_llama(), cfg_gpt2()};
    for (int k = 0; k < 2; k++) {
        tr_model *m = make(cs[k], 31);
        assert_int_equal(tr_model_set_bf16(m, 1), MU_OK);
        int n = T, V = cs[k].vocab_size;
        int32_t tok[T];
        tt_tokens(tok, n, V, 3);
        mu_diag d = {{0}};
        if (tr_model_eval(m, tok, NULL, 1, n, NULL, &d) < 0)
            fail_msg("%s", d.msg);
        const float *full = tr_model_logits(m);
        tr_gen *g = tr_gen_new(m, 0, &d);
        assert_non_null(g);
        float *lg = tt_alloc(V);
        double mx = 0.0, worst = 0.0;
        for (int i = 0; i < n * V; i++)
            mx = fmax(mx, fabs(full[i]));
        for (int i = 0; i < n; i++) {
            assert_int_equal(tr_gen_feed(g, tok + i, 1, lg, &d), MU_OK);
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(lg[v] - full[(int64_t)i * V + v]));
        }
        print_message("generate on bf16: max |diff| %.3g of max |logit| %.3g\n", worst, mx);
        assert_true(worst <= 1e-5 * mx);
        free(lg);
        tr_gen_free(g);
        tr_model_free(m);
    }
}

/* tr_hf_model_load_bf16 on an F32 folder: every 2-D tensor the fp32 load's rounded to bf16. */
static void test_hf_load(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ref/llama", TR_TEST_DATA_DIR);
    mu_diag d = {{0}};
    int err = 0;
    tr_model *a = tr_hf_model_load(dir, &err, &d), *b = tr_hf_model_load_bf16(dir, 1, &err, &d);
    if (!a || !b)
        fail_msg("%s", d.msg);
    assert_int_equal(tr_model_bf16(b), 1);
    for (int i = 0; i < tr_model_base_count(a); i++) {
        tr_tensor x, y;
        tr_model_base_tensor(a, i, &x);
        tr_model_base_tensor(b, i, &y);
        assert_string_equal(x.name, y.name);
        if (x.ndim == 2) {
            assert_non_null(y.bf16);
            for (int64_t j = 0; j < x.numel; j++)
                assert_int_equal(y.bf16[j], tr_bf16_from_f32(x.data[j]));
        } else {
            assert_memory_equal(y.data, x.data, sizeof(float) * (size_t)x.numel);
        }
    }
    tr_model_free(a);
    tr_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage),      cmocka_unit_test(test_vs_fp32_llama),
        cmocka_unit_test(test_vs_fp32_gpt2), cmocka_unit_test(test_generate),
        cmocka_unit_test(test_hf_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
