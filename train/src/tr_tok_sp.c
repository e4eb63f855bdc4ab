/* tr_tok_sp.c - SentencePiece-style BPE (Llama 2, Mistral, Gemma): normalizing a section,
 * cutting it into words, and a word's first symbols (characters, byte fallback, unk). */
#include <stdlib.h>
#include <string.h>

#include "mu_grow.h"
#include "tr_tok_internal.h"

#define TR_SP_SPACE 0x2581u /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */

/* The first occurrence of a[0..alen) in s[0..n), or NULL (memmem is a GNU extension). */
static const char *find_lit(const char *s, size_t n, const char *a, size_t alen)
{
    for (const char *p = s, *e = s + n; (size_t)(e - p) >= alen;) {
        p = memchr(p, a[0], (size_t)(e - p) - alen + 1);
        if (!p)
            return NULL;
        if (memcmp(p, a, alen) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* s[0..n) with every (non-overlapping, leftmost first) a replaced by b, into a malloc'd *out
 * (NULL when there is none). */
static int replace_all(const char *s, size_t n, const char *a, size_t alen, const char *b,
                       size_t blen, char **out, size_t *out_len)
{
    size_t count = 0;
    if (alen == 1) { /* ' ': the common case, counted without a call per match */
        for (size_t i = 0; i < n; i++)
            count += s[i] == a[0];
    } else {
        for (const char *p = s; (p = find_lit(p, n - (size_t)(p - s), a, alen)); p += alen)
            count++;
    }
    *out = NULL;
    if (!count) /* unchanged */
        return MU_OK;
    char *o = malloc(n - count * alen + count * blen + 1);
    if (!o)
        return MU_ERR_NOMEM;
    size_t j = 0;
    if (alen == 1) {
        for (size_t i = 0; i < n; i++) {
            if (s[i] != a[0]) {
                o[j++] = s[i];
                continue;
            }
            memcpy(o + j, b, blen);
            j += blen;
        }
        *out = o;
        *out_len = j;
        return MU_OK;
    }
    for (const char *p = s, *q; p < s + n; p = q + alen) {
        q = find_lit(p, n - (size_t)(p - s), a, alen);
        size_t keep = q ? (size_t)(q - p) : n - (size_t)(p - s);
        memcpy(o + j, p, keep);
        j += keep;
        if (!q)
            break;
        memcpy(o + j, b, blen);
        j += blen;
    }
    *out = o;
    *out_len = j;
    return MU_OK;
}

static int prepend(const char *s, size_t n, const char *a, size_t alen, char **out, size_t *out_len)
{
    char *o = malloc(n + alen + 1);
    if (!o)
        return MU_ERR_NOMEM;
    memcpy(o, a, alen);
    memcpy(o + alen, s, n);
    *out = o;
    *out_len = n + alen;
    return MU_OK;
}

/* Moves to the next version of the text: next (owned) when a step made one. */
static void take(const char **cur, char **owned, size_t *len, char *next, size_t next_len)
{
    if (next) {
        free(*owned);
        *cur = *owned = next;
        *len = next_len;
    }
}

int tr_sp_normalize(const tr_tok *tok, const char *s, size_t n, size_t at, char **out,
                    size_t *out_len)
{
    *out = NULL;
    *out_len = n;
    if (!n)
        return MU_OK;
    const char *cur = s; /* s itself until a step changes it */
    char *owned = NULL, *next;
    size_t len = n, next_len = 0;
    int rc = MU_OK;
    for (size_t k = 0; k < tok->nnorm && !rc; k++) {
        const tr_norm_step *st = &tok->norm[k];
        next = NULL;
        if (st->kind == TR_NORM_NFC)
            rc = tr_nfc(cur, len, &next, &next_len);
        else if (st->kind == TR_NORM_PREPEND && len)
            rc = prepend(cur, len, st->a, st->alen, &next, &next_len);
        else if (st->kind == TR_NORM_REPLACE)
            rc = replace_all(cur, len, st->a, st->alen, st->b, st->blen, &next, &next_len);
        take(&cur, &owned, &len, next, next_len);
    }
    if (!rc && tok->pre == TR_PRE_METASPACE && len) {
        next = NULL;
        rc = replace_all(cur, len, " ", 1, tok->ms_rep, tok->ms_rep_len, &next, &next_len);
        take(&cur, &owned, &len, next, next_len);
        int want = tok->ms_scheme == TR_MS_ALWAYS || (tok->ms_scheme == TR_MS_FIRST && at == 0);
        next = NULL;
        if (!rc && want && (len < tok->ms_rep_len || memcmp(cur, tok->ms_rep, tok->ms_rep_len)))
            rc = prepend(cur, len, tok->ms_rep, tok->ms_rep_len, &next, &next_len);
        take(&cur, &owned, &len, next, next_len);
    }
    if (rc) {
        free(owned);
        return rc;
    }
    *out = owned;
    *out_len = len;
    return MU_OK;
}

static int in_cross(const tr_tok *tok, uint32_t cp)
{
    size_t lo = 0, hi = tok->nsp_cross;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok->sp_cross[mid] == cp)
            return 1;
        if (tok->sp_cross[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The pre-tokenizer's end of the pre-token starting at s[i]. */
static size_t pre_end(const tr_tok *tok, const char *s, size_t n, size_t i)
{
    const char *r = tok->ms_rep;
    size_t rl = tok->ms_rep_len;
    if (tok->pre == TR_PRE_SPLIT_LIT) { /* MergedWithPrevious: the literal ends the piece */
        const char *p = find_lit(s + i, n - i, r, rl);
        return p ? (size_t)(p - s) + rl : n;
    }
    if (tok->pre == TR_PRE_METASPACE && tok->ms_split && i + 1 < n) { /* MergedWithNext */
        const char *p = find_lit(s + i + 1, n - i - 1, r, rl);
        return p ? (size_t)(p - s) : n;
    }
    return n;
}

size_t tr_sp_word_next(const tr_tok *tok, const char *s, size_t n, size_t i)
{
    size_t end = pre_end(tok, s, n, i), len;
    if (tok->nsp_cross == SIZE_MAX)
        return end;
    /* A cut before U+2581 (E2 96 81) that follows a code point no merge joins to it. */
    for (size_t p = i + 1; p + 3 <= end;) {
        const char *q = memchr(s + p, 0xe2, end - p - 2);
        if (!q)
            break;
        size_t at = (size_t)(q - s), b = at;
        if ((unsigned char)q[1] == 0x96 && (unsigned char)q[2] == 0x81) {
            do /* back to the start of the code point before */
                b--;
            while (b > i && ((unsigned char)s[b] & 0xc0) == 0x80);
            uint32_t prev = tr_utf8_at(s, end, b, &len);
            if (prev != TR_SP_SPACE && !in_cross(tok, prev))
                return at;
        }
        p = at + 1;
    }
    return end;
}

size_t tr_sp_symbols(const tr_tok *tok, const char *w, size_t n, uint32_t *syms)
{
    size_t m = 0, len;
    int last_unk = 0;
    for (size_t i = 0; i < n; i += len) {
        unsigned char c = (unsigned char)w[i];
        if (c < 0x80 && tok->ascii_id[c] != TR_NO_ID) {
            syms[m++] = tok->ascii_id[c];
            last_unk = 0;
            len = 1;
            continue;
        }
        tr_utf8_at(w, n, i, &len);
        int64_t id = tr_tok_vocab_find(tok, w + i, len);
        if (id >= 0) {
            syms[m++] = (uint32_t)id;
            last_unk = 0;
            continue;
        }
        if (tok->byte_fallback) {
            size_t k = 0;
            while (k < len && tok->byte_id[(unsigned char)w[i + k]] != TR_NO_ID)
                k++;
            if (k == len) {
                for (k = 0; k < len; k++)
                    syms[m++] = tok->byte_id[(unsigned char)w[i + k]];
                last_unk = 0;
                continue;
            }
        }
        if (tok->unk_id == TR_NO_ID) /* no unk token: the character is dropped */
            continue;
        if (!(tok->fuse_unk && last_unk))
            syms[m++] = tok->unk_id;
        last_unk = 1;
    }
    return m;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Adds each code point of token `id` that directly precedes a U+2581 (and is not one). */
static int cross_add(tr_tok *tok, uint32_t id, size_t *cap)
{
    const char *s = tok->bytes + tok->tok_off[id];
    size_t n = tok->tok_len[id], len;
    uint32_t prev = TR_SP_SPACE;
    for (size_t i = 0; i < n; i += len) {
        uint32_t cp = tr_utf8_at(s, n, i, &len);
        if (cp == TR_SP_SPACE && prev != TR_SP_SPACE) {
            if (MU_GROW(&tok->sp_cross, cap, tok->nsp_cross + 1, 16))
                return MU_ERR_NOMEM;
            tok->sp_cross[tok->nsp_cross++] = prev;
        }
        prev = cp;
    }
    return MU_OK;
}

int tr_sp_cross_build(tr_tok *tok)
{
    static const char space[] = "\xe2\x96\x81";
    size_t cap = 0;
    /* With ignore_merges a whole word found in the vocab is one token: a cut would change
     * which words are looked up. Without U+2581 in the vocab, unknown characters could fuse
     * across a cut. Either way: never cut. */
    if (tok->ignore_merges || tr_tok_vocab_find(tok, space, 3) < 0) {
        tok->nsp_cross = SIZE_MAX;
        return MU_OK;
    }
    for (size_t k = 0; k <= tok->mmask; k++) {
        if (tok->mslots[k].key && cross_add(tok, tok->mslots[k].id, &cap))
            return MU_ERR_NOMEM;
    }
    if (tok->nsp_cross)
        qsort(tok->sp_cross, tok->nsp_cross, sizeof *tok->sp_cross, cmp_u32);
    return MU_OK;
}
