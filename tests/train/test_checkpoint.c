/* Per-layer activation checkpointing (tr_model_set_checkpointing): the same model trained
 * with and without it gives bit-for-bit the same losses, gradients and LoRA weights over
 * several AdamW steps and a DP-SGD step (per-record gradients), for GPT-2 with dropout, Llama
 * with every target, Qwen3 with llama3 rope scaling and frozen A, an adapter on the MLP
 * only, and Gemma 2 / Gemma 3 (post-norms, softcaps, windows, local RoPE, dropout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tr_dp.h"
#include "tr_model.h"
#include "train/tr_testmodel.h"

enum { B = 3, T = 6, STEPS = 3 };

static tr_model *make(tr_config cfg, const tr_lora_config *lc, int ckpt)
{
    mu_diag d = {{0}};
    tr_model *m = tr_model_new(&cfg, &d);
    if (!m)
        fail_msg("%s", d.msg);
    tt_fill_base(m, 11);
    if (tr_lora_attach(m, lc, 5, &d))
        fail_msg("%s", d.msg);
    tt_fill_lora(m, 13);
    assert_int_equal(tr_model_set_checkpointing(m, ckpt), MU_OK);
    return m;
}

static void check_same(tr_config cfg, tr_lora_config lc, const char *what)
{
    tr_model *m[2] = {make(cfg, &lc, 0), make(cfg, &lc, 1)};
    int64_t n = tr_lora_trainable_count(m[0]);
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-2);
    tr_optim *o[2] = {tr_optim_new(&oc, n, NULL), tr_optim_new(&oc, n, NULL)};
    assert_non_null(o[0]);
    assert_non_null(o[1]);
    int32_t in[B * T], tg[B * T];
    mu_diag d = {{0}};
    for (int s = 0; s < STEPS; s++) {
        tt_tokens(in, B * T, cfg.vocab_size, 100 + (uint64_t)s);
        tt_tokens(tg, B * T, cfg.vocab_size, 200 + (uint64_t)s);
        tg[s] = -1; /* an ignored target too */
        float loss[2];
        for (int k = 0; k < 2; k++)
            if (tr_train_step(m[k], o[k], in, tg, B, T, &loss[k], &d))
                fail_msg("%s: %s", what, d.msg);
        if (memcmp(&loss[0], &loss[1], sizeof(float)))
            fail_msg("%s step %d: loss %.9g vs %.9g checkpointed", what, s, (double)loss[0],
                     (double)loss[1]);
        if (memcmp(tr_lora_grad(m[0]), tr_lora_grad(m[1]), sizeof(float) * (size_t)n))
            fail_msg("%s step %d: gradients differ with checkpointing", what, s);
        if (memcmp(tr_lora_trainable(m[0]), tr_lora_trainable(m[1]), sizeof(float) * (size_t)n))
            fail_msg("%s step %d: LoRA weights differ with checkpointing", what, s);
    }
    /* the gradient is not zero (the comparison is not vacuous) */
    double gmax = 0.0;
    for (int64_t i = 0; i < n; i++)
        gmax = fabs(tr_lora_grad(m[0])[i]) > gmax ? fabs(tr_lora_grad(m[0])[i]) : gmax;
    assert_true(gmax > 1e-4);
    /* DP-SGD: per-record gradients through the recomputed layers */
    tr_dp_config dc = {
        .clip = 0.5, .noise = 1.0, .sampling = TR_DP_FIXED, .n_records = 10, .batch = B, .seed = 9};
    float g[2][4096];
    assert_true(n <= 4096);
    for (int k = 0; k < 2; k++) {
        tr_dp *dp = tr_dp_new(&dc, m[k], &d);
        if (!dp)
            fail_msg("%s: %s", what, d.msg);
        float loss;
        if (tr_dp_grad(dp, in, tg, B, T, 0, g[k], n, &loss, &d))
            fail_msg("%s: %s", what, d.msg);
        tr_dp_free(dp);
    }
    if (memcmp(g[0], g[1], sizeof(float) * (size_t)n))
        fail_msg("%s: DP-SGD gradients differ with checkpointing", what);
    for (int k = 0; k < 2; k++) {
        tr_optim_free(o[k]);
        tr_model_free(m[k]);
    }
}

static void test_gpt2_dropout(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    c.n_layer = 3;
    tr_lora_config lc = {.rank = 2, .alpha = 4.0f, .targets = TR_T_GPT2_ALL, .dropout = 0.25f};
    check_same(c, lc, "gpt2 dropout");
}

static void test_llama_all(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.n_layer = 3;
    tr_lora_config lc = {.rank = 3, .alpha = 6.0f, .targets = TR_T_LLAMA_ALL};
    check_same(c, lc, "llama all targets");
}

static void test_qwen3_rope_scaling(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.n_layer = 3;
    c.qk_norm = 1;
    c.head_dim = 8;
    c.qkv_bias = 0;
    c.tied_head = 1;
    c.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LLAMA3,
                                       .factor = 4.0,
                                       .low_freq_factor = 1.0,
                                       .high_freq_factor = 4.0,
                                       .orig_max_pos = 64};
    tr_lora_config lc = {
        .rank = 2, .alpha = 2.0f, .targets = TR_T_Q_PROJ | TR_T_V_PROJ, .freeze_a = 1};
    check_same(c, lc, "qwen3");
}

/* Gemma 2 and 3: the post-norms' inputs, the window, softcaps and the local RoPE are
 * recomputed the same way; dropout on, so its masks must be drawn again too. */
static void test_gemma(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.n_layer = 3;
    c.qkv_bias = 0;
    c.tied_head = 1;
    c.head_dim = 4;
    c.gemma = 2;
    c.attn_softcap = 1.0f;
    c.final_softcap = 1.5f;
    c.sliding_window = 2;
    c.sliding_pattern = 2;
    tr_lora_config lc = {.rank = 2, .alpha = 4.0f, .targets = TR_T_LLAMA_ALL, .dropout = 0.1f};
    check_same(c, lc, "gemma2");
    c.gemma = 3;
    c.attn_softcap = c.final_softcap = 0.0f;
    c.qk_norm = 1;
    c.sliding_pattern = 3;
    c.rope_local_theta = 50.0f;
    lc.targets = TR_T_O_PROJ | TR_T_UP_PROJ;
    check_same(c, lc, "gemma3");
}

/* An adapter on the MLP only, whose input (act) checkpointing must keep for the one layer. */
static void test_mlp_only(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    c.n_layer = 3;
    tr_lora_config lc = {.rank = 2, .alpha = 2.0f, .targets = TR_T_DOWN_PROJ};
    check_same(c, lc, "llama down_proj");
}

static void test_setter(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    tr_model *m = tr_model_new(&c, NULL);
    assert_non_null(m);
    assert_int_equal(tr_model_set_checkpointing(m, 2), MU_ERR_INVALID);
    assert_int_equal(tr_model_set_checkpointing(m, -1), MU_ERR_INVALID);
    assert_int_equal(tr_model_set_checkpointing(m, 1), MU_OK);
    assert_int_equal(tr_model_set_checkpointing(m, 0), MU_OK);
    tr_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_dropout),
        cmocka_unit_test(test_llama_all),
        cmocka_unit_test(test_qwen3_rope_scaling),
        cmocka_unit_test(test_mlp_only),
        cmocka_unit_test(test_gemma),
        cmocka_unit_test(test_setter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
