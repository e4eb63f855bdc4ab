/* tr_tok_nfc.c - Unicode NFC (canonical decomposition, canonical ordering, canonical
 * composition), the normalizer Qwen2's tokenizer.json asks for. The data are generated from
 * Python's unicodedata at build time (tr_unicat.h); Hangul syllables are computed. */
#include <stdlib.h>
#include <string.h>

#include "mu_grow.h"
#include "tr_tok_internal.h"

typedef struct {
    uint32_t cp, ccc;
} tr_ccc;
typedef struct {
    uint32_t cp, off, len; /* full decomposition: tr_nfc_pool[off .. off + len) */
} tr_decomp;
typedef struct {
    uint32_t a, b, c; /* a + b compose to c */
} tr_comp;
typedef struct {
    uint32_t lo, hi;
} tr_cp_range;

#define TR_UNICAT_NFC
#include "tr_unicat.h"

#define TR_NFC_MAX_DECOMP 4 /* the longest full decomposition, Hangul's 3 included */

enum { S_BASE = 0xac00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11a7 };
enum { L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, S_COUNT = L_COUNT * V_COUNT * T_COUNT };

static uint32_t ccc_of(uint32_t cp)
{
    size_t lo = 0, hi = sizeof tr_nfc_ccc / sizeof *tr_nfc_ccc;
    if (cp < 0x300)
        return 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tr_nfc_ccc[mid].cp == cp)
            return tr_nfc_ccc[mid].ccc;
        if (tr_nfc_ccc[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Writes cp's full canonical decomposition to out; returns its length (1: itself). */
static size_t decompose(uint32_t cp, uint32_t *out)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE, t = s % T_COUNT;
        out[0] = L_BASE + s / (V_COUNT * T_COUNT);
        out[1] = V_BASE + (s % (V_COUNT * T_COUNT)) / T_COUNT;
        out[2] = T_BASE + t;
        return t ? 3 : 2;
    }
    size_t lo = 0, hi = sizeof tr_nfc_decomp / sizeof *tr_nfc_decomp;
    while (cp >= 0xc0 && lo < hi) {
        size_t mid = (lo + hi) / 2;
        const tr_decomp *d = &tr_nfc_decomp[mid];
        if (d->cp == cp) {
            memcpy(out, tr_nfc_pool + d->off, d->len * sizeof *out);
            return d->len;
        }
        if (d->cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = cp;
    return 1;
}

/* The primary composite of a + b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = sizeof tr_nfc_comp / sizeof *tr_nfc_comp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const tr_comp *c = &tr_nfc_comp[mid];
        if (c->a == a && c->b == b)
            return c->c;
        if (c->a < a || (c->a == a && c->b < b))
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Canonical ordering (a stable sort of each run of non-starters by class), then canonical
 * composition, in place over cps[0..n); returns the new length. */
static size_t order_and_compose(uint32_t *cps, uint32_t *cls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cls[i] = ccc_of(cps[i]);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cls[j] && cls[j - 1] > cls[j]; j--) {
            uint32_t t = cps[j];
            cps[j] = cps[j - 1];
            cps[j - 1] = t;
            t = cls[j];
            cls[j] = cls[j - 1];
            cls[j - 1] = t;
        }
    size_t out = 0, starter = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = 0;
        /* Blocked when a kept character between holds a class >= this one's (or is a
         * starter): only the last kept one need be checked, classes being ordered. */
        int blocked = starter != SIZE_MAX && out - 1 != starter &&
                      (cls[out - 1] == 0 || cls[out - 1] >= cls[i]);
        if (starter != SIZE_MAX && !blocked)
            c = compose(cps[starter], cps[i]);
        if (c) {
            cps[starter] = c;
            continue;
        }
        cps[out] = cps[i];
        cls[out] = cls[i];
        if (cls[i] == 0)
            starter = out;
        out++;
    }
    return out;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* May cp change under NFC or combine with what precedes it? Before any other code point
 * NFC cuts the text into pieces that normalize apart. */
static int unsafe(uint32_t cp)
{
    size_t lo = 0, hi = sizeof tr_nfc_unsafe / sizeof *tr_nfc_unsafe;
    if (cp < 0x300)
        return 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tr_nfc_unsafe[mid].lo)
            hi = mid;
        else if (cp > tr_nfc_unsafe[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* Appends the NFC of the piece s[0..n) to *o (capacity *cap, length *len); cps is scratch of
 * 2 * (TR_NFC_MAX_DECOMP * n + 1) entries. */
static int piece(const char *s, size_t n, uint32_t *cps, char **o, size_t *len, size_t *cap)
{
    size_t m = 0, l;
    for (size_t i = 0; i < n; i += l)
        m += decompose(tr_utf8_at(s, n, i, &l), cps + m);
    m = order_and_compose(cps, cps + TR_NFC_MAX_DECOMP * n + 1, m);
    if (MU_GROW(o, cap, *len + 4 * m, 256)) /* at most 4 bytes per code point */
        return MU_ERR_NOMEM;
    for (size_t k = 0; k < m; k++)
        *len += put_utf8(*o + *len, cps[k]);
    return MU_OK;
}

static int append(char **o, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (n == 0)
        return MU_OK;
    if (MU_GROW(o, cap, *len + n, 256))
        return MU_ERR_NOMEM;
    memcpy(*o + *len, s, n);
    *len += n;
    return MU_OK;
}

int tr_nfc(const char *s, size_t n, char **out, size_t *out_len)
{
    *out = NULL;
    size_t i = 0, l;
    while (i < n && !unsafe(tr_utf8_at(s, n, i, &l)))
        i += l;
    if (i == n)
        return MU_OK;
    /* Pieces: a safe code point and the unsafe ones after it; only those holding an unsafe
     * one are normalized, the rest copied. */
    char *o = NULL;
    uint32_t *cps = NULL;
    size_t len = 0, cap = 0, ncps = 0, clean = 0, start = 0;
    int rc = MU_OK, dirty = 0;
    for (i = 0; i <= n && !rc; i += l) {
        uint32_t cp = i < n ? tr_utf8_at(s, n, i, &l) : 0;
        if (i < n && unsafe(cp)) {
            dirty = 1;
            continue;
        }
        if (dirty) {
            size_t need = 2 * (TR_NFC_MAX_DECOMP * (i - start) + 1);
            rc = MU_GROW(&cps, &ncps, need, 64);
            if (!rc)
                rc = append(&o, &len, &cap, s + clean, start - clean);
            if (!rc)
                rc = piece(s + start, i - start, cps, &o, &len, &cap);
            clean = i;
            dirty = 0;
        }
        start = i;
        if (i == n)
            break;
    }
    if (!rc)
        rc = append(&o, &len, &cap, s + clean, n - clean);
    free(cps);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *out_len = len;
    return MU_OK;
}
