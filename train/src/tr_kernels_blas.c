/* tr_kernels_blas.c - the layers that are matrix products: frozen linears, LoRA, causal
 * attention. All through cblas_sgemm (the OpenMP build of OpenBLAS: inside our own parallel
 * loops it runs single-threaded, outside it uses the team). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "tr_kernels.h"

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
    float sum = 0.0f;
    for (int j = 0; j <= t; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float k = 1.0f / sum;
    for (int j = 0; j <= t; j++)
        s[j] *= k;
    for (int j = t + 1; j < T; j++)
        s[j] = 0.0f;
}

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
        /* S (T, T) = scale * q . k^T; only the causal part matters. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q, W, k, W, 0.0f, S,
                    T);
        for (int t = 0; t < T; t++)
            causal_softmax_row(S + (int64_t)t * T, t, T);
        /* out (T, hd) = S . v */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, S, T, v, W, 0.0f,
                    out + (int64_t)b * T * HD + (int64_t)h * hd, HD);
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
    /* One task per (batch, kv head): the query heads of a group add into the same dk, dv in
     * a fixed order, so no two threads write the same memory. */
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
            float beta = j == 0 ? 0.0f : 1.0f;
            const float *q = base + (int64_t)h * hd;
            float *dq = dbase + (int64_t)h * hd;
            const float *P = att + ((int64_t)b * H + h) * T * T;
            const float *dy = dout + (int64_t)b * T * HD + (int64_t)h * hd;
            /* dP (T, T) = dy . v^T ; dv += P^T . dy */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dy, HD, v, W, 0.0f,
                        dP, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dy, HD, beta,
                        dv, W);
            /* dS = P * (dP - rowsum(P * dP)) * scale */
            for (int t = 0; t < T; t++) {
                const float *p = P + (int64_t)t * T;
                float *d = dP + (int64_t)t * T;
                float dot = 0.0f;
                for (int s = 0; s <= t; s++)
                    dot += p[s] * d[s];
                for (int s = 0; s <= t; s++)
                    d[s] = p[s] * (d[s] - dot) * scale;
                for (int s = t + 1; s < T; s++)
                    d[s] = 0.0f;
            }
            /* dq = dS . k ; dk += dS^T . q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dP, T, k, W,
                        0.0f, dq, W);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dP, T, q, W, beta,
                        dk, W);
        }
    }
}
