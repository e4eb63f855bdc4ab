/* Task and report encodings: round trips, untrusted bytes (every truncation, trailing bytes,
 * flipped bytes, bad counts) refused without a crash, and every round-config field out of
 * range refused before anything is allocated (malloc is wrapped at link to count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "co_wire.h"

/* Linked with -Wl,--wrap=malloc: counts the allocations made while `counting` is set. */
void *__real_malloc(size_t n);
static int counting, n_mallocs;
void *__wrap_malloc(size_t n)
{
    n_mallocs += counting;
    return __real_malloc(n);
}

static uint32_t ids[3] = {2, 5, 9};
static uint8_t pks[3][CO_ORG_PK_BYTES];
static uint8_t sa[40];

static co_task sample(void)
{
    for (int i = 0; i < 3; i++)
        memset(pks[i], 0x10 + i, CO_ORG_PK_BYTES);
    for (int i = 0; i < 40; i++)
        sa[i] = (uint8_t)(i * 7);
    co_task t = {.kind = CO_TASK_SECAGG,
                 .org_id = 5,
                 .deadline = 123.5,
                 .cfg = {.round = 42,
                         .kind = CO_ROUND_TRAIN,
                         .weight = 1,
                         .seed = 0x0123456789abcdefull,
                         .steps = 20,
                         .batch = 8,
                         .seq = 128,
                         .lr = 1e-4,
                         .fedprox_mu = 0.01,
                         .dim = 1000,
                         .bits = 32,
                         .k = 2,
                         .t = 2,
                         .quant_n = 3,
                         .sa_nonce = {0xA5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x5A},
                         .clip = 1.0,
                         .scale = 2048,
                         .weight_max = 1e4,
                         .dp_clip = 0.5,
                         .dp_noise = 1.1,
                         .dp_sampling = 1,
                         .ddg_noise = 0.7,
                         .ddg_min = 2},
                 .stage = 2,
                 .n_cohort = 3,
                 .cohort_ids = ids,
                 .cohort_pks = pks,
                 .sa_msg = sa,
                 .sa_len = sizeof sa};
    return t;
}

static uint8_t *encode(const co_task *t, size_t *len)
{
    size_t cap = co_task_encoded_len(t);
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    assert_int_equal(co_task_encode(t, buf, cap, len), MU_OK);
    assert_int_equal(*len, cap);
    assert_int_equal(co_task_encode(t, buf, cap - 1, len), MU_ERR_INVALID);
    assert_int_equal(co_task_encode(t, buf, cap, len), MU_OK);
    return buf;
}

static void test_task_round_trip(void **state)
{
    (void)state;
    co_task t = sample(), u;
    size_t len;
    uint8_t *buf = encode(&t, &len);
    mu_diag d = {{0}};
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_OK);
    assert_int_equal(u.kind, t.kind);
    assert_int_equal(u.org_id, 5);
    assert_true(u.deadline == 123.5);
    const co_round_config *a = &u.cfg, *b = &t.cfg;
    assert_true(a->round == b->round && a->kind == b->kind && a->weight == b->weight &&
                a->seed == b->seed && a->steps == b->steps && a->batch == b->batch &&
                a->seq == b->seq && a->lr == b->lr && a->fedprox_mu == b->fedprox_mu &&
                a->dim == b->dim && a->bits == b->bits && a->k == b->k && a->t == b->t &&
                a->quant_n == b->quant_n && a->clip == b->clip && a->scale == b->scale &&
                a->weight_max == b->weight_max && a->dp_clip == b->dp_clip &&
                a->dp_noise == b->dp_noise && a->dp_sampling == b->dp_sampling &&
                a->ddg_noise == b->ddg_noise && a->ddg_min == b->ddg_min);
    assert_memory_equal(a->sa_nonce, b->sa_nonce, CO_SA_NONCE_BYTES);
    assert_int_equal(u.stage, 2);
    assert_int_equal(u.n_cohort, 3);
    assert_memory_equal(u.cohort_ids, ids, sizeof ids);
    assert_memory_equal(u.cohort_pks, pks, sizeof pks);
    assert_int_equal(u.sa_len, sizeof sa);
    assert_memory_equal(u.sa_msg, sa, sizeof sa);
    co_task_deinit(&u);
    free(buf);

    co_task w = {.kind = CO_TASK_WAIT, .org_id = 1};
    buf = encode(&w, &len);
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_OK);
    assert_int_equal(u.kind, CO_TASK_WAIT);
    assert_null(u.cohort_ids);
    assert_null(u.sa_msg);
    co_task_deinit(&u);
    free(buf);
}

static void test_task_bad_bytes(void **state)
{
    (void)state;
    co_task t = sample(), u;
    size_t len;
    uint8_t *buf = encode(&t, &len);
    mu_diag d = {{0}};
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(co_task_decode(&u, buf, cut, &d), MU_ERR_FORMAT);
        assert_null(u.owned_);
    }
    buf[len] = 0;
    assert_int_equal(co_task_decode(&u, buf, len + 1, &d), MU_ERR_FORMAT);
    /* Every single flipped byte: refused, or decoded into something that owns its memory. */
    uint8_t *m = malloc(len);
    assert_non_null(m);
    int refused = 0;
    for (size_t pos = 0; pos < len; pos++) {
        memcpy(m, buf, len);
        m[pos] ^= 0xff;
        int rc = co_task_decode(&u, m, len, &d);
        if (rc == MU_OK)
            co_task_deinit(&u);
        else
            refused++;
    }
    assert_true(refused > 0);
    /* A task of version 1 (before LEAVE reports) or of a newer version. */
    memcpy(m, buf, len);
    m[2] = 1;
    assert_int_equal(co_task_decode(&u, m, len, &d), MU_ERR_FORMAT);
    m[2] = CO_WIRE_VERSION + 1;
    assert_int_equal(co_task_decode(&u, m, len, &d), MU_ERR_FORMAT);
    /* Cohort ids out of order. */
    uint32_t bad_ids[3] = {5, 2, 9};
    t.cohort_ids = bad_ids;
    free(buf);
    buf = encode(&t, &len);
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "ascending"));
    /* A huge cohort count with no bytes behind it. */
    co_task w = {.kind = CO_TASK_WAIT};
    free(buf);
    buf = encode(&w, &len);
    size_t count_at = len - 8; /* n_cohort (4) then sa_len (4) */
    buf[count_at + 3] = 0x7f;
    assert_int_equal(co_task_decode(&u, buf, len, &d), MU_ERR_FORMAT);
    free(m);
    free(buf);
}

/* One round-config field set to a value out of its range; `field` is named in the refusal. */
typedef struct {
    const char *field;
    size_t off;
    int bytes; /* 1 (uint8_t), 4 (uint32_t) or 0 (double) */
    double v;
} bad_field;

#define U8(f, v, name)                                                                             \
    {                                                                                              \
        name, offsetof(co_round_config, f), 1, v                                                   \
    }
#define U32(f, v, name)                                                                            \
    {                                                                                              \
        name, offsetof(co_round_config, f), 4, v                                                   \
    }
#define F64(f, v, name)                                                                            \
    {                                                                                              \
        name, offsetof(co_round_config, f), 0, v                                                   \
    }

static const bad_field bad_fields[] = {
    U32(seq, 2147483648.0, "seq 2147483648"),
    U32(seq, 0, "seq 0"),
    U32(seq, CO_TASK_MAX_SEQ + 1, "seq 1000001"),
    U32(steps, 0, "steps 0"),
    U32(steps, CO_TASK_MAX_STEPS + 1, "steps"),
    U32(batch, 0, "batch 0"),
    U32(batch, CO_TASK_MAX_BATCH + 1, "batch 65537"),
    U32(dim, 0, "dim 0"),
    U32(dim, CO_TASK_MAX_DIM + 1.0, "dim"),
    U32(bits, 7, "bits 7"),
    U32(bits, 33, "bits 33"),
    U32(k, CO_TASK_MAX_K + 1, "k 65536"),
    U32(t, CO_TASK_MAX_T + 1, "t 65537"),
    U32(quant_n, CO_TASK_MAX_QUANT_N + 1, "quant_n"),
    F64(lr, 0, "lr 0"),
    F64(lr, 11, "lr 11"),
    F64(fedprox_mu, -1, "fedprox_mu -1"),
    F64(fedprox_mu, 2e6, "fedprox_mu"),
    F64(clip, 0, "clip 0"),
    F64(clip, 2e12, "clip"),
    F64(scale, -1, "scale -1"),
    F64(scale, 2e18, "scale"),
    F64(weight_max, 0, "weight_max 0"),
    F64(weight_max, 2e15, "weight_max"),
    F64(dp_clip, -1, "dp_clip -1"),
    F64(dp_clip, 2e12, "dp_clip"),
    F64(dp_clip, 0, "dp_sampling 1 with dp_clip 0"),
    F64(dp_noise, -1, "dp_noise -1"),
    F64(dp_noise, 2e6, "dp_noise"),
    U8(dp_sampling, 0, "dp_sampling 0"),
    F64(ddg_noise, -1, "ddg_noise -1"),
    F64(ddg_noise, 2e6, "ddg_noise"),
    F64(ddg_noise, 0, "ddg_min 2 with ddg_noise 0"),
    U32(ddg_min, 0, "ddg_min 0 with ddg_noise 0.7"),
    U32(ddg_min, 4, "ddg_min 4 with ddg_noise 0.7, quant_n 3"),
    U8(dp_sampling, 3, "dp_sampling 3"),
    U8(kind, 2, "round kind 2"),
    U8(weight, 2, "weight kind 2"),
};

static void set_bad(co_round_config *c, const bad_field *b)
{
    char *p = (char *)c + b->off;
    if (b->bytes == 1)
        *(uint8_t *)p = (uint8_t)b->v;
    else if (b->bytes == 4)
        *(uint32_t *)p = (uint32_t)b->v;
    else
        *(double *)p = b->v;
}

/* Each field out of range: MU_ERR_PROTOCOL naming it, no allocation, nothing owned. The same
 * task in memory is refused by co_task_check, and a WAIT task carries no config to check. */
static void test_task_out_of_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        for (int kind = CO_TASK_TRAIN; kind <= CO_TASK_SECAGG; kind++) {
            co_task t = sample(), u;
            t.kind = (co_task_kind)kind;
            set_bad(&t.cfg, &bad_fields[i]);
            size_t len;
            uint8_t *buf = encode(&t, &len);
            mu_diag d = {{0}};
            counting = 1;
            n_mallocs = 0;
            int rc = co_task_decode(&u, buf, len, &d);
            counting = 0;
            if (rc != MU_ERR_PROTOCOL || !strstr(d.msg, bad_fields[i].field))
                fail_msg("%s: rc %d, '%s'", bad_fields[i].field, rc, d.msg);
            assert_int_equal(n_mallocs, 0);
            assert_null(u.owned_);
            assert_null(u.cohort_ids);
            assert_int_equal(co_task_check(&t, &d), MU_ERR_PROTOCOL);
            assert_int_equal(co_round_config_check(&t.cfg, NULL), MU_ERR_PROTOCOL);
            t.kind = CO_TASK_WAIT;
            assert_int_equal(co_task_check(&t, NULL), MU_OK);
            free(buf);
        }
    }
    /* batch·seq above CO_TASK_MAX_BATCH_TOKENS though each is in range */
    {
        co_task t = sample(), u;
        t.cfg.batch = 65536, t.cfg.seq = 65536;
        size_t len;
        uint8_t *buf = encode(&t, &len);
        mu_diag d = {{0}};
        assert_int_equal(co_task_decode(&u, buf, len, &d), MU_ERR_PROTOCOL);
        assert_non_null(strstr(d.msg, "batch 65536 x seq 65536"));
        assert_null(u.owned_);
        free(buf);
    }
    /* non-finite doubles: refused as malformed */
    co_task t = sample(), u;
    t.cfg.lr = NAN;
    assert_int_equal(co_round_config_check(&t.cfg, NULL), MU_ERR_PROTOCOL);
    size_t len;
    uint8_t *buf = encode(&t, &len);
    assert_int_equal(co_task_decode(&u, buf, len, NULL), MU_ERR_FORMAT);
    free(buf);
    t = sample();
    t.cfg.clip = INFINITY;
    assert_int_equal(co_round_config_check(&t.cfg, NULL), MU_ERR_PROTOCOL);
    /* a SECAGG stage outside ADVERTISE..UNMASK, and in-memory cohort ids out of order */
    t = sample();
    t.stage = 6;
    buf = encode(&t, &len);
    assert_int_equal(co_task_decode(&u, buf, len, NULL), MU_ERR_PROTOCOL);
    free(buf);
    t = sample();
    uint32_t bad_ids[3] = {5, 2, 9};
    t.cohort_ids = bad_ids;
    assert_int_equal(co_task_check(&t, NULL), MU_ERR_PROTOCOL);
    /* the edges of every range are accepted */
    t = sample();
    t.cfg.steps = CO_TASK_MAX_STEPS, t.cfg.batch = 1, t.cfg.seq = CO_TASK_MAX_SEQ;
    t.cfg.bits = 8, t.cfg.lr = CO_TASK_MAX_LR, t.cfg.fedprox_mu = CO_TASK_MAX_FEDPROX_MU;
    t.cfg.scale = 0, t.cfg.weight_max = CO_TASK_MAX_WEIGHT_MAX, t.cfg.dim = CO_TASK_MAX_DIM;
    assert_int_equal(co_task_check(&t, NULL), MU_OK);
    buf = encode(&t, &len);
    assert_int_equal(co_task_decode(&u, buf, len, NULL), MU_OK);
    co_task_deinit(&u);
    free(buf);
}

/* The metric coordinates: digit widths that never wrap, exact totals over a cohort at 8 and
 * 32 bits, the caps, and a summed digit out of range refused. */
static void test_metric(void **state)
{
    (void)state;
    assert_int_equal(co_metric_limb_bits(32, 1), 32);
    assert_int_equal(co_metric_limb_bits(8, 85), 2);
    assert_int_equal(co_metric_limb_bits(8, 86), 1);
    assert_int_equal(co_metric_limb_bits(8, 255), 1);
    assert_int_equal(co_metric_limb_bits(8, 256), 0);
    assert_int_equal(co_metric_coords(8, 256), 0);
    assert_int_equal(co_metric_coords(8, 255), CO_METRIC_MAX_COORDS);
    assert_int_equal(co_metric_coords(32, 100), 5);
    static const uint32_t bits[] = {8, 8, 16, 32};
    static const uint32_t ns[] = {5, 200, 100, 1000};
    uint32_t q[CO_METRIC_MAX_COORDS], sum[CO_METRIC_MAX_COORDS];
    mu_diag d = {{0}};
    for (int c = 0; c < 4; c++) {
        uint32_t b = bits[c], n = ns[c], m = co_metric_coords(b, n);
        assert_true(m > 0 && m <= CO_METRIC_MAX_COORDS);
        memset(sum, 0, sizeof sum);
        double ls = 0, tk = 0;
        for (uint32_t i = 0; i < n; i++) { /* the largest counts an org may send, and others */
            double t = i == 0 ? CO_METRIC_MAX_TOKENS : 1000.0 * i + 7;
            double l = i == 0 ? CO_METRIC_MAX_LOSS * t : (2.0 + 1.0 / (i + 1)) * t;
            assert_int_equal(co_metric_encode(q, m, l, t, b, n, &d), MU_OK);
            for (uint32_t j = 0; j < m; j++) {
                assert_true(b == 32 || q[j] < (1u << b));
                sum[j] = b == 32 ? sum[j] + q[j] : (sum[j] + q[j]) & ((1u << b) - 1);
            }
            ls += l;
            tk += t;
        }
        double gl, gt;
        assert_int_equal(co_metric_decode(&gl, &gt, sum, m, b, n, n, &d), MU_OK);
        if (gt != tk || fabs(gl - ls) > n * 0.5 / CO_METRIC_LOSS_SCALE + ls * 1e-13)
            fail_msg("%u bits, %u orgs: totals %.17g %.17g, want %.17g %.17g", b, n, gl, gt, ls,
                     tk);
        /* one digit above what n inputs can reach: refused, totals 0 */
        sum[m - 1] = (uint32_t)((uint64_t)n * ((1u << co_metric_limb_bits(b, n)) - 1) + 1);
        assert_int_equal(co_metric_decode(&gl, &gt, sum, m, b, n, n, &d), MU_ERR_PROTOCOL);
        assert_true(gl == 0 && gt == 0 && strstr(d.msg, "token digit"));
    }
    /* the caps: tokens at 2^40 − 1, the loss at 64 a token; NaN refused, a wrong m too */
    uint32_t m = co_metric_coords(32, 1);
    double gl, gt;
    assert_int_equal(co_metric_encode(q, m, 1e30, 1e30, 32, 1, &d), MU_OK);
    assert_int_equal(co_metric_decode(&gl, &gt, q, m, 32, 1, 1, &d), MU_OK);
    assert_true(gt == CO_METRIC_MAX_TOKENS && gl == CO_METRIC_MAX_LOSS * CO_METRIC_MAX_TOKENS);
    assert_int_equal(co_metric_encode(q, m, -5, 10, 32, 1, &d), MU_OK);
    assert_int_equal(co_metric_decode(&gl, &gt, q, m, 32, 1, 1, &d), MU_OK);
    assert_true(gl == 0 && gt == 10);
    assert_int_equal(co_metric_encode(q, m, NAN, 10, 32, 1, &d), MU_ERR_INVALID);
    assert_int_equal(co_metric_encode(q, m + 1, 1, 10, 32, 1, &d), MU_ERR_INVALID);
    assert_int_equal(co_metric_encode(q, 0, 1, 10, 8, 256, &d), MU_ERR_INVALID);
    /* what an org masks: w·Δ, w and the metrics in training, the metrics alone in evaluation */
    co_round_config c = {.kind = CO_ROUND_TRAIN, .dim = 1000, .bits = 32, .quant_n = 10};
    assert_int_equal(co_secagg_dim(&c), 1000 + 1 + 5);
    c.kind = CO_ROUND_EVAL;
    assert_int_equal(co_secagg_dim(&c), 5);
    c.bits = 16, c.quant_n = 100;
    assert_int_equal(co_secagg_dim(&c), 12);
}

/* A version-6 EVAL report (28 bytes): the org's evaluation loss sum and token count in the
 * clear after the round. */
static void v6_eval_report(uint8_t b[28], uint64_t round, double loss_sum, double tokens)
{
    memcpy(b, "CR", 2);
    b[2] = 6;
    b[3] = CO_REPORT_EVAL;
    for (int i = 0; i < 8; i++)
        b[4 + i] = (uint8_t)(round >> (8 * i));
    uint64_t lb, tb;
    memcpy(&lb, &loss_sum, 8);
    memcpy(&tb, &tokens, 8);
    for (int i = 0; i < 8; i++) {
        b[12 + i] = (uint8_t)(lb >> (8 * i));
        b[20 + i] = (uint8_t)(tb >> (8 * i));
    }
}

static void test_report(void **state)
{
    (void)state;
    co_report r = {CO_REPORT_READY, 7}, u;
    uint8_t b[CO_REPORT_BYTES];
    assert_int_equal(CO_REPORT_BYTES, 12); /* "CR", version, type, round: no numbers */
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_OK);
    assert_int_equal(u.type, CO_REPORT_READY);
    assert_int_equal(u.round, 7);
    r = (co_report){CO_REPORT_EVAL, 8};
    co_report_encode(&r, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_OK);
    assert_int_equal(u.type, CO_REPORT_EVAL);
    assert_int_equal(u.round, 8);
    assert_int_equal(co_report_decode(&u, b, sizeof b - 1), MU_ERR_FORMAT);
    /* wire 7: an EVAL that carries the loss and tokens (version 6's 28 bytes, or 28 bytes of
     * this version) is refused: an evaluation round's loss travels in its secure sum */
    uint8_t old[28];
    v6_eval_report(old, 8, 812.25, 400);
    assert_int_equal(co_report_decode(&u, old, sizeof old), MU_ERR_FORMAT);
    old[2] = CO_WIRE_VERSION;
    assert_int_equal(co_report_decode(&u, old, sizeof old), MU_ERR_FORMAT);
    b[2] = CO_WIRE_VERSION + 1; /* a newer version */
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    b[2] = 1; /* version 1 had no LEAVE */
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    b[2] = 6; /* version 6's EVAL carried the org's evaluation loss in the clear */
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    b[2] = CO_WIRE_VERSION;
    b[3] = 4; /* type */
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    b[3] = 0;
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_ERR_FORMAT);
    /* LEAVE: a round and nothing else */
    co_report leave = {CO_REPORT_LEAVE, 9};
    co_report_encode(&leave, b);
    assert_int_equal(co_report_decode(&u, b, sizeof b), MU_OK);
    assert_int_equal(u.type, CO_REPORT_LEAVE);
    assert_int_equal(u.round, 9);
    uint8_t longer[CO_REPORT_BYTES + 1] = {0};
    memcpy(longer, b, sizeof b);
    assert_int_equal(co_report_decode(&u, longer, sizeof longer), MU_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_round_trip),
        cmocka_unit_test(test_task_bad_bytes),
        cmocka_unit_test(test_task_out_of_range),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_metric),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
