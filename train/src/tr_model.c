/* tr_model.c - config checks, the one allocation of base parameters, and the table of base
 * tensors by their Hugging Face names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_bf16.h"
#include "tr_internal.h"

static int positive(double x)
{
    return x > 0.0 && isfinite(x);
}

static int rope_scaling_validate(const tr_rope_scaling *r, mu_diag *d)
{
    switch (r->type) {
    case TR_ROPE_DEFAULT:
        return MU_OK;
    case TR_ROPE_LINEAR:
    case TR_ROPE_DYNAMIC:
        if (!positive(r->factor))
            return mu_diag_set(d, MU_ERR_INVALID, "config: rope_scaling factor must be positive");
        return MU_OK;
    case TR_ROPE_LLAMA3:
        if (!positive(r->factor) || !positive(r->low_freq_factor) ||
            !positive(r->high_freq_factor) || r->orig_max_pos <= 0)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "config: rope_scaling llama3 needs positive factor, "
                               "low_freq_factor, high_freq_factor and "
                               "original_max_position_embeddings");
        if (!(r->high_freq_factor > r->low_freq_factor))
            return mu_diag_set(d, MU_ERR_INVALID,
                               "config: rope_scaling high_freq_factor %g must be greater than "
                               "low_freq_factor %g",
                               r->high_freq_factor, r->low_freq_factor);
        return MU_OK;
    }
    return mu_diag_set(d, MU_ERR_INVALID, "config: unknown rope_scaling type %d", (int)r->type);
}

static int nonneg(float x)
{
    return x >= 0.0f && isfinite(x);
}

/* The Gemma fields: all zero unless gemma is 2 or 3. */
static int gemma_validate(tr_config *c, mu_diag *d)
{
    if (c->gemma != 0 && c->gemma != 2 && c->gemma != 3)
        return mu_diag_set(d, MU_ERR_INVALID, "config: gemma must be 0, 2 or 3 (got %d)", c->gemma);
    if (!nonneg(c->attn_scalar) || !nonneg(c->attn_softcap) || !nonneg(c->final_softcap) ||
        !nonneg(c->rope_local_theta) || c->sliding_window < 0 || c->sliding_pattern < 0)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "config: attn_scalar, softcaps, rope_local_theta, sliding_window "
                           "and sliding_pattern must be finite and not negative");
    if (!c->gemma && (c->attn_scalar > 0.0f || c->attn_softcap > 0.0f || c->final_softcap > 0.0f ||
                      c->sliding_window || c->sliding_pattern || c->rope_local_theta > 0.0f))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "config: attn_scalar, softcaps, sliding window and rope_local_theta "
                           "are Gemma-only");
    if ((c->sliding_window > 0) != (c->sliding_pattern > 0))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "config: sliding_window and sliding_pattern are set together");
    return MU_OK;
}

int tr_config_validate(tr_config *c, mu_diag *d)
{
    if (c->family != TR_GPT2 && c->family != TR_LLAMA)
        return mu_diag_set(d, MU_ERR_INVALID, "config: unknown model family %d", (int)c->family);
    if (c->vocab_size <= 0 || c->d_model <= 0 || c->n_layer <= 0 || c->n_head <= 0 ||
        c->max_pos <= 0)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "config: vocab_size, d_model, n_layer, n_head and max_pos must be "
                           "positive (got %d, %d, %d, %d, %d)",
                           c->vocab_size, c->d_model, c->n_layer, c->n_head, c->max_pos);
    if (c->n_kv_head == 0)
        c->n_kv_head = c->n_head;
    if (c->head_dim == 0) {
        if (c->d_model % c->n_head)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "config: d_model %d is not a multiple of n_head %d", c->d_model,
                               c->n_head);
        c->head_dim = c->d_model / c->n_head;
    }
    if (c->n_kv_head < 0 || c->n_head % c->n_kv_head)
        return mu_diag_set(d, MU_ERR_INVALID, "config: n_head %d is not a multiple of n_kv_head %d",
                           c->n_head, c->n_kv_head);
    if (c->norm_eps <= 0.0f || !isfinite(c->norm_eps))
        return mu_diag_set(d, MU_ERR_INVALID, "config: norm_eps must be positive");
    if (c->family == TR_GPT2) {
        if (c->d_ff == 0)
            c->d_ff = 4 * c->d_model;
        if (c->n_kv_head != c->n_head || c->head_dim * c->n_head != c->d_model)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "config: GPT-2 needs n_kv_head == n_head and head_dim == "
                               "d_model / n_head");
        if (c->qkv_bias || c->o_bias || c->qk_norm || c->rope_scaling.type != TR_ROPE_DEFAULT ||
            c->gemma)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "config: qkv_bias/o_bias/qk_norm/rope_scaling/gemma are "
                               "Llama-family only");
    } else {
        if (c->rope_theta == 0.0f)
            c->rope_theta = 10000.0f;
        if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
            return mu_diag_set(d, MU_ERR_INVALID, "config: rope_theta must be positive");
        if (c->head_dim % 2)
            return mu_diag_set(d, MU_ERR_INVALID, "config: head_dim %d must be even for RoPE",
                               c->head_dim);
        if (c->qk_norm && c->head_dim > TR_QKNORM_MAX_HD)
            return mu_diag_set(d, MU_ERR_INVALID, "config: head_dim %d above %d with q/k norms",
                               c->head_dim, TR_QKNORM_MAX_HD);
        int rc = rope_scaling_validate(&c->rope_scaling, d);
        if (rc || (rc = gemma_validate(c, d)))
            return rc;
    }
    if (c->d_ff <= 0)
        return mu_diag_set(d, MU_ERR_INVALID, "config: d_ff (intermediate_size) must be positive");
    if ((c->qk_norm != 0 && c->qk_norm != 1) || (c->qkv_bias != 0 && c->qkv_bias != 1) ||
        (c->o_bias != 0 && c->o_bias != 1))
        return mu_diag_set(d, MU_ERR_INVALID, "config: qkv_bias, o_bias and qk_norm are 0 or 1");
    if (c->tied_head != 0 && c->tied_head != 1)
        return mu_diag_set(d, MU_ERR_INVALID, "config: tied_head must be 0 or 1");
    /* Keep every buffer index inside int64 and every GEMM dimension inside int. */
    int64_t big = (int64_t)c->vocab_size * c->d_model;
    int64_t qkv = (int64_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim;
    if (big > INT32_MAX || qkv > INT32_MAX / 4 || (int64_t)c->d_ff * 2 > INT32_MAX / 4 ||
        (int64_t)c->d_model * c->d_ff > INT32_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "config: model too large for this build");
    return MU_OK;
}

static void add_entry(tr_model *m, float *data, uint16_t *d16, int64_t d0, int64_t d1,
                      const char *fmt, int l, const char *suffix)
{
    if (!m->base) {
        m->n_base++;
        return;
    }
    tr_entry *e = &m->base[m->n_base++];
    char stem[TR_NAME_MAX];
    /* Names are short by construction (at most ~60 bytes); a cut name would not match. */
    int k = snprintf(stem, sizeof stem, fmt, l);
    if (k < 0 || snprintf(e->name, sizeof e->name, "%s%s", stem, suffix) >= (int)sizeof e->name)
        e->name[0] = '\0';
    e->ndim = d1 ? 2 : 1;
    e->shape[0] = d0;
    e->shape[1] = d1;
    e->data = data;
    e->bf16 = d16;
}

/* The fp32 and bf16 blocks being carved (bases NULL: counting). */
typedef struct {
    tr_carver f;
    uint16_t *h;
    int64_t hoff;
} carvers;

/* A 2-D weight of n values: fp32 from the float block, or in bf16 mode bf16 (*h) from the
 * bf16 block, 64-byte aligned. */
static float *carve_w(const tr_model *m, carvers *cv, int64_t n, uint16_t **h)
{
    *h = NULL;
    if (!m->bf16)
        return tr_carve(&cv->f, n);
    int64_t at = cv->hoff;
    cv->hoff += (n + 31) & ~(int64_t)31;
    *h = cv->h ? cv->h + at : NULL;
    return NULL;
}

static float *fat(float *p, int64_t off)
{
    return p ? p + off : NULL;
}

static uint16_t *hat(uint16_t *p, int64_t off)
{
    return p ? p + off : NULL;
}

/* Lays out (or, with m->params NULL, counts) every base tensor; fills the entry table when
 * m->base is set. The same walk both sizes the blocks and carves them, so they cannot drift.
 * Returns the floats of the fp32 block; m->n_params16 gets the bf16 block's length. */
static int64_t layout(tr_model *m)
{
    carvers cv = {{m->params, 0}, m->params16, 0};
    tr_carver *f = &cv.f;
    int C = m->C, V = m->V, F = m->F, HD = m->HD, KVD = m->KV * m->hd;
    const tr_config *c = &m->cfg;
    m->n_base = 0;
    if (c->family == TR_GPT2) {
        m->wte = carve_w(m, &cv, (int64_t)V * C, &m->wte16);
        add_entry(m, m->wte, m->wte16, V, C, "transformer.wte.weight", 0, "");
        m->wpe = carve_w(m, &cv, (int64_t)c->max_pos * C, &m->wpe16);
        add_entry(m, m->wpe, m->wpe16, c->max_pos, C, "transformer.wpe.weight", 0, "");
        for (int l = 0; l < m->L; l++) {
            tr_layer *y = &m->layers[l];
            const char *p = "transformer.h.%d.";
            y->n1w = tr_carve(f, C);
            add_entry(m, y->n1w, NULL, C, 0, p, l, "ln_1.weight");
            y->n1b = tr_carve(f, C);
            add_entry(m, y->n1b, NULL, C, 0, p, l, "ln_1.bias");
            y->wqkv = carve_w(m, &cv, (int64_t)C * 3 * C, &y->wqkv16);
            add_entry(m, y->wqkv, y->wqkv16, C, 3 * C, p, l, "attn.c_attn.weight");
            y->bqkv = tr_carve(f, 3 * C);
            add_entry(m, y->bqkv, NULL, 3 * C, 0, p, l, "attn.c_attn.bias");
            y->wo = carve_w(m, &cv, (int64_t)C * C, &y->wo16);
            add_entry(m, y->wo, y->wo16, C, C, p, l, "attn.c_proj.weight");
            y->bo = tr_carve(f, C);
            add_entry(m, y->bo, NULL, C, 0, p, l, "attn.c_proj.bias");
            y->n2w = tr_carve(f, C);
            add_entry(m, y->n2w, NULL, C, 0, p, l, "ln_2.weight");
            y->n2b = tr_carve(f, C);
            add_entry(m, y->n2b, NULL, C, 0, p, l, "ln_2.bias");
            y->wup = carve_w(m, &cv, (int64_t)C * F, &y->wup16);
            add_entry(m, y->wup, y->wup16, C, F, p, l, "mlp.c_fc.weight");
            y->bup = tr_carve(f, F);
            add_entry(m, y->bup, NULL, F, 0, p, l, "mlp.c_fc.bias");
            y->wdn = carve_w(m, &cv, (int64_t)F * C, &y->wdn16);
            add_entry(m, y->wdn, y->wdn16, F, C, p, l, "mlp.c_proj.weight");
            y->bdn = tr_carve(f, C);
            add_entry(m, y->bdn, NULL, C, 0, p, l, "mlp.c_proj.bias");
        }
        m->nfw = tr_carve(f, C);
        add_entry(m, m->nfw, NULL, C, 0, "transformer.ln_f.weight", 0, "");
        m->nfb = tr_carve(f, C);
        add_entry(m, m->nfb, NULL, C, 0, "transformer.ln_f.bias", 0, "");
    } else {
        m->wte = carve_w(m, &cv, (int64_t)V * C, &m->wte16);
        add_entry(m, m->wte, m->wte16, V, C, "model.embed_tokens.weight", 0, "");
        m->wpe = NULL;
        m->wpe16 = NULL;
        for (int l = 0; l < m->L; l++) {
            tr_layer *y = &m->layers[l];
            const char *p = "model.layers.%d.";
            y->n1w = tr_carve(f, C);
            add_entry(m, y->n1w, NULL, C, 0, p, l, "input_layernorm.weight");
            /* q, k, v back to back: one (QKV, C) weight for one GEMM. */
            y->wqkv = carve_w(m, &cv, (int64_t)m->QKV * C, &y->wqkv16);
            int64_t ok = (int64_t)HD * C, ov = ok + (int64_t)KVD * C;
            y->bqkv = c->qkv_bias ? tr_carve(f, m->QKV) : NULL;
            float *bq = y->bqkv, *bk = fat(bq, HD), *bv = fat(bq, HD + KVD);
            add_entry(m, y->wqkv, y->wqkv16, HD, C, p, l, "self_attn.q_proj.weight");
            if (c->qkv_bias)
                add_entry(m, bq, NULL, HD, 0, p, l, "self_attn.q_proj.bias");
            add_entry(m, fat(y->wqkv, ok), hat(y->wqkv16, ok), KVD, C, p, l,
                      "self_attn.k_proj.weight");
            if (c->qkv_bias)
                add_entry(m, bk, NULL, KVD, 0, p, l, "self_attn.k_proj.bias");
            add_entry(m, fat(y->wqkv, ov), hat(y->wqkv16, ov), KVD, C, p, l,
                      "self_attn.v_proj.weight");
            if (c->qkv_bias)
                add_entry(m, bv, NULL, KVD, 0, p, l, "self_attn.v_proj.bias");
            y->qnw = y->knw = NULL;
            if (c->qk_norm) {
                y->qnw = tr_carve(f, m->hd);
                add_entry(m, y->qnw, NULL, m->hd, 0, p, l, "self_attn.q_norm.weight");
                y->knw = tr_carve(f, m->hd);
                add_entry(m, y->knw, NULL, m->hd, 0, p, l, "self_attn.k_norm.weight");
            }
            y->wo = carve_w(m, &cv, (int64_t)C * HD, &y->wo16);
            add_entry(m, y->wo, y->wo16, C, HD, p, l, "self_attn.o_proj.weight");
            y->bo = c->o_bias ? tr_carve(f, C) : NULL;
            if (c->o_bias)
                add_entry(m, y->bo, NULL, C, 0, p, l, "self_attn.o_proj.bias");
            y->n1b = y->n2b = y->bup = y->bdn = NULL;
            y->paw = y->pfw = NULL;
            if (c->gemma) { /* post-attention norm on the attention output, then pre-MLP */
                y->paw = tr_carve(f, C);
                add_entry(m, y->paw, NULL, C, 0, p, l, "post_attention_layernorm.weight");
                y->n2w = tr_carve(f, C);
                add_entry(m, y->n2w, NULL, C, 0, p, l, "pre_feedforward_layernorm.weight");
            } else {
                y->n2w = tr_carve(f, C);
                add_entry(m, y->n2w, NULL, C, 0, p, l, "post_attention_layernorm.weight");
            }
            y->wup = carve_w(m, &cv, (int64_t)2 * F * C, &y->wup16);
            int64_t ou = (int64_t)F * C;
            add_entry(m, y->wup, y->wup16, F, C, p, l, "mlp.gate_proj.weight");
            add_entry(m, fat(y->wup, ou), hat(y->wup16, ou), F, C, p, l, "mlp.up_proj.weight");
            y->wdn = carve_w(m, &cv, (int64_t)C * F, &y->wdn16);
            add_entry(m, y->wdn, y->wdn16, C, F, p, l, "mlp.down_proj.weight");
            if (c->gemma) {
                y->pfw = tr_carve(f, C);
                add_entry(m, y->pfw, NULL, C, 0, p, l, "post_feedforward_layernorm.weight");
            }
        }
        m->nfw = tr_carve(f, C);
        add_entry(m, m->nfw, NULL, C, 0, "model.norm.weight", 0, "");
        m->nfb = NULL;
    }
    if (c->tied_head) {
        m->head = m->wte;
        m->head16 = m->wte16;
    } else {
        m->head = carve_w(m, &cv, (int64_t)V * C, &m->head16);
        add_entry(m, m->head, m->head16, V, C, "lm_head.weight", 0, "");
    }
    m->n_params16 = cv.hoff;
    return f->off;
}

tr_model *tr_model_new(const tr_config *cfg, mu_diag *diag)
{
    tr_config c = *cfg;
    if (tr_config_validate(&c, diag) < 0)
        return NULL;
    tr_model *m = calloc(1, sizeof *m);
    if (!m)
        goto out_nomem;
    m->cfg = c;
    m->C = c.d_model;
    m->L = c.n_layer;
    m->H = c.n_head;
    m->KV = c.n_kv_head;
    m->hd = c.head_dim;
    m->HD = c.n_head * c.head_dim;
    m->QKV = (c.n_head + 2 * c.n_kv_head) * c.head_dim;
    m->F = c.d_ff;
    m->U = c.family == TR_GPT2 ? c.d_ff : 2 * c.d_ff;
    m->V = c.vocab_size;
    m->layout = c.family == TR_GPT2 ? TR_W_IN_OUT : TR_W_OUT_IN;
    m->layers = calloc((size_t)m->L, sizeof *m->layers);
    if (!m->layers)
        goto out_free_model;
    m->n_params = layout(m); /* counting pass */
    int n_base = m->n_base;
    m->base = calloc((size_t)n_base, sizeof *m->base);
    m->params = calloc((size_t)m->n_params, sizeof(float));
    if (!m->base || !m->params)
        goto out_free_model;
    layout(m); /* carving pass */
    if (c.gemma) {
        m->emb_scale = (float)sqrt((double)c.d_model); /* HF: a tensor of the embedding dtype */
        m->w1p = malloc(sizeof(float) * (size_t)(m->L * (4 * m->C + 2 * m->hd) + m->C));
        if (!m->w1p)
            goto out_free_model;
    }
    tr_norms_refresh(m);
    return m;
out_free_model:
    tr_model_free(m);
out_nomem:
    mu_diag_set(diag, MU_ERR_NOMEM, "model: out of memory for %d layers of width %d", c.n_layer,
                c.d_model);
    return NULL;
}

void tr_model_free(tr_model *m)
{
    if (!m)
        return;
    tr_acts_free(m);
    free(m->lora_mem);
    free(m->lora_grad);
    free(m->lora);
    free(m->mods);
    free(m->params);
    free(m->params16);
    free(m->base);
    free(m->layers);
    free(m->w1p);
    free(m);
}

/* dst = 1 + w over n values (fp32, as HF's 1.0 + weight.float()); returns dst, or NULL for
 * a NULL w. */
static const float *one_plus(float **dst, const float *w, int n)
{
    if (!w)
        return NULL;
    float *d = *dst;
    for (int i = 0; i < n; i++)
        d[i] = 1.0f + w[i];
    *dst += n;
    return d;
}

void tr_norms_refresh(tr_model *m)
{
    float *p = m->w1p;
    for (int l = 0; l < m->L; l++) {
        tr_layer *y = &m->layers[l];
        if (!m->cfg.gemma) {
            y->n1x = y->n1w, y->qnx = y->qnw, y->knx = y->knw;
            y->pax = y->paw, y->n2x = y->n2w, y->pfx = y->pfw;
            continue;
        }
        y->n1x = one_plus(&p, y->n1w, m->C);
        y->qnx = one_plus(&p, y->qnw, m->hd);
        y->knx = one_plus(&p, y->knw, m->hd);
        y->pax = one_plus(&p, y->paw, m->C);
        y->n2x = one_plus(&p, y->n2w, m->C);
        y->pfx = one_plus(&p, y->pfw, m->C);
    }
    m->nfx = m->cfg.gemma ? one_plus(&p, m->nfw, m->C) : m->nfw;
}

int tr_layer_local(const tr_config *c, int l)
{
    return c->sliding_window > 0 && c->sliding_pattern > 0 && (l + 1) % c->sliding_pattern != 0;
}

tr_attn_opts tr_layer_attn(const tr_model *m, int l)
{
    const tr_config *c = &m->cfg;
    tr_attn_opts o = {0.0f, c->attn_softcap, tr_layer_local(c, l) ? c->sliding_window : 0};
    if (c->gemma)
        o.scale = (float)(1.0 / sqrt((double)(c->attn_scalar > 0.0f ? c->attn_scalar
                                                                    : (float)c->head_dim)));
    return o;
}

/* Entry `from` into entry `to` (same name and shape), converting between fp32 and bf16. */
static void convert_entry(const tr_entry *from, tr_entry *to)
{
    int64_t n = from->shape[0] * (from->ndim > 1 ? from->shape[1] : 1);
    if (from->data && to->data)
        memcpy(to->data, from->data, sizeof(float) * (size_t)n);
    else if (from->data)
        tr_bf16_round(to->bf16, from->data, n);
    else if (to->data)
        tr_bf16_widen(to->data, from->bf16, n);
    else
        memcpy(to->bf16, from->bf16, sizeof(uint16_t) * (size_t)n);
}

int tr_model_set_bf16(tr_model *m, int on)
{
    if (on != 0 && on != 1)
        return MU_ERR_INVALID;
    if (on == m->bf16)
        return MU_OK;
    float *old_f = m->params;
    uint16_t *old_h = m->params16;
    tr_entry *old_base = m->base;
    int64_t old_n = m->n_params, old_n16 = m->n_params16;
    m->bf16 = on;
    m->params = NULL;
    m->params16 = NULL;
    m->base = NULL;
    int64_t n = layout(m); /* counting pass (clears the tensor pointers) */
    m->base = calloc((size_t)m->n_base, sizeof *m->base);
    m->params = calloc((size_t)(n ? n : 1), sizeof(float));
    m->params16 = m->n_params16 ? calloc((size_t)m->n_params16, sizeof(uint16_t)) : NULL;
    if (!m->base || !m->params || (m->n_params16 && !m->params16)) {
        free(m->base);
        free(m->params);
        free(m->params16);
        m->bf16 = !on;
        m->params = old_f;
        m->params16 = old_h;
        m->base = old_base;
        m->n_params = old_n;
        layout(m); /* the old pointers back */
        m->n_params16 = old_n16;
        tr_norms_refresh(m);
        return MU_ERR_NOMEM;
    }
    m->n_params = n;
    layout(m);
    for (int i = 0; i < m->n_base; i++)
        convert_entry(&old_base[i], &m->base[i]);
    free(old_f);
    free(old_h);
    free(old_base);
    tr_norms_refresh(m);
    return MU_OK;
}

int tr_model_bf16(const tr_model *m)
{
    return m->bf16;
}

const tr_config *tr_model_config(const tr_model *m)
{
    return &m->cfg;
}

static void entry_to_tensor(const tr_entry *e, tr_tensor *out)
{
    out->name = e->name;
    out->ndim = e->ndim;
    out->shape[0] = e->shape[0];
    out->shape[1] = e->ndim > 1 ? e->shape[1] : 0;
    out->shape[2] = out->shape[3] = 0;
    out->numel = e->shape[0] * (e->ndim > 1 ? e->shape[1] : 1);
    out->data = e->data;
    out->bf16 = e->bf16;
}

int tr_model_base_count(const tr_model *m)
{
    return m->n_base;
}

int tr_model_base_tensor(tr_model *m, int i, tr_tensor *out)
{
    if (i < 0 || i >= m->n_base)
        return MU_ERR_INVALID;
    entry_to_tensor(&m->base[i], out);
    return MU_OK;
}

int tr_model_base_find(const tr_model *m, const char *name)
{
    for (int i = 0; i < m->n_base; i++)
        if (strcmp(m->base[i].name, name) == 0)
            return i;
    return MU_ERR_NOTFOUND;
}

int64_t tr_model_base_numel(const tr_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_base; i++)
        n += m->base[i].shape[0] * (m->base[i].ndim > 1 ? m->base[i].shape[1] : 1);
    return n;
}

const float *tr_model_logits(const tr_model *m)
{
    return m->have_logits ? m->logits : NULL;
}

uint64_t tr_model_get_forwards(const tr_model *m)
{
    return m->forwards;
}

void tr_model_set_forwards(tr_model *m, uint64_t n)
{
    m->forwards = n;
}

void tr_entry_describe(const tr_entry *e, tr_tensor *out)
{
    entry_to_tensor(e, out);
}

/* One pass over the floats; the bit test (exponent all ones) holds under -ffinite-math-only
 * too and lets the compiler vectorise the block loop. */
int64_t tr_first_nonfinite(const float *x, int64_t n)
{
    enum { BLOCK = 1024 };
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t e = n - b < BLOCK ? n : b + BLOCK;
        uint32_t bad = 0;
        for (int64_t i = b; i < e; i++) {
            uint32_t u;
            memcpy(&u, &x[i], sizeof u);
            bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
        }
        if (bad)
            for (int64_t i = b; i < e; i++)
                if (!isfinite(x[i]))
                    return i;
    }
    return n;
}

int tr_model_check_finite(tr_model *m, int lora, const char *where, mu_diag *diag)
{
    int n = lora ? tr_lora_count(m) : tr_model_base_count(m);
    for (int i = 0; i < n; i++) {
        tr_tensor t;
        int rc = lora ? tr_lora_tensor(m, i, &t) : tr_model_base_tensor(m, i, &t);
        if (rc)
            return mu_diag_set(diag, rc, "%s: tensor %d", where, i);
        int64_t bad =
            t.data ? tr_first_nonfinite(t.data, t.numel) : tr_bf16_first_nonfinite(t.bf16, t.numel);
        if (bad < t.numel)
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "%s: %s tensor '%s' has a non-finite value (%g) at index %lld of "
                               "%lld",
                               where, lora ? "LoRA" : "base", t.name,
                               t.data ? (double)t.data[bad] : (double)tr_bf16_to_f32(t.bf16[bad]),
                               (long long)bad, (long long)t.numel);
    }
    return MU_OK;
}
