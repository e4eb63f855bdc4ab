/* tr_kernels_ref.c - naive loop references for the BLAS-backed kernels, written from the
 * definitions and kept deliberately simple (double accumulation, no BLAS, no threads). The
 * tests check the fast kernels against these. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tr_kernels.h"

static float wat(const float *w, int i, int o, int IN, int OUT, tr_wlayout layout)
{
    return layout == TR_W_IN_OUT ? w[(int64_t)i * OUT + o] : w[(int64_t)o * IN + i];
}

void tr_matmul_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N,
                           int IN, int OUT, tr_wlayout layout, int accumulate)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < IN; i++)
                s += (double)inp[(int64_t)n * IN + i] * wat(w, i, o, IN, OUT, layout);
            float *y = &out[(int64_t)n * OUT + o];
            *y = accumulate ? *y + (float)s : (float)s;
        }
}

void tr_matmul_backward_ref(float *dinp, const float *dout, const float *w, int N, int IN, int OUT,
                            tr_wlayout layout, int accumulate)
{
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IN; i++) {
            double s = 0.0;
            for (int o = 0; o < OUT; o++)
                s += (double)dout[(int64_t)n * OUT + o] * wat(w, i, o, IN, OUT, layout);
            float *d = &dinp[(int64_t)n * IN + i];
            *d = accumulate ? *d + (float)s : (float)s;
        }
}

void tr_lora_forward_ref(float *out, int ldo, float *h, const float *inp, const float *A,
                         const float *Bm, float scale, int N, int IN, int OUT, int R)
{
    for (int n = 0; n < N; n++) {
        for (int r = 0; r < R; r++) {
            double s = 0.0;
            for (int i = 0; i < IN; i++)
                s += (double)inp[(int64_t)n * IN + i] * A[(int64_t)r * IN + i];
            h[(int64_t)n * R + r] = (float)s;
        }
        for (int o = 0; o < OUT; o++) {
            double s = 0.0;
            for (int r = 0; r < R; r++)
                s += (double)h[(int64_t)n * R + r] * Bm[(int64_t)o * R + r];
            out[(int64_t)n * ldo + o] += (float)(scale * s);
        }
    }
}

void tr_lora_backward_ref(float *dinp, float *dA, float *dB, float *dh, const float *dout, int ldd,
                          const float *inp, const float *h, const float *A, const float *Bm,
                          float scale, int N, int IN, int OUT, int R)
{
    for (int o = 0; o < OUT; o++)
        for (int r = 0; r < R; r++) {
            double s = 0.0;
            for (int n = 0; n < N; n++)
                s += (double)dout[(int64_t)n * ldd + o] * h[(int64_t)n * R + r];
            dB[(int64_t)o * R + r] += (float)(scale * s);
        }
    for (int n = 0; n < N; n++)
        for (int r = 0; r < R; r++) {
            double s = 0.0;
            for (int o = 0; o < OUT; o++)
                s += (double)dout[(int64_t)n * ldd + o] * Bm[(int64_t)o * R + r];
            dh[(int64_t)n * R + r] = (float)(scale * s);
        }
    if (dA)
        for (int r = 0; r < R; r++)
            for (int i = 0; i < IN; i++) {
                double s = 0.0;
                for (int n = 0; n < N; n++)
                    s += (double)dh[(int64_t)n * R + r] * inp[(int64_t)n * IN + i];
                dA[(int64_t)r * IN + i] += (float)s;
            }
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IN; i++) {
                double s = 0.0;
                for (int r = 0; r < R; r++)
                    s += (double)dh[(int64_t)n * R + r] * A[(int64_t)r * IN + i];
                dinp[(int64_t)n * IN + i] += (float)s;
            }
}

/* The keys query t sees: [lo, t]; its scale and softcap. */
static int att_lo(const tr_attn_opts *o, int t)
{
    return o && o->window > 0 && t - o->window + 1 > 0 ? t - o->window + 1 : 0;
}

static double att_scale(const tr_attn_opts *o, int hd)
{
    return o && o->scale > 0.0f ? (double)o->scale : 1.0 / sqrt((double)hd);
}

void tr_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                              int hd)
{
    tr_attention_forward_opt_ref(out, att, qkv, B, T, H, KV, hd, NULL);
}

void tr_attention_forward_opt_ref(float *out, float *att, const float *qkv, int B, int T, int H,
                                  int KV, int hd, const tr_attn_opts *o)
{
    int W = (H + 2 * KV) * hd, HD = H * hd, grp = H / KV;
    double scale = att_scale(o, hd), cap = o ? o->softcap : 0.0f;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / grp;
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((int64_t)b * T + t) * W + (int64_t)h * hd;
                float *p = att + (((int64_t)b * H + h) * T + t) * T;
                int lo = att_lo(o, t);
                double mx = -INFINITY, sum = 0.0;
                double sc[T];
                for (int s = lo; s <= t; s++) {
                    const float *k = qkv + ((int64_t)b * T + s) * W + (int64_t)(H + g) * hd;
                    double d = 0.0;
                    for (int i = 0; i < hd; i++)
                        d += (double)q[i] * k[i];
                    sc[s] = d * scale;
                    if (cap > 0.0)
                        sc[s] = cap * tanh(sc[s] / cap);
                    mx = sc[s] > mx ? sc[s] : mx;
                }
                for (int s = lo; s <= t; s++) {
                    sc[s] = exp(sc[s] - mx);
                    sum += sc[s];
                }
                for (int s = 0; s < T; s++)
                    p[s] = s >= lo && s <= t ? (float)(sc[s] / sum) : 0.0f;
                float *y = out + ((int64_t)b * T + t) * HD + (int64_t)h * hd;
                for (int i = 0; i < hd; i++) {
                    double a = 0.0;
                    for (int s = lo; s <= t; s++)
                        a += (double)p[s] *
                             qkv[((int64_t)b * T + s) * W + (int64_t)(H + KV + g) * hd + i];
                    y[i] = (float)a;
                }
            }
        }
}

void tr_attention_backward_ref(float *dqkv, float *scratch, const float *dout, const float *qkv,
                               const float *att, int B, int T, int H, int KV, int hd)
{
    tr_attention_backward_opt_ref(dqkv, scratch, dout, qkv, att, B, T, H, KV, hd, NULL);
}

void tr_attention_backward_opt_ref(float *dqkv, float *scratch, const float *dout, const float *qkv,
                                   const float *att, int B, int T, int H, int KV, int hd,
                                   const tr_attn_opts *o)
{
    (void)scratch;
    int W = (H + 2 * KV) * hd, HD = H * hd, grp = H / KV;
    double scale = att_scale(o, hd), cap = o ? o->softcap : 0.0f;
    memset(dqkv, 0, sizeof(float) * (size_t)B * T * W);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / grp;
            for (int t = 0; t < T; t++) {
                const float *p = att + (((int64_t)b * H + h) * T + t) * T;
                const float *dy = dout + ((int64_t)b * T + t) * HD + (int64_t)h * hd;
                const float *q = qkv + ((int64_t)b * T + t) * W + (int64_t)h * hd;
                float *dq = dqkv + ((int64_t)b * T + t) * W + (int64_t)h * hd;
                int lo = att_lo(o, t);
                double dp[T], dot = 0.0;
                for (int s = lo; s <= t; s++) {
                    const float *v = qkv + ((int64_t)b * T + s) * W + (int64_t)(H + KV + g) * hd;
                    float *dv = dqkv + ((int64_t)b * T + s) * W + (int64_t)(H + KV + g) * hd;
                    double d = 0.0;
                    for (int i = 0; i < hd; i++) {
                        d += (double)dy[i] * v[i];
                        dv[i] += p[s] * dy[i];
                    }
                    dp[s] = d;
                    dot += p[s] * d;
                }
                for (int s = lo; s <= t; s++) {
                    const float *k = qkv + ((int64_t)b * T + s) * W + (int64_t)(H + g) * hd;
                    float *dk = dqkv + ((int64_t)b * T + s) * W + (int64_t)(H + g) * hd;
                    double ds = p[s] * (dp[s] - dot) * scale;
                    if (cap > 0.0) { /* through cap * tanh(raw / cap) */
                        double raw = 0.0;
                        for (int i = 0; i < hd; i++)
                            raw += (double)q[i] * k[i];
                        double th = tanh(raw * scale / cap);
                        ds *= 1.0 - th * th;
                    }
                    for (int i = 0; i < hd; i++) {
                        dq[i] += (float)(ds * k[i]);
                        dk[i] += (float)(ds * q[i]);
                    }
                }
            }
        }
}

float tr_head_ce_ref(float *losses, float *dx, float *dw, const float *x, const float *w,
                     const int32_t *targets, int N, int C, int V)
{
    return tr_head_ce_cap_ref(losses, dx, dw, x, w, targets, N, C, V, 0.0f);
}

float tr_head_ce_cap_ref(float *losses, float *dx, float *dw, const float *x, const float *w,
                         const int32_t *targets, int N, int C, int V, float softcap)
{
    int count = 0;
    for (int n = 0; n < N; n++)
        count += targets[n] >= 0;
    double *z = malloc(sizeof(double) * (size_t)V), total = 0.0;
    if (!z)
        return NAN;
    if (dx)
        memset(dx, 0, sizeof(float) * (size_t)N * C);
    for (int n = 0; n < N; n++) {
        const float *xn = x + (int64_t)n * C;
        losses[n] = 0.0f;
        if (targets[n] < 0)
            continue;
        double mx = -INFINITY, s = 0.0;
        for (int v = 0; v < V; v++) {
            z[v] = 0.0;
            for (int c = 0; c < C; c++)
                z[v] += (double)xn[c] * w[(int64_t)v * C + c];
            if (softcap > 0.0f)
                z[v] = softcap * tanh(z[v] / softcap);
            mx = z[v] > mx ? z[v] : mx;
        }
        for (int v = 0; v < V; v++)
            s += exp(z[v] - mx);
        double l = log(s) + mx - z[targets[n]];
        losses[n] = (float)l;
        total += (float)l;
        for (int v = 0; v < V; v++) {
            double g = (exp(z[v] - mx) / s - (v == targets[n])) / count;
            if (softcap > 0.0f)
                g *= 1.0 - (z[v] / softcap) * (z[v] / softcap);
            for (int c = 0; c < C; c++) {
                if (dx)
                    dx[(int64_t)n * C + c] += (float)(g * w[(int64_t)v * C + c]);
                if (dw)
                    dw[(int64_t)v * C + c] += (float)(g * xn[c]);
            }
        }
    }
    free(z);
    return count ? (float)(total / count) : 0.0f;
}

void tr_rope_inv_freq_ref(float *inv_freq, int hd, float theta, const tr_rope_scaling *sc)
{
    for (int i = 0; i < hd / 2; i++) {
        double inv = 1.0 / pow(theta, 2.0 * i / hd);
        if (sc && sc->type == TR_ROPE_LINEAR) {
            inv /= sc->factor;
        } else if (sc && sc->type == TR_ROPE_LLAMA3) {
            double wavelen = 2.0 * M_PI / inv;
            double lo = sc->orig_max_pos / sc->low_freq_factor;
            double hi = sc->orig_max_pos / sc->high_freq_factor;
            if (wavelen > lo) {
                inv /= sc->factor;
            } else if (wavelen >= hi) {
                double s = (sc->orig_max_pos / wavelen - sc->low_freq_factor) /
                           (sc->high_freq_factor - sc->low_freq_factor);
                inv = (1.0 - s) * inv / sc->factor + s * inv;
            }
        }
        inv_freq[i] = (float)inv;
    }
}

void tr_qknorm_forward_ref(float *qkv, float *raw, float *rstd, const float *wq, const float *wk,
                           int N, int H, int KV, int hd, float eps)
{
    int G = H + KV, W = (H + 2 * KV) * hd;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            float *x = qkv + (int64_t)n * W + (int64_t)g * hd;
            float *r = raw + ((int64_t)n * G + g) * hd;
            const float *w = g < H ? wq : wk;
            double ss = 0.0;
            for (int i = 0; i < hd; i++) {
                r[i] = x[i];
                ss += (double)x[i] * x[i];
            }
            double s = 1.0 / sqrt(ss / hd + eps);
            for (int i = 0; i < hd; i++)
                x[i] = (float)(w[i] * (r[i] * s));
            rstd[(int64_t)n * G + g] = (float)s;
        }
}

void tr_qknorm_backward_ref(float *dqkv, const float *raw, const float *rstd, const float *wq,
                            const float *wk, int N, int H, int KV, int hd)
{
    int G = H + KV, W = (H + 2 * KV) * hd;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            float *d = dqkv + (int64_t)n * W + (int64_t)g * hd;
            const float *x = raw + ((int64_t)n * G + g) * hd;
            const float *w = g < H ? wq : wk;
            double s = rstd[(int64_t)n * G + g], dot = 0.0;
            for (int i = 0; i < hd; i++)
                dot += (double)w[i] * d[i] * x[i];
            double k = dot / hd * s * s * s;
            for (int i = 0; i < hd; i++)
                d[i] = (float)(s * w[i] * d[i] - x[i] * k);
        }
}

static double gelu_tanh_d(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

void tr_geglu_forward_ref(float *out, const float *gu, int N, int F)
{
    for (int n = 0; n < N; n++)
        for (int i = 0; i < F; i++) {
            const float *g = gu + (int64_t)n * 2 * F;
            out[(int64_t)n * F + i] = (float)(gelu_tanh_d(g[i]) * g[F + i]);
        }
}

void tr_geglu_backward_ref(float *dgu, const float *dout, const float *gu, int N, int F)
{
    const double k = sqrt(2.0 / M_PI);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < F; i++) {
            const float *g = gu + (int64_t)n * 2 * F;
            double x = g[i], dy = dout[(int64_t)n * F + i];
            double th = tanh(k * (x + 0.044715 * x * x * x));
            double d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 0.134145 * x * x);
            dgu[(int64_t)n * 2 * F + i] = (float)(dy * g[F + i] * d);
            dgu[(int64_t)n * 2 * F + F + i] = (float)(dy * gelu_tanh_d(x));
        }
}

void tr_softcap_forward_ref(float *x, int64_t n, float cap)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(cap * tanh((double)x[i] / cap));
}
