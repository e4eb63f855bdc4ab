/* gv_log.c - the log's entries in memory (encoded, with their hashes), its file form, and
 * witness countersignatures. gv_verify.c holds the rules. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gv_buf.h"
#include "gv_internal.h"
#include "gv_log.h"
#include "mu_grow.h"

#define GV_LOG_FORMAT 1
static const uint8_t GV_LOG_MAGIC[4] = {'M', 'U', 'G', 'L'};
static const char GV_WITNESS_DOMAIN[] = "mutual witness v1";
static const uint8_t GV_WITNESS_MAGIC[4] = {'M', 'U', 'G', 'W'};

typedef struct {
    uint8_t *b;
    size_t n;
    uint8_t hash[GV_HASH_BYTES];
} gv_raw;

struct gv_log {
    gv_raw *e;
    size_t len, cap;
};

gv_log *gv_log_new(void)
{
    return calloc(1, sizeof(gv_log));
}

void gv_log_free(gv_log *log)
{
    if (!log)
        return;
    for (size_t i = 0; i < log->len; i++)
        free(log->e[i].b);
    free(log->e);
    free(log);
}

size_t gv_log_len(const gv_log *log)
{
    return log->len;
}

/* Takes ownership of b on success. */
static int push(gv_log *log, uint8_t *b, size_t n, mu_diag *d)
{
    if (log->len == GV_LOG_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "log: %d entries already", GV_LOG_MAX);
    if (MU_GROW(&log->e, &log->cap, log->len + 1, 16) != MU_OK)
        return mu_diag_set(d, MU_ERR_NOMEM, "log: out of memory");
    gv_raw *r = &log->e[log->len++];
    r->b = b;
    r->n = n;
    crypto_generichash(r->hash, GV_HASH_BYTES, b, n, NULL, 0);
    return MU_OK;
}

int gv_log_append(gv_log *log, gv_entry *e, const uint8_t sk[GV_SK_BYTES], mu_diag *d)
{
    e->index = log->len;
    if (log->len)
        memcpy(e->prev, log->e[log->len - 1].hash, GV_HASH_BYTES);
    else
        memset(e->prev, 0, GV_HASH_BYTES);
    uint8_t *b;
    size_t n;
    int rc = gv_entry_sign(e, sk, d);
    if (!rc)
        rc = gv_entry_encode(e, &b, &n, d);
    if (rc)
        return rc;
    rc = push(log, b, n, d);
    if (rc)
        free(b);
    return rc;
}

int gv_log_append_raw(gv_log *log, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "log: out of memory");
    int rc = gv_entry_decode(e, b, n, d);
    free(e);
    if (rc)
        return rc;
    uint8_t *copy = malloc(n);
    if (!copy)
        return mu_diag_set(d, MU_ERR_NOMEM, "log: out of memory");
    memcpy(copy, b, n);
    rc = push(log, copy, n, d);
    if (rc)
        free(copy);
    return rc;
}

int gv_log_entry(const gv_log *log, size_t i, gv_entry *e)
{
    if (i >= log->len)
        return MU_ERR_INVALID;
    return gv_entry_decode(e, log->e[i].b, log->e[i].n, NULL);
}

int gv_log_raw(const gv_log *log, size_t i, const uint8_t **b, size_t *n)
{
    if (i >= log->len)
        return MU_ERR_INVALID;
    *b = log->e[i].b;
    *n = log->e[i].n;
    return MU_OK;
}

int gv_log_entry_hash(const gv_log *log, size_t i, uint8_t out[GV_HASH_BYTES])
{
    if (i >= log->len)
        return MU_ERR_INVALID;
    memcpy(out, log->e[i].hash, GV_HASH_BYTES);
    return MU_OK;
}

int gv_log_encode(const gv_log *log, uint8_t **out, size_t *len, mu_diag *d)
{
    gv_wbuf w = {0};
    gv_w_bytes(&w, GV_LOG_MAGIC, 4);
    gv_w_u16(&w, GV_LOG_FORMAT);
    gv_w_u32(&w, (uint32_t)log->len);
    for (size_t i = 0; i < log->len; i++) {
        gv_w_u32(&w, (uint32_t)log->e[i].n);
        gv_w_bytes(&w, log->e[i].b, log->e[i].n);
    }
    if (w.err) {
        free(w.b);
        return mu_diag_set(d, w.err, "log: cannot encode (%s)", mu_strerror(w.err));
    }
    *out = w.b;
    *len = w.len;
    return MU_OK;
}

int gv_log_decode(gv_log **out, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_rbuf r = {.b = b, .len = n};
    uint8_t magic[4];
    gv_r_bytes(&r, magic, 4);
    if (r.err || memcmp(magic, GV_LOG_MAGIC, 4))
        return mu_diag_set(d, MU_ERR_FORMAT, "log: not a mutual audit log (bad magic)");
    if (gv_r_u16(&r) != GV_LOG_FORMAT)
        return mu_diag_set(d, MU_ERR_UNSUPPORTED, "log: unknown format version");
    uint32_t count = gv_r_u32(&r);
    if (r.err || count > GV_LOG_MAX)
        return mu_diag_set(d, MU_ERR_FORMAT, "log: %u entries (at most %d)", count, GV_LOG_MAX);
    gv_log *log = gv_log_new();
    if (!log)
        return mu_diag_set(d, MU_ERR_NOMEM, "log: out of memory");
    for (uint32_t i = 0; i < count; i++) {
        uint32_t en = gv_r_u32(&r);
        mu_diag why = {{0}};
        int rc =
            r.err || en > n - r.pos ? MU_ERR_FORMAT : gv_log_append_raw(log, b + r.pos, en, &why);
        if (rc) {
            gv_log_free(log);
            return mu_diag_set(d, rc, "log: entry %u: %s", i, why.msg[0] ? why.msg : "truncated");
        }
        r.pos += en;
    }
    if (r.pos != n) {
        gv_log_free(log);
        return mu_diag_set(d, MU_ERR_FORMAT, "log: %zu trailing bytes", n - r.pos);
    }
    *out = log;
    return MU_OK;
}

#define WITNESS_MSG_LEN (sizeof GV_WITNESS_DOMAIN + GV_HASH_BYTES + 8 + GV_HASH_BYTES)

static void witness_msg(uint8_t m[WITNESS_MSG_LEN], const gv_witness *w)
{
    memcpy(m, GV_WITNESS_DOMAIN, sizeof GV_WITNESS_DOMAIN);
    memcpy(m + sizeof GV_WITNESS_DOMAIN, w->log_id, GV_HASH_BYTES);
    mu_put_le64(m + sizeof GV_WITNESS_DOMAIN + GV_HASH_BYTES, w->index);
    memcpy(m + sizeof GV_WITNESS_DOMAIN + GV_HASH_BYTES + 8, w->head, GV_HASH_BYTES);
}

/* The log id: what entry 0 adopts (the genesis charter's hash). */
static int log_id(const gv_log *log, uint8_t id[GV_HASH_BYTES])
{
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return MU_ERR_NOMEM;
    int rc = gv_log_entry(log, 0, e);
    if (!rc && e->kind != GV_ENTRY_CHARTER)
        rc = MU_ERR_PROTOCOL;
    if (!rc)
        memcpy(id, e->charter_hash, GV_HASH_BYTES);
    free(e);
    return rc;
}

int gv_witness_sign(gv_witness *w, const gv_log *log, const uint8_t sk[GV_SK_BYTES])
{
    if (log->len == 0)
        return MU_ERR_STATE;
    int rc = log_id(log, w->log_id);
    if (rc)
        return rc;
    w->index = log->len - 1;
    memcpy(w->head, log->e[w->index].hash, GV_HASH_BYTES);
    memcpy(w->pk, sk + 32, GV_PK_BYTES);
    uint8_t m[WITNESS_MSG_LEN];
    witness_msg(m, w);
    crypto_sign_detached(w->sig, NULL, m, sizeof m, sk);
    return MU_OK;
}

int gv_witness_check(const gv_witness *w, const gv_log *log, mu_diag *d)
{
    uint8_t m[WITNESS_MSG_LEN], id[GV_HASH_BYTES];
    witness_msg(m, w);
    if (crypto_sign_verify_detached(w->sig, m, sizeof m, w->pk))
        return mu_diag_set(d, MU_ERR_CRYPTO, "witness: the countersignature does not verify");
    int rc = log->len ? log_id(log, id) : MU_ERR_PROTOCOL;
    if (rc == MU_ERR_NOMEM)
        return mu_diag_set(d, rc, "witness: out of memory");
    if (rc || memcmp(id, w->log_id, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "witness: the log is not the federation's "
                           "countersigned log (another log id)");
    if (w->index >= log->len)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "witness: the log has %zu entries, the "
                           "countersigned head is entry %llu (entries removed)",
                           log->len, (unsigned long long)w->index);
    if (sodium_memcmp(log->e[w->index].hash, w->head, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "equivocation: entry %llu differs from the head "
                           "countersigned before (the log forked)",
                           (unsigned long long)w->index);
    /* The head's hash binds what entries before it claim as their predecessors, not their
     * bytes: each link up to the head must hold, or an earlier entry was swapped. */
    for (size_t j = 1; j <= w->index; j++) {
        uint8_t prev[GV_HASH_BYTES];
        if (gv_entry_prev(log->e[j].b, log->e[j].n, prev) ||
            sodium_memcmp(prev, log->e[j - 1].hash, GV_HASH_BYTES))
            return mu_diag_set(d, MU_ERR_PROTOCOL,
                               "equivocation: entry %zu is not the entry "
                               "the countersigned head's history holds (entry %zu does not "
                               "follow it)",
                               j - 1, j);
    }
    return MU_OK;
}

void gv_witness_encode(const gv_witness *w, uint8_t out[GV_WITNESS_BYTES])
{
    gv_wbuf b = {.b = out, .cap = GV_WITNESS_BYTES}; /* exactly fits: never reallocates */
    gv_w_bytes(&b, GV_WITNESS_MAGIC, 4);
    gv_w_u16(&b, GV_LOG_FORMAT);
    gv_w_bytes(&b, w->log_id, GV_HASH_BYTES);
    gv_w_u64(&b, w->index);
    gv_w_bytes(&b, w->head, GV_HASH_BYTES);
    gv_w_bytes(&b, w->pk, GV_PK_BYTES);
    gv_w_bytes(&b, w->sig, GV_SIG_BYTES);
}

int gv_witness_decode(gv_witness *w, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_rbuf r = {.b = b, .len = n};
    uint8_t magic[4];
    gv_r_bytes(&r, magic, 4);
    uint16_t fmt = gv_r_u16(&r);
    gv_r_bytes(&r, w->log_id, GV_HASH_BYTES);
    w->index = gv_r_u64(&r);
    gv_r_bytes(&r, w->head, GV_HASH_BYTES);
    gv_r_bytes(&r, w->pk, GV_PK_BYTES);
    gv_r_bytes(&r, w->sig, GV_SIG_BYTES);
    if (r.err || r.pos != n || memcmp(magic, GV_WITNESS_MAGIC, 4) || fmt != GV_LOG_FORMAT)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "witness: not a countersigned head (%zu bytes, "
                           "want %d)",
                           n, GV_WITNESS_BYTES);
    return MU_OK;
}
