/* Tests of Hugging Face model folders: config.json mapping, weights, and every bad folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "tio_util.h"
#include "tr_hf.h"
#include "tr_safetensors.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "hf");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

/* Every base tensor of m equals the tensor of that name in `file`, looked up as `prefix`
 * stripped or not. */
static void assert_weights_equal(tr_model *m, const char *file, int strip_prefix)
{
    mu_diag d = {{0}};
    tr_st *st = tr_st_open(file, NULL, &d);
    assert_non_null(st);
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        assert_int_equal(tr_model_base_tensor(m, i, &t), 0);
        const char *name = strip_prefix ? t.name + strlen("transformer.") : t.name;
        float *want = malloc((size_t)t.numel * sizeof *want);
        assert_int_equal(tr_st_load(st, name, t.ndim, t.shape, want, &d), 0);
        assert_memory_equal(want, t.data, (size_t)t.numel * sizeof *want);
        free(want);
    }
    tr_st_free(st);
}

static void test_gpt2_folder(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_config c;
    assert_int_equal(tr_hf_config_load(TIO_REF "/gpt2", &c, &d), 0);
    assert_int_equal(c.family, TR_GPT2);
    assert_int_equal(c.vocab_size, 64);
    assert_int_equal(c.max_pos, 32);
    assert_int_equal(c.d_model, 32);
    assert_int_equal(c.n_layer, 2);
    assert_int_equal(c.n_head, 4);
    assert_int_equal(c.d_ff, 128); /* n_inner null -> 4 * n_embd */
    assert_int_equal(c.tied_head, 1);
    assert_true(c.norm_eps == 1e-5f);
    int err = -99;
    tr_model *m = tr_hf_model_load(TIO_REF "/gpt2", &err, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_int_equal(err, 0);
    assert_int_equal(tr_model_base_find(m, "lm_head.weight"), MU_ERR_NOTFOUND);
    assert_weights_equal(m, TIO_REF "/gpt2/model.safetensors", 0);
    tr_model_free(m);
}

static void test_llama_folder(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_config c;
    assert_int_equal(tr_hf_config_load(TIO_REF "/llama", &c, &d), 0);
    assert_int_equal(c.family, TR_LLAMA);
    assert_int_equal(c.n_kv_head, 2);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.d_ff, 64);
    assert_int_equal(c.tied_head, 0);
    assert_int_equal(c.qkv_bias, 0);
    assert_true(c.rope_theta == 1000.0f);
    assert_true(c.norm_eps == 1e-6f);
    tr_model *m = tr_hf_model_load(TIO_REF "/llama", NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_true(tr_model_base_find(m, "lm_head.weight") >= 0);
    assert_weights_equal(m, TIO_REF "/llama/model.safetensors", 0);
    tr_model_free(m);
}

/* A GPT-2 checkpoint saved from GPT2Model: no "transformer." prefix, plus the causal-mask
 * buffers older checkpoints carry; both must load. */
static void test_gpt2_without_prefix(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char sub[128], path[256];
    snprintf(sub, sizeof sub, "%s/bare", dir);
    mkdir(sub, 0755);
    tio_copy(TIO_REF "/gpt2/config.json",
             (snprintf(path, sizeof path, "%s/config.json", sub), path));
    tr_st *st = tr_st_open(TIO_REF "/gpt2/model.safetensors", NULL, &d);
    assert_non_null(st);
    size_t n = tr_st_count(st);
    tr_st_entry *e = calloc(n + 1, sizeof *e);
    float **bufs = calloc(n, sizeof *bufs);
    for (size_t i = 0; i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        e[i].name = t->name + strlen("transformer.");
        e[i].ndim = t->ndim;
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        bufs[i] = malloc(t->numel * sizeof(float));
        assert_int_equal(tr_st_read_f32(st, t, bufs[i], t->numel, &d), 0);
        e[i].data = bufs[i];
    }
    float mask[4] = {1, 0, 1, 1};
    e[n] = (tr_st_entry){.name = "h.0.attn.bias", .ndim = 4, .shape = {1, 1, 2, 2}, .data = mask};
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    assert_int_equal(tr_st_write(path, e, n + 1, NULL, &d), 0);
    tr_model *m = tr_hf_model_load(sub, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_weights_equal(m, path, 1);
    tr_model_free(m);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    tr_st_free(st);
}

/* A folder with the reference weights and the given config.json text. */
static void make_folder(const char *sub, const char *model, const char *config_json)
{
    char path[256];
    mkdir(sub, 0755);
    tio_write_text(sub, "config.json", config_json);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    char from[256];
    snprintf(from, sizeof from, TIO_REF "/%s/model.safetensors", model);
    tio_copy(from, path);
}

static void expect_load_error(const char *sub, int want_err, const char *want)
{
    mu_diag d = {{0}};
    int err = 0;
    assert_null(tr_hf_model_load(sub, &err, &d));
    assert_int_equal(err, want_err);
    tio_assert_msg(d.msg, want);
}

static const char gpt2_cfg_fmt[] =
    "{\"model_type\": \"gpt2\", \"vocab_size\": 64, \"n_positions\": 32,"
    " \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 4%s}";

static void test_shape_mismatch(void **state)
{
    (void)state;
    char sub[128], cfg[512];
    snprintf(sub, sizeof sub, "%s/shape", dir);
    snprintf(cfg, sizeof cfg, gpt2_cfg_fmt, ", \"n_inner\": 64");
    make_folder(sub, "gpt2", cfg);
    expect_load_error(sub, MU_ERR_FORMAT,
                      "model.safetensors: tensor 'transformer.h.0.mlp.c_fc.weight' has shape "
                      "[32, 128], expected [32, 64] (config.json)");
    snprintf(cfg, sizeof cfg, gpt2_cfg_fmt, ", \"vocab_size\": 65");
    /* duplicate key: refused as malformed JSON */
    make_folder(sub, "gpt2", cfg);
    expect_load_error(sub, MU_ERR_FORMAT, "config.json:");
    snprintf(cfg, sizeof cfg, gpt2_cfg_fmt, ", \"scale_attn_weights\": false");
    make_folder(sub, "gpt2", cfg);
    expect_load_error(sub, MU_ERR_UNSUPPORTED, "option 'scale_attn_weights false'");
    /* more layers than the file has */
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"gpt2\", \"vocab_size\": 64, \"n_positions\": 32, \"n_embd\": 32,"
             " \"n_layer\": 3, \"n_head\": 4}");
    make_folder(sub, "gpt2", cfg);
    expect_load_error(sub, MU_ERR_NOTFOUND, "tensor 'transformer.h.2.ln_1.weight' is missing");
}

static void test_unsupported_configs(void **state)
{
    (void)state;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/unsup", dir);
    make_folder(sub, "gpt2", "{\"model_type\": \"bert\", \"vocab_size\": 64}");
    expect_load_error(sub, MU_ERR_UNSUPPORTED, "config.json: model_type 'bert' is not supported");
    static const char llama_fmt[] =
        "{\"model_type\": \"%s\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
        "\"num_key_value_heads\": 2, \"max_position_embeddings\": 32%s}";
    char cfg[512];
    snprintf(cfg, sizeof cfg, llama_fmt, "mistral", ", \"sliding_window\": 4096");
    make_folder(sub, "llama", cfg);
    expect_load_error(sub, MU_ERR_UNSUPPORTED, "option 'sliding_window' is not supported");
    snprintf(cfg, sizeof cfg, llama_fmt, "llama", ", \"hidden_act\": \"gelu\"");
    make_folder(sub, "llama", cfg);
    expect_load_error(sub, MU_ERR_UNSUPPORTED, "hidden_act 'gelu' is not supported");
    snprintf(cfg, sizeof cfg, llama_fmt, "llama", ", \"num_attention_heads\": \"four\"");
    make_folder(sub, "llama", cfg);
    expect_load_error(sub, MU_ERR_FORMAT, "config.json:");
    make_folder(sub, "llama", "{\"vocab_size\": 64}");
    expect_load_error(sub, MU_ERR_FORMAT, "config.json: 'model_type' is missing");

    /* Mistral without a window maps to the Llama family; Qwen2 adds q/k/v biases */
    mu_diag d = {{0}};
    tr_config c;
    snprintf(cfg, sizeof cfg, llama_fmt, "mistral", ", \"sliding_window\": null");
    make_folder(sub, "llama", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.family, TR_LLAMA);
    assert_int_equal(c.qkv_bias, 0);
    snprintf(cfg, sizeof cfg, llama_fmt, "qwen2",
             ", \"use_sliding_window\": false, \"tie_word_embeddings\": true");
    make_folder(sub, "llama", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.qkv_bias, 1);
    assert_int_equal(c.o_bias, 0);
    assert_int_equal(c.tied_head, 1);
    /* tied Llama: no lm_head tensor in the model; the file's copy is ignored */
    snprintf(cfg, sizeof cfg, llama_fmt, "llama", ", \"tie_word_embeddings\": true");
    make_folder(sub, "llama", cfg);
    tr_model *m = tr_hf_model_load(sub, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_int_equal(tr_model_config(m)->tied_head, 1);
    assert_int_equal(tr_model_base_find(m, "lm_head.weight"), MU_ERR_NOTFOUND);
    tr_model_free(m);
    /* the Llama weights have no q/k/v biases: loading them as Qwen2 names the first one */
    snprintf(cfg, sizeof cfg, llama_fmt, "qwen2", "");
    make_folder(sub, "llama", cfg);
    expect_load_error(sub, MU_ERR_NOTFOUND, "tensor 'model.layers.0.self_attn.q_proj.bias'");
}

/* Qwen3: q/k norms, head_dim defaulting to 128 as Qwen3Config does, biases only with
 * attention_bias, per-layer attention types. */
static void test_qwen3_config(void **state)
{
    (void)state;
    char sub[128], cfg[1024];
    snprintf(sub, sizeof sub, "%s/qwen3", dir);
    mkdir(sub, 0755);
    static const char fmt[] =
        "{\"model_type\": \"qwen3\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
        "\"num_key_value_heads\": 2%s}";
    tr_config c;
    mu_diag d = {{0}};
    snprintf(cfg, sizeof cfg, fmt, "");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.family, TR_LLAMA);
    assert_int_equal(c.qk_norm, 1);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.qkv_bias, 0);
    assert_int_equal(c.o_bias, 0);
    snprintf(cfg, sizeof cfg, fmt,
             ", \"head_dim\": 16, \"attention_bias\": true, \"use_sliding_window\": false, "
             "\"sliding_window\": 4096, \"layer_types\": [\"full_attention\", "
             "\"full_attention\"]");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.qkv_bias, 1);
    assert_int_equal(c.o_bias, 1);
    snprintf(cfg, sizeof cfg, fmt,
             ", \"layer_types\": [\"full_attention\", \"sliding_attention\"]");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), MU_ERR_UNSUPPORTED);
    tio_assert_msg(d.msg, "layer_types[1] 'sliding_attention' is not supported");
    snprintf(cfg, sizeof cfg, fmt, ", \"use_sliding_window\": true");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), MU_ERR_UNSUPPORTED);
    tio_assert_msg(d.msg, "option 'use_sliding_window' is not supported");

    /* the reference Qwen3 loads; told it is a Llama, its q/k norm weights are refused as
     * unused; a Llama's weights lack them */
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", sub);
    tio_copy(TIO_REF "/qwen3/config.json", path);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    tio_copy(TIO_REF "/qwen3/model.safetensors", path);
    tr_model *m = tr_hf_model_load(sub, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_int_equal(tr_model_config(m)->head_dim, 12);
    assert_true(tr_model_base_find(m, "model.layers.1.self_attn.k_norm.weight") >= 0);
    assert_weights_equal(m, TIO_REF "/qwen3/model.safetensors", 0);
    tr_model_free(m);
    unsigned char *text;
    size_t len;
    assert_non_null(text = tio_read(TIO_REF "/qwen3/config.json", &len));
    char *at = strstr((char *)text, "\"qwen3\"");
    assert_non_null(at);
    memcpy(at, "\"llama\"", 7);
    tio_write_text(sub, "config.json", (char *)text);
    free(text);
    expect_load_error(sub, MU_ERR_FORMAT, "_norm.weight is not used by the model that config.json");
    make_folder(sub, "llama",
                "{\"model_type\": \"qwen3\", \"vocab_size\": 64, "
                "\"hidden_size\": 32, \"intermediate_size\": 64, "
                "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                "\"num_key_value_heads\": 2, \"head_dim\": 8}");
    expect_load_error(sub, MU_ERR_NOTFOUND, "tensor 'model.layers.0.self_attn.q_norm.weight'");
}

/* Gemma 2 / Gemma 3 text config.json: transformers' defaults, null softcaps and windows,
 * layer_types, transformers 5's per-layer-type rope_parameters, and each refusal. */
static void test_gemma_config(void **state)
{
    (void)state;
    char sub[128], cfg[2048];
    snprintf(sub, sizeof sub, "%s/gemma", dir);
    mkdir(sub, 0755);
    static const char g2[] =
        "{\"model_type\": \"gemma2\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": 4, \"num_attention_heads\": 4%s}";
    static const char g3[] =
        "{\"model_type\": \"gemma3_text\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": 6, \"num_attention_heads\": 4%s}";
    tr_config c;
    mu_diag d = {{0}};
    snprintf(cfg, sizeof cfg, g2, "");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.family, TR_LLAMA);
    assert_int_equal(c.gemma, 2);
    assert_int_equal(c.head_dim, 256);
    assert_int_equal(c.n_kv_head, 4);
    assert_int_equal(c.tied_head, 1);
    assert_int_equal(c.max_pos, 8192);
    assert_int_equal(c.sliding_window, 4096);
    assert_int_equal(c.sliding_pattern, 2);
    assert_int_equal(c.qk_norm, 0);
    assert_float_equal(c.attn_scalar, 256.0, 0.0);
    assert_float_equal(c.attn_softcap, 50.0, 0.0);
    assert_float_equal(c.final_softcap, 30.0, 0.0);
    assert_float_equal(c.rope_local_theta, 0.0, 0.0);
    snprintf(cfg, sizeof cfg, g2,
             ", \"attn_logit_softcapping\": null, \"final_logit_softcapping\": 12.5, "
             "\"sliding_window\": null, \"head_dim\": 8, \"query_pre_attn_scalar\": 144");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_float_equal(c.attn_softcap, 0.0, 0.0);
    assert_float_equal(c.final_softcap, 12.5, 0.0);
    assert_int_equal(c.sliding_window, 0);
    assert_int_equal(c.sliding_pattern, 0);
    assert_float_equal(c.attn_scalar, 144.0, 0.0);

    snprintf(cfg, sizeof cfg, g3, ", \"sliding_window\": 512");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.gemma, 3);
    assert_int_equal(c.qk_norm, 1);
    assert_int_equal(c.sliding_window, 512);
    assert_int_equal(c.sliding_pattern, 6);
    assert_float_equal(c.rope_theta, 1e6, 0.0);
    assert_float_equal(c.rope_local_theta, 1e4, 0.0);
    assert_float_equal(c.attn_softcap, 0.0, 0.0);
    assert_float_equal(c.final_softcap, 0.0, 0.0);
    snprintf(cfg, sizeof cfg, g3,
             ", \"layer_types\": [\"sliding_attention\", \"sliding_attention\", "
             "\"full_attention\", \"sliding_attention\", \"sliding_attention\", "
             "\"full_attention\"], \"rope_local_base_freq\": 100, "
             "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.sliding_pattern, 3);
    assert_float_equal(c.rope_local_theta, 100.0, 0.0);
    assert_int_equal(c.rope_scaling.type, TR_ROPE_LINEAR);
    snprintf(cfg, sizeof cfg, g3,
             ", \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"linear\", "
             "\"factor\": 8.0, \"rope_theta\": 1000000.0}, \"sliding_attention\": "
             "{\"rope_type\": \"default\", \"rope_theta\": 10000.0}}");
    tio_write_text(sub, "config.json", cfg);
    assert_int_equal(tr_hf_config_load(sub, &c, &d), 0);
    assert_int_equal(c.rope_scaling.type, TR_ROPE_LINEAR);
    assert_float_equal(c.rope_scaling.factor, 8.0, 0.0);
    assert_float_equal(c.rope_theta, 1e6, 0.0);
    assert_float_equal(c.rope_local_theta, 1e4, 0.0);

    static const struct {
        const char *fmt, *extra;
        int err;
        const char *msg;
    } bad[] = {
        {g3,
         ", \"layer_types\": [\"sliding_attention\", \"full_attention\", "
         "\"full_attention\", \"sliding_attention\", \"sliding_attention\", "
         "\"full_attention\"]",
         MU_ERR_UNSUPPORTED, "layer_types[2] 'full_attention' is not supported"},
        {g3, ", \"layer_types\": [\"full_attention\"]", MU_ERR_FORMAT,
         "'layer_types' must be a list of num_hidden_layers (6) names"},
        {g2, ", \"hidden_activation\": \"gelu\"", MU_ERR_UNSUPPORTED,
         "hidden_activation 'gelu' is not supported"},
        {g2, ", \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2}", MU_ERR_UNSUPPORTED,
         "option 'rope_scaling on gemma2' is not supported"},
        {g3, ", \"use_bidirectional_attention\": true", MU_ERR_UNSUPPORTED,
         "option 'use_bidirectional_attention' is not supported"},
        {g2, ", \"attn_logit_softcapping\": -1", MU_ERR_FORMAT,
         "'attn_logit_softcapping' must be a number"},
        {g2, ", \"sliding_window\": 0", MU_ERR_FORMAT, "'sliding_window' must be an integer"},
        {g3,
         ", \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\", "
         "\"rope_theta\": 1e6}, \"sliding_attention\": {\"rope_type\": \"linear\", "
         "\"factor\": 2, \"rope_theta\": 1e4}}",
         MU_ERR_UNSUPPORTED, "rope_parameters.sliding_attention scaling"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cfg, sizeof cfg, bad[i].fmt, bad[i].extra);
        tio_write_text(sub, "config.json", cfg);
        assert_int_equal(tr_hf_config_load(sub, &c, &d), bad[i].err);
        tio_assert_msg(d.msg, bad[i].msg);
    }
    tio_write_text(sub, "config.json",
                   "{\"model_type\": \"gemma3\", \"text_config\": {\"model_type\": "
                   "\"gemma3_text\"}}");
    assert_int_equal(tr_hf_config_load(sub, &c, &d), MU_ERR_UNSUPPORTED);
    tio_assert_msg(d.msg, "only Gemma 3 text models (model_type gemma3_text");

    /* the reference Gemma 2 loads with its four norms a layer; told it is a Llama, its
     * pre/post-feedforward norms are refused as unused */
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", sub);
    tio_copy(TIO_REF "/gemma2/config.json", path);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    tio_copy(TIO_REF "/gemma2/model.safetensors", path);
    tr_model *m = tr_hf_model_load(sub, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_true(tr_model_base_find(m, "model.layers.2.post_feedforward_layernorm.weight") >= 0);
    assert_true(tr_model_base_find(m, "model.layers.0.pre_feedforward_layernorm.weight") >= 0);
    assert_weights_equal(m, TIO_REF "/gemma2/model.safetensors", 0);
    tr_model_free(m);
    make_folder(sub, "gemma2",
                "{\"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, "
                "\"intermediate_size\": 64, \"num_hidden_layers\": 3, "
                "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 12, "
                "\"tie_word_embeddings\": true}");
    expect_load_error(sub, MU_ERR_FORMAT, "feedforward_layernorm.weight is not used by the model");
}

/* config.json's rope_scaling: what each type reads, and every refusal naming the field. */
static void test_rope_scaling_config(void **state)
{
    (void)state;
    char sub[128], cfg[1024];
    snprintf(sub, sizeof sub, "%s/rope", dir);
    mkdir(sub, 0755);
    static const char fmt[] =
        "{\"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
        "\"max_position_embeddings\": 32, \"rope_scaling\": %s}";
    static const struct {
        const char *json;
        tr_rope_type type;
        double factor, low, high;
        int orig;
    } good[] = {
        {"null", TR_ROPE_DEFAULT, 0, 0, 0, 0},
        {"{\"rope_type\": \"default\"}", TR_ROPE_DEFAULT, 0, 0, 0, 0},
        {"{\"type\": \"linear\", \"factor\": 2.5}", TR_ROPE_LINEAR, 2.5, 0, 0, 0},
        {"{\"rope_type\": \"dynamic\", \"factor\": 2, \"original_max_position_embeddings\": 8}",
         TR_ROPE_DYNAMIC, 2, 0, 0, 0},
        {"{\"factor\": 32.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, "
         "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}",
         TR_ROPE_LLAMA3, 32, 1, 4, 8192},
        /* rope_type wins over the older key, as in transformers */
        {"{\"rope_type\": \"linear\", \"type\": \"yarn\", \"factor\": 3}", TR_ROPE_LINEAR, 3, 0, 0,
         0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(cfg, sizeof cfg, fmt, good[i].json);
        tio_write_text(sub, "config.json", cfg);
        tr_config c;
        mu_diag d = {{0}};
        if (tr_hf_config_load(sub, &c, &d))
            fail_msg("%s: %s", good[i].json, d.msg);
        assert_int_equal(c.rope_scaling.type, good[i].type);
        assert_true(c.rope_scaling.factor == good[i].factor);
        assert_true(c.rope_scaling.low_freq_factor == good[i].low);
        assert_true(c.rope_scaling.high_freq_factor == good[i].high);
        assert_int_equal(c.rope_scaling.orig_max_pos, good[i].orig);
    }
    static const struct {
        const char *json;
        int err;
        const char *msg;
    } bad[] = {
        {"{\"rope_type\": \"yarn\", \"factor\": 4.0}", MU_ERR_UNSUPPORTED,
         "rope_scaling type 'yarn' is not supported (default, linear, dynamic, llama3)"},
        {"{\"type\": \"longrope\"}", MU_ERR_UNSUPPORTED, "rope_scaling type 'longrope'"},
        {"{\"rope_type\": \"su\"}", MU_ERR_UNSUPPORTED, "rope_scaling type 'su'"},
        {"{\"factor\": 2.0}", MU_ERR_FORMAT, "rope_scaling needs a string 'rope_type'"},
        {"{\"rope_type\": 3}", MU_ERR_FORMAT, "rope_scaling needs a string 'rope_type'"},
        {"4", MU_ERR_FORMAT, "'rope_scaling' must be an object or null"},
        {"{\"rope_type\": \"linear\"}", MU_ERR_FORMAT, "type 'linear' needs 'factor'"},
        {"{\"rope_type\": \"dynamic\", \"factor\": null}", MU_ERR_FORMAT,
         "type 'dynamic' needs 'factor'"},
        {"{\"rope_type\": \"linear\", \"factor\": -2}", MU_ERR_FORMAT,
         "rope_scaling 'factor' must be a positive number"},
        {"{\"rope_type\": \"linear\", \"factor\": \"2\"}", MU_ERR_FORMAT,
         "rope_scaling 'factor' must be a positive number"},
        {"{\"rope_type\": \"llama3\", \"low_freq_factor\": 1, \"high_freq_factor\": 4, "
         "\"original_max_position_embeddings\": 8192}",
         MU_ERR_FORMAT, "type 'llama3' needs 'factor'"},
        {"{\"rope_type\": \"llama3\", \"factor\": 8, \"high_freq_factor\": 4, "
         "\"original_max_position_embeddings\": 8192}",
         MU_ERR_FORMAT, "type 'llama3' needs 'low_freq_factor'"},
        {"{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, "
         "\"original_max_position_embeddings\": 8192}",
         MU_ERR_FORMAT, "type 'llama3' needs 'high_freq_factor'"},
        {"{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, "
         "\"high_freq_factor\": 4}",
         MU_ERR_FORMAT, "type 'llama3' needs 'original_max_position_embeddings'"},
        {"{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, "
         "\"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192.5}",
         MU_ERR_FORMAT, "'original_max_position_embeddings' must be a positive integer"},
        {"{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, "
         "\"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}",
         MU_ERR_FORMAT, "'high_freq_factor' 4 must be greater than 'low_freq_factor' 4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cfg, sizeof cfg, fmt, bad[i].json);
        tio_write_text(sub, "config.json", cfg);
        tr_config c;
        mu_diag d = {{0}};
        assert_int_equal(tr_hf_config_load(sub, &c, &d), bad[i].err);
        tio_assert_msg(d.msg, "config.json: ");
        tio_assert_msg(d.msg, bad[i].msg);
    }
    /* transformers 5 writes rope_theta and the scaling together as rope_parameters */
    static const char fmt5[] =
        "{\"model_type\": \"qwen3\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
        "\"head_dim\": 8, \"rope_parameters\": %s%s}";
    static const struct {
        const char *params, *extra;
        int err;
        const char *msg;
        tr_rope_type type;
        float theta;
    } v5[] = {
        {"{\"rope_type\": \"default\", \"rope_theta\": 1000000.0}", "", 0, NULL, TR_ROPE_DEFAULT,
         1e6f},
        {"{\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 32.0, "
         "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
         "\"original_max_position_embeddings\": 8192}",
         "", 0, NULL, TR_ROPE_LLAMA3, 5e5f},
        {"{\"rope_type\": \"default\"}", "", 0, NULL, TR_ROPE_DEFAULT, 10000.0f},
        {"{\"rope_type\": \"default\", \"rope_theta\": 1e6}", ", \"rope_theta\": 1e6",
         MU_ERR_FORMAT, "'rope_parameters' and 'rope_theta' are both set", 0, 0},
        {"{\"rope_type\": \"default\"}", ", \"rope_scaling\": {\"rope_type\": \"default\"}",
         MU_ERR_FORMAT, "'rope_parameters' and 'rope_scaling' are both set", 0, 0},
        {"{\"rope_type\": \"yarn\", \"factor\": 4.0}", "", MU_ERR_UNSUPPORTED,
         "rope_parameters type 'yarn' is not supported", 0, 0},
        {"{\"rope_type\": \"default\", \"rope_theta\": \"big\"}", "", MU_ERR_FORMAT,
         "rope_parameters 'rope_theta' must be a number", 0, 0},
        {"{\"full_attention\": {\"rope_type\": \"default\"}}", "", MU_ERR_FORMAT,
         "rope_parameters needs a string 'rope_type'", 0, 0},
    };
    for (size_t i = 0; i < sizeof v5 / sizeof v5[0]; i++) {
        snprintf(cfg, sizeof cfg, fmt5, v5[i].params, v5[i].extra);
        tio_write_text(sub, "config.json", cfg);
        tr_config c5;
        mu_diag d5 = {{0}};
        assert_int_equal(tr_hf_config_load(sub, &c5, &d5), v5[i].err);
        if (v5[i].msg) {
            tio_assert_msg(d5.msg, v5[i].msg);
            continue;
        }
        assert_int_equal(c5.rope_scaling.type, v5[i].type);
        assert_true(c5.rope_theta == v5[i].theta);
    }
    /* partial rotary embeddings are not what the engine computes */
    snprintf(cfg, sizeof cfg, fmt, "null, \"partial_rotary_factor\": 0.5");
    tio_write_text(sub, "config.json", cfg);
    tr_config c;
    mu_diag d = {{0}};
    assert_int_equal(tr_hf_config_load(sub, &c, &d), MU_ERR_UNSUPPORTED);
    tio_assert_msg(d.msg, "option 'partial_rotary_factor' is not supported");
}

static void test_missing_and_broken_files(void **state)
{
    (void)state;
    char sub[128], path[256];
    snprintf(sub, sizeof sub, "%s/nothing", dir);
    expect_load_error(sub, MU_ERR_NOTFOUND, "nothing/config.json: No such file");
    mkdir(sub, 0755);
    tio_copy(TIO_REF "/gpt2/config.json",
             (snprintf(path, sizeof path, "%s/config.json", sub), path));
    expect_load_error(sub, MU_ERR_NOTFOUND, "nothing/model.safetensors: No such file");

    /* truncated weights: the last tensor runs past the end */
    size_t len;
    unsigned char *b = tio_read(TIO_REF "/gpt2/model.safetensors", &len);
    assert_non_null(b);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    tio_write(path, b, len - 100);
    expect_load_error(sub, MU_ERR_FORMAT, "run past the end of the data");
    expect_load_error(sub, MU_ERR_FORMAT, "model.safetensors: tensor 'transformer.wte.weight'");
    free(b);

    /* an unsupported dtype in one tensor */
    mu_diag d = {{0}};
    tr_st *st = tr_st_open(TIO_REF "/gpt2/model.safetensors", NULL, &d);
    size_t n = tr_st_count(st);
    tr_st_entry *e = calloc(n, sizeof *e);
    float **bufs = calloc(n, sizeof *bufs);
    for (size_t i = 0; i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        e[i] = (tr_st_entry){.name = t->name, .ndim = t->ndim};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        bufs[i] = malloc(t->numel * sizeof(float));
        tr_st_read_f32(st, t, bufs[i], t->numel, &d);
        e[i].data = bufs[i];
    }
    uint8_t *img;
    size_t img_len;
    assert_int_equal(tr_st_serialize(e, n, NULL, &img, &img_len, &d), 0);
    /* relabel ln_f.bias (32 floats = 128 bytes) as I32: same size, a dtype we refuse */
    char *hit = strstr((char *)img + 8, "\"transformer.ln_f.bias\":{\"data_offsets\"");
    assert_non_null(hit);
    char *dt = strstr(hit, "\"dtype\":\"F32\"");
    assert_non_null(dt);
    memcpy(dt + 9, "I32", 3);
    tio_write(path, img, img_len);
    expect_load_error(sub, MU_ERR_UNSUPPORTED,
                      "model.safetensors: tensor 'transformer.ln_f.bias' has dtype I32");
    free(img);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    tr_st_free(st);
}

/* A BF16 checkpoint (as many are published) loads widened to F32: each weight equals the
 * reference value with its low 16 bits cleared. */
static void test_bf16_model(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char sub[128], path[256];
    snprintf(sub, sizeof sub, "%s/bf16", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/config.json", sub);
    tio_copy(TIO_REF "/llama/config.json", path);
    tr_st *st = tr_st_open(TIO_REF "/llama/model.safetensors", NULL, &d);
    assert_non_null(st);
    size_t n = tr_st_count(st), hcap = 64 + n * 256, hl = 0, off = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        total += tr_st_at(st, i)->numel * 2;
    char *hdr = malloc(hcap);
    uint16_t *bits = malloc(total);
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "{");
    for (size_t i = 0; i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        float *v = malloc(t->numel * sizeof *v);
        assert_int_equal(tr_st_read_f32(st, t, v, t->numel, &d), 0);
        for (size_t k = 0; k < t->numel; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            bits[off / 2 + k] = (uint16_t)(u >> 16);
        }
        free(v);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[",
                               i ? "," : "", t->name);
        for (int k = 0; k < t->ndim; k++)
            hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s%lld", k ? "," : "",
                                   (long long)t->shape[k]);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "],\"data_offsets\":[%zu,%zu]}", off,
                               off + t->numel * 2);
        off += t->numel * 2;
    }
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
    size_t len = 8 + hl + total;
    uint8_t *img = malloc(len);
    for (int i = 0; i < 8; i++)
        img[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(img + 8, hdr, hl);
    memcpy(img + 8 + hl, bits, total);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    tio_write(path, img, len);
    tr_model *m = tr_hf_model_load(sub, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        assert_int_equal(tr_model_base_tensor(m, i, &t), 0);
        const tr_st_info *ref = tr_st_find(st, t.name);
        assert_non_null(ref);
        float *v = malloc((size_t)t.numel * sizeof *v);
        assert_int_equal(tr_st_read_f32(st, ref, v, ref->numel, &d), 0);
        for (int64_t k = 0; k < t.numel; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            u &= 0xffff0000u;
            float want;
            memcpy(&want, &u, 4);
            assert_true(t.data[k] == want);
        }
        free(v);
    }
    tr_model_free(m);
    free(img);
    free(hdr);
    free(bits);
    tr_st_free(st);
}

/* A sharded checkpoint: the reference GPT-2 split over two files plus an index. */
static void test_sharded(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char sub[128], path[256];
    snprintf(sub, sizeof sub, "%s/sharded", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/config.json", sub);
    tio_copy(TIO_REF "/gpt2/config.json", path);
    tr_st *st = tr_st_open(TIO_REF "/gpt2/model.safetensors", NULL, &d);
    assert_non_null(st);
    size_t n = tr_st_count(st);
    tr_st_entry *e = calloc(n, sizeof *e);
    float **bufs = calloc(n, sizeof *bufs);
    char index[8192];
    size_t o = (size_t)snprintf(index, sizeof index, "{\"metadata\": {}, \"weight_map\": {");
    for (size_t i = 0; i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        e[i] = (tr_st_entry){.name = t->name, .ndim = t->ndim};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        bufs[i] = malloc(t->numel * sizeof(float));
        tr_st_read_f32(st, t, bufs[i], t->numel, &d);
        e[i].data = bufs[i];
        o += (size_t)snprintf(index + o, sizeof index - o, "%s\"%s\": \"model-0000%d.st\"",
                              i ? ", " : "", t->name, i < n / 2 ? 1 : 2);
    }
    snprintf(index + o, sizeof index - o, "}}");
    snprintf(path, sizeof path, "%s/model-00001.st", sub);
    assert_int_equal(tr_st_write(path, e, n / 2, NULL, &d), 0);
    snprintf(path, sizeof path, "%s/model-00002.st", sub);
    assert_int_equal(tr_st_write(path, e + n / 2, n - n / 2, NULL, &d), 0);
    tio_write_text(sub, "model.safetensors.index.json", index);
    tr_model *m = tr_hf_model_load(sub, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    assert_weights_equal(m, TIO_REF "/gpt2/model.safetensors", 0);
    tr_model_free(m);

    /* a shard outside the folder is refused; a missing shard names its file */
    tio_write_text(sub, "model.safetensors.index.json",
                   "{\"weight_map\": {\"transformer.wte.weight\": \"../model-00001.st\"}}");
    expect_load_error(sub, MU_ERR_FORMAT, "shard '../model-00001.st' is not a file of the folder");
    tio_write_text(sub, "model.safetensors.index.json",
                   "{\"weight_map\": {\"transformer.wte.weight\": \"model-00003.st\"}}");
    expect_load_error(sub, MU_ERR_NOTFOUND, "sharded/model-00003.st: No such file");
    /* a tensor in no shard names the index */
    tio_write_text(sub, "model.safetensors.index.json",
                   "{\"weight_map\": {\"transformer.wte.weight\": \"model-00001.st\"}}");
    expect_load_error(sub, MU_ERR_NOTFOUND, "model.safetensors.index.json: tensor '");
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    tr_st_free(st);
}

/* The reference weights of `model` rewritten as `dtype` ("F32" or "BF16") into SUB, with
 * element `at` of tensor `poison` (if not NULL) set to NaN. */
static void write_poisoned(const char *sub, const char *model, const char *dtype,
                           const char *poison, size_t at)
{
    mu_diag d = {{0}};
    char path[256];
    mkdir(sub, 0755);
    snprintf(path, sizeof path, TIO_REF "/%s/config.json", model);
    char to[256];
    snprintf(to, sizeof to, "%s/config.json", sub);
    tio_copy(path, to);
    snprintf(path, sizeof path, TIO_REF "/%s/model.safetensors", model);
    tr_st *st = tr_st_open(path, NULL, &d);
    assert_non_null(st);
    int bf16 = !strcmp(dtype, "BF16");
    size_t n = tr_st_count(st), hcap = 64 + n * 256, hl = 0, off = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        total += tr_st_at(st, i)->numel * (bf16 ? 2 : 4);
    char *hdr = malloc(hcap);
    uint8_t *data = malloc(total);
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "{");
    for (size_t i = 0; i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        float *v = malloc(t->numel * sizeof *v);
        assert_int_equal(tr_st_read_f32(st, t, v, t->numel, &d), 0);
        if (poison && !strcmp(t->name, poison)) {
            assert_true(at < t->numel);
            v[at] = NAN;
        }
        size_t esz = bf16 ? 2 : 4;
        for (size_t k = 0; k < t->numel; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            if (bf16) {
                uint16_t h = (uint16_t)(u >> 16);
                memcpy(data + off + k * 2, &h, 2);
            } else {
                memcpy(data + off + k * 4, &u, 4);
            }
        }
        free(v);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                               i ? "," : "", t->name, dtype);
        for (int k = 0; k < t->ndim; k++)
            hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s%lld", k ? "," : "",
                                   (long long)t->shape[k]);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "],\"data_offsets\":[%zu,%zu]}", off,
                               off + t->numel * esz);
        off += t->numel * esz;
    }
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
    size_t len = 8 + hl + total;
    uint8_t *img = malloc(len);
    for (int i = 0; i < 8; i++)
        img[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(img + 8, hdr, hl);
    memcpy(img + 8 + hl, data, total);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    tio_write(path, img, len);
    free(img);
    free(hdr);
    free(data);
    tr_st_free(st);
}

/* One NaN in a base tensor is refused at load, naming the tensor and the index, in F32 and
 * after BF16 widening; the same folders without the NaN load. */
static void test_nonfinite_weights(void **state)
{
    (void)state;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/nan32", dir);
    write_poisoned(sub, "gpt2", "F32", NULL, 0);
    tr_model *m = tr_hf_model_load(sub, NULL, NULL);
    assert_non_null(m);
    tr_model_free(m);
    write_poisoned(sub, "gpt2", "F32", "transformer.h.1.mlp.c_fc.weight", 1234);
    expect_load_error(sub, MU_ERR_FORMAT,
                      "tensor 'transformer.h.1.mlp.c_fc.weight' has a non-finite value (nan) at "
                      "index 1234 of 4096");
    snprintf(sub, sizeof sub, "%s/nan16", dir);
    write_poisoned(sub, "llama", "BF16", NULL, 0);
    m = tr_hf_model_load(sub, NULL, NULL);
    assert_non_null(m);
    tr_model_free(m);
    write_poisoned(sub, "llama", "BF16", "model.norm.weight", 5);
    expect_load_error(sub, MU_ERR_FORMAT,
                      "tensor 'model.norm.weight' has a non-finite value (nan) at index 5 of");
}

/* A config.json with fewer layers than the weights is refused naming the first unused
 * tensor; other unused tensors are refused too, GPT-2's mask buffers are not (above). */
static void test_unused_tensors(void **state)
{
    (void)state;
    char sub[128], cfg[512];
    snprintf(sub, sizeof sub, "%s/fewer", dir);
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"gpt2\", \"vocab_size\": 64, \"n_positions\": 32, \"n_embd\": 32,"
             " \"n_layer\": 1, \"n_head\": 4}");
    make_folder(sub, "gpt2", cfg);
    expect_load_error(sub, MU_ERR_FORMAT,
                      "model.safetensors: transformer.h.1.attn.c_attn.bias is not used by a "
                      "1-layer model: n_layer in config.json says 1");
    static const char llama_fmt[] =
        "{\"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, "
        "\"intermediate_size\": 64, \"num_hidden_layers\": %d, \"num_attention_heads\": 4, "
        "\"num_key_value_heads\": 2, \"head_dim\": 8, \"max_position_embeddings\": 32, "
        "\"rope_theta\": 1000.0}";
    snprintf(cfg, sizeof cfg, llama_fmt, 1);
    make_folder(sub, "llama", cfg);
    expect_load_error(sub, MU_ERR_FORMAT,
                      "model.layers.1.input_layernorm.weight is not used by a 1-layer model: "
                      "num_hidden_layers in config.json says 1");
    snprintf(cfg, sizeof cfg, llama_fmt, 2);
    make_folder(sub, "llama", cfg);
    tr_model *m = tr_hf_model_load(sub, NULL, NULL);
    assert_non_null(m);
    tr_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_folder),         cmocka_unit_test(test_llama_folder),
        cmocka_unit_test(test_gpt2_without_prefix), cmocka_unit_test(test_shape_mismatch),
        cmocka_unit_test(test_unsupported_configs), cmocka_unit_test(test_missing_and_broken_files),
        cmocka_unit_test(test_bf16_model),          cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_nonfinite_weights),   cmocka_unit_test(test_unused_tensors),
        cmocka_unit_test(test_rope_scaling_config), cmocka_unit_test(test_qwen3_config),
        cmocka_unit_test(test_gemma_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
