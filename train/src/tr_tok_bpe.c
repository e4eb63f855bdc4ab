/* tr_tok_bpe.c - encode (added tokens, pre-tokens, BPE merges by rank) and decode. */
#include <stdlib.h>
#include <string.h>

#include "mu_grow.h"
#include "tr_tok_internal.h"

typedef struct {
    uint32_t *ids; /* (cap) */
    size_t n, cap;
} tr_ids;

static int ids_push(tr_ids *o, const uint32_t *ids, size_t n)
{
    if (MU_GROW(&o->ids, &o->cap, o->n + n, 256))
        return MU_ERR_NOMEM;
    memcpy(o->ids + o->n, ids, n * sizeof *ids);
    o->n += n;
    return MU_OK;
}

/* The cached ids of word w[0..n), or NULL. */
static const tr_cache_slot *cache_find(const tr_tok *tok, const char *w, size_t n, uint32_t h)
{
    if (!tok->cache)
        return NULL;
    for (size_t k = h & (TR_TOK_CACHE_SLOTS - 1);; k = (k + 1) & (TR_TOK_CACHE_SLOTS - 1)) {
        const tr_cache_slot *c = &tok->cache[k];
        if (!c->key_len)
            return NULL;
        if (c->hash == h && c->key_len == n && memcmp(tok->ckeys + c->key_off, w, n) == 0)
            return c;
    }
}

/* Remembers word -> ids while the cache is under half full (then it stops growing, so it
 * never costs more than ~2 MB). A failed allocation only skips the remembering. */
static void cache_put(tr_tok *tok, const char *w, size_t n, uint32_t h, const uint32_t *ids,
                      size_t nids)
{
    if (!tok->cache) {
        tok->cache = calloc(TR_TOK_CACHE_SLOTS, sizeof *tok->cache);
        if (!tok->cache)
            return;
    }
    if (tok->cache_used >= TR_TOK_CACHE_SLOTS / 2 ||
        MU_GROW(&tok->ckeys, &tok->ckeys_cap, tok->ckeys_len + n, 1 << 16) ||
        MU_GROW(&tok->cids, &tok->cids_cap, tok->cids_len + nids, 1 << 14))
        return;
    size_t k = h & (TR_TOK_CACHE_SLOTS - 1);
    while (tok->cache[k].key_len)
        k = (k + 1) & (TR_TOK_CACHE_SLOTS - 1);
    tok->cache[k] = (tr_cache_slot){h, (uint32_t)tok->ckeys_len, (uint32_t)n,
                                    (uint32_t)tok->cids_len, (uint32_t)nids};
    memcpy(tok->ckeys + tok->ckeys_len, w, n);
    memcpy(tok->cids + tok->cids_len, ids, nids * sizeof *ids);
    tok->ckeys_len += n;
    tok->cids_len += nids;
    tok->cache_used++;
}

/* BPE over one word's bytes: start from one token per byte, then merge the adjacent pair of
 * lowest rank (the leftmost among equals) until no pair has a merge. syms has n entries;
 * returns how many remain. */
static size_t bpe_merge(const tr_tok *tok, const char *w, size_t n, uint32_t *syms)
{
    for (size_t i = 0; i < n; i++)
        syms[i] = tok->byte_id[(unsigned char)w[i]];
    while (n > 1) {
        uint32_t best = UINT32_MAX, best_id = 0, rank, id;
        size_t at = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (tr_tok_merge_find(tok, syms[i], syms[i + 1], &rank, &id) && rank < best) {
                best = rank;
                best_id = id;
                at = i;
            }
        }
        if (best == UINT32_MAX)
            break;
        syms[at] = best_id;
        memmove(syms + at + 1, syms + at + 2, (n - at - 2) * sizeof *syms);
        n--;
    }
    return n;
}

static int encode_word(tr_tok *tok, const char *w, size_t n, tr_ids *out)
{
    if (tok->ignore_merges) {
        int64_t id = tr_tok_vocab_find(tok, w, n);
        if (id >= 0) {
            uint32_t one = (uint32_t)id;
            return ids_push(out, &one, 1);
        }
    }
    uint32_t h = tr_tok_hash(w, n);
    if (n <= TR_TOK_CACHE_MAX_WORD) {
        const tr_cache_slot *c = cache_find(tok, w, n, h);
        if (c)
            return ids_push(out, tok->cids + c->ids_off, c->ids_len);
    }
    uint32_t local[TR_TOK_CACHE_MAX_WORD];
    uint32_t *syms = n <= TR_TOK_CACHE_MAX_WORD ? local : malloc(n * sizeof *syms);
    if (!syms)
        return MU_ERR_NOMEM;
    size_t m = bpe_merge(tok, w, n, syms);
    int rc = ids_push(out, syms, m);
    if (n <= TR_TOK_CACHE_MAX_WORD)
        cache_put(tok, w, n, h, syms, m);
    else
        free(syms);
    return rc;
}

/* Text with no added token in it: normalized, then pre-tokens, each encoded as a word. */
static int encode_plain(tr_tok *tok, const char *s, size_t n, tr_ids *out)
{
    char *norm = NULL;
    int rc = tok->nfc ? tr_nfc(s, n, &norm, &n) : MU_OK;
    if (norm)
        s = norm;
    for (size_t i = 0; i < n && !rc;) {
        size_t end = tr_tok_pre_next(tok->pre, s, n, i);
        rc = encode_word(tok, s + i, end - i, out);
        i = end;
    }
    free(norm);
    return rc;
}

/* The longest added token at s[i], or NULL. */
static const tr_added *added_at(const tr_tok *tok, const char *s, size_t n, size_t i)
{
    if (!tok->added_first[(unsigned char)s[i]])
        return NULL;
    for (size_t k = 0; k < tok->nadded; k++) {
        const tr_added *a = &tok->added[k];
        if (a->len <= n - i && memcmp(s + i, tok->bytes + a->off, a->len) == 0)
            return a;
    }
    return NULL;
}

int tr_tok_encode(tr_tok *tok, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    char *s;
    size_t sn;
    int rc = tr_utf8_sanitize(text, len, &s, &sn);
    if (rc)
        return rc;
    tr_ids out = {0};
    size_t start = 0;
    for (size_t i = 0; i < sn && !rc; i++) {
        const tr_added *a = added_at(tok, s, sn, i);
        if (!a)
            continue;
        rc = encode_plain(tok, s + start, i - start, &out);
        if (!rc)
            rc = ids_push(&out, &a->id, 1);
        start = i + a->len;
        i = start - 1;
    }
    if (!rc)
        rc = encode_plain(tok, s + start, sn - start, &out);
    free(s);
    if (rc) {
        free(out.ids);
        return rc;
    }
    *ids = out.ids;
    *n = out.n;
    return MU_OK;
}

int tr_tok_decode(const tr_tok *tok, const uint32_t *ids, size_t n, int skip_special, char **out,
                  size_t *out_len, mu_diag *diag)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= tok->nvocab || !(tok->flags[ids[i]] & TR_TF_ASSIGNED))
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "decode: id %u (position %zu) is not a "
                               "token of this tokenizer",
                               ids[i], i);
        total += tok->tok_len[ids[i]];
    }
    char *o = malloc(total + 1);
    if (!o)
        return MU_ERR_NOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && (tok->flags[ids[i]] & TR_TF_SPECIAL))
            continue;
        memcpy(o + j, tok->bytes + tok->tok_off[ids[i]], tok->tok_len[ids[i]]);
        j += tok->tok_len[ids[i]];
    }
    o[j] = '\0';
    *out = o;
    *out_len = j;
    return MU_OK;
}
