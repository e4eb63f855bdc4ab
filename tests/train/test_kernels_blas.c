/* The BLAS-backed kernels against their naive references, on odd shapes (so no blocking
 * happens to line up), both weight layouts, accumulate on and off, grouped-query heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tr_kernels.h"
#include "tr_model.h"
#include "train/tr_testutil.h"

#define ATOL 1e-5
#define RTOL 1e-4

static void check_matmul(int N, int IN, int OUT)
{
    float *x = tt_alloc(N * IN), *w = tt_alloc(IN * OUT), *b = tt_alloc(OUT);
    float *y1 = tt_alloc(N * OUT), *y2 = tt_alloc(N * OUT);
    float *dy = tt_alloc(N * OUT), *d1 = tt_alloc(N * IN), *d2 = tt_alloc(N * IN);
    tt_fill(x, N * IN, 1, 1.0f);
    tt_fill(w, IN * OUT, 2, 1.0f);
    tt_fill(b, OUT, 3, 1.0f);
    tt_fill(dy, N * OUT, 4, 1.0f);
    for (int lay = 0; lay < 2; lay++)
        for (int acc = 0; acc < 2; acc++) {
            tt_fill(y1, N * OUT, 5, 1.0f);
            tt_fill(y2, N * OUT, 5, 1.0f);
            for (int withb = 0; withb < 2; withb++) {
                tr_matmul_forward(y1, x, w, withb ? b : NULL, N, IN, OUT, (tr_wlayout)lay, acc);
                tr_matmul_forward_ref(y2, x, w, withb ? b : NULL, N, IN, OUT, (tr_wlayout)lay, acc);
                tt_assert_close(y1, y2, N * OUT, ATOL, RTOL, "matmul forward");
            }
            tt_fill(d1, N * IN, 6, 1.0f);
            tt_fill(d2, N * IN, 6, 1.0f);
            tr_matmul_backward(d1, dy, w, N, IN, OUT, (tr_wlayout)lay, acc);
            tr_matmul_backward_ref(d2, dy, w, N, IN, OUT, (tr_wlayout)lay, acc);
            tt_assert_close(d1, d2, N * IN, ATOL, RTOL, "matmul backward");
        }
    free(x), free(w), free(b), free(y1), free(y2), free(dy), free(d1), free(d2);
}

static void test_matmul(void **state)
{
    (void)state;
    check_matmul(13, 37, 19);
    check_matmul(197, 83, 71); /* large enough to be split over threads, ragged rows */
}

/* atol: float sums over N terms carry rounding of order N * eps * |terms|. */
static void check_lora(int N, int IN, int OUT, int R, double atol)
{
    int ldo = OUT + 4;
    float *x = tt_alloc(N * IN), *A = tt_alloc(R * IN), *Bm = tt_alloc(OUT * R);
    float *y1 = tt_alloc(N * ldo), *y2 = tt_alloc(N * ldo), *h1 = tt_alloc(N * R);
    float *h2 = tt_alloc(N * R);
    tt_fill(x, N * IN, 7, 1.0f);
    tt_fill(A, R * IN, 8, 1.0f);
    tt_fill(Bm, OUT * R, 9, 1.0f);
    tt_fill(y1, N * ldo, 10, 1.0f);
    memcpy(y2, y1, sizeof(float) * (size_t)N * ldo);
    tr_lora_forward(y1, ldo, h1, x, A, Bm, 0.75f, N, IN, OUT, R);
    tr_lora_forward_ref(y2, ldo, h2, x, A, Bm, 0.75f, N, IN, OUT, R);
    tt_assert_close(h1, h2, N * R, atol, RTOL, "lora h");
    tt_assert_close(y1, y2, N * ldo, atol, RTOL, "lora forward");

    float *dy = tt_alloc(N * ldo), *dx1 = tt_alloc(N * IN), *dx2 = tt_alloc(N * IN);
    float *dA1 = tt_alloc(R * IN), *dA2 = tt_alloc(R * IN), *dB1 = tt_alloc(OUT * R);
    float *dB2 = tt_alloc(OUT * R), *dh1 = tt_alloc(N * R), *dh2 = tt_alloc(N * R);
    tt_fill(dy, N * ldo, 11, 1.0f);
    /* all outputs start nonzero: the kernel must add, not overwrite */
    tt_fill(dx1, N * IN, 12, 1.0f), tt_fill(dx2, N * IN, 12, 1.0f);
    tt_fill(dA1, R * IN, 13, 1.0f), tt_fill(dA2, R * IN, 13, 1.0f);
    tt_fill(dB1, OUT * R, 14, 1.0f), tt_fill(dB2, OUT * R, 14, 1.0f);
    tr_lora_backward(dx1, dA1, dB1, dh1, dy, ldo, x, h1, A, Bm, 0.75f, N, IN, OUT, R);
    tr_lora_backward_ref(dx2, dA2, dB2, dh2, dy, ldo, x, h2, A, Bm, 0.75f, N, IN, OUT, R);
    tt_assert_close(dx1, dx2, N * IN, atol, RTOL, "lora dx");
    tt_assert_close(dA1, dA2, R * IN, atol, RTOL, "lora dA");
    tt_assert_close(dB1, dB2, OUT * R, atol, RTOL, "lora dB");
    /* frozen A: no dA, no dinp */
    float *dB3 = tt_alloc(OUT * R);
    tt_fill(dB3, OUT * R, 14, 1.0f);
    tr_lora_backward(NULL, NULL, dB3, dh1, dy, ldo, x, h1, A, Bm, 0.75f, N, IN, OUT, R);
    tt_assert_close(dB3, dB2, OUT * R, atol, RTOL, "lora dB (frozen A)");
    free(x), free(A), free(Bm), free(y1), free(y2), free(h1), free(h2), free(dy), free(dx1);
    free(dx2), free(dA1), free(dA2), free(dB1), free(dB2), free(dh1), free(dh2), free(dB3);
}

static void test_lora(void **state)
{
    (void)state;
    check_lora(11, 23, 17, 5, ATOL);
    check_lora(1000, 130, 150, 8, 2e-4); /* every product large enough to be split */
}

/* The fused linear (base + adapters in one region) against tr_matmul_* + tr_lora_*: two
 * adapters on different column slices, init and bias terms, and the backward. */
static void check_linear(int N, int IN, int OUT, int R, tr_wlayout lay, int with_init, double atol)
{
    float *x = tt_alloc(N * IN), *w = tt_alloc(IN * OUT), *b = tt_alloc(OUT);
    float *init = tt_alloc(N * OUT), *y1 = tt_alloc(N * OUT), *y2 = tt_alloc(N * OUT);
    float *A[2], *Bm[2], *h1[2], *h2[2], *dA1[2], *dA2[2], *dB1[2], *dB2[2], *dh[2];
    int off[2] = {0, OUT / 2}, out[2] = {OUT / 2, OUT - OUT / 2};
    tt_fill(x, N * IN, 40, 1.0f);
    tt_fill(w, IN * OUT, 41, 1.0f);
    tt_fill(b, OUT, 42, 1.0f);
    tt_fill(init, N * OUT, 43, 1.0f);
    tr_lora_slot sl[2];
    for (int k = 0; k < 2; k++) {
        A[k] = tt_alloc(R * IN), Bm[k] = tt_alloc(out[k] * R), h1[k] = tt_alloc(N * R);
        h2[k] = tt_alloc(N * R), dA1[k] = tt_alloc(R * IN), dA2[k] = tt_alloc(R * IN);
        dB1[k] = tt_alloc(out[k] * R), dB2[k] = tt_alloc(out[k] * R), dh[k] = tt_alloc(N * R);
        tt_fill(A[k], R * IN, 44 + (uint64_t)k, 1.0f);
        tt_fill(Bm[k], out[k] * R, 46 + (uint64_t)k, 1.0f);
        sl[k] = (tr_lora_slot){.A = A[k],
                               .B = Bm[k],
                               .h = h1[k],
                               .dh = dh[k],
                               .dA = dA1[k],
                               .dB = dB1[k],
                               .off = off[k],
                               .out = out[k]};
    }
    tr_linear_forward(y1, with_init ? init : NULL, x, w, b, N, IN, OUT, lay, sl, 2, R, 0.5f);
    if (with_init)
        memcpy(y2, init, sizeof(float) * (size_t)N * OUT);
    tr_matmul_forward_ref(y2, x, w, b, N, IN, OUT, lay, with_init);
    for (int k = 0; k < 2; k++)
        tr_lora_forward_ref(y2 + off[k], OUT, h2[k], x, A[k], Bm[k], 0.5f, N, IN, out[k], R);
    tt_assert_close(y1, y2, N * OUT, atol, RTOL, "fused linear forward");

    float *dy = tt_alloc(N * OUT), *dx1 = tt_alloc(N * IN), *dx2 = tt_alloc(N * IN);
    float *dhr = tt_alloc(N * R);
    tt_fill(dy, N * OUT, 48, 1.0f);
    tt_fill(dx1, N * IN, 49, 1.0f); /* garbage: the fused backward overwrites dinp */
    tr_linear_backward(dx1, dy, x, w, N, IN, OUT, lay, sl, 2, R, 0.5f);
    tr_matmul_backward_ref(dx2, dy, w, N, IN, OUT, lay, 0);
    for (int k = 0; k < 2; k++)
        tr_lora_backward_ref(dx2, dA2[k], dB2[k], dhr, dy + off[k], OUT, x, h2[k], A[k], Bm[k],
                             0.5f, N, IN, out[k], R);
    tt_assert_close(dx1, dx2, N * IN, atol, RTOL, "fused linear dx");
    for (int k = 0; k < 2; k++) {
        tt_assert_close(dA1[k], dA2[k], R * IN, atol, RTOL, "fused linear dA");
        tt_assert_close(dB1[k], dB2[k], out[k] * R, atol, RTOL, "fused linear dB");
    }
    free(x), free(w), free(b), free(init), free(y1), free(y2), free(dy), free(dx1), free(dx2);
    free(dhr);
    for (int k = 0; k < 2; k++) {
        free(A[k]), free(Bm[k]), free(h1[k]), free(h2[k]), free(dA1[k]), free(dA2[k]);
        free(dB1[k]), free(dB2[k]), free(dh[k]);
    }
}

static void test_linear(void **state)
{
    (void)state;
    check_linear(9, 7, 10, 3, TR_W_IN_OUT, 0, ATOL);
    check_linear(9, 7, 10, 3, TR_W_OUT_IN, 1, ATOL);
    check_linear(333, 64, 96, 8, TR_W_IN_OUT, 1, 2e-4); /* split over threads */
    check_linear(333, 64, 96, 8, TR_W_OUT_IN, 0, 2e-4);
}

/* The blocked attention against its naive twin, with garbage in the probabilities and the
 * gradient it must overwrite (upper triangle too); Gemma's options over several row blocks:
 * windows inside one block, across blocks (70 at T 150), softcaps. */
static void check_attention_opts(int B, int T, int H, int KV, int hd, tr_attn_opts o)
{
    int W = (H + 2 * KV) * hd;
    int64_t nq = (int64_t)B * T * W, no = (int64_t)B * T * H * hd, na = (int64_t)B * H * T * T;
    float *qkv = tt_alloc(nq), *o1 = tt_alloc(no), *o2 = tt_alloc(no), *a1 = tt_alloc(na);
    float *a2 = tt_alloc(na), *dy = tt_alloc(no), *d1 = tt_alloc(nq), *d2 = tt_alloc(nq);
    float *scr = tt_alloc(64 * tr_attention_scratch_len(T));
    tt_fill(qkv, nq, 17, 2.0f);
    tt_fill(dy, no, 18, 1.0f);
    tt_fill(a1, na, 97, 1.0f);
    tr_attention_forward_opt(o1, a1, qkv, B, T, H, KV, hd, &o);
    tr_attention_forward_opt_ref(o2, a2, qkv, B, T, H, KV, hd, &o);
    tt_assert_close(a1, a2, na, ATOL, RTOL, "attention opts probabilities");
    tt_assert_close(o1, o2, no, ATOL, RTOL, "attention opts forward");
    tt_fill(d1, nq, 96, 1.0f);
    tr_attention_backward_opt(d1, scr, dy, qkv, a1, B, T, H, KV, hd, &o);
    tr_attention_backward_opt_ref(d2, scr, dy, qkv, a2, B, T, H, KV, hd, &o);
    tt_assert_close(d1, d2, nq, ATOL, RTOL, "attention opts backward");
    free(qkv), free(o1), free(o2), free(a1), free(a2), free(dy), free(d1), free(d2), free(scr);
}

static void test_attention_opts(void **state)
{
    (void)state;
    check_attention_opts(2, 9, 4, 2, 4, (tr_attn_opts){0.2f, 0.0f, 3});
    check_attention_opts(1, 150, 2, 1, 4, (tr_attn_opts){0.0f, 0.0f, 70});
    check_attention_opts(1, 150, 2, 1, 4, (tr_attn_opts){0.0f, 0.0f, 5});
    check_attention_opts(2, 130, 4, 2, 8, (tr_attn_opts){0.0f, 1.5f, 0});
    check_attention_opts(1, 150, 3, 1, 4, (tr_attn_opts){0.6f, 2.0f, 64});
}

/* The plain kernels are the _opt ones with no options. */
static void check_attention(int B, int T, int H, int KV, int hd)
{
    check_attention_opts(B, T, H, KV, hd, (tr_attn_opts){0.0f, 0.0f, 0});
}

static void test_attention(void **state)
{
    (void)state;
    check_attention(2, 7, 4, 4, 5);   /* multi-head */
    check_attention(3, 9, 6, 2, 4);   /* grouped-query, 3 heads per kv head */
    check_attention(1, 5, 3, 1, 2);   /* multi-query */
    check_attention(1, 150, 2, 1, 4); /* several causal row blocks, a ragged last one */
    check_attention(2, 128, 4, 2, 8); /* exactly two blocks */
}

int main(void)
{
    tr_threads_set(2); /* exercise the row split even on a 1-core runner */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),         cmocka_unit_test(test_lora),
        cmocka_unit_test(test_attention_opts), cmocka_unit_test(test_linear),
        cmocka_unit_test(test_attention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
