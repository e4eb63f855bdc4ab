/* tr_gguf_tok.c - a tokenizer.json as llama.cpp's tokenizer.ggml.* keys. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_file.h"
#include "tr_gguf_internal.h"
#include "tr_tok_internal.h"

/* llama.cpp's token types (llama_token_type). */
enum {
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6
};

/* tokenizer.json's strings by id: model.vocab's keys, then added_tokens' contents (types
 * in tt). Ids at or beyond V are refused. */
static int token_strings(json_t *root, int V, const char **str, int32_t *tt, mu_diag *d,
                         const char *path)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(root, "model"), "vocab"), k, v)
    {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= V)
            return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                               "%s: token '%.40s' has id %lld, not below the model's vocab_size "
                               "%d",
                               path, k, (long long)id, V);
        str[id] = k;
        tt[id] = TT_NORMAL;
    }
    size_t i;
    json_array_foreach(json_object_get(root, "added_tokens"), i, v)
    {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        const char *s = json_string_value(json_object_get(v, "content"));
        if (!s || id < 0 || id >= V)
            return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                               "%s: added_tokens[%zu] has id %lld, not below the model's "
                               "vocab_size %d",
                               path, i, (long long)id, V);
        str[id] = s;
        tt[id] = json_is_true(json_object_get(v, "special")) ? TT_CONTROL : TT_USER_DEFINED;
    }
    return 0;
}

/* A merge's two sides: "left right" (split at the one space) or a pair; 0, or -1 when it is
 * neither. The sides are copied into buf (cap bytes) as "left\0right\0". */
static int merge_sides(json_t *v, char *buf, size_t cap, const char **l, const char **r)
{
    const char *s = json_string_value(v), *sp = s ? strchr(s, ' ') : NULL;
    int k = s ? (sp && !strchr(sp + 1, ' ') ? snprintf(buf, cap, "%s", s) : -1)
            : json_string_value(json_array_get(v, 0)) && json_string_value(json_array_get(v, 1))
                ? snprintf(buf, cap, "%s %s", json_string_value(json_array_get(v, 0)),
                           json_string_value(json_array_get(v, 1)))
                : -1;
    if (k < 0 || k >= (int)cap)
        return -1;
    char *mid = s ? buf + (sp - s) : buf + strlen(json_string_value(json_array_get(v, 0)));
    *mid = '\0';
    *l = buf;
    *r = mid + 1;
    return 0;
}

/* Appends merges as "left right" strings (tokenizer.json spells them so, or as pairs). */
static int merges_kv(tr_gbuf *b, json_t *merges, mu_diag *d, const char *path)
{
    size_t i, n = json_array_size(merges);
    json_t *v;
    tr_gb_kv_array(b, "tokenizer.ggml.merges", TR_GV_STRING, n);
    char buf[2048], out[2048];
    json_array_foreach(merges, i, v)
    {
        const char *l, *r;
        if (merge_sides(v, buf, sizeof buf, &l, &r))
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: merges[%zu] is not a pair of tokens", path,
                               i);
        int k = snprintf(out, sizeof out, "%s %s", l, r);
        tr_gb_str(b, out, (size_t)k);
    }
    return 0;
}

/* SentencePiece-style scores: llama.cpp's "llama" tokenizer merges, among adjacent pieces
 * whose concatenation is a token, the one of the highest score first (the leftmost among
 * equals); Hugging Face's BPE the pair of the lowest merge rank. So a token's score is minus
 * the rank of the first merge that yields it (+1), and tokens no merge yields (characters,
 * bytes, added tokens) score below every merge. */
static int sp_scores(json_t *model, int V, float *score, mu_diag *d, const char *path)
{
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    size_t n = json_array_size(merges), i;
    for (int k = 0; k < V; k++)
        score[k] = -(float)(n + 1);
    char buf[2048], cat[2048];
    json_t *v;
    json_array_foreach(merges, i, v)
    {
        const char *l, *r;
        if (merge_sides(v, buf, sizeof buf, &l, &r) ||
            snprintf(cat, sizeof cat, "%s%s", l, r) >= (int)sizeof cat)
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: merges[%zu] is not a pair of tokens", path,
                               i);
        json_int_t id = json_integer_value(json_object_get(vocab, cat));
        if (json_is_integer(json_object_get(vocab, cat)) && id >= 0 && id < V &&
            score[id] == -(float)(n + 1))
            score[id] = -(float)(i + 1);
    }
    return 0;
}

/* 1 when s is a byte-fallback token, <0xNN> (LlamaHfVocab's test). */
static int is_byte_token(const char *s)
{
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && isxdigit((unsigned char)s[3]) &&
           isxdigit((unsigned char)s[4]) && s[5] == '>';
}

/* Whether llama.cpp should put a space (U+2581) before the text: Hugging Face's Prepend
 * normalizer, or a Metaspace pre-tokenizer that prepends. */
static int sp_add_space_prefix(const tr_tok *tok)
{
    for (size_t i = 0; i < tok->nnorm; i++)
        if (tok->norm[i].kind == TR_NORM_PREPEND)
            return 1;
    return tok->pre == TR_PRE_METASPACE && tok->ms_scheme != TR_MS_NEVER;
}

/* What llama.cpp's "llama" tokenizer does besides its BPE: a space before the text (and after
 * each special token) when add_space_prefix, every ' ' as U+2581, no pre-tokenizer split, no
 * other normalization. A file asking for more is refused. */
static int sp_check(const tr_tok *tok, mu_diag *d, const char *path)
{
    static const char rep[] = "\xe2\x96\x81"; /* U+2581 */
    for (size_t i = 0; i < tok->nnorm; i++) {
        const tr_norm_step *n = &tok->norm[i];
        int ok = n->kind == TR_NORM_PREPEND ? n->alen == 3 && !memcmp(n->a, rep, 3)
                 : n->kind == TR_NORM_REPLACE
                     ? n->alen == 1 && n->a[0] == ' ' && n->blen == 3 && !memcmp(n->b, rep, 3)
                     : 0;
        if (!ok)
            return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                               "%s: normalizer step %zu is not exported (llama.cpp's SentencePiece "
                               "tokenizer only prepends U+2581 and turns spaces into it)",
                               path, i);
    }
    if (tok->pre == TR_PRE_SPLIT_LIT || (tok->pre == TR_PRE_METASPACE && tok->ms_split) ||
        (tok->pre == TR_PRE_METASPACE && (tok->ms_rep_len != 3 || memcmp(tok->ms_rep, rep, 3))))
        return mu_diag_set(d, MU_ERR_UNSUPPORTED,
                           "%s: this pre-tokenizer is not exported (llama.cpp's SentencePiece "
                           "tokenizer does not split the text; only Metaspace with U+2581 and "
                           "split false, or none)",
                           path);
    return 0;
}

static const char *pre_name(tr_pre_kind k)
{
    return k == TR_PRE_LLAMA3 ? "llama-bpe" : k == TR_PRE_QWEN2 ? "qwen2" : "gpt-2";
}

/* The tokenizer.ggml.* keys from DIR/tokenizer.json (checked by tr_tok_load first). */
int tr_gguf_tokenizer_kv(tr_gbuf *b, const char *dir, int V, mu_diag *d)
{
    int rc;
    tr_tok *tok = tr_tok_load(dir, &rc, d);
    if (!tok && rc == MU_ERR_NOTFOUND && d) {
        char why[sizeof d->msg];
        snprintf(why, sizeof why, "%s", d->msg);
        mu_diag_set(d, rc, "%.400s (llama.cpp needs the model's tokenizer in the GGUF file)", why);
    }
    if (!tok)
        return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    json_t *root = NULL;
    const char **str = NULL;
    int32_t *tt = NULL;
    float *score = NULL;
    char *text = NULL;
    if (tok->sp && (rc = sp_check(tok, d, path)))
        goto out;
    size_t len;
    if ((rc = mu_read_file(path, 512u << 20, &text, &len, d)))
        goto out;
    json_error_t je;
    root = json_loadb(text, len, 0, &je);
    str = calloc((size_t)V, sizeof *str);
    tt = calloc((size_t)V, sizeof *tt);
    if (!root || !str || !tt) {
        rc = root ? mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory")
                  : mu_diag_set(d, MU_ERR_FORMAT, "%s: %s", path, je.text);
        goto out;
    }
    if ((rc = token_strings(root, V, str, tt, d, path)))
        goto out;
    if (tok->sp) {
        /* as LlamaHfVocab: <0xNN> tokens BYTE (llama.cpp decodes them to their byte),
         * special ones CONTROL; the unknown token UNKNOWN, as SentencePieceVocab types it */
        for (int i = 0; i < V; i++)
            if (str[i] && is_byte_token(str[i]))
                tt[i] = TT_BYTE;
        if (tok->unk_id != TR_NO_ID && tok->unk_id < (uint32_t)V && str[tok->unk_id])
            tt[tok->unk_id] = TT_UNKNOWN;
        if (!(score = malloc((size_t)V * sizeof *score))) {
            rc = mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory");
            goto out;
        }
        if ((rc = sp_scores(json_object_get(root, "model"), V, score, d, path)))
            goto out;
    }
    tr_gb_kv_str(b, "tokenizer.ggml.model", tok->sp ? "llama" : "gpt2");
    tr_gb_kv_str(b, "tokenizer.ggml.pre", tok->sp ? "default" : pre_name(tok->pre));
    tr_gb_kv_array(b, "tokenizer.ggml.tokens", TR_GV_STRING, (uint64_t)V);
    char pad[32];
    for (int i = 0; i < V; i++) {
        if (str[i]) {
            tr_gb_str(b, str[i], strlen(str[i]));
        } else {
            int k = snprintf(pad, sizeof pad, "[PAD%d]", i);
            tr_gb_str(b, pad, (size_t)k);
        }
    }
    tr_gb_kv_array(b, "tokenizer.ggml.token_type", TR_GV_INT32, (uint64_t)V);
    for (int i = 0; i < V; i++)
        tr_gb_u32(b, (uint32_t)(str[i] ? tt[i] : TT_UNUSED));
    if (tok->sp) {
        tr_gb_kv_array(b, "tokenizer.ggml.scores", TR_GV_FLOAT32, (uint64_t)V);
        for (int i = 0; i < V; i++)
            tr_gb_f32(b, score[i]);
        tr_gb_kv_bool(b, "tokenizer.ggml.add_space_prefix", sp_add_space_prefix(tok));
        if (tok->unk_id != TR_NO_ID && tok->unk_id < (uint32_t)V)
            tr_gb_kv_u32(b, "tokenizer.ggml.unknown_token_id", tok->unk_id);
    } else if ((rc = merges_kv(b, json_object_get(json_object_get(root, "model"), "merges"), d,
                               path))) {
        goto out;
    }
    if (tok->bos_id != TR_NO_ID && tok->bos_id < (uint32_t)V)
        tr_gb_kv_u32(b, "tokenizer.ggml.bos_token_id", tok->bos_id);
    if (tok->eos_id != TR_NO_ID && tok->eos_id < (uint32_t)V)
        tr_gb_kv_u32(b, "tokenizer.ggml.eos_token_id", tok->eos_id);
    tr_gb_kv_bool(b, "tokenizer.ggml.add_bos_token", tok->npre > 0);
    tr_gb_kv_bool(b, "tokenizer.ggml.add_eos_token", tok->npost > 0);
out:
    free(text);
    free(str);
    free(tt);
    free(score);
    json_decref(root);
    tr_tok_free(tok);
    return rc;
}
