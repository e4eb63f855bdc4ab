/* mutual against PyTorch: the committed reference states written by make_reference.py
 * (tiny GPT-2, tiny Llama with GQA and an untied head, tiny Llama 3.2 with a tied head and
 * rope_scaling llama3, tiny Qwen3 with q/k norms and head_dim 12, nonzero LoRA) loaded through the
 * Hugging Face / PEFT / HDF5 readers, and compared with stated tolerances:
 *
 *   logits            |diff| <= 5e-6 + 1e-5 |ref|
 *   loss              |diff| <= 2e-6 + 1e-6 |ref|
 *   LoRA gradients    |diff| <= 2e-7 + 1e-4 |ref|   (every A and B tensor)
 *   10-step losses    |diff| <= 1e-5 + 1e-5 |ref|   (AdamW, SGD, AdamW frozen-A, SGD clipped)
 *
 * Measured when written: logits within 9e-7, loss 5e-7, gradients 8e-8, step losses 2e-6.
 *
 * The bf16 base (tr_model_set_bf16, loaded by tr_hf_model_load_bf16) against
 * make_bf16_reference.py's NAME_bf16_ref (torch with the 2-D weights rounded to bf16 and
 * every product with them taken as bf16(x) . W, bf16(dy) . W^T in fp32: the same arithmetic
 * up to the order of the fp32 sums, on both tr_bf16_gemm paths):
 *
 *   logits            relative L2 error <= 1e-3, every |diff| <= 5e-3 + 1e-2 |ref|
 *   LoRA gradients    relative L2 error <= 5e-3, every |diff| <= 2e-4 + 5e-2 |ref|
 *   loss              |diff| <= 2e-4 + 1e-4 |ref| (full logits and 5-row chunked head)
 *   10 AdamW steps    |diff| <= 2e-3 + 2e-3 |ref|
 *
 * (not per element: an activation's bf16 rounding can go the other way, see close_l2), and
 * against the fp32 reference, where bf16's own rounding separates them:
 *
 *   loss              |diff| <= 2e-3 |ref|   LoRA gradients: relative L2 error <= 2e-2
 *
 * Measured when written (both paths): gpt2/llama logits 2e-8 (portable llama 1.6e-6),
 * gradients <= 4e-7, qwen3 logits 3.6e-4 and gradients 1.8e-3 (one rounding that goes the
 * other way early, the same on both paths); loss within 7e-6; AdamW steps 9.5e-4; against
 * fp32 torch loss 1.6e-4 relative and gradients 1.47e-2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_bf16.h"
#include "tr_data.h"
#include "tr_hf.h"
#include "tr_model.h"
#include "tr_safetensors.h"
#include "train/tr_testutil.h"

#define LOGIT_ATOL 5e-6
#define LOGIT_RTOL 1e-5
#define LOSS_ATOL  2e-6
#define LOSS_RTOL  1e-6
#define GRAD_ATOL  2e-7
#define GRAD_RTOL  1e-4
#define STEP_ATOL  1e-5
#define STEP_RTOL  1e-5

#define BF_LOGIT_REL         1e-3
#define BF_LOGIT_LATOL       5e-3
#define BF_LOGIT_LRTOL       1e-2
#define BF_LOSS_ATOL         2e-4
#define BF_LOSS_RTOL         1e-4
#define BF_GRAD_REL          5e-3
#define BF_GRAD_LATOL        2e-4
#define BF_GRAD_LRTOL        5e-2
#define BF_STEP_ATOL         2e-3
#define BF_STEP_RTOL         2e-3
#define BF_VS_FP32_LOSS_RTOL 2e-3
#define BF_VS_FP32_GRAD_REL  2e-2
/* Gemma 3's q/k norms over 8-wide heads carry bf16's rounding of q and k further: 3.2e-2
 * measured, while it agrees with the bf16 reference as the others do. */
#define BF_VS_FP32_GEMMA3_GRAD_REL 5e-2

typedef struct {
    const char *name;
    char dir[512], adapter[512], data[512], ref[512], bf_ref[512];
    tr_st *st, *bf; /* the fp32 reference; the bf16 one (NULL until opened) */
    tr_data *tokens;
    int B, T;
    double vs_fp32_grad_rel; /* the bf16 base's gradients against fp32 torch */
} refset;

static double meta_num(const refset *r, const char *key)
{
    const char *v = tr_st_metadata(r->st, key);
    if (!v)
        fail_msg("%s: reference metadata has no '%s'", r->ref, key);
    return strtod(v, NULL);
}

/* Reads tensor `name` (any shape) of reference file st (path for messages) into a new
 * buffer of *n floats. */
static float *st_tensor(const tr_st *st, const char *path, const char *name, size_t *n)
{
    const tr_st_info *t = tr_st_find(st, name);
    if (!t)
        fail_msg("%s: no tensor '%s'", path, name);
    float *out = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    assert_non_null(out);
    mu_diag d = {{0}};
    if (tr_st_read_f32(st, t, out, t->numel, &d) < 0)
        fail_msg("%s", d.msg);
    *n = t->numel;
    return out;
}

static float *ref_tensor(const refset *r, const char *name, size_t *n)
{
    return st_tensor(r->st, r->ref, name, n);
}

static double worst(const float *a, const float *b, size_t n, double atol, double rtol,
                    const char *what, const char *model)
{
    double w = 0.0, maxd = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        double r = d / (atol + rtol * fabs((double)b[i]));
        maxd = d > maxd ? d : maxd;
        if (r > w)
            w = r;
        if (r > 1.0)
            fail_msg("%s %s[%zu]: mutual %.9g, torch %.9g (|diff| %.3g > %.3g + %.3g*|ref|)", model,
                     what, i, (double)a[i], (double)b[i], d, atol, rtol);
    }
    print_message("%s %s: max |diff| %.3g (%.0f%% of tolerance)\n", model, what, maxd, 100.0 * w);
    return w;
}

#define rel_l2(a, b, n) tt_rel_l2((a), (b), (int64_t)(n))

/* For the bf16 base against the bf16 reference: an activation's rounding to bf16 can land on
 * the other side of a rounding boundary in mutual and in torch (their fp32 sums differ in
 * order), which moves that term by 2^-8 and everything downstream of it a little. So the
 * check is the relative L2 error of the whole tensor (rel) and a loose bound on every value
 * (latol + lrtol |ref|). */
static void close_l2(const float *a, const float *b, size_t n, double rel, double latol,
                     double lrtol, const char *what, const char *model)
{
    double maxd = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        maxd = d > maxd ? d : maxd;
        if (!(d <= latol + lrtol * fabs((double)b[i])))
            fail_msg("%s %s[%zu]: mutual %.9g, torch %.9g (|diff| %.3g > %.3g + %.3g*|ref|)", model,
                     what, i, (double)a[i], (double)b[i], d, latol, lrtol);
    }
    double e = rel_l2(a, b, n);
    print_message("%s %s: relative L2 error %.3g (tolerance %.3g), max |diff| %.3g\n", model, what,
                  e, rel, maxd);
    if (!(e <= rel))
        fail_msg("%s %s: relative L2 error %.3g above %.3g", model, what, e, rel);
}

static tr_model *load_as(refset *r, int freeze_a, int bf16)
{
    mu_diag d = {{0}};
    int err = 0;
    tr_model *m = tr_hf_model_load_bf16(r->dir, bf16, &err, &d);
    if (!m)
        fail_msg("%s", d.msg);
    tr_peft_info info;
    if (tr_peft_attach(m, r->adapter, freeze_a, 99, &info, &d) < 0)
        fail_msg("%s", d.msg);
    return m;
}

static tr_model *load(refset *r, int freeze_a)
{
    return load_as(r, freeze_a, 0);
}

static void open_ref(refset *r, const char *name)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    snprintf(r->dir, sizeof r->dir, "%s/ref/%s", TR_TEST_DATA_DIR, name);
    snprintf(r->adapter, sizeof r->adapter, "%s/ref/%s_adapter", TR_TEST_DATA_DIR, name);
    snprintf(r->data, sizeof r->data, "%s/ref/%s_data.h5", TR_TEST_DATA_DIR, name);
    snprintf(r->ref, sizeof r->ref, "%s/ref/%s_ref.safetensors", TR_TEST_DATA_DIR, name);
    snprintf(r->bf_ref, sizeof r->bf_ref, "%s/ref/%s_bf16_ref.safetensors", TR_TEST_DATA_DIR, name);
    mu_diag d = {{0}};
    int err = 0;
    r->st = tr_st_open(r->ref, &err, &d);
    if (!r->st)
        fail_msg("%s", d.msg);
    r->tokens = tr_data_open(r->data, &err, &d);
    if (!r->tokens)
        fail_msg("%s", d.msg);
    r->B = (int)meta_num(r, "B");
    r->T = (int)meta_num(r, "T");
}

static void close_ref(refset *r)
{
    tr_st_free(r->st);
    tr_st_free(r->bf);
    tr_data_free(r->tokens);
}

static void check_forward_backward(refset *r)
{
    tr_model *m = load(r, 0);
    int B = r->B, T = r->T, N = B * T, V = tr_model_config(m)->vocab_size;
    int32_t *in = malloc(sizeof(int32_t) * (size_t)N), *tg = malloc(sizeof(int32_t) * (size_t)N);
    assert_non_null(in);
    assert_non_null(tg);
    mu_diag d = {{0}};
    assert_int_equal(tr_data_batch(r->tokens, 0, B, T, in, tg, &d), MU_OK);
    /* the reference's batch is the documented data order's step 0 */
    size_t n;
    float *rin = ref_tensor(r, "inputs", &n), *rtg = ref_tensor(r, "targets", &n);
    assert_int_equal(n, (size_t)N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(in[i], (int32_t)rin[i]);
        assert_int_equal(tg[i], (int32_t)rtg[i]);
    }
    float loss = 0.0f;
    tr_model_zero_grad(m);
    tr_model_set_ce_chunk(m, TR_CE_FULL); /* compare the logits themselves */
    if (tr_model_forward(m, in, tg, B, T, &loss, &d) < 0)
        fail_msg("%s", d.msg);
    float *rlogits = ref_tensor(r, "logits", &n);
    assert_int_equal(n, (size_t)N * V);
    worst(tr_model_logits(m), rlogits, n, LOGIT_ATOL, LOGIT_RTOL, "logits", r->name);
    float *rloss = ref_tensor(r, "loss", &n);
    worst(&loss, rloss, 1, LOSS_ATOL, LOSS_RTOL, "loss", r->name);
    assert_int_equal(tr_model_backward(m), MU_OK);
    double w = 0.0;
    for (int i = 0; i < tr_lora_count(m); i++) {
        tr_tensor t;
        tr_lora_tensor(m, i, &t);
        char key[256];
        snprintf(key, sizeof key, "grad.%s", t.name);
        float *rg = ref_tensor(r, key, &n);
        assert_int_equal(n, (size_t)t.numel);
        const float *g = tr_lora_tensor_grad(m, i);
        assert_non_null(g);
        double wi = worst(g, rg, n, GRAD_ATOL, GRAD_RTOL, key, r->name);
        w = wi > w ? wi : w;
        free(rg);
    }
    print_message("%s: %d LoRA gradients, worst at %.0f%% of tolerance\n", r->name,
                  tr_lora_count(m), 100.0 * w);
    free(in), free(tg), free(rin), free(rtg), free(rlogits), free(rloss);
    tr_model_free(m);
}

/* The steps of reference `key` from the fp32 reference, or with bf16 the bf16 base against
 * the bf16 reference. */
static void check_steps_as(refset *r, const char *key, tr_optim_config oc, int freeze_a, int bf16)
{
    tr_model *m = load_as(r, freeze_a, bf16);
    int B = r->B, T = r->T, N = B * T;
    size_t n;
    float *ref = bf16 ? st_tensor(r->bf, r->bf_ref, key, &n) : ref_tensor(r, key, &n);
    float *got = malloc(sizeof(float) * n);
    int32_t *in = malloc(sizeof(int32_t) * (size_t)N), *tg = malloc(sizeof(int32_t) * (size_t)N);
    assert_non_null(got);
    assert_non_null(in);
    assert_non_null(tg);
    mu_diag d = {{0}};
    int64_t np = tr_lora_trainable_count(m);
    tr_optim *o = tr_optim_new(&oc, np, &d);
    assert_non_null(o);
    float *p0 = malloc(sizeof(float) * (size_t)np);
    assert_non_null(p0);
    assert_int_equal(tr_lora_get(m, p0, np), MU_OK);
    for (size_t s = 0; s < n; s++) {
        assert_int_equal(tr_data_batch(r->tokens, s, B, T, in, tg, &d), MU_OK);
        if (tr_train_step(m, o, in, tg, B, T, &got[s], &d) < 0)
            fail_msg("%s", d.msg);
    }
    char what[128];
    snprintf(what, sizeof what, "%s%s (%zu steps)", bf16 ? "bf16 " : "", key, n);
    worst(got, ref, n, bf16 ? BF_STEP_ATOL : STEP_ATOL, bf16 ? BF_STEP_RTOL : STEP_RTOL, what,
          r->name);
    /* every trainable tensor moved (frozen A did not: it is not in the vector) */
    const float *p1 = tr_lora_trainable(m);
    int64_t moved = 0;
    for (int64_t i = 0; i < np; i++)
        moved += p1[i] != p0[i];
    if (moved < np * 9 / 10)
        fail_msg("%s %s: only %lld of %lld parameters changed", r->name, key, (long long)moved,
                 (long long)np);
    free(ref), free(got), free(in), free(tg), free(p0);
    tr_optim_free(o);
    tr_model_free(m);
}

static void check_steps(refset *r, const char *key, tr_optim_config oc, int freeze_a)
{
    check_steps_as(r, key, oc, freeze_a, 0);
}

/* The bf16 base on one tr_bf16_gemm path: logits (full), loss and LoRA gradients (chunked
 * head, 5-row chunks) against the bf16 reference; loss and gradients against the fp32 one
 * within bf16's tolerance. */
static void check_bf16_path(refset *r, int portable)
{
    const char *path = portable ? "bf16 portable" : "bf16 native";
    tr_bf16_set_portable(portable);
    tr_model *m = load_as(r, 0, 1);
    assert_int_equal(tr_model_bf16(m), 1);
    int B = r->B, T = r->T, N = B * T;
    int32_t *in = malloc(sizeof(int32_t) * (size_t)N), *tg = malloc(sizeof(int32_t) * (size_t)N);
    assert_non_null(in);
    assert_non_null(tg);
    mu_diag d = {{0}};
    assert_int_equal(tr_data_batch(r->tokens, 0, B, T, in, tg, &d), MU_OK);
    float loss = 0.0f, loss_c = 0.0f;
    size_t n;
    tr_model_set_ce_chunk(m, TR_CE_FULL);
    if (tr_model_forward(m, in, tg, B, T, &loss, &d) < 0)
        fail_msg("%s", d.msg);
    float *rlogits = st_tensor(r->bf, r->bf_ref, "logits", &n);
    char what[300];
    snprintf(what, sizeof what, "%s logits", path);
    close_l2(tr_model_logits(m), rlogits, n, BF_LOGIT_REL, BF_LOGIT_LATOL, BF_LOGIT_LRTOL, what,
             r->name);
    tr_model_set_ce_chunk(m, 5);
    tr_model_zero_grad(m);
    if (tr_model_forward(m, in, tg, B, T, &loss_c, &d) < 0)
        fail_msg("%s", d.msg);
    float *rloss = st_tensor(r->bf, r->bf_ref, "loss", &n), *floss = ref_tensor(r, "loss", &n);
    snprintf(what, sizeof what, "%s loss", path);
    worst(&loss, rloss, 1, BF_LOSS_ATOL, BF_LOSS_RTOL, what, r->name);
    snprintf(what, sizeof what, "%s loss (chunked head)", path);
    worst(&loss_c, rloss, 1, BF_LOSS_ATOL, BF_LOSS_RTOL, what, r->name);
    double lrel = fabs((double)loss_c - *floss) / fabs((double)*floss);
    print_message("%s %s loss vs fp32 torch: %.9g vs %.9g, relative %.3g (tolerance %.3g)\n",
                  r->name, path, (double)loss_c, (double)*floss, lrel, BF_VS_FP32_LOSS_RTOL);
    if (!(lrel <= BF_VS_FP32_LOSS_RTOL))
        fail_msg("%s %s: loss %.9g vs fp32 %.9g", r->name, path, (double)loss_c, (double)*floss);
    assert_int_equal(tr_model_backward(m), MU_OK);
    double gw = 0.0;
    for (int i = 0; i < tr_lora_count(m); i++) {
        tr_tensor t;
        tr_lora_tensor(m, i, &t);
        char key[256];
        snprintf(key, sizeof key, "grad.%s", t.name);
        float *rg = st_tensor(r->bf, r->bf_ref, key, &n), *fg = ref_tensor(r, key, &n);
        const float *g = tr_lora_tensor_grad(m, i);
        assert_non_null(g);
        snprintf(what, sizeof what, "%s %s", path, key);
        close_l2(g, rg, n, BF_GRAD_REL, BF_GRAD_LATOL, BF_GRAD_LRTOL, what, r->name);
        double e = rel_l2(g, fg, n);
        if (!(e <= r->vs_fp32_grad_rel))
            fail_msg("%s %s %s: relative L2 error %.3g against fp32 torch", r->name, path, key, e);
        gw = e > gw ? e : gw;
        free(rg), free(fg);
    }
    print_message("%s %s: LoRA gradients vs fp32 torch, worst relative L2 error %.3g "
                  "(tolerance %.3g)\n",
                  r->name, path, gw, r->vs_fp32_grad_rel);
    free(in), free(tg), free(rlogits), free(rloss), free(floss);
    tr_model_free(m);
    tr_bf16_set_portable(0);
}

static void check_bf16(const char *name, double vs_fp32_grad_rel)
{
    refset r;
    open_ref(&r, name);
    r.vs_fp32_grad_rel = vs_fp32_grad_rel;
    mu_diag d = {{0}};
    int err = 0;
    r.bf = tr_st_open(r.bf_ref, &err, &d);
    if (!r.bf)
        fail_msg("%s", d.msg);
    if (tr_bf16_cpu_native())
        check_bf16_path(&r, 0);
    else
        print_message("no AVX-512 BF16 on this CPU: only the portable path is checked\n");
    check_bf16_path(&r, 1);
    tr_optim_config adamw = tr_optim_defaults(TR_ADAMW, meta_num(&r, "adamw_lr"));
    adamw.weight_decay = meta_num(&r, "adamw_weight_decay");
    adamw.eps = meta_num(&r, "adamw_eps");
    check_steps_as(&r, "losses.adamw", adamw, 0, 1);
    close_ref(&r);
}

static void test_bf16(void **state)
{
    (void)state;
    check_bf16("gpt2", BF_VS_FP32_GRAD_REL);
    check_bf16("llama", BF_VS_FP32_GRAD_REL);
    check_bf16("qwen3", BF_VS_FP32_GRAD_REL);
    check_bf16("gemma2", BF_VS_FP32_GRAD_REL);
    check_bf16("gemma3", BF_VS_FP32_GEMMA3_GRAD_REL);
}

static void check_model(const char *name)
{
    refset r;
    open_ref(&r, name);
    check_forward_backward(&r);
    tr_optim_config adamw = tr_optim_defaults(TR_ADAMW, meta_num(&r, "adamw_lr"));
    adamw.weight_decay = meta_num(&r, "adamw_weight_decay");
    adamw.eps = meta_num(&r, "adamw_eps");
    tr_optim_config sgd = tr_optim_defaults(TR_SGD, meta_num(&r, "sgd_lr"));
    tr_optim_config sgd_clip = sgd;
    sgd_clip.grad_clip = meta_num(&r, "sgd_clip");
    check_steps(&r, "losses.adamw", adamw, 0);
    check_steps(&r, "losses.sgd", sgd, 0);
    check_steps(&r, "losses.adamw_freeze_a", adamw, 1);
    check_steps(&r, "losses.sgd_clip", sgd_clip, 0);
    close_ref(&r);
}

static void test_gpt2(void **state)
{
    (void)state;
    check_model("gpt2");
}

static void test_llama(void **state)
{
    (void)state;
    check_model("llama");
}

/* Llama 3.2's choices: tied head, rope_scaling llama3 with every regime of frequencies. */
static void test_llama32(void **state)
{
    (void)state;
    check_model("llama32");
}

/* Qwen3: q_norm/k_norm per head before RoPE, head_dim 12 with hidden 32 and 4 heads. */
static void test_qwen3(void **state)
{
    (void)state;
    check_model("qwen3");
}

/* Gemma 2: sqrt(d) embeddings, (1 + w) norms, post-attention/post-MLP norms, GeGLU,
 * query_pre_attn_scalar 10 with head_dim 12, attention softcap 1.5 and final softcap 2 (both
 * move values by more than 1), a window of 5 on layers 0 and 2 at T 16. */
static void test_gemma2(void **state)
{
    (void)state;
    check_model("gemma2");
}

/* Gemma 3 text: q/k norms with (1 + w), window 4 on layers 0 and 1 of 3, the local layers'
 * RoPE at rope_local_base_freq 100, the global one at rope_theta with rope_scaling linear 2. */
static void test_gemma3(void **state)
{
    (void)state;
    check_model("gemma3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2),  cmocka_unit_test(test_llama),  cmocka_unit_test(test_llama32),
        cmocka_unit_test(test_qwen3), cmocka_unit_test(test_gemma2), cmocka_unit_test(test_gemma3),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
