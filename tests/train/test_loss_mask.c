/* Masked targets (TR_DATA_IGNORE) on a tiny Llama-shaped model with LoRA: the loss is the
 * mean over the counted targets only, and the LoRA gradient is the mean of the counted
 * targets' own gradients (each found with every other target masked), so a masked target
 * adds nothing to either. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tr_data.h"
#include "tr_kernels.h"
#include "train/tr_testmodel.h"

#define B 2
#define T 6
#define N (B * T)

/* Loss and LoRA gradient (into g) of one training forward and backward. */
static float loss_grad(tr_model *m, const int32_t *in, const int32_t *tg, float *g, int64_t n)
{
    float loss = NAN;
    tr_model_zero_grad(m);
    assert_int_equal(tr_model_forward(m, in, tg, B, T, &loss, NULL), MU_OK);
    assert_int_equal(tr_model_backward(m), MU_OK);
    memcpy(g, tr_lora_grad(m), (size_t)n * sizeof *g);
    return loss;
}

static void test_masked_targets(void **state)
{
    (void)state;
    tr_config c = tt_llama_config();
    tr_model *m = tr_model_new(&c, NULL);
    assert_non_null(m);
    tt_fill_base(m, 11);
    tr_lora_config lc = {.rank = 2, .alpha = 4.0f, .targets = TR_T_LLAMA_ALL};
    assert_int_equal(tr_lora_attach(m, &lc, 3, NULL), MU_OK);
    tt_fill_lora(m, 21);
    int64_t n = tr_lora_trainable_count(m);
    int32_t in[N], all[N], masked[N], one[N];
    tt_tokens(in, N, c.vocab_size, 5);
    tt_tokens(all, N, c.vocab_size, 6);
    int keep[N] = {1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0}, kept = 0;
    for (int i = 0; i < N; i++) {
        masked[i] = keep[i] ? all[i] : TR_DATA_IGNORE;
        kept += keep[i];
    }
    float *g_all = malloc((size_t)n * sizeof(float)), *g_mask = malloc((size_t)n * sizeof(float));
    float *g_one = malloc((size_t)n * sizeof(float)), *g_sum = calloc((size_t)n, sizeof(float));
    float l_all = loss_grad(m, in, all, g_all, n);
    float l_mask = loss_grad(m, in, masked, g_mask, n);
    double l_sum = 0;
    for (int i = 0; i < N; i++) {
        if (!keep[i])
            continue;
        for (int j = 0; j < N; j++)
            one[j] = j == i ? all[i] : TR_DATA_IGNORE;
        l_sum += loss_grad(m, in, one, g_one, n);
        for (int64_t k = 0; k < n; k++)
            g_sum[k] += g_one[k];
    }
    assert_float_equal(l_mask, l_sum / kept, 1e-5);
    assert_true(fabsf(l_mask - l_all) > 1e-4f); /* the masked rows did count before */
    double diff_all = 0;
    for (int64_t k = 0; k < n; k++) {
        assert_float_equal(g_mask[k], g_sum[k] / kept, 1e-6 + 1e-4 * fabsf(g_mask[k]));
        diff_all += fabs(g_mask[k] - g_all[k]);
    }
    assert_true(diff_all > 1e-4);
    /* Every target masked: no loss, no gradient. */
    for (int j = 0; j < N; j++)
        one[j] = TR_DATA_IGNORE;
    assert_float_equal(loss_grad(m, in, one, g_one, n), 0.0f, 0.0f);
    for (int64_t k = 0; k < n; k++)
        assert_float_equal(g_one[k], 0.0f, 0.0f);
    free(g_all);
    free(g_mask);
    free(g_one);
    free(g_sum);
    tr_model_free(m);
}

/* The kernel alone: a left-out row has loss 0 and a zero gradient row. */
static void test_kernel(void **state)
{
    (void)state;
    float z[3 * 4] = {0.1f, 2.0f, -1.0f, 0.5f, 1.0f, 1.0f, 1.0f, 1.0f, -0.3f, 0.2f, 0.9f, 0.0f};
    int32_t tg[3] = {1, TR_DATA_IGNORE, 2}, two[2] = {1, 2};
    float losses[3], d[12], zz[8], d2[8];
    float l = tr_crossentropy_forward(losses, z, tg, 3, 4);
    memcpy(zz, z, 4 * sizeof(float));
    memcpy(zz + 4, z + 8, 4 * sizeof(float));
    assert_float_equal(l, tr_crossentropy_forward(NULL, zz, two, 2, 4), 1e-7);
    assert_float_equal(losses[1], 0.0f, 0.0f);
    tr_crossentropy_backward(d, z, tg, 3, 4);
    tr_crossentropy_backward(d2, zz, two, 2, 4);
    for (int v = 0; v < 4; v++) {
        assert_float_equal(d[4 + v], 0.0f, 0.0f);
        assert_float_equal(d[v], d2[v], 1e-7);
        assert_float_equal(d[8 + v], d2[4 + v], 1e-7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_targets),
        cmocka_unit_test(test_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
