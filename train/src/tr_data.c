/* tr_data.c - HDF5 token datasets and the documented data order. */
#include "tr_data.h"

#include <errno.h>
#include <hdf5.h>
#include <sodium.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mu_file.h"
#include "mu_h5.h"
#include "tr_h5.h"

struct tr_data {
    char *path;
    int32_t *tokens; /* (N,) */
    uint8_t *mask;   /* (N,) 1 where the token counts as a target, or NULL: all do */
    int64_t n;
    int vocab;
    char tok_sha[TR_DATA_SHA_HEX]; /* "" when the file names no tokenizer */
};

int64_t tr_data_window(int64_t n, int B, int T, uint64_t s, int i)
{
    unsigned __int128 m = (unsigned __int128)(uint64_t)(n - T);
    unsigned __int128 row = ((unsigned __int128)s * (unsigned)B + (unsigned)i) % m;
    return (int64_t)((row * (unsigned)T) % m);
}

/* vocab_size from /tokens, else from the root group. */
static int read_vocab(hid_t file, hid_t ds, const char *path, int *vocab, mu_diag *diag)
{
    hid_t owner = H5Aexists(ds, "vocab_size") > 0 ? ds : file;
    if (H5Aexists(owner, "vocab_size") <= 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: /tokens has no 'vocab_size' attribute", path);
    hid_t a = H5Aopen(owner, "vocab_size", H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    long long v = 0;
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER &&
             H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0 &&
             v >= 1 && v <= INT32_MAX;
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    if (!ok)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: 'vocab_size' must be one integer from 1 to %d",
                           path, INT32_MAX);
    *vocab = (int)v;
    return 0;
}

/* Checks rank 1 and type int32 / uint16; *n = length. */
static int check_shape_type(hid_t ds, const char *path, int64_t *n, mu_diag *diag)
{
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    int rc = 0;
    hsize_t dims[1];
    if (sp < 0 || t < 0) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: /tokens cannot be read", path);
    } else if (H5Sget_simple_extent_ndims(sp) != 1) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: /tokens must be 1-D, it has %d dimensions", path,
                         H5Sget_simple_extent_ndims(sp));
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        size_t sz = H5Tget_size(t);
        H5T_sign_t sign = H5Tget_sign(t);
        int ok = H5Tget_class(t) == H5T_INTEGER && (sz == 4 || (sz == 2 && sign == H5T_SGN_NONE));
        if (!ok)
            rc = mu_diag_set(diag, MU_ERR_FORMAT,
                             "%s: /tokens must hold int32, uint32 or uint16 integers (found a "
                             "%zu-byte %s)",
                             path, sz, H5Tget_class(t) == H5T_INTEGER ? "integer" : "non-integer");
        else if (dims[0] > (hsize_t)(SIZE_MAX / sizeof(int32_t)) || dims[0] > INT64_MAX)
            rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: /tokens is too long", path);
        *n = (int64_t)dims[0];
    }
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

/* The optional string attribute `name` of ds into out[0..cap) (\"\" when absent). */
static int read_str_attr(hid_t ds, const char *name, char *out, size_t cap, const char *path,
                         mu_diag *diag)
{
    out[0] = '\0';
    if (H5Aexists(ds, name) <= 0)
        return 0;
    hid_t a = H5Aopen(ds, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t mt = H5Tcopy(H5T_C_S1);
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) &&
             H5Tget_size(t) < cap && H5Tset_size(mt, cap) >= 0;
    if (ok) {
        memset(out, 0, cap);
        ok = H5Aread(a, mt, out) >= 0;
        out[cap - 1] = '\0';
    }
    H5Tclose(mt);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0
              : mu_diag_set(diag, MU_ERR_FORMAT,
                            "%s: /tokens attribute '%s' is not a string "
                            "of at most %zu bytes",
                            path, name, cap - 1);
}

/* /mask when present: uint8, as long as /tokens, each 0 or 1. */
static int read_mask(tr_data *d, hid_t file, mu_diag *diag)
{
    if (H5Lexists(file, "mask", H5P_DEFAULT) <= 0)
        return 0;
    hid_t ds = H5Dopen2(file, "mask", H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1, t = ds >= 0 ? H5Dget_type(ds) : -1;
    hsize_t dims[1] = {0};
    int ok = sp >= 0 && t >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
             H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1;
    if (ok)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    ok = ok && (int64_t)dims[0] == d->n;
    if (ok && !(d->mask = malloc(d->n ? (size_t)d->n : 1)))
        ok = 0;
    ok =
        ok && (!d->n || H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->mask) >= 0);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    if (!ok)
        return mu_diag_set(diag, MU_ERR_FORMAT,
                           "%s: /mask must be 1-D uint8 with one entry per token (%lld)", d->path,
                           (long long)d->n);
    for (int64_t k = 0; k < d->n; k++)
        if (d->mask[k] > 1)
            return mu_diag_set(diag, MU_ERR_FORMAT, "%s: /mask[%lld] = %d is not 0 or 1", d->path,
                               (long long)k, d->mask[k]);
    return 0;
}

static int read_tokens(tr_data *d, hid_t file, mu_diag *diag)
{
    if (H5Lexists(file, "tokens", H5P_DEFAULT) <= 0)
        return mu_diag_set(diag, MU_ERR_NOTFOUND, "%s: no dataset /tokens", d->path);
    hid_t ds = H5Dopen2(file, "tokens", H5P_DEFAULT);
    if (ds < 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: /tokens is not a dataset", d->path);
    int rc = check_shape_type(ds, d->path, &d->n, diag);
    if (!rc)
        rc = read_vocab(file, ds, d->path, &d->vocab, diag);
    if (!rc)
        rc = read_str_attr(ds, "tokenizer_sha256", d->tok_sha, sizeof d->tok_sha, d->path, diag);
    if (!rc && !(d->tokens = malloc(d->n ? (size_t)d->n * sizeof(int32_t) : 1)))
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory for %lld tokens", d->path,
                         (long long)d->n);
    if (!rc && d->n && H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->tokens) < 0)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: reading /tokens failed", d->path);
    H5Dclose(ds);
    for (int64_t k = 0; !rc && k < d->n; k++)
        if (d->tokens[k] < 0 || d->tokens[k] >= d->vocab)
            rc = mu_diag_set(diag, MU_ERR_FORMAT,
                             "%s: /tokens[%lld] = %d is not below vocab_size %d", d->path,
                             (long long)k, d->tokens[k], d->vocab);
    return rc ? rc : read_mask(d, file, diag);
}

tr_data *tr_data_open(const char *path, int *err, mu_diag *diag)
{
    int rc;
    tr_data *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (access(path, R_OK)) {
        rc = mu_diag_set(diag, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                         strerror(errno));
        goto out_free;
    }
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t file = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (file < 0) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: not an HDF5 file", path);
    } else {
        rc = read_tokens(d, file, diag);
        H5Fclose(file);
    }
    tr_h5_quiet_end(&q);
    if (!rc)
        goto out;
out_free:
    tr_data_free(d);
    d = NULL;
out:
    if (err)
        *err = rc;
    return d;
}

void tr_data_free(tr_data *d)
{
    if (!d)
        return;
    free(d->tokens);
    free(d->mask);
    free(d->path);
    free(d);
}

int64_t tr_data_len(const tr_data *d)
{
    return d->n;
}

int tr_data_vocab(const tr_data *d)
{
    return d->vocab;
}

const int32_t *tr_data_tokens(const tr_data *d)
{
    return d->tokens;
}

const char *tr_data_path(const tr_data *d)
{
    return d->path;
}

const uint8_t *tr_data_mask(const tr_data *d)
{
    return d->mask;
}

const char *tr_data_tokenizer_sha256(const tr_data *d)
{
    return d->tok_sha[0] ? d->tok_sha : NULL;
}

int tr_data_tokenizer_hash(const char *path, char hex[TR_DATA_SHA_HEX], mu_diag *diag)
{
    struct stat st;
    char file[4200];
    int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    snprintf(file, sizeof file, dir ? "%s/tokenizer.json" : "%s", path);
    char *text;
    size_t len;
    int rc = mu_read_file(file, 1u << 30, &text, &len, diag);
    if (rc)
        return rc;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)text, len);
    free(text);
    sodium_bin2hex(hex, TR_DATA_SHA_HEX, h, sizeof h);
    return MU_OK;
}

int tr_data_check_model(const tr_data *d, const char *model_dir, int model_vocab, mu_diag *diag)
{
    if (d->vocab > model_vocab)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%s: vocab_size %d exceeds the model's %d (%s/config.json): token ids "
                           "would be out of range",
                           d->path, d->vocab, model_vocab, model_dir);
    if (!d->tok_sha[0])
        return MU_OK; /* no tokenizer recorded (byte-level or older files) */
    char hex[TR_DATA_SHA_HEX];
    mu_diag inner = {{0}};
    if (tr_data_tokenizer_hash(model_dir, hex, &inner) != MU_OK)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%s: was tokenized with tokenizer.json sha256 %.16s..., and the model "
                           "in %s has no tokenizer.json to check it against (%s)",
                           d->path, d->tok_sha, model_dir, inner.msg);
    if (strcmp(hex, d->tok_sha) != 0)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%s: was tokenized with another tokenizer (tokenizer.json sha256 "
                           "%.16s...) than the model in %s has (%.16s...): re-import it with "
                           "--tokenizer %s",
                           d->path, d->tok_sha, model_dir, hex, model_dir);
    return MU_OK;
}

/* targets[0..T) = tokens[at ..], TR_DATA_IGNORE where the mask leaves a token out. */
static void mask_targets(const tr_data *d, int32_t *targets, int64_t at, int T)
{
    memcpy(targets, d->tokens + at, (size_t)T * sizeof(int32_t));
    if (d->mask)
        for (int t = 0; t < T; t++)
            if (!d->mask[at + t])
                targets[t] = TR_DATA_IGNORE;
}

int tr_data_batch(const tr_data *d, uint64_t s, int B, int T, int32_t *inputs, int32_t *targets,
                  mu_diag *diag)
{
    if (B < 1 || T < 1)
        return mu_diag_set(diag, MU_ERR_INVALID, "%s: batch %d and sequence length %d must be >= 1",
                           d->path, B, T);
    if (d->n <= T)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%s: %lld tokens, too few for sequence length %d (need at least %d)",
                           d->path, (long long)d->n, T, T + 1);
    for (int i = 0; i < B; i++) {
        int64_t p = tr_data_window(d->n, B, T, s, i);
        memcpy(inputs + (size_t)i * T, d->tokens + p, (size_t)T * sizeof(int32_t));
        mask_targets(d, targets + (size_t)i * T, p + 1, T);
    }
    return 0;
}

int64_t tr_data_records(const tr_data *d, int T)
{
    return T >= 1 ? d->n / ((int64_t)T + 1) : 0;
}

int tr_data_gather(const tr_data *d, const int64_t *idx, int B, int T, int32_t *inputs,
                   int32_t *targets, mu_diag *diag)
{
    int64_t R = tr_data_records(d, T);
    if (T < 1 || R < 1)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%s: %lld tokens, too few for one record of sequence length %d", d->path,
                           (long long)d->n, T);
    for (int i = 0; i < B; i++) {
        if (idx[i] < 0 || idx[i] >= R)
            return mu_diag_set(diag, MU_ERR_INVALID, "%s: record %lld is not in [0, %lld)", d->path,
                               (long long)idx[i], (long long)R);
        const int32_t *w = d->tokens + idx[i] * ((int64_t)T + 1);
        memcpy(inputs + (size_t)i * T, w, (size_t)T * sizeof(int32_t));
        mask_targets(d, targets + (size_t)i * T, idx[i] * ((int64_t)T + 1) + 1, T);
    }
    return MU_OK;
}

/* A string attribute on ds, written only when given. */
static int write_str_attr(hid_t ds, const char *name, const char *v)
{
    if (!v || !*v)
        return 1;
    hid_t t = H5Tcopy(H5T_C_S1);
    hid_t sp = H5Screate(H5S_SCALAR);
    int ok = t >= 0 && sp >= 0 && H5Tset_size(t, strlen(v)) >= 0;
    hid_t a = ok ? H5Acreate2(ds, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    return ok;
}

/* /mask (uint8), when given. */
static int write_mask(hid_t f, const uint8_t *mask, int64_t n)
{
    if (!mask)
        return 1;
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(f, "mask", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = ds >= 0 &&
             (n == 0 || H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, mask) >= 0);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
    return ok;
}

/* Builds the dataset in memory and writes it to `path` (see mu_h5.h for why in memory). */
static int write_h5(const char *path, const tr_data_out *o, mu_diag *diag)
{
    hid_t f = mu_h5_create_mem(path, 0);
    if (f < 0)
        return mu_diag_set(diag, MU_ERR_IO, "%s: cannot create the HDF5 file in memory", path);
    hsize_t dims[1] = {(hsize_t)o->n};
    hid_t sp = H5Screate_simple(1, dims, NULL), asp = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(f, "tokens", o->vocab_size <= 65536 ? H5T_STD_U16LE : H5T_STD_U32LE, sp,
                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t a =
        ds >= 0 ? H5Acreate2(ds, "vocab_size", H5T_STD_I64LE, asp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    long long v = o->vocab_size;
    int ok = ds >= 0 && a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0 &&
             write_str_attr(ds, "sources", o->sources) &&
             write_str_attr(ds, "tokenizer_sha256", o->tokenizer_sha256) &&
             (o->n == 0 ||
              H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, o->tokens) >= 0) &&
             write_mask(f, o->mask, o->n);
    if (a >= 0)
        H5Aclose(a);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(asp);
    H5Sclose(sp);
    if (!ok) {
        H5Fclose(f); /* in memory: nothing reached the disk */
        return mu_diag_set(diag, MU_ERR_IO, "%s: building /tokens failed", path);
    }
    return mu_h5_commit(f, path, diag);
}

int tr_data_write(const char *path, const int32_t *tokens, int64_t n, int vocab_size, mu_diag *diag)
{
    return tr_data_write_sources(path, tokens, n, vocab_size, NULL, diag);
}

int tr_data_write_sources(const char *path, const int32_t *tokens, int64_t n, int vocab_size,
                          const char *sources, mu_diag *diag)
{
    tr_data_out o = {.tokens = tokens, .n = n, .vocab_size = vocab_size, .sources = sources};
    return tr_data_write_out(path, &o, diag);
}

int tr_data_write_out(const char *path, const tr_data_out *o, mu_diag *diag)
{
    if (o->vocab_size < 1 || o->n < 0)
        return mu_diag_set(diag, MU_ERR_INVALID, "%s: bad vocab_size %d or length", path,
                           o->vocab_size);
    for (int64_t k = 0; k < o->n; k++)
        if (o->tokens[k] < 0 || o->tokens[k] >= o->vocab_size)
            return mu_diag_set(diag, MU_ERR_INVALID, "%s: token %lld = %d is not below %d", path,
                               (long long)k, o->tokens[k], o->vocab_size);
    for (int64_t k = 0; o->mask && k < o->n; k++)
        if (o->mask[k] > 1)
            return mu_diag_set(diag, MU_ERR_INVALID, "%s: mask %lld = %d is not 0 or 1", path,
                               (long long)k, o->mask[k]);
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    int rc = write_h5(path, o, diag);
    tr_h5_quiet_end(&q);
    return rc;
}
