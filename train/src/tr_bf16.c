/* tr_bf16.c - bf16 conversions and C = beta C + bf16(A) . op(W) (tr_bf16.h): an AVX-512
 * BF16 kernel chosen by CPUID, a portable one through cblas_sgemm, and their naive twin. */
#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "tr_bf16.h"

void tr_bf16_round(uint16_t *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = tr_bf16_from_f32(src[i]);
}

void tr_bf16_widen(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = tr_bf16_to_f32(src[i]);
}

int64_t tr_bf16_first_nonfinite(const uint16_t *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if ((x[i] & 0x7f80u) == 0x7f80u)
            return i;
    return n;
}

/* -1 unknown, 0 automatic, 1 portable forced. */
static int g_portable = -1;

int tr_bf16_cpu_native(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

void tr_bf16_set_portable(int on)
{
    g_portable = on != 0;
}

int tr_bf16_native(void)
{
    if (g_portable < 0) {
        const char *e = getenv("MUTUAL_BF16_KERNEL");
        g_portable = e && strcmp(e, "portable") == 0;
    }
    return !g_portable && tr_bf16_cpu_native();
}

const char *tr_bf16_kernel_name(void)
{
    if (tr_bf16_native())
        return "AVX-512 BF16 kernel";
    return tr_bf16_cpu_native() ? "portable kernel, forced by MUTUAL_BF16_KERNEL=portable: "
                                  "bf16 widened to fp32, then sgemm"
                                : "portable kernel, no AVX-512 BF16 on this CPU: bf16 widened "
                                  "to fp32, then sgemm";
}

void tr_bf16_gemm_ref(int M, int N, int K, const float *A, int lda, const uint16_t *W, int ldw,
                      int trans_w, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                uint16_t w = trans_w ? W[(int64_t)j * ldw + k] : W[(int64_t)k * ldw + j];
                double a = tr_bf16_to_f32(tr_bf16_from_f32(A[(int64_t)i * lda + k]));
                s += a * (double)tr_bf16_to_f32(w);
            }
            float *c = &C[(int64_t)i * ldc + j];
            *c = beta != 0.0f ? (float)((double)*c + s) : (float)s;
        }
}

/* ---- portable: widen to fp32 panels, then sgemm ---------------------------------------- */

#define TR_BF16_PB 256 /* rows of W widened at a time */

static void *xmalloc_floats(int64_t n)
{
    return malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
}

/* bf16(A[:, k0:k0+kb]) into dst (M, kb). */
static void round_cols(float *dst, const float *A, int lda, int M, int k0, int kb)
{
    for (int i = 0; i < M; i++)
        for (int k = 0; k < kb; k++)
            dst[(int64_t)i * kb + k] =
                tr_bf16_to_f32(tr_bf16_from_f32(A[(int64_t)i * lda + k0 + k]));
}

static void gemm_portable(int M, int N, int K, const float *A, int lda, const uint16_t *W, int ldw,
                          int trans_w, float beta, float *C, int ldc)
{
    if (trans_w) { /* C[:, j0:j0+nb] = bf16(A) . W[j0:j0+nb, :]^T */
        float *a = xmalloc_floats((int64_t)M * K), *w = xmalloc_floats((int64_t)TR_BF16_PB * K);
        if (!a || !w)
            abort(); /* bounded scratch: as the fp32 path's OpenBLAS buffers */
        round_cols(a, A, lda, M, 0, K);
        for (int j0 = 0; j0 < N; j0 += TR_BF16_PB) {
            int nb = N - j0 < TR_BF16_PB ? N - j0 : TR_BF16_PB;
            for (int j = 0; j < nb; j++)
                tr_bf16_widen(w + (int64_t)j * K, W + (int64_t)(j0 + j) * ldw, K);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, nb, K, 1.0f, a, K, w, K, beta,
                        C + j0, ldc);
        }
        free(a);
        free(w);
        return;
    }
    /* C = beta C + sum over k blocks of bf16(A[:, k0:k0+kb]) . W[k0:k0+kb, :] */
    int kbm = K < TR_BF16_PB ? K : TR_BF16_PB;
    float *a = xmalloc_floats((int64_t)M * kbm), *w = xmalloc_floats((int64_t)kbm * N);
    if (!a || !w)
        abort();
    for (int k0 = 0; k0 < K; k0 += TR_BF16_PB) {
        int kb = K - k0 < TR_BF16_PB ? K - k0 : TR_BF16_PB;
        round_cols(a, A, lda, M, k0, kb);
        for (int k = 0; k < kb; k++)
            tr_bf16_widen(w + (int64_t)k * N, W + (int64_t)(k0 + k) * ldw, N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, kb, 1.0f, a, kb, w, N,
                    k0 ? 1.0f : beta, C, ldc);
    }
    free(a);
    free(w);
}

/* ---- native: AVX-512 BF16 --------------------------------------------------------------
 * Goto/BLIS blocking. For each (NC columns, KC depth) block, W is packed into panels of NR
 * columns in which each k pair of a column is one 32-bit word (vdpbf16ps's operand layout);
 * for each MC rows, A is rounded into bf16 rows (a k pair is adjacent already). The micro-
 * kernel keeps an MR x NR tile of C in 24 registers and, per k pair, broadcasts one word of
 * each A row against NV vectors of the W panel. Edges are zero-padded in the panels and
 * masked when C is written. */
#define MR 6
#define NV 4
#define NR (16 * NV)
#define KC 256 /* k values per block: even */
#define MC 96  /* multiple of MR */
#define NC 1024

#define TR_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

TR_AVX512BF16 static void micro(int kp, const uint16_t *ap, int as, const uint16_t *bp, float *C,
                                int ldc, int mr, int nr, int load_c)
{
    __m512 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b[NV];
        const uint16_t *bq = bp + (int64_t)p * NR * 2;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            b[v] = (__m512bh)_mm512_loadu_si512((const void *)(bq + 32 * v));
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            int32_t w;
            memcpy(&w, ap + (int64_t)i * as + 2 * p, sizeof w);
            __m512bh a = (__m512bh)_mm512_set1_epi32(w);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, b[v]);
        }
    }
    if (mr == MR && nr == NR) {
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                float *c = C + (int64_t)i * ldc + 16 * v;
                __m512 x = acc[i][v];
                if (load_c)
                    x = _mm512_add_ps(x, _mm512_loadu_ps(c));
                _mm512_storeu_ps(c, x);
            }
        return;
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < NV && 16 * v < nr; v++) {
            int cols = nr - 16 * v;
            __mmask16 k = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1u);
            float *c = C + (int64_t)i * ldc + 16 * v;
            __m512 x = acc[i][v];
            if (load_c)
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, c));
            _mm512_mask_storeu_ps(c, k, x);
        }
}

/* Rows [0, mc) of A, columns [k0, k0 + kc), as bf16 into ap (rows padded to a multiple of
 * MR, length padded to 2 * kp, with zeros); row stride as = 2 * kp. */
TR_AVX512BF16 static void pack_a(uint16_t *ap, int as, const float *A, int lda, int mc, int k0,
                                 int kc)
{
    int rows = (mc + MR - 1) / MR * MR;
    for (int i = 0; i < rows; i++) {
        uint16_t *d = ap + (int64_t)i * as;
        if (i >= mc) {
            memset(d, 0, sizeof(uint16_t) * (size_t)as);
            continue;
        }
        const float *s = A + (int64_t)i * lda + k0;
        int k = 0;
        for (; k + 16 <= kc; k += 16)
            _mm256_storeu_si256((__m256i *)(d + k),
                                (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + k)));
        if (k < kc) {
            __mmask16 m = (__mmask16)((1u << (kc - k)) - 1u);
            __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + k));
            _mm256_mask_storeu_epi16(d + k, m, (__m256i)h);
        }
        for (k = kc; k < as; k++)
            d[k] = 0;
    }
}

/* W's block k [k0, k0 + kc) x columns [j0, j0 + nc) of op(W) into panels of NR columns:
 * panel q holds kp words per column, word (p, jj) = (op(W)[k0+2p][j], op(W)[k0+2p+1][j]). */
static void pack_b(uint16_t *bp, const uint16_t *W, int ldw, int trans_w, int N, int k0, int kc,
                   int j0, int nc)
{
    int kp = (kc + 1) / 2;
    for (int q = 0; q < nc; q += NR) {
        uint16_t *d = bp + (int64_t)(q / NR) * kp * NR * 2;
        for (int jj = 0; jj < NR; jj++) {
            int j = j0 + q + jj;
            if (j >= j0 + nc || j >= N) {
                for (int p = 0; p < kp; p++)
                    d[((int64_t)p * NR + jj) * 2] = d[((int64_t)p * NR + jj) * 2 + 1] = 0;
                continue;
            }
            if (trans_w) { /* op(W)[k][j] = W[j][k]: pairs adjacent in row j */
                const uint16_t *s = W + (int64_t)j * ldw + k0;
                for (int p = 0; p < kp; p++) {
                    int k = 2 * p;
                    d[((int64_t)p * NR + jj) * 2] = s[k];
                    d[((int64_t)p * NR + jj) * 2 + 1] = k + 1 < kc ? s[k + 1] : 0;
                }
            } else {
                for (int p = 0; p < kp; p++) {
                    int k = k0 + 2 * p;
                    d[((int64_t)p * NR + jj) * 2] = W[(int64_t)k * ldw + j];
                    d[((int64_t)p * NR + jj) * 2 + 1] =
                        2 * p + 1 < kc ? W[(int64_t)(k + 1) * ldw + j] : 0;
                }
            }
        }
    }
}

static void gemm_native(int M, int N, int K, const float *A, int lda, const uint16_t *W, int ldw,
                        int trans_w, float beta, float *C, int ldc)
{
    int kcm = K < KC ? (K + 1) / 2 * 2 : KC;
    int ncm = N < NC ? (N + NR - 1) / NR * NR : NC;
    uint16_t *bp = aligned_alloc(64, sizeof(uint16_t) * (size_t)kcm * (size_t)ncm);
    uint16_t *ap = aligned_alloc(64, sizeof(uint16_t) * (size_t)kcm * MC);
    if (!bp || !ap)
        abort();
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, kp = (kc + 1) / 2;
            int load_c = k0 > 0 || beta != 0.0f;
            pack_b(bp, W, ldw, trans_w, N, k0, kc, j0, nc);
            for (int i0 = 0; i0 < M; i0 += MC) {
                int mc = M - i0 < MC ? M - i0 : MC;
                pack_a(ap, 2 * kp, A + (int64_t)i0 * lda, lda, mc, k0, kc);
                for (int q = 0; q < nc; q += NR) {
                    const uint16_t *bq = bp + (int64_t)(q / NR) * kp * NR * 2;
                    int nr = nc - q < NR ? nc - q : NR;
                    for (int r = 0; r < mc; r += MR)
                        micro(kp, ap + (int64_t)r * 2 * kp, 2 * kp, bq,
                              C + (int64_t)(i0 + r) * ldc + j0 + q, ldc, mc - r < MR ? mc - r : MR,
                              nr, load_c);
                }
            }
        }
    }
    free(bp);
    free(ap);
}

void tr_bf16_gemm(int M, int N, int K, const float *A, int lda, const uint16_t *W, int ldw,
                  int trans_w, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (tr_bf16_native())
        gemm_native(M, N, K, A, lda, W, ldw, trans_w, beta, C, ldc);
    else
        gemm_portable(M, N, K, A, lda, W, ldw, trans_w, beta, C, ldc);
}
