/* tr_kernels_blas.c - the layers that are matrix products: frozen linears, LoRA, causal
 * attention. All through cblas_sgemm (the OpenMP build of OpenBLAS: inside our own parallel
 * loops it runs single-threaded, outside it uses the team). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "tr_bf16.h"
#include "tr_kernels.h"
#include "tr_prof.h"
#include "tr_vec.h"

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define TR_ATT_PAR_MIN   262144
#define TR_SPLIT_MIN     (1 << 20)
#define TR_SPLIT_QUANTUM 16

static int g_split = 1;

void tr_gemm_split_set(int on)
{
    g_split = on != 0;
}

/* C (M, N) = alpha op(A) op(B) + beta C, row-major, with the M rows of C split evenly (in
 * multiples of 16) over the OpenMP team: one parallel region, one single-threaded sgemm per
 * thread, one barrier. OpenBLAS's own threading synchronises several times inside a call,
 * which on 2 shared cores cost more than it saved. A thread's rows are computed the same way
 * whatever the other thread does, so results depend only on the thread count. With bias,
 * each row of C first becomes bias (beta 0) or gets bias added (beta 1), then the product is
 * added: the bias costs no extra pass over C. */
/* Rows [m0, m1) of C (N columns) become bias (beta 0) or get bias added (beta 1). */
static void bias_rows(float *C, int ldc, int64_t m0, int64_t m1, int N, const float *bias,
                      float beta)
{
    for (int64_t i = m0; i < m1; i++) {
        float *c = C + i * ldc;
        if (beta != 0.0f)
            for (int j = 0; j < N; j++)
                c[j] += bias[j];
        else
            memcpy(c, bias, sizeof(float) * (size_t)N);
    }
}

static void sgemm_block(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m0, int64_t m1, int N,
                        int K, float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc, const float *bias)
{
    if (m1 <= m0)
        return;
    if (bias) {
        bias_rows(C, ldc, m0, m1, N, bias, beta);
        beta = 1.0f;
    }
    const float *Ap = ta == CblasNoTrans ? A + m0 * lda : A + m0;
    cblas_sgemm(CblasRowMajor, ta, tb, (int)(m1 - m0), N, K, alpha, Ap, lda, B, ldb, beta,
                C + m0 * ldc, ldc);
}

static void sgemm_rows(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C,
                       int ldc, const float *bias)
{
    int nt = 1;
    if (g_split && !omp_in_parallel() && (int64_t)M * N * K >= TR_SPLIT_MIN) {
        nt = omp_get_max_threads();
        int most = (M + TR_SPLIT_QUANTUM - 1) / TR_SPLIT_QUANTUM;
        nt = nt < most ? nt : most;
    }
    /* No parallel construct at all for one thread: an inactive region would make OpenBLAS's
     * own team a nested one, which libgomp sets up afresh on every call. */
    if (nt <= 1) {
        sgemm_block(ta, tb, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
        return;
    }
    int blocks = (M + TR_SPLIT_QUANTUM - 1) / TR_SPLIT_QUANTUM;
#pragma omp parallel num_threads(nt)
    {
        int p = omp_get_thread_num(), np = omp_get_num_threads();
        int64_t m0 = (int64_t)blocks * p / np * TR_SPLIT_QUANTUM;
        int64_t m1 = (int64_t)blocks * (p + 1) / np * TR_SPLIT_QUANTUM;
        m0 = m0 < M ? m0 : M;
        m1 = m1 < M ? m1 : M;
        sgemm_block(ta, tb, m0, m1, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
    }
}

/* Rows [m0, m1) of this thread's share of M rows, in multiples of TR_SPLIT_QUANTUM. */
static void my_rows(int M, int64_t *m0, int64_t *m1)
{
    int p = omp_get_thread_num(), np = omp_get_num_threads();
    int blocks = (M + TR_SPLIT_QUANTUM - 1) / TR_SPLIT_QUANTUM;
    int64_t a = (int64_t)blocks * p / np * TR_SPLIT_QUANTUM;
    int64_t b = (int64_t)blocks * (p + 1) / np * TR_SPLIT_QUANTUM;
    *m0 = a < M ? a : M;
    *m1 = b < M ? b : M;
}

static int team_for(int64_t M, int64_t work)
{
    if (!g_split || omp_in_parallel() || work < TR_SPLIT_MIN)
        return 1;
    int nt = omp_get_max_threads();
    int64_t most = (M + TR_SPLIT_QUANTUM - 1) / TR_SPLIT_QUANTUM;
    return nt < most ? nt : (int)most;
}

/* y (n, OUT) = beta y + x (n, IN) . W: one thread's rows of a frozen linear's forward. */
static void base_fwd(int n, int IN, int OUT, const float *x, tr_weight w, tr_wlayout layout,
                     float beta, float *y)
{
    int ldw = layout == TR_W_IN_OUT ? OUT : IN;
    if (w.h)
        tr_bf16_gemm(n, OUT, IN, x, IN, w.h, ldw, layout == TR_W_OUT_IN, beta, y, OUT);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, layout == TR_W_IN_OUT ? CblasNoTrans : CblasTrans,
                    n, OUT, IN, 1.0f, x, IN, w.f, ldw, beta, y, OUT);
}

/* dx (n, IN) = beta dx + dy (n, OUT) . W^T: one thread's rows of its input gradient. */
static void base_bwd(int n, int IN, int OUT, const float *dy, tr_weight w, tr_wlayout layout,
                     float beta, float *dx)
{
    int ldw = layout == TR_W_IN_OUT ? OUT : IN;
    if (w.h)
        tr_bf16_gemm(n, IN, OUT, dy, OUT, w.h, ldw, layout == TR_W_IN_OUT, beta, dx, IN);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, layout == TR_W_IN_OUT ? CblasTrans : CblasNoTrans,
                    n, IN, OUT, 1.0f, dy, OUT, w.f, ldw, beta, dx, IN);
}

/* Rows [m0, m1) of the bf16 matmul pair: C = beta C + bias + A . W (bwd 0) or A . W^T. */
static void bf16_block(int bwd, int64_t m0, int64_t m1, float *C, const float *A, tr_weight w,
                       const float *bias, int IN, int OUT, tr_wlayout layout, float beta)
{
    int cols = bwd ? IN : OUT, lda = bwd ? OUT : IN;
    if (m1 <= m0)
        return;
    if (bias) {
        bias_rows(C, cols, m0, m1, cols, bias, beta);
        beta = 1.0f;
    }
    if (bwd)
        base_bwd((int)(m1 - m0), IN, OUT, A + m0 * lda, w, layout, beta, C + m0 * cols);
    else
        base_fwd((int)(m1 - m0), IN, OUT, A + m0 * lda, w, layout, beta, C + m0 * cols);
}

/* The bf16 matmul pair over the team, rows split as sgemm_rows splits them. */
static void bf16_rows(int bwd, float *C, const float *A, tr_weight w, const float *bias, int N,
                      int IN, int OUT, tr_wlayout layout, float beta)
{
    int nt = team_for(N, (int64_t)N * IN * OUT);
    if (nt <= 1) {
        bf16_block(bwd, 0, N, C, A, w, bias, IN, OUT, layout, beta);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int64_t m0, m1;
        my_rows(N, &m0, &m1);
        bf16_block(bwd, m0, m1, C, A, w, bias, IN, OUT, layout, beta);
    }
}

void tr_matmul_forward_w(float *out, const float *inp, tr_weight w, const float *bias, int N,
                         int IN, int OUT, tr_wlayout layout, int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (w.h)
        bf16_rows(0, out, inp, w, bias, N, IN, OUT, layout, beta);
    else if (layout == TR_W_IN_OUT)
        sgemm_rows(CblasNoTrans, CblasNoTrans, N, OUT, IN, 1.0f, inp, IN, w.f, OUT, beta, out, OUT,
                   bias);
    else
        sgemm_rows(CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, w.f, IN, beta, out, OUT,
                   bias);
}

void tr_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N,
                       int IN, int OUT, tr_wlayout layout, int accumulate)
{
    tr_matmul_forward_w(out, inp, (tr_weight){w, NULL}, bias, N, IN, OUT, layout, accumulate);
}

void tr_matmul_backward_w(float *dinp, const float *dout, tr_weight w, int N, int IN, int OUT,
                          tr_wlayout layout, int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (w.h)
        bf16_rows(1, dinp, dout, w, NULL, N, IN, OUT, layout, beta);
    else if (layout == TR_W_IN_OUT)
        sgemm_rows(CblasNoTrans, CblasTrans, N, IN, OUT, 1.0f, dout, OUT, w.f, OUT, beta, dinp, IN,
                   NULL);
    else
        sgemm_rows(CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, w.f, IN, beta, dinp, IN,
                   NULL);
}

void tr_matmul_backward(float *dinp, const float *dout, const float *w, int N, int IN, int OUT,
                        tr_wlayout layout, int accumulate)
{
    tr_matmul_backward_w(dinp, dout, (tr_weight){w, NULL}, N, IN, OUT, layout, accumulate);
}

void tr_lora_forward(float *out, int ldo, float *h, const float *inp, const float *A,
                     const float *Bm, float scale, int N, int IN, int OUT, int R)
{
    /* h (N, R) = inp (N, IN) . A^T */
    sgemm_rows(CblasNoTrans, CblasTrans, N, R, IN, 1.0f, inp, IN, A, IN, 0.0f, h, R, NULL);
    /* out (N, OUT) += scale * h . B^T */
    sgemm_rows(CblasNoTrans, CblasTrans, N, OUT, R, scale, h, R, Bm, R, 1.0f, out, ldo, NULL);
}

void tr_lora_backward(float *dinp, float *dA, float *dB, float *dh, const float *dout, int ldd,
                      const float *inp, const float *h, const float *A, const float *Bm,
                      float scale, int N, int IN, int OUT, int R)
{
    /* dB (OUT, R) += scale * dout^T . h */
    sgemm_rows(CblasTrans, CblasNoTrans, OUT, R, N, scale, dout, ldd, h, R, 1.0f, dB, R, NULL);
    /* dh (N, R) = scale * dout . B */
    sgemm_rows(CblasNoTrans, CblasNoTrans, N, R, OUT, scale, dout, ldd, Bm, R, 0.0f, dh, R, NULL);
    if (dA) /* dA (R, IN) += dh^T . inp */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, IN, N, 1.0f, dh, R, inp, IN, 1.0f,
                    dA, IN);
    if (dinp) /* dinp (N, IN) += dh . A */
        sgemm_rows(CblasNoTrans, CblasNoTrans, N, IN, R, 1.0f, dh, R, A, IN, 1.0f, dinp, IN, NULL);
}

static void lin_fwd_rows(int64_t m0, int64_t m1, float *out, const float *init, const float *inp,
                         tr_weight w, const float *bias, int IN, int OUT, tr_wlayout layout,
                         tr_lora_slot *slots, int n_slots, int R, float scale)
{
    int n = (int)(m1 - m0);
    if (n <= 0)
        return;
    float beta = 0.0f;
    if (init || bias) {
        for (int64_t i = m0; i < m1; i++) {
            float *c = out + i * OUT;
            if (init && init != out)
                memcpy(c, init + i * OUT, sizeof(float) * (size_t)OUT);
            if (bias && init)
                for (int j = 0; j < OUT; j++)
                    c[j] += bias[j];
            else if (bias)
                memcpy(c, bias, sizeof(float) * (size_t)OUT);
        }
        beta = 1.0f;
    }
    const float *x = inp + m0 * IN;
    float *y = out + m0 * OUT;
    base_fwd(n, IN, OUT, x, w, layout, beta, y);
    double t0 = tr_prof_start0();
    for (int k = 0; k < n_slots; k++) {
        tr_lora_slot *sl = &slots[k];
        float *h = sl->h + m0 * R;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, R, IN, 1.0f, x, IN, sl->A, IN, 0.0f,
                    h, R);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, sl->out, R, scale, h, R, sl->B, R,
                    1.0f, y + sl->off, OUT);
    }
    tr_prof_move0(TR_PROF_GEMM, TR_PROF_LORA, t0);
}

void tr_linear_forward(float *out, const float *init, const float *inp, const float *w,
                       const float *bias, int N, int IN, int OUT, tr_wlayout layout,
                       tr_lora_slot *slots, int n_slots, int R, float scale)
{
    tr_linear_forward_w(out, init, inp, (tr_weight){w, NULL}, bias, N, IN, OUT, layout, slots,
                        n_slots, R, scale);
}

void tr_linear_forward_w(float *out, const float *init, const float *inp, tr_weight w,
                         const float *bias, int N, int IN, int OUT, tr_wlayout layout,
                         tr_lora_slot *slots, int n_slots, int R, float scale)
{
    int nt = team_for(N, (int64_t)N * IN * OUT);
    if (nt <= 1) {
        lin_fwd_rows(0, N, out, init, inp, w, bias, IN, OUT, layout, slots, n_slots, R, scale);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int64_t m0, m1;
        my_rows(N, &m0, &m1);
        lin_fwd_rows(m0, m1, out, init, inp, w, bias, IN, OUT, layout, slots, n_slots, R, scale);
    }
}

static void lin_bwd_rows(int64_t m0, int64_t m1, float *dinp, const float *dout, tr_weight w,
                         int IN, int OUT, tr_wlayout layout, tr_lora_slot *slots, int n_slots,
                         int R, float scale)
{
    int n = (int)(m1 - m0);
    if (n <= 0)
        return;
    const float *dy = dout + m0 * OUT;
    if (dinp)
        base_bwd(n, IN, OUT, dy, w, layout, 0.0f, dinp + m0 * IN);
    double t0 = tr_prof_start0();
    for (int k = 0; k < n_slots; k++) {
        tr_lora_slot *sl = &slots[k];
        float *dh = sl->dh + m0 * R;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, R, sl->out, scale, dy + sl->off,
                    OUT, sl->B, R, 0.0f, dh, R);
        if (dinp)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, IN, R, 1.0f, dh, R, sl->A, IN,
                        1.0f, dinp + m0 * IN, IN);
    }
    tr_prof_move0(TR_PROF_GEMM, TR_PROF_LORA, t0);
}

void tr_linear_backward(float *dinp, const float *dout, const float *inp, const float *w, int N,
                        int IN, int OUT, tr_wlayout layout, tr_lora_slot *slots, int n_slots, int R,
                        float scale)
{
    tr_linear_backward_w(dinp, dout, inp, (tr_weight){w, NULL}, N, IN, OUT, layout, slots, n_slots,
                         R, scale);
}

void tr_linear_backward_w(float *dinp, const float *dout, const float *inp, tr_weight w, int N,
                          int IN, int OUT, tr_wlayout layout, tr_lora_slot *slots, int n_slots,
                          int R, float scale)
{
    if (!dinp && n_slots == 0)
        return;
    /* Row-local work in one region: dh of every slot, and dinp through base and adapters. */
    int nt = team_for(N, (int64_t)N * IN * OUT);
    if (nt <= 1) {
        lin_bwd_rows(0, N, dinp, dout, w, IN, OUT, layout, slots, n_slots, R, scale);
    } else {
#pragma omp parallel num_threads(nt)
        {
            int64_t m0, m1;
            my_rows(N, &m0, &m1);
            lin_bwd_rows(m0, m1, dinp, dout, w, IN, OUT, layout, slots, n_slots, R, scale);
        }
    }
    /* Reductions over rows, each split over its output rows. */
    double t0 = tr_prof_start();
    for (int k = 0; k < n_slots; k++) {
        tr_lora_slot *sl = &slots[k];
        sgemm_rows(CblasTrans, CblasNoTrans, sl->out, R, N, scale, dout + sl->off, OUT, sl->h, R,
                   1.0f, sl->dB, R, NULL);
        if (sl->dA)
            sgemm_rows(CblasTrans, CblasNoTrans, R, IN, N, 1.0f, sl->dh, R, inp, IN, 1.0f, sl->dA,
                       IN, NULL);
    }
    tr_prof_move0(TR_PROF_GEMM, TR_PROF_LORA, t0);
}

/* Row t of S (T columns) in place: the scores of keys [lo, t] soft-capped (cap > 0) and
 * turned into their softmax, every other column 0. */
static void causal_softmax_row(float *s, int lo, int t, int T, float cap)
{
    float *r = s + lo;
    int n = t + 1 - lo;
    if (cap > 0.0f)
        tr_vec_softcap(r, n, cap);
    float mx = tr_vec_max(r, n);
    tr_vec_scale(r, n, 1.0f / tr_vec_exp_sum(r, n, mx));
    memset(s, 0, sizeof(float) * (size_t)lo);
    memset(s + t + 1, 0, sizeof(float) * (size_t)(T - t - 1));
}

/* Causal row blocks: rows [r0, r1) of a head only see keys [0, r1), so each block's products
 * stop at r1 and the zero upper triangle is never multiplied (37% fewer flops at T = 256);
 * with a window they also start at the block's first visible key r0 - window + 1. */
#define TR_ATT_BLOCK 64

static tr_attn_opts opts_of(const tr_attn_opts *o, int hd)
{
    tr_attn_opts r = o ? *o : (tr_attn_opts){0};
    if (!(r.scale > 0.0f))
        r.scale = 1.0f / sqrtf((float)hd);
    return r;
}

/* The first key row t sees; a row block's first row sees the block's earliest one. */
static int first_key(const tr_attn_opts *o, int t)
{
    return o->window > 0 && t - o->window + 1 > 0 ? t - o->window + 1 : 0;
}

void tr_attention_forward(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                          int hd)
{
    tr_attention_forward_opt(out, att, qkv, B, T, H, KV, hd, NULL);
}

void tr_attention_forward_opt(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                              int hd, const tr_attn_opts *opts)
{
    int W = (H + 2 * KV) * hd, HD = H * hd, grp = H / KV;
    tr_attn_opts o = opts_of(opts, hd);
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
            int k0 = first_key(&o, r0), nk = r1 - k0;
            float *Sb = S + (int64_t)r0 * T + k0;
            /* S[r0:r1, k0:r1] = scale * q[r0:r1] . k[k0:r1]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nk, hd, o.scale,
                        q + (int64_t)r0 * W, W, k + (int64_t)k0 * W, W, 0.0f, Sb, T);
            for (int t = r0; t < r1; t++)
                causal_softmax_row(S + (int64_t)t * T, first_key(&o, t), t, T, o.softcap);
            /* y[r0:r1] = S[r0:r1, k0:r1] . v[k0:r1] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, nk, 1.0f, Sb, T,
                        v + (int64_t)k0 * W, W, 0.0f, y + (int64_t)r0 * HD, HD);
        }
    }
}

int64_t tr_attention_scratch_len(int T)
{
    return (int64_t)T * T + (int64_t)TR_ATT_BLOCK * T;
}

void tr_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int H, int KV, int hd)
{
    tr_attention_backward_opt(dqkv, scratch, dout, qkv, att, B, T, H, KV, hd, NULL);
}

void tr_attention_backward_opt(float *dqkv, float *scratch, const float *dout, const float *qkv,
                               const float *att, int B, int T, int H, int KV, int hd,
                               const tr_attn_opts *opts)
{
    int W = (H + 2 * KV) * hd, HD = H * hd, grp = H / KV;
    tr_attn_opts o = opts_of(opts, hd);
    int nblk = (T + TR_ATT_BLOCK - 1) / TR_ATT_BLOCK;
    /* One task per (batch, kv head): the query heads of a group add into the same dk, dv in
     * a fixed order, so no two threads write the same memory. Within a head the row blocks
     * run last to first: without a window the first one covers every key row, so it can
     * overwrite (beta 0); with one, dk and dv start zeroed. */
#pragma omp parallel for schedule(static) if ((int64_t)B * H * T * T * hd >= TR_ATT_PAR_MIN)
    for (int bg = 0; bg < B * KV; bg++) {
        int b = bg / KV, g = bg % KV;
        float *dP = scratch + (int64_t)omp_get_thread_num() * tr_attention_scratch_len(T);
        float *Sc = dP + (int64_t)T * T; /* (nr, nk) scores before the cap */
        const float *base = qkv + (int64_t)b * T * W;
        float *dbase = dqkv + (int64_t)b * T * W;
        const float *k = base + (int64_t)(H + g) * hd;
        const float *v = base + (int64_t)(H + KV + g) * hd;
        float *dk = dbase + (int64_t)(H + g) * hd;
        float *dv = dbase + (int64_t)(H + KV + g) * hd;
        if (o.window > 0)
            for (int t = 0; t < T; t++) {
                memset(dk + (int64_t)t * W, 0, sizeof(float) * (size_t)hd);
                memset(dv + (int64_t)t * W, 0, sizeof(float) * (size_t)hd);
            }
        for (int j = 0; j < grp; j++) {
            int h = g * grp + j;
            const float *q = base + (int64_t)h * hd;
            float *dq = dbase + (int64_t)h * hd;
            const float *P = att + ((int64_t)b * H + h) * T * T;
            const float *dy = dout + (int64_t)b * T * HD + (int64_t)h * hd;
            for (int blk = nblk - 1; blk >= 0; blk--) {
                int r0 = blk * TR_ATT_BLOCK;
                int r1 = r0 + TR_ATT_BLOCK < T ? r0 + TR_ATT_BLOCK : T, nr = r1 - r0;
                int k0 = first_key(&o, r0), nk = r1 - k0;
                float beta = o.window == 0 && j == 0 && blk == nblk - 1 ? 0.0f : 1.0f;
                const float *Pb = P + (int64_t)r0 * T + k0;
                const float *dyb = dy + (int64_t)r0 * HD;
                /* dP (nr, nk) = dy[r0:r1] . v[k0:r1]^T ; dv[k0:r1] += P[r0:r1, k0:r1]^T . dy */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nk, hd, 1.0f, dyb, HD,
                            v + (int64_t)k0 * W, W, 0.0f, dP, nk);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nr, 1.0f, Pb, T, dyb,
                            HD, beta, dv + (int64_t)k0 * W, W);
                if (o.softcap > 0.0f) { /* the capped scores again, for the cap's derivative */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nk, hd, o.scale,
                                q + (int64_t)r0 * W, W, k + (int64_t)k0 * W, W, 0.0f, Sc, nk);
                    tr_vec_softcap(Sc, (int64_t)nr * nk, o.softcap);
                }
                /* dS = P * (dP - rowsum(P * dP)) * scale over the visible keys, through the cap */
                for (int t = r0; t < r1; t++) {
                    float *d = dP + (int64_t)(t - r0) * nk;
                    int lo = first_key(&o, t) - k0, n = t + 1 - k0 - lo;
                    memset(d, 0, sizeof(float) * (size_t)lo);
                    tr_vec_softmax_bwd(d + lo, P + (int64_t)t * T + k0 + lo, n, o.scale);
                    if (o.softcap > 0.0f)
                        tr_vec_softcap_bwd(d + lo, Sc + (int64_t)(t - r0) * nk + lo, n, o.softcap);
                    memset(d + lo + n, 0, sizeof(float) * (size_t)(nk - lo - n));
                }
                /* dq[r0:r1] = dS . k[k0:r1] ; dk[k0:r1] += dS^T . q[r0:r1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, nk, 1.0f, dP, nk,
                            k + (int64_t)k0 * W, W, 0.0f, dq + (int64_t)r0 * W, W);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nr, 1.0f, dP, nk,
                            q + (int64_t)r0 * W, W, beta, dk + (int64_t)k0 * W, W);
            }
        }
    }
}

/* One chunk's rows [0, n) of logits z (n, V): per-row loss, and with grad the row turned
 * into its dlogits in place (scaled by inv). */
static void head_ce_rows(float *losses, float *z, const int32_t *tg, int n, int V, float inv,
                         int grad, float cap)
{
#pragma omp parallel for schedule(static) if ((int64_t)n * V >= 65536)
    for (int i = 0; i < n; i++) {
        float *r = z + (int64_t)i * V;
        if (tg[i] < 0) {
            losses[i] = 0.0f;
            if (grad)
                memset(r, 0, sizeof(float) * (size_t)V);
            continue;
        }
        if (cap > 0.0f)
            tr_vec_softcap(r, V, cap);
        float mx = tr_vec_max(r, V), zt = r[tg[i]];
        if (cap > 0.0f && grad) { /* the capped logits are needed again for the gradient */
            float s = 0.0f;
            for (int v = 0; v < V; v++)
                s += expf(r[v] - mx);
            float k = inv / s;
            losses[i] = logf(s) + mx - zt;
            for (int v = 0; v < V; v++) {
                float c = r[v] / cap;
                r[v] = (expf(r[v] - mx) * k - (v == tg[i] ? inv : 0.0f)) * (1.0f - c * c);
            }
            continue;
        }
        float s = tr_vec_exp_sum(r, V, mx);
        losses[i] = logf(s) + mx - zt;
        if (grad) {
            tr_vec_scale(r, V, inv / s);
            r[tg[i]] -= inv;
        }
    }
}

float tr_head_ce(float *losses, float *dx, float *dw, float *scratch, const float *x,
                 const float *w, const int32_t *targets, int N, int C, int V, int chunk)
{
    return tr_head_ce_w(losses, dx, dw, scratch, x, (tr_weight){w, NULL}, targets, N, C, V, chunk);
}

float tr_head_ce_w(float *losses, float *dx, float *dw, float *scratch, const float *x, tr_weight w,
                   const int32_t *targets, int N, int C, int V, int chunk)
{
    return tr_head_ce_cap_w(losses, dx, dw, scratch, x, w, targets, N, C, V, chunk, 0.0f);
}

float tr_head_ce_cap_w(float *losses, float *dx, float *dw, float *scratch, const float *x,
                       tr_weight w, const int32_t *targets, int N, int C, int V, int chunk,
                       float softcap)
{
    int count = 0;
    for (int n = 0; n < N; n++)
        count += targets[n] >= 0;
    float inv = count ? 1.0f / (float)count : 0.0f;
    int grad = dx || dw;
    for (int r0 = 0; r0 < N; r0 += chunk) {
        int n = N - r0 < chunk ? N - r0 : chunk;
        const float *xc = x + (int64_t)r0 * C;
        tr_matmul_forward_w(scratch, xc, w, NULL, n, C, V, TR_W_OUT_IN, 0);
        double t0 = tr_prof_start();
        head_ce_rows(losses + r0, scratch, targets + r0, n, V, inv, grad, softcap);
        tr_prof_move0(TR_PROF_HEAD, TR_PROF_CE, t0);
        if (dx)
            tr_matmul_backward_w(dx + (int64_t)r0 * C, scratch, w, n, C, V, TR_W_OUT_IN, 0);
        if (dw && w.f)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, n, 1.0f, scratch, V, xc, C,
                        1.0f, dw, C);
    }
    double total = 0.0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0)
            total += losses[n];
    return count ? (float)(total / count) : 0.0f;
}
