/* gv_log_test.c - the audit log: a good log verifies; each kind of tampering is named by
 * entry; the rules (config hash, cohort, release quorum, leave); witnessed heads catch forks. */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "gv_fixture.h"
#include "wi_stage.h"

static gv_signed chain[2];
static gv_entry e;
static uint8_t log_id[GV_HASH_BYTES];

/* The good log: 0 charter, 1-3 admissions, 4 round 1 (gamma dropped at MASKED), 5 release of
 * round 1 by alpha and beta, 6 restart, 7 round 2, 8 gamma leaves. */
enum { ENTRY_ROUND1 = 4, ENTRY_RELEASE = 5, GOOD_LEN = 9 };

static void add(gv_log *log, const gv_entry *x)
{
    e = *x;
    assert_int_equal(gv_log_append(log, &e, fx_sk[3], NULL), MU_OK);
}

static void round_entry(gv_entry *x, uint64_t round)
{
    memset(x, 0, sizeof *x);
    x->kind = GV_ENTRY_ROUND;
    x->round = round;
    memset(x->config_hash, 0x11, GV_HASH_BYTES);
    memset(x->aggregate_hash, 0x30 + (int)round, GV_HASH_BYTES);
    memset(x->global_hash, 0x50 + (int)round, GV_HASH_BYTES);
    x->n_cohort = 3;
    strcpy(x->cohort[0], "alpha");
    strcpy(x->cohort[1], "beta");
    strcpy(x->cohort[2], "gamma");
    x->n_dropped = 1;
    strcpy(x->dropped[0].name, "gamma");
    x->dropped[0].stage = WI_STAGE_MASKED;
    strcpy(x->metrics, "{\"train_loss\":2.5}");
}

static void release_entry(gv_entry *x, uint64_t round, const int *who)
{
    memset(x, 0, sizeof *x);
    x->kind = GV_ENTRY_RELEASE;
    x->round = round;
    memset(x->global_hash, 0x50 + (int)round, GV_HASH_BYTES);
    for (; *who >= 0; who++)
        gv_release_sign(&x->sigs[x->n_sigs++], log_id, round, x->global_hash, fx_sk[*who]);
}

static gv_log *good_log(void)
{
    static const char *const names[3] = {"alpha", "beta", "gamma"};
    gv_log *log = gv_log_new();
    gv_entry x;
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_CHARTER;
    x.charter_version = 1;
    memcpy(x.charter_hash, log_id, GV_HASH_BYTES);
    add(log, &x);
    for (int i = 0; i < 3; i++) {
        memset(&x, 0, sizeof x);
        x.kind = GV_ENTRY_ADMISSION;
        strcpy(x.member, names[i]);
        memcpy(x.member_pk, fx_pk[i], GV_PK_BYTES);
        add(log, &x);
    }
    round_entry(&x, 1);
    add(log, &x);
    release_entry(&x, 1, (const int[]){0, 1, -1});
    add(log, &x);
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_RESTART;
    x.round = 1;
    x.instance = 42;
    add(log, &x);
    round_entry(&x, 2);
    add(log, &x);
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_LEAVE;
    strcpy(x.member, "gamma");
    gv_leave_sign(x.member_sig, log_id, "gamma", fx_sk[2]);
    add(log, &x);
    assert_int_equal(gv_log_len(log), GOOD_LEN);
    return log;
}

/* A copy of log with entry i replaced by `with` (encoded as is, NULL: dropped). */
static gv_log *copy_replacing(const gv_log *log, size_t i, const gv_entry *with)
{
    gv_log *out = gv_log_new();
    for (size_t j = 0; j < gv_log_len(log); j++) {
        const uint8_t *b;
        size_t n;
        if (j == i) {
            if (!with)
                continue;
            uint8_t *eb;
            assert_int_equal(gv_entry_encode(with, &eb, &n, NULL), MU_OK);
            assert_int_equal(gv_log_append_raw(out, eb, n, NULL), MU_OK);
            free(eb);
            continue;
        }
        assert_int_equal(gv_log_raw(log, j, &b, &n), MU_OK);
        assert_int_equal(gv_log_append_raw(out, b, n, NULL), MU_OK);
    }
    return out;
}

static void expect_bad(const gv_log *log, int rc, size_t entry, const char *why)
{
    mu_diag d = {{0}};
    size_t bad = 0;
    assert_int_equal(gv_log_verify(log, chain, 1, &bad, &d), rc);
    assert_int_equal(bad, entry);
    if (!strstr(d.msg, why))
        fail_msg("'%s' does not say '%s'", d.msg, why);
}

static int setup(void **state)
{
    memset(chain, 0, sizeof chain);
    fx_genesis(&chain[0].charter);
    fx_sign(&chain[0], (const int[]){0, 1, 2, -1});
    assert_int_equal(gv_charter_hash(&chain[0].charter, log_id, NULL), MU_OK);
    *state = good_log();
    return 0;
}

static int teardown(void **state)
{
    gv_log_free(*state);
    return 0;
}

static void test_good_log_verifies_and_roundtrips(void **state)
{
    gv_log *log = *state, *back = NULL;
    size_t bad = 0;
    assert_int_equal(gv_log_verify(log, chain, 1, &bad, NULL), MU_OK);
    uint8_t *b;
    size_t n;
    assert_int_equal(gv_log_encode(log, &b, &n, NULL), MU_OK);
    assert_int_equal(gv_log_decode(&back, b, n, NULL), MU_OK);
    assert_int_equal(gv_log_verify(back, chain, 1, NULL, NULL), MU_OK);
    mu_diag d;
    gv_log *none = NULL;
    assert_int_equal(gv_log_decode(&none, b, n - 1, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "entry 8"));
    assert_null(none);
    gv_log_free(back);
    free(b);
}

static void test_edited_entry_named(void **state)
{
    assert_int_equal(gv_log_entry(*state, ENTRY_ROUND1, &e), MU_OK);
    strcpy(e.metrics, "{\"train_loss\":0.1}"); /* better numbers, old signature */
    gv_log *t = copy_replacing(*state, ENTRY_ROUND1, &e);
    expect_bad(t, MU_ERR_CRYPTO, ENTRY_ROUND1, "entry 4 (round): not signed by the coordinator");
    gv_log_free(t);
}

static void test_dropped_entry_named(void **state)
{
    gv_log *t = copy_replacing(*state, ENTRY_RELEASE, NULL);
    expect_bad(t, MU_ERR_PROTOCOL, ENTRY_RELEASE, "entry 5 (restart): says it is entry 6");
    gv_log_free(t);
}

static void test_resigned_entry_named(void **state)
{
    assert_int_equal(gv_log_entry(*state, ENTRY_ROUND1, &e), MU_OK);
    assert_int_equal(gv_entry_sign(&e, fx_sk[5], NULL), MU_OK); /* an outsider's key */
    gv_log *t = copy_replacing(*state, ENTRY_ROUND1, &e);
    expect_bad(t, MU_ERR_CRYPTO, ENTRY_ROUND1,
               "not signed by the coordinator key of charter "
               "version 1");
    gv_log_free(t);
}

static void test_release_without_quorum_named(void **state)
{
    /* A coordinator-signed release carrying only alpha's signature (and beta's over another
     * round, which must not count). */
    gv_entry x;
    release_entry(&x, 1, (const int[]){0, -1});
    gv_release_sign(&x.sigs[x.n_sigs++], log_id, 2, x.global_hash, fx_sk[1]);
    x.index = ENTRY_RELEASE;
    assert_int_equal(gv_log_entry_hash(*state, ENTRY_RELEASE - 1, x.prev), MU_OK);
    assert_int_equal(gv_entry_sign(&x, fx_sk[3], NULL), MU_OK);
    gv_log *t = copy_replacing(*state, ENTRY_RELEASE, &x);
    expect_bad(t, MU_ERR_CRYPTO, ENTRY_RELEASE,
               "release of round 1 has 1 valid member "
               "signatures, the charter's release quorum is 2");
    gv_log_free(t);
}

/* The good log's first k entries, then `last` signed by the coordinator key sk. */
static void expect_rule(const gv_log *good, size_t k, gv_entry *last, const uint8_t *sk, int rc,
                        const char *why)
{
    gv_log *t = gv_log_new();
    for (size_t j = 0; j < k; j++) {
        const uint8_t *b;
        size_t n;
        assert_int_equal(gv_log_raw(good, j, &b, &n), MU_OK);
        assert_int_equal(gv_log_append_raw(t, b, n, NULL), MU_OK);
    }
    assert_int_equal(gv_log_append(t, last, sk, NULL), MU_OK);
    expect_bad(t, rc, k, why);
    gv_log_free(t);
}

static void test_round_rules(void **state)
{
    gv_entry x;
    round_entry(&x, 1);
    memset(x.config_hash, 0x22, GV_HASH_BYTES);
    expect_rule(*state, 4, &x, fx_sk[3], MU_ERR_PROTOCOL, "not charter version 1's training");
    round_entry(&x, 1);
    strcpy(x.cohort[2], "mallory"); /* a key the roster does not hold */
    strcpy(x.dropped[0].name, "beta");
    expect_rule(*state, 4, &x, fx_sk[3], MU_ERR_PROTOCOL, "'mallory' is not an admitted member");
    round_entry(&x, 1);
    strcpy(x.dropped[1].name, "beta");
    x.n_dropped = 2; /* one survivor, the charter's minimum is 2 */
    expect_rule(*state, 4, &x, fx_sk[3], MU_ERR_PROTOCOL, "1 survivors");
    round_entry(&x, 1);
    expect_rule(*state, 2, &x, fx_sk[3], MU_ERR_PROTOCOL, "'beta' is not an admitted member");
}

/* Entry formats: a round entry of format 2 carries its state hash, which the signature covers;
 * a whole log of format 1 entries (written before state hashes) still verifies; a format-1
 * entry after format-2 ones is refused. */
static void test_entry_formats(void **state)
{
    gv_entry x, y;
    round_entry(&x, 1);
    memset(x.state_hash, 0x77, GV_HASH_BYTES);
    uint8_t *b;
    size_t n;
    assert_int_equal(gv_entry_encode(&x, &b, &n, NULL), MU_OK);
    assert_int_equal(b[0], GV_ENTRY_FORMAT);
    assert_int_equal(gv_entry_decode(&y, b, n, NULL), MU_OK);
    assert_int_equal(y.format, GV_ENTRY_FORMAT);
    assert_memory_equal(y.state_hash, x.state_hash, GV_HASH_BYTES);
    free(b);
    gv_log *good = *state, *edited = NULL;
    assert_int_equal(gv_log_entry(good, ENTRY_ROUND1, &x), MU_OK);
    x.state_hash[0] ^= 1; /* the coordinator's signature covers the state hash */
    edited = copy_replacing(good, ENTRY_ROUND1, &x);
    expect_bad(edited, MU_ERR_CRYPTO, ENTRY_ROUND1, "not signed by the coordinator");
    gv_log_free(edited);

    gv_log *old = gv_log_new(); /* the good log as format 1 throughout */
    for (size_t i = 0; i < gv_log_len(good); i++) {
        assert_int_equal(gv_log_entry(good, i, &x), MU_OK);
        x.format = GV_ENTRY_FORMAT_V1;
        memset(x.state_hash, 0, GV_HASH_BYTES);
        add(old, &x);
    }
    assert_int_equal(gv_log_verify(old, chain, 1, NULL, NULL), MU_OK);
    assert_int_equal(gv_log_entry(old, ENTRY_ROUND1, &x), MU_OK);
    assert_int_equal(x.format, GV_ENTRY_FORMAT_V1);
    const uint8_t *raw;
    size_t n2 = 0;
    assert_int_equal(gv_log_raw(old, ENTRY_ROUND1, &raw, &n), MU_OK);
    assert_int_equal(gv_log_raw(good, ENTRY_ROUND1, &raw, &n2), MU_OK);
    assert_int_equal(n + GV_HASH_BYTES, n2); /* format 1 holds no state hash */
    gv_log_free(old);

    round_entry(&x, 2); /* after format-2 entries, a format-1 one */
    x.format = GV_ENTRY_FORMAT_V1;
    expect_rule(good, ENTRY_RELEASE + 2, &x, fx_sk[3], MU_ERR_PROTOCOL,
                "entry format 1 after format 2 entries");
}

static void test_other_rules(void **state)
{
    gv_entry x;
    release_entry(&x, 3, (const int[]){0, 1, -1}); /* a round never logged */
    expect_rule(*state, 5, &x, fx_sk[3], MU_ERR_PROTOCOL, "no entry for");
    release_entry(&x, 1, (const int[]){0, 1, -1}); /* twice */
    expect_rule(*state, 6, &x, fx_sk[3], MU_ERR_PROTOCOL, "a second time");
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_LEAVE;
    strcpy(x.member, "beta");
    gv_leave_sign(x.member_sig, log_id, "beta", fx_sk[0]); /* alpha signs beta's notice */
    expect_rule(*state, 8, &x, fx_sk[3], MU_ERR_CRYPTO, "not signed by 'beta'");
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_ADMISSION;
    strcpy(x.member, "delta");
    memcpy(x.member_pk, fx_pk[4], GV_PK_BYTES);
    expect_rule(*state, 4, &x, fx_sk[3], MU_ERR_PROTOCOL, "not on the roster");
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_RESTART;
    x.round = 2; /* only round 1 is logged by entry 5 */
    expect_rule(*state, 5, &x, fx_sk[3], MU_ERR_PROTOCOL, "restart from round 2, last round 1");
    round_entry(&x, 3); /* gamma left at entry 8 */
    expect_rule(*state, 9, &x, fx_sk[3], MU_ERR_PROTOCOL, "'gamma' is not an admitted");
}

/* A coordinator that logged round 2, crashed before checkpointing it and resumed from round
 * 1 runs round 2 again: the restart entry lets round 2 be logged a second time (with its new
 * result), but only after a restart, and a release then names the latest one. */
static void test_restart_reruns_round(void **state)
{
    gv_log *t = copy_replacing(*state, 99, NULL);
    gv_entry x;
    mu_diag d;
    size_t bad;
    round_entry(&x, 2);
    x.n_cohort = 2; /* gamma left */
    x.n_dropped = 0;
    memset(x.global_hash, 0x77, GV_HASH_BYTES);
    e = x;
    assert_int_equal(gv_log_append(t, &e, fx_sk[3], NULL), MU_OK); /* no restart before it */
    assert_int_equal(gv_log_verify(t, chain, 1, &bad, &d), MU_ERR_PROTOCOL);
    assert_int_equal(bad, GOOD_LEN);
    assert_non_null(strstr(d.msg, "round 2 after round 2"));
    gv_log_free(t);
    t = copy_replacing(*state, 99, NULL);
    gv_entry r;
    memset(&r, 0, sizeof r);
    r.kind = GV_ENTRY_RESTART;
    r.round = 1;
    e = r;
    assert_int_equal(gv_log_append(t, &e, fx_sk[3], NULL), MU_OK);
    e = x;
    assert_int_equal(gv_log_append(t, &e, fx_sk[3], NULL), MU_OK);
    assert_int_equal(gv_log_verify(t, chain, 1, &bad, &d), MU_OK);
    release_entry(&r, 2, (const int[]){0, 1, -1}); /* the first run's global: not the latest */
    e = r;
    assert_int_equal(gv_log_append(t, &e, fx_sk[3], NULL), MU_OK);
    assert_int_equal(gv_log_verify(t, chain, 1, &bad, &d), MU_ERR_PROTOCOL);
    assert_int_equal(bad, GOOD_LEN + 2);
    gv_log_free(t);
}

/* Version 2 names a new coordinator (key 4): it signs the charter entry adopting version 2
 * and everything after; the old key no longer can. */
static void test_coordinator_handover_in_log(void **state)
{
    fx_next(&chain[1].charter, &chain[0].charter);
    memcpy(chain[1].charter.coord_pk, fx_pk[4], GV_PK_BYTES);
    strcpy(chain[1].charter.coord_addr, "alpha.example:7443");
    fx_sign(&chain[1], (const int[]){0, 1, 2, -1}); /* change_coordinator is 3-of-3 */
    assert_int_equal(gv_chain_verify(chain, 2, NULL, NULL), MU_OK);
    gv_log *t = copy_replacing(*state, 99, NULL);
    gv_entry x;
    memset(&x, 0, sizeof x);
    x.kind = GV_ENTRY_CHARTER;
    x.charter_version = 2;
    assert_int_equal(gv_charter_hash(&chain[1].charter, x.charter_hash, NULL), MU_OK);
    e = x;
    mu_diag d;
    size_t bad;
    assert_int_equal(gv_log_append(t, &e, fx_sk[3], NULL), MU_OK); /* the old coordinator */
    assert_int_equal(gv_log_verify(t, chain, 2, &bad, &d), MU_ERR_CRYPTO);
    assert_int_equal(bad, GOOD_LEN);
    assert_non_null(strstr(d.msg, "coordinator key of charter version 2"));
    gv_log_free(t);
    t = copy_replacing(*state, 99, NULL);
    e = x;
    assert_int_equal(gv_log_append(t, &e, fx_sk[4], NULL), MU_OK);
    round_entry(&x, 3);
    x.n_cohort = 2; /* gamma left */
    x.n_dropped = 0;
    e = x;
    assert_int_equal(gv_log_append(t, &e, fx_sk[4], NULL), MU_OK);
    assert_int_equal(gv_log_verify(t, chain, 2, &bad, &d), MU_OK);
    e = x;
    e.round = 4;
    assert_int_equal(gv_log_append(t, &e, fx_sk[3], NULL), MU_OK); /* the old one again */
    assert_int_equal(gv_log_verify(t, chain, 2, &bad, &d), MU_ERR_CRYPTO);
    assert_int_equal(bad, GOOD_LEN + 2);
    gv_log_free(t);
}

static void test_forked_head_detected(void **state)
{
    gv_log *log = *state;
    gv_witness w;
    /* beta countersigned the head after round 1's release (entry 5). */
    gv_log *seen = copy_replacing(log, 99, NULL);
    gv_log *prefix = gv_log_new();
    for (size_t j = 0; j <= ENTRY_RELEASE; j++) {
        const uint8_t *b;
        size_t n;
        assert_int_equal(gv_log_raw(log, j, &b, &n), MU_OK);
        assert_int_equal(gv_log_append_raw(prefix, b, n, NULL), MU_OK);
    }
    assert_int_equal(gv_witness_sign(&w, prefix, fx_sk[1]), MU_OK);
    mu_diag d;
    assert_int_equal(gv_witness_check(&w, prefix, &d), MU_OK);
    assert_int_equal(gv_witness_check(&w, seen, &d), MU_OK); /* the log grew: consistent */
    /* The coordinator, validly signing, shows another history: round 1 with other numbers. */
    assert_int_equal(gv_log_entry(log, ENTRY_ROUND1, &e), MU_OK);
    strcpy(e.metrics, "{\"train_loss\":9}");
    assert_int_equal(gv_entry_sign(&e, fx_sk[3], NULL), MU_OK);
    gv_log *fork = copy_replacing(prefix, ENTRY_ROUND1, &e);
    gv_log_free(prefix);
    prefix = copy_replacing(fork, ENTRY_RELEASE, NULL);
    gv_entry x;
    release_entry(&x, 1, (const int[]){0, 1, -1});
    assert_int_equal(gv_log_append(prefix, &x, fx_sk[3], NULL), MU_OK);
    assert_int_equal(gv_log_verify(prefix, chain, 1, NULL, NULL), MU_OK); /* valid on its own */
    assert_int_equal(gv_witness_check(&w, prefix, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "equivocation: entry 5"));
    /* Round 1 swapped for a validly signed other one, every later entry's bytes kept: the
     * head entry is the same, but the history before it is not. */
    gv_log *swapped = copy_replacing(seen, ENTRY_ROUND1, &e);
    assert_int_equal(gv_witness_check(&w, swapped, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "equivocation: entry 4 is not the entry"));
    gv_log_free(swapped);
    /* A shortened log, and a forged countersignature. */
    gv_log *shorter = copy_replacing(prefix, ENTRY_RELEASE, NULL);
    assert_int_equal(gv_witness_check(&w, shorter, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "entries removed"));
    w.head[0] ^= 1;
    assert_int_equal(gv_witness_check(&w, seen, &d), MU_ERR_CRYPTO);
    gv_log_free(shorter);
    gv_log_free(fork);
    gv_log_free(prefix);
    gv_log_free(seen);
}

/* A leave notice file: its codec (one encoding, bounded, framing checked) and its check
 * against the charter (this federation, on the roster, signed by the member's own key). */
static void test_leave_notice(void **state)
{
    (void)state;
    gv_leave l, back;
    memset(&l, 0, sizeof l);
    memcpy(l.log_id, log_id, GV_HASH_BYTES);
    strcpy(l.name, "beta");
    gv_leave_sign(l.sig, log_id, "beta", fx_sk[1]);
    uint8_t *b, *b2;
    size_t n, n2;
    mu_diag d;
    assert_int_equal(gv_leave_encode(&l, &b, &n, NULL), MU_OK);
    assert_true(n <= GV_LEAVE_MAX_BYTES);
    assert_int_equal(gv_leave_decode(&back, b, n, NULL), MU_OK);
    assert_int_equal(gv_leave_encode(&back, &b2, &n2, NULL), MU_OK);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    free(b2);
    assert_int_equal(gv_leave_check(&back, log_id, &chain[0].charter, &d), MU_OK);
    assert_int_equal(gv_leave_decode(&back, b, n - 1, &d), MU_ERR_FORMAT);
    uint8_t *longer = calloc(1, n + 1);
    memcpy(longer, b, n);
    assert_int_equal(gv_leave_decode(&back, longer, n + 1, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "trailing"));
    longer[0] = 'X';
    assert_int_equal(gv_leave_decode(&back, longer, n, &d), MU_ERR_FORMAT);
    free(longer);
    /* beta's notice renamed to alpha (same length): not alpha's signature, a forgery */
    back = l;
    strcpy(back.name, "alpha");
    assert_int_equal(gv_leave_check(&back, log_id, &chain[0].charter, &d), MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "not signed by its roster key"));
    /* signed by the outsider's key for beta */
    back = l;
    gv_leave_sign(back.sig, log_id, "beta", fx_sk[5]);
    assert_int_equal(gv_leave_check(&back, log_id, &chain[0].charter, &d), MU_ERR_CRYPTO);
    /* another federation's log id; a name not on the roster */
    back = l;
    back.log_id[0] ^= 1;
    assert_int_equal(gv_leave_check(&back, log_id, &chain[0].charter, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "another federation"));
    back = l;
    strcpy(back.name, "omega");
    gv_leave_sign(back.sig, log_id, "omega", fx_sk[4]);
    assert_int_equal(gv_leave_check(&back, log_id, &chain[0].charter, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "not on the roster"));
    memset(&back, 0, sizeof back);
    assert_int_equal(gv_leave_encode(&back, &b2, &n2, &d), MU_ERR_INVALID); /* no name */
    free(b);
}

int main(void)
{
    fx_keys();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_log_verifies_and_roundtrips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_entry_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_entry_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resigned_entry_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_without_quorum_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_reruns_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_handover_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_head_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_notice, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
