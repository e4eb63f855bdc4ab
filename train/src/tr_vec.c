/* tr_vec.c - vectorisable inner loops of the row-wise kernels (see tr_vec.h). */
#include <math.h>
#include <string.h>

#include "tr_vec.h"

/* gcc builds AVX-512, AVX2 and baseline versions and picks one at load time. clang 14 (used
 * only for fuzzing builds) cannot link target_clones across translation units: baseline. */
#if defined(__GNUC__) && !defined(__clang__)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif
#define ACC 16

/* Pairwise combination of the ACC partial sums: a fixed tree. */
static inline float combine(float *a)
{
    for (int w = ACC / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++)
            a[k] += a[k + w];
    return a[0];
}

TR_CLONES void tr_vec_ln_fwd(float *o, float *mean, float *rstd, const float *x, const float *w,
                             const float *b, int C, float eps)
{
    float a[ACC] = {0}, q[ACC] = {0};
    int c = 0;
    for (; c + ACC <= C; c += ACC)
        for (int k = 0; k < ACC; k++)
            a[k] += x[c + k];
    float m = combine(a);
    for (int t = c; t < C; t++)
        m += x[t];
    m /= (float)C;
    for (c = 0; c + ACC <= C; c += ACC)
        for (int k = 0; k < ACC; k++) {
            float d = x[c + k] - m;
            q[k] += d * d;
        }
    float v = combine(q);
    for (int t = c; t < C; t++)
        v += (x[t] - m) * (x[t] - m);
    v /= (float)C;
    float s = 1.0f / sqrtf(v + eps);
    for (c = 0; c < C; c++)
        o[c] = (x[c] - m) * s * w[c] + b[c];
    *mean = m;
    *rstd = s;
}

TR_CLONES void tr_vec_ln_bwd(float *dx, const float *dy, const float *x, const float *w, float m,
                             float s, int C)
{
    float a[ACC] = {0}, q[ACC] = {0};
    int c = 0;
    for (; c + ACC <= C; c += ACC)
        for (int k = 0; k < ACC; k++) {
            float dn = w[c + k] * dy[c + k];
            a[k] += dn;
            q[k] += dn * ((x[c + k] - m) * s);
        }
    float dmean = combine(a), dnmean = combine(q);
    for (int t = c; t < C; t++) {
        float dn = w[t] * dy[t];
        dmean += dn;
        dnmean += dn * ((x[t] - m) * s);
    }
    dmean /= (float)C;
    dnmean /= (float)C;
    for (c = 0; c < C; c++) {
        float xh = (x[c] - m) * s;
        float dn = w[c] * dy[c];
        dx[c] += (dn - dmean - xh * dnmean) * s;
    }
}

TR_CLONES void tr_vec_rms_fwd(float *o, float *rstd, const float *x, const float *w, int C,
                              float eps)
{
    float a[ACC] = {0};
    int c = 0;
    for (; c + ACC <= C; c += ACC)
        for (int k = 0; k < ACC; k++)
            a[k] += x[c + k] * x[c + k];
    float ss = combine(a);
    for (int t = c; t < C; t++)
        ss += x[t] * x[t];
    float s = 1.0f / sqrtf(ss / (float)C + eps);
    for (c = 0; c < C; c++)
        o[c] = w[c] * (x[c] * s);
    *rstd = s;
}

TR_CLONES void tr_vec_rms_bwd(float *dx, const float *dy, const float *x, const float *w, float s,
                              int C)
{
    /* y = w * x * s, s = (mean(x^2)+eps)^-1/2: dx = s*w*dy - x * s^3 * mean(w*dy*x) */
    float a[ACC] = {0};
    int c = 0;
    for (; c + ACC <= C; c += ACC)
        for (int k = 0; k < ACC; k++)
            a[k] += w[c + k] * dy[c + k] * x[c + k];
    float dot = combine(a);
    for (int t = c; t < C; t++)
        dot += w[t] * dy[t] * x[t];
    float kk = dot / (float)C * s * s * s;
    for (c = 0; c < C; c++)
        dx[c] += s * w[c] * dy[c] - x[c] * kk;
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

TR_CLONES void tr_vec_gelu_fwd(float *out, const float *inp, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanh_r(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

TR_CLONES void tr_vec_gelu_bwd(float *dinp, const float *inp, const float *dout, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float th = tanh_r(GELU_K * (x + 0.044715f * x * x * x));
        float sech2 = 1.0f - th * th;
        float g =
            0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * g;
    }
}

/* Cephes expf: n = round(x / ln 2), r = x - n ln 2 in two parts, a degree-5 polynomial,
 * then 2^n through the exponent bits. Inputs are clamped to [-87, 88]. */
static inline float exp_r(float x)
{
    x = x < 88.0f ? x : 88.0f;
    x = x > -87.0f ? x : -87.0f;
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    return p * sc;
}

TR_CLONES float tr_vec_exp_sum(float *x, int n, float shift)
{
    for (int i = 0; i < n; i++)
        x[i] = exp_r(x[i] - shift);
    float a[ACC] = {0};
    int c = 0;
    for (; c + ACC <= n; c += ACC)
        for (int k = 0; k < ACC; k++)
            a[k] += x[c + k];
    float s = combine(a);
    for (int t = c; t < n; t++)
        s += x[t];
    return s;
}

TR_CLONES void tr_vec_exp(float *out, const float *in, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = exp_r(in[i]);
}

TR_CLONES void tr_vec_swiglu_fwd(float *out, const float *g, const float *u, int F)
{
    for (int i = 0; i < F; i++)
        out[i] = g[i] / (1.0f + exp_r(-g[i])) * u[i];
}

TR_CLONES void tr_vec_swiglu_bwd(float *dg, float *du, const float *dy, const float *g,
                                 const float *u, int F)
{
    for (int i = 0; i < F; i++) {
        float sg = 1.0f / (1.0f + exp_r(-g[i]));
        du[i] = dy[i] * (g[i] * sg);
        dg[i] = dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}

static inline float gelu_th(float x)
{
    return tanh_r(GELU_K * (x + 0.044715f * x * x * x));
}

TR_CLONES void tr_vec_geglu_fwd(float *out, const float *g, const float *u, int F)
{
    for (int i = 0; i < F; i++) {
        float x = g[i];
        out[i] = 0.5f * x * (1.0f + gelu_th(x)) * u[i];
    }
}

TR_CLONES void tr_vec_geglu_bwd(float *dg, float *du, const float *dy, const float *g,
                                const float *u, int F)
{
    for (int i = 0; i < F; i++) {
        float x = g[i], th = gelu_th(x);
        float gl = 0.5f * x * (1.0f + th);
        float dgl = 0.5f * (1.0f + th) +
                    0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        du[i] = dy[i] * gl;
        dg[i] = dy[i] * u[i] * dgl;
    }
}

TR_CLONES void tr_vec_softcap(float *x, int64_t n, float cap)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = tanh_r(x[i] / cap) * cap;
}

TR_CLONES void tr_vec_softcap_bwd(float *d, const float *y, int64_t n, float cap)
{
    for (int64_t i = 0; i < n; i++) {
        float t = y[i] / cap;
        d[i] = d[i] * (1.0f - t * t);
    }
}

TR_CLONES float tr_vec_max(const float *x, int n)
{
    float a[ACC];
    int c = 0;
    if (n < ACC) {
        float m = x[0];
        for (int t = 1; t < n; t++)
            m = x[t] > m ? x[t] : m;
        return m;
    }
    for (int k = 0; k < ACC; k++)
        a[k] = x[k];
    for (c = ACC; c + ACC <= n; c += ACC)
        for (int k = 0; k < ACC; k++)
            a[k] = x[c + k] > a[k] ? x[c + k] : a[k];
    float m = a[0];
    for (int k = 1; k < ACC; k++)
        m = a[k] > m ? a[k] : m;
    for (int t = c; t < n; t++)
        m = x[t] > m ? x[t] : m;
    return m;
}

TR_CLONES void tr_vec_scale(float *x, int n, float k)
{
    for (int i = 0; i < n; i++)
        x[i] *= k;
}

TR_CLONES void tr_vec_softmax_bwd(float *d, const float *p, int n, float scale)
{
    float a[ACC] = {0};
    int c = 0;
    for (; c + ACC <= n; c += ACC)
        for (int k = 0; k < ACC; k++)
            a[k] += p[c + k] * d[c + k];
    float dot = combine(a);
    for (int t = c; t < n; t++)
        dot += p[t] * d[t];
    for (int i = 0; i < n; i++)
        d[i] = p[i] * (d[i] - dot) * scale;
}
