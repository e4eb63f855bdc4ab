/* tr_safetensors.h - the safetensors file format, read and written exactly as published.
 *
 * A file is: an 8-byte little-endian unsigned header length N, then N bytes of JSON (an
 * object; trailing spaces allowed), then the data section. Each JSON key other than
 * "__metadata__" names a tensor: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}
 * with offsets relative to the start of the data section. "__metadata__" is an object of
 * string values. The reader checks that the tensors' byte ranges tile the data section
 * exactly (no holes, no overlaps, nothing after the last one), that every size equals
 * dtype size x product(shape) without overflow, and that there are no duplicate keys.
 *
 * Every dtype name of the format is accepted when parsing; reading values converts F32,
 * F16 and BF16 to float. Any other dtype is refused when read, with an error naming the
 * tensor. Every error sets a one-line "FILE: tensor 'NAME': what is wrong" in the diag.
 *
 * Thread-safety: a tr_st is immutable after opening; concurrent reads are safe. An opened
 * file is mapped, not copied: it must not be truncated while open (the size is checked
 * once, at open).
 */
#ifndef TR_SAFETENSORS_H
#define TR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"
#include "tr_bf16.h"

#define TR_ST_MAX_DIMS     8
#define TR_ST_MAX_HEADER   (100u * 1024u * 1024u) /* as the reference implementation */
#define TR_ST_HEADER_ALIGN 8

typedef enum {
    TR_ST_BOOL,
    TR_ST_U8,
    TR_ST_I8,
    TR_ST_F8_E4M3,
    TR_ST_F8_E5M2,
    TR_ST_I16,
    TR_ST_U16,
    TR_ST_F16,
    TR_ST_BF16,
    TR_ST_I32,
    TR_ST_U32,
    TR_ST_F32,
    TR_ST_F64,
    TR_ST_I64,
    TR_ST_U64,
} tr_st_dtype;

/* The format's name of a dtype ("F32", "BF16", ...). */
const char *tr_st_dtype_name(tr_st_dtype dt);

/* One tensor as described by the header. Pointers live as long as the tr_st. */
typedef struct {
    const char *name;
    tr_st_dtype dtype;
    int ndim;
    int64_t shape[TR_ST_MAX_DIMS];
    size_t numel; /* product of shape (1 for a scalar) */
    size_t begin; /* byte offsets within the data section */
    size_t end;
} tr_st_info;

typedef struct tr_st tr_st;

/* Opens and validates the file at `path` (mapped read-only). On error returns NULL with
 * the diag set: MU_ERR_NOTFOUND / MU_ERR_IO via `err` when the file cannot be opened or
 * read, MU_ERR_FORMAT for malformed contents, MU_ERR_UNSUPPORTED for an unknown dtype or
 * too many dimensions. `err` may be NULL. The caller frees the result with tr_st_free. */
tr_st *tr_st_open(const char *path, int *err, mu_diag *diag);

/* Parses a file image from memory; `name` is used in messages. `buf` is borrowed and must
 * outlive the result. Same contract as tr_st_open. */
tr_st *tr_st_parse(const char *name, const void *buf, size_t len, int *err, mu_diag *diag);

void tr_st_free(tr_st *st); /* NULL is a no-op */

/* The name used in messages (the path for tr_st_open). */
const char *tr_st_name(const tr_st *st);

/* Tensors in the order of their data (begin offset). i < tr_st_count(st). */
size_t tr_st_count(const tr_st *st);
const tr_st_info *tr_st_at(const tr_st *st, size_t i);

/* The tensor called `name`, or NULL. */
const tr_st_info *tr_st_find(const tr_st *st, const char *name);

/* The string value of `key` in "__metadata__", or NULL. */
const char *tr_st_metadata(const tr_st *st, const char *key);

/* Converts the values of tensor `t` to float into out[0..n). n must equal t->numel
 * (else MU_ERR_INVALID). MU_ERR_UNSUPPORTED naming the tensor for a non-float dtype. */
int tr_st_read_f32(const tr_st *st, const tr_st_info *t, float *out, size_t n, mu_diag *diag);

/* Finds `name`, checks its shape equals shape[0..ndim) and reads it as tr_st_read_f32 does.
 * MU_ERR_NOTFOUND "FILE: tensor 'NAME' is missing"; MU_ERR_FORMAT "FILE: tensor 'NAME' has
 * shape [a, b], expected [c, d]". */
int tr_st_load(const tr_st *st, const char *name, int ndim, const int64_t *shape, float *out,
               mu_diag *diag);
/* The same into bf16: BF16 copied bit for bit, F32 and F16 rounded to nearest even
 * (tr_bf16_from_f32). tr_st_read_bf16 is tr_st_read_f32's twin. */
int tr_st_load_bf16(const tr_st *st, const char *name, int ndim, const int64_t *shape,
                    uint16_t *out, mu_diag *diag);
int tr_st_read_bf16(const tr_st *st, const tr_st_info *t, uint16_t *out, size_t n, mu_diag *diag);

/* One tensor to write; data holds product(shape) floats, row-major. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[TR_ST_MAX_DIMS];
    const float *data;
} tr_st_entry;

/* Writes `n` F32 tensors to `path`: keys sorted, data laid out in key order, header padded
 * with spaces to a multiple of 8 bytes. `meta` is NULL or a NULL-terminated list of key,
 * value string pairs stored in "__metadata__". The file is written to PATH.tmp, fsynced
 * and renamed, so `path` is either the old file or the whole new one. Duplicate or empty
 * names, "__metadata__" as a name, or bad shapes are MU_ERR_INVALID; write failures
 * MU_ERR_IO. */
int tr_st_write(const char *path, const tr_st_entry *t, size_t n, const char *const *meta,
                mu_diag *diag);

/* Builds the same file image in memory: *out (malloc'd, caller frees) of *out_len bytes. */
int tr_st_serialize(const tr_st_entry *t, size_t n, const char *const *meta, uint8_t **out,
                    size_t *out_len, mu_diag *diag);

/* IEEE half to float (exact, including subnormals, infinities and NaN); bfloat16's
 * conversions are in tr_bf16.h. */
float tr_f16_to_f32(uint16_t h);

#endif
