/* Finite-difference checks of every backward kernel on tiny shapes: for a random R, the
 * scalar L = sum(forward(x) * R) is differentiated numerically and compared with what the
 * backward gives for dout = R. Frozen-weight kernels are checked for input gradients only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tr_kernels.h"
#include "train/tr_testutil.h"

#define H_FD 1e-2f
#define ATOL 2e-3
#define RTOL 2e-2

typedef struct {
    int N, C, IN, OUT, R, B, T, H, KV, hd, F;
    float *x, *w, *b, *out, *mean, *rstd, *Rm, *A, *Bm, *h, *att, *cs, *sn, *scratch;
    int32_t *tg;
    tr_wlayout layout;
    int64_t nout;
} ctx;

static void check(float *x, int64_t n, const float *g, tt_loss_fn f, void *c, const char *what)
{
    double r = tt_fd_ratio(x, n, g, f, c, H_FD, ATOL, RTOL, what);
    if (r > 1.0)
        fail_msg("%s: gradient check failed (worst ratio %.2f)", what, r);
}

static double ln_loss(void *p)
{
    ctx *c = p;
    tr_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return tt_dot(c->out, c->Rm, (int64_t)c->N * c->C);
}

static void test_layernorm(void **state)
{
    (void)state;
    ctx c = {.N = 3, .C = 7};
    int64_t n = c.N * c.C;
    c.x = tt_alloc(n), c.out = tt_alloc(n), c.Rm = tt_alloc(n), c.w = tt_alloc(c.C);
    c.b = tt_alloc(c.C), c.mean = tt_alloc(c.N), c.rstd = tt_alloc(c.N);
    tt_fill(c.x, n, 1, 1.0f);
    tt_fill(c.Rm, n, 2, 1.0f);
    tt_fill(c.w, c.C, 3, 1.0f);
    tt_fill(c.b, c.C, 4, 1.0f);
    float *dx = tt_alloc(n);
    ln_loss(&c);
    tr_layernorm_backward(dx, c.Rm, c.x, c.w, c.mean, c.rstd, c.N, c.C);
    check(c.x, n, dx, ln_loss, &c, "layernorm dx");
    free(dx), free(c.x), free(c.out), free(c.Rm), free(c.w), free(c.b), free(c.mean);
    free(c.rstd);
}

static double rms_loss(void *p)
{
    ctx *c = p;
    tr_rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->C, 1e-6f);
    return tt_dot(c->out, c->Rm, (int64_t)c->N * c->C);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    ctx c = {.N = 3, .C = 8};
    int64_t n = c.N * c.C;
    c.x = tt_alloc(n), c.out = tt_alloc(n), c.Rm = tt_alloc(n), c.w = tt_alloc(c.C);
    c.rstd = tt_alloc(c.N);
    tt_fill(c.x, n, 5, 1.0f);
    tt_fill(c.Rm, n, 6, 1.0f);
    tt_fill(c.w, c.C, 7, 1.0f);
    float *dx = tt_alloc(n);
    rms_loss(&c);
    tr_rmsnorm_backward(dx, c.Rm, c.x, c.w, c.rstd, c.N, c.C);
    check(c.x, n, dx, rms_loss, &c, "rmsnorm dx");
    free(dx), free(c.x), free(c.out), free(c.Rm), free(c.w), free(c.rstd);
}

static double mm_loss(void *p)
{
    ctx *c = p;
    tr_matmul_forward(c->out, c->x, c->w, c->b, c->N, c->IN, c->OUT, c->layout, 0);
    return tt_dot(c->out, c->Rm, (int64_t)c->N * c->OUT);
}

static void test_matmul(void **state)
{
    (void)state;
    for (int lay = 0; lay < 2; lay++) {
        ctx c = {.N = 4, .IN = 5, .OUT = 6, .layout = (tr_wlayout)lay};
        c.x = tt_alloc(c.N * c.IN), c.w = tt_alloc(c.IN * c.OUT), c.b = tt_alloc(c.OUT);
        c.out = tt_alloc(c.N * c.OUT), c.Rm = tt_alloc(c.N * c.OUT);
        tt_fill(c.x, c.N * c.IN, 8, 1.0f);
        tt_fill(c.w, c.IN * c.OUT, 9, 1.0f);
        tt_fill(c.b, c.OUT, 10, 1.0f);
        tt_fill(c.Rm, c.N * c.OUT, 11, 1.0f);
        float *dx = tt_alloc(c.N * c.IN);
        tr_matmul_backward(dx, c.Rm, c.w, c.N, c.IN, c.OUT, c.layout, 0);
        check(c.x, c.N * c.IN, dx, mm_loss, &c, lay ? "matmul out_in dx" : "matmul in_out dx");
        free(dx), free(c.x), free(c.w), free(c.b), free(c.out), free(c.Rm);
    }
}

/* LoRA on top of zero base output, written into a wider (ldo) buffer. */
static double lora_loss(void *p)
{
    ctx *c = p;
    int ldo = c->OUT + 3;
    memset(c->out, 0, sizeof(float) * (size_t)c->N * ldo);
    tr_lora_forward(c->out, ldo, c->h, c->x, c->A, c->Bm, 1.7f, c->N, c->IN, c->OUT, c->R);
    return tt_dot(c->out, c->Rm, (int64_t)c->N * ldo);
}

static void test_lora(void **state)
{
    (void)state;
    ctx c = {.N = 5, .IN = 6, .OUT = 4, .R = 3};
    int ldo = c.OUT + 3;
    c.x = tt_alloc(c.N * c.IN), c.A = tt_alloc(c.R * c.IN), c.Bm = tt_alloc(c.OUT * c.R);
    c.out = tt_alloc(c.N * ldo), c.Rm = tt_alloc(c.N * ldo), c.h = tt_alloc(c.N * c.R);
    tt_fill(c.x, c.N * c.IN, 12, 1.0f);
    tt_fill(c.A, c.R * c.IN, 13, 1.0f);
    tt_fill(c.Bm, c.OUT * c.R, 14, 1.0f);
    tt_fill(c.Rm, c.N * ldo, 15, 1.0f);
    float *dx = tt_alloc(c.N * c.IN), *dA = tt_alloc(c.R * c.IN), *dB = tt_alloc(c.OUT * c.R);
    float *dh = tt_alloc(c.N * c.R);
    lora_loss(&c);
    tr_lora_backward(dx, dA, dB, dh, c.Rm, ldo, c.x, c.h, c.A, c.Bm, 1.7f, c.N, c.IN, c.OUT, c.R);
    check(c.x, c.N * c.IN, dx, lora_loss, &c, "lora dx");
    check(c.A, c.R * c.IN, dA, lora_loss, &c, "lora dA");
    check(c.Bm, c.OUT * c.R, dB, lora_loss, &c, "lora dB");
    free(dx), free(dA), free(dB), free(dh), free(c.x), free(c.A), free(c.Bm), free(c.out);
    free(c.Rm), free(c.h);
}

static double attn_loss(void *p)
{
    ctx *c = p;
    tr_attention_forward(c->out, c->att, c->x, c->B, c->T, c->H, c->KV, c->hd);
    return tt_dot(c->out, c->Rm, (int64_t)c->B * c->T * c->H * c->hd);
}

static void test_attention_gqa(void **state)
{
    (void)state;
    /* 4 query heads sharing 2 kv heads. */
    ctx c = {.B = 2, .T = 5, .H = 4, .KV = 2, .hd = 3};
    int W = (c.H + 2 * c.KV) * c.hd;
    int64_t nq = (int64_t)c.B * c.T * W, no = (int64_t)c.B * c.T * c.H * c.hd;
    c.x = tt_alloc(nq), c.out = tt_alloc(no), c.Rm = tt_alloc(no);
    c.att = tt_alloc((int64_t)c.B * c.H * c.T * c.T);
    c.scratch = tt_alloc(64 * tr_attention_scratch_len(c.T));
    tt_fill(c.x, nq, 16, 1.0f);
    tt_fill(c.Rm, no, 17, 1.0f);
    float *dqkv = tt_alloc(nq);
    attn_loss(&c);
    tr_attention_backward(dqkv, c.scratch, c.Rm, c.x, c.att, c.B, c.T, c.H, c.KV, c.hd);
    check(c.x, nq, dqkv, attn_loss, &c, "attention dqkv");
    free(dqkv), free(c.x), free(c.out), free(c.Rm), free(c.att), free(c.scratch);
}

static double rope_loss(void *p)
{
    ctx *c = p;
    int64_t n = (int64_t)c->B * c->T * (c->H + 2 * c->KV) * c->hd;
    memcpy(c->out, c->x, sizeof(float) * (size_t)n);
    tr_rope_forward(c->out, c->cs, c->sn, c->B, c->T, c->H, c->KV, c->hd);
    return tt_dot(c->out, c->Rm, n);
}

/* Unscaled, and with Llama 3's rope_scaling (frequency 0 high, 1 medium, 2-3 low). */
static void test_rope(void **state)
{
    (void)state;
    const tr_rope_scaling scalings[] = {{.type = TR_ROPE_DEFAULT},
                                        {.type = TR_ROPE_LLAMA3,
                                         .factor = 4.0,
                                         .low_freq_factor = 1.0,
                                         .high_freq_factor = 4.0,
                                         .orig_max_pos = 64}};
    for (int k = 0; k < 2; k++) {
        ctx c = {.B = 2, .T = 4, .H = 2, .KV = 1, .hd = 8};
        int64_t n = (int64_t)c.B * c.T * (c.H + 2 * c.KV) * c.hd;
        c.x = tt_alloc(n), c.out = tt_alloc(n), c.Rm = tt_alloc(n);
        c.cs = tt_alloc(c.T * c.hd / 2), c.sn = tt_alloc(c.T * c.hd / 2);
        float inv[4];
        tr_rope_inv_freq(inv, c.hd, 1000.0f, &scalings[k]);
        tr_rope_tables(c.cs, c.sn, c.T, c.hd, inv);
        tt_fill(c.x, n, 18, 1.0f);
        tt_fill(c.Rm, n, 19, 1.0f);
        float *g = tt_alloc(n);
        memcpy(g, c.Rm, sizeof(float) * (size_t)n);
        tr_rope_backward(g, c.cs, c.sn, c.B, c.T, c.H, c.KV, c.hd);
        check(c.x, n, g, rope_loss, &c, k ? "rope (llama3 scaling) dx" : "rope dx");
        /* values stay untouched: their gradient is dout itself */
        free(g), free(c.x), free(c.out), free(c.Rm), free(c.cs), free(c.sn);
    }
}

/* qkv rows of 2 query heads, 1 key head, 1 value head (hd 6); R weighs every column. */
static double qknorm_loss(void *p)
{
    ctx *c = p;
    int64_t n = (int64_t)c->N * (c->H + 2 * c->KV) * c->hd;
    memcpy(c->out, c->x, sizeof(float) * (size_t)n);
    tr_qknorm_forward(c->out, c->h, c->rstd, c->w, c->b, c->N, c->H, c->KV, c->hd, 1e-6f);
    return tt_dot(c->out, c->Rm, n);
}

static void test_qknorm(void **state)
{
    (void)state;
    ctx c = {.N = 3, .H = 2, .KV = 1, .hd = 6};
    int G = c.H + c.KV, W = (c.H + 2 * c.KV) * c.hd;
    int64_t n = (int64_t)c.N * W;
    c.x = tt_alloc(n), c.out = tt_alloc(n), c.Rm = tt_alloc(n), c.w = tt_alloc(c.hd);
    c.b = tt_alloc(c.hd), c.h = tt_alloc((int64_t)c.N * G * c.hd), c.rstd = tt_alloc(c.N * G);
    tt_fill(c.x, n, 40, 1.0f);
    tt_fill(c.Rm, n, 41, 1.0f);
    tt_fill(c.w, c.hd, 42, 1.0f);
    tt_fill(c.b, c.hd, 43, 1.0f);
    /* the naive twin gives the same forward, caches and backward */
    float *out2 = tt_alloc(n), *raw2 = tt_alloc((int64_t)c.N * G * c.hd);
    float *rstd2 = tt_alloc(c.N * G), *g = tt_alloc(n), *g2 = tt_alloc(n);
    qknorm_loss(&c);
    memcpy(out2, c.x, sizeof(float) * (size_t)n);
    tr_qknorm_forward_ref(out2, raw2, rstd2, c.w, c.b, c.N, c.H, c.KV, c.hd, 1e-6f);
    tt_assert_close(c.out, out2, n, 1e-6, 1e-5, "qknorm forward vs naive");
    tt_assert_close(c.h, raw2, (int64_t)c.N * G * c.hd, 0, 0, "qknorm raw vs naive");
    tt_assert_close(c.rstd, rstd2, c.N * G, 0, 1e-6, "qknorm rstd vs naive");
    for (int64_t i = 0; i < n; i++) /* value columns are not normalised */
        if (i % W >= G * c.hd && c.out[i] != c.x[i])
            fail_msg("qknorm changed value column %lld", (long long)(i % W));
    memcpy(g, c.Rm, sizeof(float) * (size_t)n);
    memcpy(g2, c.Rm, sizeof(float) * (size_t)n);
    tr_qknorm_backward(g, c.h, c.rstd, c.w, c.b, c.N, c.H, c.KV, c.hd);
    tr_qknorm_backward_ref(g2, c.h, c.rstd, c.w, c.b, c.N, c.H, c.KV, c.hd);
    tt_assert_close(g, g2, n, 1e-6, 1e-5, "qknorm backward vs naive");
    check(c.x, n, g, qknorm_loss, &c, "qknorm dqkv");
    free(out2), free(raw2), free(rstd2), free(g), free(g2), free(c.x), free(c.out), free(c.Rm);
    free(c.w), free(c.b), free(c.h), free(c.rstd);
}

static double gelu_loss(void *p)
{
    ctx *c = p;
    tr_gelu_forward(c->out, c->x, c->N);
    return tt_dot(c->out, c->Rm, c->N);
}

static void test_gelu(void **state)
{
    (void)state;
    ctx c = {.N = 23};
    c.x = tt_alloc(c.N), c.out = tt_alloc(c.N), c.Rm = tt_alloc(c.N);
    tt_fill(c.x, c.N, 20, 3.0f);
    tt_fill(c.Rm, c.N, 21, 1.0f);
    float *dx = tt_alloc(c.N);
    tr_gelu_backward(dx, c.x, c.Rm, c.N);
    check(c.x, c.N, dx, gelu_loss, &c, "gelu dx");
    free(dx), free(c.x), free(c.out), free(c.Rm);
}

static double swiglu_loss(void *p)
{
    ctx *c = p;
    tr_swiglu_forward(c->out, c->x, c->N, c->F);
    return tt_dot(c->out, c->Rm, (int64_t)c->N * c->F);
}

static void test_swiglu(void **state)
{
    (void)state;
    ctx c = {.N = 3, .F = 5};
    c.x = tt_alloc(c.N * 2 * c.F), c.out = tt_alloc(c.N * c.F), c.Rm = tt_alloc(c.N * c.F);
    tt_fill(c.x, c.N * 2 * c.F, 22, 3.0f);
    tt_fill(c.Rm, c.N * c.F, 23, 1.0f);
    float *dx = tt_alloc(c.N * 2 * c.F);
    tr_swiglu_backward(dx, c.Rm, c.x, c.N, c.F);
    check(c.x, c.N * 2 * c.F, dx, swiglu_loss, &c, "swiglu dgu");
    free(dx), free(c.x), free(c.out), free(c.Rm);
}

static double geglu_loss(void *p)
{
    ctx *c = p;
    tr_geglu_forward(c->out, c->x, c->N, c->F);
    return tt_dot(c->out, c->Rm, (int64_t)c->N * c->F);
}

/* GeGLU: finite differences, and forward and backward equal to the double twin. */
static void test_geglu(void **state)
{
    (void)state;
    ctx c = {.N = 3, .F = 5};
    int64_t n = c.N * 2 * c.F;
    c.x = tt_alloc(n), c.out = tt_alloc(c.N * c.F), c.Rm = tt_alloc(c.N * c.F);
    tt_fill(c.x, n, 24, 3.0f);
    tt_fill(c.Rm, c.N * c.F, 25, 1.0f);
    float *dx = tt_alloc(n), *rdx = tt_alloc(n), *ro = tt_alloc(c.N * c.F);
    tr_geglu_backward(dx, c.Rm, c.x, c.N, c.F);
    check(c.x, n, dx, geglu_loss, &c, "geglu dgu");
    geglu_loss(&c);
    tr_geglu_forward_ref(ro, c.x, c.N, c.F);
    tr_geglu_backward_ref(rdx, c.Rm, c.x, c.N, c.F);
    tt_assert_close(c.out, ro, c.N * c.F, 2e-6, 1e-5, "geglu forward vs ref");
    tt_assert_close(dx, rdx, n, 2e-6, 1e-5, "geglu backward vs ref");
    free(dx), free(rdx), free(ro), free(c.x), free(c.out), free(c.Rm);
}

static double softcap_loss(void *p)
{
    ctx *c = p;
    memcpy(c->out, c->x, sizeof(float) * (size_t)c->N);
    tr_softcap_forward(c->out, c->N, 1.3f);
    return tt_dot(c->out, c->Rm, c->N);
}

/* Soft capping: inputs up to 4x the cap, finite differences and the double twin. */
static void test_softcap(void **state)
{
    (void)state;
    ctx c = {.N = 40};
    c.x = tt_alloc(c.N), c.out = tt_alloc(c.N), c.Rm = tt_alloc(c.N);
    tt_fill(c.x, c.N, 26, 5.0f);
    tt_fill(c.Rm, c.N, 27, 1.0f);
    float *d = tt_alloc(c.N), *r = tt_alloc(c.N);
    softcap_loss(&c);
    memcpy(d, c.Rm, sizeof(float) * (size_t)c.N);
    tr_softcap_backward(d, c.out, c.N, 1.3f);
    check(c.x, c.N, d, softcap_loss, &c, "softcap dx");
    memcpy(r, c.x, sizeof(float) * (size_t)c.N);
    tr_softcap_forward_ref(r, c.N, 1.3f);
    softcap_loss(&c);
    tt_assert_close(c.out, r, c.N, 1e-6, 1e-6, "softcap vs ref");
    free(d), free(r), free(c.x), free(c.out), free(c.Rm);
}

static tr_attn_opts g_attn_opts;

static double attn_opt_loss(void *p)
{
    ctx *c = p;
    tr_attention_forward_opt(c->out, c->att, c->x, c->B, c->T, c->H, c->KV, c->hd, &g_attn_opts);
    return tt_dot(c->out, c->Rm, (int64_t)c->B * c->T * c->H * c->hd);
}

/* Gemma's attention: a scale apart from 1/sqrt(hd), a softcap, a window shorter than T, and
 * all three together. */
static void test_attention_opts(void **state)
{
    (void)state;
    tr_attn_opts cases[] = {{0.3f, 0, 0}, {0, 0.7f, 0}, {0, 0, 3}, {0.4f, 0.9f, 2}};
    for (int k = 0; k < 4; k++) {
        g_attn_opts = cases[k];
        ctx c = {.B = 2, .T = 7, .H = 4, .KV = 2, .hd = 3};
        int W = (c.H + 2 * c.KV) * c.hd;
        int64_t nq = (int64_t)c.B * c.T * W, no = (int64_t)c.B * c.T * c.H * c.hd;
        c.x = tt_alloc(nq), c.out = tt_alloc(no), c.Rm = tt_alloc(no);
        c.att = tt_alloc((int64_t)c.B * c.H * c.T * c.T);
        c.scratch = tt_alloc(64 * tr_attention_scratch_len(c.T));
        tt_fill(c.x, nq, 40 + (uint64_t)k, 1.5f);
        tt_fill(c.Rm, no, 50 + (uint64_t)k, 1.0f);
        float *dqkv = tt_alloc(nq);
        attn_opt_loss(&c);
        tr_attention_backward_opt(dqkv, c.scratch, c.Rm, c.x, c.att, c.B, c.T, c.H, c.KV, c.hd,
                                  &g_attn_opts);
        char what[64];
        snprintf(what, sizeof what, "attention opts case %d dqkv", k);
        check(c.x, nq, dqkv, attn_opt_loss, &c, what);
        free(dqkv), free(c.x), free(c.out), free(c.Rm), free(c.att), free(c.scratch);
    }
}

static double res_loss(void *p)
{
    ctx *c = p;
    tr_residual_forward(c->out, c->x, c->w, c->N);
    return tt_dot(c->out, c->Rm, c->N);
}

static void test_residual(void **state)
{
    (void)state;
    ctx c = {.N = 9};
    c.x = tt_alloc(c.N), c.w = tt_alloc(c.N), c.out = tt_alloc(c.N), c.Rm = tt_alloc(c.N);
    tt_fill(c.x, c.N, 24, 1.0f);
    tt_fill(c.w, c.N, 25, 1.0f);
    tt_fill(c.Rm, c.N, 26, 1.0f);
    float *da = tt_alloc(c.N), *db = tt_alloc(c.N);
    tr_residual_backward(da, db, c.Rm, c.N);
    check(c.x, c.N, da, res_loss, &c, "residual da");
    check(c.w, c.N, db, res_loss, &c, "residual db");
    free(da), free(db), free(c.x), free(c.w), free(c.out), free(c.Rm);
}

static double drop_loss(void *p)
{
    ctx *c = p;
    tr_dropout_forward(c->out, c->x, 0.3f, 77, c->N);
    return tt_dot(c->out, c->Rm, c->N);
}

static void test_dropout(void **state)
{
    (void)state;
    ctx c = {.N = 40};
    c.x = tt_alloc(c.N), c.out = tt_alloc(c.N), c.Rm = tt_alloc(c.N);
    tt_fill(c.x, c.N, 27, 1.0f);
    tt_fill(c.Rm, c.N, 28, 1.0f);
    float *dx = tt_alloc(c.N);
    tr_dropout_backward(dx, c.Rm, 0.3f, 77, c.N);
    check(c.x, c.N, dx, drop_loss, &c, "dropout dx");
    int zeros = 0;
    drop_loss(&c);
    for (int i = 0; i < c.N; i++)
        zeros += c.out[i] == 0.0f;
    assert_true(zeros > 0 && zeros < c.N); /* some dropped, some kept */
    free(dx), free(c.x), free(c.out), free(c.Rm);
}

static double ce_loss(void *p)
{
    ctx *c = p;
    return tr_crossentropy_forward(c->out, c->x, c->tg, c->N, c->C);
}

static void test_crossentropy(void **state)
{
    (void)state;
    ctx c = {.N = 4, .C = 6};
    int32_t tg[4] = {0, 5, 2, 2};
    c.tg = tg;
    c.x = tt_alloc(c.N * c.C), c.out = tt_alloc(c.N);
    tt_fill(c.x, c.N * c.C, 29, 2.0f);
    float *dx = tt_alloc(c.N * c.C);
    tr_crossentropy_backward(dx, c.x, tg, c.N, c.C);
    check(c.x, c.N * c.C, dx, ce_loss, &c, "crossentropy dlogits");
    free(dx), free(c.x), free(c.out);
}

static double hce_loss(void *p)
{
    ctx *c = p;
    return tr_head_ce(c->out, NULL, NULL, c->scratch, c->x, c->w, c->tg, c->N, c->C, c->OUT, 3);
}

/* The chunked LM head + cross-entropy: dx by finite differences, and loss, dx, dw equal to
 * the naive twin and to the full-logits path for chunks 1, 3 (not dividing N = 7), 7, 64. */
static void test_head_ce(void **state)
{
    (void)state;
    ctx c = {.N = 7, .C = 5, .OUT = 11};
    int32_t tg[7] = {0, 10, -1, 3, 3, -1, 7};
    c.tg = tg;
    c.x = tt_alloc(c.N * c.C), c.w = tt_alloc(c.OUT * c.C), c.out = tt_alloc(c.N);
    c.scratch = tt_alloc(64 * c.OUT);
    tt_fill(c.x, c.N * c.C, 31, 1.0f);
    tt_fill(c.w, c.OUT * c.C, 32, 1.0f);
    float *dx = tt_alloc(c.N * c.C), *dw = tt_alloc(c.OUT * c.C);
    float *rdx = tt_alloc(c.N * c.C), *rdw = tt_alloc(c.OUT * c.C), *rl = tt_alloc(c.N);
    float *z = tt_alloc(c.N * c.OUT), *dz = tt_alloc(c.N * c.OUT), *fdx = tt_alloc(c.N * c.C);
    memset(rdw, 0, sizeof(float) * (size_t)(c.OUT * c.C));
    float lr = tr_head_ce_ref(rl, rdx, rdw, c.x, c.w, tg, c.N, c.C, c.OUT);
    tr_matmul_forward(z, c.x, c.w, NULL, c.N, c.C, c.OUT, TR_W_OUT_IN, 0);
    float lf = tr_crossentropy_forward(NULL, z, tg, c.N, c.OUT);
    tr_crossentropy_backward(dz, z, tg, c.N, c.OUT);
    tr_matmul_backward(fdx, dz, c.w, c.N, c.C, c.OUT, TR_W_OUT_IN, 0);
    assert_float_equal(lf, lr, 1e-5);
    int chunks[] = {1, 3, 7, 64};
    for (int k = 0; k < 4; k++) {
        memset(dw, 0, sizeof(float) * (size_t)(c.OUT * c.C));
        float l = tr_head_ce(c.out, dx, dw, c.scratch, c.x, c.w, tg, c.N, c.C, c.OUT, chunks[k]);
        assert_float_equal(l, lr, 1e-5);
        for (int i = 0; i < c.N; i++)
            assert_float_equal(c.out[i], rl[i], 1e-5);
        for (int i = 0; i < c.N * c.C; i++) {
            assert_float_equal(dx[i], rdx[i], 1e-5);
            assert_float_equal(dx[i], fdx[i], 1e-5);
        }
        for (int i = 0; i < c.OUT * c.C; i++)
            assert_float_equal(dw[i], rdw[i], 1e-5);
    }
    for (int i = 2 * c.C; i < 3 * c.C; i++) /* an ignored row gets no gradient */
        assert_float_equal(dx[i], 0.0f, 0.0);
    tr_head_ce(c.out, dx, NULL, c.scratch, c.x, c.w, tg, c.N, c.C, c.OUT, 3);
    check(c.x, c.N * c.C, dx, hce_loss, &c, "head_ce dx");
    free(dx), free(dw), free(rdx), free(rdw), free(rl), free(z), free(dz), free(fdx);
    free(c.x), free(c.w), free(c.out), free(c.scratch);
}

static double hce_cap_loss(void *p)
{
    ctx *c = p;
    return tr_head_ce_cap_w(c->out, NULL, NULL, c->scratch, c->x, (tr_weight){c->w, NULL}, c->tg,
                            c->N, c->C, c->OUT, 3, 1.5f);
}

/* The head with Gemma 2's final softcap (1.5, below the logits' range): the naive twin for
 * chunks 1, 3, 7, 64, the full path (softcap, cross-entropy, softcap backward), and dx by
 * finite differences. */
static void test_head_ce_cap(void **state)
{
    (void)state;
    const float cap = 1.5f;
    ctx c = {.N = 7, .C = 5, .OUT = 11};
    int32_t tg[7] = {0, 10, -1, 3, 3, -1, 7};
    c.tg = tg;
    c.x = tt_alloc(c.N * c.C), c.w = tt_alloc(c.OUT * c.C), c.out = tt_alloc(c.N);
    c.scratch = tt_alloc(64 * c.OUT);
    tt_fill(c.x, c.N * c.C, 33, 1.5f);
    tt_fill(c.w, c.OUT * c.C, 34, 1.5f);
    float *dx = tt_alloc(c.N * c.C), *rdx = tt_alloc(c.N * c.C), *rl = tt_alloc(c.N);
    float *rdw = tt_alloc(c.OUT * c.C);
    float *z = tt_alloc(c.N * c.OUT), *dz = tt_alloc(c.N * c.OUT), *fdx = tt_alloc(c.N * c.C);
    float lr = tr_head_ce_cap_ref(rl, rdx, NULL, c.x, c.w, tg, c.N, c.C, c.OUT, cap);
    float l0 = tr_head_ce_ref(rl, NULL, rdw, c.x, c.w, tg, c.N, c.C, c.OUT);
    assert_true(fabsf(lr - l0) > 0.05f); /* the cap changes the loss */
    tr_head_ce_cap_ref(rl, rdx, NULL, c.x, c.w, tg, c.N, c.C, c.OUT, cap);
    tr_matmul_forward(z, c.x, c.w, NULL, c.N, c.C, c.OUT, TR_W_OUT_IN, 0);
    tr_softcap_forward(z, (int64_t)c.N * c.OUT, cap);
    float lf = tr_crossentropy_forward(NULL, z, tg, c.N, c.OUT);
    tr_crossentropy_backward(dz, z, tg, c.N, c.OUT);
    tr_softcap_backward(dz, z, (int64_t)c.N * c.OUT, cap);
    tr_matmul_backward(fdx, dz, c.w, c.N, c.C, c.OUT, TR_W_OUT_IN, 0);
    assert_float_equal(lf, lr, 1e-5);
    int chunks[] = {1, 3, 7, 64};
    for (int k = 0; k < 4; k++) {
        float l = tr_head_ce_cap_w(c.out, dx, NULL, c.scratch, c.x, (tr_weight){c.w, NULL}, tg, c.N,
                                   c.C, c.OUT, chunks[k], cap);
        assert_float_equal(l, lr, 1e-5);
        for (int i = 0; i < c.N; i++)
            assert_float_equal(c.out[i], rl[i], 1e-5);
        for (int i = 0; i < c.N * c.C; i++) {
            assert_float_equal(dx[i], rdx[i], 1e-5);
            assert_float_equal(dx[i], fdx[i], 1e-5);
        }
    }
    tr_head_ce_cap_w(c.out, dx, NULL, c.scratch, c.x, (tr_weight){c.w, NULL}, tg, c.N, c.C, c.OUT,
                     3, cap);
    check(c.x, c.N * c.C, dx, hce_cap_loss, &c, "head_ce softcap dx");
    free(dx), free(rdx), free(rl), free(rdw), free(z), free(dz), free(fdx);
    free(c.x), free(c.w), free(c.out), free(c.scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),     cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_matmul),        cmocka_unit_test(test_lora),
        cmocka_unit_test(test_attention_gqa), cmocka_unit_test(test_rope),
        cmocka_unit_test(test_gelu),          cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_residual),      cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_crossentropy),  cmocka_unit_test(test_head_ce),
        cmocka_unit_test(test_qknorm),        cmocka_unit_test(test_geglu),
        cmocka_unit_test(test_softcap),       cmocka_unit_test(test_attention_opts),
        cmocka_unit_test(test_head_ce_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
