/* wi_json.c - growable string, JSON string escaping and numbers. */
#include "wi_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_grow.h"

void wi_str_init(wi_str *b)
{
    memset(b, 0, sizeof *b);
}

void wi_str_deinit(wi_str *b)
{
    if (!b)
        return;
    free(b->s);
    memset(b, 0, sizeof *b);
}

void wi_str_clear(wi_str *b)
{
    b->len = 0;
    b->err = MU_OK;
    if (b->s)
        b->s[0] = 0;
}

int wi_str_ok(const wi_str *b)
{
    return b->err;
}

/* Room for n more bytes and the NUL; doubling, so appends are amortised O(1). */
static int reserve(wi_str *b, size_t n)
{
    if (b->err)
        return b->err;
    if (n > SIZE_MAX / 2 - b->len)
        return b->err = MU_ERR_NOMEM;
    if (MU_GROW(&b->s, &b->cap, b->len + n + 1, 128) != MU_OK)
        return b->err = MU_ERR_NOMEM;
    return MU_OK;
}

static int append(wi_str *b, const char *p, size_t n)
{
    if (reserve(b, n))
        return b->err;
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return MU_OK;
}

int wi_str_printf(wi_str *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return b->err ? b->err : (b->err = MU_ERR_INVALID);
    if (reserve(b, (size_t)n))
        return b->err;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MU_OK;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0 || c > 0xf4 || c == 0xc0 || c == 0xc1)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

int wi_str_json_string(wi_str *b, const char *s)
{
    if (!s)
        return append(b, "null", 4);
    append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p++};
            append(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            wi_str_printf(b, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            append(b, (const char *)p++, 1);
        } else {
            size_t n = utf8_len(p);
            if (n) {
                append(b, (const char *)p, n);
                p += n;
            } else {
                append(b, "\\ufffd", 6);
                p++;
            }
        }
    }
    return append(b, "\"", 1);
}

int wi_str_json_number(wi_str *b, double v)
{
    if (!isfinite(v))
        return append(b, "null", 4);
    return wi_str_printf(b, "%.9g", v);
}
