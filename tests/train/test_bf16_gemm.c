/* tr_bf16_gemm (both dispatch paths: native AVX-512 BF16 and portable) against its naive
 * twin on shapes that line up with no block size (MR 6, NR 64, KC 256, MC 96, NC 1024),
 * one row, K = 1, odd K, both layouts of W, beta 0 and 1, leading dimensions wider than the
 * matrix; and the bf16 rounding itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tr_bf16.h"
#include "train/tr_testutil.h"

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void test_rounding(void **state)
{
    (void)state;
    assert_int_equal(tr_bf16_from_f32(1.0f), 0x3f80);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1). */
    assert_int_equal(tr_bf16_from_f32(from_bits(0x3f808000u)), 0x3f80);
    /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to even. */
    assert_int_equal(tr_bf16_from_f32(from_bits(0x3f818000u)), 0x3f82);
    assert_int_equal(tr_bf16_from_f32(from_bits(0x3f808001u)), 0x3f81);
    assert_int_equal(tr_bf16_from_f32(-2.0f), 0xc000);
    assert_int_equal(tr_bf16_from_f32(INFINITY), 0x7f80);
    assert_int_equal(tr_bf16_from_f32(-INFINITY), 0xff80);
    /* The largest finite floats round up to infinity, as in torch. */
    assert_int_equal(tr_bf16_from_f32(from_bits(0x7f7fffffu)), 0x7f80);
    uint16_t n = tr_bf16_from_f32(from_bits(0x7f800001u)); /* a NaN with only low bits set */
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    for (uint32_t h = 0; h < 0x10000; h += 7) { /* widening then rounding is the identity */
        float x = tr_bf16_to_f32((uint16_t)h);
        assert_int_equal(bits(x), h << 16);
        if (!isnan(x))
            assert_int_equal(tr_bf16_from_f32(x), h);
    }
}

/* |C - ref| <= (K + 2) eps_fp32 (sum |a w| + |c0|): the fp32 sums of exact products. */
static void check(int M, int N, int K, int trans_w, float beta, int portable)
{
    int lda = K + 3, ldw = (trans_w ? K : N) + 5, ldc = N + 2;
    int64_t wrows = trans_w ? N : K;
    float *A = tt_alloc((int64_t)M * lda), *Wf = tt_alloc(wrows * ldw);
    float *C = tt_alloc((int64_t)M * ldc), *R = tt_alloc((int64_t)M * ldc);
    float *C0 = tt_alloc((int64_t)M * ldc);
    uint16_t *W = calloc((size_t)(wrows * ldw), sizeof(uint16_t));
    assert_non_null(W);
    tt_fill(A, (int64_t)M * lda, 11 + (uint64_t)K, 2.0f);
    tt_fill(Wf, wrows * ldw, 12 + (uint64_t)N, 0.5f);
    tr_bf16_round(W, Wf, wrows * ldw);
    tt_fill(C0, (int64_t)M * ldc, 13, 1.0f);
    memcpy(C, C0, sizeof(float) * (size_t)M * ldc);
    memcpy(R, C0, sizeof(float) * (size_t)M * ldc);
    tr_bf16_set_portable(portable);
    tr_bf16_gemm(M, N, K, A, lda, W, ldw, trans_w, beta, C, ldc);
    tr_bf16_set_portable(0);
    tr_bf16_gemm_ref(M, N, K, A, lda, W, ldw, trans_w, beta, R, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            int64_t at = (int64_t)i * ldc + j;
            if (j >= N) { /* outside the matrix: untouched */
                if (bits(C[at]) != bits(C0[at]))
                    fail_msg("%s M %d N %d K %d: C[%d][%d] beyond N was written",
                             portable ? "portable" : "native", M, N, K, i, j);
                continue;
            }
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float w = trans_w ? tr_bf16_to_f32(W[(int64_t)j * ldw + k])
                                  : tr_bf16_to_f32(W[(int64_t)k * ldw + j]);
                s += fabs((double)tr_bf16_to_f32(tr_bf16_from_f32(A[(int64_t)i * lda + k])) * w);
            }
            double tol = (K + 2) * ldexp(1.0, -24) * (s + (beta != 0.0f ? fabs(C0[at]) : 0.0));
            double d = fabs((double)C[at] - (double)R[at]);
            if (!(d <= tol))
                fail_msg("%s trans_w %d beta %g M %d N %d K %d: C[%d][%d] %.9g vs ref %.9g "
                         "(|diff| %.3g > %.3g)",
                         portable ? "portable" : "native", trans_w, (double)beta, M, N, K, i, j,
                         (double)C[at], (double)R[at], d, tol);
        }
    free(A), free(Wf), free(C), free(R), free(C0), free(W);
}

static const int SHAPES[][3] = {
    {1, 1, 1},   {1, 37, 1},    {7, 1, 5},      {1, 65, 300},   {13, 70, 1},
    {6, 64, 2},  {97, 129, 3},  {5, 63, 257},   {19, 200, 513}, {101, 1030, 37},
    {2, 3, 600}, {96, 64, 256}, {193, 67, 255},
};

static void run_all(int portable)
{
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int tw = 0; tw < 2; tw++)
            for (int b = 0; b < 2; b++)
                check(SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], tw, (float)b, portable);
}

static void test_native(void **state)
{
    (void)state;
    if (!tr_bf16_cpu_native()) {
        printf("# no AVX-512 BF16 on this CPU: the native kernel is not tested here\n");
        skip();
    }
    tr_bf16_set_portable(0);
    assert_int_equal(tr_bf16_native(), 1);
    run_all(0);
}

static void test_portable(void **state)
{
    (void)state;
    tr_bf16_set_portable(1);
    assert_int_equal(tr_bf16_native(), 0);
    tr_bf16_set_portable(0);
    run_all(1);
}

/* Exactly representable data (small integers): both paths give the exact sums. */
static void test_exact(void **state)
{
    (void)state;
    int M = 23, N = 77, K = 301;
    float *A = tt_alloc((int64_t)M * K), *C = tt_alloc((int64_t)M * N);
    uint16_t *W = calloc((size_t)K * N, sizeof(uint16_t));
    assert_non_null(W);
    for (int i = 0; i < M * K; i++)
        A[i] = (float)((i * 7) % 9 - 4);
    for (int i = 0; i < K * N; i++)
        W[i] = tr_bf16_from_f32((float)((i * 5) % 7 - 3));
    for (int portable = 0; portable < 2; portable++) {
        if (!portable && !tr_bf16_cpu_native())
            continue;
        tr_bf16_set_portable(portable);
        tr_bf16_gemm(M, N, K, A, K, W, N, 0, 0.0f, C, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0.0;
                for (int k = 0; k < K; k++)
                    s += (double)A[i * K + k] * tr_bf16_to_f32(W[k * N + j]);
                assert_true(C[i * N + j] == (float)s);
            }
    }
    tr_bf16_set_portable(0);
    free(A), free(C), free(W);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_native),
        cmocka_unit_test(test_portable),
        cmocka_unit_test(test_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
