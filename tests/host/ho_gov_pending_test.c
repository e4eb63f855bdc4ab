/* A restarted coordinator and a damaged CHECKPOINT_DIR/leave.pending (ho_gov_open): the file is
 * written whole or not at all (mu_write_file_atomic), so a crash does not damage it, but an
 * edit, a copy from another run or a bad disk can. A leave notice is the member's signed
 * statement, so one that does not check is never applied; and serve still starts: the notices
 * that check are logged, the file's bytes are kept as leave.pending.bad-NOW, a warning names
 * both files and why, and the log still verifies. A file that cannot be read (I/O) stops
 * serve naming it. The state comes from the real path: two members admitted, their notices
 * accepted during a round (ho_gov_leave in flight), the coordinator gone before the round's
 * end; each case starts from a copy of that folder with the file rewritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co_round.h"
#include "gv_fixture.h"
#include "gv_store.h"
#include "ho_gov.h"
#include "mu_file.h"

#define BASE  "hgp_base"
#define CASE  "hgp_case"
#define NOW   1900000000ull
#define ALPHA 0
#define BETA  1
#define GAMMA 2
#define OMEGA 4 /* not on the roster */

static co_round *round_m;
static float weights[4];
static uint8_t config_hash[GV_HASH_BYTES], log_id[GV_HASH_BYTES];
static const char *const NAMES[] = {"alpha", "beta", "gamma", "coord", "omega"};
static uint8_t *good; /* BASE's leave.pending: alpha's record, then beta's */
static size_t good_len, rec0_len;

static ho_gov *open_gov(const char *dir, uint64_t now, mu_diag *d)
{
    ho_gov_opts o = {.chain_path = BASE ".chain",
                     .key_path = BASE ".key",
                     .dir = dir,
                     .config_hash = config_hash,
                     .now = now,
                     .instance = now,
                     .round = round_m};
    return ho_gov_open(&o, d);
}

/* A pending-file record: u16 big-endian length and the notice of member `who` for `id`,
 * signed with key `key`. Appended at buf+*len. */
static void record(uint8_t *buf, size_t *len, int who, int key, const uint8_t id[GV_HASH_BYTES])
{
    gv_leave l;
    memset(&l, 0, sizeof l);
    memcpy(l.log_id, id, GV_HASH_BYTES);
    snprintf(l.name, sizeof l.name, "%s", NAMES[who]);
    gv_leave_sign(l.sig, id, l.name, fx_sk[key]);
    uint8_t *e = NULL;
    size_t n = 0;
    assert_int_equal(gv_leave_encode(&l, &e, &n, NULL), MU_OK);
    buf[*len] = (uint8_t)(n >> 8);
    buf[*len + 1] = (uint8_t)n;
    memcpy(buf + *len + 2, e, n);
    *len += 2 + n;
    free(e);
}

static void run(const char *cmd)
{
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    fx_keys();
    run("rm -rf " BASE " " BASE ".chain " BASE ".key " CASE);
    gv_signed s;
    memset(&s, 0, sizeof s);
    fx_genesis(&s.charter);
    memcpy(config_hash, s.charter.training_hash, GV_HASH_BYTES);
    fx_sign(&s, (const int[]){0, 1, 2, -1});
    assert_int_equal(gv_chain_save(BASE ".chain", &s, 1, NULL), MU_OK);
    assert_int_equal(gv_charter_hash(&s.charter, log_id, NULL), MU_OK);
    FILE *f = fopen(BASE ".key", "w"); /* the coordinator's seed, as fx_keys makes it */
    assert_non_null(f);
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", 0x40 + 3);
    fclose(f);
    co_config cfg;
    co_config_default(&cfg);
    co_tensor t = {.name = "w", .ndim = 1, .shape = {4}, .data = weights};
    round_m = co_round_new(&cfg, &t, 1, NULL);
    co_config_deinit(&cfg);
    assert_non_null(round_m);

    /* alpha and beta admitted; their notices accepted while a round runs; then gone. */
    mu_diag d = {{0}};
    ho_gov *g = open_gov(BASE, NOW, &d);
    if (!g)
        fail_msg("ho_gov_open: %s", d.msg);
    for (int m = ALPHA; m <= BETA; m++) {
        assert_int_equal(ho_gov_admit(g, NAMES[m], fx_pk[m], NOW, &d), MU_OK);
        uint8_t buf[2 + GV_LEAVE_MAX_BYTES];
        size_t n = 0;
        record(buf, &n, m, m, log_id);
        assert_int_equal(ho_gov_leave(g, NAMES[m], buf + 2, n - 2, 1, NOW, &d), 0);
    }
    ho_gov_free(g);
    char *b = NULL;
    assert_int_equal(mu_read_file(BASE "/" HO_GOV_PENDING_FILE, 4096, &b, &good_len, &d), MU_OK);
    good = (uint8_t *)b;
    rec0_len = 2 + ((size_t)good[0] << 8 | good[1]);
    assert_true(rec0_len < good_len);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    co_round_free(round_m);
    free(good);
    return system("rm -rf " BASE " " BASE ".chain " BASE ".key " CASE " " CASE ".err");
}

/* The leave entries of DIR's log: a bit per member (1 << index), and their count. */
static unsigned logged_leaves(const char *dir, int *count)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, HO_GOV_LOG_FILE);
    gv_log *log = NULL;
    assert_int_equal(gv_log_load(path, &log, NULL), MU_OK);
    gv_signed *chain = NULL;
    size_t n_chain = 0, bad = 0;
    mu_diag d = {{0}};
    assert_int_equal(gv_chain_load(BASE ".chain", &chain, &n_chain, NULL), MU_OK);
    if (gv_log_verify(log, chain, n_chain, &bad, &d))
        fail_msg("the log no longer verifies: %s", d.msg);
    unsigned who = 0;
    *count = 0;
    gv_entry *e = malloc(sizeof *e);
    for (size_t i = 0; i < gv_log_len(log); i++) {
        assert_int_equal(gv_log_entry(log, i, e), MU_OK);
        if (e->kind != GV_ENTRY_LEAVE)
            continue;
        ++*count;
        for (int m = 0; m < 5; m++)
            if (!strcmp(e->member, NAMES[m]))
                who |= 1u << m;
    }
    free(e);
    free(chain);
    gv_log_free(log);
    return who;
}

/* ho_gov_open on a copy of BASE with leave.pending := b[0..n) (no file for NULL), stderr
 * captured; returns the gov (NULL: d says why) and what it wrote to stderr in err. */
static ho_gov *open_case(const void *b, size_t n, uint64_t now, mu_diag *d, char *err, size_t cap)
{
    run("rm -rf " CASE " && cp -r " BASE " " CASE);
    if (b)
        assert_int_equal(mu_write_file_atomic(CASE "/" HO_GOV_PENDING_FILE, b, n, NULL), MU_OK);
    else
        unlink(CASE "/" HO_GOV_PENDING_FILE);
    fflush(stderr);
    int saved = dup(2), fd = open(CASE ".err", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    ho_gov *g = open_gov(CASE, now, d);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(mu_read_file(CASE ".err", 1 << 16, &text, &len, NULL), MU_OK);
    snprintf(err, cap, "%s", text);
    fputs(text, stderr); /* still shown in the test's output */
    free(text);
    return g;
}

/* Opens the case, expects a gov whose log holds the leaves `want` (bits), no leave.pending
 * left, the set-aside copy holding exactly b[0..n) (or none when warn is NULL), and warn in
 * stderr; then a second restart logs nothing more and sets nothing else aside. */
static void expect(const void *b, size_t n, unsigned want, const char *warn)
{
    static uint64_t now = NOW + 100;
    now++;
    mu_diag d = {{0}};
    char err[8192];
    ho_gov *g = open_case(b, n, now, &d, err, sizeof err);
    if (!g)
        fail_msg("serve would not start: %s", d.msg);
    for (int m = 0; m < 5; m++)
        if (ho_gov_has_left(g, NAMES[m]) != !!(want & 1u << m))
            fail_msg("%s: has_left %d, want %d", NAMES[m], ho_gov_has_left(g, NAMES[m]),
                     !!(want & 1u << m));
    ho_gov_free(g);
    int count = 0;
    assert_int_equal(logged_leaves(CASE, &count), want);
    assert_int_equal(count, __builtin_popcount(want)); /* each once */
    struct stat st;
    assert_int_not_equal(stat(CASE "/" HO_GOV_PENDING_FILE, &st), 0);
    char bad[128];
    snprintf(bad, sizeof bad, CASE "/" HO_GOV_PENDING_FILE ".bad-%llu", (unsigned long long)now);
    if (!warn) {
        assert_int_not_equal(stat(bad, &st), 0);
        if (strstr(err, HO_GOV_PENDING_FILE))
            fail_msg("a warning for a good file: %s", err);
    } else {
        char *kept = NULL;
        size_t klen = 0;
        assert_int_equal(mu_read_file(bad, 1 << 20, &kept, &klen, NULL), MU_OK);
        assert_int_equal(klen, n);
        assert_memory_equal(kept, b, n);
        free(kept);
        if (!strstr(err, "kept leave notices not applied") || !strstr(err, warn) ||
            !strstr(err, bad) || !strstr(err, CASE "/" HO_GOV_PENDING_FILE ":"))
            fail_msg("stderr lacks the warning naming both files and '%s': %s", warn, err);
    }
    /* A second restart: the same log, nothing more set aside. */
    g = open_gov(CASE, now + 1, &d);
    if (!g)
        fail_msg("the second restart failed: %s", d.msg);
    ho_gov_free(g);
    assert_int_equal(logged_leaves(CASE, &count), want);
    assert_int_equal(count, __builtin_popcount(want));
    snprintf(bad, sizeof bad, CASE "/" HO_GOV_PENDING_FILE ".bad-%llu",
             (unsigned long long)now + 1);
    assert_int_not_equal(stat(bad, &st), 0);
}

#define A (1u << ALPHA)
#define B (1u << BETA)

static void test_good(void **state)
{
    (void)state;
    expect(good, good_len, A | B, NULL);
    uint8_t twice[4 * (2 + GV_LEAVE_MAX_BYTES)];
    size_t n = 0;
    record(twice, &n, ALPHA, ALPHA, log_id);
    record(twice, &n, ALPHA, ALPHA, log_id);
    expect(twice, n, A, NULL); /* the same notice twice: one entry */
}

static void test_garbage_and_empty(void **state)
{
    (void)state;
    const char junk[] = "this is not a file of leave notices";
    expect(junk, sizeof junk - 1, 0, "the record at byte 0: truncated");
    expect("", 0, 0, "the file is empty");
    uint8_t zeros[64] = {0, 60}; /* a record of 60 zero bytes */
    expect(zeros, 62, 0, "not a leave notice (bad magic)");
}

static void test_truncated(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "the record at byte %zu: truncated", rec0_len);
    /* Cut inside beta's record: alpha's still counts. */
    expect(good, good_len - 10, A, want);
    expect(good, rec0_len + 1, A, want); /* half of beta's length */
    expect(good, 1, 0, "the record at byte 0: truncated");
    expect(good, rec0_len - 1, 0, "the record at byte 0: truncated");
}

static void test_not_verifiable(void **state)
{
    (void)state;
    uint8_t buf[8 * (2 + GV_LEAVE_MAX_BYTES)];
    size_t n = 0;
    record(buf, &n, ALPHA, BETA, log_id); /* alpha's name, beta's key: forged */
    memcpy(buf + n, good + rec0_len, good_len - rec0_len);
    n += good_len - rec0_len;
    expect(buf, n, B, "not signed by its roster key");

    uint8_t other[GV_HASH_BYTES];
    memset(other, 0x5a, sizeof other);
    n = 0;
    record(buf, &n, ALPHA, ALPHA, other);  /* signed, but for another federation */
    record(buf, &n, OMEGA, OMEGA, log_id); /* signed by someone not on the roster */
    record(buf, &n, GAMMA, GAMMA, log_id); /* on the roster, never admitted here */
    record(buf, &n, BETA, BETA, log_id);
    expect(buf, n, B, "for another federation");
    size_t first = 2 + ((size_t)buf[0] << 8 | buf[1]);
    expect(buf + first, n - first, B, "not on the roster");
    n = 0;
    record(buf, &n, GAMMA, GAMMA, log_id);
    expect(buf, n, 0, "'gamma' was never admitted in this log");

    /* A flipped byte in alpha's signature, then the rest as it was: 1 not applied. */
    memcpy(buf, good, good_len);
    buf[rec0_len - 1] ^= 1;
    expect(buf, good_len, B, "the record at byte 0: the leave notice of 'alpha' is not signed");
}

static void test_too_large(void **state)
{
    (void)state;
    size_t n = GV_MEMBERS_MAX * (2 + GV_LEAVE_MAX_BYTES) + 1;
    uint8_t *big = calloc(1, n);
    memcpy(big, good, good_len);
    expect(big, n, 0, "larger than");
    free(big);
}

/* Unreadable is not unverifiable: serve stops, naming the file. */
static void test_unreadable(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    run("rm -rf " CASE " && cp -r " BASE " " CASE " && rm " CASE "/" HO_GOV_PENDING_FILE
        " && mkdir " CASE "/" HO_GOV_PENDING_FILE);
    ho_gov *g = open_gov(CASE, NOW + 50, &d);
    assert_null(g);
    if (!strstr(d.msg, CASE "/" HO_GOV_PENDING_FILE))
        fail_msg("the error does not name the file: %s", d.msg);
    int count = 0;
    assert_int_equal(logged_leaves(CASE, &count), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),      cmocka_unit_test(test_garbage_and_empty),
        cmocka_unit_test(test_truncated), cmocka_unit_test(test_not_verifiable),
        cmocka_unit_test(test_too_large), cmocka_unit_test(test_unreadable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
