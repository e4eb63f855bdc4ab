/* tr_jinja_parse.c - chat templates: preprocessing as transformers/@huggingface/jinja do it
 * (trailing newline, lstrip_blocks, trim_blocks), the lexer and the parser into a tree. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_jinja_internal.h"

void *tj_alloc(tj_arena *a, size_t n)
{
    if (n > TJ_BUDGET || a->used > TJ_BUDGET - n)
        return NULL;
    tj_block *b = malloc(sizeof(*b) + n);
    if (!b)
        return NULL;
    b->next = a->head;
    a->head = b;
    a->used += n + sizeof(*b);
    memset(b->data, 0, n);
    return b->data;
}

void tj_arena_free(tj_arena *a)
{
    while (a->head) {
        tj_block *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    a->used = 0;
}

/* Unicode White_Space as JavaScript's \s and trim() know it (Python's str.strip agrees on
 * these plus U+001C..U+001F, which no template here meets). */
int tj_space_cp(unsigned cp)
{
    return cp == ' ' || (cp >= 9 && cp <= 13) || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

/* The code point at s[i] (i < n) and its length; invalid bytes are one code point each. */
unsigned tj_utf8(const char *s, size_t n, size_t i, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s + i;
    size_t rest = n - i;
    if (u[0] < 0x80 || rest < 2) {
        *len = 1;
        return u[0];
    }
    if ((u[0] & 0xe0) == 0xc0 && (u[1] & 0xc0) == 0x80) {
        *len = 2;
        return ((u[0] & 0x1fu) << 6) | (u[1] & 0x3fu);
    }
    if ((u[0] & 0xf0) == 0xe0 && rest >= 3 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80) {
        *len = 3;
        return ((u[0] & 0x0fu) << 12) | ((u[1] & 0x3fu) << 6) | (u[2] & 0x3fu);
    }
    if ((u[0] & 0xf8) == 0xf0 && rest >= 4 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80 &&
        (u[3] & 0xc0) == 0x80) {
        *len = 4;
        return ((u[0] & 0x07u) << 18) | ((u[1] & 0x3fu) << 12) | ((u[2] & 0x3fu) << 6) |
               (u[3] & 0x3fu);
    }
    *len = 1;
    return u[0];
}

/* Length of s[0..n) without trailing white space. */
size_t tj_rtrim_len(const char *s, size_t n)
{
    size_t end = n;
    while (end > 0) {
        size_t k = end - 1, l;
        while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80 && end - k < 4)
            k--;
        unsigned cp = tj_utf8(s, end, k, &l);
        if (k + l != end || !tj_space_cp(cp))
            break;
        end = k;
    }
    return end;
}

size_t tj_ltrim_off(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t l;
        if (!tj_space_cp(tj_utf8(s, n, i, &l)))
            break;
        i += l;
    }
    return i;
}

/* ---- preprocessing: the text the lexer reads, with a map back to the source ---- */

typedef struct {
    char *s;
    size_t *pos; /* pos[i]: offset in the source of s[i] */
    size_t n;
} tj_pre;

static int is_tag_start(const char *s, size_t n, size_t i)
{
    return i + 1 < n && s[i] == '{' && (s[i + 1] == '#' || s[i + 1] == '%' || s[i + 1] == '-');
}

/* lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1"; trim_blocks: /([#%-]})\n/g -> "$1". */
static int preprocess(tj_pre *p, const char *src, size_t n)
{
    if (n > 0 && src[n - 1] == '\n')
        n--;
    char *a = malloc(n + 1);
    size_t *apos = malloc((n + 1) * sizeof(size_t));
    p->s = malloc(n + 1);
    p->pos = malloc((n + 1) * sizeof(size_t));
    if (!a || !apos || !p->s || !p->pos) {
        free(a);
        free(apos);
        return MU_ERR_NOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (i == 0 || src[i - 1] == '\n') {
            size_t j = i;
            while (j < n && (src[j] == ' ' || src[j] == '\t'))
                j++;
            if (is_tag_start(src, n, j))
                i = j;
        }
        a[m] = src[i];
        apos[m++] = i++;
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        p->s[k] = a[i];
        p->pos[k++] = apos[i];
        if (i + 2 < m && a[i + 2] == '\n' && a[i + 1] == '}' &&
            (a[i] == '#' || a[i] == '%' || a[i] == '-')) {
            p->s[k] = a[i + 1];
            p->pos[k++] = apos[i + 1];
            i += 2;
        }
    }
    p->s[k] = 0;
    p->pos[k] = k ? p->pos[k - 1] + 1 : 0;
    p->n = k;
    free(a);
    free(apos);
    return 0;
}

/* ---- lexer ---- */

enum { K_TEXT, K_OSTMT, K_CSTMT, K_OEXPR, K_CEXPR, K_NAME, K_STR, K_INT, K_OP, K_EOF };

typedef struct {
    int kind;
    const char *s; /* text, name, string value, operator */
    size_t n;
    long i;
    size_t at; /* offset in the preprocessed text */
} tj_tok;

typedef struct {
    const char *src; /* the original source, for line:col */
    tj_pre pre;
    tj_tok *toks;
    size_t ntoks, cap, cur;
    tj_arena *arena;
    mu_diag *diag;
    int depth;
} tj_parser;

void tj_where(const char *src, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)src[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int perr(tj_parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(tj_parser *p, size_t at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    tj_where(p->src, at <= p->pre.n ? p->pre.pos[at] : 0, &line, &col);
    return mu_diag_set(p->diag, MU_ERR_FORMAT, "chat template line %d:%d: %s", line, col, msg);
}

static int push(tj_parser *p, int kind, const char *s, size_t n, size_t at)
{
    if (p->ntoks == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 256;
        tj_tok *t = realloc(p->toks, nc * sizeof(*t));
        if (!t)
            return MU_ERR_NOMEM;
        p->toks = t;
        p->cap = nc;
    }
    p->toks[p->ntoks++] = (tj_tok){kind, s, n, 0, at};
    return 0;
}

static void strip_last_text(tj_parser *p)
{
    if (p->ntoks && p->toks[p->ntoks - 1].kind == K_TEXT) {
        tj_tok *t = &p->toks[p->ntoks - 1];
        t->n = tj_rtrim_len(t->s, t->n);
        if (t->n == 0)
            p->ntoks--;
    }
}

static int is_ident(char c, int first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

static int lex_string(tj_parser *p, size_t *ip)
{
    const char *s = p->pre.s;
    size_t n = p->pre.n, i = *ip, start = i;
    char q = s[i++];
    char *out = tj_alloc(p->arena, n - i + 1);
    if (!out)
        return MU_ERR_NOMEM;
    size_t k = 0;
    for (;;) {
        if (i >= n)
            return perr(p, start, "unterminated string");
        char c = s[i];
        if (c == q)
            break;
        if (c != '\\') {
            out[k++] = c;
            i++;
            continue;
        }
        if (i + 1 >= n)
            return perr(p, start, "unterminated string");
        char e = s[i + 1];
        const char *map = "n\nt\tr\rb\bf\fv\v''\"\"\\\\";
        const char *m = NULL;
        for (const char *x = map; *x; x += 2)
            if (*x == e)
                m = x;
        if (!m)
            return perr(p, i, "unsupported escape \\%c in a string", e);
        out[k++] = m[1];
        i += 2;
    }
    *ip = i + 1;
    return push(p, K_STR, out, k, start);
}

static const char *const OPS[] = {"==", "!=", "<=", ">=", "//", "**", "+", "-", "*",
                                  "/",  "%",  "~",  "<",  ">",  "(",  ")", "[", "]",
                                  "{",  "}",  ",",  ":",  ".",  "|",  "=", NULL};

/* Tokens of one {% %} or {{ }} from s[*ip]; stops after the closing tag. */
static int lex_tag(tj_parser *p, size_t *ip, int stmt)
{
    const char *s = p->pre.s;
    size_t n = p->pre.n, i = *ip;
    int braces = 0, rc;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i >= n)
            return perr(p, *ip, "tag not closed");
        char c = s[i];
        if (braces == 0 && c == '-' && i + 2 < n && s[i + 2] == '}' &&
            s[i + 1] == (stmt ? '%' : '}')) {
            if ((rc = push(p, stmt ? K_CSTMT : K_CEXPR, s + i, 3, i)))
                return rc;
            i += 3;
            i += tj_ltrim_off(s + i, n - i);
            break;
        }
        if (braces == 0 && i + 1 < n && c == (stmt ? '%' : '}') && s[i + 1] == '}') {
            if ((rc = push(p, stmt ? K_CSTMT : K_CEXPR, s + i, 2, i)))
                return rc;
            i += 2;
            break;
        }
        if (c == '\'' || c == '"') {
            if ((rc = lex_string(p, &i)))
                return rc;
            continue;
        }
        if (c >= '0' && c <= '9') {
            long v = 0;
            size_t st = i;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                if (v > 100000000000L)
                    return perr(p, st, "integer too large");
                v = v * 10 + (s[i++] - '0');
            }
            if (i < n && s[i] == '.')
                return perr(p, st, "floating-point numbers are not supported");
            if ((rc = push(p, K_INT, s + st, i - st, st)))
                return rc;
            p->toks[p->ntoks - 1].i = v;
            continue;
        }
        if (is_ident(c, 1)) {
            size_t st = i;
            while (i < n && is_ident(s[i], 0))
                i++;
            if ((rc = push(p, K_NAME, s + st, i - st, st)))
                return rc;
            continue;
        }
        size_t k = 0;
        for (; OPS[k]; k++)
            if (strncmp(s + i, OPS[k], strlen(OPS[k])) == 0)
                break;
        if (!OPS[k])
            return perr(p, i, "unexpected character '%c'", c);
        if (c == '{')
            braces++;
        if (c == '}')
            braces--;
        if (braces < 0)
            return perr(p, i, "unbalanced '}'");
        if ((rc = push(p, K_OP, OPS[k], strlen(OPS[k]), i)))
            return rc;
        i += strlen(OPS[k]);
    }
    *ip = i;
    return 0;
}

static int lex(tj_parser *p)
{
    const char *s = p->pre.s;
    size_t n = p->pre.n, i = 0;
    int rc;
    while (i < n) {
        size_t j = i;
        while (j < n && !(s[j] == '{' && j + 1 < n &&
                          (s[j + 1] == '%' || s[j + 1] == '{' || s[j + 1] == '#')))
            j++;
        if (j > i && (rc = push(p, K_TEXT, s + i, j - i, i)))
            return rc;
        if (j >= n)
            break;
        i = j;
        int strip = i + 2 < n && s[i + 2] == '-';
        if (s[i + 1] == '#') {
            const char *end = strstr(s + i + 2, "#}");
            if (!end)
                return perr(p, i, "comment not closed");
            size_t e = (size_t)(end - s);
            int strip_after = e > i + 2 + (size_t)strip && s[e - 1] == '-';
            if (strip)
                strip_last_text(p);
            i = e + 2;
            if (strip_after)
                i += tj_ltrim_off(s + i, n - i);
            continue;
        }
        int stmt = s[i + 1] == '%';
        if (strip)
            strip_last_text(p);
        if ((rc = push(p, stmt ? K_OSTMT : K_OEXPR, s + i, 2, i)))
            return rc;
        i += 2 + (size_t)strip;
        if ((rc = lex_tag(p, &i, stmt)))
            return rc;
    }
    return push(p, K_EOF, s + n, 0, n);
}

/* ---- parser ---- */

static tj_tok *peek(tj_parser *p)
{
    return &p->toks[p->cur];
}
static tj_tok *peek2(tj_parser *p)
{
    return p->cur + 1 < p->ntoks ? &p->toks[p->cur + 1] : &p->toks[p->ntoks - 1];
}

static int is_op(const tj_tok *t, const char *op)
{
    return t->kind == K_OP && t->n == strlen(op) && memcmp(t->s, op, t->n) == 0;
}

static int is_name(const tj_tok *t, const char *name)
{
    return t->kind == K_NAME && t->n == strlen(name) && memcmp(t->s, name, t->n) == 0;
}

static int expect_op(tj_parser *p, const char *op)
{
    if (!is_op(peek(p), op))
        return perr(p, peek(p)->at, "expected '%s'", op);
    p->cur++;
    return 0;
}

static tj_node *mk(tj_parser *p, int kind, size_t at)
{
    tj_node *nd = tj_alloc(p->arena, sizeof(*nd));
    if (nd) {
        nd->kind = kind;
        nd->at = p->pre.pos[at <= p->pre.n ? at : p->pre.n];
    }
    return nd;
}

static int add_kid(tj_parser *p, tj_node ***kids, size_t *n, tj_node *k)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        size_t cap = *n ? 2 * *n : 1;
        tj_node **nk = tj_alloc(p->arena, cap * sizeof(*nk));
        if (!nk)
            return MU_ERR_NOMEM;
        if (*n)
            memcpy(nk, *kids, *n * sizeof(*nk));
        *kids = nk;
    }
    (*kids)[(*n)++] = k;
    return 0;
}

static int parse_expr(tj_parser *p, tj_node **out);

#define NOMEM(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            return MU_ERR_NOMEM;                                                                   \
    } while (0)

static int parse_args(tj_parser *p, tj_node *call)
{
    int rc;
    p->cur++; /* ( */
    while (!is_op(peek(p), ")")) {
        const char *kw = NULL;
        size_t kwn = 0;
        if (peek(p)->kind == K_NAME && is_op(peek2(p), "=")) {
            kw = peek(p)->s;
            kwn = peek(p)->n;
            p->cur += 2;
        } else if (call->nnames) {
            return perr(p, peek(p)->at, "positional argument after a keyword argument");
        }
        tj_node *a = NULL;
        if ((rc = parse_expr(p, &a)))
            return rc;
        if (kw) {
            a->name = kw;
            a->name_len = kwn;
            call->nnames++;
        }
        if ((rc = add_kid(p, &call->kids, &call->nkids, a)))
            return rc;
        if (!is_op(peek(p), ","))
            break;
        p->cur++;
    }
    return expect_op(p, ")");
}

static int parse_primary(tj_parser *p, tj_node **out)
{
    tj_tok *t = peek(p);
    int rc;
    tj_node *nd;
    if (t->kind == K_STR) {
        NOMEM(nd = mk(p, E_STR, t->at));
        nd->s = t->s;
        nd->n = t->n;
        p->cur++;
        while (peek(p)->kind == K_STR) { /* adjacent literals concatenate */
            tj_tok *u = peek(p);
            char *s = tj_alloc(p->arena, nd->n + u->n + 1);
            NOMEM(s);
            memcpy(s, nd->s, nd->n);
            memcpy(s + nd->n, u->s, u->n);
            nd->s = s;
            nd->n += u->n;
            p->cur++;
        }
    } else if (t->kind == K_INT) {
        NOMEM(nd = mk(p, E_INT, t->at));
        nd->i = t->i;
        p->cur++;
    } else if (t->kind == K_NAME) {
        p->cur++;
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") ||
            is_name(t, "False")) {
            NOMEM(nd = mk(p, E_BOOL, t->at));
            nd->i = t->s[0] == 't' || t->s[0] == 'T';
        } else if (is_name(t, "none") || is_name(t, "None")) {
            NOMEM(nd = mk(p, E_NONE, t->at));
        } else {
            NOMEM(nd = mk(p, E_NAME, t->at));
            nd->s = t->s;
            nd->n = t->n;
        }
    } else if (is_op(t, "(")) {
        p->cur++;
        if ((rc = parse_expr(p, &nd)) || (rc = expect_op(p, ")")))
            return rc;
    } else if (is_op(t, "[")) {
        NOMEM(nd = mk(p, E_LIST, t->at));
        p->cur++;
        while (!is_op(peek(p), "]")) {
            tj_node *a;
            if ((rc = parse_expr(p, &a)) || (rc = add_kid(p, &nd->kids, &nd->nkids, a)))
                return rc;
            if (!is_op(peek(p), ","))
                break;
            p->cur++;
        }
        if ((rc = expect_op(p, "]")))
            return rc;
    } else if (is_op(t, "{")) {
        NOMEM(nd = mk(p, E_DICT, t->at));
        p->cur++;
        while (!is_op(peek(p), "}")) {
            tj_node *k, *v;
            if ((rc = parse_expr(p, &k)) || (rc = expect_op(p, ":")) || (rc = parse_expr(p, &v)) ||
                (rc = add_kid(p, &nd->kids, &nd->nkids, k)) ||
                (rc = add_kid(p, &nd->kids, &nd->nkids, v)))
                return rc;
            if (!is_op(peek(p), ","))
                break;
            p->cur++;
        }
        if ((rc = expect_op(p, "}")))
            return rc;
    } else {
        return perr(p, t->at, "expected an expression");
    }
    *out = nd;
    return 0;
}

static int parse_slice_part(tj_parser *p, tj_node **out)
{
    *out = NULL;
    if (is_op(peek(p), ":") || is_op(peek(p), "]"))
        return 0;
    return parse_expr(p, out);
}

static int parse_postfix(tj_parser *p, tj_node **out)
{
    int rc;
    tj_node *nd = NULL;
    if ((rc = parse_primary(p, &nd)))
        return rc;
    for (;;) {
        tj_tok *t = peek(p);
        if (is_op(t, ".")) {
            p->cur++;
            tj_tok *name = peek(p);
            if (name->kind != K_NAME)
                return perr(p, name->at, "expected a name after '.'");
            p->cur++;
            tj_node *a;
            NOMEM(a = mk(p, E_ATTR, name->at));
            a->a = nd;
            a->s = name->s;
            a->n = name->n;
            nd = a;
        } else if (is_op(t, "[")) {
            p->cur++;
            tj_node *a, *x = NULL, *y = NULL, *z = NULL;
            if ((rc = parse_slice_part(p, &x)))
                return rc;
            if (is_op(peek(p), ":")) {
                p->cur++;
                if ((rc = parse_slice_part(p, &y)))
                    return rc;
                if (is_op(peek(p), ":")) {
                    p->cur++;
                    if ((rc = parse_slice_part(p, &z)))
                        return rc;
                }
                NOMEM(a = mk(p, E_SLICE, t->at));
                a->b = x;
                a->c = y;
                a->d = z;
            } else {
                if (!x)
                    return perr(p, peek(p)->at, "expected an index");
                NOMEM(a = mk(p, E_INDEX, t->at));
                a->b = x;
            }
            if ((rc = expect_op(p, "]")))
                return rc;
            a->a = nd;
            nd = a;
        } else if (is_op(t, "(")) {
            tj_node *a;
            NOMEM(a = mk(p, E_CALL, t->at));
            a->a = nd;
            if ((rc = parse_args(p, a)))
                return rc;
            nd = a;
        } else {
            break;
        }
    }
    *out = nd;
    return 0;
}

static const char *const FILTERS[] = {"trim",   "length", "count", "upper", "lower",
                                      "tojson", "string", "first", "last",  NULL};
static const char *const TESTS[] = {"defined", "undefined", "none",     "string",  "number",
                                    "integer", "boolean",   "iterable", "mapping", "sequence",
                                    "true",    "false",     "odd",      "even",    NULL};

static int known(const char *const *list, const tj_tok *t)
{
    for (size_t i = 0; list[i]; i++)
        if (is_name(t, list[i]))
            return 1;
    return 0;
}

/* unary minus, then postfix, then | filters and is tests (Jinja's parse_unary). */
static int parse_unary(tj_parser *p, tj_node **out)
{
    int rc;
    tj_node *nd = NULL;
    tj_tok *t = peek(p);
    if (is_op(t, "-") || is_op(t, "+")) {
        p->cur++;
        tj_node *a;
        if ((rc = parse_unary(p, &a)))
            return rc;
        NOMEM(nd = mk(p, E_NEG, t->at));
        nd->a = a;
        nd->i = t->s[0] == '-';
        *out = nd;
        return 0;
    }
    if ((rc = parse_postfix(p, &nd)))
        return rc;
    for (;;) {
        t = peek(p);
        if (is_op(t, "|")) {
            p->cur++;
            tj_tok *name = peek(p);
            if (name->kind != K_NAME)
                return perr(p, name->at, "expected a filter name");
            if (!known(FILTERS, name))
                return perr(p, name->at, "unsupported filter '%.*s'", (int)name->n, name->s);
            p->cur++;
            tj_node *f;
            NOMEM(f = mk(p, E_FILTER, name->at));
            f->s = name->s;
            f->n = name->n;
            if (is_op(peek(p), "(") && (rc = parse_args(p, f)))
                return rc;
            f->a = nd;
            nd = f;
        } else if (is_name(t, "is")) {
            p->cur++;
            int neg = 0;
            if (is_name(peek(p), "not")) {
                neg = 1;
                p->cur++;
            }
            tj_tok *name = peek(p);
            if (name->kind != K_NAME)
                return perr(p, name->at, "expected a test name");
            if (!known(TESTS, name))
                return perr(p, name->at, "unsupported test '%.*s'", (int)name->n, name->s);
            p->cur++;
            tj_node *f;
            NOMEM(f = mk(p, E_TEST, name->at));
            f->s = name->s;
            f->n = name->n;
            f->i = neg;
            f->a = nd;
            nd = f;
        } else {
            break;
        }
    }
    *out = nd;
    return 0;
}

static int bin(tj_parser *p, tj_node **nd, int op, size_t at, tj_node *b)
{
    tj_node *x = mk(p, E_BIN, at);
    NOMEM(x);
    x->i = op;
    x->a = *nd;
    x->b = b;
    *nd = x;
    return 0;
}

typedef int (*tj_level)(tj_parser *, tj_node **);

/* One left-associative level of binary operators. */
static int parse_level(tj_parser *p, tj_node **out, tj_level next, const char *const *ops,
                       const int *codes)
{
    int rc;
    if ((rc = next(p, out)))
        return rc;
    for (;;) {
        tj_tok *t = peek(p);
        size_t k = 0;
        for (; ops[k]; k++)
            if (is_op(t, ops[k]))
                break;
        if (!ops[k])
            return 0;
        p->cur++;
        tj_node *b;
        if ((rc = next(p, &b)) || (rc = bin(p, out, codes[k], t->at, b)))
            return rc;
    }
}

static int parse_pow(tj_parser *p, tj_node **out)
{
    static const char *const o[] = {"**", NULL};
    static const int c[] = {B_POW};
    return parse_level(p, out, parse_unary, o, c);
}
static int parse_mul(tj_parser *p, tj_node **out)
{
    static const char *const o[] = {"*", "//", "/", "%", NULL};
    static const int c[] = {B_MUL, B_FDIV, B_DIV, B_MOD};
    return parse_level(p, out, parse_pow, o, c);
}
static int parse_add(tj_parser *p, tj_node **out)
{
    static const char *const o[] = {"+", "-", NULL};
    static const int c[] = {B_ADD, B_SUB};
    return parse_level(p, out, parse_mul, o, c);
}
static int parse_concat(tj_parser *p, tj_node **out)
{
    static const char *const o[] = {"~", NULL};
    static const int c[] = {B_CAT};
    return parse_level(p, out, parse_add, o, c);
}

static int parse_compare(tj_parser *p, tj_node **out)
{
    static const char *const o[] = {"==", "!=", "<=", ">=", "<", ">", NULL};
    static const int c[] = {B_EQ, B_NE, B_LE, B_GE, B_LT, B_GT};
    int rc;
    if ((rc = parse_concat(p, out)))
        return rc;
    for (;;) {
        tj_tok *t = peek(p);
        int code = -1;
        for (size_t k = 0; o[k]; k++)
            if (is_op(t, o[k]))
                code = c[k];
        if (code < 0 && is_name(t, "in"))
            code = B_IN;
        if (code < 0 && is_name(t, "not") && is_name(peek2(p), "in")) {
            code = B_NOTIN;
            p->cur++;
        }
        if (code < 0)
            return 0;
        p->cur++;
        tj_node *b;
        if ((rc = parse_concat(p, &b)) || (rc = bin(p, out, code, t->at, b)))
            return rc;
    }
}

static int parse_not(tj_parser *p, tj_node **out)
{
    tj_tok *t = peek(p);
    if (is_name(t, "not")) {
        p->cur++;
        int rc;
        tj_node *a, *nd;
        if ((rc = parse_not(p, &a)))
            return rc;
        NOMEM(nd = mk(p, E_NOT, t->at));
        nd->a = a;
        *out = nd;
        return 0;
    }
    return parse_compare(p, out);
}

static int parse_logic(tj_parser *p, tj_node **out, int and)
{
    int rc;
    if ((rc = and? parse_not(p, out) : parse_logic(p, out, 1)))
        return rc;
    while (is_name(peek(p), and? "and" : "or")) {
        size_t at = peek(p)->at;
        p->cur++;
        tj_node *b;
        if ((rc = and? parse_not(p, &b) : parse_logic(p, &b, 1)) ||
            (rc = bin(p, out, and? B_AND : B_OR, at, b)))
            return rc;
    }
    return 0;
}

static int parse_expr(tj_parser *p, tj_node **out)
{
    int rc;
    if (++p->depth > TJ_MAX_DEPTH) {
        rc = perr(p, peek(p)->at, "expression nested too deeply");
        goto out;
    }
    if ((rc = parse_logic(p, out, 0)))
        goto out;
    if (is_name(peek(p), "if")) {
        tj_node *c;
        NOMEM(c = mk(p, E_COND, peek(p)->at));
        p->cur++;
        c->a = *out;
        if ((rc = parse_logic(p, &c->b, 0)))
            goto out;
        if (is_name(peek(p), "else")) {
            p->cur++;
            if ((rc = parse_expr(p, &c->c)))
                goto out;
        }
        *out = c;
    }
out:
    p->depth--;
    return rc;
}

/* ---- statements ---- */

static int parse_body(tj_parser *p, tj_node *parent, int *ended, const char *const *stops);

static int close_stmt(tj_parser *p)
{
    if (peek(p)->kind != K_CSTMT)
        return perr(p, peek(p)->at, "expected '%%}'");
    p->cur++;
    return 0;
}

static int parse_if(tj_parser *p, tj_node **out, size_t at)
{
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    int rc, which;
    tj_node *nd;
    NOMEM(nd = mk(p, S_IF, at));
    if ((rc = parse_expr(p, &nd->a)) || (rc = close_stmt(p)) ||
        (rc = parse_body(p, nd, &which, stops)))
        return rc;
    *out = nd;
    if (which == 0) { /* elif: an if in the else branch */
        tj_node *e;
        if ((rc = parse_if(p, &e, peek(p)->at)))
            return rc;
        nd->else_ = e;
        return 0;
    }
    if (which == 1) {
        tj_node *e;
        NOMEM(e = mk(p, S_BLOCK, peek(p)->at));
        static const char *const end[] = {"endif", NULL};
        if ((rc = close_stmt(p)) || (rc = parse_body(p, e, &which, end)))
            return rc;
        nd->else_ = e;
    }
    return close_stmt(p);
}

static int parse_stmt(tj_parser *p, tj_node **out)
{
    tj_tok *t = peek(p);
    int rc, which;
    if (t->kind != K_NAME)
        return perr(p, t->at, "expected a tag name");
    p->cur++;
    if (is_name(t, "if"))
        return parse_if(p, out, t->at);
    if (is_name(t, "for")) {
        tj_node *nd;
        NOMEM(nd = mk(p, S_FOR, t->at));
        tj_tok *v = peek(p);
        if (v->kind != K_NAME)
            return perr(p, v->at, "expected a loop variable");
        nd->s = v->s;
        nd->n = v->n;
        p->cur++;
        if (is_op(peek(p), ","))
            return perr(p, peek(p)->at, "unpacking loop variables is not supported");
        if (!is_name(peek(p), "in"))
            return perr(p, peek(p)->at, "expected 'in'");
        p->cur++;
        static const char *const stops[] = {"endfor", NULL};
        if ((rc = parse_logic(p, &nd->a, 0)))
            return rc;
        if (is_name(peek(p), "if") || is_name(peek(p), "recursive"))
            return perr(p, peek(p)->at, "loop filters and recursive loops are not supported");
        if ((rc = close_stmt(p)) || (rc = parse_body(p, nd, &which, stops)) || (rc = close_stmt(p)))
            return rc;
        *out = nd;
        return 0;
    }
    if (is_name(t, "set")) {
        tj_node *nd;
        NOMEM(nd = mk(p, S_SET, t->at));
        tj_tok *v = peek(p);
        if (v->kind != K_NAME)
            return perr(p, v->at, "expected a variable name");
        nd->s = v->s;
        nd->n = v->n;
        p->cur++;
        if (is_op(peek(p), ".")) {
            p->cur++;
            tj_tok *attr = peek(p);
            if (attr->kind != K_NAME)
                return perr(p, attr->at, "expected an attribute name");
            nd->name = attr->s;
            nd->name_len = attr->n;
            p->cur++;
        }
        if (!is_op(peek(p), "="))
            return perr(p, peek(p)->at, "expected '=' (block set is not supported)");
        p->cur++;
        if ((rc = parse_expr(p, &nd->a)) || (rc = close_stmt(p)))
            return rc;
        *out = nd;
        return 0;
    }
    if (is_name(t, "generation") || is_name(t, "endgeneration")) {
        NOMEM(*out = mk(p, S_BLOCK, t->at));
        return close_stmt(p);
    }
    return perr(p, t->at, "unsupported tag '%.*s'", (int)t->n, t->s);
}

/* Parses nodes into parent->kids until EOF (stops NULL) or a tag named in stops, whose
 * index goes to *ended (the tag name consumed, its %} not). */
static int parse_body(tj_parser *p, tj_node *parent, int *ended, const char *const *stops)
{
    int rc;
    if (++p->depth > TJ_MAX_DEPTH) {
        rc = perr(p, peek(p)->at, "blocks nested too deeply");
        goto out;
    }
    for (;;) {
        tj_tok *t = peek(p);
        tj_node *nd = NULL;
        if (t->kind == K_EOF) {
            size_t last = 0;
            while (stops && stops[last + 1])
                last++;
            rc = stops ? perr(p, t->at, "missing {%% %s %%}", stops[last]) : 0;
            goto out;
        }
        if (t->kind == K_TEXT) {
            rc = (nd = mk(p, S_TEXT, t->at)) ? 0 : MU_ERR_NOMEM;
            if (nd) {
                nd->s = t->s;
                nd->n = t->n;
            }
            p->cur++;
        } else if (t->kind == K_OEXPR) {
            p->cur++;
            rc = (nd = mk(p, S_OUT, t->at)) ? parse_expr(p, &nd->a) : MU_ERR_NOMEM;
            if (!rc && peek(p)->kind != K_CEXPR)
                rc = perr(p, peek(p)->at, "expected '}}'");
            p->cur++;
        } else if (t->kind == K_OSTMT) {
            p->cur++;
            tj_tok *name = peek(p);
            for (size_t k = 0; stops && stops[k]; k++) {
                if (is_name(name, stops[k])) {
                    p->cur++;
                    *ended = (int)k;
                    rc = 0;
                    goto out;
                }
            }
            rc = parse_stmt(p, &nd);
        } else {
            rc = perr(p, t->at, "unexpected '%.*s'", (int)t->n, t->s);
        }
        if (rc || (rc = add_kid(p, &parent->kids, &parent->nkids, nd)))
            goto out;
    }
out:
    p->depth--;
    return rc;
}

tr_jinja *tr_jinja_parse(const char *src, size_t len, int *err, mu_diag *diag)
{
    int rc = MU_ERR_NOMEM;
    tr_jinja *t = calloc(1, sizeof(*t));
    tj_parser p = {0};
    if (!t)
        goto fail;
    if (len > TJ_MAX_SRC) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "chat template longer than %d bytes", TJ_MAX_SRC);
        goto fail;
    }
    t->src = malloc(len + 1);
    if (!t->src)
        goto fail;
    memcpy(t->src, src, len);
    t->src[len] = 0;
    t->src_len = len;
    p.src = t->src;
    p.arena = &t->arena;
    p.diag = diag;
    if ((rc = preprocess(&p.pre, t->src, len)))
        goto fail;
    if (memchr(p.pre.s, 0, p.pre.n)) {
        rc = perr(&p, (size_t)((const char *)memchr(p.pre.s, 0, p.pre.n) - p.pre.s),
                  "NUL byte in the template");
        goto fail;
    }
    if ((rc = lex(&p)))
        goto fail;
    t->root = mk(&p, S_BLOCK, 0);
    if (!t->root) {
        rc = MU_ERR_NOMEM;
        goto fail;
    }
    if ((rc = parse_body(&p, t->root, NULL, NULL)))
        goto fail;
    /* The tree points into the preprocessed text: keep it. */
    t->pre = p.pre.s;
    free(p.pre.pos);
    free(p.toks);
    return t;
fail:
    if (rc == MU_ERR_NOMEM)
        mu_diag_set(diag, MU_ERR_NOMEM, "chat template: out of memory");
    free(p.pre.s);
    free(p.pre.pos);
    free(p.toks);
    tr_jinja_free(t);
    if (err)
        *err = rc;
    return NULL;
}

void tr_jinja_free(tr_jinja *t)
{
    if (!t)
        return;
    tj_arena_free(&t->arena);
    free(t->pre);
    free(t->src);
    free(t);
}
