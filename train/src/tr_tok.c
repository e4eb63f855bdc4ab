/* tr_tok.c - reading tokenizer.json: which features it uses, the vocab, merges, added tokens.
 *
 * Tokens are kept as the bytes they stand for: a vocab string is byte-level text (each byte
 * written as one code point of GPT-2's bytes_to_unicode table) and is mapped back to bytes
 * once here, so encoding looks words up by their raw bytes.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mu_grow.h"
#include "tr_tok_internal.h"

#define TR_TOK_MAX_FILE (256u << 20)
#define TR_TOK_MAX_ID   (1u << 24)

/* The byte code point c < 324 of GPT-2's bytes_to_unicode stands for, or -1: printable
 * bytes stand for themselves, the other 68 for 256, 257, ... in byte order. */
static int byte_of(uint32_t c)
{
    if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))
        return (int)c;
    if (c < 256 || c >= 324)
        return -1;
    uint32_t k = c - 256; /* the non-printable bytes: 0..32, 127..160, 173 */
    return k < 33 ? (int)k : k < 67 ? (int)(127 + k - 33) : 173;
}

long tr_tok_from_byte_level(const char *s, size_t n, char *out)
{
    size_t i = 0, o = 0, len;
    while (i < n) {
        uint32_t cp = tr_utf8_at(s, n, i, &len);
        int b = byte_of(cp);
        if (b < 0)
            return -1;
        out[o++] = (char)b;
        i += len;
    }
    return (long)o;
}

uint32_t tr_tok_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

int64_t tr_tok_vocab_find(const tr_tok *tok, const char *s, size_t n)
{
    for (size_t k = tr_tok_hash(s, n) & tok->vmask;; k = (k + 1) & tok->vmask) {
        uint32_t v = tok->vslots[k];
        if (!v)
            return -1;
        uint32_t id = v - 1;
        if (tok->tok_len[id] == n && memcmp(tok->bytes + tok->tok_off[id], s, n) == 0)
            return id;
    }
}

static size_t merge_slot(const tr_tok *tok, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t k = (size_t)(h >> 32) & tok->mmask;
    while (tok->mslots[k].key && tok->mslots[k].key != key)
        k = (k + 1) & tok->mmask;
    return k;
}

int tr_tok_merge_find(const tr_tok *tok, uint32_t a, uint32_t b, uint32_t *rank, uint32_t *id)
{
    const tr_merge_slot *m = &tok->mslots[merge_slot(tok, ((uint64_t)(a + 1) << 32) | (b + 1))];
    if (!m->key)
        return 0;
    *rank = m->rank;
    *id = m->id;
    return 1;
}

static size_t pow2_above(size_t n)
{
    size_t p = 16;
    while (p < 2 * n)
        p *= 2;
    return p;
}

int tr_tok_bytes_add(tr_tok *tok, const char *b, size_t n, uint32_t *off)
{
    if (tok->bytes_len + n >= UINT32_MAX)
        return MU_ERR_NOMEM;
    if (MU_GROW(&tok->bytes, &tok->bytes_cap, tok->bytes_len + n + 1, 1 << 20))
        return MU_ERR_NOMEM;
    memcpy(tok->bytes + tok->bytes_len, b, n);
    *off = (uint32_t)tok->bytes_len;
    tok->bytes_len += n;
    return MU_OK;
}

/* Grows the per-id arrays to cover it. */
int tr_tok_set(tr_tok *tok, uint32_t id, const char *b, size_t n, uint8_t flags, mu_diag *diag,
               const char *path)
{
    if (id >= TR_TOK_MAX_ID)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: token id %u is too large", path, id);
    if (id >= tok->nvocab) {
        size_t c1 = tok->idcap, c2 = tok->idcap, c3 = tok->idcap;
        if (MU_GROW(&tok->tok_off, &c1, (size_t)id + 1, 1 << 16) ||
            MU_GROW(&tok->tok_len, &c2, (size_t)id + 1, 1 << 16) ||
            MU_GROW(&tok->flags, &c3, (size_t)id + 1, 1 << 16))
            return MU_ERR_NOMEM; /* the grown arrays stay, only idcap lags: still freed */
        tok->idcap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
        memset(tok->flags + tok->nvocab, 0, id + 1 - tok->nvocab);
        tok->nvocab = id + 1;
    }
    if (tok->flags[id] & TR_TF_ASSIGNED)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: token id %u is given twice", path, id);
    if (tr_tok_bytes_add(tok, b, n, &tok->tok_off[id]))
        return MU_ERR_NOMEM;
    tok->tok_len[id] = (uint32_t)n;
    tok->flags[id] = flags | TR_TF_ASSIGNED;
    return MU_OK;
}

/* "<0xNN>" (upper-case hex, as Hugging Face writes byte-fallback tokens): NN, else -1. */
static int fallback_byte(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    return s[3] && s[4] && hi && lo ? (int)((hi - hex) * 16 + (lo - hex)) : -1;
}

/* Stores one vocab entry: byte-level text mapped back to bytes, or (SentencePiece style) the
 * string as written, a <0xNN> one marked as the byte's fallback token. */
static int vocab_entry(tr_tok *tok, const char *key, uint32_t id, size_t *nmapped, mu_diag *diag,
                       const char *path)
{
    char buf[1024];
    size_t n = strlen(key);
    if (n > sizeof buf)
        return mu_diag_set(diag, MU_ERR_UNSUPPORTED, "%s: vocab token of %zu bytes", path, n);
    if (tok->sp) {
        int b = fallback_byte(key, n);
        if (b >= 0 && tok->byte_id[b] == TR_NO_ID)
            tok->byte_id[b] = id;
        (*nmapped)++;
        return tr_tok_set(tok, id, key, n, TR_TF_BYTELEVEL | (b >= 0 ? TR_TF_BYTEFB : 0), diag,
                          path);
    }
    long m = tr_tok_from_byte_level(key, n, buf);
    *nmapped += m >= 0;
    return m < 0 ? tr_tok_set(tok, id, key, n, 0, diag, path)
                 : tr_tok_set(tok, id, buf, (size_t)m, TR_TF_BYTELEVEL, diag, path);
}

/* SentencePiece style: model.unk_token's id (TR_NO_ID when there is none). */
static int read_unk(tr_tok *tok, json_t *model, mu_diag *diag, const char *path)
{
    json_t *u = json_object_get(model, "unk_token");
    tok->unk_id = TR_NO_ID;
    if (!u || json_is_null(u))
        return MU_OK;
    const char *s = json_string_value(u);
    int64_t id = s ? tr_tok_vocab_find(tok, s, strlen(s)) : -1;
    if (id < 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: model.unk_token is not in model.vocab", path);
    tok->unk_id = (uint32_t)id;
    return MU_OK;
}

int tr_tok_load_vocab(tr_tok *tok, json_t *model, mu_diag *diag, const char *path)
{
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab) || json_object_size(vocab) == 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: model.vocab is not a non-empty object", path);
    const char *key;
    json_t *val;
    size_t nmapped = 0;
    for (int b = 0; b < 256; b++)
        tok->byte_id[b] = TR_NO_ID;
    json_object_foreach(vocab, key, val)
    {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= (json_int_t)UINT32_MAX)
            return mu_diag_set(diag, MU_ERR_FORMAT, "%s: model.vocab[\"%.40s\"] is not an id", path,
                               key);
        int rc = vocab_entry(tok, key, (uint32_t)id, &nmapped, diag, path);
        if (rc)
            return rc;
    }
    /* Only the tokens flagged TR_TF_BYTELEVEL are found by their bytes. */
    tok->vmask = pow2_above(nmapped) - 1;
    tok->vslots = calloc(tok->vmask + 1, sizeof *tok->vslots);
    if (!tok->vslots)
        return MU_ERR_NOMEM;
    for (uint32_t id = 0; id < tok->nvocab; id++) {
        if (!(tok->flags[id] & TR_TF_BYTELEVEL))
            continue;
        const char *b = tok->bytes + tok->tok_off[id];
        if (tr_tok_vocab_find(tok, b, tok->tok_len[id]) >= 0)
            return mu_diag_set(diag, MU_ERR_FORMAT, "%s: vocab id %u repeats another's bytes", path,
                               id);
        size_t k = tr_tok_hash(b, tok->tok_len[id]) & tok->vmask;
        while (tok->vslots[k])
            k = (k + 1) & tok->vmask;
        tok->vslots[k] = id + 1;
    }
    if (tok->sp) {
        for (int c = 0; c < 128; c++) {
            char ch = (char)c;
            int64_t id = tr_tok_vocab_find(tok, &ch, 1);
            tok->ascii_id[c] = id < 0 ? TR_NO_ID : (uint32_t)id;
        }
        return read_unk(tok, model, diag, path);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int64_t id = tr_tok_vocab_find(tok, &c, 1);
        if (id < 0)
            return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                               "%s: model.vocab has no token for byte "
                               "0x%02x (byte fallback is not supported)",
                               path, b);
        tok->byte_id[b] = (uint32_t)id;
    }
    return MU_OK;
}

/* One side of a merge: its id, or -1 naming the merge in diag. */
static int64_t merge_side(tr_tok *tok, const char *s, char *buf, size_t cap, size_t *blen)
{
    size_t n = strlen(s);
    if (n > cap)
        return -1;
    long m = tok->sp ? (long)n : tr_tok_from_byte_level(s, n, buf);
    if (tok->sp)
        memcpy(buf, s, n);
    if (m < 0)
        return -1;
    *blen = (size_t)m;
    return tr_tok_vocab_find(tok, buf, (size_t)m);
}

int tr_tok_load_merges(tr_tok *tok, json_t *merges, mu_diag *diag, const char *path)
{
    if (!json_is_array(merges))
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: model.merges is not an array", path);
    size_t nm = json_array_size(merges);
    tok->mmask = pow2_above(nm) - 1;
    tok->mslots = calloc(tok->mmask + 1, sizeof *tok->mslots);
    if (!tok->mslots)
        return MU_ERR_NOMEM;
    char pair[2048], both[2048];
    for (size_t r = 0; r < nm; r++) {
        json_t *e = json_array_get(merges, r);
        const char *a, *b;
        if (json_is_string(e)) {
            const char *s = json_string_value(e), *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ') || strlen(s) >= sizeof pair)
                return mu_diag_set(diag, MU_ERR_FORMAT, "%s: model.merges[%zu] is not 'A B'", path,
                                   r);
            memcpy(pair, s, strlen(s) + 1);
            pair[sp - s] = '\0';
            a = pair;
            b = pair + (sp - s) + 1;
        } else if (json_is_array(e) && json_array_size(e) == 2 &&
                   json_is_string(json_array_get(e, 0)) && json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1));
        } else {
            return mu_diag_set(diag, MU_ERR_FORMAT, "%s: model.merges[%zu] is not a pair", path, r);
        }
        size_t la = 0, lb = 0;
        int64_t ia = merge_side(tok, a, both, 1024, &la);
        int64_t ib = merge_side(tok, b, both + la, 1024, &lb);
        int64_t im = ia >= 0 && ib >= 0 ? tr_tok_vocab_find(tok, both, la + lb) : -1;
        if (im < 0)
            return mu_diag_set(diag, MU_ERR_FORMAT,
                               "%s: model.merges[%zu] ('%.40s' '%.40s') "
                               "names a token not in model.vocab",
                               path, r, a, b);
        uint64_t key = ((uint64_t)(ia + 1) << 32) | (uint64_t)(ib + 1);
        tr_merge_slot *m = &tok->mslots[merge_slot(tok, key)];
        /* A repeated pair keeps its last rank, as Hugging Face's map does. */
        *m = (tr_merge_slot){key, (uint32_t)r, (uint32_t)im};
    }
    return tok->sp ? tr_sp_cross_build(tok) : MU_OK;
}
