/* tr_generate.c - the inference forward with a KV cache (tr_generate.h): the training
 * kernels run on the rows being fed, attention reads the cached keys and values. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tr_bf16.h"
#include "tr_generate.h"
#include "tr_internal.h"
#include "tr_vec.h"

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define GEN_PAR_MIN (1 << 18)
/* Column blocks of the few-row products are multiples of this many floats (64 bytes). */
#define GEN_COL_QUANTUM 16

struct tr_gen {
    tr_model *m;
    int max_ctx, pos, threads;
    int KVD;                      /* KV * hd: one cached row */
    float *kc, *vc;               /* (L, max_ctx, KVD) keys after q/k norm and RoPE, values */
    float *mem;                   /* the scratch below, one allocation */
    float *x;                     /* (CH, C) residual stream of the rows being fed */
    float *xn, *mean, *rstd;      /* (CH, C), (CH), (CH) */
    float *qkv;                   /* (CH, QKV) */
    float *qk_raw, *qk_rstd;      /* (CH, (H+KV) hd), (CH, H+KV), Qwen3 only */
    float *atty, *res2;           /* (CH, HD), (CH, C) */
    float *up, *act;              /* (CH, U), (CH, F) */
    float *h;                     /* (TR_MAX_SLOTS, CH, R) LoRA A x */
    float *att;                   /* (threads, max_ctx) attention scores of one row and head */
    float *rope_cos, *rope_sin;   /* (max_ctx, hd/2) */
    float *rope_lcos, *rope_lsin; /* (max_ctx, hd/2) Gemma 3's local layers, else NULL */
};

static int64_t gen_layout(tr_gen *g, float *mem)
{
    const tr_model *m = g->m;
    int64_t CH = TR_GEN_CHUNK, R = m->has_lora ? m->lcfg.rank : 1;
    tr_carver cv = {mem, 0};
    g->x = tr_carve(&cv, CH * m->C);
    g->xn = tr_carve(&cv, CH * m->C);
    g->mean = tr_carve(&cv, CH);
    g->rstd = tr_carve(&cv, CH);
    g->qkv = tr_carve(&cv, CH * m->QKV);
    g->qk_raw = tr_carve(&cv, m->cfg.qk_norm ? CH * (m->H + m->KV) * m->hd : 1);
    g->qk_rstd = tr_carve(&cv, m->cfg.qk_norm ? CH * (m->H + m->KV) : 1);
    g->atty = tr_carve(&cv, CH * m->HD);
    g->res2 = tr_carve(&cv, CH * m->C);
    g->up = tr_carve(&cv, CH * m->U);
    g->act = tr_carve(&cv, CH * m->F);
    g->h = tr_carve(&cv, TR_MAX_SLOTS * CH * R);
    g->att = tr_carve(&cv, (int64_t)g->threads * g->max_ctx);
    g->rope_cos = tr_carve(&cv, (int64_t)g->max_ctx * (m->hd / 2));
    g->rope_sin = tr_carve(&cv, (int64_t)g->max_ctx * (m->hd / 2));
    int loc = m->cfg.rope_local_theta > 0.0f;
    g->rope_lcos = loc ? tr_carve(&cv, (int64_t)g->max_ctx * (m->hd / 2)) : NULL;
    g->rope_lsin = loc ? tr_carve(&cv, (int64_t)g->max_ctx * (m->hd / 2)) : NULL;
    return cv.off;
}

tr_gen *tr_gen_new(tr_model *m, int max_ctx, mu_diag *d)
{
    if (max_ctx == 0)
        max_ctx = m->cfg.max_pos;
    if (max_ctx < 1 || max_ctx > m->cfg.max_pos) {
        mu_diag_set(d, MU_ERR_INVALID, "generate: context %d not in [1, max_pos %d]", max_ctx,
                    m->cfg.max_pos);
        return NULL;
    }
    tr_gen *g = calloc(1, sizeof *g);
    if (!g)
        goto out_nomem;
    g->m = m;
    g->max_ctx = max_ctx;
    g->threads = omp_get_max_threads();
    g->KVD = m->KV * m->hd;
    size_t cache = (size_t)m->L * (size_t)max_ctx * (size_t)g->KVD;
    g->kc = malloc(sizeof(float) * cache);
    g->vc = malloc(sizeof(float) * cache);
    int64_t n = gen_layout(g, NULL);
    g->mem = malloc(sizeof(float) * (size_t)n);
    if (!g->kc || !g->vc || !g->mem)
        goto out_free;
    gen_layout(g, g->mem);
    if (m->cfg.family == TR_LLAMA) {
        float *inv = malloc(sizeof(float) * (size_t)(m->hd / 2));
        if (!inv)
            goto out_free;
        tr_rope_inv_freq(inv, m->hd, m->cfg.rope_theta, &m->cfg.rope_scaling);
        tr_rope_tables(g->rope_cos, g->rope_sin, max_ctx, m->hd, inv);
        if (g->rope_lcos) {
            tr_rope_inv_freq(inv, m->hd, m->cfg.rope_local_theta, NULL);
            tr_rope_tables(g->rope_lcos, g->rope_lsin, max_ctx, m->hd, inv);
        }
        free(inv);
    }
    return g;
out_free:
    tr_gen_free(g);
out_nomem:
    mu_diag_set(d, MU_ERR_NOMEM, "generate: out of memory for a cache of %d tokens", max_ctx);
    return NULL;
}

void tr_gen_free(tr_gen *g)
{
    if (!g)
        return;
    free(g->kc);
    free(g->vc);
    free(g->mem);
    free(g);
}

void tr_gen_reset(tr_gen *g)
{
    g->pos = 0;
}

int tr_gen_pos(const tr_gen *g)
{
    return g->pos;
}

/* Columns [c0, c1) of out (n, OUT) = init + inp . W + bias (init NULL, or out itself). */
static void cols_block(int c0, int c1, float *out, const float *init, const float *inp, tr_weight w,
                       const float *bias, int n, int IN, int OUT, tr_wlayout lay)
{
    if (c1 <= c0)
        return;
    int nc = c1 - c0;
    float beta = 0.0f;
    if (init || bias) {
        for (int i = 0; i < n; i++) {
            float *c = out + (int64_t)i * OUT + c0;
            if (init && init != out)
                memcpy(c, init + (int64_t)i * OUT + c0, sizeof(float) * (size_t)nc);
            if (bias && init)
                for (int j = 0; j < nc; j++)
                    c[j] += bias[c0 + j];
            else if (bias)
                memcpy(c, bias + c0, sizeof(float) * (size_t)nc);
        }
        beta = 1.0f;
    }
    int64_t at = lay == TR_W_OUT_IN ? (int64_t)c0 * IN : c0;
    int ldw = lay == TR_W_OUT_IN ? IN : OUT;
    if (w.h)
        tr_bf16_gemm(n, nc, IN, inp, IN, w.h + at, ldw, lay == TR_W_OUT_IN, beta, out + c0, OUT);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, lay == TR_W_OUT_IN ? CblasTrans : CblasNoTrans, n,
                    nc, IN, 1.0f, inp, IN, w.f + at, ldw, beta, out + c0, OUT);
}

/* A product of few rows (decoding: one) split over the output columns, where the training
 * kernels split rows and would leave every thread but one idle. */
static void gemm_cols(float *out, const float *init, const float *inp, tr_weight w,
                      const float *bias, int n, int IN, int OUT, tr_wlayout lay, int threads)
{
    int blocks = (OUT + GEN_COL_QUANTUM - 1) / GEN_COL_QUANTUM;
    int nt = (int64_t)n * IN * OUT >= GEN_PAR_MIN ? threads : 1;
    nt = nt < blocks ? nt : blocks;
    if (nt <= 1) {
        cols_block(0, OUT, out, init, inp, w, bias, n, IN, OUT, lay);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int p = omp_get_thread_num(), np = omp_get_num_threads();
        int c0 = (int)((int64_t)blocks * p / np * GEN_COL_QUANTUM);
        int c1 = (int)((int64_t)blocks * (p + 1) / np * GEN_COL_QUANTUM);
        cols_block(c0 < OUT ? c0 : OUT, c1 < OUT ? c1 : OUT, out, init, inp, w, bias, n, IN, OUT,
                   lay);
    }
}

/* out (n, OUT) = init + inp . W + b plus every LoRA module of linear `lin` in layer l. */
static void gen_linear(tr_gen *g, int l, int lin, float *out, const float *init, const float *inp,
                       int n, int IN, int OUT, tr_weight w, const float *b)
{
    tr_model *m = g->m;
    int R = m->has_lora ? m->lcfg.rank : 0, ns = 0;
    tr_lora_slot sl[TR_MAX_SLOTS];
    for (int j = 0; j < m->n_mods; j++) {
        const tr_lmod *x = &m->mods[j];
        if (x->layer != l || x->lin != lin)
            continue;
        sl[ns] = (tr_lora_slot){
            .A = x->A, .B = x->B, .h = g->h + (int64_t)ns * n * R, .off = x->off, .out = x->out};
        ns++;
    }
    if (n >= GEN_COL_QUANTUM) {
        tr_linear_forward_w(out, init, inp, w, b, n, IN, OUT, m->layout, sl, ns, R, m->scale);
        return;
    }
    gemm_cols(out, init, inp, w, b, n, IN, OUT, m->layout, g->threads);
    for (int k = 0; k < ns; k++)
        tr_lora_forward(out + sl[k].off, OUT, sl[k].h, inp, sl[k].A, sl[k].B, m->scale, n, IN,
                        sl[k].out, R);
}

static void gen_norm(const tr_model *m, float *out, float *mean, float *rstd, const float *inp,
                     const float *w, const float *b, int n)
{
    if (m->cfg.family == TR_GPT2)
        tr_layernorm_forward(out, mean, rstd, inp, w, b, n, m->C, m->cfg.norm_eps);
    else
        tr_rmsnorm_forward(out, rstd, inp, w, n, m->C, m->cfg.norm_eps);
}

/* atty (n, HD): rows at positions p0..p0+n-1 attend to cached positions 0..their own (a
 * local layer's window: the last `window` of them), scores soft-capped where the layer says. */
static void gen_attention(tr_gen *g, int l, int n, int p0)
{
    const tr_model *m = g->m;
    int H = m->H, hd = m->hd, grp = m->H / m->KV, KVD = g->KVD;
    const float *K = g->kc + (int64_t)l * g->max_ctx * KVD;
    const float *V = g->vc + (int64_t)l * g->max_ctx * KVD;
    tr_attn_opts o = tr_layer_attn(m, l);
    float scale = o.scale > 0.0f ? o.scale : 1.0f / sqrtf((float)hd);
    int64_t work = (int64_t)n * H * (p0 + n) * hd;
#pragma omp parallel for schedule(static) num_threads(g->threads) if (work >= GEN_PAR_MIN)
    for (int ih = 0; ih < n * H; ih++) {
        int i = ih / H, h = ih % H, kv = h / grp, t = p0 + i;
        const float *q = g->qkv + (int64_t)i * m->QKV + (int64_t)h * hd;
        float *s = g->att + (int64_t)omp_get_thread_num() * g->max_ctx;
        float *y = g->atty + (int64_t)i * m->HD + (int64_t)h * hd;
        int lo = o.window > 0 && t - o.window + 1 > 0 ? t - o.window + 1 : 0, nk = t + 1 - lo;
        /* s (nk) = scale * K[lo..t] . q, capped, softmax, y = V[lo..t]^T s */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, nk, hd, scale, K + (int64_t)lo * KVD + kv * hd,
                    KVD, q, 1, 0.0f, s, 1);
        if (o.softcap > 0.0f)
            tr_vec_softcap(s, nk, o.softcap);
        float mx = tr_vec_max(s, nk);
        float inv = 1.0f / tr_vec_exp_sum(s, nk, mx);
        tr_vec_scale(s, nk, inv);
        cblas_sgemv(CblasRowMajor, CblasTrans, nk, hd, 1.0f, V + (int64_t)lo * KVD + kv * hd, KVD,
                    s, 1, 0.0f, y, 1);
    }
}

/* Gemma's post-norm and residual: out (n, C) = res + norm(inp). */
static void gen_post_norm(tr_gen *g, float *out, const float *inp, const float *w, const float *res,
                          int n)
{
    gen_norm(g->m, out, g->mean, g->rstd, inp, w, NULL, n);
    tr_residual_forward(out, out, res, (int64_t)n * g->m->C);
}

/* The n rows of g->x through block l, at positions p0..p0+n-1. */
static void gen_block(tr_gen *g, int l, int n, int p0)
{
    tr_model *m = g->m;
    const tr_layer *y = &m->layers[l];
    int C = m->C, hd = m->hd, KVD = g->KVD, gem = m->cfg.gemma != 0;
    gen_norm(m, g->xn, g->mean, g->rstd, g->x, y->n1x, y->n1b, n);
    gen_linear(g, l, TR_LIN_QKV, g->qkv, NULL, g->xn, n, C, m->QKV, tr_w(y->wqkv, y->wqkv16),
               y->bqkv);
    if (m->cfg.qk_norm)
        tr_qknorm_forward(g->qkv, g->qk_raw, g->qk_rstd, y->qnx, y->knx, n, m->H, m->KV, hd,
                          m->cfg.norm_eps);
    int loc = g->rope_lcos && tr_layer_local(&m->cfg, l);
    const float *cs = loc ? g->rope_lcos : g->rope_cos, *sn = loc ? g->rope_lsin : g->rope_sin;
    if (m->cfg.family == TR_LLAMA)
        tr_rope_forward(g->qkv, cs + (int64_t)p0 * (hd / 2), sn + (int64_t)p0 * (hd / 2), 1, n,
                        m->H, m->KV, hd);
    float *kc = g->kc + ((int64_t)l * g->max_ctx + p0) * KVD;
    float *vc = g->vc + ((int64_t)l * g->max_ctx + p0) * KVD;
    for (int i = 0; i < n; i++) {
        const float *row = g->qkv + (int64_t)i * m->QKV;
        memcpy(kc + (int64_t)i * KVD, row + m->HD, sizeof(float) * (size_t)KVD);
        memcpy(vc + (int64_t)i * KVD, row + m->HD + KVD, sizeof(float) * (size_t)KVD);
    }
    gen_attention(g, l, n, p0);
    if (gem) { /* res2 = x + norm(o_proj(atty)); xn is free until the pre-MLP norm */
        gen_linear(g, l, TR_LIN_O, g->xn, NULL, g->atty, n, m->HD, C, tr_w(y->wo, y->wo16), y->bo);
        gen_post_norm(g, g->res2, g->xn, y->pax, g->x, n);
    } else {
        gen_linear(g, l, TR_LIN_O, g->res2, g->x, g->atty, n, m->HD, C, tr_w(y->wo, y->wo16),
                   y->bo);
    }
    gen_norm(m, g->xn, g->mean, g->rstd, g->res2, y->n2x, y->n2b, n);
    gen_linear(g, l, TR_LIN_UP, g->up, NULL, g->xn, n, C, m->U, tr_w(y->wup, y->wup16), y->bup);
    if (m->cfg.family == TR_GPT2)
        tr_gelu_forward(g->act, g->up, (int64_t)n * m->F);
    else if (gem)
        tr_geglu_forward(g->act, g->up, n, m->F);
    else
        tr_swiglu_forward(g->act, g->up, n, m->F);
    if (gem) { /* x = res2 + norm(down(act)) */
        gen_linear(g, l, TR_LIN_DOWN, g->xn, NULL, g->act, n, m->F, C, tr_w(y->wdn, y->wdn16),
                   y->bdn);
        gen_post_norm(g, g->x, g->xn, y->pfx, g->res2, n);
    } else {
        gen_linear(g, l, TR_LIN_DOWN, g->x, g->res2, g->act, n, m->F, C, tr_w(y->wdn, y->wdn16),
                   y->bdn);
    }
}

int tr_gen_feed(tr_gen *g, const int32_t *tokens, int n, float *logits, mu_diag *d)
{
    tr_model *m = g->m;
    if (n < 1 || n > g->max_ctx - g->pos)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "generate: %d more tokens after %d do not fit a context of %d", n,
                           g->pos, g->max_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->V)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "generate: token id %d at %d is not in [0, vocab_size %d)",
                               (int)tokens[i], i, m->V);
    /* The attention scratch was sized for the team at creation. */
    int team = omp_get_max_threads();
    if (team > g->threads)
        omp_set_num_threads(g->threads);
    int C = m->C;
    tr_norms_refresh(m); /* Gemma's 1 + w from the weights as they are now */
    for (int at = 0; at < n; at += TR_GEN_CHUNK) {
        int k = n - at < TR_GEN_CHUNK ? n - at : TR_GEN_CHUNK, p0 = g->pos;
        int64_t pos = (int64_t)p0 * C;
        tr_weight wpe = tr_w(m->wpe ? m->wpe + pos : NULL, m->wpe16 ? m->wpe16 + pos : NULL);
        tr_encoder_forward_w(g->x, tokens + at, tr_w(m->wte, m->wte16), wpe, 1, k, C);
        if (m->emb_scale > 0.0f) /* Gemma, as the training forward */
            for (int64_t i = 0; i < (int64_t)k * C; i++)
                g->x[i] *= m->emb_scale;
        for (int l = 0; l < m->L; l++)
            gen_block(g, l, k, p0);
        g->pos += k;
        if (logits && at + k == n) {
            const float *last = g->x + (int64_t)(k - 1) * C;
            gen_norm(m, g->xn, g->mean, g->rstd, last, m->nfx, m->nfb, 1);
            gemm_cols(logits, NULL, g->xn, tr_w(m->head, m->head16), NULL, 1, C, m->V, TR_W_OUT_IN,
                      g->threads);
            if (m->cfg.final_softcap > 0.0f)
                tr_softcap_forward(logits, m->V, m->cfg.final_softcap);
        }
    }
    if (team > g->threads)
        omp_set_num_threads(team);
    return MU_OK;
}
