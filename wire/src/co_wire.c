/* co_wire.c - task and report encodings (little-endian, bounds-checked). */
#include "co_wire.h"

#include "wi_bytes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t len, pos;
} wbuf;

static void put(wbuf *w, const void *src, size_t n)
{
    if (w->pos + n <= w->len)
        memcpy(w->p + w->pos, src, n);
    w->pos += n;
}

static void put_u8(wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4];
    mu_put_le32(b, v);
    put(w, b, 4);
}

static void put_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    mu_put_le64(b, v);
    put(w, b, 8);
}

static void put_f64(wbuf *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(w, u);
}

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    int bad;
} rbuf;

static const uint8_t *take(rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *s = r->p + r->pos;
    r->pos += n;
    return s;
}

static uint8_t get_u8(rbuf *r)
{
    const uint8_t *s = take(r, 1);
    return s ? s[0] : 0;
}

static uint32_t get_u32(rbuf *r)
{
    const uint8_t *s = take(r, 4);
    return s ? mu_le32(s) : 0;
}

static uint64_t get_u64(rbuf *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static double get_f64(rbuf *r)
{
    uint64_t u = get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static void put_task(wbuf *w, const co_task *t)
{
    const co_round_config *c = &t->cfg;
    put(w, "CT", 2);
    put_u8(w, CO_WIRE_VERSION);
    put_u8(w, (uint8_t)t->kind);
    put_u32(w, t->org_id);
    put_f64(w, t->deadline);
    put_u64(w, c->round);
    put_u8(w, c->kind);
    put_u8(w, c->weight);
    put_u64(w, c->seed);
    put_u32(w, c->steps);
    put_u32(w, c->batch);
    put_u32(w, c->seq);
    put_f64(w, c->lr);
    put_f64(w, c->fedprox_mu);
    put_u32(w, c->dim);
    put_u32(w, c->bits);
    put_u32(w, c->k);
    put_u32(w, c->t);
    put_u32(w, c->quant_n);
    put(w, c->sa_nonce, CO_SA_NONCE_BYTES);
    put_f64(w, c->clip);
    put_f64(w, c->scale);
    put_f64(w, c->weight_max);
    put_f64(w, c->dp_clip);
    put_f64(w, c->dp_noise);
    put_u8(w, c->dp_sampling);
    put_f64(w, c->ddg_noise);
    put_u32(w, c->ddg_min);
    put_u8(w, t->stage);
    put_u32(w, t->n_cohort);
    for (uint32_t i = 0; i < t->n_cohort; i++) {
        put_u32(w, t->cohort_ids[i]);
        put(w, t->cohort_pks[i], CO_ORG_PK_BYTES);
    }
    put_u32(w, (uint32_t)t->sa_len);
    if (t->sa_len)
        put(w, t->sa_msg, t->sa_len);
}

size_t co_task_encoded_len(const co_task *t)
{
    wbuf w = {NULL, 0, 0};
    put_task(&w, t);
    return w.pos;
}

int co_task_encode(const co_task *t, uint8_t *buf, size_t cap, size_t *written)
{
    if (t->n_cohort > CO_WIRE_MAX_COHORT || t->sa_len > UINT32_MAX)
        return MU_ERR_INVALID;
    size_t need = co_task_encoded_len(t);
    if (need > cap)
        return MU_ERR_INVALID;
    wbuf w = {buf, cap, 0};
    put_task(&w, t);
    *written = w.pos;
    return MU_OK;
}

void co_task_deinit(co_task *t)
{
    if (!t)
        return;
    free(t->owned_);
    memset(t, 0, sizeof *t);
}

/* u in [lo, hi], else MU_ERR_PROTOCOL naming the field. */
static int check_u32(const char *field, uint32_t v, uint32_t lo, uint32_t hi, mu_diag *diag)
{
    if (v < lo || v > hi)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: %s %u out of range [%u, %u]", field, v, lo,
                           hi);
    return MU_OK;
}

/* v finite and in [lo, hi] (lo excluded when open_lo), else MU_ERR_PROTOCOL. */
static int check_f64(const char *field, double v, double lo, int open_lo, double hi, mu_diag *diag)
{
    if (!isfinite(v) || v < lo || (open_lo && v == lo) || v > hi)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: %s %g out of range %c%g, %g]", field, v,
                           open_lo ? '(' : '[', lo, hi);
    return MU_OK;
}

int co_round_config_check(const co_round_config *c, mu_diag *diag)
{
    int rc;
    if (c->kind != CO_ROUND_TRAIN && c->kind != CO_ROUND_EVAL)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: unknown round kind %u", c->kind);
    if (c->weight != CO_WEIGHT_EXAMPLES && c->weight != CO_WEIGHT_UNIFORM)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: unknown weight kind %u", c->weight);
    if ((rc = check_u32("steps", c->steps, 1, CO_TASK_MAX_STEPS, diag)) ||
        (rc = check_u32("batch", c->batch, 1, CO_TASK_MAX_BATCH, diag)) ||
        (rc = check_u32("seq", c->seq, 1, CO_TASK_MAX_SEQ, diag)) ||
        (rc = check_u32("dim", c->dim, 1, CO_TASK_MAX_DIM, diag)) ||
        (rc = check_u32("bits", c->bits, CO_TASK_MIN_BITS, CO_TASK_MAX_BITS, diag)) ||
        (rc = check_u32("k", c->k, 0, CO_TASK_MAX_K, diag)) ||
        (rc = check_u32("t", c->t, 0, CO_TASK_MAX_T, diag)) ||
        (rc = check_u32("quant_n", c->quant_n, 0, CO_TASK_MAX_QUANT_N, diag)))
        return rc;
    if ((uint64_t)c->batch * c->seq > CO_TASK_MAX_BATCH_TOKENS)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: batch %u x seq %u above %u tokens",
                           c->batch, c->seq, CO_TASK_MAX_BATCH_TOKENS);
    if ((rc = check_f64("lr", c->lr, 0, 1, CO_TASK_MAX_LR, diag)) ||
        (rc = check_f64("fedprox_mu", c->fedprox_mu, 0, 0, CO_TASK_MAX_FEDPROX_MU, diag)) ||
        (rc = check_f64("clip", c->clip, 0, 1, CO_TASK_MAX_CLIP, diag)) ||
        (rc = check_f64("scale", c->scale, 0, 0, CO_TASK_MAX_SCALE, diag)) ||
        (rc = check_f64("weight_max", c->weight_max, 0, 1, CO_TASK_MAX_WEIGHT_MAX, diag)) ||
        (rc = check_f64("dp_clip", c->dp_clip, 0, 0, CO_TASK_MAX_CLIP, diag)) ||
        (rc = check_f64("dp_noise", c->dp_noise, 0, 0, CO_TASK_MAX_DP_NOISE, diag)))
        return rc;
    if (c->dp_clip > 0 ? c->dp_sampling < 1 || c->dp_sampling > 2
                       : c->dp_sampling != 0 || c->dp_noise != 0)
        return mu_diag_set(diag, MU_ERR_PROTOCOL,
                           "task: dp_sampling %u with dp_clip %g, dp_noise %g (sampling 1 or 2 "
                           "with a clip; all 0 without)",
                           (unsigned)c->dp_sampling, c->dp_clip, c->dp_noise);
    if ((rc = check_f64("ddg_noise", c->ddg_noise, 0, 0, CO_TASK_MAX_DP_NOISE, diag)))
        return rc;
    if (c->ddg_noise > 0 ? c->ddg_min < 1 || c->ddg_min > c->quant_n : c->ddg_min != 0)
        return mu_diag_set(diag, MU_ERR_PROTOCOL,
                           "task: ddg_min %u with ddg_noise %g, quant_n %u (1..quant_n with noise; "
                           "0 without)",
                           c->ddg_min, c->ddg_noise, c->quant_n);
    return MU_OK;
}

/* The checks on everything but the cohort's ids (co_task_decode checks those in the bytes). */
static int check_fields(const co_task *t, mu_diag *diag)
{
    if (t->kind > CO_TASK_DONE)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: unknown kind %u", (unsigned)t->kind);
    if (t->kind == CO_TASK_WAIT || t->kind == CO_TASK_DONE)
        return MU_OK;
    if (!isfinite(t->deadline))
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: deadline is NaN or infinite");
    if (t->kind == CO_TASK_SECAGG && (t->stage < 1 || t->stage > 5))
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: secure-aggregation stage %u", t->stage);
    if (t->n_cohort > CO_WIRE_MAX_COHORT)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "task: cohort of %u orgs", t->n_cohort);
    return co_round_config_check(&t->cfg, diag);
}

int co_task_check(const co_task *t, mu_diag *diag)
{
    int rc = check_fields(t, diag);
    for (uint32_t i = 1; rc == MU_OK && i < t->n_cohort; i++)
        if (t->cohort_ids[i] <= t->cohort_ids[i - 1])
            rc = mu_diag_set(diag, MU_ERR_PROTOCOL, "task: cohort ids not ascending");
    return rc;
}

/* Reads the fixed fields and the counts; MU_OK leaves r at the cohort. */
static int get_fixed(co_task *t, rbuf *r, mu_diag *diag)
{
    const uint8_t *magic = take(r, 2);
    if (!magic || memcmp(magic, "CT", 2) != 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "task: bad magic");
    uint8_t version = get_u8(r);
    if (version != CO_WIRE_VERSION)
        return mu_diag_set(diag, MU_ERR_FORMAT, "task: wire version %u (this build speaks %u)",
                           version, CO_WIRE_VERSION);
    uint8_t kind = get_u8(r);
    if (kind > CO_TASK_DONE)
        return mu_diag_set(diag, MU_ERR_FORMAT, "task: unknown kind %u", kind);
    t->kind = (co_task_kind)kind;
    t->org_id = get_u32(r);
    t->deadline = get_f64(r);
    co_round_config *c = &t->cfg;
    c->round = get_u64(r);
    c->kind = get_u8(r);
    c->weight = get_u8(r);
    c->seed = get_u64(r);
    c->steps = get_u32(r);
    c->batch = get_u32(r);
    c->seq = get_u32(r);
    c->lr = get_f64(r);
    c->fedprox_mu = get_f64(r);
    c->dim = get_u32(r);
    c->bits = get_u32(r);
    c->k = get_u32(r);
    c->t = get_u32(r);
    c->quant_n = get_u32(r);
    const uint8_t *nonce = take(r, CO_SA_NONCE_BYTES);
    if (nonce)
        memcpy(c->sa_nonce, nonce, CO_SA_NONCE_BYTES);
    c->clip = get_f64(r);
    c->scale = get_f64(r);
    c->weight_max = get_f64(r);
    c->dp_clip = get_f64(r);
    c->dp_noise = get_f64(r);
    c->dp_sampling = get_u8(r);
    c->ddg_noise = get_f64(r);
    c->ddg_min = get_u32(r);
    t->stage = get_u8(r);
    t->n_cohort = get_u32(r);
    if (r->bad)
        return mu_diag_set(diag, MU_ERR_FORMAT, "task: truncated");
    if (t->n_cohort > CO_WIRE_MAX_COHORT ||
        (size_t)t->n_cohort * (4 + CO_ORG_PK_BYTES) > r->len - r->pos)
        return mu_diag_set(diag, MU_ERR_FORMAT, "task: bad cohort count %u", t->n_cohort);
    if (!isfinite(t->deadline) || !isfinite(c->lr) || !isfinite(c->fedprox_mu) ||
        !isfinite(c->clip) || !isfinite(c->scale) || !isfinite(c->weight_max) ||
        !isfinite(c->dp_clip) || !isfinite(c->dp_noise) || !isfinite(c->ddg_noise))
        return mu_diag_set(diag, MU_ERR_FORMAT, "task: a number is NaN or infinite");
    return check_fields(t, diag);
}

/* memset(t, 0) and return rc: on error a task owns nothing and holds nothing. */
static int refuse(co_task *t, int rc)
{
    memset(t, 0, sizeof *t);
    return rc;
}

int co_task_decode(co_task *t, const uint8_t *buf, size_t len, mu_diag *diag)
{
    memset(t, 0, sizeof *t);
    rbuf r = {buf, len, 0, 0};
    int rc = get_fixed(t, &r, diag);
    if (rc != MU_OK)
        return refuse(t, rc);
    uint32_t n = t->n_cohort;
    size_t entry = 4 + CO_ORG_PK_BYTES, ids_bytes = (size_t)n * 4,
           pks_bytes = (size_t)n * CO_ORG_PK_BYTES;
    const uint8_t *cohort = take(&r, (size_t)n * entry);
    uint32_t sa_len = get_u32(&r);
    const uint8_t *sa = take(&r, sa_len);
    if (r.bad || r.pos != len)
        return refuse(t, mu_diag_set(diag, MU_ERR_FORMAT, "task: truncated or trailing bytes"));
    for (uint32_t i = 1; i < n; i++)
        if (mu_le32(cohort + i * entry) <= mu_le32(cohort + (i - 1) * entry))
            return refuse(t, mu_diag_set(diag, MU_ERR_FORMAT, "task: cohort ids not ascending"));
    size_t total = ids_bytes + pks_bytes + sa_len;
    uint8_t *mem = total ? malloc(total) : NULL;
    if (total && !mem)
        return refuse(t, mu_diag_set(diag, MU_ERR_NOMEM, "task: out of memory"));
    t->owned_ = mem;
    if (n) {
        t->cohort_pks = (uint8_t(*)[CO_ORG_PK_BYTES])mem;
        t->cohort_ids = (uint32_t *)(mem + pks_bytes);
        for (uint32_t i = 0; i < n; i++) {
            t->cohort_ids[i] = mu_le32(cohort + i * entry);
            memcpy(t->cohort_pks[i], cohort + i * entry + 4, CO_ORG_PK_BYTES);
        }
    }
    if (sa_len) {
        memcpy(mem + pks_bytes + ids_bytes, sa, sa_len);
        t->sa_msg = mem + pks_bytes + ids_bytes;
        t->sa_len = sa_len;
    }
    return MU_OK;
}

void co_report_encode(const co_report *rep, uint8_t buf[CO_REPORT_BYTES])
{
    wbuf w = {buf, CO_REPORT_BYTES, 0};
    put(&w, "CR", 2);
    put_u8(&w, CO_WIRE_VERSION);
    put_u8(&w, (uint8_t)rep->type);
    put_u64(&w, rep->round);
}

int co_report_decode(co_report *rep, const uint8_t *buf, size_t len)
{
    memset(rep, 0, sizeof *rep);
    if (len != CO_REPORT_BYTES || memcmp(buf, "CR", 2) != 0 || buf[2] != CO_WIRE_VERSION)
        return MU_ERR_FORMAT;
    rbuf r = {buf, len, 4, 0};
    uint8_t type = buf[3];
    if (type != CO_REPORT_READY && type != CO_REPORT_EVAL && type != CO_REPORT_LEAVE)
        return MU_ERR_FORMAT;
    rep->type = (co_report_type)type;
    rep->round = get_u64(&r);
    return MU_OK;
}
