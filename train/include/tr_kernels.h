/* tr_kernels.h - the layers of train/, each a forward/backward pair in llm.c's style:
 * outputs first, shapes as plain ints, the forward caches what the backward needs.
 *
 * Shapes: N = rows (B*T tokens), C = model width, V = vocabulary. All buffers are fp32,
 * row-major, caller-owned. Base weights are frozen, so backward kernels compute input
 * gradients only (never weight gradients), except the LoRA pair which produces dA and dB.
 *
 * "Adds into" means the kernel accumulates (+=) into that output; everything else is
 * overwritten. Kernels may use OpenMP loops and OpenBLAS; every reduction has a fixed order,
 * so results depend only on the inputs and the thread count.
 *
 * Weight layouts: TR_W_IN_OUT is GPT-2's Conv1D ([in, out], y = x W); TR_W_OUT_IN is
 * nn.Linear ([out, in], y = x W^T).
 *
 * Each BLAS-backed kernel has a naive reference (suffix _ref) of the same signature; the
 * tests check that they agree.
 */
#ifndef TR_KERNELS_H
#define TR_KERNELS_H

#include <stdint.h>

typedef enum { TR_W_IN_OUT = 0, TR_W_OUT_IN = 1 } tr_wlayout;

/* A frozen base weight, fp32 (f) or bf16 (h, tr_bf16.h); exactly one is non-NULL. The _w
 * kernels take one: with h their products are tr_bf16_gemm's (the input rounded to bf16,
 * fp32 sums); everything else in them (bias, LoRA, softmax, the loss) stays fp32. The
 * kernels without _w are the same with an fp32 weight. */
typedef struct {
    const float *f;
    const uint16_t *h;
} tr_weight;

/* out (N=B*T, C) = wte[inp] + wpe[t] (wpe may be NULL: no learned positions). inp (B, T). */
void tr_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B,
                        int T, int C);
/* The same from fp32 or bf16 tables (widened exactly); wpe {NULL, NULL}: no positions. */
void tr_encoder_forward_w(float *out, const int32_t *inp, tr_weight wte, tr_weight wpe, int B,
                          int T, int C);

/* LayerNorm over the last dim. out (N, C), mean/rstd (N) cached; w, b (C). */
void tr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps);
/* Adds d inp (N, C) given dout (N, C). */
void tr_layernorm_backward(float *dinp, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C);

/* RMSNorm as LlamaRMSNorm: out = w * x / sqrt(mean(x^2) + eps). rstd (N) cached. */
void tr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps);
/* Adds d inp (N, C). */
void tr_rmsnorm_backward(float *dinp, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C);

/* out (N, OUT) = inp (N, IN) . W + bias (bias (OUT) may be NULL); with accumulate != 0,
 * out += instead of =. W is (IN, OUT) or (OUT, IN) per layout. */
void tr_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N,
                       int IN, int OUT, tr_wlayout layout, int accumulate);
void tr_matmul_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N,
                           int IN, int OUT, tr_wlayout layout, int accumulate);
/* dinp (N, IN) = dout (N, OUT) . W^T, or += with accumulate. No weight gradient. */
void tr_matmul_backward(float *dinp, const float *dout, const float *w, int N, int IN, int OUT,
                        tr_wlayout layout, int accumulate);
void tr_matmul_backward_ref(float *dinp, const float *dout, const float *w, int N, int IN, int OUT,
                            tr_wlayout layout, int accumulate);
void tr_matmul_forward_w(float *out, const float *inp, tr_weight w, const float *bias, int N,
                         int IN, int OUT, tr_wlayout layout, int accumulate);
void tr_matmul_backward_w(float *dinp, const float *dout, tr_weight w, int N, int IN, int OUT,
                          tr_wlayout layout, int accumulate);

/* LoRA on a frozen linear: h (N, R) = inp (N, IN) . A^T, with A (R, IN) as PEFT stores it;
 * out (N, ldo; columns 0..OUT-1 used) += scale * h . B^T, with B (OUT, R). */
void tr_lora_forward(float *out, int ldo, float *h, const float *inp, const float *A,
                     const float *Bm, float scale, int N, int IN, int OUT, int R);
void tr_lora_forward_ref(float *out, int ldo, float *h, const float *inp, const float *A,
                         const float *Bm, float scale, int N, int IN, int OUT, int R);
/* Given dout (N, ldd), adds dB (OUT, R) += scale * dout^T . h; dh (N, R) = scale * dout . B
 * (scratch, overwritten); if dA: dA (R, IN) += dh^T . inp; if dinp: dinp (N, IN) += dh . A. */
void tr_lora_backward(float *dinp, float *dA, float *dB, float *dh, const float *dout, int ldd,
                      const float *inp, const float *h, const float *A, const float *Bm,
                      float scale, int N, int IN, int OUT, int R);
void tr_lora_backward_ref(float *dinp, float *dA, float *dB, float *dh, const float *dout, int ldd,
                          const float *inp, const float *h, const float *A, const float *Bm,
                          float scale, int N, int IN, int OUT, int R);

/* A frozen linear and the LoRA adapters on it, fused: one parallel region in which each
 * thread takes a block of rows through the base product and every adapter, so the adapters'
 * thin products cost no extra thread wake-ups. Adapter k reads the linear's input and adds
 * into output columns [off, off + out). Same results as tr_matmul_* + tr_lora_* up to
 * rounding order. */
typedef struct {
    const float *A, *B; /* (R, IN), (out, R) */
    float *h;           /* (N, R): forward writes x A^T (the backward's input) */
    float *dh;          /* (N, R): backward scratch, written */
    float *dA, *dB;     /* gradients to add into; dA NULL when A is frozen */
    int off, out;
} tr_lora_slot;

/* out (N, OUT) = init + inp . W + bias (init NULL: no init term; init == out: accumulate;
 * bias may be NULL), then out[:, off:off+out] += scale * (inp A^T) B^T for each slot. */
void tr_linear_forward(float *out, const float *init, const float *inp, const float *w,
                       const float *bias, int N, int IN, int OUT, tr_wlayout layout,
                       tr_lora_slot *slots, int n_slots, int R, float scale);
/* Given dout (N, OUT): for each slot dh = scale * dout[:, off:off+out] . B, dB += scale *
 * dout[:, slot]^T . h, dA += dh^T . inp; and if dinp: dinp (N, IN) = dout . W^T + sum dh . A
 * (overwritten). */
void tr_linear_backward(float *dinp, const float *dout, const float *inp, const float *w, int N,
                        int IN, int OUT, tr_wlayout layout, tr_lora_slot *slots, int n_slots, int R,
                        float scale);
void tr_linear_forward_w(float *out, const float *init, const float *inp, tr_weight w,
                         const float *bias, int N, int IN, int OUT, tr_wlayout layout,
                         tr_lora_slot *slots, int n_slots, int R, float scale);
void tr_linear_backward_w(float *dinp, const float *dout, const float *inp, tr_weight w, int N,
                          int IN, int OUT, tr_wlayout layout, tr_lora_slot *slots, int n_slots,
                          int R, float scale);

/* Causal self-attention with grouped-query heads. qkv (B, T, (H + 2*KV)*hd): queries of
 * head h at columns h*hd, keys of kv head g at (H + g)*hd, values at (H + KV + g)*hd; query
 * head h uses kv head h / (H / KV). att (B, H, T, T) caches the softmax probabilities (the
 * upper triangle is zero); out (B, T, H*hd). Scores are scaled by 1/sqrt(hd). */
void tr_attention_forward(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                          int hd);
void tr_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                              int hd);
/* dqkv (B, T, (H+2KV)*hd) = gradient of qkv (overwritten) given dout (B, T, H*hd).
 * scratch: tr_attention_scratch_len(T) floats per OpenMP thread (max threads); the backward
 * with a softcap recomputes one row block's scores there. */
int64_t tr_attention_scratch_len(int T);
void tr_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int H, int KV, int hd);
void tr_attention_backward_ref(float *dqkv, float *scratch, const float *dout, const float *qkv,
                               const float *att, int B, int T, int H, int KV, int hd);

/* The same attention with Gemma's options. A NULL opts is {0, 0, 0}: the attention above. */
typedef struct {
    float scale; /* scores are q.k times this; 0 = 1/sqrt(hd) (Gemma: query_pre_attn_scalar^-1/2) */
    float softcap; /* > 0: each score becomes softcap * tanh(score / softcap) before the mask */
    int window;    /* > 0: query t sees keys s with t - window < s <= t (HF's sliding window) */
} tr_attn_opts;
void tr_attention_forward_opt(float *out, float *att, const float *qkv, int B, int T, int H, int KV,
                              int hd, const tr_attn_opts *opts);
void tr_attention_forward_opt_ref(float *out, float *att, const float *qkv, int B, int T, int H,
                                  int KV, int hd, const tr_attn_opts *opts);
void tr_attention_backward_opt(float *dqkv, float *scratch, const float *dout, const float *qkv,
                               const float *att, int B, int T, int H, int KV, int hd,
                               const tr_attn_opts *opts);
void tr_attention_backward_opt_ref(float *dqkv, float *scratch, const float *dout, const float *qkv,
                                   const float *att, int B, int T, int H, int KV, int hd,
                                   const tr_attn_opts *opts);

/* RoPE frequency scaling, config.json's rope_scaling as Hugging Face's modeling_rope_utils
 * reads it (attention_factor 1 for all of these, so cos/sin are not rescaled). */
typedef enum {
    TR_ROPE_DEFAULT = 0, /* none, or rope_type "default" */
    TR_ROPE_LINEAR = 1,  /* inv_freq / factor */
    TR_ROPE_DYNAMIC = 2, /* NTK-aware, only past max_position_embeddings: default below it */
    TR_ROPE_LLAMA3 = 3,  /* Llama 3.1/3.2: per-frequency blend of inv_freq and inv_freq/factor */
} tr_rope_type;

typedef struct {
    tr_rope_type type;
    /* As config.json writes them (Python floats: HF rounds each expression of them to fp32
     * only where it meets the fp32 inv_freq tensor). */
    double factor;           /* linear, dynamic, llama3: > 0 */
    double low_freq_factor;  /* llama3: > 0 */
    double high_freq_factor; /* llama3: > low_freq_factor */
    int orig_max_pos;        /* llama3: original_max_position_embeddings, > 0 */
} tr_rope_scaling;

/* inv_freq (hd/2) as Hugging Face computes it in fp32: inv_freq_i = 1 / theta^(2i/hd), then
 * for linear / factor; for llama3, with wavelen_i = 2 pi / inv_freq_i, unchanged where
 * wavelen < orig / high_freq_factor, / factor where wavelen > orig / low_freq_factor and
 * in between (1 - s) inv / factor + s inv with s = (orig / wavelen - low) / (high - low),
 * each operation rounded to fp32 in the order torch evaluates _compute_llama3_parameters.
 * Dynamic (and sc NULL) gives the default frequencies: the engine never runs a position at
 * or past max_position_embeddings, where HF's dynamic NTK would start to change them. */
void tr_rope_inv_freq(float *inv_freq, int hd, float theta, const tr_rope_scaling *sc);
/* Naive twin: the same definition evaluated in double, rounded to float at the end. */
void tr_rope_inv_freq_ref(float *inv_freq, int hd, float theta, const tr_rope_scaling *sc);
/* cos/sin (T, hd/2) of t * inv_freq_i (fp32 product, as HF's inv_freq @ position_ids). */
void tr_rope_tables(float *cos_t, float *sin_t, int T, int hd, const float *inv_freq);
/* In place on the query and key heads of qkv (layout as attention), HF rotate_half pairing:
 * x[i], x[i + hd/2] rotate together. Backward applies the inverse rotation to dqkv. */
void tr_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                     int KV, int hd);
void tr_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                      int KV, int hd);

/* Qwen3's q_norm / k_norm: in place on qkv (layout as attention), RMSNorm (as
 * tr_rmsnorm_forward) over each of the H query heads with weight wq (hd) and each of the KV
 * key heads with wk (hd); values untouched. raw (N, (H + KV) * hd) receives the heads before
 * the norm and rstd (N, H + KV) their inverse RMS, for backward. hd <= TR_QKNORM_MAX_HD. */
#define TR_QKNORM_MAX_HD 1024
void tr_qknorm_forward(float *qkv, float *raw, float *rstd, const float *wq, const float *wk, int N,
                       int H, int KV, int hd, float eps);
void tr_qknorm_forward_ref(float *qkv, float *raw, float *rstd, const float *wq, const float *wk,
                           int N, int H, int KV, int hd, float eps);
/* In place on dqkv: the gradient w.r.t. the normalised query/key heads becomes the gradient
 * w.r.t. the heads before the norm (value columns untouched). No weight gradients. */
void tr_qknorm_backward(float *dqkv, const float *raw, const float *rstd, const float *wq,
                        const float *wk, int N, int H, int KV, int hd);
void tr_qknorm_backward_ref(float *dqkv, const float *raw, const float *rstd, const float *wq,
                            const float *wk, int N, int H, int KV, int hd);

/* GELU, tanh form (GPT-2's gelu_new). out (N) from inp (N). Backward: dinp = dout * gelu'(inp)
 * (dinp may alias dout). */
void tr_gelu_forward(float *out, const float *inp, int64_t N);
void tr_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t N);

/* SwiGLU: gu (N, 2F) holds gate in columns 0..F-1 and up in F..2F-1 (the fused gate_proj /
 * up_proj output); out (N, F) = silu(gate) * up. Backward: dgu (N, 2F) from dout (N, F). */
void tr_swiglu_forward(float *out, const float *gu, int N, int F);
void tr_swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int F);

/* GeGLU (Gemma's MLP, GELU tanh form, gelu_pytorch_tanh): gu (N, 2F) gate | up as for SwiGLU;
 * out (N, F) = gelu(gate) * up. Backward: dgu (N, 2F) from dout (N, F). The _ref twins compute
 * in double. */
void tr_geglu_forward(float *out, const float *gu, int N, int F);
void tr_geglu_backward(float *dgu, const float *dout, const float *gu, int N, int F);
void tr_geglu_forward_ref(float *out, const float *gu, int N, int F);
void tr_geglu_backward_ref(float *dgu, const float *dout, const float *gu, int N, int F);

/* Logit soft capping (Gemma 2): in place, x = cap * tanh(x / cap) over n values, cap > 0.
 * Backward, in place on d: d *= 1 - (y / cap)^2, y the capped values. */
void tr_softcap_forward(float *x, int64_t n, float cap);
void tr_softcap_backward(float *d, const float *y, int64_t n, float cap);
void tr_softcap_forward_ref(float *x, int64_t n, float cap);

/* out = a + b (N). Backward adds dout into da and db. */
void tr_residual_forward(float *out, const float *a, const float *b, int64_t N);
void tr_residual_backward(float *da, float *db, const float *dout, int64_t N);

/* Inverted dropout with rate p: out = inp * keep / (1 - p), keep a pure function of
 * (seed, index), so backward regenerates the mask. Backward adds into dinp. */
void tr_dropout_forward(float *out, const float *inp, float p, uint64_t seed, int64_t N);
void tr_dropout_backward(float *dinp, const float *dout, float p, uint64_t seed, int64_t N);

/* Mean cross-entropy of logits (N, V) against targets (N) over the targets >= 0 (a negative
 * one, TR_DATA_IGNORE, is left out; none counted: 0); returns the mean loss (fixed-order
 * double sum). losses (N) receives per-row losses, 0 for a left-out row (may be NULL). */
float tr_crossentropy_forward(float *losses, const float *logits, const int32_t *targets, int N,
                              int V);
/* dlogits (N, V) = (softmax(logits) - onehot(target)) / (targets counted), a zero row for a
 * left-out target (overwritten). */
void tr_crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N,
                              int V);

/* The LM head and the cross-entropy fused, over chunks of at most `chunk` rows, so the
 * (N, V) logits never exist at once: per chunk, logits (rows, V) = x . w^T (w is (V, C),
 * out-in) go into scratch (chunk * V floats), each row's loss -log softmax[target] is taken,
 * and with dx the same buffer becomes dlogits = (softmax - onehot) / counted, from which
 * dx (rows, C) = dlogits . w (overwritten) and, with dw, dw (V, C) += dlogits^T . x (NULL:
 * frozen head). A negative target (TR_DATA_IGNORE) contributes no loss and a zero gradient.
 * losses (N) receives per-row losses (0 for an ignored row); returns their mean over the
 * counted rows, summed in row order in double (0 when none counts). chunk >= 1. */
float tr_head_ce(float *losses, float *dx, float *dw, float *scratch, const float *x,
                 const float *w, const int32_t *targets, int N, int C, int V, int chunk);
/* The same with an fp32 or bf16 head; dw must be NULL for a bf16 one. */
float tr_head_ce_w(float *losses, float *dx, float *dw, float *scratch, const float *x, tr_weight w,
                   const int32_t *targets, int N, int C, int V, int chunk);
/* The same with the logits soft-capped first (softcap > 0: z = softcap * tanh(z / softcap),
 * Gemma 2's final_logit_softcapping; 0: none), the gradient taken through the cap. */
float tr_head_ce_cap_w(float *losses, float *dx, float *dw, float *scratch, const float *x,
                       tr_weight w, const int32_t *targets, int N, int C, int V, int chunk,
                       float softcap);
/* Naive twins: full logits in double, no BLAS, no threads; same outputs. */
float tr_head_ce_cap_ref(float *losses, float *dx, float *dw, const float *x, const float *w,
                         const int32_t *targets, int N, int C, int V, float softcap);
float tr_head_ce_ref(float *losses, float *dx, float *dw, const float *x, const float *w,
                     const int32_t *targets, int N, int C, int V);

/* How the large products use threads: on (default), mutual splits the rows of the output
 * over the OpenMP team and runs one single-threaded sgemm per thread; off, each product is a
 * single cblas_sgemm call threaded by OpenBLAS. Process-wide; for benchmarking. */
void tr_gemm_split_set(int on);

/* splitmix64, the generator behind LoRA init and dropout masks. */
uint64_t tr_splitmix64(uint64_t x);

#endif
