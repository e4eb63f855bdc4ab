/* tr_jinja.c - rendering a parsed chat template (tr_jinja_parse.c) with the variables
 * transformers' apply_chat_template passes. Values live in a per-render arena. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_jinja_internal.h"

#define TJ_MAX_STEPS 20000000l /* nodes evaluated in one render */

enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_STR, V_LIST, V_DICT };

typedef struct tj_val tj_val;
struct tj_val {
    int t;
    int ns; /* a namespace(): the one mutable dict */
    long i;
    const char *s;
    size_t n;
    const unsigned char *tm; /* a string's taint: tm[i] 1 where byte i came from a message
                              * (tr_jinja_render_chat_mask); NULL: none did */
    tj_val **items;          /* list items, dict values */
    const char **keys;       /* dict keys (NUL-terminated), klen their lengths */
    size_t *klen;
    size_t len, cap;
};

typedef struct {
    const tr_jinja *t;
    tj_arena ar;
    char *out;
    size_t n, cap;
    unsigned char *otm; /* the output's taint (tmcap bytes) */
    size_t tmcap;
    int want_tm; /* keep otm (tr_jinja_render_chat_mask) */
    tj_val **frames;
    size_t nframes, capframes;
    long steps;
    int depth;
    mu_diag *diag;
} tj_ctx;

static tj_val UNDEF = {.t = V_UNDEF}, NONE = {.t = V_NONE};
static tj_val TRUE_V = {.t = V_BOOL, .i = 1}, FALSE_V = {.t = V_BOOL, .i = 0};

static int rerr(tj_ctx *c, const tj_node *nd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rerr(tj_ctx *c, const tj_node *nd, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    tj_where(c->t->src, nd ? nd->at : 0, &line, &col);
    return mu_diag_set(c->diag, MU_ERR_FORMAT, "chat template line %d:%d: %s", line, col, msg);
}

#define NOMEM(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            return MU_ERR_NOMEM;                                                                   \
    } while (0)

static const char *type_name(const tj_val *v)
{
    static const char *const names[] = {"undefined", "none", "boolean", "integer",
                                        "string",    "list", "dict"};
    return names[v->t];
}

static tj_val *new_val(tj_ctx *c, int t)
{
    tj_val *v = tj_alloc(&c->ar, sizeof(*v));
    if (v)
        v->t = t;
    return v;
}

static tj_val *new_int(tj_ctx *c, long i)
{
    tj_val *v = new_val(c, V_INT);
    if (v)
        v->i = i;
    return v;
}

static tj_val *new_str(tj_ctx *c, const char *s, size_t n)
{
    tj_val *v = new_val(c, V_STR);
    char *d = tj_alloc(&c->ar, n + 1);
    if (!v || !d)
        return NULL;
    memcpy(d, s, n);
    v->s = d;
    v->n = n;
    return v;
}

/* A string pointing at bytes that outlive the render (the template, the caller's). */
static tj_val *ref_str(tj_ctx *c, const char *s, size_t n)
{
    tj_val *v = new_val(c, V_STR);
    if (v) {
        v->s = s;
        v->n = n;
    }
    return v;
}

/* A view of bytes [b, e) of the string v, keeping their taint. */
static tj_val *sub_str(tj_ctx *c, const tj_val *v, size_t b, size_t e)
{
    tj_val *x = ref_str(c, v->s + b, e - b);
    if (x && v->tm)
        x->tm = v->tm + b;
    return x;
}

/* A taint of n bytes in the arena, all untainted; NULL when out of memory. */
static unsigned char *new_tm(tj_ctx *c, size_t n)
{
    return tj_alloc(&c->ar, n + 1);
}

/* Whether any string in v (a string, or inside a list or dict) is tainted. */
static int tainted(const tj_val *v, int depth)
{
    if (v->t == V_STR)
        return v->tm && memchr(v->tm, 1, v->n) != NULL;
    if ((v->t != V_LIST && v->t != V_DICT) || depth > TJ_MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < v->len; i++)
        if (tainted(v->items[i], depth + 1))
            return 1;
    return 0;
}

/* Marks all of the string v tainted when `when` (a fresh copy made from tainted values). */
static int taint_all(tj_ctx *c, tj_val *v, int when)
{
    if (!when || !v->n)
        return 0;
    unsigned char *tm = new_tm(c, v->n);
    NOMEM(tm);
    memset(tm, 1, v->n);
    v->tm = tm;
    return 0;
}

static int grow(tj_ctx *c, tj_val *v, size_t need)
{
    if (need <= v->cap)
        return 0;
    size_t cap = v->cap ? 2 * v->cap : 4;
    while (cap < need)
        cap *= 2;
    tj_val **items = tj_alloc(&c->ar, cap * sizeof(*items));
    NOMEM(items);
    if (v->len)
        memcpy(items, v->items, v->len * sizeof(*items));
    v->items = items;
    if (v->t == V_DICT) {
        const char **keys = tj_alloc(&c->ar, cap * sizeof(*keys));
        size_t *klen = tj_alloc(&c->ar, cap * sizeof(*klen));
        NOMEM(keys && klen);
        if (v->len) {
            memcpy(keys, v->keys, v->len * sizeof(*keys));
            memcpy(klen, v->klen, v->len * sizeof(*klen));
        }
        v->keys = keys;
        v->klen = klen;
    }
    v->cap = cap;
    return 0;
}

static int list_push(tj_ctx *c, tj_val *l, tj_val *x)
{
    int rc = grow(c, l, l->len + 1);
    if (!rc)
        l->items[l->len++] = x;
    return rc;
}

static tj_val *dict_get(const tj_val *d, const char *k, size_t kn)
{
    for (size_t i = 0; i < d->len; i++)
        if (d->klen[i] == kn && memcmp(d->keys[i], k, kn) == 0)
            return d->items[i];
    return NULL;
}

/* Sets d[k] = x; the key bytes must outlive the render. */
static int dict_set(tj_ctx *c, tj_val *d, const char *k, size_t kn, tj_val *x)
{
    for (size_t i = 0; i < d->len; i++) {
        if (d->klen[i] == kn && memcmp(d->keys[i], k, kn) == 0) {
            d->items[i] = x;
            return 0;
        }
    }
    int rc = grow(c, d, d->len + 1);
    if (rc)
        return rc;
    d->keys[d->len] = k;
    d->klen[d->len] = kn;
    d->items[d->len++] = x;
    return 0;
}

static int truthy(const tj_val *v)
{
    switch (v->t) {
    case V_BOOL:
    case V_INT:
        return v->i != 0;
    case V_STR:
        return v->n > 0;
    case V_LIST:
    case V_DICT:
        return v->ns || v->len > 0;
    default:
        return 0;
    }
}

static int equal(const tj_val *a, const tj_val *b)
{
    int an = a->t == V_INT || a->t == V_BOOL, bn = b->t == V_INT || b->t == V_BOOL;
    if (an && bn)
        return a->i == b->i;
    if (a->t != b->t)
        return 0;
    switch (a->t) {
    case V_UNDEF:
    case V_NONE:
        return 1;
    case V_STR:
        return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
    case V_LIST:
        if (a->len != b->len)
            return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!equal(a->items[i], b->items[i]))
                return 0;
        return 1;
    default:
        return a == b;
    }
}

/* ---- output and strings ---- */

typedef struct {
    char *s;
    size_t n, cap;
} tj_buf;

static int buf_add(tj_buf *b, const char *s, size_t n)
{
    if (n > TJ_BUDGET || b->n > TJ_BUDGET - n)
        return MU_ERR_FORMAT;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s2 = realloc(b->s, cap);
        NOMEM(s2);
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

/* Appends the taint of n bytes (tm NULL: untainted) to t. */
static int tm_add(tj_buf *t, const unsigned char *tm, size_t n)
{
    size_t at = t->n;
    static const char zeros[16];
    int rc = 0;
    for (size_t k = 0; !rc && k < n; k += 16)
        rc = buf_add(t, zeros, n - k < 16 ? n - k : 16);
    if (!rc && tm)
        memcpy(t->s + at, tm, n);
    return rc;
}

/* Gives the new string v the taint gathered in t (its bytes' taint), when any is set. */
static int keep_tm(tj_ctx *c, tj_val *v, const tj_buf *t)
{
    if (!t->n || !memchr(t->s, 1, t->n))
        return 0;
    unsigned char *tm = new_tm(c, v->n);
    NOMEM(tm);
    memcpy(tm, t->s, v->n);
    v->tm = tm;
    return 0;
}

static int to_json(tj_buf *b, const tj_val *v, int depth);

/* Python's str() of a printable value into b. */
static int stringify(tj_buf *b, const tj_val *v)
{
    char num[32];
    switch (v->t) {
    case V_UNDEF:
        return 0;
    case V_NONE:
        return buf_add(b, "None", 4);
    case V_BOOL:
        return v->i ? buf_add(b, "True", 4) : buf_add(b, "False", 5);
    case V_INT:
        snprintf(num, sizeof num, "%ld", v->i);
        return buf_add(b, num, strlen(num));
    case V_STR:
        return buf_add(b, v->s, v->n);
    default:
        return MU_ERR_UNSUPPORTED;
    }
}

static int as_str(tj_ctx *c, const tj_node *nd, tj_val *v, tj_val **out)
{
    if (v->t == V_STR) {
        *out = v;
        return 0;
    }
    tj_buf b = {0};
    int rc = stringify(&b, v);
    if (rc == MU_ERR_UNSUPPORTED)
        rc = rerr(c, nd, "cannot turn a %s into a string", type_name(v));
    else if (rc == MU_ERR_FORMAT)
        rc = rerr(c, nd, "string over the size budget");
    if (!rc)
        rc = (*out = new_str(c, b.s ? b.s : "", b.n)) ? 0 : MU_ERR_NOMEM;
    free(b.s);
    return rc;
}

static int json_str(tj_buf *b, const char *s, size_t n)
{
    int rc = buf_add(b, "\"", 1);
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e[8];
        if (ch == '"' || ch == '\\') {
            e[0] = '\\';
            e[1] = (char)ch;
            rc = buf_add(b, e, 2);
        } else if (ch < 0x20) {
            const char *m = ch == '\n'   ? "\\n"
                            : ch == '\r' ? "\\r"
                            : ch == '\t' ? "\\t"
                            : ch == '\b' ? "\\b"
                            : ch == '\f' ? "\\f"
                                         : NULL;
            if (m) {
                rc = buf_add(b, m, 2);
            } else {
                snprintf(e, sizeof e, "\\u%04x", ch);
                rc = buf_add(b, e, 6);
            }
        } else {
            rc = buf_add(b, s + i, 1);
        }
    }
    return rc ? rc : buf_add(b, "\"", 1);
}

/* json.dumps(v, ensure_ascii=False), transformers' tojson. */
static int to_json(tj_buf *b, const tj_val *v, int depth)
{
    int rc = 0;
    if (depth > TJ_MAX_DEPTH)
        return MU_ERR_UNSUPPORTED;
    switch (v->t) {
    case V_NONE:
        return buf_add(b, "null", 4);
    case V_BOOL:
        return v->i ? buf_add(b, "true", 4) : buf_add(b, "false", 5);
    case V_INT:
        return stringify(b, v);
    case V_STR:
        return json_str(b, v->s, v->n);
    case V_LIST:
    case V_DICT:
        rc = buf_add(b, v->t == V_LIST ? "[" : "{", 1);
        for (size_t i = 0; !rc && i < v->len; i++) {
            if (i)
                rc = buf_add(b, ", ", 2);
            if (!rc && v->t == V_DICT && !(rc = json_str(b, v->keys[i], v->klen[i])))
                rc = buf_add(b, ": ", 2);
            if (!rc)
                rc = to_json(b, v->items[i], depth + 1);
        }
        return rc ? rc : buf_add(b, v->t == V_LIST ? "]" : "}", 1);
    default:
        return MU_ERR_UNSUPPORTED;
    }
}

/* Byte offsets of the code points of s (n + 1 entries, the last = n); count in *cnt. */
static size_t *cp_offsets(tj_ctx *c, const char *s, size_t n, size_t *cnt)
{
    size_t *off = tj_alloc(&c->ar, (n + 1) * sizeof(*off));
    if (!off)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        tj_utf8(s, n, i, &l);
        off[k++] = i;
        i += l;
    }
    off[k] = n;
    *cnt = k;
    return off;
}

/* Python's str.strip family: chars NULL strips white space. */
static void strip(const char *s, size_t n, const tj_val *chars, int left, int right, size_t *b,
                  size_t *e)
{
    *b = 0;
    *e = n;
    if (!chars) {
        if (right)
            *e = tj_rtrim_len(s, n);
        if (left)
            *b = *e ? tj_ltrim_off(s, *e) : 0;
        return;
    }
    /* chars: a set of code points, compared as their UTF-8 bytes. */
    for (;;) {
        int moved = 0;
        for (size_t i = 0; i < chars->n && *b < *e;) {
            size_t l;
            tj_utf8(chars->s, chars->n, i, &l);
            if (left && *e - *b >= l && memcmp(s + *b, chars->s + i, l) == 0) {
                *b += l;
                moved = 1;
            }
            if (right && *e - *b >= l && memcmp(s + *e - l, chars->s + i, l) == 0) {
                *e -= l;
                moved = 1;
            }
            i += l;
        }
        if (!moved || *b >= *e)
            return;
    }
}

static int split(tj_ctx *c, const tj_val *s, const tj_val *sep, tj_val **out)
{
    tj_val *l = new_val(c, V_LIST);
    NOMEM(l);
    int rc = 0;
    if (!sep) { /* runs of white space, none empty */
        size_t i = 0;
        while (!rc && i < s->n) {
            i += tj_ltrim_off(s->s + i, s->n - i);
            size_t j = i;
            while (j < s->n) {
                size_t k;
                if (tj_space_cp(tj_utf8(s->s, s->n, j, &k)))
                    break;
                j += k;
            }
            if (j > i) {
                tj_val *x = sub_str(c, s, i, j);
                rc = x ? list_push(c, l, x) : MU_ERR_NOMEM;
            }
            i = j;
        }
    } else {
        size_t i = 0;
        for (;;) {
            const char *hit = NULL;
            for (size_t j = i; j + sep->n <= s->n; j++)
                if (memcmp(s->s + j, sep->s, sep->n) == 0) {
                    hit = s->s + j;
                    break;
                }
            size_t end = hit ? (size_t)(hit - s->s) : s->n;
            tj_val *x = sub_str(c, s, i, end);
            if (!x || (rc = list_push(c, l, x)))
                return x ? rc : MU_ERR_NOMEM;
            if (!hit)
                break;
            i = end + sep->n;
        }
    }
    *out = l;
    return rc;
}

/* ---- evaluation ---- */

static int eval(tj_ctx *c, const tj_node *nd, tj_val **out);

static tj_val *lookup(tj_ctx *c, const char *s, size_t n)
{
    for (size_t f = c->nframes; f-- > 0;) {
        tj_val *v = dict_get(c->frames[f], s, n);
        if (v)
            return v;
    }
    return &UNDEF;
}

static int push_frame(tj_ctx *c)
{
    if (c->nframes == c->capframes) {
        size_t cap = c->capframes ? 2 * c->capframes : 8;
        tj_val **f = realloc(c->frames, cap * sizeof(*f));
        NOMEM(f);
        c->frames = f;
        c->capframes = cap;
    }
    tj_val *d = new_val(c, V_DICT);
    NOMEM(d);
    c->frames[c->nframes++] = d;
    return 0;
}

static int eval_args(tj_ctx *c, const tj_node *nd, tj_val **args, size_t max, size_t *nargs)
{
    if (nd->nkids > max)
        return rerr(c, nd, "too many arguments");
    for (size_t i = 0; i < nd->nkids; i++) {
        if (nd->kids[i]->name)
            return rerr(c, nd->kids[i], "unexpected keyword argument");
        int rc = eval(c, nd->kids[i], &args[i]);
        if (rc)
            return rc;
    }
    *nargs = nd->nkids;
    return 0;
}

static int want_str(tj_ctx *c, const tj_node *nd, const tj_val *v, const char *what)
{
    if (v->t != V_STR)
        return rerr(c, nd, "%s needs a string, not a %s", what, type_name(v));
    return 0;
}

static int call_method(tj_ctx *c, const tj_node *nd, tj_val *self, const char *m, size_t mn,
                       tj_val **out)
{
    tj_val *args[2] = {NULL, NULL};
    size_t na = 0;
    char name[32];
    int rc;
    snprintf(name, sizeof name, "%.*s", (int)(mn < 31 ? mn : 31), m);
    if ((rc = eval_args(c, nd, args, 2, &na)))
        return rc;
    if (self->t == V_DICT && strcmp(name, "get") == 0 && na >= 1) {
        if ((rc = want_str(c, nd, args[0], "get")))
            return rc;
        tj_val *v = dict_get(self, args[0]->s, args[0]->n);
        *out = v ? v : na > 1 ? args[1] : &NONE;
        return 0;
    }
    if (self->t != V_STR)
        return rerr(c, nd, "no method '%s' on a %s", name, type_name(self));
    int l = strcmp(name, "lstrip") == 0, r = strcmp(name, "rstrip") == 0;
    if (strcmp(name, "strip") == 0 || l || r) {
        if (na > 1 || (na == 1 && args[0]->t != V_STR && args[0]->t != V_NONE))
            return rerr(c, nd, "%s takes one string", name);
        size_t b, e;
        strip(self->s, self->n, na && args[0]->t == V_STR ? args[0] : NULL, !r, !l, &b, &e);
        return (*out = sub_str(c, self, b, e)) ? 0 : MU_ERR_NOMEM;
    }
    int sw = strcmp(name, "startswith") == 0;
    if (sw || strcmp(name, "endswith") == 0) {
        if (na != 1 || (rc = want_str(c, nd, args[0], name)))
            return rc ? rc : rerr(c, nd, "%s takes one string", name);
        const tj_val *a = args[0];
        int hit =
            a->n <= self->n && memcmp(sw ? self->s : self->s + self->n - a->n, a->s, a->n) == 0;
        *out = hit ? &TRUE_V : &FALSE_V;
        return 0;
    }
    if (strcmp(name, "split") == 0) {
        if (na > 1 || (na == 1 && args[0]->t != V_STR && args[0]->t != V_NONE))
            return rerr(c, nd, "split takes one string (maxsplit is not supported)");
        if (na == 1 && args[0]->t == V_STR && args[0]->n == 0)
            return rerr(c, nd, "split: empty separator");
        return split(c, self, na == 1 && args[0]->t == V_STR ? args[0] : NULL, out);
    }
    int up = strcmp(name, "upper") == 0;
    if (up || strcmp(name, "lower") == 0) {
        if (na)
            return rerr(c, nd, "%s takes no arguments", name);
        tj_val *v = new_str(c, self->s, self->n);
        NOMEM(v);
        v->tm = self->tm; /* the same bytes, case aside */
        char *s = (char *)v->s;
        for (size_t i = 0; i < v->n; i++)
            if (up ? (s[i] >= 'a' && s[i] <= 'z') : (s[i] >= 'A' && s[i] <= 'Z'))
                s[i] = (char)(s[i] ^ 0x20);
        *out = v;
        return 0;
    }
    if (strcmp(name, "replace") == 0) {
        if (na != 2 || args[0]->t != V_STR || args[1]->t != V_STR || args[0]->n == 0)
            return rerr(c, nd, "replace takes two strings, the first not empty");
        tj_buf b = {0}, t = {0}; /* t: the taint of b's bytes */
        rc = 0;
        size_t i = 0;
        while (!rc && i < self->n) {
            if (self->n - i >= args[0]->n && memcmp(self->s + i, args[0]->s, args[0]->n) == 0) {
                rc = buf_add(&b, args[1]->s, args[1]->n);
                if (!rc)
                    rc = tm_add(&t, args[1]->tm, args[1]->n);
                i += args[0]->n;
            } else {
                rc = buf_add(&b, self->s + i, 1);
                if (!rc)
                    rc = tm_add(&t, self->tm ? self->tm + i : NULL, 1);
                i++;
            }
        }
        if (!rc)
            rc = (*out = new_str(c, b.s ? b.s : "", b.n)) ? 0 : MU_ERR_NOMEM;
        if (!rc)
            rc = keep_tm(c, *out, &t);
        free(b.s);
        free(t.s);
        return rc == MU_ERR_FORMAT ? rerr(c, nd, "string over the size budget") : rc;
    }
    return rerr(c, nd, "unsupported string method '%s'", name);
}

static int eval_call(tj_ctx *c, const tj_node *nd, tj_val **out)
{
    int rc;
    const tj_node *f = nd->a;
    if (f->kind == E_ATTR) {
        tj_val *self;
        if ((rc = eval(c, f->a, &self)))
            return rc;
        return call_method(c, nd, self, f->s, f->n, out);
    }
    if (f->kind == E_NAME && f->n == 9 && memcmp(f->s, "namespace", 9) == 0) {
        tj_val *ns = new_val(c, V_DICT);
        NOMEM(ns);
        ns->ns = 1;
        for (size_t i = 0; i < nd->nkids; i++) {
            tj_val *v;
            if (!nd->kids[i]->name)
                return rerr(c, nd->kids[i], "namespace() takes keyword arguments only");
            if ((rc = eval(c, nd->kids[i], &v)) ||
                (rc = dict_set(c, ns, nd->kids[i]->name, nd->kids[i]->name_len, v)))
                return rc;
        }
        *out = ns;
        return 0;
    }
    if (f->kind == E_NAME && f->n == 15 && memcmp(f->s, "raise_exception", 15) == 0) {
        tj_val *args[1], *s = NULL;
        size_t na = 0;
        if ((rc = eval_args(c, nd, args, 1, &na)))
            return rc;
        if (na == 1 && (rc = as_str(c, nd, args[0], &s)))
            return rc;
        return rerr(c, nd, "the template raised an exception: %.*s", s ? (int)s->n : 0,
                    s ? s->s : "");
    }
    if (f->kind == E_NAME)
        return rerr(c, nd, "unsupported function '%.*s'", (int)f->n, f->s);
    return rerr(c, nd, "this expression cannot be called");
}

static int eval_filter(tj_ctx *c, const tj_node *nd, tj_val *v, tj_val **out)
{
    char name[16];
    snprintf(name, sizeof name, "%.*s", (int)(nd->n < 15 ? nd->n : 15), nd->s);
    int rc = 0;
    if (nd->nkids && strcmp(name, "tojson") != 0)
        return rerr(c, nd, "filter '%s' takes no arguments", name);
    if (strcmp(name, "trim") == 0) {
        if ((rc = want_str(c, nd, v, "trim")))
            return rc;
        size_t b, e;
        strip(v->s, v->n, NULL, 1, 1, &b, &e);
        return (*out = sub_str(c, v, b, e)) ? 0 : MU_ERR_NOMEM;
    }
    if (strcmp(name, "length") == 0 || strcmp(name, "count") == 0) {
        size_t n = v->len;
        if (v->t == V_STR && !cp_offsets(c, v->s, v->n, &n))
            return MU_ERR_NOMEM;
        if (v->t != V_STR && v->t != V_LIST && v->t != V_DICT)
            return rerr(c, nd, "%s of a %s", name, type_name(v));
        return (*out = new_int(c, (long)n)) ? 0 : MU_ERR_NOMEM;
    }
    if (strcmp(name, "upper") == 0 || strcmp(name, "lower") == 0) {
        if ((rc = want_str(c, nd, v, name)))
            return rc;
        return call_method(c, &(tj_node){.at = nd->at}, v, name, strlen(name), out);
    }
    if (strcmp(name, "string") == 0)
        return as_str(c, nd, v, out);
    if (strcmp(name, "first") == 0 || strcmp(name, "last") == 0) {
        int first = name[0] == 'f';
        if (v->t == V_LIST) {
            *out = v->len ? v->items[first ? 0 : v->len - 1] : &UNDEF;
            return 0;
        }
        if ((rc = want_str(c, nd, v, name)))
            return rc;
        size_t n, *off = cp_offsets(c, v->s, v->n, &n);
        NOMEM(off);
        if (!n) {
            *out = &UNDEF;
            return 0;
        }
        size_t k = first ? 0 : n - 1;
        return (*out = sub_str(c, v, off[k], off[k + 1])) ? 0 : MU_ERR_NOMEM;
    }
    /* tojson; arguments (indent=...) are refused. */
    if (nd->nkids)
        return rerr(c, nd, "tojson's arguments are not supported");
    tj_buf b = {0};
    rc = to_json(&b, v, 0);
    if (rc == MU_ERR_UNSUPPORTED)
        rc = rerr(c, nd, "tojson of a %s", type_name(v));
    else if (rc == MU_ERR_FORMAT)
        rc = rerr(c, nd, "string over the size budget");
    if (!rc)
        rc = (*out = new_str(c, b.s ? b.s : "", b.n)) ? 0 : MU_ERR_NOMEM;
    if (!rc) /* JSON of tainted strings: all of it counts as the messages' */
        rc = taint_all(c, *out, tainted(v, 0));
    free(b.s);
    return rc;
}

static int eval_test(const tj_node *nd, const tj_val *v)
{
    char name[16];
    snprintf(name, sizeof name, "%.*s", (int)(nd->n < 15 ? nd->n : 15), nd->s);
    int r;
    if (strcmp(name, "defined") == 0)
        r = v->t != V_UNDEF;
    else if (strcmp(name, "undefined") == 0)
        r = v->t == V_UNDEF;
    else if (strcmp(name, "none") == 0)
        r = v->t == V_NONE;
    else if (strcmp(name, "string") == 0)
        r = v->t == V_STR;
    else if (strcmp(name, "number") == 0 || strcmp(name, "integer") == 0)
        r = v->t == V_INT;
    else if (strcmp(name, "boolean") == 0)
        r = v->t == V_BOOL;
    else if (strcmp(name, "iterable") == 0 || strcmp(name, "sequence") == 0)
        r = v->t == V_STR || v->t == V_LIST || v->t == V_DICT;
    else if (strcmp(name, "mapping") == 0)
        r = v->t == V_DICT;
    else if (strcmp(name, "true") == 0)
        r = v->t == V_BOOL && v->i;
    else if (strcmp(name, "false") == 0)
        r = v->t == V_BOOL && !v->i;
    else if (strcmp(name, "odd") == 0)
        r = v->t == V_INT && (v->i & 1);
    else /* even */
        r = v->t == V_INT && !(v->i & 1);
    return nd->i ? !r : r;
}

/* Python's slice indices for a sequence of len n. */
static int eval_slice(tj_ctx *c, const tj_node *nd, tj_val *obj, tj_val **out)
{
    long part[3] = {0, 0, 1};
    int given[3] = {0, 0, 0};
    const tj_node *p[3] = {nd->b, nd->c, nd->d};
    int rc;
    for (int k = 0; k < 3; k++) {
        if (!p[k])
            continue;
        tj_val *v;
        if ((rc = eval(c, p[k], &v)))
            return rc;
        if (v->t == V_NONE)
            continue;
        if (v->t != V_INT)
            return rerr(c, p[k], "slice index must be an integer");
        part[k] = v->i;
        given[k] = 1;
    }
    size_t n = obj->len, *off = NULL;
    if (obj->t == V_STR && !(off = cp_offsets(c, obj->s, obj->n, &n)))
        return MU_ERR_NOMEM;
    if (obj->t != V_STR && obj->t != V_LIST)
        return rerr(c, nd, "cannot slice a %s", type_name(obj));
    long len = (long)n, step = part[2];
    if (step == 0)
        return rerr(c, nd, "slice step cannot be zero");
    long lo = step > 0 ? 0 : -1, hi = step > 0 ? len : len - 1;
    long start = given[0] ? part[0] : step > 0 ? lo : hi;
    long stop = given[1] ? part[1] : step > 0 ? hi : lo;
    if (given[0]) {
        if (start < 0)
            start = start + len < lo ? lo : start + len;
        else if (start > hi)
            start = hi;
    }
    if (given[1]) {
        if (stop < 0)
            stop = stop + len < lo ? lo : stop + len;
        else if (stop > hi)
            stop = hi;
    }
    tj_buf b = {0}, t = {0}; /* t: the taint of b's bytes */
    tj_val *l = obj->t == V_LIST ? new_val(c, V_LIST) : NULL;
    if (obj->t == V_LIST && !l)
        return MU_ERR_NOMEM;
    rc = 0;
    for (long i = start; !rc && (step > 0 ? i < stop : i > stop); i += step) {
        if (l)
            rc = list_push(c, l, obj->items[i]);
        else if (!(rc = buf_add(&b, obj->s + off[i], off[i + 1] - off[i])))
            rc = tm_add(&t, obj->tm ? obj->tm + off[i] : NULL, off[i + 1] - off[i]);
    }
    if (!rc)
        rc = (*out = l ? l : new_str(c, b.s ? b.s : "", b.n)) ? 0 : MU_ERR_NOMEM;
    if (!rc && !l)
        rc = keep_tm(c, *out, &t);
    free(b.s);
    free(t.s);
    return rc == MU_ERR_FORMAT ? rerr(c, nd, "string over the size budget") : rc;
}

static int eval_index(tj_ctx *c, const tj_node *nd, tj_val *obj, tj_val *key, tj_val **out)
{
    if (obj->t == V_DICT) {
        if (key->t != V_STR)
            return rerr(c, nd, "dict keys are strings here, not %s", type_name(key));
        tj_val *v = dict_get(obj, key->s, key->n);
        *out = v ? v : &UNDEF;
        return 0;
    }
    if (obj->t == V_LIST || obj->t == V_STR) {
        if (key->t != V_INT)
            return rerr(c, nd, "index must be an integer, not %s", type_name(key));
        size_t n = obj->len, *off = NULL;
        if (obj->t == V_STR && !(off = cp_offsets(c, obj->s, obj->n, &n)))
            return MU_ERR_NOMEM;
        long i = key->i < 0 ? key->i + (long)n : key->i;
        if (i < 0 || i >= (long)n)
            *out = &UNDEF;
        else if (off)
            return (*out = sub_str(c, obj, off[i], off[i + 1])) ? 0 : MU_ERR_NOMEM;
        else
            *out = obj->items[i];
        return 0;
    }
    if (obj->t == V_UNDEF)
        return rerr(c, nd, "indexing an undefined value");
    return rerr(c, nd, "cannot index a %s", type_name(obj));
}

static int arith(tj_ctx *c, const tj_node *nd, long op, tj_val *a, tj_val *b, tj_val **out)
{
    if (op == B_ADD && a->t == V_STR && b->t == V_STR) {
        if (a->n + b->n > TJ_BUDGET)
            return rerr(c, nd, "string over the size budget");
        tj_val *v = new_val(c, V_STR);
        char *d = tj_alloc(&c->ar, a->n + b->n + 1);
        NOMEM(v && d);
        memcpy(d, a->s, a->n);
        memcpy(d + a->n, b->s, b->n);
        v->s = d;
        v->n = a->n + b->n;
        if (a->tm || b->tm) {
            unsigned char *tm = new_tm(c, v->n);
            NOMEM(tm);
            if (a->tm)
                memcpy(tm, a->tm, a->n);
            if (b->tm)
                memcpy(tm + a->n, b->tm, b->n);
            v->tm = tm;
        }
        *out = v;
        return 0;
    }
    if (op == B_ADD && a->t == V_LIST && b->t == V_LIST) {
        tj_val *l = new_val(c, V_LIST);
        int rc;
        NOMEM(l);
        if ((rc = grow(c, l, a->len + b->len)))
            return rc;
        for (size_t i = 0; i < a->len; i++)
            l->items[l->len++] = a->items[i];
        for (size_t i = 0; i < b->len; i++)
            l->items[l->len++] = b->items[i];
        *out = l;
        return 0;
    }
    int an = a->t == V_INT || a->t == V_BOOL, bn = b->t == V_INT || b->t == V_BOOL;
    static const char *const sym[] = {"+", "-", "*", "/", "//", "%", "**"};
    if (!an || !bn || op == B_DIV || op == B_POW)
        return rerr(c, nd, "unsupported operands for %s: %s and %s", sym[op], type_name(a),
                    type_name(b));
    long x = a->i, y = b->i, r;
    const long lim = 1l << 40; /* well inside long, so no operation here overflows */
    if (x > lim || x < -lim || y > lim || y < -lim)
        return rerr(c, nd, "integer out of range");
    if ((op == B_FDIV || op == B_MOD) && y == 0)
        return rerr(c, nd, "division by zero");
    switch (op) {
    case B_ADD:
        r = x + y;
        break;
    case B_SUB:
        r = x - y;
        break;
    case B_MUL:
        if (x && (y > lim / (x < 0 ? -x : x) || y < -lim / (x < 0 ? -x : x)))
            return rerr(c, nd, "integer out of range");
        r = x * y;
        break;
    default: { /* floor division and its remainder, as Python rounds */
        long q = x / y, m = x % y;
        if (m && ((m < 0) != (y < 0))) {
            q--;
            m += y;
        }
        r = op == B_FDIV ? q : m;
    }
    }
    return (*out = new_int(c, r)) ? 0 : MU_ERR_NOMEM;
}

static int compare(tj_ctx *c, const tj_node *nd, long op, tj_val *a, tj_val *b, tj_val **out)
{
    int r;
    if (op == B_EQ || op == B_NE) {
        r = equal(a, b) == (op == B_EQ);
    } else if (op == B_IN || op == B_NOTIN) {
        if (b->t == V_STR) {
            if (a->t != V_STR)
                return rerr(c, nd, "'in <string>' needs a string on the left");
            r = 0;
            for (size_t j = 0; !r && j + a->n <= b->n; j++)
                r = memcmp(b->s + j, a->s, a->n) == 0;
        } else if (b->t == V_LIST) {
            r = 0;
            for (size_t j = 0; !r && j < b->len; j++)
                r = equal(a, b->items[j]);
        } else if (b->t == V_DICT) {
            r = a->t == V_STR && dict_get(b, a->s, a->n);
        } else {
            return rerr(c, nd, "'in' needs a string, list or dict, not %s", type_name(b));
        }
        r = r == (op == B_IN);
    } else {
        int d;
        if ((a->t == V_INT || a->t == V_BOOL) && (b->t == V_INT || b->t == V_BOOL)) {
            d = (a->i > b->i) - (a->i < b->i);
        } else if (a->t == V_STR && b->t == V_STR) {
            size_t m = a->n < b->n ? a->n : b->n;
            d = memcmp(a->s, b->s, m);
            d = d ? (d > 0) - (d < 0) : (a->n > b->n) - (a->n < b->n);
        } else {
            return rerr(c, nd, "cannot order a %s and a %s", type_name(a), type_name(b));
        }
        r = op == B_LT ? d < 0 : op == B_GT ? d > 0 : op == B_LE ? d <= 0 : d >= 0;
    }
    *out = r ? &TRUE_V : &FALSE_V;
    return 0;
}

static int eval_bin(tj_ctx *c, const tj_node *nd, tj_val **out)
{
    tj_val *a, *b;
    int rc;
    if ((rc = eval(c, nd->a, &a)))
        return rc;
    if (nd->i == B_AND || nd->i == B_OR) { /* Python: the deciding operand itself */
        if (truthy(a) == (nd->i == B_OR)) {
            *out = a;
            return 0;
        }
        return eval(c, nd->b, out);
    }
    if ((rc = eval(c, nd->b, &b)))
        return rc;
    if (nd->i == B_CAT) {
        tj_val *x, *y;
        if ((rc = as_str(c, nd, a, &x)) || (rc = as_str(c, nd, b, &y)))
            return rc;
        return arith(c, nd, B_ADD, x, y, out);
    }
    if (nd->i <= B_POW)
        return arith(c, nd, nd->i, a, b, out);
    return compare(c, nd, nd->i, a, b, out);
}

static int eval(tj_ctx *c, const tj_node *nd, tj_val **out)
{
    int rc = 0;
    if (++c->steps > TJ_MAX_STEPS)
        return rerr(c, nd, "rendering takes too many steps");
    if (++c->depth > 2 * TJ_MAX_DEPTH) {
        c->depth--;
        return rerr(c, nd, "nested too deeply");
    }
    tj_val *a, *b;
    switch (nd->kind) {
    case E_STR:
        rc = (*out = ref_str(c, nd->s, nd->n)) ? 0 : MU_ERR_NOMEM;
        break;
    case E_INT:
        rc = (*out = new_int(c, nd->i)) ? 0 : MU_ERR_NOMEM;
        break;
    case E_BOOL:
        *out = nd->i ? &TRUE_V : &FALSE_V;
        break;
    case E_NONE:
        *out = &NONE;
        break;
    case E_NAME:
        *out = lookup(c, nd->s, nd->n);
        break;
    case E_LIST:
        if (!(*out = new_val(c, V_LIST)))
            rc = MU_ERR_NOMEM;
        for (size_t i = 0; !rc && i < nd->nkids; i++)
            if (!(rc = eval(c, nd->kids[i], &a)))
                rc = list_push(c, *out, a);
        break;
    case E_DICT:
        if (!(*out = new_val(c, V_DICT)))
            rc = MU_ERR_NOMEM;
        for (size_t i = 0; !rc && i + 1 < nd->nkids; i += 2) {
            if ((rc = eval(c, nd->kids[i], &a)) || (rc = eval(c, nd->kids[i + 1], &b)))
                break;
            rc = a->t != V_STR ? rerr(c, nd->kids[i], "dict keys must be strings")
                               : dict_set(c, *out, a->s, a->n, b);
        }
        break;
    case E_ATTR:
        if ((rc = eval(c, nd->a, &a)))
            break;
        if (a->t == V_UNDEF || a->t == V_NONE) {
            rc = rerr(c, nd, "attribute '%.*s' of a %s value", (int)nd->n, nd->s, type_name(a));
            break;
        }
        *out = a->t == V_DICT ? dict_get(a, nd->s, nd->n) : NULL;
        if (!*out)
            *out = &UNDEF;
        break;
    case E_INDEX:
        if (!(rc = eval(c, nd->a, &a)) && !(rc = eval(c, nd->b, &b)))
            rc = eval_index(c, nd, a, b, out);
        break;
    case E_SLICE:
        if (!(rc = eval(c, nd->a, &a)))
            rc = eval_slice(c, nd, a, out);
        break;
    case E_CALL:
        rc = eval_call(c, nd, out);
        break;
    case E_FILTER:
        if (!(rc = eval(c, nd->a, &a)))
            rc = eval_filter(c, nd, a, out);
        break;
    case E_TEST:
        if (!(rc = eval(c, nd->a, &a)))
            *out = eval_test(nd, a) ? &TRUE_V : &FALSE_V;
        break;
    case E_NEG:
        if (!(rc = eval(c, nd->a, &a))) {
            if (a->t != V_INT && a->t != V_BOOL)
                rc = rerr(c, nd, "unary minus of a %s", type_name(a));
            else if (a->i > (1l << 40) || a->i < -(1l << 40))
                rc = rerr(c, nd, "integer out of range");
            else
                rc = (*out = new_int(c, nd->i ? -a->i : a->i)) ? 0 : MU_ERR_NOMEM;
        }
        break;
    case E_NOT:
        if (!(rc = eval(c, nd->a, &a)))
            *out = truthy(a) ? &FALSE_V : &TRUE_V;
        break;
    case E_BIN:
        rc = eval_bin(c, nd, out);
        break;
    case E_COND:
        if (!(rc = eval(c, nd->b, &a))) {
            if (truthy(a))
                rc = eval(c, nd->a, out);
            else if (nd->c)
                rc = eval(c, nd->c, out);
            else
                *out = &UNDEF;
        }
        break;
    default:
        rc = rerr(c, nd, "not an expression");
    }
    c->depth--;
    return rc;
}

/* ---- statements ---- */

static int exec_block(tj_ctx *c, tj_node *const *kids, size_t n);

/* Appends s[0..n) to the output, tm its taint (NULL: none). */
static int emit(tj_ctx *c, const tj_node *nd, const char *s, size_t n, const unsigned char *tm)
{
    size_t at = c->n;
    tj_buf b = {c->out, c->n, c->cap};
    int rc = buf_add(&b, s, n);
    c->out = b.s;
    c->n = b.n;
    c->cap = b.cap;
    if (!rc && c->want_tm) {
        if (c->tmcap < c->cap) {
            unsigned char *o = realloc(c->otm, c->cap);
            NOMEM(o);
            c->otm = o;
            c->tmcap = c->cap;
        }
        if (tm)
            memcpy(c->otm + at, tm, n);
        else
            memset(c->otm + at, 0, n);
    }
    return rc == MU_ERR_FORMAT ? rerr(c, nd, "output over the size budget") : rc;
}

static int exec_for(tj_ctx *c, const tj_node *nd)
{
    tj_val *seq;
    int rc;
    if ((rc = eval(c, nd->a, &seq)))
        return rc;
    if (seq->t == V_UNDEF)
        return 0; /* Jinja iterates an undefined value as empty */
    size_t n = seq->len, *off = NULL;
    if (seq->t == V_STR && !(off = cp_offsets(c, seq->s, seq->n, &n)))
        return MU_ERR_NOMEM;
    if (seq->t != V_LIST && seq->t != V_DICT && seq->t != V_STR)
        return rerr(c, nd->a, "cannot loop over a %s", type_name(seq));
    for (size_t i = 0; i < n; i++) {
        tj_val *item, *loop;
        if (seq->t == V_LIST)
            item = seq->items[i];
        else if (seq->t == V_DICT)
            item = ref_str(c, seq->keys[i], seq->klen[i]);
        else
            item = sub_str(c, seq, off[i], off[i + 1]);
        NOMEM(item && (loop = new_val(c, V_DICT)));
        static const char *const keys[] = {"index0", "index", "revindex0", "revindex", "length"};
        long vals[] = {(long)i, (long)i + 1, (long)(n - 1 - i), (long)(n - i), (long)n};
        for (size_t k = 0; k < 5; k++) {
            tj_val *v = new_int(c, vals[k]);
            if (!v || (rc = dict_set(c, loop, keys[k], strlen(keys[k]), v)))
                return v ? rc : MU_ERR_NOMEM;
        }
        if ((rc = dict_set(c, loop, "first", 5, i == 0 ? &TRUE_V : &FALSE_V)) ||
            (rc = dict_set(c, loop, "last", 4, i + 1 == n ? &TRUE_V : &FALSE_V)) ||
            (rc = push_frame(c)))
            return rc;
        tj_val *f = c->frames[c->nframes - 1];
        if (!(rc = dict_set(c, f, "loop", 4, loop)) && !(rc = dict_set(c, f, nd->s, nd->n, item)))
            rc = exec_block(c, nd->kids, nd->nkids);
        c->nframes--;
        if (rc)
            return rc;
    }
    return 0;
}

static int exec(tj_ctx *c, const tj_node *nd)
{
    int rc;
    tj_val *v;
    switch (nd->kind) {
    case S_BLOCK:
        return exec_block(c, nd->kids, nd->nkids);
    case S_TEXT:
        return emit(c, nd, nd->s, nd->n, NULL);
    case S_OUT:
        if ((rc = eval(c, nd->a, &v)) || (rc = as_str(c, nd, v, &v)))
            return rc;
        return emit(c, nd, v->s, v->n, v->tm);
    case S_IF:
        if ((rc = eval(c, nd->a, &v)))
            return rc;
        if (truthy(v))
            return exec_block(c, nd->kids, nd->nkids);
        return nd->else_ ? exec(c, nd->else_) : 0;
    case S_FOR:
        return exec_for(c, nd);
    case S_SET:
        if ((rc = eval(c, nd->a, &v)))
            return rc;
        if (!nd->name)
            return dict_set(c, c->frames[c->nframes - 1], nd->s, nd->n, v);
        tj_val *ns = lookup(c, nd->s, nd->n);
        if (!ns->ns)
            return rerr(c, nd, "'%.*s' is not a namespace()", (int)nd->n, nd->s);
        return dict_set(c, ns, nd->name, nd->name_len, v);
    default:
        return rerr(c, nd, "not a statement");
    }
}

static int exec_block(tj_ctx *c, tj_node *const *kids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (++c->steps > TJ_MAX_STEPS)
            return rerr(c, kids[i], "rendering takes too many steps");
        int rc = exec(c, kids[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int set_globals(tj_ctx *c, const tr_chat_msg *msgs, size_t n, int gen, const char *bos,
                       const char *eos)
{
    int rc;
    tj_val *g = c->frames[0], *list = new_val(c, V_LIST), *v;
    NOMEM(list);
    for (size_t i = 0; i < n; i++) {
        tj_val *m = new_val(c, V_DICT), *role, *content;
        NOMEM(m && (role = ref_str(c, msgs[i].role, strlen(msgs[i].role))) &&
              (content = ref_str(c, msgs[i].content, strlen(msgs[i].content))));
        /* The content is the conversation's, not the template's. The role is not marked:
         * templates build their header tokens from it ('<|' + role + '|>', Phi-3's and
         * Zephyr's), and callers allow only known roles (mutual data import: system, user,
         * assistant). */
        if ((rc = taint_all(c, content, 1)))
            return rc;
        if ((rc = dict_set(c, m, "role", 4, role)) ||
            (rc = dict_set(c, m, "content", 7, content)) || (rc = list_push(c, list, m)))
            return rc;
    }
    if ((rc = dict_set(c, g, "messages", 8, list)) ||
        (rc = dict_set(c, g, "add_generation_prompt", 21, gen ? &TRUE_V : &FALSE_V)))
        return rc;
    if (bos) {
        NOMEM(v = ref_str(c, bos, strlen(bos)));
        if ((rc = dict_set(c, g, "bos_token", 9, v)))
            return rc;
    }
    if (eos) {
        NOMEM(v = ref_str(c, eos, strlen(eos)));
        if ((rc = dict_set(c, g, "eos_token", 9, v)))
            return rc;
    }
    return 0;
}

int tr_jinja_render_chat(const tr_jinja *t, const tr_chat_msg *msgs, size_t n,
                         int add_generation_prompt, const char *bos_token, const char *eos_token,
                         char **out, size_t *out_len, mu_diag *diag)
{
    return tr_jinja_render_chat_mask(t, msgs, n, add_generation_prompt, bos_token, eos_token, out,
                                     out_len, NULL, diag);
}

int tr_jinja_render_chat_mask(const tr_jinja *t, const tr_chat_msg *msgs, size_t n,
                              int add_generation_prompt, const char *bos_token,
                              const char *eos_token, char **out, size_t *out_len,
                              unsigned char **from_msgs, mu_diag *diag)
{
    tj_ctx c = {.t = t, .diag = diag, .want_tm = from_msgs != NULL};
    *out = NULL;
    *out_len = 0;
    if (from_msgs)
        *from_msgs = NULL;
    int rc = push_frame(&c);
    if (!rc)
        rc = set_globals(&c, msgs, n, add_generation_prompt, bos_token, eos_token);
    if (!rc)
        rc = push_frame(&c);
    if (!rc)
        rc = exec(&c, t->root);
    if (!rc && !c.out)
        rc = emit(&c, t->root, "", 0, NULL);
    if (rc == MU_ERR_NOMEM)
        mu_diag_set(diag, rc, "chat template: out of memory (or over the %lu MiB budget)",
                    TJ_BUDGET >> 20);
    free(c.frames);
    tj_arena_free(&c.ar);
    if (rc) {
        free(c.out);
        free(c.otm);
        return rc;
    }
    *out = c.out;
    *out_len = c.n;
    if (from_msgs)
        *from_msgs = c.otm;
    return 0;
}
