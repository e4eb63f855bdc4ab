/* test_gguf.c - tr_gguf: files written and read back by a bounds-checked GGUF reader of this
 * test (header, key-values, tensor infos, alignment 32, data offsets), the tensor names and
 * the Q/K row permutation, the merged LoRA, the LoRA file's layout, binary16 rounding, and
 * what is refused. llama.cpp itself reads these files in gguf_llama.sh. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mu_bytes.h"
#include "tio_util.h"
#include "tr_gguf.h"
#include "tr_hf.h"

/* ---- the reader ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len, at;
} rd;

static const uint8_t *take(rd *r, size_t n)
{
    assert_true(n <= r->len - r->at);
    const uint8_t *q = r->p + r->at;
    r->at += n;
    return q;
}
static uint32_t u32(rd *r)
{
    return mu_le32(take(r, 4));
}
static uint64_t u64(rd *r)
{
    return mu_le64(take(r, 8));
}
static const char *str(rd *r, size_t *n)
{
    *n = (size_t)u64(r);
    return (const char *)take(r, *n);
}

typedef struct {
    char key[96];
    uint32_t type, arr_type;
    uint64_t arr_n;
    size_t at; /* offset of the value (array: of its first element) */
} kv_t;

typedef struct {
    char name[64];
    uint32_t ndim, type;
    uint64_t ne[4], off;
} ti_t;

typedef struct {
    uint8_t *buf;
    size_t len, data; /* data: offset of the data section */
    kv_t kv[64];
    ti_t ti[64];
    uint64_t n_kv, n_t;
} gguf_t;

static size_t scalar_size(uint32_t t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    assert_true(t < 13 && t != 8 && t != 9);
    return sz[t];
}

static void skip_value(rd *r, uint32_t t)
{
    size_t n;
    if (t == 8)
        str(r, &n);
    else
        take(r, scalar_size(t));
}

static void gguf_read(gguf_t *g, const char *path)
{
    memset(g, 0, sizeof *g);
    g->buf = tio_read(path, &g->len);
    assert_non_null(g->buf);
    rd r = {g->buf, g->len, 0};
    assert_memory_equal(take(&r, 4), "GGUF", 4);
    assert_int_equal(u32(&r), 3);
    g->n_t = u64(&r);
    g->n_kv = u64(&r);
    assert_true(g->n_t <= 64 && g->n_kv <= 64);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        size_t n;
        const char *k = str(&r, &n);
        assert_true(n < sizeof g->kv[i].key);
        memcpy(g->kv[i].key, k, n);
        for (uint64_t j = 0; j < i; j++)
            assert_string_not_equal(g->kv[j].key, g->kv[i].key);
        g->kv[i].type = u32(&r);
        if (g->kv[i].type == 9) {
            g->kv[i].arr_type = u32(&r);
            g->kv[i].arr_n = u64(&r);
            g->kv[i].at = r.at;
            for (uint64_t e = 0; e < g->kv[i].arr_n; e++)
                skip_value(&r, g->kv[i].arr_type);
        } else {
            g->kv[i].at = r.at;
            skip_value(&r, g->kv[i].type);
        }
    }
    uint64_t expect = 0;
    for (uint64_t i = 0; i < g->n_t; i++) {
        size_t n;
        const char *s = str(&r, &n);
        assert_true(n > 0 && n < sizeof g->ti[i].name);
        memcpy(g->ti[i].name, s, n);
        g->ti[i].ndim = u32(&r);
        assert_true(g->ti[i].ndim >= 1 && g->ti[i].ndim <= 4);
        uint64_t numel = 1;
        for (uint32_t k = 0; k < g->ti[i].ndim; k++)
            numel *= (g->ti[i].ne[k] = u64(&r));
        g->ti[i].type = u32(&r);
        assert_true(g->ti[i].type == 0 || g->ti[i].type == 1);
        g->ti[i].off = u64(&r);
        /* llama.cpp's gguf reader requires each offset to be the padded end of the last */
        assert_int_equal(g->ti[i].off, expect);
        expect += (numel * (g->ti[i].type ? 2 : 4) + 31) / 32 * 32;
    }
    g->data = (r.at + 31) / 32 * 32;
    for (size_t k = r.at; k < g->data; k++)
        assert_int_equal(g->buf[k], 0);
    assert_int_equal(g->len, g->data + expect);
}

static const kv_t *kv_find(const gguf_t *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key))
            return &g->kv[i];
    fail_msg("key '%s' missing", key);
    return NULL;
}

static uint32_t kv_u32(const gguf_t *g, const char *key)
{
    const kv_t *k = kv_find(g, key);
    assert_int_equal(k->type, 4);
    return mu_le32(g->buf + k->at);
}

static float kv_f32(const gguf_t *g, const char *key)
{
    const kv_t *k = kv_find(g, key);
    assert_int_equal(k->type, 6);
    uint32_t u = mu_le32(g->buf + k->at);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void assert_kv_str(const gguf_t *g, const char *key, const char *want)
{
    const kv_t *k = kv_find(g, key);
    assert_int_equal(k->type, 8);
    rd r = {g->buf, g->len, k->at};
    size_t n;
    const char *s = str(&r, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
}

/* Element e of a string array, as a NUL-terminated copy in buf. */
static const char *kv_arr_str(const gguf_t *g, const char *key, uint64_t e, char *buf, size_t cap)
{
    const kv_t *k = kv_find(g, key);
    assert_true(k->type == 9 && k->arr_type == 8 && e < k->arr_n);
    rd r = {g->buf, g->len, k->at};
    size_t n;
    const char *s = NULL;
    for (uint64_t i = 0; i <= e; i++)
        s = str(&r, &n);
    assert_true(n < cap);
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

static const ti_t *ti_find(const gguf_t *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->ti[i].name, name))
            return &g->ti[i];
    fail_msg("tensor '%s' missing", name);
    return NULL;
}

static float tval(const gguf_t *g, const ti_t *t, uint64_t i)
{
    assert_int_equal(t->type, 0);
    uint32_t u = mu_le32(g->buf + g->data + t->off + 4 * i);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- fixtures ------------------------------------------------------------------------ */

/* A byte-level BPE tokenizer: ids 0-255 the bytes (GPT-2's byte-to-unicode characters), 256
 * "ab" (merge "a b"), 257 "<|end|>" (special); the model's vocab of 260 pads 258 and 259. */
static void put_utf8(char **o, unsigned cp)
{
    if (cp < 0x80) {
        *(*o)++ = (char)cp;
    } else {
        *(*o)++ = (char)(0xc0 | cp >> 6);
        *(*o)++ = (char)(0x80 | (cp & 0x3f));
    }
}

static void write_tokenizer(const char *path)
{
    static char json[8192];
    char *o = json;
    o += sprintf(o, "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 257, \"content\": "
                    "\"<|end|>\", \"special\": true}], \"normalizer\": null, "
                    "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                    "\"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"}, "
                    "\"model\": {\"type\": \"BPE\", \"vocab\": {");
    unsigned extra = 0;
    for (unsigned b = 0; b < 256; b++) {
        int self = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        unsigned cp = self ? b : 256 + extra++;
        *o++ = '"';
        if (cp == '"' || cp == '\\')
            *o++ = '\\';
        put_utf8(&o, cp);
        o += sprintf(o, "\": %u, ", b);
    }
    o += sprintf(o, "\"ab\": 256}, \"merges\": [\"a b\"]}}");
    tio_write(path, json, (size_t)(o - json));
}

/* A model of config c with distinct deterministic weights, and LoRA (r 2, alpha 3) on
 * `targets` unless 0. */
static tr_model *filled(const tr_config *c, unsigned targets)
{
    tr_model *m = tr_model_new(c, NULL);
    assert_non_null(m);
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        for (int64_t k = 0; k < t.numel; k++)
            t.data[k] = (float)(i * 1000 + k) * 0.001f;
    }
    if (targets) {
        tr_lora_config lc = {.rank = 2, .alpha = 3.0f, .targets = targets};
        assert_int_equal(tr_lora_attach(m, &lc, 1, NULL), 0);
        for (int i = 0; i < tr_lora_count(m); i++) {
            tr_tensor t;
            tr_lora_tensor(m, i, &t);
            for (int64_t k = 0; k < t.numel; k++)
                t.data[k] = (float)((i * 7 + k) % 11) * 0.1f - 0.5f;
        }
    }
    return m;
}

static tr_model *tiny(int lora)
{
    tr_config c = {.family = TR_LLAMA,
                   .vocab_size = 260,
                   .max_pos = 16,
                   .d_model = 8,
                   .n_layer = 2,
                   .n_head = 2,
                   .n_kv_head = 1,
                   .head_dim = 4,
                   .d_ff = 12,
                   .norm_eps = 1e-5f,
                   .rope_theta = 500.0f};
    return filled(&c, lora ? TR_T_LLAMA_ALL : 0);
}

static char dir[64];

static int setup(void **state)
{
    tio_mkdtemp(dir, sizeof dir, "gguf");
    char p[128];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    write_tokenizer(p);
    return 0;
}

static int teardown(void **state)
{
    tio_rmdir(dir);
    return 0;
}

#define assert_ok(call, d)                                                                         \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_)                                                                                   \
            fail_msg("%s: %d: %s", #call, rc_, (d).msg);                                           \
    } while (0)

static tr_tensor base_of(tr_model *m, const char *name)
{
    tr_tensor t;
    int i = tr_model_base_find(m, name);
    assert_true(i >= 0);
    tr_model_base_tensor(m, i, &t);
    return t;
}

/* GGUF tensor `t` holds HF tensor x with rows permuted for `heads` heads of hd (0: none). */
static void assert_rows(const gguf_t *g, const ti_t *t, const tr_tensor *x, int heads, int hd)
{
    int64_t rows = x->ndim == 2 ? x->shape[0] : 1, cols = x->ndim == 2 ? x->shape[1] : x->shape[0];
    assert_int_equal(t->ne[0], cols);
    assert_int_equal(t->ndim == 2 ? t->ne[1] : 1, rows);
    for (int64_t r = 0; r < rows; r++) {
        int64_t src = r;
        if (heads) {
            int64_t h = r / hd, i = (r % hd) / 2, j = r % 2;
            src = h * hd + j * (hd / 2) + i;
        }
        for (int64_t k = 0; k < cols; k++)
            assert_float_equal(tval(g, t, r * cols + k), x->data[src * cols + k], 0);
    }
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_model_file(void **state)
{
    tr_model *m = tiny(0);
    char path[128], buf[64];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    tr_gguf_opts o = {.type = TR_GGUF_F32, .name = "tiny"};
    mu_diag d = {{0}};
    assert_ok(tr_gguf_write_model(m, dir, &o, path, &d), d);
    gguf_t g;
    gguf_read(&g, path);
    assert_kv_str(&g, "general.architecture", "llama");
    assert_kv_str(&g, "general.name", "tiny");
    assert_int_equal(kv_u32(&g, "general.file_type"), 0);
    assert_int_equal(kv_u32(&g, "general.alignment"), 32);
    assert_int_equal(kv_u32(&g, "llama.context_length"), 16);
    assert_int_equal(kv_u32(&g, "llama.embedding_length"), 8);
    assert_int_equal(kv_u32(&g, "llama.block_count"), 2);
    assert_int_equal(kv_u32(&g, "llama.feed_forward_length"), 12);
    assert_int_equal(kv_u32(&g, "llama.attention.head_count"), 2);
    assert_int_equal(kv_u32(&g, "llama.attention.head_count_kv"), 1);
    assert_int_equal(kv_u32(&g, "llama.rope.dimension_count"), 4);
    assert_float_equal(kv_f32(&g, "llama.rope.freq_base"), 500.0f, 0);
    assert_float_equal(kv_f32(&g, "llama.attention.layer_norm_rms_epsilon"), 1e-5f, 0);
    assert_kv_str(&g, "tokenizer.ggml.model", "gpt2");
    assert_kv_str(&g, "tokenizer.ggml.pre", "gpt-2");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 32, buf, sizeof buf), "\xc4\xa0");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 97, buf, sizeof buf), "a");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 256, buf, sizeof buf), "ab");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 257, buf, sizeof buf), "<|end|>");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 259, buf, sizeof buf), "[PAD259]");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.merges", 0, buf, sizeof buf), "a b");
    const kv_t *tt = kv_find(&g, "tokenizer.ggml.token_type");
    assert_int_equal(tt->arr_n, 260);
    assert_int_equal(mu_le32(g.buf + tt->at + 4 * 0), 1);   /* normal */
    assert_int_equal(mu_le32(g.buf + tt->at + 4 * 257), 3); /* control */
    assert_int_equal(mu_le32(g.buf + tt->at + 4 * 258), 5); /* unused padding */
    assert_int_equal(kv_find(&g, "tokenizer.ggml.merges")->arr_n, 1);
    /* 1 + 9 per layer + 2 tensors, in the model's order */
    assert_int_equal(g.n_t, 1 + 9 * 2 + 2);
    assert_string_equal(g.ti[0].name, "token_embd.weight");
    assert_string_equal(g.ti[g.n_t - 1].name, "output.weight");
    tr_tensor x = base_of(m, "model.layers.1.self_attn.q_proj.weight");
    assert_rows(&g, ti_find(&g, "blk.1.attn_q.weight"), &x, 2, 4);
    x = base_of(m, "model.layers.1.self_attn.k_proj.weight");
    assert_rows(&g, ti_find(&g, "blk.1.attn_k.weight"), &x, 1, 4);
    static const char *const same[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"},
        {"model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight"},
        {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
        {"model.layers.0.post_attention_layernorm.weight", "blk.0.ffn_norm.weight"},
        {"model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight"},
        {"model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight"},
        {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        x = base_of(m, same[i][0]);
        assert_rows(&g, ti_find(&g, same[i][1]), &x, 0, 0);
    }
    free(g.buf);
    tr_model_free(m);
}

static void test_merge_and_lora_file(void **state)
{
    tr_model *m = tiny(1);
    char path[128];
    mu_diag d = {{0}};
    snprintf(path, sizeof path, "%s/merged.gguf", dir);
    tr_gguf_opts o = {.type = TR_GGUF_F32, .merge = 1};
    assert_ok(tr_gguf_write_model(m, dir, &o, path, &d), d);
    gguf_t g;
    gguf_read(&g, path);
    /* v_proj of layer 1 (no permutation): W + (alpha / r) B A, computed here in double */
    tr_tensor W = base_of(m, "model.layers.1.self_attn.v_proj.weight"), A, B;
    tr_lora_tensor(
        m, tr_lora_find(m, "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"), &A);
    tr_lora_tensor(
        m, tr_lora_find(m, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"), &B);
    const ti_t *t = ti_find(&g, "blk.1.attn_v.weight");
    int64_t out = W.shape[0], in = W.shape[1];
    double maxd = 0;
    for (int64_t o2 = 0; o2 < out; o2++)
        for (int64_t i = 0; i < in; i++) {
            double s = 0;
            for (int r = 0; r < 2; r++)
                s += (double)B.data[o2 * 2 + r] * A.data[r * in + i];
            double want = W.data[o2 * in + i] + 1.5 * s, dd = fabs(tval(&g, t, o2 * in + i) - want);
            maxd = dd > maxd ? dd : maxd;
        }
    assert_true(maxd < 1e-5);
    assert_true(fabs(tval(&g, t, 0) - W.data[0]) > 1e-3); /* the merge changed it */
    free(g.buf);

    snprintf(path, sizeof path, "%s/lora.gguf", dir);
    assert_ok(tr_gguf_write_lora(m, "x", path, &d), d);
    gguf_read(&g, path);
    assert_kv_str(&g, "general.type", "adapter");
    assert_kv_str(&g, "adapter.type", "lora");
    assert_kv_str(&g, "general.architecture", "llama");
    assert_float_equal(kv_f32(&g, "adapter.lora.alpha"), 3.0f, 1e-6);
    assert_int_equal(g.n_t, 2 * 7 * 2);
    tr_lora_tensor(
        m, tr_lora_find(m, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), &A);
    tr_lora_tensor(
        m, tr_lora_find(m, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"), &B);
    assert_rows(&g, ti_find(&g, "blk.0.attn_q.weight.lora_a"), &A, 0, 0); /* [in, r] */
    assert_rows(&g, ti_find(&g, "blk.0.attn_q.weight.lora_b"), &B, 2, 4); /* [r, out] */
    tr_lora_tensor(
        m, tr_lora_find(m, "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"), &B);
    assert_rows(&g, ti_find(&g, "blk.1.attn_k.weight.lora_b"), &B, 1, 4);
    tr_lora_tensor(
        m, tr_lora_find(m, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"), &B);
    assert_rows(&g, ti_find(&g, "blk.1.ffn_down.weight.lora_b"), &B, 0, 0);
    free(g.buf);
    tr_model_free(m);
}

/* Qwen2 (q/k/v biases) and Qwen3 (q/k norms, head_dim != d / heads): their own
 * architectures, which rotate as Hugging Face does, so no row is permuted. */
static void test_qwen(void **state)
{
    for (int q3 = 0; q3 < 2; q3++) {
        tr_model *m = tiny(0);
        tr_config c = *tr_model_config(m);
        tr_model_free(m);
        c.qkv_bias = !q3;
        c.qk_norm = q3;
        c.head_dim = q3 ? 6 : 4;
        c.tied_head = 1;
        m = tr_model_new(&c, NULL);
        for (int i = 0; i < tr_model_base_count(m); i++) {
            tr_tensor t;
            tr_model_base_tensor(m, i, &t);
            for (int64_t k = 0; k < t.numel; k++)
                t.data[k] = (float)(i * 100 + k);
        }
        char path[128];
        mu_diag d = {{0}};
        snprintf(path, sizeof path, "%s/q.gguf", dir);
        tr_gguf_opts o = {.type = TR_GGUF_F32};
        assert_ok(tr_gguf_write_model(m, dir, &o, path, &d), d);
        gguf_t g;
        gguf_read(&g, path);
        const char *arch = q3 ? "qwen3" : "qwen2";
        char key[64];
        assert_kv_str(&g, "general.architecture", arch);
        snprintf(key, sizeof key, "%s.attention.key_length", arch);
        assert_int_equal(kv_u32(&g, key), q3 ? 6 : 4);
        snprintf(key, sizeof key, "%s.block_count", arch);
        assert_int_equal(kv_u32(&g, key), 2);
        assert_int_equal(g.n_t, 1 + (9 + (q3 ? 2 : 3)) * 2 + 1); /* tied: no output */
        static const char *const qwen2[][2] = {
            {"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight"},
            {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"},
            {"model.layers.1.self_attn.q_proj.bias", "blk.1.attn_q.bias"},
            {"model.layers.1.self_attn.k_proj.bias", "blk.1.attn_k.bias"},
            {"model.layers.0.self_attn.v_proj.bias", "blk.0.attn_v.bias"},
        };
        static const char *const qwen3[][2] = {
            {"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight"},
            {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"},
            {"model.layers.1.self_attn.q_norm.weight", "blk.1.attn_q_norm.weight"},
            {"model.layers.0.self_attn.k_norm.weight", "blk.0.attn_k_norm.weight"},
            {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"},
        };
        for (size_t i = 0; i < 5; i++) {
            const char *hf = q3 ? qwen3[i][0] : qwen2[i][0], *gg = q3 ? qwen3[i][1] : qwen2[i][1];
            tr_tensor x = base_of(m, hf);
            assert_rows(&g, ti_find(&g, gg), &x, 0, 0);
        }
        free(g.buf);
        tr_model_free(m);
    }
}

/* Llama 3's rope_scaling as llama.cpp's rope_freqs: the factor each frequency is divided by.
 * head_dim 4, theta 500: wavelengths 6.3 (below 64 / 4: kept) and 140 (above 64 / 1: / 8). */
static void test_rope_freqs(void **state)
{
    tr_model *m = tiny(0);
    tr_config c = *tr_model_config(m);
    tr_model_free(m);
    c.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LLAMA3,
                                       .factor = 8,
                                       .low_freq_factor = 1,
                                       .high_freq_factor = 4,
                                       .orig_max_pos = 64};
    m = tr_model_new(&c, NULL);
    char path[128];
    mu_diag d = {{0}};
    snprintf(path, sizeof path, "%s/r3.gguf", dir);
    tr_gguf_opts o = {.type = TR_GGUF_F32};
    assert_ok(tr_gguf_write_model(m, dir, &o, path, &d), d);
    gguf_t g;
    gguf_read(&g, path);
    const ti_t *t = ti_find(&g, "rope_freqs.weight");
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->ne[0], 2);
    assert_float_equal(tval(&g, t, 0), 1.0f, 0);
    assert_float_equal(tval(&g, t, 1), 8.0f, 1e-6);
    assert_int_equal(g.n_t, 1 + 9 * 2 + 2 + 1);
    free(g.buf);
    tr_model_free(m);
}

static void test_f16(void **state)
{
    assert_int_equal(tr_gguf_f16(1.0f), 0x3c00);
    assert_int_equal(tr_gguf_f16(-2.0f), 0xc000);
    assert_int_equal(tr_gguf_f16(65504.0f), 0x7bff);
    assert_int_equal(tr_gguf_f16(65519.0f), 0x7bff);
    assert_int_equal(tr_gguf_f16(65520.0f), 0x7c00); /* the tie rounds to even: infinity */
    assert_int_equal(tr_gguf_f16(ldexpf(1, -24)), 0x0001);
    assert_int_equal(tr_gguf_f16(ldexpf(1, -25)), 0x0000);        /* tie to even zero */
    assert_int_equal(tr_gguf_f16(ldexpf(3, -25)), 0x0002);        /* tie to even 2 */
    assert_int_equal(tr_gguf_f16(ldexpf(1023, -24)), 0x03ff);     /* largest subnormal */
    assert_int_equal(tr_gguf_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
    assert_int_equal(tr_gguf_f16(1.0f + ldexpf(3, -11)), 0x3c02);
    assert_int_equal(tr_gguf_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
    assert_int_equal(tr_gguf_f16(INFINITY), 0x7c00);
    uint16_t h = tr_gguf_f16(NAN);
    assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
    /* the F16 file holds those halves for 2-D weights and keeps norms F32 */
    tr_model *m = tiny(0);
    char path[128];
    snprintf(path, sizeof path, "%s/h.gguf", dir);
    tr_gguf_opts o = {.type = TR_GGUF_F16};
    mu_diag d = {{0}};
    assert_ok(tr_gguf_write_model(m, dir, &o, path, &d), d);
    gguf_t g;
    gguf_read(&g, path);
    assert_int_equal(kv_u32(&g, "general.file_type"), 1);
    assert_int_equal(ti_find(&g, "blk.0.attn_norm.weight")->type, 0);
    const ti_t *t = ti_find(&g, "blk.0.ffn_up.weight");
    tr_tensor x = base_of(m, "model.layers.0.mlp.up_proj.weight");
    assert_int_equal(t->type, 1);
    for (int64_t i = 0; i < x.numel; i++)
        assert_int_equal(mu_le16(g.buf + g.data + t->off + 2 * i), tr_gguf_f16(x.data[i]));
    free(g.buf);
    tr_model_free(m);
}

/* GPT-2: llama.cpp's gpt2 names; HF's Conv1D weights [in, out] written transposed (GGML's
 * [out, in] rows), merged as W^T + scaling B A; LayerNorm biases; tied, so no output. */
static void test_gpt2(void **state)
{
    tr_config gc = {.family = TR_GPT2,
                    .vocab_size = 260,
                    .max_pos = 8,
                    .d_model = 8,
                    .n_layer = 1,
                    .n_head = 2,
                    .d_ff = 12,
                    .norm_eps = 1e-5f,
                    .tied_head = 1};
    tr_model *m = filled(&gc, TR_T_C_ATTN);
    char path[128];
    mu_diag d = {{0}};
    tr_gguf_opts o = {.type = TR_GGUF_F32};
    for (int merge = 0; merge < 2; merge++) {
        snprintf(path, sizeof path, "%s/gpt2.gguf", dir);
        o.merge = merge;
        assert_ok(tr_gguf_write_model(m, dir, &o, path, &d), d);
        gguf_t g;
        gguf_read(&g, path);
        assert_kv_str(&g, "general.architecture", "gpt2");
        assert_int_equal(kv_u32(&g, "gpt2.feed_forward_length"), 12);
        assert_float_equal(kv_f32(&g, "gpt2.attention.layer_norm_epsilon"), 1e-5f, 0);
        assert_int_equal(g.n_t, 2 + 12 + 2); /* embeddings, one block, output norm */
        ti_find(&g, "position_embd.weight");
        ti_find(&g, "blk.0.attn_norm.bias");
        ti_find(&g, "output_norm.bias");
        tr_tensor W = base_of(m, "transformer.h.0.attn.c_attn.weight"), A, B; /* [8, 24] */
        tr_lora_tensor(
            m, tr_lora_find(m, "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"), &A);
        tr_lora_tensor(
            m, tr_lora_find(m, "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"), &B);
        const ti_t *t = ti_find(&g, "blk.0.attn_qkv.weight");
        int64_t in = W.shape[0], out = W.shape[1];
        assert_true(t->ne[0] == (uint64_t)in && t->ne[1] == (uint64_t)out);
        double maxd = 0;
        for (int64_t o2 = 0; o2 < out; o2++)
            for (int64_t i = 0; i < in; i++) {
                double s = 0;
                for (int r = 0; merge && r < 2; r++)
                    s += (double)B.data[o2 * 2 + r] * A.data[r * in + i];
                double want = W.data[i * out + o2] + 1.5 * s;
                double dd = fabs(tval(&g, t, o2 * in + i) - want);
                maxd = dd > maxd ? dd : maxd;
            }
        assert_true(maxd < 1e-5);
        free(g.buf);
    }
    snprintf(path, sizeof path, "%s/gpt2-lora.gguf", dir);
    assert_ok(tr_gguf_write_lora(m, "x", path, &d), d);
    gguf_t g;
    gguf_read(&g, path);
    assert_kv_str(&g, "general.architecture", "gpt2");
    assert_int_equal(g.n_t, 2);
    const ti_t *a = ti_find(&g, "blk.0.attn_qkv.weight.lora_a");
    const ti_t *b = ti_find(&g, "blk.0.attn_qkv.weight.lora_b");
    assert_true(a->ne[0] == 8 && a->ne[1] == 2 && b->ne[0] == 2 && b->ne[1] == 24);
    free(g.buf);
    tr_model_free(m);
}

/* A SentencePiece-style tokenizer (Llama 2's form): tokenizer.ggml.model "llama", tokens as
 * written, types (unknown, control, byte, normal), scores minus the first merge's rank. */
static void test_sentencepiece(void **state)
{
    char sp[128], path[160];
    tio_mkdtemp(sp, sizeof sp, "gguf-sp");
    tio_write_text(
        sp, "tokenizer.json",
        "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", "
        "\"special\": "
        "true}, {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": "
        "\"</s>\", \"special\": true}], \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": "
        "[{\"type\": \"Prepend\", \"prepend\": \"\u2581\"}, {\"type\": \"Replace\", \"pattern\": "
        "{\"String\": \" \"}, \"content\": \"\u2581\"}]}, \"pre_tokenizer\": null, \"decoder\": "
        "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": "
        "\"\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, "
        "{\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}, \"model\": "
        "{\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": "
        "true, "
        "\"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"<0x0A>\": 3, \"\u2581\": 4, \"a\": "
        "5, "
        "\"b\": 6, \"ab\": 7, \"\u2581ab\": 8}, \"merges\": [\"a b\", \"\u2581 ab\"]}}");
    tio_write_text(sp, "tokenizer_config.json",
                   "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": true}");
    tr_model *m = tiny(0);
    tr_config c = *tr_model_config(m);
    tr_model_free(m);
    c.vocab_size = 10;
    m = tr_model_new(&c, NULL);
    snprintf(path, sizeof path, "%s/sp.gguf", sp);
    tr_gguf_opts o = {.type = TR_GGUF_F32};
    mu_diag d = {{0}};
    assert_ok(tr_gguf_write_model(m, sp, &o, path, &d), d);
    gguf_t g;
    gguf_read(&g, path);
    assert_kv_str(&g, "tokenizer.ggml.model", "llama");
    char buf[32];
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 8, buf, sizeof buf), "\u2581ab");
    assert_string_equal(kv_arr_str(&g, "tokenizer.ggml.tokens", 9, buf, sizeof buf), "[PAD9]");
    const kv_t *tt = kv_find(&g, "tokenizer.ggml.token_type");
    static const uint32_t want_tt[10] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 5};
    for (int i = 0; i < 10; i++)
        assert_int_equal(mu_le32(g.buf + tt->at + 4 * i), want_tt[i]);
    const kv_t *sc = kv_find(&g, "tokenizer.ggml.scores");
    assert_true(sc->arr_type == 6 && sc->arr_n == 10);
    float f[10];
    for (int i = 0; i < 10; i++) {
        uint32_t u = mu_le32(g.buf + sc->at + 4 * i);
        memcpy(&f[i], &u, 4);
    }
    assert_true(f[7] == -1.0f && f[8] == -2.0f && f[5] == -3.0f && f[3] == -3.0f);
    assert_int_equal(kv_u32(&g, "tokenizer.ggml.unknown_token_id"), 0);
    assert_int_equal(kv_u32(&g, "tokenizer.ggml.bos_token_id"), 1);
    free(g.buf);
    tr_model_free(m);
    tio_rmdir(sp);
}

static void test_refused(void **state)
{
    char path[128], p2[160];
    snprintf(path, sizeof path, "%s/r.gguf", dir);
    tr_gguf_opts o = {.type = TR_GGUF_F32, .merge = 1};
    mu_diag d = {{0}};
    tr_model *m = tiny(0);
    assert_int_equal(tr_gguf_write_model(m, dir, &o, path, &d), MU_ERR_STATE);
    assert_int_equal(tr_gguf_write_lora(m, NULL, path, &d), MU_ERR_STATE);
    tr_model_free(m);
    tr_config c = *tr_model_config(m = tiny(0));
    tr_model_free(m);
    c.qkv_bias = 1;
    c.o_bias = 1;
    m = tr_model_new(&c, NULL);
    assert_int_equal(tr_gguf_check(m, &d), MU_ERR_UNSUPPORTED);
    assert_non_null(strstr(d.msg, "attention_bias"));
    tr_model_free(m);
    c.o_bias = 0;
    c.qkv_bias = 0;
    c.rope_scaling.type = TR_ROPE_LINEAR;
    c.rope_scaling.factor = 2;
    m = tr_model_new(&c, NULL);
    assert_int_equal(tr_gguf_check(m, &d), MU_ERR_UNSUPPORTED);
    assert_non_null(strstr(d.msg, "other than llama3"));
    tr_model_free(m);
    c.rope_scaling = (tr_rope_scaling){.type = TR_ROPE_LLAMA3,
                                       .factor = 8,
                                       .low_freq_factor = 1,
                                       .high_freq_factor = 4,
                                       .orig_max_pos = 64};
    c.qkv_bias = 1; /* Qwen2 */
    m = tr_model_new(&c, NULL);
    assert_int_equal(tr_gguf_check(m, &d), MU_ERR_UNSUPPORTED);
    tr_model_free(m);
    c.qkv_bias = 0;
    c.rope_scaling.type = TR_ROPE_DEFAULT;
    c.gemma = 2;
    m = tr_model_new(&c, NULL);
    assert_int_equal(tr_gguf_check(m, &d), MU_ERR_UNSUPPORTED);
    assert_non_null(strstr(d.msg, "Gemma 2 is not exported"));
    tr_model_free(m);
    c.gemma = 0;
    tr_config gc = {.family = TR_GPT2,
                    .vocab_size = 260,
                    .max_pos = 8,
                    .d_model = 8,
                    .n_layer = 1,
                    .n_head = 2,
                    .norm_eps = 1e-5f};
    m = tr_model_new(&gc, NULL);
    assert_int_equal(tr_gguf_check(m, &d), MU_OK); /* llama.cpp's gpt2 */
    tr_model_free(m);
    /* a tokenizer id beyond the model's vocab; nothing is written */
    c.rope_scaling.type = TR_ROPE_DEFAULT;
    c.vocab_size = 200;
    m = tr_model_new(&c, NULL);
    o.merge = 0;
    assert_int_equal(tr_gguf_write_model(m, dir, &o, path, &d), MU_ERR_UNSUPPORTED);
    assert_non_null(strstr(d.msg, "vocab_size 200"));
    snprintf(p2, sizeof p2, "%s.tmp", path);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(p2, F_OK), -1);
    tr_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_file),    cmocka_unit_test(test_merge_and_lora_file),
        cmocka_unit_test(test_qwen),          cmocka_unit_test(test_rope_freqs),
        cmocka_unit_test(test_f16),           cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_sentencepiece), cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
