/* tr_tok_special.c - the ids transformers' AutoTokenizer puts around a text with
 * add_special_tokens=True: Llama's and Gemma's tokenizer classes build them from
 * tokenizer_config.json (add_bos_token, default true; add_eos_token, default false; bos_token,
 * eos_token), every other class takes tokenizer.json's post_processor (TemplateProcessing,
 * alone or after ByteLevel in a Sequence; ByteLevel alone or none adds nothing). */
#include <stdlib.h>
#include <string.h>

#include "mu_file.h"
#include "tr_tok_internal.h"

static int is_type(json_t *o, const char *type)
{
    return json_is_object(o) && json_is_string(json_object_get(o, "type")) &&
           strcmp(json_string_value(json_object_get(o, "type")), type) == 0;
}

/* The id of the token whose content is s (an added token first, then the vocab), or -1. */
static int64_t token_id(const tr_tok *tok, const char *s)
{
    size_t n = strlen(s);
    for (size_t k = 0; k < tok->nadded; k++) {
        const tr_added *a = &tok->added[k];
        if (a->len == n && memcmp(tok->bytes + a->off, s, n) == 0)
            return a->id;
    }
    if (tok->sp)
        return tr_tok_vocab_find(tok, s, n);
    char buf[1024];
    long m = n <= sizeof buf ? tr_tok_from_byte_level(s, n, buf) : -1;
    return m < 0 ? -1 : tr_tok_vocab_find(tok, buf, (size_t)m);
}

/* A tokenizer_config.json token: "<s>" or {"content": "<s>", ...}; NULL when absent. */
static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_object(v) ? json_string_value(json_object_get(v, "content"))
                             : json_string_value(v);
}

static int push(uint32_t *ids, uint32_t *n, int64_t id)
{
    if (*n == TR_TOK_SPECIAL_MAX || id < 0)
        return -1;
    ids[(*n)++] = (uint32_t)id;
    return 0;
}

/* The single-sequence template: specials before $A into pre, after it into post. */
static int read_template(tr_tok *tok, json_t *tp, mu_diag *diag, const char *path)
{
    json_t *single = json_object_get(tp, "single"), *item, *specials;
    specials = json_object_get(tp, "special_tokens");
    size_t k;
    int seen_a = 0;
    json_array_foreach(single, k, item)
    {
        json_t *seq = json_object_get(item, "Sequence");
        json_t *sp = json_object_get(item, "SpecialToken");
        if (seq) {
            const char *which = json_string_value(json_object_get(seq, "id"));
            if (seen_a || !which || strcmp(which, "A") != 0)
                return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                                   "%s: post_processor.single: one Sequence A is supported", path);
            seen_a = 1;
            continue;
        }
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids"), *v;
        size_t j;
        if (!name || !json_is_array(ids))
            return mu_diag_set(diag, MU_ERR_FORMAT,
                               "%s: post_processor.single[%zu] names no special_tokens entry", path,
                               k);
        json_array_foreach(ids, j, v)
        {
            int bad = !json_is_integer(v) || json_integer_value(v) < 0 ||
                      json_integer_value(v) >= (json_int_t)tok->nvocab;
            if (bad || push(seen_a ? tok->post_ids : tok->pre_ids,
                            seen_a ? &tok->npost : &tok->npre, json_integer_value(v)))
                return mu_diag_set(diag, MU_ERR_FORMAT,
                                   "%s: post_processor special '%.40s': ids not in the vocab "
                                   "(or more than %d)",
                                   path, name, TR_TOK_SPECIAL_MAX);
        }
    }
    if (!seen_a)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: post_processor.single has no Sequence A",
                           path);
    return MU_OK;
}

static int read_post(tr_tok *tok, json_t *pp, mu_diag *diag, const char *path)
{
    if (!pp || json_is_null(pp) || is_type(pp, "ByteLevel"))
        return MU_OK;
    if (is_type(pp, "TemplateProcessing"))
        return read_template(tok, pp, diag, path);
    json_t *steps = json_object_get(pp, "processors"), *st, *tp = NULL;
    size_t k;
    if (!is_type(pp, "Sequence") || !json_is_array(steps))
        return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                           "%s: post_processor other than TemplateProcessing or ByteLevel", path);
    json_array_foreach(steps, k, st)
    {
        if (is_type(st, "TemplateProcessing") && !tp)
            tp = st;
        else if (!is_type(st, "ByteLevel"))
            return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                               "%s: post_processor.processors[%zu] is not ByteLevel or one "
                               "TemplateProcessing",
                               path, k);
    }
    return tp ? read_template(tok, tp, diag, path) : MU_OK;
}

/* Llama's and Gemma's classes: transformers rebuilds the template from the config. */
static int is_llama_class(json_t *cfg)
{
    static const char *const names[] = {"LlamaTokenizer",     "LlamaTokenizerFast",
                                        "GemmaTokenizer",     "GemmaTokenizerFast",
                                        "CodeLlamaTokenizer", "CodeLlamaTokenizerFast"};
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    for (size_t k = 0; cls && k < sizeof names / sizeof *names; k++)
        if (strcmp(cls, names[k]) == 0)
            return 1;
    return 0;
}

static int read_config(tr_tok *tok, json_t *cfg, mu_diag *diag, const char *path)
{
    const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    tok->bos_id = bos && token_id(tok, bos) >= 0 ? (uint32_t)token_id(tok, bos) : TR_NO_ID;
    tok->eos_id = eos && token_id(tok, eos) >= 0 ? (uint32_t)token_id(tok, eos) : TR_NO_ID;
    if (!is_llama_class(cfg))
        return MU_OK;
    json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    int add_bos = !json_is_false(ab) && !json_is_null(ab); /* default true */
    int add_eos = json_is_true(ae);
    tok->npre = tok->npost = 0;
    if ((add_bos && tok->bos_id == TR_NO_ID) || (add_eos && tok->eos_id == TR_NO_ID))
        return mu_diag_set(diag, MU_ERR_FORMAT,
                           "%s: add_%s_token is set but %s_token is not a token", path,
                           add_bos && tok->bos_id == TR_NO_ID ? "bos" : "eos",
                           add_bos && tok->bos_id == TR_NO_ID ? "bos" : "eos");
    if (add_bos)
        tok->pre_ids[tok->npre++] = tok->bos_id;
    if (add_eos)
        tok->post_ids[tok->npost++] = tok->eos_id;
    return MU_OK;
}

int tr_tok_read_specials(tr_tok *tok, json_t *root, const char *cfg_path, mu_diag *diag,
                         const char *path)
{
    tok->bos_id = tok->eos_id = TR_NO_ID;
    int rc = read_post(tok, json_object_get(root, "post_processor"), diag, path);
    if (rc || !cfg_path)
        return rc;
    char *text;
    size_t len;
    mu_diag ignore = {{0}};
    if (mu_read_file(cfg_path, 64u << 20, &text, &len, &ignore) != MU_OK)
        return MU_OK; /* no tokenizer_config.json: the post_processor alone */
    json_error_t jerr;
    json_t *cfg =
        json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &jerr); /* model_max_length: 1e30 */
    free(text);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s:%d: %s", cfg_path, jerr.line, jerr.text);
    }
    rc = read_config(tok, cfg, diag, cfg_path);
    json_decref(cfg);
    return rc;
}

/* The text's ids (its special-token text as text when as_text) with the template's around. */
static int encode_around(tr_tok *tok, const char *text, size_t len, int as_text, uint32_t **ids,
                         size_t *n)
{
    uint32_t *body = NULL;
    size_t m = 0;
    int rc = as_text ? tr_tok_encode_text(tok, text, len, NULL, &body, &m)
                     : tr_tok_encode(tok, text, len, &body, &m);
    if (rc)
        return rc;
    size_t total = tok->npre + m + tok->npost;
    uint32_t *o = malloc((total ? total : 1) * sizeof *o);
    if (!o) {
        free(body);
        return MU_ERR_NOMEM;
    }
    memcpy(o, tok->pre_ids, tok->npre * sizeof *o);
    if (m)
        memcpy(o + tok->npre, body, m * sizeof *o);
    memcpy(o + tok->npre + m, tok->post_ids, tok->npost * sizeof *o);
    free(body);
    *ids = total ? o : (free(o), NULL);
    *n = total;
    return MU_OK;
}

int tr_tok_encode_special(tr_tok *tok, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    return encode_around(tok, text, len, 0, ids, n);
}

int tr_tok_encode_special_text(tr_tok *tok, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    return encode_around(tok, text, len, 1, ids, n);
}

uint32_t tr_tok_bos_id(const tr_tok *tok)
{
    return tok->bos_id;
}

uint32_t tr_tok_eos_id(const tr_tok *tok)
{
    return tok->eos_id;
}
