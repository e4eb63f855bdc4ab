/* tr_forward.c - the model's forward and backward passes, built from the kernel pairs, and
 * the one allocation of activations they share. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tr_internal.h"
#include "tr_prof.h"

void tr_acts_free(tr_model *m)
{
    free(m->act_mem);
    free(m->acts);
    free(m->targets);
    free(m->logits);
    free(m->dlogits);
    m->logits = m->dlogits = NULL;
    m->cap_logits = m->cap_dlogits = 0;
    m->act_mem = NULL;
    m->acts = NULL;
    m->targets = NULL;
    m->cap_N = m->cap_BTT = 0;
    m->cap_T = m->cap_threads = 0;
    m->have_logits = m->can_backward = 0;
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

static int has_mods(const tr_model *m, int l, int lin)
{
    for (int j = 0; j < m->n_mods; j++)
        if (m->mods[j].layer == l && m->mods[j].lin == lin)
            return 1;
    return 0;
}

/* Whether the acts of layer l keep linear lin's input: with checkpointing one set of acts
 * serves every layer in turn, so it keeps what any layer needs. */
static int keeps_input(const tr_model *m, int l, int lin)
{
    for (int k = m->ckpt ? 0 : l; k < (m->ckpt ? m->L : l + 1); k++)
        if (has_mods(m, k, lin))
            return 1;
    return 0;
}

/* Rows per LM-head chunk for N rows: TR_CE_FULL 0 (no chunks), an explicit count capped at
 * N, auto about 2^25 floats (128 MB) of logits in multiples of 16 rows. */
int tr_ce_rows(int chunk, int64_t N, int V)
{
    if (chunk == TR_CE_FULL)
        return 0;
    int64_t r = chunk > 0 ? chunk : ((int64_t)1 << 25) / V / 16 * 16;
    r = r < 16 && chunk <= 0 ? 16 : r;
    return (int)(r < N ? r : N);
}

/* Grows *buf to hold rows * V floats. */
static int grow_rows(float **buf, int64_t *cap, int64_t rows, int V)
{
    if (rows <= *cap)
        return MU_OK;
    free(*buf);
    *cap = 0;
    *buf = malloc(sizeof(float) * (size_t)rows * (size_t)V);
    if (!*buf)
        return MU_ERR_NOMEM;
    *cap = rows;
    return MU_OK;
}

/* Lays out (or counts, with mem NULL) every activation buffer for N rows, BTT = B*T*T. */
static int64_t acts_layout(tr_model *m, float *mem, int64_t N, int64_t BTT, int T, int threads)
{
    tr_carver cv = {mem, 0};
    int C = m->C, R = m->has_lora ? m->lcfg.rank : 0;
    m->res = tr_carve(&cv, (int64_t)(m->L + 1) * N * C);
    /* A linear's input is kept for backward only when LoRA adapts that linear (dA needs it);
     * otherwise it lives in a scratch buffer shared by all layers. */
    float *sh_xn = tr_carve(&cv, N * C), *sh_atty = tr_carve(&cv, N * m->HD);
    float *sh_act = tr_carve(&cv, N * m->F);
    for (int l = 0; l < m->L; l++) {
        tr_acts *a = &m->acts[l];
        if (m->ckpt && l > 0) { /* one set, recomputed per layer by backward */
            *a = m->acts[0];
            continue;
        }
        a->xn1 = keeps_input(m, l, TR_LIN_QKV) ? tr_carve(&cv, N * C) : sh_xn;
        a->mean1 = tr_carve(&cv, N);
        a->rstd1 = tr_carve(&cv, N);
        a->qkv = tr_carve(&cv, N * m->QKV);
        a->qk_raw = m->cfg.qk_norm ? tr_carve(&cv, N * (m->H + m->KV) * m->hd) : NULL;
        a->qk_rstd = m->cfg.qk_norm ? tr_carve(&cv, N * (m->H + m->KV)) : NULL;
        a->att = tr_carve(&cv, BTT * m->H);
        a->atty = keeps_input(m, l, TR_LIN_O) ? tr_carve(&cv, N * m->HD) : sh_atty;
        a->res2 = tr_carve(&cv, N * C);
        a->xn2 = keeps_input(m, l, TR_LIN_UP) ? tr_carve(&cv, N * C) : sh_xn;
        a->mean2 = tr_carve(&cv, N);
        a->rstd2 = tr_carve(&cv, N);
        a->up = tr_carve(&cv, N * m->U);
        a->act = keeps_input(m, l, TR_LIN_DOWN) ? tr_carve(&cv, N * m->F) : sh_act;
        int g = m->cfg.gemma != 0;
        a->ao = g ? tr_carve(&cv, N * C) : NULL;
        a->rstd_pa = g ? tr_carve(&cv, N) : NULL;
        a->mo = g ? tr_carve(&cv, N * C) : NULL;
        a->rstd_pf = g ? tr_carve(&cv, N) : NULL;
    }
    int max_in = 1;
    for (int j = 0; j < m->n_mods; j++) {
        tr_lmod *x = &m->mods[j];
        x->h = tr_carve(&cv, N * R);
        x->xd = m->lcfg.dropout > 0.0f ? tr_carve(&cv, N * x->in) : NULL;
        max_in = imax(max_in, x->in);
    }
    m->xnf = tr_carve(&cv, N * C);
    m->meanf = tr_carve(&cv, N);
    m->rstdf = tr_carve(&cv, N);
    m->losses = tr_carve(&cv, N);
    m->ce_rows = tr_ce_rows(m->ce_chunk, N, m->V);
    m->ce_scratch = tr_carve(&cv, m->ce_rows ? (int64_t)m->ce_rows * m->V : 1);
    m->dxnf = tr_carve(&cv, m->ce_rows ? N * C : 1);
    m->dres = tr_carve(&cv, N * C);
    m->dbuf1 = tr_carve(&cv, N * imax(m->QKV, m->U));
    m->dbuf2 = tr_carve(&cv, N * imax(imax(C, m->HD), m->F));
    m->dh = tr_carve(&cv, TR_MAX_SLOTS * N * imax(R, 1));
    m->dxl = tr_carve(&cv, m->lcfg.dropout > 0.0f ? N * max_in : 1);
    m->attn_scratch = tr_carve(&cv, (int64_t)threads * tr_attention_scratch_len(T));
    m->rope_inv = tr_carve(&cv, m->hd / 2);
    m->rope_cos = tr_carve(&cv, (int64_t)T * (m->hd / 2));
    m->rope_sin = tr_carve(&cv, (int64_t)T * (m->hd / 2));
    int loc = m->cfg.rope_local_theta > 0.0f;
    m->rope_lcos = loc ? tr_carve(&cv, (int64_t)T * (m->hd / 2)) : NULL;
    m->rope_lsin = loc ? tr_carve(&cv, (int64_t)T * (m->hd / 2)) : NULL;
    m->dgem = tr_carve(&cv, m->cfg.gemma ? N * C : 1);
    return cv.off;
}

int tr_acts_reserve(tr_model *m, int B, int T)
{
    int64_t N = (int64_t)B * T, BTT = N * T;
    int threads = omp_get_max_threads();
    if (m->act_mem && N <= m->cap_N && BTT <= m->cap_BTT && T <= m->cap_T &&
        threads <= m->cap_threads)
        return MU_OK;
    if (m->act_mem) {
        N = N > m->cap_N ? N : m->cap_N;
        BTT = BTT > m->cap_BTT ? BTT : m->cap_BTT;
        T = imax(T, m->cap_T);
        threads = imax(threads, m->cap_threads);
    }
    tr_acts_free(m);
    m->acts = calloc((size_t)m->L, sizeof *m->acts);
    m->targets = malloc(sizeof(int32_t) * (size_t)N);
    if (!m->acts || !m->targets)
        goto out_free;
    int64_t n = acts_layout(m, NULL, N, BTT, T, threads);
    m->act_mem = malloc(sizeof(float) * (size_t)n);
    if (!m->act_mem)
        goto out_free;
    acts_layout(m, m->act_mem, N, BTT, T, threads);
    if (m->cfg.family == TR_LLAMA) {
        tr_rope_inv_freq(m->rope_inv, m->hd, m->cfg.rope_theta, &m->cfg.rope_scaling);
        tr_rope_tables(m->rope_cos, m->rope_sin, T, m->hd, m->rope_inv);
        if (m->rope_lcos) { /* Gemma 3's local layers: default RoPE at their own theta */
            tr_rope_inv_freq(m->rope_inv, m->hd, m->cfg.rope_local_theta, NULL);
            tr_rope_tables(m->rope_lcos, m->rope_lsin, T, m->hd, m->rope_inv);
        }
    }
    m->cap_N = N;
    m->cap_BTT = BTT;
    m->cap_T = T;
    m->cap_threads = threads;
    return MU_OK;
out_free:
    tr_acts_free(m);
    return MU_ERR_NOMEM;
}

static uint64_t mod_seed(const tr_model *m, int j)
{
    return tr_splitmix64(m->fwd_seed ^ tr_splitmix64(0x44524f50ull + (uint64_t)j));
}

/* The LoRA modules on linear `lin` of layer l as kernel slots; returns how many (<= 3). */
static int slots_of(tr_model *m, int l, int lin, tr_lora_slot *sl, int *has_dropout)
{
    int n = 0, N = m->cur_B * m->cur_T, R = m->has_lora ? m->lcfg.rank : 0;
    *has_dropout = 0;
    for (int j = 0; j < m->n_mods; j++) {
        tr_lmod *x = &m->mods[j];
        if (x->layer != l || x->lin != lin)
            continue;
        *has_dropout |= x->xd != NULL;
        sl[n] = (tr_lora_slot){.A = x->A,
                               .B = x->B,
                               .h = x->h,
                               .dh = m->dh + (int64_t)n * N * R,
                               .dA = x->dA,
                               .dB = x->dB,
                               .off = x->off,
                               .out = x->out};
        n++;
    }
    return n;
}

/* out (N, OUT) = init + inp . W + b (init NULL, or out itself to accumulate), plus every
 * LoRA module on this linear. */
static void linear_forward(tr_model *m, int l, int lin, float *out, const float *init,
                           const float *inp, int IN, int OUT, tr_weight w, const float *b,
                           int training)
{
    int N = m->cur_B * m->cur_T, drop;
    tr_lora_slot sl[TR_MAX_SLOTS];
    int ns = slots_of(m, l, lin, sl, &drop);
    double t0 = tr_prof_start();
    if (!(training && drop)) {
        tr_linear_forward_w(out, init, inp, w, b, N, IN, OUT, m->layout, sl, ns, m->lcfg.rank,
                            m->scale);
        tr_prof_stop(TR_PROF_GEMM, t0);
        return;
    }
    /* Dropout: each module sees its own masked copy of the input. */
    if (init && init != out)
        memcpy(out, init, sizeof(float) * (size_t)N * OUT);
    tr_matmul_forward_w(out, inp, w, b, N, IN, OUT, m->layout, init != NULL);
    tr_prof_stop(TR_PROF_GEMM, t0);
    t0 = tr_prof_start();
    for (int j = 0; j < m->n_mods; j++) {
        tr_lmod *x = &m->mods[j];
        if (x->layer != l || x->lin != lin)
            continue;
        tr_dropout_forward(x->xd, inp, m->lcfg.dropout, mod_seed(m, j), (int64_t)N * IN);
        tr_lora_forward(out + x->off, OUT, x->h, x->xd, x->A, x->B, m->scale, N, IN, x->out,
                        m->lcfg.rank);
    }
    tr_prof_stop(TR_PROF_LORA, t0);
}

/* Given dout (N, OUT): LoRA gradients of this linear's modules, and dinp (N, IN) = the input
 * gradient through base and adapters (skipped when dinp is NULL). */
static void linear_backward(tr_model *m, int l, int lin, float *dinp, const float *dout,
                            const float *inp, int IN, int OUT, tr_weight w)
{
    int N = m->cur_B * m->cur_T, drop;
    tr_lora_slot sl[TR_MAX_SLOTS];
    int ns = slots_of(m, l, lin, sl, &drop);
    double t0 = tr_prof_start();
    if (!drop) {
        tr_linear_backward_w(dinp, dout, inp, w, N, IN, OUT, m->layout, sl, ns, m->lcfg.rank,
                             m->scale);
        tr_prof_stop(TR_PROF_GEMM, t0);
        for (int j = 0, k = 0; m->pex && j < m->n_mods; j++)
            if (m->mods[j].layer == l && m->mods[j].lin == lin)
                tr_pex_module(m, &m->mods[j], dout + m->mods[j].off, OUT, sl[k++].dh, inp);
        return;
    }
    if (dinp)
        tr_matmul_backward_w(dinp, dout, w, N, IN, OUT, m->layout, 0);
    tr_prof_stop(TR_PROF_GEMM, t0);
    t0 = tr_prof_start();
    for (int j = 0; j < m->n_mods; j++) {
        tr_lmod *x = &m->mods[j];
        if (x->layer != l || x->lin != lin)
            continue;
        float *dx = NULL;
        if (dinp) {
            dx = m->dxl;
            memset(dx, 0, sizeof(float) * (size_t)N * IN);
        }
        tr_lora_backward(dx, x->dA, x->dB, m->dh, dout + x->off, OUT, x->xd, x->h, x->A, x->B,
                         m->scale, N, IN, x->out, m->lcfg.rank);
        if (m->pex)
            tr_pex_module(m, x, dout + x->off, OUT, m->dh, x->xd);
        if (dinp)
            tr_dropout_backward(dinp, m->dxl, m->lcfg.dropout, mod_seed(m, j), (int64_t)N * IN);
    }
    tr_prof_stop(TR_PROF_LORA, t0);
}

static void norm_forward(const tr_model *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b)
{
    int N = m->cur_B * m->cur_T;
    double t0 = tr_prof_start();
    if (m->cfg.family == TR_GPT2)
        tr_layernorm_forward(out, mean, rstd, inp, w, b, N, m->C, m->cfg.norm_eps);
    else
        tr_rmsnorm_forward(out, rstd, inp, w, N, m->C, m->cfg.norm_eps);
    tr_prof_stop(TR_PROF_NORM, t0);
}

static void norm_backward(const tr_model *m, float *dinp, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd)
{
    int N = m->cur_B * m->cur_T;
    double t0 = tr_prof_start();
    if (m->cfg.family == TR_GPT2)
        tr_layernorm_backward(dinp, dout, inp, w, mean, rstd, N, m->C);
    else
        tr_rmsnorm_backward(dinp, dout, inp, w, rstd, N, m->C);
    tr_prof_stop(TR_PROF_NORM, t0);
}

/* Layer l's RoPE tables: the local ones on a local layer when they exist. */
static void rope_of(const tr_model *m, int l, const float **cs, const float **sn)
{
    int loc = m->rope_lcos && tr_layer_local(&m->cfg, l);
    *cs = loc ? m->rope_lcos : m->rope_cos;
    *sn = loc ? m->rope_lsin : m->rope_sin;
}

/* Gemma's post-norm and residual: out = x + norm(inp) (inp kept for backward). */
static void post_norm_forward(const tr_model *m, float *out, float *rstd, const float *inp,
                              const float *w, const float *x)
{
    int64_t n = (int64_t)m->cur_B * m->cur_T * m->C;
    norm_forward(m, out, NULL, rstd, inp, w, NULL);
    double t0 = tr_prof_start();
    tr_residual_forward(out, out, x, n);
    tr_prof_stop(TR_PROF_NORM, t0);
}

static void block_forward(tr_model *m, int l, int training)
{
    int B = m->cur_B, T = m->cur_T, N = B * T, C = m->C, gem = m->cfg.gemma != 0;
    const tr_layer *y = &m->layers[l];
    tr_acts *a = &m->acts[l];
    const float *x = m->res + (int64_t)l * N * C;
    float *out = m->res + (int64_t)(l + 1) * N * C;
    norm_forward(m, a->xn1, a->mean1, a->rstd1, x, y->n1x, y->n1b);
    linear_forward(m, l, TR_LIN_QKV, a->qkv, NULL, a->xn1, C, m->QKV, tr_w(y->wqkv, y->wqkv16),
                   y->bqkv, training);
    double t0 = tr_prof_start();
    if (m->cfg.qk_norm)
        tr_qknorm_forward(a->qkv, a->qk_raw, a->qk_rstd, y->qnx, y->knx, N, m->H, m->KV, m->hd,
                          m->cfg.norm_eps);
    const float *cs, *sn;
    rope_of(m, l, &cs, &sn);
    if (m->cfg.family == TR_LLAMA)
        tr_rope_forward(a->qkv, cs, sn, B, T, m->H, m->KV, m->hd);
    tr_prof_stop(TR_PROF_NORM, t0);
    t0 = tr_prof_start();
    tr_attn_opts ao = tr_layer_attn(m, l);
    tr_attention_forward_opt(a->atty, a->att, a->qkv, B, T, m->H, m->KV, m->hd, &ao);
    tr_prof_stop(TR_PROF_ATTN, t0);
    if (gem) {
        linear_forward(m, l, TR_LIN_O, a->ao, NULL, a->atty, m->HD, C, tr_w(y->wo, y->wo16), y->bo,
                       training);
        post_norm_forward(m, a->res2, a->rstd_pa, a->ao, y->pax, x);
    } else {
        linear_forward(m, l, TR_LIN_O, a->res2, x, a->atty, m->HD, C, tr_w(y->wo, y->wo16), y->bo,
                       training);
    }
    norm_forward(m, a->xn2, a->mean2, a->rstd2, a->res2, y->n2x, y->n2b);
    linear_forward(m, l, TR_LIN_UP, a->up, NULL, a->xn2, C, m->U, tr_w(y->wup, y->wup16), y->bup,
                   training);
    t0 = tr_prof_start();
    if (m->cfg.family == TR_GPT2)
        tr_gelu_forward(a->act, a->up, (int64_t)N * m->F);
    else if (gem)
        tr_geglu_forward(a->act, a->up, N, m->F);
    else
        tr_swiglu_forward(a->act, a->up, N, m->F);
    tr_prof_stop(TR_PROF_NORM, t0);
    if (gem) {
        linear_forward(m, l, TR_LIN_DOWN, a->mo, NULL, a->act, m->F, C, tr_w(y->wdn, y->wdn16),
                       y->bdn, training);
        post_norm_forward(m, out, a->rstd_pf, a->mo, y->pfx, a->res2);
    } else {
        linear_forward(m, l, TR_LIN_DOWN, out, a->res2, a->act, m->F, C, tr_w(y->wdn, y->wdn16),
                       y->bdn, training);
    }
}

/* Gemma: the gradient of a post-norm's input (N, C) into m->dgem, from m->dres (the residual
 * keeps its own copy). Without Gemma m->dres itself. */
static const float *post_norm_backward(tr_model *m, const float *inp, const float *w,
                                       const float *rstd)
{
    if (!m->cfg.gemma)
        return m->dres;
    memset(m->dgem, 0, sizeof(float) * (size_t)m->cur_B * m->cur_T * m->C);
    norm_backward(m, m->dgem, m->dres, inp, w, NULL, rstd);
    return m->dgem;
}

/* m->dres holds d(output of block l); on return it holds d(input of block l) when need_dx. */
static void block_backward(tr_model *m, int l, int need_dx)
{
    int B = m->cur_B, T = m->cur_T, N = B * T, C = m->C;
    const tr_layer *y = &m->layers[l];
    const tr_acts *a = &m->acts[l];
    const float *x = m->res + (int64_t)l * N * C;
    /* Which input gradients anything below still needs. */
    int need_dqkv = need_dx || has_mods(m, l, TR_LIN_QKV);
    int need_dres2 = need_dqkv || has_mods(m, l, TR_LIN_O);
    int need_dup = need_dres2 || has_mods(m, l, TR_LIN_UP);
    float *dact = m->dbuf2, *dup = m->dbuf1, *dxn2 = m->dbuf2;
    const float *dmo = post_norm_backward(m, a->mo, y->pfx, a->rstd_pf);
    linear_backward(m, l, TR_LIN_DOWN, need_dup ? dact : NULL, dmo, a->act, m->F, C,
                    tr_w(y->wdn, y->wdn16));
    if (!need_dup)
        return;
    double t0 = tr_prof_start();
    if (m->cfg.family == TR_GPT2)
        tr_gelu_backward(dup, a->up, dact, (int64_t)N * m->F);
    else if (m->cfg.gemma)
        tr_geglu_backward(dup, dact, a->up, N, m->F);
    else
        tr_swiglu_backward(dup, dact, a->up, N, m->F);
    tr_prof_stop(TR_PROF_NORM, t0);
    linear_backward(m, l, TR_LIN_UP, need_dres2 ? dxn2 : NULL, dup, a->xn2, C, m->U,
                    tr_w(y->wup, y->wup16));
    if (!need_dres2)
        return;
    norm_backward(m, m->dres, dxn2, a->res2, y->n2x, a->mean2, a->rstd2);
    float *datty = m->dbuf2, *dqkv = m->dbuf1, *dxn1 = m->dbuf2;
    const float *dao = post_norm_backward(m, a->ao, y->pax, a->rstd_pa);
    linear_backward(m, l, TR_LIN_O, need_dqkv ? datty : NULL, dao, a->atty, m->HD, C,
                    tr_w(y->wo, y->wo16));
    if (!need_dqkv)
        return;
    t0 = tr_prof_start();
    tr_attn_opts ao = tr_layer_attn(m, l);
    tr_attention_backward_opt(dqkv, m->attn_scratch, datty, a->qkv, a->att, B, T, m->H, m->KV,
                              m->hd, &ao);
    tr_prof_stop(TR_PROF_ATTN, t0);
    t0 = tr_prof_start();
    const float *cs, *sn;
    rope_of(m, l, &cs, &sn);
    if (m->cfg.family == TR_LLAMA)
        tr_rope_backward(dqkv, cs, sn, B, T, m->H, m->KV, m->hd);
    if (m->cfg.qk_norm)
        tr_qknorm_backward(dqkv, a->qk_raw, a->qk_rstd, y->qnx, y->knx, N, m->H, m->KV, m->hd);
    tr_prof_stop(TR_PROF_NORM, t0);
    linear_backward(m, l, TR_LIN_QKV, need_dx ? dxn1 : NULL, dqkv, a->xn1, C, m->QKV,
                    tr_w(y->wqkv, y->wqkv16));
    if (need_dx)
        norm_backward(m, m->dres, dxn1, x, y->n1x, a->mean1, a->rstd1);
}

/* Ids in [lo, V): lo 0 for inputs, -1 for targets (TR_DATA_IGNORE: left out of the loss). */
static int check_tokens(const int32_t *tok, int64_t n, int lo, int V, const char *what, mu_diag *d)
{
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < lo || tok[i] >= V)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "%s: token id %d at position %lld is not in "
                               "[%d, vocab_size %d)",
                               what, (int)tok[i], (long long)i, lo, V);
    return MU_OK;
}

static int forward_impl(tr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                        float *loss, mu_diag *d, int training)
{
    m->can_backward = 0;
    if (B <= 0 || T <= 0 || T > m->cfg.max_pos || (int64_t)B * T > INT32_MAX / 4)
        return mu_diag_set(d, MU_ERR_INVALID, "forward: batch %d x seq %d (max_pos %d)", B, T,
                           m->cfg.max_pos);
    int64_t N = (int64_t)B * T;
    int64_t rows = !targets || m->ce_chunk == TR_CE_FULL ? N : tr_ce_rows(m->ce_chunk, N, m->V);
    if (rows * m->V > TR_MAX_LOGITS)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "forward: %lld x vocab %d = %lld logits (%s) exceed 2^31; only a "
                           "forward with targets in chunked mode runs batch %d x seq %d",
                           (long long)rows, m->V, (long long)(rows * m->V),
                           !targets                    ? "a forward without targets"
                           : m->ce_chunk == TR_CE_FULL ? "TR_CE_FULL"
                                                       : "one cross-entropy chunk",
                           B, T);
    int err = check_tokens(inputs, N, 0, m->V, "inputs", d);
    if (err < 0 || (targets && (err = check_tokens(targets, N, -1, m->V, "targets", d)) < 0))
        return err;
    if (tr_acts_reserve(m, B, T) < 0)
        return mu_diag_set(d, MU_ERR_NOMEM, "forward: out of memory for batch %d x seq %d", B, T);
    m->cur_B = B;
    m->cur_T = T;
    m->fwd_seed = tr_splitmix64(m->seed ^ tr_splitmix64(m->forwards));
    int C = m->C;
    double t0 = tr_prof_start();
    tr_encoder_forward_w(m->res, inputs, tr_w(m->wte, m->wte16), tr_w(m->wpe, m->wpe16), B, T, C);
    if (m->emb_scale > 0.0f) /* Gemma: hidden * normalizer, both fp32 */
        for (int64_t i = 0; i < N * C; i++)
            m->res[i] *= m->emb_scale;
    tr_norms_refresh(m);
    tr_prof_stop(TR_PROF_NORM, t0);
    for (int l = 0; l < m->L; l++)
        block_forward(m, l, training);
    const float *xL = m->res + (int64_t)m->L * N * C;
    norm_forward(m, m->xnf, m->meanf, m->rstdf, xL, m->nfx, m->nfb);
    int full = !targets || m->ce_rows == 0;
    if (full) { /* the logits themselves are wanted, or the unchunked path is chosen */
        if (grow_rows(&m->logits, &m->cap_logits, N, m->V) < 0)
            return mu_diag_set(d, MU_ERR_NOMEM, "forward: out of memory for %lld x %d logits",
                               (long long)N, m->V);
        t0 = tr_prof_start();
        tr_matmul_forward_w(m->logits, m->xnf, tr_w(m->head, m->head16), NULL, (int)N, C, m->V,
                            TR_W_OUT_IN, 0);
        if (m->cfg.final_softcap > 0.0f)
            tr_softcap_forward(m->logits, N * m->V, m->cfg.final_softcap);
        tr_prof_stop(TR_PROF_HEAD, t0);
        m->have_logits = 1;
    } else {
        m->have_logits = 0;
    }
    m->ce_full_loss = full;
    if (targets) {
        /* Chunked: the gradient w.r.t. xnf comes out of the same pass (the head is frozen),
         * so backward never needs the logits again. tr_head_ce moves its softmax time from
         * TR_PROF_HEAD to TR_PROF_CE. */
        t0 = tr_prof_start();
        float l = full ? tr_crossentropy_forward(m->losses, m->logits, targets, (int)N, m->V)
                       : tr_head_ce_cap_w(m->losses, training ? m->dxnf : NULL, NULL, m->ce_scratch,
                                          m->xnf, tr_w(m->head, m->head16), targets, (int)N, C,
                                          m->V, m->ce_rows, m->cfg.final_softcap);
        tr_prof_stop(full ? TR_PROF_CE : TR_PROF_HEAD, t0);
        if (loss)
            *loss = l;
        memcpy(m->targets, targets, sizeof(int32_t) * (size_t)N);
    }
    if (training) {
        m->forwards++;
        m->can_backward = targets != NULL;
    }
    return MU_OK;
}

int tr_model_forward(tr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                     float *loss, mu_diag *d)
{
    return forward_impl(m, inputs, targets, B, T, loss, d, 1);
}

int tr_model_eval(tr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                  float *loss, mu_diag *d)
{
    return forward_impl(m, inputs, targets, B, T, loss, d, 0);
}

int tr_model_set_ce_chunk(tr_model *m, int rows)
{
    if (rows < TR_CE_FULL)
        return MU_ERR_INVALID;
    if (rows != m->ce_chunk)
        tr_acts_free(m); /* the chunk buffer is carved with the activations */
    m->ce_chunk = rows;
    return MU_OK;
}

int tr_model_set_checkpointing(tr_model *m, int on)
{
    if (on != 0 && on != 1)
        return MU_ERR_INVALID;
    if (on != m->ckpt)
        tr_acts_free(m); /* the activations are laid out per layer or once */
    m->ckpt = on;
    return MU_OK;
}

int tr_model_checkpointing(const tr_model *m)
{
    return m->ckpt;
}

int tr_model_backward(tr_model *m)
{
    if (!m->can_backward || !m->has_lora)
        return MU_ERR_STATE;
    int N = m->cur_B * m->cur_T, C = m->C;
    const float *dxnf = m->dxnf;
    if (m->ce_full_loss) {
        if (grow_rows(&m->dlogits, &m->cap_dlogits, N, m->V) < 0)
            return MU_ERR_NOMEM;
        double t0 = tr_prof_start();
        tr_crossentropy_backward(m->dlogits, m->logits, m->targets, N, m->V);
        if (m->cfg.final_softcap > 0.0f) /* the logits held are the capped ones */
            tr_softcap_backward(m->dlogits, m->logits, (int64_t)N * m->V, m->cfg.final_softcap);
        tr_prof_stop(TR_PROF_CE, t0);
        t0 = tr_prof_start();
        /* d xnf (N, C) = dlogits . head */
        tr_matmul_backward_w(m->dbuf2, m->dlogits, tr_w(m->head, m->head16), N, C, m->V,
                             TR_W_OUT_IN, 0);
        tr_prof_stop(TR_PROF_HEAD, t0);
        dxnf = m->dbuf2;
    }
    double t0 = tr_prof_start();
    memset(m->dres, 0, sizeof(float) * (size_t)N * C);
    tr_prof_stop(TR_PROF_NORM, t0);
    norm_backward(m, m->dres, dxnf, m->res + (int64_t)m->L * N * C, m->nfx, m->meanf, m->rstdf);
    /* Attention scratch was sized for the team of the forward; a larger team set since then
     * (tr_threads_set between forward and backward) is held back to that size. */
    int team = omp_get_max_threads();
    if (team > m->cap_threads)
        omp_set_num_threads(m->cap_threads);
    for (int l = m->L - 1; l >= m->lowest_layer; l--) {
        /* Checkpointing: the layer's activations again from its saved input, by the same
         * kernels in the same order (same dropout masks), so the same bits as when they
         * were kept; the top layer's are still there from the forward. */
        if (m->ckpt && l < m->L - 1)
            block_forward(m, l, 1);
        block_backward(m, l, l > m->lowest_layer);
    }
    if (team > m->cap_threads)
        omp_set_num_threads(team);
    m->can_backward = 0;
    return MU_OK;
}
