/* tr_tok_load.c - tr_tok_load: the features tokenizer.json asks for, then its tables. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mu_file.h"
#include "mu_grow.h"
#include "tr_tok_internal.h"

#define TR_TOK_MAX_FILE (512u << 20)

/* The Split regexes of Llama 3 and of Qwen2/2.5/3, as tokenizer.json spells them. */
static const char TR_RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char TR_RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static int is_type(json_t *o, const char *type)
{
    return json_is_object(o) && json_is_string(json_object_get(o, "type")) &&
           strcmp(json_string_value(json_object_get(o, "type")), type) == 0;
}

/* True when o[key] is absent, null, false or "" (a feature left off). */
static int off(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return !v || json_is_null(v) || json_is_false(v) ||
           (json_is_string(v) && json_string_value(v)[0] == '\0');
}

static int unsupported(mu_diag *diag, const char *path, const char *what)
{
    return mu_diag_set(diag, MU_ERR_UNSUPPORTED, "%s: %s is not supported", path, what);
}

/* A ByteLevel pre-tokenizer with add_prefix_space off and use_regex as wanted. */
static int byte_level_ok(json_t *p, int use_regex)
{
    json_t *re = json_object_get(p, "use_regex");
    int regex = !re || json_is_true(re); /* Hugging Face's default is true */
    return is_type(p, "ByteLevel") && off(p, "add_prefix_space") && regex == use_regex;
}

static int read_pre(tr_tok *tok, json_t *pre, mu_diag *diag, const char *path)
{
    if (byte_level_ok(pre, 1)) {
        tok->pre = TR_PRE_GPT2;
        return MU_OK;
    }
    json_t *seq = json_object_get(pre, "pretokenizers");
    json_t *split = json_array_get(seq, 0);
    if (!is_type(pre, "Sequence") || json_array_size(seq) != 2 || !is_type(split, "Split") ||
        !byte_level_ok(json_array_get(seq, 1), 0))
        return unsupported(diag, path, "pre_tokenizer (only ByteLevel, or Split then ByteLevel)");
    json_t *behavior = json_object_get(split, "behavior");
    if (!json_is_string(behavior) || strcmp(json_string_value(behavior), "Isolated") != 0 ||
        !off(split, "invert"))
        return unsupported(diag, path, "pre_tokenizer Split other than Isolated");
    const char *re = json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex"));
    if (re && strcmp(re, TR_RE_LLAMA3) == 0)
        tok->pre = TR_PRE_LLAMA3;
    else if (re && strcmp(re, TR_RE_QWEN2) == 0)
        tok->pre = TR_PRE_QWEN2;
    else
        return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                           "%s: pre_tokenizer regex '%.80s' is not one "
                           "of GPT-2's, Llama 3's or Qwen2's",
                           path, re ? re : "(none)");
    return MU_OK;
}

/* A byte-level file: its pre-tokenizer is ByteLevel or a Sequence ending with one. */
static int is_byte_level(json_t *pre)
{
    json_t *seq = json_object_get(pre, "pretokenizers");
    return is_type(pre, "ByteLevel") ||
           (is_type(pre, "Sequence") &&
            is_type(json_array_get(seq, json_array_size(seq) - 1), "ByteLevel"));
}

static int read_features(tr_tok *tok, json_t *root, mu_diag *diag, const char *path)
{
    json_t *model = json_object_get(root, "model");
    if (!is_type(model, "BPE"))
        return unsupported(diag, path, "a model other than BPE");
    if (!off(model, "continuing_subword_prefix") || !off(model, "end_of_word_suffix"))
        return unsupported(diag, path, "a BPE subword prefix or suffix");
    if (!off(model, "dropout"))
        return unsupported(diag, path, "model.dropout");
    if (!is_byte_level(json_object_get(root, "pre_tokenizer")))
        return tr_sp_read_features(tok, root, diag, path);
    if (!off(model, "byte_fallback"))
        return unsupported(diag, path, "model.byte_fallback with a ByteLevel pre_tokenizer");
    tok->nfc = is_type(json_object_get(root, "normalizer"), "NFC");
    if (!off(root, "normalizer") && !tok->nfc)
        return unsupported(diag, path, "a normalizer other than NFC");
    json_t *dec = json_object_get(root, "decoder");
    if (!off(root, "decoder") && !is_type(dec, "ByteLevel"))
        return unsupported(diag, path, "a decoder other than ByteLevel");
    tok->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    return read_pre(tok, json_object_get(root, "pre_tokenizer"), diag, path);
}

static int cmp_added(const void *a, const void *b)
{
    const tr_added *x = a, *y = b;
    return x->len != y->len ? (x->len < y->len ? 1 : -1) : (x->id > y->id) - (x->id < y->id);
}

/* The child of node `at` for byte b, added when `add` (0 when absent or out of memory). */
static uint32_t trie_child(tr_tok *tok, uint32_t at, uint8_t b, int add)
{
    for (uint32_t c = tok->trie[at].child; c; c = tok->trie[c].sibling)
        if (tok->trie[c].byte == b)
            return c;
    if (!add || MU_GROW(&tok->trie, &tok->trie_cap, tok->ntrie + 1, 256))
        return 0;
    uint32_t c = (uint32_t)tok->ntrie++;
    tok->trie[c] = (tr_trie_node){0, tok->trie[at].child, 0, b};
    tok->trie[at].child = c;
    return c;
}

/* The byte trie of the added tokens; of equal contents the first in `added` (the lowest id)
 * is kept. */
static int index_added(tr_tok *tok)
{
    if (MU_GROW(&tok->trie, &tok->trie_cap, 1, 256))
        return MU_ERR_NOMEM;
    tok->trie[0] = (tr_trie_node){0, 0, 0, 0};
    tok->ntrie = 1;
    for (size_t k = 0; k < tok->nadded; k++) {
        const tr_added *a = &tok->added[k];
        uint32_t at = 0;
        for (uint32_t i = 0; i < a->len; i++)
            if (!(at = trie_child(tok, at, (uint8_t)tok->bytes[a->off + i], 1)))
                return MU_ERR_NOMEM;
        if (!tok->trie[at].token)
            tok->trie[at].token = (uint32_t)k + 1;
    }
    return MU_OK;
}

static int read_added(tr_tok *tok, json_t *arr, mu_diag *diag, const char *path)
{
    size_t n = json_array_size(arr);
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: added_tokens is not an array", path);
    tok->added = calloc(n ? n : 1, sizeof *tok->added);
    if (!tok->added)
        return MU_ERR_NOMEM;
    char buf[1024];
    for (size_t k = 0; k < n; k++) {
        json_t *t = json_array_get(arr, k), *jid = json_object_get(t, "id");
        const char *content = json_string_value(json_object_get(t, "content"));
        if (!content || !content[0] || !json_is_integer(jid) || json_integer_value(jid) < 0 ||
            strlen(content) > sizeof buf)
            return mu_diag_set(diag, MU_ERR_FORMAT,
                               "%s: added_tokens[%zu] needs an id and a "
                               "content of 1 to 1024 bytes",
                               path, k);
        if (!off(t, "lstrip") || !off(t, "rstrip") || !off(t, "single_word"))
            return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                               "%s: added_tokens[%zu] ('%.40s'): "
                               "lstrip, rstrip and single_word are not supported",
                               path, k, content);
        uint32_t id = (uint32_t)json_integer_value(jid);
        size_t len = strlen(content);
        uint8_t flags =
            TR_TF_ADDED | (json_is_true(json_object_get(t, "special")) ? TR_TF_SPECIAL : 0);
        tr_added *a = &tok->added[k];
        a->id = id;
        a->len = (uint32_t)len;
        int rc = tr_tok_bytes_add(tok, content, len, &a->off);
        if (rc)
            return rc;
        if (id < tok->nvocab && (tok->flags[id] & TR_TF_ASSIGNED)) {
            tok->flags[id] |= flags; /* also in the model vocab: decodes as the vocab says */
        } else {
            /* Decoded as Hugging Face's ByteLevel decoder reads the content. */
            long m = tok->sp ? -1 : tr_tok_from_byte_level(content, len, buf);
            rc = m < 0 ? tr_tok_set(tok, id, content, len, flags, diag, path)
                       : tr_tok_set(tok, id, buf, (size_t)m, flags, diag, path);
            if (rc)
                return rc;
        }
        tok->added_first[(unsigned char)content[0]] = 1;
    }
    tok->nadded = n;
    qsort(tok->added, n, sizeof *tok->added, cmp_added);
    return index_added(tok);
}

/* path itself, or path/tokenizer.json when path is a folder. */
static char *file_of(const char *path)
{
    struct stat st;
    int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    size_t n = strlen(path) + sizeof "/tokenizer.json";
    char *f = malloc(n);
    if (f)
        snprintf(f, n, dir ? "%s/tokenizer.json" : "%s", path);
    return f;
}

/* The tokenizer_config.json beside tokenizer.json `file`. */
static char *config_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    size_t dir = slash ? (size_t)(slash - file) + 1 : 0, n = dir + sizeof "tokenizer_config.json";
    char *c = malloc(n);
    if (c)
        snprintf(c, n, "%.*stokenizer_config.json", (int)dir, file);
    return c;
}

static int load(tr_tok *tok, const char *file, mu_diag *diag)
{
    char *text;
    size_t len;
    int rc = mu_read_file(file, TR_TOK_MAX_FILE, &text, &len, diag);
    if (rc)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s:%d: %s", file, jerr.line, jerr.text);
    }
    json_t *model = json_object_get(root, "model");
    rc = read_features(tok, root, diag, file);
    if (!rc)
        rc = tr_tok_load_vocab(tok, model, diag, file);
    if (!rc)
        rc = tr_tok_load_merges(tok, json_object_get(model, "merges"), diag, file);
    if (!rc)
        rc = read_added(tok, json_object_get(root, "added_tokens"), diag, file);
    char *cfg = rc ? NULL : config_of(file);
    if (!rc)
        rc = cfg ? tr_tok_read_specials(tok, root, cfg, diag, file) : MU_ERR_NOMEM;
    free(cfg);
    json_decref(root);
    return rc;
}

tr_tok *tr_tok_load(const char *path, int *err, mu_diag *diag)
{
    int rc = MU_ERR_NOMEM;
    char *file = file_of(path);
    tr_tok *tok = calloc(1, sizeof *tok);
    if (tok)
        tok->unk_id = TR_NO_ID; /* set from model.unk_token, SentencePiece style only */
    if (file && tok)
        rc = load(tok, file, diag);
    free(file);
    if (rc) {
        if (rc == MU_ERR_NOMEM)
            mu_diag_set(diag, rc, "%s: out of memory loading the tokenizer", path);
        tr_tok_free(tok);
        tok = NULL;
    }
    if (err)
        *err = rc;
    return tok;
}

void tr_tok_free(tr_tok *tok)
{
    if (!tok)
        return;
    free(tok->bytes);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->flags);
    free(tok->vslots);
    free(tok->mslots);
    free(tok->added);
    free(tok->cache);
    free(tok->ckeys);
    free(tok->cids);
    free(tok->sp_cross);
    free(tok->trie);
    free(tok);
}

uint32_t tr_tok_vocab_size(const tr_tok *tok)
{
    return tok->nvocab;
}
