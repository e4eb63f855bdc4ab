/* gv_charter_test.c - the charter codec, proposals and the chain check: who must sign what. */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "gv_fixture.h"

static gv_signed chain[4];

static void genesis_signed(const int *who)
{
    memset(chain, 0, sizeof chain);
    fx_genesis(&chain[0].charter);
    fx_sign(&chain[0], who);
}

static void test_codec_roundtrip(void **state)
{
    gv_charter c, back;
    fx_genesis(&c);
    uint8_t *b, *b2;
    size_t n, n2;
    assert_int_equal(gv_charter_encode(&c, &b, &n, NULL), MU_OK);
    assert_int_equal(gv_charter_decode(&back, b, n, NULL), MU_OK);
    assert_int_equal(gv_charter_encode(&back, &b2, &n2, NULL), MU_OK);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    mu_diag d;
    assert_int_equal(gv_charter_decode(&back, b, n - 1, &d), MU_ERR_FORMAT);
    b[n - 1] = 7; /* gamma's role: neither member nor observer */
    assert_int_equal(gv_charter_decode(&back, b, n, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "members[2].role"));
    uint8_t *longer = malloc(n2 + 1);
    memcpy(longer, b2, n2);
    longer[n2] = 0;
    assert_int_equal(gv_charter_decode(&back, longer, n2 + 1, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "trailing"));
    free(longer);
    free(b);
    free(b2);
}

/* The coordinator's TLS fingerprint is optional: without it a charter keeps its format 1 bytes
 * (and hash); with it the encoding is format 2, part of the hash, and its change is a
 * change_coordinator decision. */
static void test_coordinator_fingerprint(void **state)
{
    gv_charter c, back;
    fx_genesis(&c);
    uint8_t *b, *b2, h1[GV_HASH_BYTES], h2[GV_HASH_BYTES];
    size_t n, n2;
    assert_int_equal(gv_charter_encode(&c, &b, &n, NULL), MU_OK);
    assert_int_equal(b[4] | b[5] << 8, GV_CHARTER_FORMAT);
    assert_int_equal(gv_charter_hash(&c, h1, NULL), MU_OK);
    memset(c.coord_fpr, 0x5c, GV_FPR_BYTES);
    assert_int_equal(gv_charter_encode(&c, &b2, &n2, NULL), MU_OK);
    assert_int_equal(b2[4] | b2[5] << 8, GV_CHARTER_FORMAT_COORD_FPR);
    assert_int_equal(n2, n + GV_FPR_BYTES);
    assert_int_equal(gv_charter_hash(&c, h2, NULL), MU_OK);
    assert_memory_not_equal(h1, h2, GV_HASH_BYTES);
    assert_int_equal(gv_charter_decode(&back, b2, n2, NULL), MU_OK);
    assert_memory_equal(back.coord_fpr, c.coord_fpr, GV_FPR_BYTES);
    mu_diag d;
    /* the fingerprint follows magic, format, federation, version, parent, key, address */
    size_t at = 4 + 2 + 2 + strlen(c.federation) + 8 + GV_HASH_BYTES + GV_PK_BYTES + 2 +
                strlen(c.coord_addr);
    assert_memory_equal(b2 + at, c.coord_fpr, GV_FPR_BYTES);
    memset(b2 + at, 0, GV_FPR_BYTES); /* format 2 with no fingerprint: not canonical */
    assert_int_equal(gv_charter_decode(&back, b2, n2, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "all-zero coordinator fingerprint"));
    b[4] = 3; /* a format this build does not read */
    assert_int_equal(gv_charter_decode(&back, b, n, &d), MU_ERR_UNSUPPORTED);
    free(b);
    free(b2);

    genesis_signed((const int[]){0, 1, 2, -1});
    fx_next(&chain[1].charter, &chain[0].charter);
    memset(chain[1].charter.coord_fpr, 0x5c, GV_FPR_BYTES);
    assert_int_equal(gv_charter_diff(&chain[0].charter, &chain[1].charter),
                     1u << GV_KIND_COORDINATOR);
    fx_sign(&chain[1], (const int[]){0, 1, -1}); /* change_coordinator is 3-of-3 here */
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "change_coordinator needs 3"));
    fx_sign(&chain[1], (const int[]){2, -1});
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_OK);
}

static void test_check_refuses(void **state)
{
    gv_charter c;
    mu_diag d;
    fx_genesis(&c);
    strcpy(c.members[1].name, "al/pha"); /* not an org name */
    assert_int_equal(gv_charter_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "members[1].name"));
    fx_genesis(&c);
    strcpy(c.members[0].name, "zeta"); /* out of order */
    assert_int_equal(gv_charter_check(&c, &d), MU_ERR_INVALID);
    fx_genesis(&c);
    memcpy(c.members[2].sign_pk, c.members[0].sign_pk, GV_PK_BYTES);
    assert_int_equal(gv_charter_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "also alpha's"));
    fx_genesis(&c);
    c.quorum[GV_KIND_ADMIT] = (gv_quorum){2, 4}; /* n is not the 3 voters */
    assert_int_equal(gv_charter_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "rules.admit"));
    assert_int_equal(gv_quorum_need(&c, GV_KIND_CONFIG), 2); /* majority of 3 */
}

static void test_genesis_by_all_three_valid(void **state)
{
    genesis_signed((const int[]){0, 1, 2, -1});
    size_t bad = 99;
    assert_int_equal(gv_chain_verify(chain, 1, &bad, NULL), MU_OK);
}

static void test_genesis_by_two_of_three_invalid(void **state)
{
    genesis_signed((const int[]){0, 1, -1});
    mu_diag d;
    size_t bad = 99;
    assert_int_equal(gv_chain_verify(chain, 1, &bad, &d), MU_ERR_CRYPTO);
    assert_int_equal(bad, 0);
    assert_non_null(strstr(d.msg, "charter version 1: genesis needs all 3"));
    /* The coordinator's or an outsider's signature does not stand in for gamma's. */
    fx_sign(&chain[0], (const int[]){3, 5, -1});
    assert_int_equal(gv_chain_verify(chain, 1, &bad, &d), MU_ERR_CRYPTO);
}

/* Version 2 admits omega (key 4). */
static void propose_admission(void)
{
    gv_charter *c = &chain[1].charter;
    fx_next(c, &chain[0].charter);
    c->n_members = 4;
    strcpy(c->members[3].name, "omega"); /* after gamma: sorted */
    memcpy(c->members[3].sign_pk, fx_pk[4], GV_PK_BYTES);
    c->members[3].role = GV_ROLE_MEMBER;
    c->quorum[GV_KIND_ADMIT].n = c->quorum[GV_KIND_RELEASE].n = 4;
    c->quorum[GV_KIND_COORDINATOR].n = 4; /* still k = 3: no rule change */
    chain[1].n_sigs = 0;
}

static void test_admission_two_of_three_valid_one_refused(void **state)
{
    genesis_signed((const int[]){0, 1, 2, -1});
    propose_admission();
    assert_int_equal(gv_charter_diff(&chain[0].charter, &chain[1].charter), 1u << GV_KIND_ADMIT);
    mu_diag d;
    size_t bad = 99;
    /* alpha alone, and omega's own signature does not count (not in the parent) */
    fx_sign(&chain[1], (const int[]){0, 4, -1});
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_ERR_CRYPTO);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(d.msg, "charter version 2: admit needs 2 signatures"));
    assert_non_null(strstr(d.msg, "has 1"));
    fx_sign(&chain[1], (const int[]){2, -1});
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_OK);
}

static void test_config_change_without_quorum_refused(void **state)
{
    genesis_signed((const int[]){0, 1, 2, -1});
    fx_next(&chain[1].charter, &chain[0].charter);
    memset(chain[1].charter.training_hash, 0x22, GV_HASH_BYTES);
    assert_int_equal(gv_charter_diff(&chain[0].charter, &chain[1].charter), 1u << GV_KIND_CONFIG);
    mu_diag d;
    size_t bad = 99;
    fx_sign(&chain[1], (const int[]){1, -1});
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_ERR_CRYPTO);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(d.msg, "change_config needs 2"));
    /* A signature over another charter (the genesis) by gamma does not count either. */
    chain[1].sigs[1] = chain[0].sigs[2];
    chain[1].n_sigs = 2;
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_ERR_CRYPTO);
    chain[1].n_sigs = 1;
    fx_sign(&chain[1], (const int[]){2, -1});
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_OK);
}

static void test_several_kinds_need_the_strictest(void **state)
{
    genesis_signed((const int[]){0, 1, 2, -1});
    fx_next(&chain[1].charter, &chain[0].charter);
    memset(chain[1].charter.training_hash, 0x22, GV_HASH_BYTES);
    strcpy(chain[1].charter.coord_addr, "other.example:7443");
    mu_diag d;
    fx_sign(&chain[1], (const int[]){0, 1, -1}); /* enough for config, not for coordinator */
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "change_coordinator needs 3"));
    /* Weakening a rule is a rule change: every kind's quorum, so the strictest (3). */
    fx_next(&chain[1].charter, &chain[0].charter);
    chain[1].n_sigs = 0;
    chain[1].charter.quorum[GV_KIND_RELEASE].k = 1;
    fx_sign(&chain[1], (const int[]){0, 1, -1});
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_ERR_CRYPTO);
    fx_sign(&chain[1], (const int[]){2, -1});
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_OK);
}

static void test_observer_does_not_vote(void **state)
{
    memset(chain, 0, sizeof chain);
    gv_charter *g = &chain[0].charter;
    fx_genesis(g);
    g->members[2].role = GV_ROLE_OBSERVER; /* gamma observes: 2 voters */
    for (int k = 0; k < GV_KIND_COUNT; k++)
        g->quorum[k] = (gv_quorum){2, 2};
    fx_sign(&chain[0], (const int[]){0, 1, 2, -1}); /* genesis: every member, observers too */
    assert_int_equal(gv_chain_verify(chain, 1, NULL, NULL), MU_OK);
    fx_next(&chain[1].charter, g);
    chain[1].charter.privacy.min_cohort = 3;
    fx_sign(&chain[1], (const int[]){0, 2, -1});
    mu_diag d;
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "has 1"));
    fx_sign(&chain[1], (const int[]){1, -1});
    assert_int_equal(gv_chain_verify(chain, 2, NULL, &d), MU_OK);
}

static void test_links_checked(void **state)
{
    genesis_signed((const int[]){0, 1, 2, -1});
    propose_admission();
    fx_sign(&chain[1], (const int[]){0, 1, -1});
    mu_diag d;
    size_t bad;
    chain[1].charter.parent[0] ^= 1;
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "parent hash"));
    chain[1].charter.parent[0] ^= 1;
    chain[2] = chain[1]; /* the same version twice */
    assert_int_equal(gv_chain_verify(chain, 3, &bad, &d), MU_ERR_PROTOCOL);
    assert_int_equal(bad, 2);
    /* nothing changed */
    fx_next(&chain[1].charter, &chain[0].charter);
    assert_int_equal(gv_chain_verify(chain, 2, &bad, &d), MU_ERR_PROTOCOL);
    assert_non_null(strstr(d.msg, "changes nothing"));
}

static void test_chain_file_roundtrip(void **state)
{
    genesis_signed((const int[]){0, 1, 2, -1});
    propose_admission();
    fx_sign(&chain[1], (const int[]){0, 1, -1});
    uint8_t *b;
    size_t n, m = 0;
    gv_signed *back = NULL;
    assert_int_equal(gv_chain_encode(chain, 2, &b, &n, NULL), MU_OK);
    assert_int_equal(gv_chain_decode(&back, &m, b, n, NULL), MU_OK);
    assert_int_equal(m, 2);
    assert_int_equal(gv_chain_verify(back, m, NULL, NULL), MU_OK);
    free(back);
    mu_diag d;
    assert_int_equal(gv_chain_decode(&back, &m, b, n - 3, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "entry 1"));
    free(b);
}

int main(void)
{
    fx_keys();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_coordinator_fingerprint),
        cmocka_unit_test(test_check_refuses),
        cmocka_unit_test(test_genesis_by_all_three_valid),
        cmocka_unit_test(test_genesis_by_two_of_three_invalid),
        cmocka_unit_test(test_admission_two_of_three_valid_one_refused),
        cmocka_unit_test(test_config_change_without_quorum_refused),
        cmocka_unit_test(test_several_kinds_need_the_strictest),
        cmocka_unit_test(test_observer_does_not_vote),
        cmocka_unit_test(test_links_checked),
        cmocka_unit_test(test_chain_file_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
