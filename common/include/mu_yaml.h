/* mu_yaml.h - YAML config files as a tree of nodes that remember where they came from.
 *
 * Built on libyaml. Every error is reported as "FILE:LINE:COL: what is wrong" in a mu_diag,
 * so a person can find it. Aliases and anchors are refused (they make untrusted configs
 * expensive to expand); duplicate keys in a mapping are refused; nesting is limited to 64.
 *
 * The typed getters check type and range and leave *out untouched when the key is absent,
 * so callers set a default first:  long long port = 7443;
 *                                   if (mu_yaml_get_int(doc, map, "port", 1, 65535, &port, d))
 */
#ifndef MU_YAML_H
#define MU_YAML_H

#include <stddef.h>

#include "mu_err.h"

typedef enum { MU_YAML_SCALAR, MU_YAML_MAP, MU_YAML_SEQ } mu_yaml_kind;

typedef struct mu_yaml_node mu_yaml_node;
struct mu_yaml_node {
    mu_yaml_kind kind;
    int line, col;         /* 1-based position of the node's first character */
    char *key;             /* the key when this node is a mapping value, else NULL */
    int key_line, key_col; /* position of the key */
    char *scalar;          /* the text of a scalar (never NULL for scalars), else NULL */
    int quoted;            /* scalar was written in quotes */
    mu_yaml_node **items;  /* mapping values (each with ->key) or sequence items */
    size_t n_items;
    size_t cap_items_; /* the loader's: room in items */
};

typedef struct {
    char *path;         /* the file name used in messages */
    mu_yaml_node *root; /* NULL for an empty document */
} mu_yaml_doc;

/* Parses the file at `path`. On error returns NULL, fills diag with FILE:LINE:COL, and
 * allocates nothing. The caller owns the result and frees it with mu_yaml_free. */
mu_yaml_doc *mu_yaml_load(const char *path, mu_diag *diag);

/* Parses a string; `name` is used in messages. Same contract as mu_yaml_load. */
mu_yaml_doc *mu_yaml_parse(const char *name, const char *text, size_t len, mu_diag *diag);

void mu_yaml_free(mu_yaml_doc *doc); /* NULL is a no-op */

/* The value for `key` in mapping `map`, or NULL if absent or map is not a mapping. */
const mu_yaml_node *mu_yaml_get(const mu_yaml_node *map, const char *key);

/* Fails with MU_ERR_INVALID and "FILE:LINE:COL: unknown key 'x' (expected one of ...)"
 * when `map` has a key not in the NULL-terminated `allowed` list, or when `map` is not a
 * mapping. */
int mu_yaml_check_keys(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *const *allowed,
                       mu_diag *diag);

/* Typed conversion of one node; MU_ERR_INVALID with FILE:LINE:COL on a type or range error. */
int mu_yaml_as_int(const mu_yaml_doc *doc, const mu_yaml_node *node, long long min, long long max,
                   long long *out, mu_diag *diag);
int mu_yaml_as_double(const mu_yaml_doc *doc, const mu_yaml_node *node, double min, double max,
                      double *out, mu_diag *diag);
int mu_yaml_as_bool(const mu_yaml_doc *doc, const mu_yaml_node *node, int *out, mu_diag *diag);
/* *out points into the document; it lives as long as doc. */
int mu_yaml_as_str(const mu_yaml_doc *doc, const mu_yaml_node *node, const char **out,
                   mu_diag *diag);

/* Look up `key` in `map` and convert it; absent keys return 0 and leave *out untouched.
 * With `required` set, an absent key is an error naming the mapping's position. */
int mu_yaml_get_int(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, long long min,
                    long long max, long long *out, mu_diag *diag);
int mu_yaml_get_double(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, double min,
                       double max, double *out, mu_diag *diag);
int mu_yaml_get_bool(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key, int *out,
                     mu_diag *diag);
int mu_yaml_get_str(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key,
                    const char **out, mu_diag *diag);
/* A string naming a file or folder, resolved against the folder of the document's own file
 * (doc->path): "keys/a" in "configs/org.yaml" is "configs/keys/a". Absolute paths and ""
 * are kept as written; a document parsed from a string without '/' in its name resolves
 * against the current folder. MU_ERR_INVALID with FILE:LINE:COL for a non-string or a
 * result that does not fit in cap. Every path a config names is read through this, so all
 * commands resolve relative paths the same way. */
int mu_yaml_as_path(const mu_yaml_doc *doc, const mu_yaml_node *node, char *out, size_t cap,
                    mu_diag *diag);
int mu_yaml_require(const mu_yaml_doc *doc, const mu_yaml_node *map, const char *key,
                    mu_diag *diag);

/* Formats "FILE:LINE:COL: <message>" for `node` into diag and returns MU_ERR_INVALID. */
int mu_yaml_error(const mu_yaml_doc *doc, const mu_yaml_node *node, mu_diag *diag, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

#endif
