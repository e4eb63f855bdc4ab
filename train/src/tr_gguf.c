/* tr_gguf.c - the GGUF file layout: key-value section, tensor infos, aligned data. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mu_bytes.h"
#include "mu_file.h"
#include "mu_grow.h"
#include "tr_gguf_internal.h"

void tr_gb_free(tr_gbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put(tr_gbuf *b, const void *src, size_t n)
{
    if (b->err || (b->err = MU_GROW(&b->p, &b->cap, b->len + n, 1 << 16)))
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void tr_gb_u32(tr_gbuf *b, uint32_t v)
{
    uint8_t x[4];
    mu_put_le32(x, v);
    put(b, x, 4);
}

static void gb_u64(tr_gbuf *b, uint64_t v)
{
    uint8_t x[8];
    mu_put_le64(x, v);
    put(b, x, 8);
}

void tr_gb_f32(tr_gbuf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    tr_gb_u32(b, u);
}

void tr_gb_str(tr_gbuf *b, const char *s, size_t n)
{
    gb_u64(b, n);
    put(b, s, n);
}

static void key(tr_gbuf *b, const char *k, uint32_t type)
{
    tr_gb_str(b, k, strlen(k));
    tr_gb_u32(b, type);
    b->n_kv++;
}

void tr_gb_kv_u32(tr_gbuf *b, const char *k, uint32_t v)
{
    key(b, k, TR_GV_UINT32);
    tr_gb_u32(b, v);
}

void tr_gb_kv_f32(tr_gbuf *b, const char *k, float v)
{
    key(b, k, TR_GV_FLOAT32);
    tr_gb_f32(b, v);
}

void tr_gb_kv_bool(tr_gbuf *b, const char *k, int v)
{
    uint8_t x = v ? 1 : 0;
    key(b, k, TR_GV_BOOL);
    put(b, &x, 1);
}

void tr_gb_kv_str(tr_gbuf *b, const char *k, const char *v)
{
    key(b, k, TR_GV_STRING);
    tr_gb_str(b, v, strlen(v));
}

void tr_gb_kv_array(tr_gbuf *b, const char *k, uint32_t type, uint64_t n)
{
    key(b, k, TR_GV_ARRAY);
    tr_gb_u32(b, type);
    gb_u64(b, n);
}

uint16_t tr_gguf_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u, abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: keep it a (quiet) NaN */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) /* rounds to 65520 or more: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below 2^-14: a subnormal half (or zero) */
        /* abs as a multiple of 2^-24, rounded to nearest even */
        float f;
        memcpy(&f, &abs, 4);
        float q = f * 16777216.0f; /* exact: a power of two */
        float fl = floorf(q), rem = q - fl;
        uint32_t m = (uint32_t)fl;
        if (rem > 0.5f || (rem == 0.5f && (m & 1)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = (abs >> 23) - 112, mant = abs & 0x7fffffu;
    uint32_t h = (e << 10) | (mant >> 13), low = mant & 0x1fffu;
    if (low > 0x1000u || (low == 0x1000u && (h & 1)))
        h++; /* a carry into the exponent is the right result */
    return (uint16_t)(sign | h);
}

void tr_gguf_permute_rows(float *dst, const float *src, int n_head, int hd, int64_t cols)
{
    int half = hd / 2;
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((int64_t)h * hd + 2 * i + j) * cols,
                       src + ((int64_t)h * hd + j * half + i) * cols, (size_t)cols * sizeof *dst);
}

static int64_t elem_size(tr_gguf_type t)
{
    return t == TR_GGUF_F16 ? 2 : 4;
}

static uint64_t pad_to(uint64_t x)
{
    return (x + TR_GGUF_ALIGNMENT - 1) / TR_GGUF_ALIGNMENT * TR_GGUF_ALIGNMENT;
}

static int check_tensor(const tr_gten *t, mu_diag *d)
{
    size_t nl = strnlen(t->name, sizeof t->name);
    if (nl == 0 || nl >= sizeof t->name || (t->ndim != 1 && t->ndim != 2) || t->ne[0] <= 0 ||
        (t->ndim == 2 && t->ne[1] <= 0) || !t->src ||
        (t->type != TR_GGUF_F32 && t->type != TR_GGUF_F16))
        return mu_diag_set(d, MU_ERR_INVALID, "gguf: bad tensor description '%.*s'", (int)nl,
                           t->name);
    if (t->transpose && t->ndim != 2)
        return mu_diag_set(d, MU_ERR_INVALID, "gguf: tensor '%s': only a 2-D tensor is transposed",
                           t->name);
    if (t->perm_heads && (t->hd <= 0 || t->hd % 2 || (int64_t)t->perm_heads * t->hd != t->ne[1]))
        return mu_diag_set(d, MU_ERR_INVALID, "gguf: tensor '%s': %d heads of %d rows, not %lld",
                           t->name, t->perm_heads, t->hd, (long long)t->ne[1]);
    return 0;
}

/* The tensor's values after the merge and the permutation, in a malloc'd array (*owned set),
 * or t->src itself when neither applies. */
static int tensor_values(const tr_gten *t, const float **out, float **owned, mu_diag *d)
{
    int64_t cols = t->ne[0], rows = t->ndim == 2 ? t->ne[1] : 1, n = rows * cols;
    *owned = NULL;
    *out = t->src;
    if (!t->A && !t->perm_heads && !t->transpose)
        return 0;
    float *w = malloc((size_t)n * sizeof *w), *acc = malloc((size_t)cols * sizeof *acc);
    float *p = t->perm_heads ? malloc((size_t)n * sizeof *p) : NULL;
    if (!w || !acc || (t->perm_heads && !p)) {
        free(w);
        free(acc);
        free(p);
        return mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory for tensor '%s'", t->name);
    }
    if (t->transpose)
        for (int64_t o = 0; o < rows; o++)
            for (int64_t i = 0; i < cols; i++)
                w[o * cols + i] = t->src[i * rows + o];
    else
        memcpy(w, t->src, (size_t)n * sizeof *w);
    for (int64_t o = 0; t->A && o < rows; o++) {
        memset(acc, 0, (size_t)cols * sizeof *acc);
        for (int k = 0; k < t->r; k++) {
            float b = t->B[o * t->r + k];
            const float *a = t->A + (int64_t)k * cols;
            for (int64_t i = 0; i < cols; i++)
                acc[i] += b * a[i];
        }
        for (int64_t i = 0; i < cols; i++)
            w[o * cols + i] += t->scale * acc[i];
    }
    free(acc);
    if (p) {
        tr_gguf_permute_rows(p, w, t->perm_heads, t->hd, cols);
        free(w);
        w = p;
    }
    *owned = w;
    *out = w;
    return 0;
}

/* Writes n values as the tensor's type, then zeros up to the alignment. */
static int write_values(FILE *f, const float *v, int64_t n, tr_gguf_type type)
{
    uint8_t buf[1 << 14];
    int64_t es = elem_size(type), per = (int64_t)sizeof buf / es;
    for (int64_t at = 0; at < n; at += per) {
        int64_t k = n - at < per ? n - at : per;
        for (int64_t i = 0; i < k; i++) {
            if (type == TR_GGUF_F16) {
                mu_put_le16(buf + 2 * i, tr_gguf_f16(v[at + i]));
            } else {
                uint32_t u;
                memcpy(&u, &v[at + i], 4);
                mu_put_le32(buf + 4 * i, u);
            }
        }
        if (fwrite(buf, (size_t)(k * es), 1, f) != 1)
            return -1;
    }
    static const uint8_t zeros[TR_GGUF_ALIGNMENT];
    uint64_t bytes = (uint64_t)(n * es), pad = pad_to(bytes) - bytes;
    return pad && fwrite(zeros, pad, 1, f) != 1 ? -1 : 0;
}

/* Magic, version, counts, the kv section and the tensor infos, padded to the alignment. */
static int build_header(tr_gbuf *h, const tr_gbuf *kv, const tr_gten *t, size_t n, mu_diag *d)
{
    put(h, "GGUF", 4);
    tr_gb_u32(h, TR_GGUF_VERSION);
    gb_u64(h, n);
    gb_u64(h, kv->n_kv);
    put(h, kv->p, kv->len);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = check_tensor(&t[i], d);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t[i].name, t[j].name))
                return mu_diag_set(d, MU_ERR_INVALID, "gguf: tensor '%s' given twice", t[i].name);
        tr_gb_str(h, t[i].name, strlen(t[i].name));
        tr_gb_u32(h, (uint32_t)t[i].ndim);
        int64_t numel = 1;
        for (int k = 0; k < t[i].ndim; k++) {
            gb_u64(h, (uint64_t)t[i].ne[k]);
            numel *= t[i].ne[k];
        }
        tr_gb_u32(h, (uint32_t)t[i].type);
        gb_u64(h, off);
        off += pad_to((uint64_t)(numel * elem_size(t[i].type)));
    }
    static const uint8_t zeros[TR_GGUF_ALIGNMENT];
    put(h, zeros, pad_to(h->len) - h->len);
    return h->err ? mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory") : 0;
}

int tr_gguf_write_file(const char *path, const tr_gbuf *kv, const tr_gten *t, size_t n, mu_diag *d)
{
    if (kv->err)
        return mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory");
    tr_gbuf h = {0};
    int rc = build_header(&h, kv, t, n, d);
    if (rc) {
        tr_gb_free(&h);
        return rc;
    }
    size_t pl = strlen(path);
    char *tmp = malloc(pl + sizeof ".tmp");
    if (!tmp) {
        tr_gb_free(&h);
        return mu_diag_set(d, MU_ERR_NOMEM, "gguf: out of memory");
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", sizeof ".tmp");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = mu_diag_set(d, MU_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out_free;
    }
    int bad = fwrite(h.p, h.len, 1, f) != 1;
    for (size_t i = 0; !bad && !rc && i < n; i++) {
        const float *v;
        float *owned;
        if ((rc = tensor_values(&t[i], &v, &owned, d)))
            break;
        bad = write_values(f, v, t[i].ndim == 2 ? t[i].ne[0] * t[i].ne[1] : t[i].ne[0],
                           t[i].type) != 0;
        free(owned);
    }
    if (fclose(f) != 0)
        bad = 1;
    if (!rc && bad)
        rc = mu_diag_set(d, MU_ERR_IO, "%s: write: %s", tmp, strerror(errno ? errno : EIO));
    if (rc)
        unlink(tmp);
    else
        rc = mu_file_commit(tmp, path, d);
out_free:
    free(tmp);
    tr_gb_free(&h);
    return rc;
}
