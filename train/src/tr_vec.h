/* tr_vec.h - the inner loops of the row-wise kernels, compiled for AVX-512, AVX2 and plain
 * x86-64 (picked at load time). Reductions use 16 interleaved partial sums combined in a
 * fixed order and no multiply-add is contracted (ISO C mode), so every variant gives the same
 * bits. Not installed. */
#ifndef TR_VEC_H
#define TR_VEC_H

#include <stdint.h>

/* One LayerNorm row: o (C), *mean, *rstd from x (C), w, b. */
void tr_vec_ln_fwd(float *o, float *mean, float *rstd, const float *x, const float *w,
                   const float *b, int C, float eps);
/* Adds one row of d x given dy. */
void tr_vec_ln_bwd(float *dx, const float *dy, const float *x, const float *w, float mean,
                   float rstd, int C);
void tr_vec_rms_fwd(float *o, float *rstd, const float *x, const float *w, int C, float eps);
void tr_vec_rms_bwd(float *dx, const float *dy, const float *x, const float *w, float rstd, int C);
/* GELU (tanh form) over n elements; backward dinp = dout * gelu'(inp) (dinp may be dout). */
void tr_vec_gelu_fwd(float *out, const float *inp, int64_t n);
void tr_vec_gelu_bwd(float *dinp, const float *inp, const float *dout, int64_t n);
/* x[i] = exp(x[i] - shift) for i < n; returns the sum of the new x in a fixed order.
 * exp within 1.5 ulp of the true value (Cephes' expf polynomial). */
float tr_vec_exp_sum(float *x, int n, float shift);
/* out[i] = exp(in[i]) (out may be in). */
void tr_vec_exp(float *out, const float *in, int64_t n);

/* The largest of x[0..n), n >= 1 (exact: order does not matter for max). */
float tr_vec_max(const float *x, int n);
/* x[i] *= k. */
void tr_vec_scale(float *x, int n, float k);
/* Softmax backward of one row in place: d = p * (d - sum(p * d)) * scale. */
void tr_vec_softmax_bwd(float *d, const float *p, int n, float scale);
/* One SwiGLU row: out = silu(g) * u; backward dg, du from dy. */
void tr_vec_swiglu_fwd(float *out, const float *g, const float *u, int F);
void tr_vec_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u,
                       int F);
/* One GeGLU row (GELU tanh form on the gate): out = gelu(g) * u; backward dg, du from dy. */
void tr_vec_geglu_fwd(float *out, const float *g, const float *u, int F);
void tr_vec_geglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, int F);
/* Soft capping in place: x = cap * tanh(x / cap) (tanh within 4e-7, see tr_vec.c). Backward:
 * d *= 1 - (y / cap)^2 with y the capped values. */
void tr_vec_softcap(float *x, int64_t n, float cap);
void tr_vec_softcap_bwd(float *d, const float *y, int64_t n, float cap);

#endif
