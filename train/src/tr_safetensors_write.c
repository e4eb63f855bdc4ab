/* tr_safetensors_write.c - the safetensors writer. */
#include "tr_safetensors.h"

#include "mu_bytes.h"
#include "mu_file.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_entry_names(const void *a, const void *b)
{
    const tr_st_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int entry_bytes(const tr_st_entry *e, size_t *bytes, mu_diag *d)
{
    if (!e->name || !*e->name || !strcmp(e->name, "__metadata__"))
        return mu_diag_set(d, MU_ERR_INVALID, "safetensors: invalid tensor name '%s'",
                           e->name ? e->name : "(null)");
    if (e->ndim < 0 || e->ndim > TR_ST_MAX_DIMS)
        return mu_diag_set(d, MU_ERR_INVALID, "safetensors: tensor '%s': %d dimensions", e->name,
                           e->ndim);
    size_t n = 1;
    for (int i = 0; i < e->ndim; i++) {
        if (e->shape[i] < 0 || (uint64_t)e->shape[i] > SIZE_MAX)
            return mu_diag_set(d, MU_ERR_INVALID, "safetensors: tensor '%s': negative dimension",
                               e->name);
        size_t dim = (size_t)e->shape[i];
        if (dim && n > SIZE_MAX / 4 / dim)
            return mu_diag_set(d, MU_ERR_INVALID, "safetensors: tensor '%s': shape overflows",
                               e->name);
        n *= dim;
    }
    if (n && !e->data)
        return mu_diag_set(d, MU_ERR_INVALID, "safetensors: tensor '%s' has no data", e->name);
    *bytes = n * 4;
    return 0;
}

/* The header object, with data offsets assigned in sorted-name order. */
static json_t *build_header(const tr_st_entry **s, size_t n, const char *const *meta,
                            size_t *data_len, mu_diag *d)
{
    json_t *root = json_object();
    size_t off = 0;
    for (size_t i = 0; root && i < n; i++) {
        size_t bytes;
        if (entry_bytes(s[i], &bytes, d))
            goto out_free;
        if (i && !strcmp(s[i]->name, s[i - 1]->name)) {
            mu_diag_set(d, MU_ERR_INVALID, "safetensors: tensor '%s' given twice", s[i]->name);
            goto out_free;
        }
        json_t *shape = json_array();
        for (int k = 0; shape && k < s[i]->ndim; k++)
            json_array_append_new(shape, json_integer(s[i]->shape[k]));
        json_t *t = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + bytes));
        if (!t || json_object_set_new(root, s[i]->name, t)) {
            mu_diag_set(d, MU_ERR_INVALID, "safetensors: tensor name '%s' is not UTF-8",
                        s[i]->name);
            goto out_free;
        }
        off += bytes;
    }
    if (root && meta) {
        json_t *m = json_object();
        for (size_t i = 0; m && meta[i] && meta[i + 1]; i += 2)
            json_object_set_new(m, meta[i], json_string(meta[i + 1]));
        json_object_set_new(root, "__metadata__", m);
    }
    *data_len = off;
    return root;
out_free:
    json_decref(root);
    return NULL;
}

int tr_st_serialize(const tr_st_entry *t, size_t n, const char *const *meta, uint8_t **out,
                    size_t *out_len, mu_diag *diag)
{
    int rc = MU_ERR_NOMEM;
    const tr_st_entry **s = malloc((n ? n : 1) * sizeof *s);
    char *hdr = NULL;
    json_t *root = NULL;
    if (!s)
        return mu_diag_set(diag, MU_ERR_NOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < n; i++)
        s[i] = &t[i];
    qsort(s, n, sizeof *s, cmp_entry_names);
    size_t data_len;
    root = build_header(s, n, meta, &data_len, diag);
    if (!root) {
        rc = MU_ERR_INVALID;
        goto out_free;
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!hdr)
        goto out_nomem;
    size_t hl = strlen(hdr),
           padded = (hl + TR_ST_HEADER_ALIGN - 1) / TR_ST_HEADER_ALIGN * TR_ST_HEADER_ALIGN;
    uint8_t *buf = malloc(8 + padded + data_len);
    if (!buf)
        goto out_nomem;
    mu_put_le64(buf, (uint64_t)padded);
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    uint8_t *p = buf + 8 + padded;
    for (size_t i = 0; i < n; i++) {
        size_t bytes;
        entry_bytes(s[i], &bytes, NULL);
        if (bytes)
            memcpy(p, s[i]->data, bytes);
        p += bytes;
    }
    *out = buf;
    *out_len = 8 + padded + data_len;
    rc = 0;
    goto out_free;
out_nomem:
    rc = mu_diag_set(diag, MU_ERR_NOMEM, "safetensors: out of memory");
out_free:
    free(hdr);
    json_decref(root);
    free(s);
    return rc;
}

int tr_st_write(const char *path, const tr_st_entry *t, size_t n, const char *const *meta,
                mu_diag *diag)
{
    uint8_t *buf;
    size_t len;
    int rc = tr_st_serialize(t, n, meta, &buf, &len, diag);
    if (rc) {
        if (diag) {
            char tmp[sizeof diag->msg];
            snprintf(tmp, sizeof tmp, "%s", diag->msg);
            mu_diag_set(diag, rc, "%s: %s", path, tmp);
        }
        return rc;
    }
    rc = mu_write_file_atomic(path, buf, len, diag);
    free(buf);
    return rc;
}
