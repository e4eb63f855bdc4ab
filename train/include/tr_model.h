/* tr_model.h - decoder-only transformers (GPT-2, Llama family) with LoRA adapters,
 * trained on the CPU through OpenBLAS. The compute half of train/.
 *
 * Life of a model:
 *
 *   tr_config cfg;                        filled by the caller (or the HF config.json loader)
 *   tr_model *m = tr_model_new(&cfg, d);  base parameters, zeroed, in one allocation
 *   for i in 0..tr_model_base_count(m):   fill every base tensor by its Hugging Face name
 *       tr_model_base_tensor(m, i, &t);   t.data points into the model
 *   tr_lora_attach(m, &lcfg, seed, d);    LoRA parameters: A kaiming-uniform, B zero
 *   tr_optim *o = tr_optim_new(&ocfg, tr_lora_trainable_count(m));
 *   for each batch: tr_train_step(m, o, inputs, targets, B, T, &loss);
 *   tr_lora_trainable(m) / tr_lora_trainable_count(m): the flat vector the federation sends.
 *
 * A federated round on one org (or many virtual orgs in turn, sharing one model: the base is
 * frozen, so only the LoRA vector and optimizer state differ between them):
 *
 *   tr_lora_set(m, global, n);            the round's global adapter
 *   tr_optim_reset(o);                    fresh moments and step for the local run
 *   for s in 0..steps: tr_data_batch(...); tr_train_step(m, o, in, tg, B, T, &loss, d);
 *   tr_lora_get(m, local, n);             delta = local - global
 *
 * Errors: functions return MU_OK (0) or a negative MU_ERR_* code from mu_err.h; those that
 * take a `mu_diag *` (may be NULL) also write one line saying what was wrong. Constructors
 * return NULL on failure and change nothing.
 *
 * Threads: a tr_model is not thread-safe; one thread drives it at a time. Internally the
 * kernels use OpenMP loops and the OpenMP build of OpenBLAS (one threading system). For a
 * given seed, inputs and thread count, results are bit-for-bit reproducible: no atomics,
 * every reduction has a fixed order.
 *
 * Frozen base: base weights never receive gradients; only the LoRA parameters do.
 */
#ifndef TR_MODEL_H
#define TR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"
#include "tr_kernels.h"

/* ---------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------- */

typedef enum {
    TR_GPT2 = 1,  /* model_type "gpt2" */
    TR_LLAMA = 2, /* model_type "llama", "mistral" (no sliding window), "qwen2", "qwen3",
                     "gemma2", "gemma3_text" (tr_config.gemma) */
} tr_family;

/* Shapes and hyper-parameters of a base model. Field by field what config.json says:
 *   GPT-2:  vocab_size, n_positions, n_embd, n_layer, n_head, n_inner (null -> 4*n_embd),
 *           layer_norm_epsilon; tied_head = 1 (GPT-2 always ties), no rope.
 *   Llama:  vocab_size, max_position_embeddings, hidden_size, num_hidden_layers,
 *           num_attention_heads, num_key_value_heads (absent -> num_attention_heads),
 *           head_dim (absent -> hidden_size / num_attention_heads), intermediate_size,
 *           rms_norm_eps, rope_theta (absent -> 10000), rope_scaling (absent or null ->
 *           none), tie_word_embeddings (absent -> 0 for llama/mistral/qwen2 as in
 *           transformers), qkv_bias = attention_bias or model_type qwen2, o_bias =
 *           attention_bias (Qwen2: 0); Qwen3: qk_norm = 1, head_dim absent -> 128. */
typedef struct {
    tr_family family;
    int vocab_size;   /* V */
    int max_pos;      /* longest sequence; GPT-2 position table has this many rows */
    int d_model;      /* C */
    int n_layer;      /* L */
    int n_head;       /* H query heads */
    int n_kv_head;    /* KV heads; H % KV == 0. GPT-2: must equal n_head (or 0 = n_head) */
    int head_dim;     /* hd; 0 = d_model / n_head. GPT-2: must be d_model / n_head */
    int d_ff;         /* F, MLP hidden width; 0 = 4*C for GPT-2 (required for Llama) */
    float norm_eps;   /* LayerNorm / RMSNorm epsilon */
    float rope_theta; /* Llama only; 0 = 10000 */
    tr_rope_scaling rope_scaling; /* Llama only; zeroed = none (tr_kernels.h) */
    int tied_head; /* 1: logits use the token embedding; 0: separate lm_head.weight */
    int qkv_bias;  /* Llama only: q/k/v projections have biases (Qwen2, attention_bias) */
    int o_bias;    /* Llama only: o_proj has a bias (attention_bias) */
    int qk_norm;   /* Llama only: RMSNorm over each q and k head before RoPE (Qwen3, Gemma 3) */
    /* Gemma (Llama family with gemma = 2 or 3; all 0 otherwise): the embeddings times
     * sqrt(d_model) (rounded to fp32), every RMSNorm as x * rstd * (1 + w), four norms per
     * layer (the attention and MLP outputs each normalised before their residual add), a
     * GeGLU MLP (gelu tanh form), and these: */
    int gemma;              /* 0, 2 (Gemma 2) or 3 (Gemma 3 text) */
    float attn_scalar;      /* query_pre_attn_scalar: scores scaled by its -1/2; 0 = head_dim */
    float attn_softcap;     /* attn_logit_softcapping; 0 = none */
    float final_softcap;    /* final_logit_softcapping; 0 = none */
    int sliding_window;     /* local layers: query t sees keys t - window < s <= t; 0 = none */
    int sliding_pattern;    /* layer l is local iff (l + 1) % pattern != 0 (Gemma 2: 2, 3: 6) */
    float rope_local_theta; /* local layers' RoPE theta, no scaling (Gemma 3 rope_local_base_freq);
                              0 = local layers use rope_theta and rope_scaling as global ones */
} tr_config;

/* Fills zero fields with their defaults (see above) and checks every field. MU_ERR_INVALID
 * with a message naming the field when a value is out of range or inconsistent. */
int tr_config_validate(tr_config *cfg, mu_diag *diag);

/* ---------------------------------------------------------------------------------------
 * Model and base tensors
 * ------------------------------------------------------------------------------------- */

typedef struct tr_model tr_model;

/* A named tensor inside the model. Row-major, fp32 in `data`, or (a base model's 2-D weights
 * after tr_model_set_bf16(m, 1)) bf16 in `bf16` with data NULL; owned by the model, valid
 * until tr_model_free or the next tr_model_set_bf16. */
typedef struct {
    const char *name; /* Hugging Face / PEFT name, owned by the model */
    int ndim;         /* 1 or 2 */
    int64_t shape[4]; /* shape[0..ndim-1], as in the safetensors file */
    int64_t numel;    /* product of the shape */
    float *data;      /* numel floats to read or fill, or NULL */
    uint16_t *bf16;   /* numel bf16 values (tr_bf16.h) when stored so, else NULL */
} tr_tensor;

/* Validates cfg (a copy is kept, defaults filled) and allocates the base parameters in one
 * zeroed allocation. Returns NULL (and fills diag) on a bad config or out of memory. */
tr_model *tr_model_new(const tr_config *cfg, mu_diag *diag);
/* Frees the model, its LoRA parameters and activations. NULL is a no-op. */
void tr_model_free(tr_model *m);

/* The validated config (defaults filled in). */
const tr_config *tr_model_config(const tr_model *m);

/* Base tensors, in a fixed order, with their Hugging Face names and on-disk shapes:
 *
 * GPT-2 (Conv1D weights are [in, out], exactly as stored by transformers):
 *   transformer.wte.weight [V, C]          transformer.wpe.weight [max_pos, C]
 *   per layer l: transformer.h.l.ln_1.weight [C]  .ln_1.bias [C]
 *     transformer.h.l.attn.c_attn.weight [C, 3C]  .attn.c_attn.bias [3C]
 *     transformer.h.l.attn.c_proj.weight [C, C]   .attn.c_proj.bias [C]
 *     transformer.h.l.ln_2.weight [C]  .ln_2.bias [C]
 *     transformer.h.l.mlp.c_fc.weight [C, F]      .mlp.c_fc.bias [F]
 *     transformer.h.l.mlp.c_proj.weight [F, C]    .mlp.c_proj.bias [C]
 *   transformer.ln_f.weight [C]  transformer.ln_f.bias [C]
 *   lm_head.weight [V, C]                  only when tied_head == 0
 *   (Checkpoints saved from GPT2Model lack the "transformer." prefix, and some carry
 *   ".attn.bias"/".attn.masked_bias" buffers: the loader maps or skips those.)
 *
 * Llama family (nn.Linear weights are [out, in]):
 *   model.embed_tokens.weight [V, C]
 *   per layer l: model.layers.l.input_layernorm.weight [C]
 *     model.layers.l.self_attn.q_proj.weight [H*hd, C]   (.bias [H*hd] if qkv_bias)
 *     model.layers.l.self_attn.k_proj.weight [KV*hd, C]  (.bias [KV*hd] if qkv_bias)
 *     model.layers.l.self_attn.v_proj.weight [KV*hd, C]  (.bias [KV*hd] if qkv_bias)
 *     model.layers.l.self_attn.q_norm.weight [hd]        (if qk_norm)
 *     model.layers.l.self_attn.k_norm.weight [hd]        (if qk_norm)
 *     model.layers.l.self_attn.o_proj.weight [C, H*hd]   (.bias [C] if o_bias)
 *     model.layers.l.post_attention_layernorm.weight [C]
 *     model.layers.l.mlp.gate_proj.weight [F, C]
 *     model.layers.l.mlp.up_proj.weight [F, C]
 *     model.layers.l.mlp.down_proj.weight [C, F]
 *     Gemma: post_attention_layernorm is applied to the attention output, and
 *     model.layers.l.pre_feedforward_layernorm.weight [C] (before the MLP),
 *     model.layers.l.post_feedforward_layernorm.weight [C] (on the MLP output) follow it
 *   model.norm.weight [C]
 *   lm_head.weight [V, C]                  only when tied_head == 0
 *
 * Fill every tensor before the first forward; tensors start zeroed. */
int tr_model_base_count(const tr_model *m);
/* Describes base tensor i (0 <= i < count) into *out. MU_ERR_INVALID if i is out of range. */
int tr_model_base_tensor(tr_model *m, int i, tr_tensor *out);
/* Index of the base tensor called `name`, or MU_ERR_NOTFOUND. */
int tr_model_base_find(const tr_model *m, const char *name);
/* Number of base parameters (sum of numel over base tensors). */
int64_t tr_model_base_numel(const tr_model *m);

/* BF16 base (off by default): with on = 1 the frozen base's 2-D weights (every linear, the
 * embeddings and the LM head; norms and biases stay fp32) are kept in bf16, half the memory,
 * and their products run through tr_bf16_gemm (the activations rounded to bf16, exact
 * products, fp32 sums; AVX-512 BF16 where the CPU has it). LoRA, gradients, norms, the
 * loss and the optimizer stay fp32. Switching converts the tensors held (fp32 -> bf16 by
 * round to nearest even, bf16 -> fp32 exactly) and moves them: tr_tensor pointers taken
 * before are invalid. Fill a bf16 tensor through its `bf16` pointer (tr_hf_model_load_bf16
 * reads BF16 files without widening). MU_ERR_INVALID unless on is 0 or 1; MU_ERR_NOMEM
 * leaves the model as it was. */
int tr_model_set_bf16(tr_model *m, int on);
/* 1 if the base's 2-D weights are bf16, else 0. */
int tr_model_bf16(const tr_model *m);

/* The index of the first non-finite value (NaN, +-inf) of x[0..n), or n. */
int64_t tr_first_nonfinite(const float *x, int64_t n);
/* Checks that every base tensor (lora == 0) or every LoRA tensor (lora != 0, none attached:
 * nothing to check) of m holds only finite values. MU_OK, or MU_ERR_INVALID with "WHERE:
 * LoRA tensor 'NAME' has a non-finite value (nan) at index I of N". */
int tr_model_check_finite(tr_model *m, int lora, const char *where, mu_diag *diag);

/* ---------------------------------------------------------------------------------------
 * LoRA
 * ------------------------------------------------------------------------------------- */

/* Target modules, as bits. PEFT names for them (tr_lora_targets_parse/format):
 *   GPT-2: "c_attn", "c_fc"; "c_proj" = both TR_T_ATTN_C_PROJ and TR_T_MLP_C_PROJ (PEFT
 *          matches by suffix); "attn.c_proj" / "mlp.c_proj" select one of them.
 *   Llama: "q_proj" "k_proj" "v_proj" "o_proj" "gate_proj" "up_proj" "down_proj". */
enum {
    TR_T_C_ATTN = 1u << 0,
    TR_T_ATTN_C_PROJ = 1u << 1,
    TR_T_C_FC = 1u << 2,
    TR_T_MLP_C_PROJ = 1u << 3,
    TR_T_Q_PROJ = 1u << 4,
    TR_T_K_PROJ = 1u << 5,
    TR_T_V_PROJ = 1u << 6,
    TR_T_O_PROJ = 1u << 7,
    TR_T_GATE_PROJ = 1u << 8,
    TR_T_UP_PROJ = 1u << 9,
    TR_T_DOWN_PROJ = 1u << 10,
};
#define TR_T_GPT2_ALL (TR_T_C_ATTN | TR_T_ATTN_C_PROJ | TR_T_C_FC | TR_T_MLP_C_PROJ)
#define TR_T_LLAMA_ALL                                                                             \
    (TR_T_Q_PROJ | TR_T_K_PROJ | TR_T_V_PROJ | TR_T_O_PROJ | TR_T_GATE_PROJ | TR_T_UP_PROJ |       \
     TR_T_DOWN_PROJ)

typedef struct {
    int rank;         /* r >= 1 */
    float alpha;      /* lora_alpha; scaling = alpha / r, or alpha / sqrt(r) with rslora */
    int use_rslora;   /* PEFT use_rslora */
    unsigned targets; /* TR_T_* bits, all of this model's family; at least one */
    int freeze_a;     /* 1: A drawn from the seed and kept fixed, only B is trainable */
    float dropout;    /* lora_dropout in [0, 1): applied to the LoRA input while training */
} tr_lora_config;

/* Parses a comma- or space-separated list of PEFT module names (also "all-linear") for
 * `family` into TR_T_* bits. MU_ERR_INVALID naming the first unknown name. */
int tr_lora_targets_parse(tr_family family, const char *list, unsigned *targets, mu_diag *diag);
/* Writes the PEFT target_modules names of `targets` into out[0..max) (pointers to static
 * strings); returns how many, or MU_ERR_INVALID if max is too small.
 * GPT-2 with both c_proj bits yields "c_proj"; with one, "attn.c_proj" or "mlp.c_proj". */
int tr_lora_targets_names(tr_family family, unsigned targets, const char **out, int max);

/* Adds LoRA adapters to m (once per model: MU_ERR_STATE if already attached). A is drawn
 * kaiming-uniform as PEFT does (bound 1/sqrt(in_features)) from `seed` with this library's
 * own generator (a pure function of seed and tensor index, independent of threads); B is
 * zero. With freeze_a the same A is drawn, so orgs sharing a seed share A. `seed` also
 * seeds dropout masks. Overwrite A/B through tr_lora_tensor to start from a saved adapter.
 * MU_ERR_INVALID (diag names the field) on a bad lcfg; MU_ERR_NOMEM. */
int tr_lora_attach(tr_model *m, const tr_lora_config *lcfg, uint64_t seed, mu_diag *diag);
/* The attached LoRA config, or NULL if none. */
const tr_lora_config *tr_lora_get_config(const tr_model *m);
/* alpha / r, or alpha / sqrt(r) with rsLoRA. */
float tr_lora_scaling(const tr_lora_config *lcfg);

/* LoRA tensors (A and B of every adapted module, frozen A included), with PEFT names:
 *   GPT-2: base_model.model.transformer.h.l.attn.c_attn.lora_A.weight [r, in]
 *          base_model.model.transformer.h.l.attn.c_attn.lora_B.weight [out, r]
 *          (also attn.c_proj, mlp.c_fc, mlp.c_proj)
 *   Llama: base_model.model.model.layers.l.self_attn.q_proj.lora_A.weight [r, in]
 *          (also k_proj v_proj o_proj, mlp.gate_proj mlp.up_proj mlp.down_proj)
 * Order: layer 0..L-1; within a layer the TR_T_* bit order; A before B. 0 if none. */
int tr_lora_count(const tr_model *m);
int tr_lora_tensor(tr_model *m, int i, tr_tensor *out);
int tr_lora_find(const tr_model *m, const char *name);
/* Gradient of LoRA tensor i (numel floats, same shape, inside tr_lora_grad), or NULL when
 * that tensor is frozen (A in frozen-A mode) or i is out of range. */
float *tr_lora_tensor_grad(tr_model *m, int i);

/* The flat trainable LoRA vector: every trainable LoRA tensor, contiguous, in the
 * tr_lora_tensor order (frozen-A mode: only the B tensors). This is the vector the
 * federation sends deltas of. The pointer aliases the tensors' data: writing it changes
 * the model. Count is 0 (and pointers NULL) without LoRA. */
int64_t tr_lora_trainable_count(const tr_model *m);
float *tr_lora_trainable(tr_model *m);
/* Gradient of the loss w.r.t. that vector (same length and order), filled by backward. */
float *tr_lora_grad(tr_model *m);
/* Copies the trainable vector out / in. MU_ERR_INVALID unless n == trainable count. */
int tr_lora_get(const tr_model *m, float *out, int64_t n);
int tr_lora_set(tr_model *m, const float *in, int64_t n);

/* ---------------------------------------------------------------------------------------
 * Forward, backward, eval
 * ------------------------------------------------------------------------------------- */

/* Training-mode forward on B sequences of T tokens (T <= max_pos); inputs and targets are
 * int32 [B, T], row-major. Caches what backward needs (activation memory grows to fit the
 * largest B*T seen). With targets, *loss (if loss != NULL) is the mean cross-entropy over
 * the B*T positions whose target is not -1 (TR_DATA_IGNORE, tr_data.h: left out of the loss
 * and of the gradient; 0 when every target is). targets may be NULL (logits only; backward then
 * refuses). MU_ERR_INVALID (diag says which) for a token id outside [0, V), a bad B/T, or
 * logits beyond TR_MAX_LOGITS (only where they are materialised); MU_ERR_NOMEM. */
int tr_model_forward(tr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                     float *loss, mu_diag *diag);
/* Eval-mode forward: no dropout, nothing cached for backward. Same arguments. */
int tr_model_eval(tr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                  float *loss, mu_diag *diag);
/* Logits of the last forward or eval, [B, T, V] row-major, owned by the model, valid until
 * the next forward/eval. They are materialised only by a forward without targets or in
 * TR_CE_FULL mode (tr_model_set_ce_chunk); otherwise, and before the first forward, NULL. */
const float *tr_model_logits(const tr_model *m);

/* The LM head and cross-entropy of a forward with targets run over chunks of `rows` token
 * rows at a time (one chunk's logits, rows x V floats, reused as its dlogits), so the
 * B x T x V logits never exist; the gradient w.r.t. the final hidden states is computed in
 * the same pass (the head is frozen). rows 0 (the default): about 128 MB of logits per
 * chunk (2^25 / V rows, a multiple of 16, at least 16); TR_CE_FULL: the whole (B*T, V)
 * logits and dlogits, as before (tr_model_logits then holds them). The loss agrees with
 * TR_CE_FULL within fp32 rounding. MU_ERR_INVALID for rows < TR_CE_FULL. */
#define TR_CE_FULL (-1)
int tr_model_set_ce_chunk(tr_model *m, int rows);
/* The rows of one LM-head chunk for N rows under tr_model_set_ce_chunk(m, chunk): 0 for
 * TR_CE_FULL (no chunks), an explicit count capped at N, for 0 the 2^25 / V rule above. */
int tr_ce_rows(int chunk, int64_t N, int V);

/* The most logits (B * T * V, or chunk rows * V) a forward materialises: a forward without
 * targets or in TR_CE_FULL mode above it, or a chunk larger than it, is refused with
 * MU_ERR_INVALID before anything is allocated. A forward with targets in chunked mode (the
 * default) has no such limit: its B * T * V may exceed 2^31. */
#define TR_MAX_LOGITS ((int64_t)1 << 31)

/* Per-layer activation checkpointing (off by default): with on = 1 the training forward
 * keeps only each layer's input (the residual stream at block boundaries, L + 1 of (B*T, C))
 * and one layer's worth of activations; backward recomputes each layer's activations from
 * its input just before that layer's backward. One more forward of the layers below the top
 * one per step, and the activation memory of one layer instead of L (for Qwen2.5-0.5B at
 * 4 x 512, see bench/train/README.md). Gradients and losses are bit for bit those of the
 * path without checkpointing: the recomputation runs the same kernels in the same order on
 * the same inputs, dropout masks included. MU_ERR_INVALID unless on is 0 or 1. */
int tr_model_set_checkpointing(tr_model *m, int on);

/* 1 if per-layer activation checkpointing is on, else 0. */
int tr_model_checkpointing(const tr_model *m);

/* Training forwards done so far. Dropout masks are a pure function of (seed, this counter,
 * module, position), so saving it and restoring it with tr_model_set_forwards makes a
 * resumed run draw the same masks. */
uint64_t tr_model_get_forwards(const tr_model *m);
void tr_model_set_forwards(tr_model *m, uint64_t n);

/* Sets the LoRA gradient (tr_lora_grad) to zero. */
void tr_model_zero_grad(tr_model *m);
/* Backward of the last training forward; ADDS into tr_lora_grad (zero it first for a
 * plain step). MU_ERR_STATE without a preceding training forward with targets, or
 * without LoRA attached. */
int tr_model_backward(tr_model *m);

/* ---------------------------------------------------------------------------------------
 * Optimizers and clipping
 * ------------------------------------------------------------------------------------- */

typedef enum { TR_ADAMW = 1, TR_SGD = 2 } tr_optim_kind;

typedef struct {
    tr_optim_kind kind;
    /* Doubles, as Python passes them to torch: each is rounded to float where torch does. */
    double lr;
    double beta1, beta2; /* AdamW; PyTorch defaults 0.9, 0.999 */
    double eps;          /* AdamW; PyTorch default 1e-8 */
    double weight_decay; /* AdamW: decoupled (p *= 1 - lr*wd); SGD: added to the gradient */
    double momentum;     /* SGD; 0 = plain SGD (PyTorch semantics, dampening 0, no nesterov) */
    double grad_clip;    /* > 0: clip the global L2 norm to this (as clip_grad_norm_) */
} tr_optim_config;

/* PyTorch's defaults for `kind` with learning rate lr: AdamW betas 0.9/0.999, eps 1e-8;
 * weight_decay 0 (mutual's default, not torch's AdamW 0.01), momentum 0, no clipping. */
tr_optim_config tr_optim_defaults(tr_optim_kind kind, double lr);

typedef struct tr_optim tr_optim;

/* An optimizer for a parameter vector of n floats; state (moments) zeroed, step 0.
 * NULL (diag filled) on a bad config or out of memory. */
tr_optim *tr_optim_new(const tr_optim_config *cfg, int64_t n, mu_diag *diag);
void tr_optim_free(tr_optim *o); /* wipes the moments */
/* One update of params[0..n) with grad[0..n) (grad is clipped in place if grad_clip > 0),
 * exactly as torch.optim.AdamW / SGD compute it. Returns MU_ERR_INVALID if n differs from
 * the n given at creation. *grad_norm (may be NULL) receives the pre-clip global norm. */
int tr_optim_step(tr_optim *o, float *params, float *grad, int64_t n, float *grad_norm);
const tr_optim_config *tr_optim_get_config(const tr_optim *o);
/* Zeroes the moments and the step, as a newly created optimizer. */
void tr_optim_reset(tr_optim *o);

/* Optimizer state for save/resume: m1 = exp_avg (AdamW) or momentum_buffer (SGD), m2 =
 * exp_avg_sq (AdamW only; NULL for SGD). Each has tr_optim_state_len floats, owned by the
 * optimizer and writable (restore by writing into them). `step` = updates done so far
 * (AdamW bias correction uses it; SGD uses step > 0 to know the momentum buffer exists). */
int64_t tr_optim_state_len(const tr_optim *o);
float *tr_optim_m1(tr_optim *o);
float *tr_optim_m2(tr_optim *o);
int64_t tr_optim_get_step(const tr_optim *o);
void tr_optim_set_step(tr_optim *o, int64_t step);

/* Global L2 norm of g[0..n) (fixed-order double accumulation); if max_norm > 0 and the norm
 * exceeds it, scales g by max_norm / (norm + 1e-6) as torch's clip_grad_norm_. Returns the
 * pre-clip norm. */
float tr_grad_clip(float *g, int64_t n, double max_norm);

/* ---------------------------------------------------------------------------------------
 * One training step and threads
 * ------------------------------------------------------------------------------------- */

/* zero_grad, forward (training mode), backward, optimizer step (clipping per the optimizer
 * config) on the LoRA trainable vector. *loss (may be NULL) is the batch loss before the
 * update. Errors as tr_model_forward / tr_model_backward / tr_optim_step. */
int tr_train_step(tr_model *m, tr_optim *o, const int32_t *inputs, const int32_t *targets, int B,
                  int T, float *loss, mu_diag *diag);

/* Threads for OpenMP loops and OpenBLAS (process-wide). n <= 0 means the number of cores.
 * Call before training, not from inside a parallel region. */
void tr_threads_set(int n);
int tr_threads_get(void);

#endif
