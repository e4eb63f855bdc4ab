/* The tr_model contract: config checks, base and LoRA tensor tables (Hugging Face and PEFT
 * names and shapes), target names, PEFT's A init, the flat trainable vector in both modes,
 * state errors, bad tokens, and bit-for-bit determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tr_model.h"
#include "train/tr_testmodel.h"

static void expect_tensor(tr_model *m, const char *name, int64_t d0, int64_t d1)
{
    int i = tr_model_base_find(m, name);
    if (i < 0)
        fail_msg("base tensor '%s' missing", name);
    tr_tensor t;
    assert_int_equal(tr_model_base_tensor(m, i, &t), MU_OK);
    assert_string_equal(t.name, name);
    assert_int_equal(t.ndim, d1 ? 2 : 1);
    assert_int_equal(t.shape[0], d0);
    if (d1)
        assert_int_equal(t.shape[1], d1);
    assert_int_equal(t.numel, d0 * (d1 ? d1 : 1));
    assert_non_null(t.data);
}

static void test_gpt2_tensors(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    tr_model *m = tr_model_new(&c, NULL);
    assert_non_null(m);
    /* wte, wpe, 12 per layer, ln_f w/b; tied: no lm_head */
    assert_int_equal(tr_model_base_count(m), 2 + 12 * 2 + 2);
    expect_tensor(m, "transformer.wte.weight", 11, 8);
    expect_tensor(m, "transformer.wpe.weight", 8, 8);
    expect_tensor(m, "transformer.h.1.attn.c_attn.weight", 8, 24);
    expect_tensor(m, "transformer.h.1.attn.c_attn.bias", 24, 0);
    expect_tensor(m, "transformer.h.0.attn.c_proj.weight", 8, 8);
    expect_tensor(m, "transformer.h.0.mlp.c_fc.weight", 8, 32);
    expect_tensor(m, "transformer.h.0.mlp.c_proj.weight", 32, 8);
    expect_tensor(m, "transformer.ln_f.bias", 8, 0);
    assert_int_equal(tr_model_base_find(m, "lm_head.weight"), MU_ERR_NOTFOUND);
    /* every parameter is in exactly one tensor, and tensors do not overlap */
    int64_t total = 0;
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        for (int64_t j = 0; j < t.numel; j++)
            assert_true(t.data[j] == 0.0f);
        for (int64_t j = 0; j < t.numel; j++)
            t.data[j] = 1.0f;
        total += t.numel;
    }
    assert_int_equal(total, tr_model_base_numel(m));
    tr_tensor t;
    assert_int_equal(tr_model_base_tensor(m, tr_model_base_count(m), &t), MU_ERR_INVALID);
    tr_model_free(m);
}

static void test_llama_tensors(void **state)
{
    (void)state;
    tr_config c = tt_llama_config(); /* H 4, KV 2, hd 2, F 12, qkv_bias, untied */
    tr_model *m = tr_model_new(&c, NULL);
    assert_non_null(m);
    assert_int_equal(tr_model_base_count(m), 1 + 2 * (1 + 6 + 1 + 1 + 3) + 1 + 1);
    expect_tensor(m, "model.embed_tokens.weight", 13, 8);
    expect_tensor(m, "model.layers.1.self_attn.q_proj.weight", 8, 8);
    expect_tensor(m, "model.layers.1.self_attn.q_proj.bias", 8, 0);
    expect_tensor(m, "model.layers.1.self_attn.k_proj.weight", 4, 8);
    expect_tensor(m, "model.layers.1.self_attn.v_proj.bias", 4, 0);
    expect_tensor(m, "model.layers.0.self_attn.o_proj.weight", 8, 8);
    expect_tensor(m, "model.layers.0.mlp.gate_proj.weight", 12, 8);
    expect_tensor(m, "model.layers.0.mlp.up_proj.weight", 12, 8);
    expect_tensor(m, "model.layers.0.mlp.down_proj.weight", 8, 12);
    expect_tensor(m, "model.layers.0.post_attention_layernorm.weight", 8, 0);
    expect_tensor(m, "model.norm.weight", 8, 0);
    expect_tensor(m, "lm_head.weight", 13, 8);
    assert_int_equal(tr_model_base_find(m, "model.layers.0.self_attn.o_proj.bias"),
                     MU_ERR_NOTFOUND);
    tr_model_free(m);
}

static void test_bad_configs(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_config c = tt_llama_config();
    c.n_kv_head = 3; /* 4 % 3 */
    assert_null(tr_model_new(&c, &d));
    assert_non_null(strstr(d.msg, "n_kv_head"));
    c = tt_gpt2_config();
    c.n_head = 3; /* 8 % 3 */
    assert_null(tr_model_new(&c, &d));
    assert_non_null(strstr(d.msg, "n_head"));
    c = tt_gpt2_config();
    c.family = (tr_family)7;
    assert_null(tr_model_new(&c, &d));
    c = tt_llama_config();
    c.d_ff = 0;
    assert_null(tr_model_new(&c, &d));
    assert_non_null(strstr(d.msg, "d_ff"));
    c = tt_gpt2_config();
    c.norm_eps = 0.0f;
    assert_null(tr_model_new(&c, &d));
    /* defaults are filled */
    c = tt_gpt2_config();
    c.d_ff = 0;
    tr_model *m = tr_model_new(&c, &d);
    assert_non_null(m);
    assert_int_equal(tr_model_config(m)->d_ff, 32);
    assert_int_equal(tr_model_config(m)->n_kv_head, 2);
    assert_int_equal(tr_model_config(m)->head_dim, 4);
    tr_model_free(m);
}

static void test_targets(void **state)
{
    (void)state;
    unsigned t = 0;
    mu_diag d = {{0}};
    assert_int_equal(tr_lora_targets_parse(TR_GPT2, "c_attn, c_proj", &t, &d), MU_OK);
    assert_int_equal(t, TR_T_C_ATTN | TR_T_ATTN_C_PROJ | TR_T_MLP_C_PROJ);
    assert_int_equal(tr_lora_targets_parse(TR_GPT2, "c_attn,attn.c_proj", &t, &d), MU_OK);
    assert_int_equal(t, TR_T_C_ATTN | TR_T_ATTN_C_PROJ);
    const char *names[8];
    assert_int_equal(tr_lora_targets_names(TR_GPT2, t, names, 8), 2);
    assert_string_equal(names[0], "c_attn");
    assert_string_equal(names[1], "attn.c_proj");
    assert_int_equal(tr_lora_targets_names(TR_GPT2, TR_T_GPT2_ALL, names, 8), 3);
    assert_string_equal(names[1], "c_proj");
    assert_int_equal(tr_lora_targets_names(TR_GPT2, TR_T_GPT2_ALL, names, 2), MU_ERR_INVALID);
    assert_int_equal(tr_lora_targets_parse(TR_LLAMA, "q_proj v_proj", &t, &d), MU_OK);
    assert_int_equal(t, TR_T_Q_PROJ | TR_T_V_PROJ);
    assert_int_equal(tr_lora_targets_parse(TR_LLAMA, "all-linear", &t, &d), MU_OK);
    assert_int_equal(t, TR_T_LLAMA_ALL);
    assert_int_equal(tr_lora_targets_parse(TR_LLAMA, "q_proj,c_attn", &t, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "c_attn"));
    assert_int_equal(tr_lora_targets_parse(TR_GPT2, " , ", &t, &d), MU_ERR_INVALID);
}

static void test_lora_tables_and_vector(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    for (int freeze = 0; freeze < 2; freeze++) {
        tr_model *m = tr_model_new(&c, NULL);
        assert_non_null(m);
        assert_int_equal(tr_lora_trainable_count(m), 0);
        assert_null(tr_lora_trainable(m));
        tr_lora_config lc = {
            .rank = 2, .alpha = 4.0f, .targets = TR_T_K_PROJ | TR_T_DOWN_PROJ, .freeze_a = freeze};
        assert_int_equal(tr_lora_attach(m, &lc, 5, NULL), MU_OK);
        assert_int_equal(tr_lora_attach(m, &lc, 5, NULL), MU_ERR_STATE);
        assert_int_equal(tr_lora_count(m), 2 * 2 * 2); /* layers x modules x (A, B) */
        tr_tensor t;
        assert_int_equal(tr_lora_tensor(m, 0, &t), MU_OK);
        assert_string_equal(t.name,
                            "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight");
        assert_int_equal(t.shape[0], 2);
        assert_int_equal(t.shape[1], 8);
        /* kaiming-uniform(a=sqrt(5)): |A| < 1/sqrt(in), not all zero; B zero */
        float bound = 1.0f / sqrtf(8.0f), amax = 0.0f;
        for (int64_t j = 0; j < t.numel; j++) {
            assert_true(fabsf(t.data[j]) <= bound);
            amax = fmaxf(amax, fabsf(t.data[j]));
        }
        assert_true(amax > 0.5f * bound);
        assert_int_equal(tr_lora_tensor(m, 1, &t), MU_OK);
        assert_string_equal(t.name,
                            "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight");
        assert_int_equal(t.shape[0], 4);
        assert_int_equal(t.shape[1], 2);
        for (int64_t j = 0; j < t.numel; j++)
            assert_true(t.data[j] == 0.0f);
        assert_int_equal(tr_lora_tensor(m, 3, &t), MU_OK);
        assert_string_equal(t.name, "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
        assert_int_equal(tr_lora_find(m, t.name), 3);
        /* trainable vector: A,B per module, or only the B tensors when A is frozen */
        int64_t nA = 2 * 8 + 2 * 12, nB = 4 * 2 + 8 * 2, want = freeze ? 2 * nB : 2 * (nA + nB);
        assert_int_equal(tr_lora_trainable_count(m), want);
        int64_t sum = 0;
        for (int i = 0; i < tr_lora_count(m); i++) {
            tr_lora_tensor(m, i, &t);
            float *g = tr_lora_tensor_grad(m, i);
            int is_a = i % 2 == 0;
            if (freeze && is_a) {
                assert_null(g);
                continue;
            }
            assert_non_null(g);
            /* tensors tile the vector in table order */
            assert_ptr_equal(t.data, tr_lora_trainable(m) + sum);
            assert_ptr_equal(g, tr_lora_grad(m) + sum);
            sum += t.numel;
        }
        assert_int_equal(sum, want);
        float *v = tt_alloc(want);
        tt_fill(v, want, 3, 1.0f);
        assert_int_equal(tr_lora_set(m, v, want), MU_OK);
        assert_int_equal(tr_lora_set(m, v, want - 1), MU_ERR_INVALID);
        tr_lora_tensor(m, freeze ? 1 : 0, &t);
        assert_true(t.data[0] == v[0]);
        float *w = tt_alloc(want);
        assert_int_equal(tr_lora_get(m, w, want), MU_OK);
        assert_memory_equal(v, w, sizeof(float) * (size_t)want);
        free(v), free(w);
        tr_model_free(m);
    }
}

static void test_init_from_seed(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    tr_lora_config lc = {.rank = 4, .alpha = 8.0f, .targets = TR_T_C_ATTN, .freeze_a = 1};
    tr_model *a = tr_model_new(&c, NULL), *b = tr_model_new(&c, NULL), *x = tr_model_new(&c, NULL);
    assert_int_equal(tr_lora_attach(a, &lc, 77, NULL), MU_OK);
    assert_int_equal(tr_lora_attach(b, &lc, 77, NULL), MU_OK);
    assert_int_equal(tr_lora_attach(x, &lc, 78, NULL), MU_OK);
    tr_tensor ta, tb, tx;
    tr_lora_tensor(a, 2, &ta);
    tr_lora_tensor(b, 2, &tb);
    tr_lora_tensor(x, 2, &tx);
    assert_memory_equal(ta.data, tb.data, sizeof(float) * (size_t)ta.numel);
    assert_memory_not_equal(ta.data, tx.data, sizeof(float) * (size_t)ta.numel);
    /* layers draw different A */
    tr_tensor t0;
    tr_lora_tensor(a, 0, &t0);
    assert_memory_not_equal(t0.data, ta.data, sizeof(float) * (size_t)ta.numel);
    assert_float_equal(tr_lora_scaling(&lc), 2.0f, 0.0f);
    lc.use_rslora = 1;
    assert_float_equal(tr_lora_scaling(&lc), 4.0f, 0.0f);
    tr_lora_config bad = lc;
    bad.targets = TR_T_Q_PROJ;
    tr_model *y = tr_model_new(&c, NULL);
    assert_int_equal(tr_lora_attach(y, &bad, 1, NULL), MU_ERR_INVALID);
    bad = lc;
    bad.rank = 0;
    assert_int_equal(tr_lora_attach(y, &bad, 1, NULL), MU_ERR_INVALID);
    bad = lc;
    bad.dropout = 1.0f;
    assert_int_equal(tr_lora_attach(y, &bad, 1, NULL), MU_ERR_INVALID);
    tr_model_free(a), tr_model_free(b), tr_model_free(x), tr_model_free(y);
}

static void test_errors(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    tr_model *m = tr_model_new(&c, NULL);
    tt_fill_base(m, 1);
    int32_t in[2 * 4] = {0}, tg[2 * 4] = {0};
    float loss;
    mu_diag d = {{0}};
    assert_null(tr_model_logits(m));
    assert_int_equal(tr_model_set_ce_chunk(m, TR_CE_FULL), MU_OK); /* keep the logits */
    /* eval works without LoRA; backward needs LoRA and a training forward */
    assert_int_equal(tr_model_eval(m, in, tg, 2, 4, &loss, &d), MU_OK);
    assert_non_null(tr_model_logits(m));
    assert_int_equal(tr_model_backward(m), MU_ERR_STATE);
    tr_lora_config lc = {.rank = 2, .alpha = 2.0f, .targets = TR_T_C_FC};
    assert_int_equal(tr_lora_attach(m, &lc, 1, NULL), MU_OK);
    assert_int_equal(tr_model_backward(m), MU_ERR_STATE);
    assert_int_equal(tr_model_eval(m, in, tg, 2, 4, &loss, &d), MU_OK);
    assert_int_equal(tr_model_backward(m), MU_ERR_STATE); /* eval caches nothing */
    assert_int_equal(tr_model_forward(m, in, NULL, 2, 4, NULL, &d), MU_OK);
    assert_int_equal(tr_model_backward(m), MU_ERR_STATE); /* no targets, no loss */
    /* more threads than the forward sized its attention scratch for, on a batch big enough
     * for the attention to run in parallel */
    enum { BB = 600, TT = 8 };
    int32_t *bin = calloc(BB * TT, sizeof(int32_t)), *btg = calloc(BB * TT, sizeof(int32_t));
    assert_non_null(bin);
    assert_non_null(btg);
    tr_threads_set(1);
    assert_int_equal(tr_model_forward(m, bin, btg, BB, TT, &loss, &d), MU_OK);
    tr_threads_set(8);
    assert_int_equal(tr_model_backward(m), MU_OK);
    assert_int_equal(tr_threads_get(), 8);
    tr_threads_set(0);
    free(bin), free(btg);
    assert_int_equal(tr_model_backward(m), MU_ERR_STATE); /* once per forward */
    in[5] = 11;                                           /* == vocab_size */
    assert_int_equal(tr_model_forward(m, in, tg, 2, 4, &loss, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "token id 11"));
    in[5] = 0;
    tg[7] = -2; /* -1 is TR_DATA_IGNORE, a left-out target (test_loss_mask.c) */
    assert_int_equal(tr_model_eval(m, in, tg, 2, 4, &loss, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "targets"));
    tg[7] = 0;
    assert_int_equal(tr_model_forward(m, in, tg, 1, 9, &loss, &d), MU_ERR_INVALID); /* > max_pos */
    assert_int_equal(tr_model_forward(m, in, tg, 0, 4, &loss, &d), MU_ERR_INVALID);
    tr_model_free(m);
    tr_model_free(NULL);
}

/* Runs 4 AdamW steps (with dropout, which draws masks) and returns the trainable vector. */
static float *run(tr_config c, int freeze_a, int threads, int64_t *n, float *losses)
{
    tr_threads_set(threads);
    tr_model *m = tr_model_new(&c, NULL);
    tt_fill_base(m, 3);
    tr_lora_config lc = {.rank = 3, .alpha = 6.0f, .freeze_a = freeze_a, .dropout = 0.1f};
    lc.targets = c.family == TR_GPT2 ? TR_T_GPT2_ALL : TR_T_LLAMA_ALL;
    assert_int_equal(tr_lora_attach(m, &lc, 11, NULL), MU_OK);
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-2);
    oc.grad_clip = 1.0;
    tr_optim *o = tr_optim_new(&oc, tr_lora_trainable_count(m), NULL);
    int B = 3, T = c.max_pos < 7 ? c.max_pos : 7;
    if (c.d_model >= 64)
        B = 8, T = c.max_pos; /* products large enough to be split over threads */
    int32_t *in = malloc(sizeof(int32_t) * (size_t)(B * T));
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)(B * T));
    assert_non_null(in);
    assert_non_null(tg);
    for (int s = 0; s < 4; s++) {
        tt_tokens(in, B * T, c.vocab_size, 100 + (uint64_t)s);
        tt_tokens(tg, B * T, c.vocab_size, 200 + (uint64_t)s);
        assert_int_equal(tr_train_step(m, o, in, tg, B, T, &losses[s], NULL), MU_OK);
    }
    free(in), free(tg);
    *n = tr_lora_trainable_count(m);
    float *v = tt_alloc(*n);
    tr_lora_get(m, v, *n);
    tr_optim_free(o);
    tr_model_free(m);
    return v;
}

/* A vocabulary of 2^20 at batch 129 x seq 16: 2064 x 2^20 logits, above 2^31. Holding them
 * (a forward without targets, TR_CE_FULL, one chunk as large) is refused before anything is
 * allocated; the chunked loss (the default) is not limited. */
static void test_logits_limit(void **state)
{
    (void)state;
    tr_config c = tt_gpt2_config();
    c.vocab_size = 1 << 20;
    c.max_pos = 16;
    c.n_layer = 1;
    tr_model *m = tr_model_new(&c, NULL);
    assert_non_null(m);
    tt_fill_base(m, 3);
    enum { BB = 129, TT = 16 };
    assert_true((int64_t)BB * TT * c.vocab_size > TR_MAX_LOGITS);
    int32_t *in = malloc(sizeof(int32_t) * BB * TT), *tg = malloc(sizeof(int32_t) * BB * TT);
    assert_non_null(in);
    assert_non_null(tg);
    tt_tokens(in, BB * TT, c.vocab_size, 1);
    tt_tokens(tg, BB * TT, c.vocab_size, 2);
    mu_diag d = {{0}};
    float loss = 0.0f;
    assert_int_equal(tr_model_eval(m, in, NULL, BB, TT, NULL, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "2064 x vocab 1048576 = 2164260864 logits (a forward without "
                                  "targets) exceed 2^31"));
    assert_int_equal(tr_model_set_ce_chunk(m, TR_CE_FULL), MU_OK);
    assert_int_equal(tr_model_forward(m, in, tg, BB, TT, &loss, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "(TR_CE_FULL) exceed 2^31"));
    assert_int_equal(tr_model_set_ce_chunk(m, 4096), MU_OK);
    assert_int_equal(tr_model_eval(m, in, tg, BB, TT, &loss, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "(one cross-entropy chunk) exceed 2^31"));
    assert_null(tr_model_logits(m));
    /* The default chunks are not refused: with the last target out of range, the forward
     * gets past the size check to the token check (running 2^31 logits under the sanitizers
     * takes minutes; bench/train/README.md has a run of that size). */
    assert_int_equal(tr_model_set_ce_chunk(m, 0), MU_OK);
    tg[BB * TT - 1] = c.vocab_size;
    assert_int_equal(tr_model_eval(m, in, tg, BB, TT, &loss, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "targets: token id 1048576 at position 2063"));
    assert_int_equal(tr_model_forward(m, in, tg, BB, TT, &loss, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "targets: token id 1048576 at position 2063"));
    free(in), free(tg);
    tr_model_free(m);
}

static void test_determinism(void **state)
{
    (void)state;
    tr_config mid = tt_gpt2_config();
    mid.d_model = 64, mid.max_pos = 32, mid.vocab_size = 50;
    tr_config cfgs[3] = {tt_gpt2_config(), tt_llama_config(), mid};
    for (int k = 0; k < 3; k++)
        for (int threads = 1; threads <= 2; threads++) {
            int64_t n1, n2;
            float l1[4], l2[4];
            float *a = run(cfgs[k], k == 1, threads, &n1, l1);
            float *b = run(cfgs[k], k == 1, threads, &n2, l2);
            assert_int_equal(n1, n2);
            assert_memory_equal(a, b, sizeof(float) * (size_t)n1);
            assert_memory_equal(l1, l2, sizeof l1);
            free(a), free(b);
        }
    tr_threads_set(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_tensors),
        cmocka_unit_test(test_llama_tensors),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_lora_tables_and_vector),
        cmocka_unit_test(test_init_from_seed),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_logits_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
