/* tr_kernels.c - element-wise and row-wise layers: embeddings, norms, activations, RoPE,
 * dropout, residual, cross-entropy. Rows are independent; OpenMP splits rows statically, and
 * every reduction runs in a fixed order inside one row, so threads never change the bits. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tr_kernels.h"

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

void tr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (int64_t)n * C;
        float *o = out + (int64_t)n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++)
            m += x[c];
        m /= (float)C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        for (int c = 0; c < C; c++)
            o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void tr_layernorm_backward(float *dinp, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (int64_t)n * C;
        const float *dy = dout + (int64_t)n * C;
        float *dx = dinp + (int64_t)n * C;
        float m = mean[n], s = rstd[n];
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            float dn = w[c] * dy[c];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * xh;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            float dn = w[c] * dy[c];
            dx[c] += (dn - dnorm_mean - xh * dnorm_norm_mean) * s;
        }
    }
}

void tr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (int64_t)n * C;
        float *o = out + (int64_t)n * C;
        float ss = 0.0f;
        for (int c = 0; c < C; c++)
            ss += x[c] * x[c];
        float s = 1.0f / sqrtf(ss / (float)C + eps);
        for (int c = 0; c < C; c++)
            o[c] = w[c] * (x[c] * s);
        rstd[n] = s;
    }
}

void tr_rmsnorm_backward(float *dinp, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (int64_t)n * C;
        const float *dy = dout + (int64_t)n * C;
        float *dx = dinp + (int64_t)n * C;
        float s = rstd[n];
        /* y = w * x * s, s = (mean(x^2)+eps)^-1/2: dx = s*w*dy - x * s^3 * mean(w*dy*x) */
        float dot = 0.0f;
        for (int c = 0; c < C; c++)
            dot += w[c] * dy[c] * x[c];
        float k = dot / (float)C * s * s * s;
        for (int c = 0; c < C; c++)
            dx[c] += s * w[c] * dy[c] - x[c] * k;
    }
}

void tr_rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float inv = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
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

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* tanh as a [13/6] rational (the Eigen fast_tanh coefficients): within 4e-7 of the true
 * tanh everywhere (glibc's tanhf: 1e-7), and free of calls, so the loops vectorise. glibc's
 * tanhf was a third of a GPT-2 training step. */
static inline float tanh_r(float x)
{
    const float c = 7.90531110763549805f;
    x = x < c ? x : c;
    x = x > -c ? x : -c;
    float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

void tr_gelu_forward(float *out, const float *inp, int64_t N)
{
#pragma omp parallel for simd schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanh_r(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void tr_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t N)
{
#pragma omp parallel for simd schedule(static) if (N >= TR_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        float x = inp[i];
        float th = tanh_r(GELU_K * (x + 0.044715f * x * x * x));
        float sech2 = 1.0f - th * th;
        float g =
            0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * g;
    }
}

void tr_swiglu_forward(float *out, const float *gu, int N, int F)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * F >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (int64_t)n * 2 * F, *u = g + F;
        float *o = out + (int64_t)n * F;
        for (int i = 0; i < F; i++)
            o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void tr_swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int F)
{
#pragma omp parallel for schedule(static) if ((int64_t)N * F >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (int64_t)n * 2 * F, *u = g + F;
        const float *dy = dout + (int64_t)n * F;
        float *dg = dgu + (int64_t)n * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            float sg = 1.0f / (1.0f + expf(-g[i]));
            float silu = g[i] * sg;
            du[i] = dy[i] * silu;
            dg[i] = dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
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

float tr_crossentropy_forward(float *losses, const float *logits, const int32_t *targets, int N,
                              int V)
{
    double total = 0.0;
    /* Rows in parallel; the mean is summed afterwards in row order. */
#pragma omp parallel for schedule(static) if ((int64_t)N * V >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (int64_t)n * V;
        float mx = z[0];
        for (int v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        float s = 0.0f;
        for (int v = 0; v < V; v++)
            s += expf(z[v] - mx);
        float l = logf(s) + mx - z[targets[n]];
        if (losses)
            losses[n] = l;
    }
    if (losses) {
        for (int n = 0; n < N; n++)
            total += losses[n];
        return (float)(total / N);
    }
    for (int n = 0; n < N; n++) {
        const float *z = logits + (int64_t)n * V;
        float mx = z[0];
        for (int v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        float s = 0.0f;
        for (int v = 0; v < V; v++)
            s += expf(z[v] - mx);
        total += logf(s) + mx - z[targets[n]];
    }
    return (float)(total / N);
}

void tr_crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N,
                              int V)
{
    float inv = 1.0f / (float)N;
#pragma omp parallel for schedule(static) if ((int64_t)N * V >= TR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (int64_t)n * V;
        float *d = dlogits + (int64_t)n * V;
        float mx = z[0];
        for (int v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        float s = 0.0f;
        for (int v = 0; v < V; v++) {
            d[v] = expf(z[v] - mx);
            s += d[v];
        }
        float k = 1.0f / s;
        for (int v = 0; v < V; v++)
            d[v] = d[v] * k * inv;
        d[targets[n]] -= inv;
    }
}
