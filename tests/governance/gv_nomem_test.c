/* gv_nomem_test.c - every allocation of the governance core fails once, in turn: appending,
 * encoding, decoding and verifying a log and a chain, and countersigning, each return MU_OK or
 * MU_ERR_NOMEM (never a wrong verdict such as a "bad signature"), leave the log as it was and
 * leak nothing (ASan). */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "gv_fixture.h"
#include "mu_nomem.h"

static gv_signed chain[1];
static gv_entry e;

static void expect_ok_or_nomem(int rc)
{
    if (rc != MU_OK && rc != MU_ERR_NOMEM)
        fail_msg("rc %d (%s), want MU_OK or MU_ERR_NOMEM", rc, mu_strerror(rc));
}

static void next_entry(size_t i, const uint8_t id[GV_HASH_BYTES])
{
    static const char *const names[3] = {"alpha", "beta", "gamma"};
    memset(&e, 0, sizeof e);
    if (i == 0) {
        e.kind = GV_ENTRY_CHARTER;
        e.charter_version = 1;
        memcpy(e.charter_hash, id, GV_HASH_BYTES);
    } else if (i <= 3) {
        e.kind = GV_ENTRY_ADMISSION;
        strcpy(e.member, names[i - 1]);
        memcpy(e.member_pk, fx_pk[i - 1], GV_PK_BYTES);
    } else if (i == 4) {
        e.kind = GV_ENTRY_ROUND;
        e.round = 1;
        memset(e.config_hash, 0x11, GV_HASH_BYTES);
        e.n_cohort = 2;
        strcpy(e.cohort[0], "alpha");
        strcpy(e.cohort[1], "beta");
    } else {
        e.kind = GV_ENTRY_RELEASE;
        e.round = 1;
        gv_release_sign(&e.sigs[e.n_sigs++], id, 1, e.global_hash, fx_sk[0]);
        gv_release_sign(&e.sigs[e.n_sigs++], id, 1, e.global_hash, fx_sk[1]);
    }
}

/* One run with allocation k failing; returns whether the failure happened. */
static int scenario(long k, const uint8_t id[GV_HASH_BYTES])
{
    int rc = MU_OK;
    gv_log *log = NULL, *back = NULL;
    gv_signed *chain2 = NULL;
    uint8_t *b = NULL;
    size_t n = 0, n2 = 0;
    nomem_arm(k);
    NOMEM(log = gv_log_new());
    for (size_t i = 0; log && rc == MU_OK && i < 6; i++) {
        next_entry(i, id);
        NOMEM(rc = gv_log_append(log, &e, fx_sk[3], NULL));
        expect_ok_or_nomem(rc);
        assert_int_equal(gv_log_len(log), rc ? i : i + 1);
    }
    if (log && rc == MU_OK) {
        NOMEM(rc = gv_log_verify(log, chain, 1, NULL, NULL));
        expect_ok_or_nomem(rc);
        NOMEM(rc = gv_log_encode(log, &b, &n, NULL));
        expect_ok_or_nomem(rc);
    }
    if (b) {
        NOMEM(rc = gv_log_decode(&back, b, n, NULL));
        expect_ok_or_nomem(rc);
        free(b);
        b = NULL;
    }
    if (back) {
        gv_witness w;
        NOMEM(rc = gv_witness_sign(&w, back, fx_sk[1]));
        expect_ok_or_nomem(rc);
        if (rc == MU_OK) {
            NOMEM(rc = gv_witness_check(&w, log, NULL));
            expect_ok_or_nomem(rc);
        }
    }
    NOMEM(rc = gv_chain_encode(chain, 1, &b, &n, NULL));
    expect_ok_or_nomem(rc);
    if (b) {
        NOMEM(rc = gv_chain_decode(&chain2, &n2, b, n, NULL));
        expect_ok_or_nomem(rc);
    }
    if (chain2) {
        NOMEM(rc = gv_chain_verify(chain2, n2, NULL, NULL));
        expect_ok_or_nomem(rc);
    }
    free(chain2);
    free(b);
    gv_log_free(back);
    gv_log_free(log);
    return nomem_failed;
}

static void test_every_allocation_fails_once(void **state)
{
    uint8_t id[GV_HASH_BYTES];
    memset(chain, 0, sizeof chain);
    fx_genesis(&chain[0].charter);
    fx_sign(&chain[0], (const int[]){0, 1, 2, -1});
    assert_int_equal(gv_charter_hash(&chain[0].charter, id, NULL), MU_OK);
    long k = 0;
    while (scenario(k, id))
        k++;
    assert_true(k > 20); /* the scenario allocates; each allocation failed once */
}

int main(void)
{
    fx_keys();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
