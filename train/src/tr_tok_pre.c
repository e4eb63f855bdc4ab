/* tr_tok_pre.c - UTF-8 reading and the pre-tokenizer regexes, written out by hand.
 *
 * Each function below is one of Hugging Face's pre-tokenizer patterns evaluated as a
 * backtracking regex engine would at one position: alternatives in order, the first that
 * matches wins, greedy runs backed off where the pattern needs it. \s is Unicode White_Space
 * (JavaScript's \s also holds U+FEFF and lacks U+0085; those two differ), the contractions
 * are ASCII case-insensitive as transformers.js rewrites (?i:...).
 */
#include <stdlib.h>
#include <string.h>

#include "tr_tok_internal.h"

typedef struct {
    uint32_t lo, hi;
} tr_cp_range;

#define TR_UNICAT_CATS
#include "tr_unicat.h"

static int in_ranges(const tr_cp_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

enum { C_OTHER = 0, C_L = 1, C_N = 2, C_WS = 3 };

static int is_ws(uint32_t cp)
{
    if (cp <= 0x20)
        return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d);
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static int cp_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
            return C_L;
        if (cp >= '0' && cp <= '9')
            return C_N;
        return is_ws(cp) ? C_WS : C_OTHER;
    }
    if (is_ws(cp))
        return C_WS;
    if (in_ranges(tr_cat_letter, sizeof tr_cat_letter / sizeof *tr_cat_letter, cp))
        return C_L;
    if (in_ranges(tr_cat_number, sizeof tr_cat_number / sizeof *tr_cat_number, cp))
        return C_N;
    return C_OTHER;
}

uint32_t tr_utf8_at(const char *s, size_t n, size_t i, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s + i;
    size_t left = n - i;
    if (u[0] < 0x80 || left < 2) {
        *len = 1;
        return u[0];
    }
    if (u[0] < 0xe0) {
        *len = 2;
        return ((uint32_t)(u[0] & 0x1f) << 6) | (u[1] & 0x3f);
    }
    if (u[0] < 0xf0 || left < 4) {
        *len = left < 3 ? left : 3;
        return ((uint32_t)(u[0] & 0x0f) << 12) | ((uint32_t)(u[1] & 0x3f) << 6) |
               (left > 2 ? (u[2] & 0x3fu) : 0);
    }
    *len = 4;
    return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3f) << 12) |
           ((uint32_t)(u[2] & 0x3f) << 6) | (u[3] & 0x3f);
}

/* Length of the valid UTF-8 sequence at u[0..left), or 0 with *bad the length of the maximal
 * invalid subpart (at least 1) that one U+FFFD replaces. */
static size_t utf8_valid_len(const unsigned char *u, size_t left, size_t *bad)
{
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf)
        need = 1;
    else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        need = 2;
        lo = u[0] == 0xe0 ? 0xa0 : 0x80;
        hi = u[0] == 0xed ? 0x9f : 0xbf;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        need = 3;
        lo = u[0] == 0xf0 ? 0x90 : 0x80;
        hi = u[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= left || u[k] < lo || u[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

size_t tr_utf8_pending(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = u[n - back];
        if ((c & 0xc0) == 0x80)
            continue; /* a continuation byte: its lead is further back */
        size_t bad = 0;
        /* Cut at the end: the subpart runs to n and its lead can start a sequence. */
        if (c >= 0xc2 && c <= 0xf4 && !utf8_valid_len(u + n - back, back, &bad) && bad == back)
            return back;
        return 0;
    }
    return 0;
}

int tr_utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len)
{
    return tr_utf8_sanitize_mask(s, n, NULL, out, out_len, NULL);
}

int tr_utf8_sanitize_mask(const char *s, size_t n, const uint8_t *m, char **out, size_t *out_len,
                          uint8_t **om)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, j = 0;
    for (size_t bad = 0; i < n && !bad;)
        i += utf8_valid_len(u + i, n - i, &bad);
    *out = NULL;
    *out_len = n;
    if (om)
        *om = NULL;
    if (i == n) /* valid: nothing to copy */
        return MU_OK;
    i = 0;
    /* Each invalid byte becomes at most 3 bytes (EF BF BD). */
    if (n > (SIZE_MAX - 1) / 3)
        return MU_ERR_NOMEM;
    char *o = malloc(3 * n + 1);
    uint8_t *t = m ? malloc(3 * n + 1) : NULL;
    if (!o || (m && !t)) {
        free(o);
        free(t);
        return MU_ERR_NOMEM;
    }
    while (i < n) {
        size_t bad = 0, ok = utf8_valid_len(u + i, n - i, &bad);
        if (ok) {
            memcpy(o + j, s + i, ok);
            if (t)
                memcpy(t + j, m + i, ok);
            i += ok;
            j += ok;
        } else {
            memcpy(o + j, "\xef\xbf\xbd", 3);
            if (t) { /* U+FFFD is marked where any byte it replaces was */
                uint8_t any = 0;
                for (size_t k = 0; k < bad; k++)
                    any |= m[i + k] != 0;
                t[j] = t[j + 1] = t[j + 2] = any;
            }
            i += bad;
            j += 3;
        }
    }
    o[j] = '\0';
    *out = o;
    *out_len = j;
    if (om)
        *om = t;
    return MU_OK;
}

/* End of the run of code points of class `cls` from byte i; *count gets how many, at most
 * max. *last gets the start of the run's last code point. */
static size_t run(const char *s, size_t n, size_t i, int cls, size_t max, size_t *count,
                  size_t *last)
{
    size_t c = 0, len;
    *last = i;
    while (i < n && c < max) {
        uint32_t cp = tr_utf8_at(s, n, i, &len);
        if (cp_class(cp) != cls)
            break;
        *last = i;
        i += len;
        c++;
    }
    *count = c;
    return i;
}

static size_t contraction(const char *s, size_t n, size_t i, int fold)
{
    static const char *const tails[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    if (s[i] != '\'')
        return 0;
    for (size_t k = 0; k < sizeof tails / sizeof *tails; k++) {
        size_t m = strlen(tails[k]);
        if (i + 1 + m > n)
            continue;
        size_t j = 0;
        for (; j < m; j++) {
            char c = s[i + 1 + j];
            if (fold && c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            if (c != tails[k][j])
                break;
        }
        if (j == m)
            return i + 1 + m;
    }
    return 0;
}

/* \s+(?!\S)|\s+ from i (a white-space code point): the run, less its last code point when
 * something other than white space follows and the run has more than one. */
static size_t space_run(const char *s, size_t n, size_t i)
{
    size_t count, last, end = run(s, n, i, C_WS, SIZE_MAX, &count, &last);
    return (end == n || count == 1) ? end : last;
}

static size_t pre_gpt2(const char *s, size_t n, size_t i)
{
    size_t len, len2, count, last, end = contraction(s, n, i, 0);
    if (end)
        return end;
    uint32_t cp = tr_utf8_at(s, n, i, &len);
    int cls = cp_class(cp);
    if (cp == ' ' && i + 1 < n) {
        int next = cp_class(tr_utf8_at(s, n, i + 1, &len2));
        if (next != C_WS)
            return run(s, n, i + 1, next, SIZE_MAX, &count, &last);
    }
    if (cls != C_WS)
        return run(s, n, i, cls, SIZE_MAX, &count, &last);
    return space_run(s, n, i);
}

static int is_crlf(uint32_t cp)
{
    return cp == '\r' || cp == '\n';
}

/* Llama 3 (max_digits 3) and Qwen2 (1): (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
 * \p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t pre_llama3(const char *s, size_t n, size_t i, size_t max_digits)
{
    size_t len, len2, count, last, end = contraction(s, n, i, 1);
    if (end)
        return end;
    uint32_t cp = tr_utf8_at(s, n, i, &len);
    int cls = cp_class(cp);
    int next = i + len < n ? cp_class(tr_utf8_at(s, n, i + len, &len2)) : -1;
    if (cls == C_L)
        return run(s, n, i, C_L, SIZE_MAX, &count, &last);
    if (cls != C_N && !is_crlf(cp) && next == C_L)
        return run(s, n, i + len, C_L, SIZE_MAX, &count, &last);
    if (cls == C_N)
        return run(s, n, i, C_N, max_digits, &count, &last);
    size_t start = (cp == ' ' && next == C_OTHER) ? i + 1 : i;
    if (start > i || cls == C_OTHER) {
        end = run(s, n, start, C_OTHER, SIZE_MAX, &count, &last);
        while (end < n && (s[end] == '\r' || s[end] == '\n'))
            end++;
        return end;
    }
    /* White space: \s*[\r\n]+ ends after the run's last CR or LF, if it has one. */
    size_t nl = 0;
    for (size_t j = i; j < n;) {
        uint32_t c = tr_utf8_at(s, n, j, &len);
        if (cp_class(c) != C_WS)
            break;
        j += len;
        if (is_crlf(c))
            nl = j;
    }
    return nl ? nl : space_run(s, n, i);
}

size_t tr_tok_pre_next(tr_pre_kind kind, const char *s, size_t n, size_t i)
{
    switch (kind) {
    case TR_PRE_GPT2:
        return pre_gpt2(s, n, i);
    case TR_PRE_LLAMA3:
        return pre_llama3(s, n, i, 3);
    case TR_PRE_QWEN2:
        return pre_llama3(s, n, i, 1);
    case TR_PRE_NONE:
    case TR_PRE_METASPACE:
    case TR_PRE_SPLIT_LIT:
        break; /* SentencePiece style: tr_sp_word_next */
    }
    return n;
}
