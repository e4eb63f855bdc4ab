/* tr_kernels_blas.c - the layers that are matrix products: frozen linears, LoRA, causal
 * attention. All through cblas_sgemm (the OpenMP build of OpenBLAS: inside our own parallel
 * loops it runs single-threaded, outside it uses the team). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "tr_kernels.h"
#include "tr_vec.h"

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define TR_ATT_PAR_MIN 262144

void tr_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N,
                       int IN, int OUT, tr_wlayout layout, int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (bias) {
        /* Put the bias in first so the product lands on top of it (one pass, beta 1). */
#pragma omp parallel for schedule(static) if ((int64_t)N * OUT >= 32768)
        for (int n = 0; n < N; n++) {
            float *o = out + (int64_t)n * OUT;
            if (accumulate)
                for (int j = 0; j < OUT; j++)
                    o[j] += bias[j];
            else
                memcpy(o, bias, sizeof(float) * (size_t)OUT);
        }
        beta = 1.0f;
    }
    if (layout == TR_W_IN_OUT)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OUT, IN, 1.0f, inp, IN, w, OUT,
                    beta, out, OUT);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, w, IN, beta,
                    out, OUT);
}

void tr_matmul_backward(float *dinp, const float *dout, const float *w, int N, int IN, int OUT,
                        tr_wlayout layout, int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (layout == TR_W_IN_OUT)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, IN, OUT, 1.0f, dout, OUT, w, OUT,
                    beta, dinp, IN);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, w, IN,
                    beta, dinp, IN);
}

void tr_lora_forward(float *out, int ldo, float *h, const float *inp, const float *A,
                     const float *Bm, float scale, int N, int IN, int OUT, int R)
{
    /* h (N, R) = inp (N, IN) . A^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, R, IN, 1.0f, inp, IN, A, IN, 0.0f, h,
                R);
    /* out (N, OUT) += scale * h . B^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, R, scale, h, R, Bm, R, 1.0f, out,
                ldo);
}

void tr_lora_backward(float *dinp, float *dA, float *dB, float *dh, const float *dout, int ldd,
                      const float *inp, const float *h, const float *A, const float *Bm,
                      float scale, int N, int IN, int OUT, int R)
{
    /* dB (OUT, R) += scale * dout^T . h */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, R, N, scale, dout, ldd, h, R, 1.0f,
                dB, R);
    /* dh (N, R) = scale * dout . B */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, OUT, scale, dout, ldd, Bm, R, 0.0f,
                dh, R);
    if (dA) /* dA (R, IN) += dh^T . inp */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, IN, N, 1.0f, dh, R, inp, IN, 1.0f,
                    dA, IN);
    if (dinp) /* dinp (N, IN) += dh . A */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, R, 1.0f, dh, R, A, IN, 1.0f,
                    dinp, IN);
}

/* Causal softmax of row t of S (T columns) in place: columns > t become 0. */
static void causal_softmax_row(float *s, int t, int T)
{
    float mx = s[0];
    for (int j = 1; j <= t; j++)
        mx = s[j] > mx ? s[j] : mx;
    float k = 1.0f / tr_vec_exp_sum(s, t + 1, mx);
    for (int j = 0; j <= t; j++)
        s[j] *= k;
    memset(s + t + 1, 0, sizeof(float) * (size_t)(T - t - 1));
}

/* Causal row blocks: rows [r0, r1) of a head only see keys [0, r1), so each block's products
 * stop at r1 and the zero upper triangle is never multiplied (37% fewer flops at T = 256). */
#define TR_ATT_BLOCK 64

void tr_attention_forward(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                          int hd)
{
    int W = (H + 2 * KV) * hd, HD = H * hd, grp = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if ((int64_t)B * H * T * T * hd >= TR_ATT_PAR_MIN)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / grp;
        const float *base = qkv + (int64_t)b * T * W;
        const float *q = base + (int64_t)h * hd;
        const float *k = base + (int64_t)(H + g) * hd;
        const float *v = base + (int64_t)(H + KV + g) * hd;
        float *S = att + (int64_t)bh * T * T;
        float *y = out + (int64_t)b * T * HD + (int64_t)h * hd;
        for (int r0 = 0; r0 < T; r0 += TR_ATT_BLOCK) {
            int r1 = r0 + TR_ATT_BLOCK < T ? r0 + TR_ATT_BLOCK : T, nr = r1 - r0;
            float *Sb = S + (int64_t)r0 * T;
            /* S[r0:r1, 0:r1] = scale * q[r0:r1] . k[0:r1]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hd, scale,
                        q + (int64_t)r0 * W, W, k, W, 0.0f, Sb, T);
            for (int t = r0; t < r1; t++)
                causal_softmax_row(S + (int64_t)t * T, t, T);
            /* y[r0:r1] = S[r0:r1, 0:r1] . v[0:r1] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, r1, 1.0f, Sb, T, v, W,
                        0.0f, y + (int64_t)r0 * HD, HD);
        }
    }
}

int64_t tr_attention_scratch_len(int T)
{
    return (int64_t)T * T;
}

void tr_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int H, int KV, int hd)
{
    int W = (H + 2 * KV) * hd, HD = H * hd, grp = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    int nblk = (T + TR_ATT_BLOCK - 1) / TR_ATT_BLOCK;
    /* One task per (batch, kv head): the query heads of a group add into the same dk, dv in
     * a fixed order, so no two threads write the same memory. Within a head the row blocks
     * run last to first: the first one covers every key row, so it can overwrite (beta 0). */
#pragma omp parallel for schedule(static) if ((int64_t)B * H * T * T * hd >= TR_ATT_PAR_MIN)
    for (int bg = 0; bg < B * KV; bg++) {
        int b = bg / KV, g = bg % KV;
        float *dP = scratch + (int64_t)omp_get_thread_num() * tr_attention_scratch_len(T);
        const float *base = qkv + (int64_t)b * T * W;
        float *dbase = dqkv + (int64_t)b * T * W;
        const float *k = base + (int64_t)(H + g) * hd;
        const float *v = base + (int64_t)(H + KV + g) * hd;
        float *dk = dbase + (int64_t)(H + g) * hd;
        float *dv = dbase + (int64_t)(H + KV + g) * hd;
        for (int j = 0; j < grp; j++) {
            int h = g * grp + j;
            const float *q = base + (int64_t)h * hd;
            float *dq = dbase + (int64_t)h * hd;
            const float *P = att + ((int64_t)b * H + h) * T * T;
            const float *dy = dout + (int64_t)b * T * HD + (int64_t)h * hd;
            for (int blk = nblk - 1; blk >= 0; blk--) {
                int r0 = blk * TR_ATT_BLOCK;
                int r1 = r0 + TR_ATT_BLOCK < T ? r0 + TR_ATT_BLOCK : T, nr = r1 - r0;
                float beta = j == 0 && blk == nblk - 1 ? 0.0f : 1.0f;
                const float *Pb = P + (int64_t)r0 * T;
                const float *dyb = dy + (int64_t)r0 * HD;
                /* dP (nr, r1) = dy[r0:r1] . v[0:r1]^T ; dv[0:r1] += P[r0:r1, 0:r1]^T . dy */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hd, 1.0f, dyb, HD, v,
                            W, 0.0f, dP, r1);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, nr, 1.0f, Pb, T, dyb,
                            HD, beta, dv, W);
                /* dS = P * (dP - rowsum(P * dP)) * scale, causal part only */
                for (int t = r0; t < r1; t++) {
                    const float *p = P + (int64_t)t * T;
                    float *d = dP + (int64_t)(t - r0) * r1;
                    float dot = 0.0f;
                    for (int s2 = 0; s2 <= t; s2++)
                        dot += p[s2] * d[s2];
                    for (int s2 = 0; s2 <= t; s2++)
                        d[s2] = p[s2] * (d[s2] - dot) * scale;
                    for (int s2 = t + 1; s2 < r1; s2++)
                        d[s2] = 0.0f;
                }
                /* dq[r0:r1] = dS . k[0:r1] ; dk[0:r1] += dS^T . q[r0:r1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, r1, 1.0f, dP, r1, k,
                            W, 0.0f, dq + (int64_t)r0 * W, W);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, nr, 1.0f, dP, r1,
                            q + (int64_t)r0 * W, W, beta, dk, W);
            }
        }
    }
}
