/* HDF5 checkpoints: round trip, config hash check, truncated and corrupted files, crash
 * leftovers, a full disk (injected by tests/fault/fault_write.c, linked in). Files go to the
 * test's working directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co_checkpoint.h"
#include "mu_log.h"

/* HDF5 1.10.8 leaks metadata-cache entries inside the library when it rejects a corrupted
 * object header (only the corruption sweep triggers it). Suppress leaks allocated inside
 * libhdf5 only: our own allocations are made from our code and stay checked. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5_serial.so\n";
}

/* A sample checkpoint; every value derives from `salt` so two samples differ everywhere. */
typedef struct {
    float a[6], b[4], m[10], v[10];
    co_tensor t[2];
    co_metrics met[2];
    co_org orgs[3];
    co_checkpoint ck;
} sample;

static void make_sample(sample *s, float salt)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 6; i++)
        s->a[i] = 1234.5f + salt + (float)i * 0.25f;
    for (int i = 0; i < 4; i++)
        s->b[i] = -7.0f * (float)i + salt;
    for (int i = 0; i < 10; i++) {
        s->m[i] = 0.1f * (float)i + salt;
        s->v[i] = 0.01f * (float)(i * i) + salt;
    }
    s->t[0] = (co_tensor){.name = "base_model.model.h.0.attn.c_attn.lora_A.weight",
                          .ndim = 2,
                          .shape = {2, 3},
                          .data = s->a};
    s->t[1] = (co_tensor){.name = "lora_B", .ndim = 1, .shape = {4}, .data = s->b};
    for (int i = 0; i < 2; i++)
        s->met[i] = (co_metrics){.round = (uint64_t)i + 1,
                                 .kind = (uint8_t)i,
                                 .outcome = (uint8_t)(1 - i),
                                 .loss = 2.5 - i + salt,
                                 .tokens = 1000.0 * (i + 1),
                                 .orgs_selected = 3,
                                 .orgs_completed = 3 - (uint32_t)i,
                                 .orgs_dropped = (uint32_t)i,
                                 .bytes_in = 1ull << 33,
                                 .bytes_out = 12345,
                                 .t_start = 10.0 * i,
                                 .t_end = 10.0 * i + 5,
                                 .epsilon = 0.5 + i,
                                 .dp_tracked = 3,
                                 .record_epsilon = i ? INFINITY : 1.25,
                                 .released = (uint8_t)(1 - i)};
    for (int i = 0; i < 3; i++) {
        s->orgs[i].id = (uint32_t)i + 1;
        snprintf(s->orgs[i].name, sizeof s->orgs[i].name, "org-%d", i);
        memset(s->orgs[i].pk, 0x40 + i + (int)salt, CO_ORG_PK_BYTES);
    }
    s->ck = (co_checkpoint){.round = 7 + (uint64_t)salt,
                            .tensors = s->t,
                            .n_tensors = 2,
                            .strategy = 2,
                            .opt_step = 6,
                            .opt_d = 10,
                            .opt_m = s->m,
                            .opt_v = s->v,
                            .metrics = s->met,
                            .n_metrics = 2,
                            .orgs = s->orgs,
                            .n_orgs = 3};
    memset(s->ck.config_hash, 0xab, CO_HASH_BYTES);
}

static void expect_same(const co_checkpoint *a, const co_checkpoint *b)
{
    assert_int_equal(a->round, b->round);
    assert_memory_equal(a->config_hash, b->config_hash, CO_HASH_BYTES);
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (size_t i = 0; i < a->n_tensors; i++) {
        assert_string_equal(a->tensors[i].name, b->tensors[i].name);
        assert_int_equal(a->tensors[i].ndim, b->tensors[i].ndim);
        assert_memory_equal(a->tensors[i].shape, b->tensors[i].shape,
                            sizeof a->tensors[i].shape[0] * (size_t)a->tensors[i].ndim);
        assert_memory_equal(a->tensors[i].data, b->tensors[i].data,
                            sizeof(float) * co_tensor_numel(&a->tensors[i]));
    }
    assert_int_equal(a->strategy, b->strategy);
    assert_int_equal(a->opt_step, b->opt_step);
    assert_int_equal(a->opt_d, b->opt_d);
    assert_memory_equal(a->opt_m, b->opt_m, a->opt_d * sizeof(float));
    assert_memory_equal(a->opt_v, b->opt_v, a->opt_d * sizeof(float));
    assert_int_equal(a->n_metrics, b->n_metrics);
    assert_memory_equal(a->metrics, b->metrics, a->n_metrics * sizeof *a->metrics);
    assert_int_equal(a->n_orgs, b->n_orgs);
    assert_memory_equal(a->orgs, b->orgs, a->n_orgs * sizeof *a->orgs);
}

static void fresh_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void spit(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static unsigned char *find(unsigned char *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

static void test_round_trip(void **state)
{
    (void)state;
    sample s;
    make_sample(&s, 0);
    fresh_dir("ck_rt");
    mu_diag d = {{0}};
    co_checkpoint got;
    assert_int_equal(co_checkpoint_load("ck_rt", NULL, 0, &got, &d), MU_ERR_NOTFOUND);
    assert_int_equal(co_checkpoint_write("ck_rt", &s.ck, &d), MU_OK);
    assert_int_equal(co_checkpoint_load("ck_rt", s.ck.config_hash, 0, &got, &d), MU_OK);
    expect_same(&s.ck, &got);
    co_checkpoint_deinit(&got);

    /* An overwrite replaces everything; FedAvg (no optimizer state), no metrics, no orgs. */
    sample s2;
    make_sample(&s2, 3);
    s2.ck.opt_m = s2.ck.opt_v = NULL;
    s2.ck.opt_d = 0;
    s2.ck.n_metrics = 0;
    s2.ck.n_orgs = 0;
    s2.ck.strategy = 0;
    assert_int_equal(co_checkpoint_write("ck_rt", &s2.ck, &d), MU_OK);
    assert_int_equal(co_checkpoint_load("ck_rt", NULL, 0, &got, &d), MU_OK);
    expect_same(&s2.ck, &got);
    assert_null(got.opt_m);
    co_checkpoint_deinit(&got);
    assert_int_equal(access("ck_rt/checkpoint.h5.tmp", F_OK), -1);

    /* A tensor with no name is refused and leaves the previous checkpoint alone. */
    s.t[1].name = "";
    assert_int_equal(co_checkpoint_write("ck_rt", &s.ck, &d), MU_ERR_INVALID);
    assert_int_equal(co_checkpoint_load("ck_rt", NULL, 0, &got, &d), MU_OK);
    expect_same(&s2.ck, &got);
    co_checkpoint_deinit(&got);
}

/* The state hash is the same for a state and its loaded checkpoint, ignores the config hash
 * and the derived dp_tracked, and changes with each part a successor resumes from. */
static void test_state_hash(void **state)
{
    (void)state;
    sample s;
    make_sample(&s, 0);
    fresh_dir("ck_sh");
    mu_diag d = {{0}};
    co_checkpoint got;
    uint8_t h[CO_HASH_BYTES], h2[CO_HASH_BYTES];
    co_checkpoint_state_hash(&s.ck, h);
    assert_int_equal(co_checkpoint_write("ck_sh", &s.ck, &d), MU_OK);
    assert_int_equal(co_checkpoint_load("ck_sh", NULL, 0, &got, &d), MU_OK);
    co_checkpoint_state_hash(&got, h2);
    co_checkpoint_deinit(&got);
    assert_memory_equal(h, h2, CO_HASH_BYTES);
    memset(s.ck.config_hash, 0xcd, CO_HASH_BYTES);
    s.met[0].dp_tracked = 0;
    co_checkpoint_state_hash(&s.ck, h2);
    assert_memory_equal(h, h2, CO_HASH_BYTES);
#define CHANGES(stmt)                                                                              \
    do {                                                                                           \
        make_sample(&s, 0);                                                                        \
        stmt;                                                                                      \
        co_checkpoint_state_hash(&s.ck, h2);                                                       \
        if (!memcmp(h, h2, CO_HASH_BYTES))                                                         \
            fail_msg("the state hash ignores: %s", #stmt);                                         \
    } while (0)
    CHANGES(s.m[9] = nextafterf(s.m[9], 1e9f));
    CHANGES(s.v[0] = -s.v[0]);
    CHANGES(s.ck.opt_v = NULL);
    CHANGES(s.ck.opt_step++);
    CHANGES(s.ck.strategy = 3);
    CHANGES(s.ck.round++);
    CHANGES(s.b[3] += 1.0f);
    CHANGES(s.t[1].name = "lora_C");
    CHANGES(s.t[0].shape[0] = 3; s.t[0].shape[1] = 2);
    CHANGES(s.met[1].released = 1);
    CHANGES(s.met[0].epsilon = 0.25);
    CHANGES(s.ck.n_metrics = 1);
    CHANGES(s.orgs[2].pk[31] ^= 1);
    CHANGES(s.orgs[1].name[4] = '9');
#undef CHANGES
}

static void test_config_hash(void **state)
{
    (void)state;
    sample s;
    make_sample(&s, 0);
    fresh_dir("ck_hash");
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("ck_hash", &s.ck, &d), MU_OK);
    uint8_t other[CO_HASH_BYTES];
    memset(other, 0xcd, sizeof other);
    co_checkpoint got;
    assert_int_equal(co_checkpoint_load("ck_hash", other, 0, &got, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "another config"));
    assert_non_null(strstr(d.msg, "abababab"));
    assert_null(got.tensors);
    mu_log_set_level(MU_LOG_ERROR); /* the override warns; keep the test output clean */
    assert_int_equal(co_checkpoint_load("ck_hash", other, 1, &got, &d), MU_OK);
    mu_log_set_level(MU_LOG_INFO);
    expect_same(&s.ck, &got);
    co_checkpoint_deinit(&got);

    /* The config hash is BLAKE2b-256 of the file's bytes. */
    const char *text = "federation:\n  name: coop\n";
    spit("ck_hash/cfg.yaml", (const unsigned char *)text, strlen(text));
    uint8_t h[CO_HASH_BYTES], want[CO_HASH_BYTES];
    assert_int_equal(co_hash_file("ck_hash/cfg.yaml", h, &d), MU_OK);
    crypto_generichash(want, sizeof want, (const unsigned char *)text, strlen(text), NULL, 0);
    assert_memory_equal(h, want, sizeof h);
    spit("ck_hash/cfg.yaml", (const unsigned char *)text, strlen(text) - 1);
    assert_int_equal(co_hash_file("ck_hash/cfg.yaml", h, &d), MU_OK);
    assert_memory_not_equal(h, want, sizeof h);
    assert_int_equal(co_hash_file("ck_hash/absent.yaml", h, &d), MU_ERR_IO);
    char hex[17];
    uint8_t bytes[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    assert_string_equal(co_hash_hex(bytes, 8, hex), "0123456789abcdef");
}

static void test_truncated(void **state)
{
    (void)state;
    sample s;
    make_sample(&s, 0);
    fresh_dir("ck_trunc");
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("ck_trunc", &s.ck, &d), MU_OK);
    size_t len;
    unsigned char *buf = slurp("ck_trunc/checkpoint.h5", &len);
    size_t cuts[] = {0, 1, 8, 100, 512, len / 4, len / 2, len - 100, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit("ck_trunc/checkpoint.h5", buf, cuts[i]);
        co_checkpoint got;
        d.msg[0] = 0;
        int rc = co_checkpoint_load("ck_trunc", NULL, 0, &got, &d);
        if (rc != MU_ERR_FORMAT)
            fail_msg("cut at %zu of %zu: rc %d (%s)", cuts[i], len, rc, d.msg);
        assert_non_null(strstr(d.msg, "checkpoint.h5"));
        assert_null(got.tensors);
    }
    free(buf);
}

static void test_corrupted(void **state)
{
    (void)state;
    sample s;
    make_sample(&s, 0);
    fresh_dir("ck_bad");
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("ck_bad", &s.ck, &d), MU_OK);
    size_t len;
    unsigned char *orig = slurp("ck_bad/checkpoint.h5", &len);
    unsigned char *buf = malloc(len);
    assert_non_null(buf);

    /* A flipped byte inside the adapter's data must be caught (Fletcher-32). */
    unsigned char *hit = find(orig, len, s.a, sizeof s.a);
    assert_non_null(hit);
    memcpy(buf, orig, len);
    buf[(size_t)(hit - orig) + 9] ^= 0x10;
    spit("ck_bad/checkpoint.h5", buf, len);
    co_checkpoint got;
    assert_int_equal(co_checkpoint_load("ck_bad", NULL, 0, &got, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "/adapter"));

    /* Any flipped byte: an error, or exactly the original content. Never a crash. */
    int errors = 0, oks = 0;
    for (size_t pos = 0; pos < len; pos += 7) {
        memcpy(buf, orig, len);
        buf[pos] ^= 0xa5;
        spit("ck_bad/checkpoint.h5", buf, len);
        int rc = co_checkpoint_load("ck_bad", NULL, 0, &got, &d);
        if (rc == MU_OK) {
            expect_same(&s.ck, &got);
            co_checkpoint_deinit(&got);
            oks++;
        } else {
            assert_int_equal(rc, MU_ERR_FORMAT);
            errors++;
        }
    }
    assert_true(errors > 0);
    print_message("corruption sweep: %d detected, %d harmless (unused bytes)\n", errors, oks);
    free(buf);
    free(orig);
}

static void test_crash_leftover(void **state)
{
    (void)state;
    sample a, b;
    make_sample(&a, 0);
    make_sample(&b, 5);
    fresh_dir("ck_crash");
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("ck_crash", &a.ck, &d), MU_OK);
    /* Simulate a kill during the next write: B's file half-written as the temp file. */
    fresh_dir("ck_crash_b");
    assert_int_equal(co_checkpoint_write("ck_crash_b", &b.ck, &d), MU_OK);
    size_t len;
    unsigned char *half = slurp("ck_crash_b/checkpoint.h5", &len);
    spit("ck_crash/checkpoint.h5.tmp", half, len / 2);
    free(half);
    co_checkpoint got;
    assert_int_equal(co_checkpoint_load("ck_crash", NULL, 0, &got, &d), MU_OK);
    expect_same(&a.ck, &got);
    co_checkpoint_deinit(&got);
    /* The next write goes over the leftover and wins. */
    assert_int_equal(co_checkpoint_write("ck_crash", &b.ck, &d), MU_OK);
    assert_int_equal(co_checkpoint_load("ck_crash", NULL, 0, &got, &d), MU_OK);
    expect_same(&b.ck, &got);
    co_checkpoint_deinit(&got);
    assert_int_equal(access("ck_crash/checkpoint.h5.tmp", F_OK), -1);
    /* A directory that does not exist: a clear I/O error, nothing written. */
    assert_int_equal(co_checkpoint_write("ck_crash/missing/dir", &b.ck, &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "ck_crash/missing/dir"));
}

/* A full disk while writing: a clear I/O error naming the file, the previous checkpoint
 * byte for byte intact, no temp file; and no crash in HDF5's exit handler afterwards (HDF5
 * 1.10 used to leave a half-closed file id behind that H5_term_library then dereferenced). */
static void test_disk_full(void **state)
{
    (void)state;
    sample a, b;
    make_sample(&a, 0);
    make_sample(&b, 7);
    fresh_dir("ck_full");
    mu_diag d = {{0}};
    assert_int_equal(co_checkpoint_write("ck_full", &a.ck, &d), MU_OK);
    size_t len, len2;
    unsigned char *orig = slurp("ck_full/checkpoint.h5", &len);
    /* room for the first 2 KiB of the new file only (it needs about 11 KiB) */
    assert_int_equal(setenv("MU_FAULT_ENOSPC", "ck_full/checkpoint.h5.tmp", 1), 0);
    assert_int_equal(setenv("MU_FAULT_ENOSPC_AT", "2048", 1), 0);
    int rc = co_checkpoint_write("ck_full", &b.ck, &d);
    unsetenv("MU_FAULT_ENOSPC");
    unsetenv("MU_FAULT_ENOSPC_AT");
    assert_int_equal(rc, MU_ERR_IO);
    if (!strstr(d.msg, "ck_full/checkpoint.h5.tmp") || !strstr(d.msg, "No space left"))
        fail_msg("unclear message: %s", d.msg);
    assert_int_equal(access("ck_full/checkpoint.h5.tmp", F_OK), -1);
    unsigned char *now = slurp("ck_full/checkpoint.h5", &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(now, orig, len);
    free(now);
    free(orig);
    co_checkpoint got;
    assert_int_equal(co_checkpoint_load("ck_full", NULL, 0, &got, &d), MU_OK);
    expect_same(&a.ck, &got);
    co_checkpoint_deinit(&got);
    /* space again: the next write goes through */
    assert_int_equal(co_checkpoint_write("ck_full", &b.ck, &d), MU_OK);
    assert_int_equal(co_checkpoint_load("ck_full", NULL, 0, &got, &d), MU_OK);
    expect_same(&b.ck, &got);
    co_checkpoint_deinit(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_state_hash),
        cmocka_unit_test(test_config_hash), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupted),   cmocka_unit_test(test_crash_leftover),
        cmocka_unit_test(test_disk_full),
    };
    if (getenv("CO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CO_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
