/* tr_safetensors.c - safetensors reader (mmap + validated header) and writer. */
#include "tr_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mu_bytes.h"
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tr_safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

struct tr_st {
    char *name;
    json_t *root;        /* the parsed header; tensor names and metadata point into it */
    const uint8_t *data; /* the data section */
    size_t data_len;
    void *map; /* the mapping when opened from a file */
    size_t map_len;
    tr_st_info *t; /* sorted by begin offset */
    size_t n;
    json_t *meta; /* "__metadata__" or NULL */
};

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [TR_ST_BOOL] = {"BOOL", 1},       [TR_ST_U8] = {"U8", 1},           [TR_ST_I8] = {"I8", 1},
    [TR_ST_F8_E4M3] = {"F8_E4M3", 1}, [TR_ST_F8_E5M2] = {"F8_E5M2", 1}, [TR_ST_I16] = {"I16", 2},
    [TR_ST_U16] = {"U16", 2},         [TR_ST_F16] = {"F16", 2},         [TR_ST_BF16] = {"BF16", 2},
    [TR_ST_I32] = {"I32", 4},         [TR_ST_U32] = {"U32", 4},         [TR_ST_F32] = {"F32", 4},
    [TR_ST_F64] = {"F64", 8},         [TR_ST_I64] = {"I64", 8},         [TR_ST_U64] = {"U64", 8},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *tr_st_dtype_name(tr_st_dtype dt)
{
    return (size_t)dt < N_DTYPES ? dtypes[dt].name : "?";
}

float tr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24); /* zero or subnormal, exact */
        return sign ? -v : v;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int parse_dtype(const char *s, tr_st_dtype *out)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, dtypes[i].name)) {
            *out = (tr_st_dtype)i;
            return 0;
        }
    return -1;
}

/* Non-negative JSON integer that fits size_t. */
static int get_size(const json_t *v, size_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    unsigned long long u = (unsigned long long)json_integer_value(v);
    if (u > SIZE_MAX)
        return -1;
    *out = (size_t)u;
    return 0;
}

static int parse_shape(const tr_st *st, const char *key, const json_t *shape, tr_st_info *t,
                       mu_diag *d)
{
    if (!json_is_array(shape))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array", st->name,
                           key);
    size_t nd = json_array_size(shape);
    if (nd > TR_ST_MAX_DIMS)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)",
                           st->name, key, nd, TR_ST_MAX_DIMS);
    t->ndim = (int)nd;
    t->numel = 1;
    for (size_t i = 0; i < nd; i++) {
        size_t dim;
        if (get_size(json_array_get(shape, i), &dim) || dim > INT64_MAX)
            return mu_diag_set(d, MU_ERR_FORMAT,
                               "%s: tensor '%s': shape entry %zu is not a non-negative integer",
                               st->name, key, i);
        t->shape[i] = (int64_t)dim;
        if (dim != 0 && t->numel > SIZE_MAX / dim)
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: tensor '%s': shape overflows", st->name, key);
        t->numel *= dim;
    }
    return 0;
}

static int parse_tensor(const tr_st *st, const char *key, const json_t *v, tr_st_info *t,
                        mu_diag *d)
{
    t->name = key;
    if (!json_is_object(v))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: tensor '%s': entry is not an object", st->name,
                           key);
    const json_t *dt = json_object_get(v, "dtype");
    const json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: tensor '%s': \"dtype\" missing or not a string",
                           st->name, key);
    if (parse_dtype(json_string_value(dt), &t->dtype))
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'",
                           st->name, key, json_string_value(dt));
    int rc = parse_shape(st, key, json_object_get(v, "shape"), t, d);
    if (rc)
        return rc;
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        get_size(json_array_get(off, 0), &t->begin) || get_size(json_array_get(off, 1), &t->end))
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: tensor '%s': \"data_offsets\" is not two non-negative integers",
                           st->name, key);
    size_t esz = dtypes[t->dtype].size;
    if (t->end < t->begin)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] end first",
                           st->name, key, t->begin, t->end);
    if (t->numel > SIZE_MAX / esz || t->end - t->begin != t->numel * esz)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%zu, %zu] hold %zu bytes, but %s x %zu "
                           "elements need %zu",
                           st->name, key, t->begin, t->end, t->end - t->begin,
                           dtypes[t->dtype].name, t->numel,
                           t->numel > SIZE_MAX / esz ? SIZE_MAX : t->numel * esz);
    if (t->end > st->data_len)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%zu, %zu] run past the end of the "
                           "data (%zu bytes; file truncated?)",
                           st->name, key, t->begin, t->end, st->data_len);
    return 0;
}

static int cmp_offsets(const void *a, const void *b)
{
    const tr_st_info *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The byte ranges must cover [0, data_len) exactly, in order, without overlap. */
static int check_tiling(const tr_st *st, mu_diag *d)
{
    size_t pos = 0;
    for (size_t i = 0; i < st->n; i++) {
        const tr_st_info *t = &st->t[i];
        if (t->begin > pos)
            return mu_diag_set(d, MU_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets start at %zu, leaving a hole after "
                               "byte %zu",
                               st->name, t->name, t->begin, pos);
        if (t->begin < pos)
            return mu_diag_set(d, MU_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets [%zu, %zu] overlap the previous "
                               "tensor (ends at %zu)",
                               st->name, t->name, t->begin, t->end, pos);
        pos = t->end;
    }
    if (pos != st->data_len)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: data section has %zu bytes but the tensors cover %zu", st->name,
                           st->data_len, pos);
    return 0;
}

static int check_metadata(const tr_st *st, const json_t *meta, mu_diag *d)
{
    const char *k;
    json_t *v;
    if (!json_is_object(meta))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: \"__metadata__\" is not an object", st->name);
    json_object_foreach((json_t *)meta, k, v)
    {
        if (!json_is_string(v))
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: \"__metadata__\" value '%s' is not a string",
                               st->name, k);
    }
    return 0;
}

static int parse_header(tr_st *st, const uint8_t *buf, size_t len, mu_diag *d)
{
    if (len < 8)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: truncated: %zu bytes, shorter than the 8-byte header length",
                           st->name, len);
    uint64_t hlen = mu_le64(buf);
    if (hlen > TR_ST_MAX_HEADER)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: header length %llu exceeds the limit of %u",
                           st->name, (unsigned long long)hlen, TR_ST_MAX_HEADER);
    if (hlen > len - 8)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: truncated: header length is %llu but only %zu bytes follow",
                           st->name, (unsigned long long)hlen, len - 8);
    if (hlen == 0 || buf[8] != '{')
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: header does not start with '{'", st->name);
    st->data = buf + 8 + hlen;
    st->data_len = len - 8 - (size_t)hlen;
    json_error_t jerr;
    st->root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!st->root)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: header JSON: %s (byte %d)", st->name, jerr.text,
                           jerr.position);
    if (!json_is_object(st->root))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: header is not a JSON object", st->name);
    return 0;
}

static int parse_tensors(tr_st *st, mu_diag *d)
{
    size_t cap = json_object_size(st->root);
    st->t = calloc(cap ? cap : 1, sizeof *st->t);
    if (!st->t)
        return mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", st->name);
    const char *k;
    json_t *v;
    json_object_foreach(st->root, k, v)
    {
        if (!strcmp(k, "__metadata__")) {
            int rc = check_metadata(st, v, d);
            if (rc)
                return rc;
            st->meta = v;
            continue;
        }
        int rc = parse_tensor(st, k, v, &st->t[st->n], d);
        if (rc)
            return rc;
        st->n++;
    }
    qsort(st->t, st->n, sizeof *st->t, cmp_offsets);
    return check_tiling(st, d);
}

tr_st *tr_st_parse(const char *name, const void *buf, size_t len, int *err, mu_diag *diag)
{
    int rc;
    tr_st *st = calloc(1, sizeof *st);
    if (!st || !(st->name = strdup(name ? name : "safetensors"))) {
        free(st);
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", name ? name : "safetensors");
        goto out_err;
    }
    rc = parse_header(st, buf, len, diag);
    if (!rc)
        rc = parse_tensors(st, diag);
    if (rc) {
        tr_st_free(st);
        goto out_err;
    }
    if (err)
        *err = 0;
    return st;
out_err:
    if (err)
        *err = rc;
    return NULL;
}

tr_st *tr_st_open(const char *path, int *err, mu_diag *diag)
{
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = mu_diag_set(diag, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                         strerror(errno));
        goto out_err;
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: not a regular file", path);
        goto out_close;
    }
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT,
                         "%s: truncated: %zu bytes, shorter than the 8-byte header length", path,
                         len);
        goto out_close;
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        goto out_close;
    }
    close(fd);
    tr_st *st = tr_st_parse(path, map, len, &rc, diag);
    if (!st) {
        munmap(map, len);
        goto out_err;
    }
    st->map = map;
    st->map_len = len;
    if (err)
        *err = 0;
    return st;
out_close:
    close(fd);
out_err:
    if (err)
        *err = rc;
    return NULL;
}

void tr_st_free(tr_st *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_len);
    json_decref(st->root);
    free(st->t);
    free(st->name);
    free(st);
}

const char *tr_st_name(const tr_st *st)
{
    return st->name;
}

size_t tr_st_count(const tr_st *st)
{
    return st->n;
}

const tr_st_info *tr_st_at(const tr_st *st, size_t i)
{
    return i < st->n ? &st->t[i] : NULL;
}

const tr_st_info *tr_st_find(const tr_st *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->t[i].name, name))
            return &st->t[i];
    return NULL;
}

const char *tr_st_metadata(const tr_st *st, const char *key)
{
    return st->meta ? json_string_value(json_object_get(st->meta, key)) : NULL;
}

static int wrong_count(const tr_st *st, const tr_st_info *t, size_t n, mu_diag *diag)
{
    return mu_diag_set(diag, MU_ERR_INVALID,
                       "%s: tensor '%s' has %zu elements, caller expected %zu", st->name, t->name,
                       t->numel, n);
}

static int unsupported(const tr_st *st, const tr_st_info *t, mu_diag *diag)
{
    return mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported",
                       st->name, t->name, dtypes[t->dtype].name);
}

int tr_st_read_f32(const tr_st *st, const tr_st_info *t, float *out, size_t n, mu_diag *diag)
{
    if (n != t->numel)
        return wrong_count(st, t, n, diag);
    const uint8_t *p = st->data + t->begin;
    switch (t->dtype) {
    case TR_ST_F32:
        if (n)
            memcpy(out, p, n * sizeof(float));
        return 0;
    case TR_ST_F16:
    case TR_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = mu_le16(p + 2 * i);
            out[i] = t->dtype == TR_ST_F16 ? tr_f16_to_f32(h) : tr_bf16_to_f32(h);
        }
        return 0;
    default:
        return unsupported(st, t, diag);
    }
}

int tr_st_read_bf16(const tr_st *st, const tr_st_info *t, uint16_t *out, size_t n, mu_diag *diag)
{
    if (n != t->numel)
        return wrong_count(st, t, n, diag);
    const uint8_t *p = st->data + t->begin;
    switch (t->dtype) {
    case TR_ST_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = mu_le16(p + 2 * i);
        return 0;
    case TR_ST_F16: /* f16 has 3 more mantissa bits than bf16 and a range inside it */
        for (size_t i = 0; i < n; i++)
            out[i] = tr_bf16_from_f32(tr_f16_to_f32(mu_le16(p + 2 * i)));
        return 0;
    case TR_ST_F32:
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, p + 4 * i, sizeof f);
            out[i] = tr_bf16_from_f32(f);
        }
        return 0;
    default:
        return unsupported(st, t, diag);
    }
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

/* The tensor `name` checked against ndim/shape; NULL (diag set, *rc) if absent or shaped
 * otherwise. */
static const tr_st_info *find_shaped(const tr_st *st, const char *name, int ndim,
                                     const int64_t *shape, int *rc, mu_diag *diag)
{
    const tr_st_info *t = tr_st_find(st, name);
    if (!t) {
        *rc = mu_diag_set(diag, MU_ERR_NOTFOUND, "%s: tensor '%s' is missing", st->name, name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char have[128], want[128];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        *rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s",
                          st->name, name, have, want);
        return NULL;
    }
    return t;
}

int tr_st_load(const tr_st *st, const char *name, int ndim, const int64_t *shape, float *out,
               mu_diag *diag)
{
    int rc = 0;
    const tr_st_info *t = find_shaped(st, name, ndim, shape, &rc, diag);
    return t ? tr_st_read_f32(st, t, out, t->numel, diag) : rc;
}

int tr_st_load_bf16(const tr_st *st, const char *name, int ndim, const int64_t *shape,
                    uint16_t *out, mu_diag *diag)
{
    int rc = 0;
    const tr_st_info *t = find_shaped(st, name, ndim, shape, &rc, diag);
    return t ? tr_st_read_bf16(st, t, out, t->numel, diag) : rc;
}
