/* Finite-difference checks of whole-model LoRA gradients: tiny GPT-2 and tiny Llama (GQA,
 * q/k/v biases, untied head), every target, both modes, rsLoRA, a subset of targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tr_model.h"
#include "train/tr_testmodel.h"

enum { B = 2, T = 5 };

/* Finite-difference step: 1e-2, smaller where the loss curves faster than that step allows. */
static float g_fd_h = 1e-2f;

typedef struct {
    tr_model *m;
    int32_t in[B * T], tg[B * T];
    int dropout;
} ctx;

/* With dropout the training forward is a fixed function of the parameters once the forward
 * counter (which seeds the masks) is reset, so it can be differentiated numerically. */
static double loss_of(void *p)
{
    ctx *c = p;
    float loss = 0.0f;
    if (c->dropout) {
        tr_model_set_forwards(c->m, 0);
        assert_int_equal(tr_model_forward(c->m, c->in, c->tg, B, T, &loss, NULL), MU_OK);
    } else {
        assert_int_equal(tr_model_eval(c->m, c->in, c->tg, B, T, &loss, NULL), MU_OK);
    }
    return loss;
}

static void check_model_dropout(tr_config cfg, unsigned targets, int freeze_a, int rslora,
                                float dropout)
{
    ctx c;
    mu_diag d = {{0}};
    c.m = tr_model_new(&cfg, &d);
    assert_non_null(c.m);
    tt_fill_base(c.m, 100);
    tr_lora_config lc = {
        .rank = 3, .alpha = 5.0f, .use_rslora = rslora, .targets = targets, .freeze_a = freeze_a};
    assert_int_equal(tr_lora_attach(c.m, &lc, 42, &d), MU_OK);
    tt_fill_lora(c.m, 7);
    tt_tokens(c.in, B * T, cfg.vocab_size, 1);
    tt_tokens(c.tg, B * T, cfg.vocab_size, 2);

    float loss = 0.0f;
    tr_model_zero_grad(c.m);
    tr_model_set_forwards(c.m, 0);
    assert_int_equal(tr_model_forward(c.m, c.in, c.tg, B, T, &loss, &d), MU_OK);
    assert_int_equal(tr_model_backward(c.m), MU_OK);
    int64_t n = tr_lora_trainable_count(c.m);
    float *g = tt_alloc(n);
    memcpy(g, tr_lora_grad(c.m), sizeof(float) * (size_t)n);
    double gmax = 0.0;
    for (int64_t i = 0; i < n; i++)
        gmax = fabs(g[i]) > gmax ? fabs(g[i]) : gmax;
    assert_true(gmax > 1e-3); /* the check is not vacuous */
    double r = tt_fd_ratio(tr_lora_trainable(c.m), n, g, loss_of, &c, g_fd_h, 2e-4, 2e-2,
                           "model lora grad");
    if (r > 1.0)
        fail_msg("model gradient check failed (family %d targets 0x%x freeze_a %d): ratio %.2f",
                 (int)cfg.family, targets, freeze_a, r);
    free(g);
    tr_model_free(c.m);
}

static void check_model(tr_config cfg, unsigned targets, int freeze_a, int rslora)
{
    check_model_dropout(cfg, targets, freeze_a, rslora, 0.0f);
}

static void test_gpt2_all(void **state)
{
    (void)state;
    check_model(tt_gpt2_config(), TR_T_GPT2_ALL, 0, 0);
}

static void test_gpt2_attn_frozen_a(void **state)
{
    (void)state;
    check_model(tt_gpt2_config(), TR_T_C_ATTN | TR_T_ATTN_C_PROJ, 1, 1);
}

static void test_gpt2_untied_mlp(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    c.tied_head = 0;
    check_model(c, TR_T_MLP_C_PROJ, 0, 0);
}

static void test_llama_all(void **state)
{
    (void)state;
    check_model(tt_llama_config(), TR_T_LLAMA_ALL, 0, 0);
}

static void test_llama_qv_frozen_a(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.qkv_bias = 0;
    c.o_bias = 1;
    c.tied_head = 1;
    check_model(c, TR_T_Q_PROJ | TR_T_V_PROJ | TR_T_DOWN_PROJ, 1, 1);
}

/* head_dim set apart from d_model / n_head (H * hd = 16 while d_model = 8). */
static void test_llama_wide_heads(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.head_dim = 4;
    check_model(c, TR_T_Q_PROJ | TR_T_K_PROJ | TR_T_O_PROJ, 0, 0);
}

/* Llama 3's rope_scaling with head_dim 8, theta 1000: one frequency kept, one smoothed, two
 * divided by the factor. */
static void test_llama_rope_scaling(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.head_dim = 8;
    c.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LLAMA3,
                                       .factor = 4.0,
                                       .low_freq_factor = 1.0,
                                       .high_freq_factor = 4.0,
                                       .orig_max_pos = 64};
    check_model(c, TR_T_Q_PROJ | TR_T_K_PROJ | TR_T_V_PROJ, 0, 0);
}

/* Qwen3: q_norm/k_norm on every head, head_dim 6 (H * hd = 24, d_model 8), no biases,
 * tied head; all targets, and q/v only (the norms' backward then feeds only q's adapter). */
static void test_qwen3(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.qk_norm = 1;
    c.head_dim = 6;
    c.qkv_bias = 0;
    c.tied_head = 1;
    check_model(c, TR_T_LLAMA_ALL, 0, 0);
    check_model(c, TR_T_Q_PROJ | TR_T_V_PROJ, 1, 0);
    check_model_dropout(c, TR_T_K_PROJ | TR_T_DOWN_PROJ, 0, 0, 0.2f);
}

/* Gemma 2: four norms a layer with (1 + w), GeGLU, sqrt(d) embeddings, attention scale
 * apart from head_dim, both softcaps, a window of 2 on layers 0 and 2 of 3 at T 5; all
 * targets, and o/down only (the gradient then passes only the post-norms below them). */
static void test_gemma2(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.n_layer = 3;
    c.qkv_bias = 0;
    c.tied_head = 1;
    c.head_dim = 6;
    c.gemma = 2;
    c.attn_scalar = 3.0f;
    c.attn_softcap = 0.8f;
    c.final_softcap = 1.2f;
    c.sliding_window = 2;
    c.sliding_pattern = 2;
    check_model(c, TR_T_LLAMA_ALL, 0, 0);
    check_model(c, TR_T_O_PROJ | TR_T_DOWN_PROJ, 1, 0);
}

/* Gemma 3: q/k norms with (1 + w) over head_dim 4, a local RoPE theta, the global layer's
 * rope_scaling linear, window 3 on layers 0 and 1 of 3. */
static void test_gemma3(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.n_layer = 3;
    c.qkv_bias = 0;
    c.tied_head = 1;
    c.qk_norm = 1;
    c.head_dim = 4;
    c.gemma = 3;
    c.sliding_window = 3;
    c.sliding_pattern = 3;
    c.rope_local_theta = 50.0f;
    c.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LINEAR, .factor = 2.0};
    /* Without softcaps some gradients here are ~3 and the step of 1e-2 misses them by 5-10%
     * (its truncation error: they agree within 1% at 2e-3). */
    g_fd_h = 2e-3f;
    check_model(c, TR_T_LLAMA_ALL, 0, 0);
    check_model_dropout(c, TR_T_K_PROJ | TR_T_UP_PROJ, 0, 0, 0.2f);
    g_fd_h = 1e-2f;
}

static void test_dropout(void **state)
{
    (void)state;
    check_model_dropout(tt_gpt2_config(), TR_T_C_ATTN | TR_T_MLP_C_PROJ, 0, 0, 0.3f);
    check_model_dropout(tt_llama_config(), TR_T_Q_PROJ | TR_T_UP_PROJ, 1, 0, 0.3f);
}

/* Masks depend on the forward counter: a new forward draws new masks, a restored counter
 * draws the same ones, and eval draws none. */
static void test_dropout_masks(void **state)
{
    (void)state;
    tr_config cfg = tt_gpt2_config();
    tr_model *m = tr_model_new(&cfg, NULL);
    tt_fill_base(m, 5);
    tr_lora_config lc = {.rank = 2, .alpha = 2.0f, .targets = TR_T_GPT2_ALL, .dropout = 0.5f};
    assert_int_equal(tr_lora_attach(m, &lc, 3, NULL), MU_OK);
    tt_fill_lora(m, 9);
    int32_t in[B * T], tg[B * T];
    tt_tokens(in, B * T, cfg.vocab_size, 1);
    tt_tokens(tg, B * T, cfg.vocab_size, 2);
    float l0, l1, l2, le;
    assert_int_equal(tr_model_get_forwards(m), 0);
    assert_int_equal(tr_model_forward(m, in, tg, B, T, &l0, NULL), MU_OK);
    assert_int_equal(tr_model_get_forwards(m), 1);
    assert_int_equal(tr_model_forward(m, in, tg, B, T, &l1, NULL), MU_OK);
    tr_model_set_forwards(m, 0);
    assert_int_equal(tr_model_forward(m, in, tg, B, T, &l2, NULL), MU_OK);
    assert_int_equal(tr_model_eval(m, in, tg, B, T, &le, NULL), MU_OK);
    assert_int_equal(tr_model_get_forwards(m), 1); /* eval does not count */
    assert_true(l0 != l1);
    assert_true(l0 == l2);
    assert_true(le != l0 && le != l1);
    tr_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_all),
        cmocka_unit_test(test_gpt2_attn_frozen_a),
        cmocka_unit_test(test_gpt2_untied_mlp),
        cmocka_unit_test(test_llama_all),
        cmocka_unit_test(test_llama_qv_frozen_a),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_llama_wide_heads),
        cmocka_unit_test(test_dropout_masks),
        cmocka_unit_test(test_llama_rope_scaling),
        cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_gemma2),
        cmocka_unit_test(test_gemma3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
