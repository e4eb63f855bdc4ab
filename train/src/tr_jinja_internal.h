/* tr_jinja_internal.h - private: the chat-template tree, its arena and helpers shared by
 * the parser (tr_jinja_parse.c) and the renderer (tr_jinja.c). */
#ifndef TR_JINJA_INTERNAL_H
#define TR_JINJA_INTERNAL_H

#include <stddef.h>

#include "tr_jinja.h"

#define TJ_MAX_SRC   (1 << 20)    /* template bytes */
#define TJ_MAX_DEPTH 200          /* nesting of blocks and expressions */
#define TJ_BUDGET    (64ul << 20) /* bytes one arena (tree, or one render) may hold */

typedef struct tj_block {
    struct tj_block *next;
    _Alignas(16) unsigned char data[];
} tj_block;

typedef struct {
    tj_block *head;
    size_t used;
} tj_arena;

/* Zeroed memory from the arena, or NULL when out of memory or over TJ_BUDGET. */
void *tj_alloc(tj_arena *a, size_t n);
void tj_arena_free(tj_arena *a);

enum {
    S_BLOCK, /* kids in order */
    S_TEXT,  /* s, n */
    S_OUT,   /* {{ a }} */
    S_IF,    /* if a: kids, else else_ */
    S_FOR,   /* for s in a: kids */
    S_SET,   /* s = a, or s.name = a */
    E_STR,
    E_INT,
    E_BOOL,
    E_NONE,
    E_NAME,
    E_LIST,   /* kids */
    E_DICT,   /* kids: key, value, key, value ... */
    E_ATTR,   /* a.s */
    E_INDEX,  /* a[b] */
    E_SLICE,  /* a[b:c:d], each may be NULL */
    E_CALL,   /* a(kids), the last nnames kids keyword arguments (name) */
    E_FILTER, /* a | s(kids) */
    E_TEST,   /* a is [not if i] s */
    E_NEG,    /* -a if i, else +a */
    E_NOT,
    E_BIN, /* a op(i) b */
    E_COND /* b ? a : c */
};

enum {
    B_ADD,
    B_SUB,
    B_MUL,
    B_DIV,
    B_FDIV,
    B_MOD,
    B_POW,
    B_CAT,
    B_EQ,
    B_NE,
    B_LT,
    B_GT,
    B_LE,
    B_GE,
    B_IN,
    B_NOTIN,
    B_AND,
    B_OR
};

typedef struct tj_node tj_node;
struct tj_node {
    int kind;
    size_t at; /* offset in the template source */
    const char *s;
    size_t n;
    long i;
    const char *name; /* keyword argument name; S_SET attribute */
    size_t name_len;
    tj_node *a, *b, *c, *d, *else_;
    tj_node **kids;
    size_t nkids, nnames;
};

struct tr_jinja {
    char *src;
    size_t src_len;
    char *pre; /* the preprocessed text the tree's strings point into */
    tj_arena arena;
    tj_node *root;
};

int tj_space_cp(unsigned cp);
unsigned tj_utf8(const char *s, size_t n, size_t i, size_t *len);
size_t tj_rtrim_len(const char *s, size_t n);
size_t tj_ltrim_off(const char *s, size_t n);
/* 1-based line and column (in code points) of byte off of src. */
void tj_where(const char *src, size_t off, int *line, int *col);

#endif
