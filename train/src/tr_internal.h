/* tr_internal.h - the inside of tr_model, shared by tr_model.c, tr_lora.c, tr_forward.c and
 * tr_optim.c. Not installed; nothing outside train/src includes it. */
#ifndef TR_INTERNAL_H
#define TR_INTERNAL_H

#include "tr_kernels.h"
#include "tr_model.h"

#define TR_NAME_MAX 112

typedef struct {
    char name[TR_NAME_MAX];
    int ndim;
    int64_t shape[2];
    float *data;    /* fp32 storage, or NULL */
    uint16_t *bf16; /* bf16 storage (2-D weights in bf16 mode), or NULL */
} tr_entry;

/* The four linears of a block. QKV and UP are fused: GPT-2 stores them fused; for Llama the
 * q/k/v (and gate/up) weights are placed back to back so one GEMM computes all of them. */
enum { TR_LIN_QKV, TR_LIN_O, TR_LIN_UP, TR_LIN_DOWN, TR_LIN_COUNT };
/* Most LoRA modules on one linear: q, k and v on Llama's fused QKV. */
#define TR_MAX_SLOTS 3

typedef struct {
    float *n1w, *n1b;   /* (C); n1b NULL for RMSNorm */
    float *wqkv, *bqkv; /* GPT-2 (C, 3C) / Llama (QKV, C); (QKV) or NULL */
    float *qnw, *knw;   /* (hd) q_norm / k_norm weights (Qwen3), or NULL */
    float *wo, *bo;     /* GPT-2 (C, C) / Llama (C, HD); (C) or NULL */
    float *n2w, *n2b;   /* (C) */
    float *wup, *bup;   /* GPT-2 (C, F) / Llama (2F, C) gate then up; (F) or NULL */
    float *wdn, *bdn;   /* GPT-2 (F, C) / Llama (C, F); (C) or NULL */
    float *paw, *pfw;   /* (C) Gemma: post_attention / post_feedforward norms, or NULL */
    /* The norm weights the kernels use (tr_norms_refresh): the ones above, or for Gemma
     * 1 + w (n2w is then pre_feedforward_layernorm). */
    const float *n1x, *qnx, *knx, *pax, *n2x, *pfx;
    /* bf16 mode: the four weights above in bf16 (their float pointers are then NULL). */
    uint16_t *wqkv16, *wo16, *wup16, *wdn16;
} tr_layer;

/* A layer's or the model's weight as the _w kernels take it. */
static inline tr_weight tr_w(const float *f, const uint16_t *h)
{
    return (tr_weight){f, h};
}

/* One LoRA-adapted module: reads the (N, in) input of linear `lin` in layer `layer` and adds
 * into columns [off, off + out) of that linear's (N, OUT) output. */
typedef struct {
    unsigned bit;
    int layer, lin;
    int in, out, off;
    float *A, *B;   /* (R, in), (out, R) */
    float *dA, *dB; /* gradients; dA NULL when A is frozen */
    float *h;       /* (N, R) cached A x */
    float *xd;      /* (N, in) dropped-out input; NULL without dropout */
} tr_lmod;

/* Activations of one block, cached by the training forward for backward. The inputs of a
 * linear (xn1, atty, xn2, act) are kept per layer only when LoRA adapts that linear; else
 * they point to scratch shared by every layer. With checkpointing every layer's tr_acts is
 * the same one set, which backward refills from the layer's input (res) before using it. */
typedef struct {
    float *xn1;           /* (N, C) norm1 output */
    float *mean1, *rstd1; /* (N) */
    float *qkv;           /* (N, QKV), after q/k norms and RoPE */
    float *qk_raw;        /* (N, (H+KV)*hd) q/k heads before q_norm/k_norm, or NULL */
    float *qk_rstd;       /* (N, H+KV), or NULL */
    float *att;           /* (B, H, T, T) softmax probabilities */
    float *atty;          /* (N, HD) attention output */
    float *res2;          /* (N, C) residual after attention */
    float *xn2;           /* (N, C) norm2 output */
    float *mean2, *rstd2; /* (N) */
    float *up;            /* (N, U) pre-activation (GPT-2 U = F; Llama U = 2F gate|up) */
    float *act;           /* (N, F) */
    float *ao, *rstd_pa;  /* Gemma: (N, C) attention output before its norm, (N); else NULL */
    float *mo, *rstd_pf;  /* Gemma: (N, C) MLP output before its norm, (N); else NULL */
} tr_acts;

struct tr_model {
    tr_config cfg;
    int C, L, H, KV, hd, HD, QKV, F, U, V;
    tr_wlayout layout;

    float *params; /* one allocation, every fp32 base tensor */
    int64_t n_params;
    int bf16;           /* tr_model_set_bf16: 2-D weights live in params16 */
    uint16_t *params16; /* one allocation, every bf16 base tensor, or NULL */
    int64_t n_params16;
    tr_entry *base;
    int n_base;
    float *wte, *wpe;                 /* (V, C), (max_pos, C) or NULL */
    float *nfw, *nfb;                 /* (C) final norm */
    float *head;                      /* (V, C): wte when tied */
    uint16_t *wte16, *wpe16, *head16; /* bf16 mode: the same in bf16 (floats NULL) */
    tr_layer *layers;                 /* (L) */
    float *w1p;                       /* Gemma: 1 + every norm weight, or NULL */
    const float *nfx;                 /* final norm weight the kernels use */
    float emb_scale;                  /* Gemma: fp32 sqrt(C); else 0 (none) */

    int has_lora;
    tr_lora_config lcfg;
    float scale;
    uint64_t seed;
    tr_lmod *mods; /* sorted by layer, then TR_T_* bit */
    int n_mods;
    int lowest_layer; /* lowest layer holding a module */
    tr_entry *lora;
    int n_lora;
    float *lora_mem; /* trainable block, then frozen A block */
    int64_t n_train, n_lora_total;
    float *lora_grad; /* (n_train) */
    float *pex;       /* (cur_B, n_train) per-record gradients written by backward, or NULL */

    /* Activations, one allocation, sized for cap_N rows, cap_BTT = B*T*T, cap_T. */
    float *act_mem;
    int64_t cap_N, cap_BTT;
    int cap_T, cap_threads;
    float *res; /* (L + 1, N, C) residual stream at each block boundary */
    tr_acts *acts;
    float *xnf, *meanf, *rstdf; /* final norm (N, C), (N), (N) */
    float *losses;              /* (N) per-row losses */
    float *ce_scratch;          /* (ce_rows, V): one chunk's logits, then its dlogits */
    float *dxnf;                /* (N, C) d loss / d xnf, computed by the chunked forward */
    int ce_chunk;               /* tr_model_set_ce_chunk: rows, 0 auto, TR_CE_FULL */
    int ckpt;                   /* tr_model_set_checkpointing: acts[l] all share acts[0] */
    int ce_rows;                /* rows per chunk for cap_N (0 in TR_CE_FULL mode) */
    int ce_full_loss;           /* last forward's loss came from the full logits */
    float *logits, *dlogits;    /* (cap_logits, V) each, only when materialised */
    int64_t cap_logits, cap_dlogits;
    float *dres;                  /* (N, C) */
    float *dbuf1, *dbuf2;         /* (N, max(QKV, U)), (N, max(C, HD, F)) */
    float *dh, *dxl;              /* (TR_MAX_SLOTS, N, R), (N, max in) */
    float *attn_scratch;          /* (threads, T, T) */
    float *rope_inv;              /* (hd/2) inv_freq, rope_scaling applied */
    float *rope_cos, *rope_sin;   /* (cap_T, hd/2) */
    float *rope_lcos, *rope_lsin; /* (cap_T, hd/2) local layers' (rope_local_theta), or NULL */
    float *dgem;                  /* Gemma: (N, C) gradient before a post-norm */
    int32_t *targets;             /* (N) copy for backward */

    int cur_B, cur_T, have_logits, can_backward;
    uint64_t forwards, fwd_seed;
};

/* tr_model.c: a table entry as a public tensor description. */
void tr_entry_describe(const tr_entry *e, tr_tensor *out);
/* tr_model.c: points the n*x weights at the norms the kernels use; for Gemma refills w1p
 * with 1 + w from the stored weights (each forward calls it: a base tensor may have been
 * written since). */
void tr_norms_refresh(tr_model *m);
/* Whether layer l uses the sliding window (and, with rope_local_theta, the local RoPE). */
int tr_layer_local(const tr_config *c, int l);
/* Layer l's attention options (scale, softcap, window). */
tr_attn_opts tr_layer_attn(const tr_model *m, int l);

/* tr_forward.c */
int tr_acts_reserve(tr_model *m, int B, int T);
/* tr_dp.c: with pex set, the next backward also writes every record's (row of B) own
 * gradient of the (mean over B*T) loss into pex (B, n_train); NULL stops it. */
void tr_model_set_pex(tr_model *m, float *pex);
/* tr_dp.c: record b's gradient of module x, from the rows [b T, (b + 1) T) of dout (N, ldd:
 * the module's columns), its h (N, R), dh (N, R) and input inp (N, IN), into m->pex. */
void tr_pex_module(tr_model *m, const tr_lmod *x, const float *dout, int ldd, const float *dh,
                   const float *inp);
void tr_acts_free(tr_model *m);

/* Hands out 64-byte aligned slices of one float block; with base NULL it only counts, so the
 * same sequence of calls first sizes the block and then carves it. */
typedef struct {
    float *base;
    int64_t off;
} tr_carver;

static inline float *tr_carve(tr_carver *cv, int64_t n)
{
    int64_t at = cv->off;
    cv->off += (n + 15) & ~(int64_t)15;
    return cv->base ? cv->base + at : NULL;
}

#endif
