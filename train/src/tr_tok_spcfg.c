/* tr_tok_spcfg.c - which SentencePiece-style features a tokenizer.json asks for (Llama 2,
 * Mistral, Gemma): the normalizer's steps, the pre-tokenizer, the decoder's steps. Anything
 * else is refused naming the field. */
#include <string.h>

#include "tr_tok_internal.h"

static int is_type(json_t *o, const char *type)
{
    return json_is_object(o) && json_is_string(json_object_get(o, "type")) &&
           strcmp(json_string_value(json_object_get(o, "type")), type) == 0;
}

static int unsupported(mu_diag *diag, const char *path, const char *what)
{
    return mu_diag_set(diag, MU_ERR_UNSUPPORTED, "%s: %s is not supported", path, what);
}

/* Copies the JSON string v (1 to TR_NORM_STR_MAX - 1 bytes; empty too when allow_empty)
 * into dst, its length in *len. 0, or -1 when v is not such a string. */
static int small_str(json_t *v, char *dst, uint8_t *len, int allow_empty)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (!s || n >= TR_NORM_STR_MAX || (!n && !allow_empty))
        return -1;
    memcpy(dst, s, n + 1);
    *len = (uint8_t)n;
    return 0;
}

/* The literal of a {"String": "..."} pattern; a {"Regex": ...} one is refused. */
static json_t *literal(json_t *pattern)
{
    return json_object_get(pattern, "String");
}

static int norm_step(tr_tok *tok, json_t *n, mu_diag *diag, const char *path)
{
    if (tok->nnorm == TR_NORM_MAX)
        return unsupported(diag, path, "a normalizer Sequence of more than 4 steps");
    tr_norm_step *st = &tok->norm[tok->nnorm];
    memset(st, 0, sizeof *st);
    if (is_type(n, "NFC")) {
        st->kind = TR_NORM_NFC;
    } else if (is_type(n, "Prepend")) {
        st->kind = TR_NORM_PREPEND;
        if (small_str(json_object_get(n, "prepend"), st->a, &st->alen, 0))
            return unsupported(diag, path, "normalizer Prepend other than of 1 to 15 bytes");
    } else if (is_type(n, "Replace")) {
        st->kind = TR_NORM_REPLACE;
        if (small_str(literal(json_object_get(n, "pattern")), st->a, &st->alen, 0) ||
            small_str(json_object_get(n, "content"), st->b, &st->blen, 1))
            return unsupported(diag, path,
                               "normalizer Replace other than of a literal String "
                               "pattern (1 to 15 bytes)");
    } else {
        return unsupported(diag, path,
                           "a normalizer other than NFC, Prepend, Replace or a "
                           "Sequence of them");
    }
    tok->nnorm++;
    return MU_OK;
}

static int read_norm(tr_tok *tok, json_t *n, mu_diag *diag, const char *path)
{
    if (!n || json_is_null(n))
        return MU_OK;
    if (!is_type(n, "Sequence"))
        return norm_step(tok, n, diag, path);
    json_t *steps = json_object_get(n, "normalizers"), *st;
    size_t k;
    if (!json_is_array(steps))
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: normalizer.normalizers is not an array", path);
    json_array_foreach(steps, k, st)
    {
        int rc = norm_step(tok, st, diag, path);
        if (rc)
            return rc;
    }
    return MU_OK;
}

/* Metaspace's prepend_scheme (default "always"); an explicit add_prefix_space false (the
 * older spelling) means never. */
static int ms_scheme(json_t *p, tr_ms_scheme *out)
{
    json_t *sc = json_object_get(p, "prepend_scheme");
    const char *s = sc ? json_string_value(sc) : "always";
    if (!s)
        return -1;
    if (strcmp(s, "always") == 0)
        *out = TR_MS_ALWAYS;
    else if (strcmp(s, "first") == 0)
        *out = TR_MS_FIRST;
    else if (strcmp(s, "never") == 0)
        *out = TR_MS_NEVER;
    else
        return -1;
    if (json_is_false(json_object_get(p, "add_prefix_space")))
        *out = TR_MS_NEVER;
    return 0;
}

static int read_pre(tr_tok *tok, json_t *p, mu_diag *diag, const char *path)
{
    uint8_t len = 0;
    if (!p || json_is_null(p)) {
        tok->pre = TR_PRE_NONE;
    } else if (is_type(p, "Metaspace")) {
        tok->pre = TR_PRE_METASPACE;
        json_t *split = json_object_get(p, "split");
        tok->ms_split = !split || json_is_true(split); /* Hugging Face's default is true */
        if (small_str(json_object_get(p, "replacement"), tok->ms_rep, &len, 0) ||
            ms_scheme(p, &tok->ms_scheme))
            return unsupported(diag, path,
                               "pre_tokenizer Metaspace other than a replacement of "
                               "1 to 15 bytes and prepend_scheme always, first or never");
    } else if (is_type(p, "Split")) {
        tok->pre = TR_PRE_SPLIT_LIT;
        json_t *b = json_object_get(p, "behavior");
        if (small_str(literal(json_object_get(p, "pattern")), tok->ms_rep, &len, 0) ||
            !json_is_string(b) || strcmp(json_string_value(b), "MergedWithPrevious") != 0 ||
            json_is_true(json_object_get(p, "invert")))
            return unsupported(diag, path,
                               "pre_tokenizer Split other than on a literal String, "
                               "MergedWithPrevious");
    } else {
        return unsupported(diag, path,
                           "pre_tokenizer (SentencePiece style: none, Metaspace or a "
                           "literal Split)");
    }
    tok->ms_rep_len = len;
    return MU_OK;
}

static int dec_step(tr_tok *tok, json_t *d, int last, mu_diag *diag, const char *path)
{
    if (is_type(d, "ByteFallback")) {
        tok->dec_bytefb = 1;
    } else if (is_type(d, "Fuse")) {
        /* decode returns one buffer: fused already */
    } else if (is_type(d, "Replace")) {
        if (tok->dec_from_len ||
            small_str(literal(json_object_get(d, "pattern")), tok->dec_from, &tok->dec_from_len,
                      0) ||
            small_str(json_object_get(d, "content"), tok->dec_to, &tok->dec_to_len, 1))
            return unsupported(diag, path, "decoder Replace other than one literal String");
    } else if (is_type(d, "Strip")) {
        const char *c = json_string_value(json_object_get(d, "content"));
        json_t *a = json_object_get(d, "start"), *b = json_object_get(d, "stop");
        if (!last || !c || strlen(c) != 1 || !json_is_integer(a) || !json_is_integer(b) ||
            json_integer_value(a) < 0 || json_integer_value(b) < 0 || json_integer_value(a) > 64 ||
            json_integer_value(b) > 64)
            return unsupported(diag, path, "decoder Strip other than last, of one ASCII character");
        tok->dec_strip = (uint8_t)c[0];
        tok->dec_strip_start = (uint32_t)json_integer_value(a);
        tok->dec_strip_stop = (uint32_t)json_integer_value(b);
    } else if (is_type(d, "Metaspace")) {
        tr_ms_scheme sc;
        uint8_t n;
        if (tok->dec_from_len ||
            small_str(json_object_get(d, "replacement"), tok->dec_from, &n, 0) || ms_scheme(d, &sc))
            return unsupported(diag, path, "decoder Metaspace");
        tok->dec_from_len = n;
        tok->dec_to[0] = ' ';
        tok->dec_to_len = 1;
        if (sc != TR_MS_NEVER) { /* the first token's leading space goes */
            tok->dec_strip = ' ';
            tok->dec_strip_start = 1;
        }
    } else {
        return unsupported(diag, path,
                           "a decoder other than Replace, ByteFallback, Fuse, Strip "
                           "or Metaspace");
    }
    return MU_OK;
}

static int read_dec(tr_tok *tok, json_t *d, mu_diag *diag, const char *path)
{
    if (!d || json_is_null(d))
        return MU_OK;
    if (!is_type(d, "Sequence"))
        return dec_step(tok, d, 1, diag, path);
    json_t *steps = json_object_get(d, "decoders"), *st;
    size_t k;
    json_array_foreach(steps, k, st)
    {
        int rc = dec_step(tok, st, k + 1 == json_array_size(steps), diag, path);
        if (rc)
            return rc;
    }
    return MU_OK;
}

int tr_sp_read_features(tr_tok *tok, json_t *root, mu_diag *diag, const char *path)
{
    json_t *model = json_object_get(root, "model");
    tok->sp = 1;
    tok->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    tok->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    tok->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    int rc = read_norm(tok, json_object_get(root, "normalizer"), diag, path);
    if (!rc)
        rc = read_pre(tok, json_object_get(root, "pre_tokenizer"), diag, path);
    if (!rc)
        rc = read_dec(tok, json_object_get(root, "decoder"), diag, path);
    return rc;
}
