/* tr_gguf_tok.c - a tokenizer.json as llama.cpp's tokenizer.ggml.* keys. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_file.h"
#include "tr_gguf_internal.h"
#include "tr_tok_internal.h"

/* llama.cpp's token types (llama_token_type). */
enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

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

/* Appends merges as "left right" strings (tokenizer.json spells them so, or as pairs). */
static int merges_kv(tr_gbuf *b, json_t *merges, mu_diag *d, const char *path)
{
    size_t i, n = json_array_size(merges);
    json_t *v;
    tr_gb_kv_array(b, "tokenizer.ggml.merges", TR_GV_STRING, n);
    char buf[2048];
    json_array_foreach(merges, i, v)
    {
        const char *s = json_string_value(v);
        if (s) {
            tr_gb_str(b, s, strlen(s));
            continue;
        }
        const char *l = json_string_value(json_array_get(v, 0));
        const char *r = json_string_value(json_array_get(v, 1));
        int k = l && r ? snprintf(buf, sizeof buf, "%s %s", l, r) : -1;
        if (k < 0 || k >= (int)sizeof buf)
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: merges[%zu] is not a pair of tokens", path,
                               i);
        tr_gb_str(b, buf, (size_t)k);
    }
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
    char *text = NULL;
    if (tok->sp) {
        rc = mu_diag_set(d, MU_ERR_UNSUPPORTED,
                         "%s: SentencePiece-style tokenizers are not exported (only byte-level "
                         "BPE: GPT-2, Llama 3, Qwen2)",
                         path);
        goto out;
    }
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
    tr_gb_kv_str(b, "tokenizer.ggml.model", "gpt2");
    tr_gb_kv_str(b, "tokenizer.ggml.pre", pre_name(tok->pre));
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
    if ((rc = merges_kv(b, json_object_get(json_object_get(root, "model"), "merges"), d, path)))
        goto out;
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
    json_decref(root);
    tr_tok_free(tok);
    return rc;
}
