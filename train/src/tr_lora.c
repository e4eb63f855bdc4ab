/* tr_lora.c - LoRA adapters: target names, attaching (PEFT's init), the PEFT tensor table and
 * the flat trainable vector the federation exchanges. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_internal.h"

typedef struct {
    unsigned bit;
    tr_family family;
    const char *peft;   /* name in target_modules */
    const char *module; /* path inside a block, for tensor names */
} target_info;

static const target_info TARGETS[] = {
    {TR_T_C_ATTN, TR_GPT2, "c_attn", "attn.c_attn"},
    {TR_T_ATTN_C_PROJ, TR_GPT2, "attn.c_proj", "attn.c_proj"},
    {TR_T_C_FC, TR_GPT2, "c_fc", "mlp.c_fc"},
    {TR_T_MLP_C_PROJ, TR_GPT2, "mlp.c_proj", "mlp.c_proj"},
    {TR_T_Q_PROJ, TR_LLAMA, "q_proj", "self_attn.q_proj"},
    {TR_T_K_PROJ, TR_LLAMA, "k_proj", "self_attn.k_proj"},
    {TR_T_V_PROJ, TR_LLAMA, "v_proj", "self_attn.v_proj"},
    {TR_T_O_PROJ, TR_LLAMA, "o_proj", "self_attn.o_proj"},
    {TR_T_GATE_PROJ, TR_LLAMA, "gate_proj", "mlp.gate_proj"},
    {TR_T_UP_PROJ, TR_LLAMA, "up_proj", "mlp.up_proj"},
    {TR_T_DOWN_PROJ, TR_LLAMA, "down_proj", "mlp.down_proj"},
};
#define N_TARGETS ((int)(sizeof TARGETS / sizeof TARGETS[0]))

static unsigned family_all(tr_family f)
{
    return f == TR_GPT2 ? TR_T_GPT2_ALL : TR_T_LLAMA_ALL;
}

static unsigned lookup_target(tr_family f, const char *name)
{
    if (strcmp(name, "all-linear") == 0)
        return family_all(f);
    if (f == TR_GPT2 && strcmp(name, "c_proj") == 0)
        return TR_T_ATTN_C_PROJ | TR_T_MLP_C_PROJ;
    for (int i = 0; i < N_TARGETS; i++) {
        if (TARGETS[i].family != f)
            continue;
        /* PEFT matches a target key against the end of the module path. */
        if (strcmp(name, TARGETS[i].peft) == 0 || strcmp(name, TARGETS[i].module) == 0)
            return TARGETS[i].bit;
    }
    return 0;
}

int tr_lora_targets_parse(tr_family family, const char *list, unsigned *targets, mu_diag *diag)
{
    unsigned bits = 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char name[64];
        size_t n = 0;
        while (p[n] && p[n] != ',' && !isspace((unsigned char)p[n]))
            n++;
        if (n >= sizeof name)
            return mu_diag_set(diag, MU_ERR_INVALID, "targets: name too long: %.*s...", 20, p);
        memcpy(name, p, n);
        name[n] = '\0';
        unsigned b = lookup_target(family, name);
        if (!b)
            return mu_diag_set(diag, MU_ERR_INVALID, "targets: unknown module '%s' for %s", name,
                               family == TR_GPT2 ? "gpt2" : "llama");
        bits |= b;
        p += n;
    }
    if (!bits)
        return mu_diag_set(diag, MU_ERR_INVALID, "targets: empty list");
    *targets = bits;
    return MU_OK;
}

int tr_lora_targets_names(tr_family family, unsigned targets, const char **out, int max)
{
    int n = 0;
    unsigned both = TR_T_ATTN_C_PROJ | TR_T_MLP_C_PROJ;
    for (int i = 0; i < N_TARGETS; i++) {
        const target_info *t = &TARGETS[i];
        if (t->family != family || !(targets & t->bit))
            continue;
        const char *name = t->peft;
        if (family == TR_GPT2 && (targets & both) == both) {
            if (t->bit == TR_T_MLP_C_PROJ)
                continue;
            if (t->bit == TR_T_ATTN_C_PROJ)
                name = "c_proj";
        }
        if (n >= max)
            return MU_ERR_INVALID;
        out[n++] = name;
    }
    return n;
}

float tr_lora_scaling(const tr_lora_config *l)
{
    return l->use_rslora ? l->alpha / sqrtf((float)l->rank) : l->alpha / (float)l->rank;
}

/* Where module `bit` sits in a block of m: which linear, its input width, output slice. */
static void module_shape(const tr_model *m, unsigned bit, tr_lmod *o)
{
    int C = m->C, F = m->F, HD = m->HD, KVD = m->KV * m->hd;
    switch (bit) {
    case TR_T_C_ATTN:
        *o = (tr_lmod){.lin = TR_LIN_QKV, .in = C, .out = 3 * C, .off = 0};
        break;
    case TR_T_ATTN_C_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_O, .in = C, .out = C, .off = 0};
        break;
    case TR_T_C_FC:
        *o = (tr_lmod){.lin = TR_LIN_UP, .in = C, .out = F, .off = 0};
        break;
    case TR_T_MLP_C_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_DOWN, .in = F, .out = C, .off = 0};
        break;
    case TR_T_Q_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_QKV, .in = C, .out = HD, .off = 0};
        break;
    case TR_T_K_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_QKV, .in = C, .out = KVD, .off = HD};
        break;
    case TR_T_V_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_QKV, .in = C, .out = KVD, .off = HD + KVD};
        break;
    case TR_T_O_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_O, .in = HD, .out = C, .off = 0};
        break;
    case TR_T_GATE_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_UP, .in = C, .out = F, .off = 0};
        break;
    case TR_T_UP_PROJ:
        *o = (tr_lmod){.lin = TR_LIN_UP, .in = C, .out = F, .off = F};
        break;
    default: /* TR_T_DOWN_PROJ */
        *o = (tr_lmod){.lin = TR_LIN_DOWN, .in = F, .out = C, .off = 0};
        break;
    }
    o->bit = bit;
}

static const target_info *target_of(unsigned bit)
{
    for (int i = 0; i < N_TARGETS; i++)
        if (TARGETS[i].bit == bit)
            return &TARGETS[i];
    return &TARGETS[0];
}

/* A (R, in) kaiming-uniform with a = sqrt(5), as PEFT's reset_lora_parameters: the bound is
 * gain * sqrt(3 / fan_in) with gain sqrt(2 / (1 + 5)), i.e. 1 / sqrt(in). Element e of
 * module j is a pure function of (seed, j, e). */
static void init_a(float *A, int64_t n, int in, uint64_t seed, int j)
{
    float bound = 1.0f / sqrtf((float)in);
    uint64_t s = tr_splitmix64(seed ^ 0x4c6f5241ull) ^ tr_splitmix64((uint64_t)j + 1);
    for (int64_t e = 0; e < n; e++) {
        uint64_t r = tr_splitmix64(s + (uint64_t)e * 0x9E3779B97F4A7C15ull);
        float u = (float)(r >> 40) * (1.0f / 16777216.0f); /* [0, 1) */
        A[e] = (2.0f * u - 1.0f) * bound;
    }
}

int tr_lora_attach(tr_model *m, const tr_lora_config *lc, uint64_t seed, mu_diag *d)
{
    if (m->has_lora)
        return mu_diag_set(d, MU_ERR_STATE, "lora: adapters are already attached");
    unsigned fam = family_all(m->cfg.family);
    if (lc->rank < 1 || lc->rank > 4096)
        return mu_diag_set(d, MU_ERR_INVALID, "lora: rank %d out of range [1, 4096]", lc->rank);
    if (!(lc->alpha > 0.0f) || !isfinite(lc->alpha))
        return mu_diag_set(d, MU_ERR_INVALID, "lora: alpha must be positive");
    if (!lc->targets || (lc->targets & ~fam))
        return mu_diag_set(d, MU_ERR_INVALID, "lora: targets 0x%x do not fit this model family",
                           lc->targets);
    if (!(lc->dropout >= 0.0f && lc->dropout < 1.0f))
        return mu_diag_set(d, MU_ERR_INVALID, "lora: dropout must be in [0, 1)");
    int per_layer = __builtin_popcount(lc->targets);
    int n_mods = per_layer * m->L, R = lc->rank;
    tr_lmod *mods = calloc((size_t)n_mods, sizeof *mods);
    tr_entry *ents = calloc((size_t)n_mods * 2, sizeof *ents);
    if (!mods || !ents)
        goto out_nomem;
    int64_t n_a = 0, n_b = 0;
    int j = 0;
    for (int l = 0; l < m->L; l++)
        for (int t = 0; t < N_TARGETS; t++) {
            unsigned bit = TARGETS[t].bit;
            if (!(lc->targets & bit))
                continue;
            module_shape(m, bit, &mods[j]);
            mods[j].layer = l;
            n_a += (int64_t)R * mods[j].in;
            n_b += (int64_t)mods[j].out * R;
            j++;
        }
    int64_t n_train = lc->freeze_a ? n_b : n_a + n_b;
    float *mem = calloc((size_t)(n_a + n_b), sizeof(float));
    float *grad = calloc((size_t)n_train, sizeof(float));
    if (!mem || !grad) {
        free(mem);
        free(grad);
        goto out_nomem;
    }
    /* Trainable block first (A, B per module; or only B), frozen A after it. */
    int64_t at = 0, frozen = n_b;
    for (j = 0; j < n_mods; j++) {
        tr_lmod *x = &mods[j];
        int64_t na = (int64_t)R * x->in, nb = (int64_t)x->out * R;
        if (lc->freeze_a) {
            x->A = mem + frozen;
            frozen += na;
            x->dA = NULL;
        } else {
            x->A = mem + at;
            x->dA = grad + at;
            at += na;
        }
        x->B = mem + at;
        x->dB = grad + at;
        at += nb;
        init_a(x->A, na, x->in, seed, j);
        const char *mod = target_of(x->bit)->module;
        const char *pre = m->cfg.family == TR_GPT2 ? "base_model.model.transformer.h"
                                                   : "base_model.model.model.layers";
        tr_entry *ea = &ents[2 * j], *eb = &ents[2 * j + 1];
        if (snprintf(ea->name, sizeof ea->name, "%s.%d.%s.lora_A.weight", pre, x->layer, mod) >=
                (int)sizeof ea->name ||
            snprintf(eb->name, sizeof eb->name, "%s.%d.%s.lora_B.weight", pre, x->layer, mod) >=
                (int)sizeof eb->name)
            ea->name[0] = eb->name[0] = '\0'; /* cannot happen: names are ~70 bytes */
        ea->ndim = eb->ndim = 2;
        ea->shape[0] = R;
        ea->shape[1] = x->in;
        ea->data = x->A;
        eb->shape[0] = x->out;
        eb->shape[1] = R;
        eb->data = x->B;
    }
    tr_acts_free(m); /* activation layout depends on the modules */
    m->mods = mods;
    m->n_mods = n_mods;
    m->lowest_layer = 0; /* every target applies to every layer */
    m->lora = ents;
    m->n_lora = 2 * n_mods;
    m->lora_mem = mem;
    m->lora_grad = grad;
    m->n_train = n_train;
    m->n_lora_total = n_a + n_b;
    m->lcfg = *lc;
    m->scale = tr_lora_scaling(lc);
    m->seed = seed;
    m->has_lora = 1;
    return MU_OK;
out_nomem:
    free(mods);
    free(ents);
    return mu_diag_set(d, MU_ERR_NOMEM, "lora: out of memory");
}

const tr_lora_config *tr_lora_get_config(const tr_model *m)
{
    return m->has_lora ? &m->lcfg : NULL;
}

int tr_lora_count(const tr_model *m)
{
    return m->n_lora;
}

int tr_lora_tensor(tr_model *m, int i, tr_tensor *out)
{
    if (i < 0 || i >= m->n_lora)
        return MU_ERR_INVALID;
    tr_entry_describe(&m->lora[i], out);
    return MU_OK;
}

int tr_lora_find(const tr_model *m, const char *name)
{
    for (int i = 0; i < m->n_lora; i++)
        if (strcmp(m->lora[i].name, name) == 0)
            return i;
    return MU_ERR_NOTFOUND;
}

float *tr_lora_tensor_grad(tr_model *m, int i)
{
    if (i < 0 || i >= m->n_lora)
        return NULL;
    const float *p = m->lora[i].data;
    if (p < m->lora_mem || p >= m->lora_mem + m->n_train)
        return NULL; /* frozen block */
    return m->lora_grad + (p - m->lora_mem);
}

int64_t tr_lora_trainable_count(const tr_model *m)
{
    return m->n_train;
}

float *tr_lora_trainable(tr_model *m)
{
    return m->has_lora ? m->lora_mem : NULL;
}

float *tr_lora_grad(tr_model *m)
{
    return m->has_lora ? m->lora_grad : NULL;
}

int tr_lora_get(const tr_model *m, float *out, int64_t n)
{
    if (!m->has_lora || n != m->n_train)
        return MU_ERR_INVALID;
    memcpy(out, m->lora_mem, sizeof(float) * (size_t)n);
    return MU_OK;
}

int tr_lora_set(tr_model *m, const float *in, int64_t n)
{
    if (!m->has_lora || n != m->n_train)
        return MU_ERR_INVALID;
    memcpy(m->lora_mem, in, sizeof(float) * (size_t)n);
    return MU_OK;
}

void tr_model_zero_grad(tr_model *m)
{
    if (m->has_lora)
        memset(m->lora_grad, 0, sizeof(float) * (size_t)m->n_train);
}
