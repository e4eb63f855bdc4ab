/* tr_gguf_llama.c - a tr_model (and its LoRA) as llama.cpp's "llama", "qwen2", "qwen3"
 * (Llama family) or "gpt2" architecture: metadata, tensor names, the Q/K row permutation
 * and GPT-2's Conv1D transpose. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_gguf_internal.h"

/* llama.cpp's architecture for c: Qwen3 by its q/k norms, Qwen2 by q/k/v biases without an
 * o bias (model_type qwen2; a Llama with attention_bias has both), else Llama. Qwen2 and
 * Qwen3 rotate as Hugging Face does (GGML's NEOX RoPE), so only "llama" permutes rows. */
static const char *arch_of(const tr_config *c)
{
    if (c->family == TR_GPT2)
        return "gpt2";
    return c->qk_norm ? "qwen3" : c->qkv_bias && !c->o_bias ? "qwen2" : "llama";
}

int tr_gguf_check(const tr_model *m, mu_diag *d)
{
    const tr_config *c = tr_model_config(m);
    if (c->gemma)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                           "gguf: Gemma %d is not exported (llama.cpp's gemma%d architecture, "
                           "with its norms, softcaps and sliding window keys, is not written)",
                           c->gemma, c->gemma);
    if (c->o_bias)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                           "gguf: attention_bias (biases on q, k, v and o) is not exported");
    /* llama.cpp takes Llama 3's per-frequency scaling as the rope_freqs tensor (llama only) */
    if (c->rope_scaling.type != TR_ROPE_DEFAULT &&
        (c->rope_scaling.type != TR_ROPE_LLAMA3 || strcmp(arch_of(c), "llama")))
        return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                           "gguf: rope_scaling other than llama3 (on a Llama) is not exported");
    return 0;
}

/* Hugging Face -> GGUF names: whole-model tensors, then a block's modules (after
 * "model.layers.N." or "transformer.h.N."), per family. */
static const char *const LLAMA_TOP[][2] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};
static const char *const LLAMA_BLOCK[][2] = {
    {"input_layernorm", "attn_norm"},    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},      {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},       {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
};
static const char *const GPT2_TOP[][2] = {
    {"transformer.wte.weight", "token_embd.weight"},
    {"transformer.wpe.weight", "position_embd.weight"},
    {"transformer.ln_f.weight", "output_norm.weight"},
    {"transformer.ln_f.bias", "output_norm.bias"},
    {"lm_head.weight", "output.weight"},
};
/* index 0 and 3 are the layer norms; the others HF's Conv1D modules, weights [in, out] */
static const char *const GPT2_BLOCK[][2] = {
    {"ln_1", "attn_norm"}, {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
    {"ln_2", "ffn_norm"},  {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"},
};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The GGUF name of a base tensor ("model.layers.3.self_attn.q_proj.weight" ->
 * "blk.3.attn_q.weight"), in *perm the heads whose rows are permuted (0: none), and in
 * *transpose whether the stored weight is [in, out] (GPT-2's Conv1D) and so is transposed
 * to GGML's [out, in] rows. */
static int gguf_name(const tr_config *c, const char *hf, char *out, size_t cap, int *perm,
                     int *transpose)
{
    int gpt2 = c->family == TR_GPT2, permute = !strcmp(arch_of(c), "llama");
    const char *const(*top)[2] = gpt2 ? GPT2_TOP : LLAMA_TOP;
    const char *const(*map)[2] = gpt2 ? GPT2_BLOCK : LLAMA_BLOCK;
    size_t ntop = gpt2 ? N_OF(GPT2_TOP) : N_OF(LLAMA_TOP);
    size_t nmap = gpt2 ? N_OF(GPT2_BLOCK) : N_OF(LLAMA_BLOCK);
    *perm = *transpose = 0;
    for (size_t i = 0; i < ntop; i++)
        if (!strcmp(hf, top[i][0]))
            return snprintf(out, cap, "%s", top[i][1]) >= (int)cap;
    int l, k = 0;
    char mod[64];
    if (sscanf(hf, gpt2 ? "transformer.h.%d.%63[a-z_0-9.]%n" : "model.layers.%d.%63[a-z_.]%n", &l,
               mod, &k) != 2 ||
        hf[k])
        return -1;
    size_t ml = strlen(mod);
    const char *kind = ml > 7 && !strcmp(mod + ml - 7, ".weight") ? "weight"
                       : ml > 5 && !strcmp(mod + ml - 5, ".bias") ? "bias"
                                                                  : NULL;
    if (!kind)
        return -1;
    mod[ml - strlen(kind) - 1] = '\0';
    for (size_t i = 0; i < nmap; i++) {
        if (strcmp(mod, map[i][0]))
            continue;
        if (permute && i == 1)
            *perm = c->n_head;
        if (permute && i == 2)
            *perm = c->n_kv_head;
        *transpose = gpt2 && i != 0 && i != 3 && kind[0] == 'w';
        return snprintf(out, cap, "blk.%d.%s.%s", l, map[i][1], kind) >= (int)cap;
    }
    return -1;
}

/* The base tensor a LoRA tensor adapts: "base_model.model.X.lora_A.weight" -> "X.weight". */
static int lora_base_name(const char *lora, char *out, size_t cap, int *is_b)
{
    static const char pre[] = "base_model.model.", sa[] = ".lora_A.weight", sb[] = ".lora_B.weight";
    size_t n = strlen(lora), pl = sizeof pre - 1, sl = sizeof sa - 1;
    if (n <= pl + sl || strncmp(lora, pre, pl))
        return -1;
    *is_b = !strcmp(lora + n - sl, sb);
    if (!*is_b && strcmp(lora + n - sl, sa))
        return -1;
    return snprintf(out, cap, "%.*s.weight", (int)(n - pl - sl), lora + pl) >= (int)cap;
}

static void model_kv(tr_gbuf *b, const tr_config *c, const char *name, tr_gguf_type type)
{
    const char *arch = arch_of(c);
    char k[96];
#define ARCH_KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, (s)), k)
    tr_gb_kv_str(b, "general.architecture", arch);
    tr_gb_kv_str(b, "general.name", name && *name ? name : "mutual-export");
    tr_gb_kv_u32(b, "general.file_type", type == TR_GGUF_F16 ? 1 : 0);
    tr_gb_kv_u32(b, "general.alignment", TR_GGUF_ALIGNMENT);
    tr_gb_kv_u32(b, ARCH_KEY("context_length"), (uint32_t)c->max_pos);
    tr_gb_kv_u32(b, ARCH_KEY("embedding_length"), (uint32_t)c->d_model);
    tr_gb_kv_u32(b, ARCH_KEY("block_count"), (uint32_t)c->n_layer);
    tr_gb_kv_u32(b, ARCH_KEY("feed_forward_length"), (uint32_t)c->d_ff);
    tr_gb_kv_u32(b, ARCH_KEY("attention.head_count"), (uint32_t)c->n_head);
    tr_gb_kv_u32(b, ARCH_KEY("vocab_size"), (uint32_t)c->vocab_size);
    if (c->family == TR_GPT2) { /* learned positions, LayerNorm */
        tr_gb_kv_f32(b, ARCH_KEY("attention.layer_norm_epsilon"), c->norm_eps);
        return;
    }
    tr_gb_kv_u32(b, ARCH_KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
    tr_gb_kv_u32(b, ARCH_KEY("attention.key_length"), (uint32_t)c->head_dim);
    tr_gb_kv_u32(b, ARCH_KEY("attention.value_length"), (uint32_t)c->head_dim);
    tr_gb_kv_u32(b, ARCH_KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    tr_gb_kv_f32(b, ARCH_KEY("rope.freq_base"), c->rope_theta);
    tr_gb_kv_f32(b, ARCH_KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
#undef ARCH_KEY
}

/* LoRA tensors A and B of the module adapting base tensor `hf`, or -1. */
static int lora_for(tr_model *m, const char *hf, tr_tensor *A, tr_tensor *B)
{
    char base[TR_GGUF_NAME_MAX * 2];
    int is_b;
    for (int i = 0; i + 1 < tr_lora_count(m); i += 2) {
        tr_lora_tensor(m, i, A);
        tr_lora_tensor(m, i + 1, B);
        if (!lora_base_name(A->name, base, sizeof base, &is_b) && !is_b && !strcmp(base, hf))
            return 0;
    }
    return -1;
}

/* rope_freqs (hd/2): llama.cpp divides frequency i by factor i, so factor i is the unscaled
 * inv_freq over the scaled one, both as the engine computes them (tr_rope_inv_freq). */
static float *rope_factors(const tr_config *c)
{
    int half = c->head_dim / 2;
    float *f = malloc((size_t)half * 2 * sizeof *f);
    if (!f)
        return NULL;
    tr_rope_scaling none = {0};
    tr_rope_inv_freq(f, c->head_dim, c->rope_theta, &none);
    tr_rope_inv_freq(f + half, c->head_dim, c->rope_theta, &c->rope_scaling);
    for (int i = 0; i < half; i++)
        f[i] = (float)((double)f[i] / (double)f[half + i]);
    return f;
}

int tr_gguf_write_model(tr_model *m, const char *tok_dir, const tr_gguf_opts *opts,
                        const char *path, mu_diag *d)
{
    int rc = tr_gguf_check(m, d);
    if (rc)
        return rc;
    const tr_lora_config *lc = tr_lora_get_config(m);
    if (opts->merge && !lc)
        return mu_diag_set(d, MU_ERR_STATE, "gguf: --merge without a LoRA adapter");
    const tr_config *c = tr_model_config(m);
    int n = tr_model_base_count(m), llama3 = c->rope_scaling.type == TR_ROPE_LLAMA3;
    tr_gten *t = calloc((size_t)n + 1, sizeof *t);
    float *freqs = llama3 ? rope_factors(c) : NULL;
    tr_gbuf kv = {0};
    if (!t || (llama3 && !freqs)) {
        free(t);
        free(freqs);
        return mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory");
    }
    if (llama3)
        t[n++] = (tr_gten){.name = "rope_freqs.weight",
                           .ndim = 1,
                           .ne = {c->head_dim / 2, 1},
                           .type = TR_GGUF_F32,
                           .src = freqs};
    model_kv(&kv, c, opts->name, opts->type);
    if ((rc = tr_gguf_tokenizer_kv(&kv, tok_dir, c->vocab_size, d)))
        goto out;
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor x, A, B;
        tr_model_base_tensor(m, i, &x);
        if (!x.data) {
            rc = mu_diag_set(d, MU_ERR_UNSUPPORTED,
                             "gguf: base tensor '%s' is held in bf16 (tr_model_set_bf16); export "
                             "from a model loaded in fp32",
                             x.name);
            goto out;
        }
        if (gguf_name(c, x.name, t[i].name, sizeof t[i].name, &t[i].perm_heads, &t[i].transpose)) {
            rc = mu_diag_set(d, MU_ERR_UNSUPPORTED, "gguf: no GGUF name for tensor '%s'", x.name);
            goto out;
        }
        t[i].ndim = x.ndim;
        t[i].ne[0] = x.ndim == 2 && !t[i].transpose ? x.shape[1] : x.shape[0];
        t[i].ne[1] = x.ndim == 2 ? x.shape[t[i].transpose ? 1 : 0] : 1;
        t[i].type = x.ndim == 2 ? opts->type : TR_GGUF_F32;
        t[i].src = x.data;
        t[i].hd = c->head_dim;
        if (opts->merge && !lora_for(m, x.name, &A, &B)) {
            t[i].A = A.data;
            t[i].B = B.data;
            t[i].r = lc->rank;
            t[i].scale = tr_lora_scaling(lc);
        }
    }
    rc = tr_gguf_write_file(path, &kv, t, (size_t)n, d);
out:
    tr_gb_free(&kv);
    free(freqs);
    free(t);
    return rc;
}

int tr_gguf_write_lora(tr_model *m, const char *name, const char *path, mu_diag *d)
{
    int rc = tr_gguf_check(m, d);
    if (rc)
        return rc;
    const tr_lora_config *lc = tr_lora_get_config(m);
    if (!lc)
        return mu_diag_set(d, MU_ERR_STATE, "gguf: the model has no LoRA adapter");
    const tr_config *c = tr_model_config(m);
    int n = tr_lora_count(m);
    tr_gten *t = calloc((size_t)n, sizeof *t);
    tr_gbuf kv = {0};
    if (!t)
        return mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory");
    tr_gb_kv_str(&kv, "general.architecture", arch_of(c));
    tr_gb_kv_str(&kv, "general.type", "adapter");
    tr_gb_kv_str(&kv, "general.name", name && *name ? name : "mutual-export");
    tr_gb_kv_u32(&kv, "general.alignment", TR_GGUF_ALIGNMENT);
    tr_gb_kv_str(&kv, "adapter.type", "lora");
    /* llama.cpp scales by alpha / r: the alpha that gives this adapter's scaling */
    tr_gb_kv_f32(&kv, "adapter.lora.alpha", tr_lora_scaling(lc) * (float)lc->rank);
    for (int i = 0; i < n; i++) {
        tr_tensor x;
        char base[TR_GGUF_NAME_MAX * 2], gg[TR_GGUF_NAME_MAX];
        int is_b, perm, transpose;
        tr_lora_tensor(m, i, &x);
        if (lora_base_name(x.name, base, sizeof base, &is_b) ||
            gguf_name(c, base, gg, sizeof gg, &perm, &transpose) ||
            snprintf(t[i].name, sizeof t[i].name, "%s.lora_%c", gg, is_b ? 'b' : 'a') >=
                (int)sizeof t[i].name) {
            rc = mu_diag_set(d, MU_ERR_UNSUPPORTED, "gguf: no GGUF name for LoRA tensor '%s'",
                             x.name);
            goto out;
        }
        t[i].ndim = 2;
        t[i].ne[0] = x.shape[1];
        t[i].ne[1] = x.shape[0];
        t[i].type = TR_GGUF_F32;
        t[i].src = x.data;
        t[i].perm_heads = is_b ? perm : 0; /* B's rows are the projection's output rows */
        t[i].hd = c->head_dim;
    }
    rc = tr_gguf_write_file(path, &kv, t, (size_t)n, d);
out:
    tr_gb_free(&kv);
    free(t);
    return rc;
}
