/* tr_kernels.c - element-wise and row-wise layers: embeddings, norms, activations, RoPE,
 * dropout, residual, cross-entropy. Rows are independent; OpenMP splits rows statically, and
 * every reduction runs in a fixed order inside one row, so threads never change the bits. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tr_bf16.h"
#include "tr_kernels.h"
#include "tr_vec.h"

/* Parallelise only when the work pays for waking the team. */
#define TR_PAR_MIN 32768

void tr_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B,
                        int T, int C)
{
    int N = B * T;
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (int64_t)n * C;
        const float *e = wte + (int64_t)inp[n] * C;
        if (wpe) {
            const float *p = wpe + (int64_t)(n % T) * C;
            for (int c = 0; c < C; c++)
                o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, sizeof(float) * (size_t)C);
        }
    }
}

void tr_encoder_forward_w(float *out, const int32_t *inp, tr_weight wte, tr_weight wpe, int B,
                          int T, int C)
{
    if (wte.f && (wpe.f || !wpe.h)) {
        tr_encoder_forward(out, inp, wte.f, wpe.f, B, T, C);
        return;
    }
    int N = B * T;
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (int64_t)n * C;
        int64_t e = (int64_t)inp[n] * C, p = (int64_t)(n % T) * C;
        for (int c = 0; c < C; c++) {
            float x = wte.h ? tr_bf16_to_f32(wte.h[e + c]) : wte.f[e + c];
            if (wpe.h || wpe.f)
                x += wpe.h ? tr_bf16_to_f32(wpe.h[p + c]) : wpe.f[p + c];
            o[c] = x;
        }
    }
}

void tr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++)
        tr_vec_ln_fwd(out + (int64_t)n * C, &mean[n], &rstd[n], inp + (int64_t)n * C, w, b, C, eps);
}

void tr_layernorm_backward(float *dinp, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++)
        tr_vec_ln_bwd(dinp + (int64_t)n * C, dout + (int64_t)n * C, inp + (int64_t)n * C, w,
                      mean[n], rstd[n], C);
}

void tr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++)
        tr_vec_rms_fwd(out + (int64_t)n * C, &rstd[n], inp + (int64_t)n * C, w, C, eps);
}

void tr_rmsnorm_backward(float *dinp, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++)
        tr_vec_rms_bwd(dinp + (int64_t)n * C, dout + (int64_t)n * C, inp + (int64_t)n * C, w,
                       rstd[n], C);
}

/* Each line is one torch operation of HF's code on fp32 tensors with Python scalars: the
 * scalar is rounded to fp32 first, and `scalar / tensor` is tensor.reciprocal() * scalar. */
static float llama3_inv_freq(float inv, const tr_rope_scaling *sc)
{
    float factor = (float)sc->factor;
    float lo_wavelen = (float)(sc->orig_max_pos / sc->low_freq_factor);
    float hi_wavelen = (float)(sc->orig_max_pos / sc->high_freq_factor);
    float wavelen = (1.0f / inv) * (float)(2.0 * M_PI);
    float il = wavelen > lo_wavelen ? inv / factor : inv;
    if (wavelen < hi_wavelen || wavelen > lo_wavelen)
        return il;
    float s = (1.0f / wavelen) * (float)sc->orig_max_pos;
    s = (s - (float)sc->low_freq_factor) / (float)(sc->high_freq_factor - sc->low_freq_factor);
    float a = (1.0f - s) * il;
    a = a / factor;
    float b = s * il;
    return a + b;
}

void tr_rope_inv_freq(float *inv_freq, int hd, float theta, const tr_rope_scaling *sc)
{
    for (int i = 0; i < hd / 2; i++) {
        float inv = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
        if (sc && sc->type == TR_ROPE_LINEAR)
            inv = inv / (float)sc->factor;
        else if (sc && sc->type == TR_ROPE_LLAMA3)
            inv = llama3_inv_freq(inv, sc);
        inv_freq[i] = inv;
    }
}

void tr_rope_tables(float *cos_t, float *sin_t, int T, int hd, const float *inv_freq)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float inv = inv_freq[i];
        for (int t = 0; t < T; t++) {
            float a = (float)t * inv;
            cos_t[(int64_t)t * half + i] = cosf(a);
            sin_t[(int64_t)t * half + i] = sinf(a);
        }
    }
}

/* Rotates the H + KV query/key heads of every token by +angle (dir 1) or -angle (dir -1). */
static void rope_apply(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                       int KV, int hd, float dir)
{
    int half = hd / 2, W = (H + 2 * KV) * hd, N = B * T;
#pragma omp parallel for schedule(static) if ((int64_t)N * W >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        int t = n % T;
        const float *cs = cos_t + (int64_t)t * half;
        const float *sn = sin_t + (int64_t)t * half;
        for (int h = 0; h < H + KV; h++) {
            float *x = qkv + (int64_t)n * W + (int64_t)h * hd;
            for (int i = 0; i < half; i++) {
                float a = x[i], b = x[i + half], c = cs[i], s = dir * sn[i];
                x[i] = a * c - b * s;
                x[i + half] = b * c + a * s;
            }
        }
    }
}

void tr_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                     int KV, int hd)
{
    rope_apply(qkv, cos_t, sin_t, B, T, H, KV, hd, 1.0f);
}

void tr_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                      int KV, int hd)
{
    /* The rotation is orthogonal: its transpose is the rotation by -angle. */
    rope_apply(dqkv, cos_t, sin_t, B, T, H, KV, hd, -1.0f);
}

void tr_qknorm_forward(float *qkv, float *raw, float *rstd, const float *wq, const float *wk, int N,
                       int H, int KV, int hd, float eps)
{
    int G = H + KV, W = (H + 2 * KV) * hd;
#pragma omp parallel for schedule(static) if ((int64_t)N * G * hd >= TR_PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            float *x = qkv + (int64_t)n * W + (int64_t)g * hd;
            float *r = raw + ((int64_t)n * G + g) * hd;
            memcpy(r, x, sizeof(float) * (size_t)hd);
            tr_vec_rms_fwd(x, &rstd[(int64_t)n * G + g], r, g < H ? wq : wk, hd, eps);
        }
}

void tr_qknorm_backward(float *dqkv, const float *raw, const float *rstd, const float *wq,
                        const float *wk, int N, int H, int KV, int hd)
{
    int G = H + KV, W = (H + 2 * KV) * hd;
#pragma omp parallel for schedule(static) if ((int64_t)N * G * hd >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float dy[TR_QKNORM_MAX_HD];
        for (int g = 0; g < G; g++) {
            float *dx = dqkv + (int64_t)n * W + (int64_t)g * hd;
            memcpy(dy, dx, sizeof(float) * (size_t)hd);
            memset(dx, 0, sizeof(float) * (size_t)hd);
            tr_vec_rms_bwd(dx, dy, raw + ((int64_t)n * G + g) * hd, g < H ? wq : wk,
                           rstd[(int64_t)n * G + g], hd);
        }
    }
}

/* Element-wise loops go in chunks so each thread runs the vector code on long runs. */
#define TR_CHUNK 4096

void tr_gelu_forward(float *out, const float *inp, int64_t N)
{
    int64_t nc = (N + TR_CHUNK - 1) / TR_CHUNK;
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t i = c * TR_CHUNK, n = N - i < TR_CHUNK ? N - i : TR_CHUNK;
        tr_vec_gelu_fwd(out + i, inp + i, n);
    }
}

void tr_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t N)
{
    int64_t nc = (N + TR_CHUNK - 1) / TR_CHUNK;
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t i = c * TR_CHUNK, n = N - i < TR_CHUNK ? N - i : TR_CHUNK;
        tr_vec_gelu_bwd(dinp + i, inp + i, dout + i, n);
    }
}

/* A gated MLP's rows (gate | up in gu (N, 2F)) through one row function each way. */
typedef void (*glu_fwd_fn)(float *, const float *, const float *, int);
typedef void (*glu_bwd_fn)(float *, float *, const float *, const float *, const float *, int);

static void glu_forward(glu_fwd_fn f, float *out, const float *gu, int N, int F)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * F >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (int64_t)n * 2 * F;
        f(out + (int64_t)n * F, g, g + F, F);
    }
}

static void glu_backward(glu_bwd_fn f, float *dgu, const float *dout, const float *gu, int N, int F)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * F >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (int64_t)n * 2 * F;
        float *dg = dgu + (int64_t)n * 2 * F;
        f(dg, dg + F, dout + (int64_t)n * F, g, g + F, F);
    }
}

void tr_swiglu_forward(float *out, const float *gu, int N, int F)
{
    glu_forward(tr_vec_swiglu_fwd, out, gu, N, F);
}

void tr_swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int F)
{
    glu_backward(tr_vec_swiglu_bwd, dgu, dout, gu, N, F);
}

void tr_geglu_forward(float *out, const float *gu, int N, int F)
{
    glu_forward(tr_vec_geglu_fwd, out, gu, N, F);
}

void tr_geglu_backward(float *dgu, const float *dout, const float *gu, int N, int F)
{
    glu_backward(tr_vec_geglu_bwd, dgu, dout, gu, N, F);
}

void tr_softcap_forward(float *x, int64_t N, float cap)
{
    int64_t nc = (N + TR_CHUNK - 1) / TR_CHUNK;
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t i = c * TR_CHUNK, n = N - i < TR_CHUNK ? N - i : TR_CHUNK;
        tr_vec_softcap(x + i, n, cap);
    }
}

void tr_softcap_backward(float *d, const float *y, int64_t N, float cap)
{
    int64_t nc = (N + TR_CHUNK - 1) / TR_CHUNK;
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t i = c * TR_CHUNK, n = N - i < TR_CHUNK ? N - i : TR_CHUNK;
        tr_vec_softcap_bwd(d + i, y + i, n, cap);
    }
}

void tr_residual_forward(float *out, const float *a, const float *b, int64_t N)
{
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t i = 0; i < N; i++)
        out[i] = a[i] + b[i];
}

void tr_residual_backward(float *da, float *db, const float *dout, int64_t N)
{
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

uint64_t tr_splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Keep element i with probability 1 - p: a pure function of (seed, i). */
static int dropout_keep(uint64_t seed, int64_t i, float p)
{
    uint64_t r = tr_splitmix64(seed ^ tr_splitmix64((uint64_t)i));
    double u = (double)(r >> 11) * (1.0 / 9007199254740992.0);
    return u >= (double)p;
}

void tr_dropout_forward(float *out, const float *inp, float p, uint64_t seed, int64_t N)
{
    float k = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t i = 0; i < N; i++)
        out[i] = dropout_keep(seed, i, p) ? inp[i] * k : 0.0f;
}

void tr_dropout_backward(float *dinp, const float *dout, float p, uint64_t seed, int64_t N)
{
    float k = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t i = 0; i < N; i++)
        if (dropout_keep(seed, i, p))
            dinp[i] += dout[i] * k;
}

/* -log softmax(z)[target] for one row of V logits, max-shifted. */
static float row_loss(const float *z, int V, int32_t target)
{
    float mx = z[0];
    for (int v = 1; v < V; v++)
        mx = z[v] > mx ? z[v] : mx;
    float s = 0.0f;
    for (int v = 0; v < V; v++)
        s += expf(z[v] - mx);
    return logf(s) + mx - z[target];
}

/* How many targets count (those >= 0; a negative one is left out, TR_DATA_IGNORE). */
static int counted(const int32_t *targets, int N)
{
    int c = 0;
    for (int n = 0; n < N; n++)
        c += targets[n] >= 0;
    return c;
}

float tr_crossentropy_forward(float *losses, const float *logits, const int32_t *targets, int N,
                              int V)
{
    double total = 0.0;
    int count = counted(targets, N);
    if (!losses) {
        /* Nowhere to keep per-row losses: one pass in row order. */
        for (int n = 0; n < N; n++)
            if (targets[n] >= 0)
                total += row_loss(logits + (int64_t)n * V, V, targets[n]);
        return count ? (float)(total / count) : 0.0f;
    }
    /* Rows in parallel; the mean is summed afterwards in row order, so the result is the
     * same bits as the single pass above. */
#pragma omp parallel for schedule(static) if ((int64_t)N * V >= TR_PAR_MIN)
    for (int n = 0; n < N; n++)
        losses[n] = targets[n] >= 0 ? row_loss(logits + (int64_t)n * V, V, targets[n]) : 0.0f;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0)
            total += losses[n];
    return count ? (float)(total / count) : 0.0f;
}

void tr_crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N,
                              int V)
{
    int count = counted(targets, N);
    float inv = count ? 1.0f / (float)count : 0.0f;
#pragma omp parallel for schedule(static) if ((int64_t)N * V >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (int64_t)n * V;
        float *d = dlogits + (int64_t)n * V;
        if (targets[n] < 0) { /* left out: no gradient */
            memset(d, 0, sizeof(float) * (size_t)V);
            continue;
        }
        float mx = z[0];
        for (int v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        memcpy(d, z, sizeof(float) * (size_t)V);
        float k = inv / tr_vec_exp_sum(d, V, mx);
        for (int v = 0; v < V; v++)
            d[v] *= k;
        d[targets[n]] -= inv;
    }
}
