/* tr_hf.c - Hugging Face model folders: config.json to tr_config, model.safetensors into
 * the model's base tensors. */
#include "tr_hf.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mu_file.h"
#include "mu_log.h"
#include "tr_hf_json.h"
#include "tr_safetensors.h"

int tr_json_load(tr_json *j, const char *dir, const char *file, mu_diag *diag)
{
    memset(j, 0, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s/%s", dir, file);
    j->diag = diag;
    char *text;
    size_t len;
    int rc = mu_read_file(j->path, 1u << 20, &text, &len, diag);
    if (rc)
        return rc;
    json_error_t jerr;
    j->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!j->root)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s:%d:%d: %s", j->path, jerr.line, jerr.column,
                           jerr.text);
    if (!json_is_object(j->root)) {
        json_decref(j->root);
        j->root = NULL;
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: not a JSON object", j->path);
    }
    return 0;
}

void tr_json_free(tr_json *j)
{
    json_decref(j->root);
    j->root = NULL;
}

/* The value of key, NULL when absent or JSON null. */
static json_t *value(const tr_json *j, const char *key)
{
    json_t *v = json_object_get(j->root, key);
    return json_is_null(v) ? NULL : v;
}

int tr_json_int(const tr_json *j, const char *key, int required, long min, long max, int *out)
{
    json_t *v = value(j, key);
    if (!v)
        return required ? mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: '%s' is missing", j->path, key)
                        : 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: '%s' must be an integer from %ld to %ld",
                           j->path, key, min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

int tr_json_num(const tr_json *j, const char *key, int required, double min, double max, float *out)
{
    json_t *v = value(j, key);
    if (!v)
        return required ? mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: '%s' is missing", j->path, key)
                        : 0;
    if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max)
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: '%s' must be a number from %g to %g",
                           j->path, key, min, max);
    *out = (float)json_number_value(v);
    return 0;
}

int tr_json_bool(const tr_json *j, const char *key, int *out)
{
    json_t *v = value(j, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: '%s' must be true or false", j->path, key);
    *out = json_is_true(v);
    return 0;
}

const char *tr_json_str(const tr_json *j, const char *key)
{
    return json_string_value(value(j, key));
}

static int unsupported(const tr_json *j, const char *what, const char *key)
{
    return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED, "%s: %s '%s' is not supported", j->path, what,
                       key);
}

static int gpt2_config(const tr_json *j, tr_config *c)
{
    int rc;
    c->family = TR_GPT2;
    c->tied_head = 1; /* GPT2LMHeadModel always ties its head to wte */
    c->norm_eps = 1e-5f;
    if ((rc = tr_json_int(j, "vocab_size", 1, 1, INT_MAX, &c->vocab_size)) ||
        (rc = tr_json_int(j, "n_positions", 1, 1, INT_MAX, &c->max_pos)) ||
        (rc = tr_json_int(j, "n_embd", 1, 1, INT_MAX, &c->d_model)) ||
        (rc = tr_json_int(j, "n_layer", 1, 1, INT_MAX, &c->n_layer)) ||
        (rc = tr_json_int(j, "n_head", 1, 1, INT_MAX, &c->n_head)) ||
        (rc = tr_json_int(j, "n_inner", 0, 1, INT_MAX, &c->d_ff)) ||
        (rc = tr_json_num(j, "layer_norm_epsilon", 0, 0, 1, &c->norm_eps)))
        return rc;
    const char *act = tr_json_str(j, "activation_function");
    if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
        return unsupported(j, "activation_function", act);
    int flag = 0;
    if ((rc = tr_json_bool(j, "scale_attn_by_inverse_layer_idx", &flag)) || flag)
        return rc ? rc : unsupported(j, "option", "scale_attn_by_inverse_layer_idx");
    if ((rc = tr_json_bool(j, "reorder_and_upcast_attn", &flag)) || flag)
        return rc ? rc : unsupported(j, "option", "reorder_and_upcast_attn");
    if ((rc = tr_json_bool(j, "add_cross_attention", &flag)) || flag)
        return rc ? rc : unsupported(j, "option", "add_cross_attention");
    flag = 1;
    if ((rc = tr_json_bool(j, "scale_attn_weights", &flag)) || !flag)
        return rc ? rc : unsupported(j, "option", "scale_attn_weights false");
    return 0;
}

/* A positive number of a rope_scaling object `rs` (called `what` in config.json), required by
 * its type as transformers requires it. */
static int rope_num(const tr_json *j, json_t *rs, const char *what, const char *type,
                    const char *key, double *out)
{
    json_t *v = json_object_get(rs, key);
    if (!v || json_is_null(v))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: %s type '%s' needs '%s'", j->path, what,
                           type, key);
    double x = json_number_value(v);
    int whole = !strcmp(key, "original_max_position_embeddings");
    if (!json_is_number(v) || !(x > 0.0) || !isfinite(x) ||
        (whole && (!json_is_integer(v) || x > INT_MAX)))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: %s '%s' must be a positive %s", j->path,
                           what, key, whole ? "integer" : "number");
    *out = x;
    return 0;
}

/* config.json's rope_scaling (or transformers 5's rope_parameters, `what`): NULL (absent or
 * null), or an object whose rope_type (older files: type) is default, linear, dynamic or
 * llama3, with that type's fields. Keys the type does not use are ignored with a warning, as
 * transformers does. */
static int rope_scaling_config(const tr_json *j, json_t *rs, const char *what, tr_rope_scaling *r)
{
    /* rope_type, type, rope_theta, then each type's own keys in this order */
    static const char *const used[] = {"rope_type",
                                       "type",
                                       "rope_theta",
                                       "factor",
                                       "original_max_position_embeddings",
                                       "low_freq_factor",
                                       "high_freq_factor"};
    memset(r, 0, sizeof *r);
    json_t *t, *v;
    if (!rs)
        return 0;
    if (!json_is_object(rs))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: '%s' must be an object or null", j->path,
                           what);
    if (!(t = json_object_get(rs, "rope_type")) || json_is_null(t))
        t = json_object_get(rs, "type");
    if (!t || !json_is_string(t))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: %s needs a string 'rope_type' (or 'type')",
                           j->path, what);
    const char *type = json_string_value(t);
    int rc = 0, n_used = 3;
    double orig = 0;
    if (!strcmp(type, "linear")) {
        r->type = TR_ROPE_LINEAR;
        rc = rope_num(j, rs, what, type, "factor", &r->factor);
        n_used = 4;
    } else if (!strcmp(type, "dynamic")) {
        r->type = TR_ROPE_DYNAMIC;
        rc = rope_num(j, rs, what, type, "factor", &r->factor);
        n_used = 5; /* transformers accepts original_max_... here and does not use it */
    } else if (!strcmp(type, "llama3")) {
        r->type = TR_ROPE_LLAMA3;
        if (!(rc = rope_num(j, rs, what, type, "factor", &r->factor)) &&
            !(rc = rope_num(j, rs, what, type, "low_freq_factor", &r->low_freq_factor)) &&
            !(rc = rope_num(j, rs, what, type, "high_freq_factor", &r->high_freq_factor)) &&
            !(rc = rope_num(j, rs, what, type, "original_max_position_embeddings", &orig)))
            r->orig_max_pos = (int)orig;
        if (!rc && !(r->high_freq_factor > r->low_freq_factor))
            rc = mu_diag_set(j->diag, MU_ERR_FORMAT,
                             "%s: %s 'high_freq_factor' %g must be greater than "
                             "'low_freq_factor' %g",
                             j->path, what, r->high_freq_factor, r->low_freq_factor);
        n_used = 7;
    } else if (strcmp(type, "default")) {
        return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED,
                           "%s: %s type '%s' is not supported (default, linear, dynamic, llama3)",
                           j->path, what, type);
    }
    const char *k;
    json_object_foreach(rs, k, v)
    {
        int known = 0;
        for (int i = 0; i < n_used; i++)
            known |= !strcmp(k, used[i]);
        if (!known)
            mu_warn("%s: %s '%s' is not used by type '%s'", j->path, what, k, type);
    }
    return rc;
}

/* RoPE's theta and scaling: top-level rope_theta and rope_scaling (transformers 4), or
 * rope_parameters holding both (transformers 5); both spellings at once are refused. */
static int rope_config(const tr_json *j, tr_config *c)
{
    json_t *rp = value(j, "rope_parameters");
    if (!rp) {
        int rc = tr_json_num(j, "rope_theta", 0, 1e-6, 1e30, &c->rope_theta);
        return rc ? rc
                  : rope_scaling_config(j, value(j, "rope_scaling"), "rope_scaling",
                                        &c->rope_scaling);
    }
    if (value(j, "rope_scaling") || value(j, "rope_theta"))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: 'rope_parameters' and '%s' are both set",
                           j->path, value(j, "rope_scaling") ? "rope_scaling" : "rope_theta");
    int rc = rope_scaling_config(j, rp, "rope_parameters", &c->rope_scaling);
    json_t *th = rc ? NULL : json_object_get(rp, "rope_theta");
    if (th && !json_is_null(th)) {
        double x = json_number_value(th);
        if (!json_is_number(th) || !(x >= 1e-6 && x <= 1e30))
            return mu_diag_set(j->diag, MU_ERR_FORMAT,
                               "%s: rope_parameters 'rope_theta' must be a number from 1e-06 "
                               "to 1e+30",
                               j->path);
        c->rope_theta = (float)x;
    }
    return rc;
}

/* The shape keys the Llama family and Gemma share (absent optional ones keep *c's defaults). */
static int llama_shape(const tr_json *j, tr_config *c)
{
    int rc;
    if ((rc = tr_json_int(j, "vocab_size", 1, 1, INT_MAX, &c->vocab_size)) ||
        (rc = tr_json_int(j, "max_position_embeddings", 0, 1, INT_MAX, &c->max_pos)) ||
        (rc = tr_json_int(j, "hidden_size", 1, 1, INT_MAX, &c->d_model)) ||
        (rc = tr_json_int(j, "num_hidden_layers", 1, 1, INT_MAX, &c->n_layer)) ||
        (rc = tr_json_int(j, "num_attention_heads", 1, 1, INT_MAX, &c->n_head)) ||
        (rc = tr_json_int(j, "num_key_value_heads", 0, 1, INT_MAX, &c->n_kv_head)) ||
        (rc = tr_json_int(j, "head_dim", 0, 1, INT_MAX, &c->head_dim)) ||
        (rc = tr_json_int(j, "intermediate_size", 1, 1, INT_MAX, &c->d_ff)) ||
        (rc = tr_json_num(j, "rms_norm_eps", 0, 0, 1, &c->norm_eps)) ||
        (rc = tr_json_bool(j, "tie_word_embeddings", &c->tied_head)))
        return rc;
    return 0;
}

static int llama_config(const tr_json *j, const char *type, tr_config *c)
{
    int rc;
    int qwen3 = !strcmp(type, "qwen3");
    c->family = TR_LLAMA;
    c->norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->max_pos = 2048;
    c->head_dim = qwen3 ? 128 : 0; /* Qwen3Config's default, not hidden / heads */
    c->qk_norm = qwen3;
    if ((rc = llama_shape(j, c)))
        return rc;
    int attention_bias = 0, mlp_bias = 0, sliding = 0;
    if ((rc = tr_json_bool(j, "attention_bias", &attention_bias)) ||
        (rc = tr_json_bool(j, "mlp_bias", &mlp_bias)) ||
        (rc = tr_json_bool(j, "use_sliding_window", &sliding)))
        return rc;
    c->qkv_bias = attention_bias || !strcmp(type, "qwen2");
    c->o_bias = attention_bias;
    if (mlp_bias)
        return unsupported(j, "option", "mlp_bias");
    const char *act = tr_json_str(j, "hidden_act");
    if (act && strcmp(act, "silu"))
        return unsupported(j, "hidden_act", act);
    if ((rc = rope_config(j, c)))
        return rc;
    float partial = 1.0f;
    if ((rc = tr_json_num(j, "partial_rotary_factor", 0, 0, 1, &partial)) || partial != 1.0f)
        return rc ? rc : unsupported(j, "option", "partial_rotary_factor");
    /* Mistral's window applies whenever it is set; Qwen2's only with use_sliding_window. */
    if (!strcmp(type, "mistral") && value(j, "sliding_window"))
        return unsupported(j, "option", "sliding_window");
    if (sliding)
        return unsupported(j, "option", "use_sliding_window");
    /* Qwen2/Qwen3 name each layer's attention; only full (causal) attention is computed. */
    json_t *types = value(j, "layer_types");
    if (types && !json_is_array(types))
        return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: 'layer_types' must be a list", j->path);
    for (size_t i = 0; types && i < json_array_size(types); i++) {
        const char *lt = json_string_value(json_array_get(types, i));
        if (!lt || strcmp(lt, "full_attention"))
            return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED,
                               "%s: layer_types[%zu] '%s' is not supported (only "
                               "full_attention)",
                               j->path, i, lt ? lt : "(not a string)");
    }
    return 0;
}

/* Gemma's layer_types (when given) must be the pattern the engine computes: layer l local
 * (sliding_attention) iff (l + 1) % pattern != 0. The first full_attention layer sets it. */
static int gemma_layer_types(const tr_json *j, tr_config *c)
{
    json_t *types = value(j, "layer_types");
    if (!types)
        return 0;
    if (!json_is_array(types) || json_array_size(types) != (size_t)c->n_layer)
        return mu_diag_set(j->diag, MU_ERR_FORMAT,
                           "%s: 'layer_types' must be a list of num_hidden_layers (%d) names",
                           j->path, c->n_layer);
    int pattern = c->n_layer + 1; /* no full layer: every layer local */
    for (int i = c->n_layer - 1; i >= 0; i--) {
        const char *lt = json_string_value(json_array_get(types, (size_t)i));
        if (lt && !strcmp(lt, "full_attention"))
            pattern = i + 1;
    }
    for (int i = 0; i < c->n_layer; i++) {
        const char *lt = json_string_value(json_array_get(types, (size_t)i));
        const char *want = (i + 1) % pattern ? "sliding_attention" : "full_attention";
        if (!lt || strcmp(lt, want))
            return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED,
                               "%s: layer_types[%d] '%s' is not supported (only a repeating "
                               "pattern of sliding_attention layers ending in one "
                               "full_attention: '%s' expected)",
                               j->path, i, lt ? lt : "(not a string)", want);
    }
    c->sliding_pattern = pattern;
    return 0;
}

/* Gemma 3 under transformers 5: rope_parameters holds one object per layer type; the local
 * (sliding_attention) one must be unscaled, its rope_theta is rope_local_base_freq. */
static int gemma3_rope_v5(const tr_json *j, json_t *rp, tr_config *c)
{
    json_t *full = json_object_get(rp, "full_attention");
    json_t *loc = json_object_get(rp, "sliding_attention");
    if (!json_is_object(full) || !json_is_object(loc) || json_object_size(rp) != 2)
        return mu_diag_set(j->diag, MU_ERR_FORMAT,
                           "%s: 'rope_parameters' by layer type needs objects "
                           "'full_attention' and 'sliding_attention' (and nothing else)",
                           j->path);
    tr_rope_scaling local;
    int rc = rope_scaling_config(j, full, "rope_parameters.full_attention", &c->rope_scaling);
    if (rc || (rc = rope_scaling_config(j, loc, "rope_parameters.sliding_attention", &local)))
        return rc;
    if (local.type != TR_ROPE_DEFAULT)
        return unsupported(j, "option", "rope_parameters.sliding_attention scaling");
    json_t *pairs[2] = {full, loc};
    float *theta[2] = {&c->rope_theta, &c->rope_local_theta};
    for (int i = 0; i < 2; i++) {
        json_t *th = json_object_get(pairs[i], "rope_theta");
        double x = json_number_value(th);
        if (!json_is_number(th) || !(x >= 1e-6 && x <= 1e30))
            return mu_diag_set(j->diag, MU_ERR_FORMAT,
                               "%s: rope_parameters '%s' needs a 'rope_theta' from 1e-06 to "
                               "1e+30",
                               j->path, i ? "sliding_attention" : "full_attention");
        *theta[i] = (float)x;
    }
    return 0;
}

/* Gemma 2 (Gemma2ForCausalLM) and Gemma 3's text model (Gemma3ForCausalLM) as transformers'
 * Gemma2Config / Gemma3TextConfig read config.json, defaults included. */
static int gemma_config(const tr_json *j, const char *type, tr_config *c)
{
    int rc, g3 = !strcmp(type, "gemma3_text");
    c->family = TR_LLAMA;
    c->gemma = g3 ? 3 : 2;
    c->norm_eps = 1e-6f;
    c->rope_theta = g3 ? 1000000.0f : 10000.0f;
    c->max_pos = g3 ? 131072 : 8192;
    c->head_dim = 256;
    c->tied_head = 1;
    c->attn_scalar = 256.0f;
    c->sliding_window = 4096;
    c->sliding_pattern = g3 ? 6 : 2;
    c->qk_norm = g3;
    c->rope_local_theta = g3 ? 10000.0f : 0.0f;
    float final_cap = 30.0f, attn_cap = 50.0f;
    if ((rc = llama_shape(j, c)) ||
        (rc = tr_json_num(j, "query_pre_attn_scalar", 0, 1e-6, 1e30, &c->attn_scalar)))
        return rc;
    if (!value(j, "num_key_value_heads"))
        c->n_kv_head = 4; /* Gemma2Config's and Gemma3TextConfig's default */
    /* Present and null means no cap; absent means the config class's default. */
    if (json_object_get(j->root, "final_logit_softcapping") || g3)
        final_cap = 0.0f;
    if (json_object_get(j->root, "attn_logit_softcapping") || g3)
        attn_cap = 0.0f;
    if ((rc = tr_json_num(j, "final_logit_softcapping", 0, 1e-6, 1e30, &c->final_softcap)) ||
        (rc = tr_json_num(j, "attn_logit_softcapping", 0, 1e-6, 1e30, &c->attn_softcap)))
        return rc;
    c->final_softcap = c->final_softcap > 0.0f ? c->final_softcap : final_cap;
    c->attn_softcap = c->attn_softcap > 0.0f ? c->attn_softcap : attn_cap;
    if (json_object_get(j->root, "sliding_window") && !value(j, "sliding_window"))
        c->sliding_window = 0, c->sliding_pattern = 0; /* null: no window anywhere */
    if ((rc = tr_json_int(j, "sliding_window", 0, 1, INT_MAX, &c->sliding_window)))
        return rc;
    if (g3 && (rc = tr_json_int(j, "sliding_window_pattern", 0, 1, INT_MAX, &c->sliding_pattern)))
        return rc;
    int attention_bias = 0, bidi = 0;
    if ((rc = tr_json_bool(j, "attention_bias", &attention_bias)) ||
        (rc = tr_json_bool(j, "use_bidirectional_attention", &bidi)))
        return rc;
    if (bidi)
        return unsupported(j, "option", "use_bidirectional_attention");
    c->qkv_bias = c->o_bias = attention_bias;
    const char *act = tr_json_str(j, "hidden_activation");
    if (value(j, "hidden_activation") && (!act || strcmp(act, "gelu_pytorch_tanh")))
        return unsupported(j, "hidden_activation", act ? act : "(not a string)");
    json_t *rp = value(j, "rope_parameters");
    if (g3 && rp && json_object_get(rp, "sliding_attention")) {
        if (value(j, "rope_scaling") || value(j, "rope_theta") || value(j, "rope_local_base_freq"))
            return mu_diag_set(j->diag, MU_ERR_FORMAT,
                               "%s: 'rope_parameters' by layer type and rope_scaling, "
                               "rope_theta or rope_local_base_freq are both set",
                               j->path);
        rc = gemma3_rope_v5(j, rp, c);
    } else {
        rc = rope_config(j, c);
    }
    if (rc)
        return rc;
    /* Gemma 2's rotary embedding took no scaling in the transformers that introduced it. */
    if (!g3 && c->rope_scaling.type != TR_ROPE_DEFAULT)
        return unsupported(j, "option", "rope_scaling on gemma2");
    if (g3 && (rc = tr_json_num(j, "rope_local_base_freq", 0, 1e-6, 1e30, &c->rope_local_theta)))
        return rc;
    if (!c->sliding_window)
        c->sliding_pattern = 0;
    if (c->sliding_window && (rc = gemma_layer_types(j, c)))
        return rc;
    if (!c->sliding_window && value(j, "layer_types")) {
        json_t *types = value(j, "layer_types");
        for (size_t i = 0; json_is_array(types) && i < json_array_size(types); i++) {
            const char *lt = json_string_value(json_array_get(types, i));
            if (!lt || strcmp(lt, "full_attention"))
                return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED,
                                   "%s: layer_types[%zu] '%s' without a sliding_window", j->path, i,
                                   lt ? lt : "(not a string)");
        }
    }
    return 0;
}

int tr_hf_config_load(const char *dir, tr_config *cfg, mu_diag *diag)
{
    tr_json j;
    memset(cfg, 0, sizeof *cfg);
    int rc = tr_json_load(&j, dir, TR_HF_CONFIG, diag);
    if (rc)
        return rc;
    const char *type = tr_json_str(&j, "model_type");
    if (!type)
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: 'model_type' is missing", j.path);
    else if (!strcmp(type, "gpt2"))
        rc = gpt2_config(&j, cfg);
    else if (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2") ||
             !strcmp(type, "qwen3"))
        rc = llama_config(&j, type, cfg);
    else if (!strcmp(type, "gemma2") || !strcmp(type, "gemma3_text"))
        rc = gemma_config(&j, type, cfg);
    else if (!strcmp(type, "gemma3"))
        rc = mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                         "%s: model_type 'gemma3' (Gemma3ForConditionalGeneration, text and "
                         "vision) is not supported; only Gemma 3 text models (model_type "
                         "gemma3_text, Gemma3ForCausalLM, e.g. gemma-3-1b) are",
                         j.path);
    else
        rc = mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                         "%s: model_type '%s' is not supported (gpt2, llama, mistral, qwen2, "
                         "qwen3, gemma2, gemma3_text)",
                         j.path, type);
    if (!rc && tr_config_validate(cfg, diag)) {
        char msg[sizeof diag->msg];
        snprintf(msg, sizeof msg, "%s", diag ? diag->msg : "");
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: %s", j.path, msg);
    }
    tr_json_free(&j);
    return rc;
}

/* The base weights: model.safetensors, or the shards a model.safetensors.index.json lists. */
#define MAX_SHARDS 256
typedef struct {
    tr_st *st[MAX_SHARDS];
    size_t n;
    char where[4200]; /* the file or index named when a tensor is missing */
} weights;

static void weights_close(weights *w)
{
    for (size_t i = 0; i < w->n; i++)
        tr_st_free(w->st[i]);
    w->n = 0;
}

static int open_shard(weights *w, const tr_json *j, const char *dir, const char *file,
                      mu_diag *diag)
{
    if (!*file || strchr(file, '/') || file[0] == '.')
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: shard '%s' is not a file of the folder",
                           j->path, file);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(tr_st_name(w->st[i]), path))
            return 0;
    if (w->n == MAX_SHARDS)
        return mu_diag_set(diag, MU_ERR_UNSUPPORTED, "%s: more than %d shards", j->path,
                           MAX_SHARDS);
    int rc;
    w->st[w->n] = tr_st_open(path, &rc, diag);
    if (!w->st[w->n])
        return rc;
    w->n++;
    return 0;
}

static int weights_open(weights *w, const char *dir, mu_diag *diag)
{
    int rc;
    memset(w, 0, sizeof *w);
    snprintf(w->where, sizeof w->where, "%s/%s", dir, TR_HF_WEIGHTS);
    if ((w->st[0] = tr_st_open(w->where, &rc, diag))) {
        w->n = 1;
        return 0;
    }
    char idx[sizeof w->where + 16];
    snprintf(idx, sizeof idx, "%s.index.json", w->where);
    if (rc != MU_ERR_NOTFOUND || access(idx, F_OK))
        return rc;
    tr_json j;
    if ((rc = tr_json_load(&j, dir, TR_HF_WEIGHTS ".index.json", diag)))
        return rc;
    snprintf(w->where, sizeof w->where, "%s", j.path);
    json_t *map = json_object_get(j.root, "weight_map"), *v;
    const char *k;
    if (!json_is_object(map) || !json_object_size(map))
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: 'weight_map' is missing or empty", j.path);
    json_object_foreach(map, k, v)
    {
        if (rc)
            break;
        rc = json_is_string(v)
                 ? open_shard(w, &j, dir, json_string_value(v), diag)
                 : mu_diag_set(diag, MU_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name",
                               j.path, k);
    }
    tr_json_free(&j);
    if (rc)
        weights_close(w);
    return rc;
}

/* The shard and file name of a base tensor: GPT-2 checkpoints saved from GPT2Model lack the
 * "transformer." prefix. */
static const tr_st *find_base(const weights *w, const tr_config *c, const char *name,
                              const char **file_name)
{
    for (size_t i = 0; i < w->n; i++) {
        const tr_st_info *t = tr_st_find(w->st[i], name);
        if (!t && c->family == TR_GPT2 && !strncmp(name, "transformer.", 12))
            t = tr_st_find(w->st[i], name + 12);
        if (t) {
            *file_name = t->name;
            return w->st[i];
        }
    }
    return NULL;
}

/* File tensors that no model uses, by design, and may be present:
 *  - GPT-2 "h.N.attn.bias" / "h.N.attn.masked_bias": the causal-mask buffers older
 *    GPT2Model checkpoints saved; the engine builds its own causal mask.
 *  - Llama-family "...rotary_emb.inv_freq": RoPE frequencies older transformers versions
 *    saved as buffers; the engine derives them from rope_theta and head_dim.
 *  - "lm_head.weight" of a tied model: a stored copy of the tied head, which is the
 *    embedding (GPT2LMHeadModel and some tied Llama-family checkpoints save it). */
static int ignorable(const tr_config *c, const char *name)
{
    size_t len = strlen(name);
#define ENDS(s) (len >= sizeof(s) - 1 && !strcmp(name + len - (sizeof(s) - 1), s))
    if (c->tied_head && !strcmp(name, "lm_head.weight"))
        return 1;
    if (c->family == TR_GPT2)
        return ENDS(".attn.bias") || ENDS(".attn.masked_bias");
    return ENDS(".rotary_emb.inv_freq");
#undef ENDS
}

/* The layer index of a per-layer tensor name, or -1. */
static long layer_of(const tr_config *c, const char *name)
{
    const char *p = NULL;
    if (c->family == TR_GPT2)
        p = !strncmp(name, "transformer.h.", 14) ? name + 14
            : !strncmp(name, "h.", 2)            ? name + 2
                                                 : NULL;
    else if (!strncmp(name, "model.layers.", 13))
        p = name + 13;
    if (!p || *p < '0' || *p > '9')
        return -1;
    char *end;
    long l = strtol(p, &end, 10);
    return *end == '.' ? l : -1;
}

/* Every tensor of the files must be one the model loaded or one of the ignorable ones, so a
 * config.json that describes less than the weights (fewer layers, no biases) is refused
 * instead of silently running a smaller model. used[] holds the loaded tensors. */
static int check_unused(const weights *w, const tr_config *c, const tr_st_info *const *used,
                        int n_used, mu_diag *diag)
{
    for (size_t s = 0; s < w->n; s++)
        for (size_t i = 0; i < tr_st_count(w->st[s]); i++) {
            const tr_st_info *t = tr_st_at(w->st[s], i);
            int hit = 0;
            for (int k = 0; !hit && k < n_used; k++)
                hit = used[k] == t;
            if (hit || ignorable(c, t->name))
                continue;
            long l = layer_of(c, t->name);
            if (l >= c->n_layer)
                return mu_diag_set(diag, MU_ERR_FORMAT,
                                   "%s: %s is not used by a %d-layer model: %s in config.json "
                                   "says %d",
                                   tr_st_name(w->st[s]), t->name, c->n_layer,
                                   c->family == TR_GPT2 ? "n_layer" : "num_hidden_layers",
                                   c->n_layer);
            return mu_diag_set(diag, MU_ERR_FORMAT,
                               "%s: %s is not used by the model that config.json describes",
                               tr_st_name(w->st[s]), t->name);
        }
    return 0;
}

static int fill_base(tr_model *m, const weights *w, mu_diag *diag)
{
    const tr_config *c = tr_model_config(m);
    int n = tr_model_base_count(m);
    const tr_st_info **used = calloc(n ? (size_t)n : 1, sizeof *used);
    if (!used)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", w->where);
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        tr_tensor t;
        if ((rc = tr_model_base_tensor(m, i, &t))) {
            rc = mu_diag_set(diag, rc, "%s: base tensor %d", w->where, i);
            break;
        }
        const char *fname;
        const tr_st *st = find_base(w, c, t.name, &fname);
        if (!st) {
            rc = mu_diag_set(diag, MU_ERR_NOTFOUND, "%s: tensor '%s' is missing", w->where, t.name);
            break;
        }
        used[i] = tr_st_find(st, fname);
        rc = t.data ? tr_st_load(st, fname, t.ndim, t.shape, t.data, diag)
                    : tr_st_load_bf16(st, fname, t.ndim, t.shape, t.bf16, diag);
        if (rc == MU_ERR_FORMAT && diag && strlen(diag->msg) < sizeof diag->msg - 16)
            strcat(diag->msg, " (config.json)");
        if (rc)
            break;
        size_t bad = t.data ? (size_t)tr_first_nonfinite(t.data, t.numel)
                            : (size_t)tr_bf16_first_nonfinite(t.bf16, t.numel);
        if (bad < (size_t)t.numel)
            rc = mu_diag_set(diag, MU_ERR_FORMAT,
                             "%s: tensor '%s' has a non-finite value (%g) at index %zu of %zu",
                             tr_st_name(st), fname,
                             t.data ? (double)t.data[bad] : (double)tr_bf16_to_f32(t.bf16[bad]),
                             bad, (size_t)t.numel);
    }
    if (!rc)
        rc = check_unused(w, c, used, n, diag);
    free(used);
    return rc;
}

tr_model *tr_hf_model_load(const char *dir, int *err, mu_diag *diag)
{
    return tr_hf_model_load_bf16(dir, 0, err, diag);
}

tr_model *tr_hf_model_load_bf16(const char *dir, int bf16, int *err, mu_diag *diag)
{
    tr_config cfg;
    tr_model *m = NULL;
    weights w = {.n = 0};
    int rc = tr_hf_config_load(dir, &cfg, diag);
    if (rc || (rc = weights_open(&w, dir, diag)))
        goto out;
    m = tr_model_new(&cfg, diag);
    if (!m) {
        rc = MU_ERR_INVALID;
        goto out;
    }
    if (bf16 && (rc = tr_model_set_bf16(m, 1)))
        mu_diag_set(diag, rc, "%s: out of memory for the bf16 base", w.where);
    if (!rc)
        rc = fill_base(m, &w, diag);
    if (rc) {
        tr_model_free(m);
        m = NULL;
        goto out;
    }
    mu_debug("%s: %d base tensors from %zu file(s)", w.where, tr_model_base_count(m), w.n);
out:
    weights_close(&w);
    if (err)
        *err = rc;
    return m;
}
