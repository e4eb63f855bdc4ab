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

/* A word's first symbols: one per byte (byte-level) or per character (SentencePiece style);
 * syms has room for n. Returns how many. */
static size_t first_symbols(const tr_tok *tok, const char *w, size_t n, uint32_t *syms)
{
    if (tok->sp)
        return tr_sp_symbols(tok, w, n, syms);
    for (size_t i = 0; i < n; i++)
        syms[i] = tok->byte_id[(unsigned char)w[i]];
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
    long m = tr_tok_merge_syms(tok, syms, first_symbols(tok, w, n, syms));
    int rc = m < 0 ? MU_ERR_NOMEM : ids_push(out, syms, (size_t)m);
    if (n <= TR_TOK_CACHE_MAX_WORD && m >= 0)
        cache_put(tok, w, n, h, syms, (size_t)m);
    else
        free(syms);
    return rc;
}

/* Text with no added token in it (at byte `at` of the text): normalized, then pre-tokens,
 * each encoded as a word. */
static int encode_plain(tr_tok *tok, const char *s, size_t n, size_t at, tr_ids *out)
{
    char *norm = NULL;
    int rc = tok->sp    ? tr_sp_normalize(tok, s, n, at, &norm, &n)
             : tok->nfc ? tr_nfc(s, n, &norm, &n)
                        : MU_OK;
    if (norm)
        s = norm;
    for (size_t i = 0; i < n && !rc;) {
        size_t end = tok->sp ? tr_sp_word_next(tok, s, n, i) : tr_tok_pre_next(tok->pre, s, n, i);
        rc = encode_word(tok, s + i, end - i, out);
        i = end;
    }
    free(norm);
    return rc;
}

/* Which bytes are text (tr_tok_encode_text): none, all, or those marked in a mask. */
typedef struct {
    int all;
    const uint8_t *m;
} tr_plain;

static int is_plain(const tr_plain *p, size_t j)
{
    return p->all || (p->m && p->m[j]);
}

/* The longest added token at s[i], or NULL: a walk down the trie. A special token is not
 * taken when any of its bytes is plain text (a non-special one is, as Hugging Face's
 * split_special_tokens does). */
static const tr_added *added_at(const tr_tok *tok, const char *s, size_t n, size_t i,
                                const tr_plain *p)
{
    if (!tok->added_first[(unsigned char)s[i]])
        return NULL;
    uint32_t at = 0, best = 0;
    int plain = 0; /* some byte of s[i..j] is plain text */
    for (size_t j = i; j < n; j++) {
        uint32_t c = tok->trie[at].child;
        while (c && tok->trie[c].byte != (uint8_t)s[j])
            c = tok->trie[c].sibling;
        if (!c)
            break;
        at = c;
        plain |= is_plain(p, j);
        uint32_t t = tok->trie[at].token;
        if (t && !(plain && (tok->flags[tok->added[t - 1].id] & TR_TF_SPECIAL)))
            best = t;
    }
    return best ? &tok->added[best - 1] : NULL;
}

static int encode(tr_tok *tok, const char *text, size_t len, tr_plain p, uint32_t **ids, size_t *n)
{
    char *fixed;
    uint8_t *fm = NULL;
    size_t sn;
    int rc = tr_utf8_sanitize_mask(text, len, p.m, &fixed, &sn, &fm);
    if (rc)
        return rc;
    const char *s = fixed ? fixed : text;
    if (fm)
        p.m = fm;
    tr_ids out = {0};
    size_t start = 0;
    for (size_t i = 0; i < sn && !rc; i++) {
        const tr_added *a = added_at(tok, s, sn, i, &p);
        if (!a)
            continue;
        rc = encode_plain(tok, s + start, i - start, start, &out);
        if (!rc)
            rc = ids_push(&out, &a->id, 1);
        start = i + a->len;
        i = start - 1;
    }
    if (!rc)
        rc = encode_plain(tok, s + start, sn - start, start, &out);
    free(fixed);
    free(fm);
    if (rc) {
        free(out.ids);
        return rc;
    }
    *ids = out.ids;
    *n = out.n;
    return MU_OK;
}

int tr_tok_encode(tr_tok *tok, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    return encode(tok, text, len, (tr_plain){0, NULL}, ids, n);
}

int tr_tok_encode_text(tr_tok *tok, const char *text, size_t len, const uint8_t *plain,
                       uint32_t **ids, size_t *n)
{
    return encode(tok, text, len, (tr_plain){plain == NULL, plain}, ids, n);
}

int tr_tok_find_special(const tr_tok *tok, const char *text, size_t len, size_t *at, uint32_t *id)
{
    tr_plain none = {0, NULL};
    for (size_t i = 0; i < len; i++) {
        const tr_added *a = added_at(tok, text, len, i, &none);
        if (a && (tok->flags[a->id] & TR_TF_SPECIAL)) {
            *at = i;
            *id = a->id;
            return 1;
        }
    }
    return 0;
}

const char *tr_tok_token_text(const tr_tok *tok, uint32_t id, size_t *len)
{
    if (id >= tok->nvocab || !(tok->flags[id] & TR_TF_ASSIGNED))
        return NULL;
    *len = tok->tok_len[id];
    return tok->bytes + tok->tok_off[id];
}

/* Appends token id's decoded bytes at o: its bytes (byte-level, or SentencePiece style with
 * dec_from replaced by dec_to), or the byte of a <0xNN> token under ByteFallback. */
static size_t decode_one(const tr_tok *tok, uint32_t id, char *o)
{
    const char *b = tok->bytes + tok->tok_off[id];
    size_t n = tok->tok_len[id], j = 0;
    if (tok->sp && tok->dec_bytefb && (tok->flags[id] & TR_TF_BYTEFB)) {
        o[0] = (char)strtol(b + 3, NULL, 16); /* "<0xNN>" */
        return 1;
    }
    if (!tok->sp || !tok->dec_from_len) {
        memcpy(o, b, n);
        return n;
    }
    for (size_t i = 0; i < n;) {
        if (i + tok->dec_from_len <= n && memcmp(b + i, tok->dec_from, tok->dec_from_len) == 0) {
            memcpy(o + j, tok->dec_to, tok->dec_to_len);
            j += tok->dec_to_len;
            i += tok->dec_from_len;
        } else {
            o[j++] = b[i++];
        }
    }
    return j;
}

/* The decoder's Strip: up to dec_strip_start leading and dec_strip_stop trailing copies. */
static size_t strip(const tr_tok *tok, char *o, size_t j)
{
    size_t a = 0;
    while (a < tok->dec_strip_start && a < j && o[a] == (char)tok->dec_strip)
        a++;
    memmove(o, o + a, j - a);
    j -= a;
    for (size_t k = 0; k < tok->dec_strip_stop && j && o[j - 1] == (char)tok->dec_strip; k++)
        j--;
    return j;
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
        /* A replacement grows a token at most dec_to_len-fold. */
        total += tok->tok_len[ids[i]] * (tok->dec_to_len > 1 ? tok->dec_to_len : 1);
    }
    char *o = malloc(total + 1);
    if (!o)
        return MU_ERR_NOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && (tok->flags[ids[i]] & TR_TF_SPECIAL))
            continue;
        j += decode_one(tok, ids[i], o + j);
    }
    if (tok->sp && tok->dec_strip)
        j = strip(tok, o, j);
    o[j] = '\0';
    *out = o;
    *out_len = j;
    return MU_OK;
}
