/* mu_yaml.c - libyaml event stream -> mu_yaml_node tree, with positions for messages. */
#include "mu_yaml.h"

#include "mu_file.h"
#include "mu_grow.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MU_YAML_MAX_DEPTH 64
#define MU_YAML_MAX_FILE  (16u << 20)

static void node_free(mu_yaml_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_items; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->key);
    free(n->scalar);
    free(n);
}

void mu_yaml_free(mu_yaml_doc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->path);
    free(doc);
}

static int node_push(mu_yaml_node *parent, mu_yaml_node *child)
{
    if (MU_GROW(&parent->items, &parent->cap_items_, parent->n_items + 1, 4) != MU_OK)
        return MU_ERR_NOMEM;
    parent->items[parent->n_items++] = child;
    return 0;
}

typedef struct {
    yaml_parser_t parser;
    const char *name;
    mu_diag *diag;
} loader;

static int fail_at(loader *ld, const yaml_mark_t *m, const char *what)
{
    return mu_diag_set(ld->diag, MU_ERR_INVALID, "%s:%zu:%zu: %s", ld->name, m->line + 1,
                       m->column + 1, what);
}

static int parser_error(loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->context_mark;
    char what[400];
    if (p->error == YAML_MEMORY_ERROR)
        return mu_diag_set(ld->diag, MU_ERR_NOMEM, "%s: out of memory", ld->name);
    snprintf(what, sizeof what, "%s%s%s", p->problem ? p->problem : "syntax error",
             p->context ? " " : "", p->context ? p->context : "");
    return fail_at(ld, m, what);
}

static int next_event(loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev))
        return parser_error(ld);
    return 0;
}

static int parse_node(loader *ld, yaml_event_t *ev, int depth, mu_yaml_node **out);

static mu_yaml_node *node_new(mu_yaml_kind kind, const yaml_mark_t *m)
{
    mu_yaml_node *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = (int)m->line + 1;
        n->col = (int)m->column + 1;
    }
    return n;
}

/* Parses the children of a mapping or sequence whose start event was consumed. */
static int parse_children(loader *ld, mu_yaml_node *n, int depth)
{
    yaml_event_t ev;
    int end_type = n->kind == MU_YAML_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    for (;;) {
        int rc = next_event(ld, &ev);
        if (rc)
            return rc;
        if ((int)ev.type == end_type) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (n->kind == MU_YAML_SEQ) {
            mu_yaml_node *child = NULL;
            rc = parse_node(ld, &ev, depth + 1, &child);
            yaml_event_delete(&ev);
            if (rc)
                return rc;
            if ((rc = node_push(n, child))) {
                node_free(child);
                return rc;
            }
            continue;
        }
        /* Mapping: a scalar key, then a value. */
        if (ev.type != YAML_SCALAR_EVENT) {
            rc = fail_at(ld, &ev.start_mark, "mapping keys must be plain scalars");
            yaml_event_delete(&ev);
            return rc;
        }
        char *key = strdup((const char *)ev.data.scalar.value);
        yaml_mark_t key_mark = ev.start_mark;
        yaml_event_delete(&ev);
        if (!key)
            return MU_ERR_NOMEM;
        if (mu_yaml_get(n, key)) {
            char what[300];
            snprintf(what, sizeof what, "duplicate key '%.200s'", key);
            free(key);
            return fail_at(ld, &key_mark, what);
        }
        if ((rc = next_event(ld, &ev))) {
            free(key);
            return rc;
        }
        mu_yaml_node *child = NULL;
        rc = parse_node(ld, &ev, depth + 1, &child);
        yaml_event_delete(&ev);
        if (rc) {
            free(key);
            return rc;
        }
        child->key = key;
        child->key_line = (int)key_mark.line + 1;
        child->key_col = (int)key_mark.column + 1;
        if ((rc = node_push(n, child))) {
            node_free(child);
            return rc;
        }
    }
}

static int parse_node(loader *ld, yaml_event_t *ev, int depth, mu_yaml_node **out)
{
    mu_yaml_node *n;
    int rc;
    if (depth > MU_YAML_MAX_DEPTH)
        return fail_at(ld, &ev->start_mark, "nesting is too deep");
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail_at(ld, &ev->start_mark, "aliases are not supported in mutual configs");
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return fail_at(ld, &ev->start_mark, "anchors are not supported in mutual configs");
        n = node_new(MU_YAML_SCALAR, &ev->start_mark);
        if (!n)
            return MU_ERR_NOMEM;
        n->scalar = strdup((const char *)ev->data.scalar.value);
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (!n->scalar) {
            node_free(n);
            return MU_ERR_NOMEM;
        }
        *out = n;
        return 0;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *anchor =
            is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        if (anchor)
            return fail_at(ld, &ev->start_mark, "anchors are not supported in mutual configs");
        n = node_new(is_map ? MU_YAML_MAP : MU_YAML_SEQ, &ev->start_mark);
        if (!n)
            return MU_ERR_NOMEM;
        if ((rc = parse_children(ld, n, depth))) {
            node_free(n);
            return rc;
        }
        *out = n;
        return 0;
    }
    default:
        return fail_at(ld, &ev->start_mark, "unexpected YAML event");
    }
}

mu_yaml_doc *mu_yaml_parse(const char *name, const char *text, size_t len, mu_diag *diag)
{
    loader ld = {.name = name, .diag = diag};
    mu_yaml_doc *doc = calloc(1, sizeof *doc);
    yaml_event_t ev;
    int rc = 0, done = 0;
    if (!doc || !(doc->path = strdup(name))) {
        free(doc);
        mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    if (!yaml_parser_initialize(&ld.parser)) {
        mu_yaml_free(doc);
        mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    int docs = 0;
    while (!rc && !done) {
        if ((rc = next_event(&ld, &ev)))
            break;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = fail_at(&ld, &ev.start_mark, "a config file holds one YAML document");
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            rc = parse_node(&ld, &ev, 0, &doc->root);
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ld.parser);
    if (rc) {
        mu_yaml_free(doc);
        return NULL;
    }
    return doc;
}

mu_yaml_doc *mu_yaml_load(const char *path, mu_diag *diag)
{
    char *buf;
    size_t len;
    if (mu_read_file(path, MU_YAML_MAX_FILE, &buf, &len, diag))
        return NULL;
    mu_yaml_doc *doc = mu_yaml_parse(path, buf, len, diag);
    free(buf);
    return doc;
}

const mu_yaml_node *mu_yaml_get(const mu_yaml_node *map, const char *key)
{
    if (!map || map->kind != MU_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->n_items; i++)
        if (strcmp(map->items[i]->key, key) == 0)
            return map->items[i];
    return NULL;
}

int mu_yaml_error(const mu_yaml_doc *doc, const mu_yaml_node *node, mu_diag *diag, const char *fmt,
                  ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int line = node ? node->line : 1, col = node ? node->col : 1;
    return mu_diag_set(diag, MU_ERR_INVALID, "%s:%d:%d: %s", doc->path, line, col, what);
}

static const char *kind_name(const mu_yaml_node *n)
{
    return n->kind == MU_YAML_MAP ? "a mapping" : n->kind == MU_YAML_SEQ ? "a list" : "a scalar";
}

static const char *label(const mu_yaml_node *n)
{
    return n->key ? n->key : "value";
}

int mu_yaml_check_keys(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *const *allowed,
                       mu_diag *diag)
{
    if (!map)
        return 0;
    if (map->kind != MU_YAML_MAP)
        return mu_yaml_error(doc, map, diag, "%s must be a mapping, not %s", label(map),
                             kind_name(map));
    for (size_t i = 0; i < map->n_items; i++) {
        const mu_yaml_node *it = map->items[i];
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, it->key) == 0)
                ok = 1;
        if (!ok) {
            char list[256] = "";
            size_t used = 0;
            for (const char *const *a = allowed; *a && used < sizeof list - 1; a++) {
                int w =
                    snprintf(list + used, sizeof list - used, "%s%s", a == allowed ? "" : ", ", *a);
                if (w < 0)
                    break;
                used += (size_t)w;
            }
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "%s:%d:%d: unknown key '%.100s' (expected one of: %s)", doc->path,
                               it->key_line, it->key_col, it->key, list);
        }
    }
    return 0;
}

static int want_scalar(const mu_yaml_doc *doc, const mu_yaml_node *node, const char *what,
                       mu_diag *diag)
{
    if (node->kind != MU_YAML_SCALAR)
        return mu_yaml_error(doc, node, diag, "%s must be %s, not %s", label(node), what,
                             kind_name(node));
    return 0;
}

int mu_yaml_as_int(const mu_yaml_doc *doc, const mu_yaml_node *node, long long min, long long max,
                   long long *out, mu_diag *diag)
{
    int rc = want_scalar(doc, node, "an integer", diag);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long long v = strtoll(node->scalar, &end, 0);
    if (node->quoted || end == node->scalar || *end || errno)
        return mu_yaml_error(doc, node, diag, "%s must be an integer, got '%.60s'", label(node),
                             node->scalar);
    if (v < min || v > max)
        return mu_yaml_error(doc, node, diag, "%s must be between %lld and %lld, got %lld",
                             label(node), min, max, v);
    *out = v;
    return 0;
}

int mu_yaml_as_double(const mu_yaml_doc *doc, const mu_yaml_node *node, double min, double max,
                      double *out, mu_diag *diag)
{
    int rc = want_scalar(doc, node, "a number", diag);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    double v = strtod(node->scalar, &end);
    if (node->quoted || end == node->scalar || *end || errno || !isfinite(v))
        return mu_yaml_error(doc, node, diag, "%s must be a finite number, got '%.60s'",
                             label(node), node->scalar);
    if (v < min || v > max)
        return mu_yaml_error(doc, node, diag, "%s must be between %g and %g, got %g", label(node),
                             min, max, v);
    *out = v;
    return 0;
}

int mu_yaml_as_bool(const mu_yaml_doc *doc, const mu_yaml_node *node, int *out, mu_diag *diag)
{
    int rc = want_scalar(doc, node, "true or false", diag);
    if (rc)
        return rc;
    if (!node->quoted && strcmp(node->scalar, "true") == 0)
        *out = 1;
    else if (!node->quoted && strcmp(node->scalar, "false") == 0)
        *out = 0;
    else
        return mu_yaml_error(doc, node, diag, "%s must be true or false, got '%.60s'", label(node),
                             node->scalar);
    return 0;
}

int mu_yaml_as_str(const mu_yaml_doc *doc, const mu_yaml_node *node, const char **out,
                   mu_diag *diag)
{
    int rc = want_scalar(doc, node, "a string", diag);
    if (rc)
        return rc;
    *out = node->scalar;
    return 0;
}

int mu_yaml_as_path(const mu_yaml_doc *doc, const mu_yaml_node *node, char *out, size_t cap,
                    mu_diag *diag)
{
    const char *s;
    int rc = mu_yaml_as_str(doc, node, &s, diag);
    if (rc)
        return rc;
    const char *slash = strrchr(doc->path, '/');
    int dir_len = s[0] == '/' || !s[0] || !slash ? 0 : (int)(slash - doc->path) + 1;
    int n = snprintf(out, cap, "%.*s%s", dir_len, doc->path, s);
    if (n < 0 || (size_t)n >= cap)
        return mu_yaml_error(doc, node, diag, "%s: path is too long (max %zu bytes)", label(node),
                             cap - 1);
    return 0;
}

int mu_yaml_require(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, mu_diag *diag)
{
    if (mu_yaml_get(map, key))
        return 0;
    return mu_yaml_error(doc, map, diag, "missing required key '%s'", key);
}

int mu_yaml_get_int(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, long long min,
                    long long max, long long *out, mu_diag *diag)
{
    const mu_yaml_node *n = mu_yaml_get(map, key);
    return n ? mu_yaml_as_int(doc, n, min, max, out, diag) : 0;
}

int mu_yaml_get_double(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, double min,
                       double max, double *out, mu_diag *diag)
{
    const mu_yaml_node *n = mu_yaml_get(map, key);
    return n ? mu_yaml_as_double(doc, n, min, max, out, diag) : 0;
}

int mu_yaml_get_bool(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, int *out,
                     mu_diag *diag)
{
    const mu_yaml_node *n = mu_yaml_get(map, key);
    return n ? mu_yaml_as_bool(doc, n, out, diag) : 0;
}

int mu_yaml_get_str(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key,
                    const char **out, mu_diag *diag)
{
    const mu_yaml_node *n = mu_yaml_get(map, key);
    return n ? mu_yaml_as_str(doc, n, out, diag) : 0;
}
