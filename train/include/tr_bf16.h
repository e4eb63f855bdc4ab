/* tr_bf16.h - bfloat16 storage and matrix products with fp32 accumulation.
 *
 * bf16 is the upper half of an IEEE fp32: sign, the same 8-bit exponent, 7 mantissa bits
 * (relative precision 2^-8). A frozen base weight stored as bf16 takes half the memory of
 * fp32; products with it run on AVX-512 BF16's vdpbf16ps (two bf16 multiply-adds per fp32
 * lane, accumulated in fp32) where the CPU has it.
 *
 * tr_bf16_gemm computes C = beta C + bf16(A) . op(W) where A is fp32 and rounded to bf16
 * (nearest even) as it is packed, W is already bf16, every product of two bf16 values is
 * exact in fp32 and the sums are fp32. Two implementations, chosen at run time:
 *   native:   AVX-512 BF16 (CPUID avx512_bf16): packed panels, vdpbf16ps micro-kernel.
 *   portable: W widened to fp32 and bf16(A) into fp32 panels, then cblas_sgemm.
 * Both compute the same products of the same rounded inputs; they differ only in the
 * order of the fp32 additions (each within K * eps_fp32 of the exact sum). The native
 * path's conversions treat fp32 subnormals as zero (the instructions' DAZ/FTZ); the
 * portable path and tr_bf16_round keep them. MUTUAL_BF16_KERNEL=portable in the
 * environment (read once) or tr_bf16_set_portable(1) forces the portable path.
 *
 * Single-threaded: callers split rows over their own threads (tr_kernels_blas.c). */
#ifndef TR_BF16_H
#define TR_BF16_H

#include <stdint.h>
#include <string.h>

/* fp32 -> bf16, round to nearest even; NaN stays NaN (quiet), infinities stay. */
static inline uint16_t tr_bf16_from_f32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float tr_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* dst[i] = tr_bf16_from_f32(src[i]) / tr_bf16_to_f32(src[i]) for i < n. */
void tr_bf16_round(uint16_t *dst, const float *src, int64_t n);
void tr_bf16_widen(float *dst, const uint16_t *src, int64_t n);

/* The index of the first NaN or infinity of x[0..n), or n. */
int64_t tr_bf16_first_nonfinite(const uint16_t *x, int64_t n);

/* 1 if this CPU has AVX-512 BF16 (whatever is forced). */
int tr_bf16_cpu_native(void);
/* 1 if tr_bf16_gemm runs the native kernel: the CPU has it and it is not forced off. */
int tr_bf16_native(void);
/* on 1: use the portable path even where the native one exists; 0: back to automatic. */
void tr_bf16_set_portable(int on);
/* Which path tr_bf16_gemm runs, for a log line: "AVX-512 BF16 kernel", or "portable kernel"
 * and why (this CPU has no AVX-512 BF16, or it was forced). A static string. */
const char *tr_bf16_kernel_name(void);

/* C (M, N) = beta C + bf16(A) . op(W), fp32 accumulation. A (M, K) fp32 row-major with
 * leading dimension lda >= K; W bf16 row-major: trans_w 1: W (N, K), ldw >= K, op(W) = W^T
 * (nn.Linear's forward x W^T); trans_w 0: W (K, N), ldw >= N, op(W) = W. beta is 0
 * (overwrite; C is not read) or 1 (add). M, N >= 0, K >= 1. */
void tr_bf16_gemm(int M, int N, int K, const float *A, int lda, const uint16_t *W, int ldw,
                  int trans_w, float beta, float *C, int ldc);
/* The naive twin: triple loop, the same bf16-rounded inputs, sums in double. */
void tr_bf16_gemm_ref(int M, int N, int K, const float *A, int lda, const uint16_t *W, int ldw,
                      int trans_w, float beta, float *C, int ldc);

#endif
