/* gv_fixture.c - see gv_fixture.h. */
#include "gv_fixture.h"

#include <sodium.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

uint8_t fx_pk[FX_KEYS][GV_PK_BYTES];
uint8_t fx_sk[FX_KEYS][GV_SK_BYTES];

void fx_keys(void)
{
    assert_true(sodium_init() >= 0);
    for (int i = 0; i < FX_KEYS; i++) {
        uint8_t seed[32];
        memset(seed, 0x40 + i, sizeof seed);
        crypto_sign_seed_keypair(fx_pk[i], fx_sk[i], seed);
    }
}

void fx_genesis(gv_charter *c)
{
    static const char *const names[FX_MEMBERS] = {"alpha", "beta", "gamma"};
    memset(c, 0, sizeof *c);
    strcpy(c->federation, "coop-test");
    c->version = 1;
    memcpy(c->coord_pk, fx_pk[3], GV_PK_BYTES);
    strcpy(c->coord_addr, "coord.example:7443");
    c->quorum[GV_KIND_ADMIT] = (gv_quorum){2, 3};
    c->quorum[GV_KIND_CONFIG] = (gv_quorum){0, 0};
    c->quorum[GV_KIND_RELEASE] = (gv_quorum){2, 3};
    c->quorum[GV_KIND_COORDINATOR] = (gv_quorum){3, 3};
    c->privacy.min_cohort = 2;
    memset(c->training_hash, 0x11, GV_HASH_BYTES);
    c->n_members = FX_MEMBERS;
    for (int i = 0; i < FX_MEMBERS; i++) {
        strcpy(c->members[i].name, names[i]);
        memcpy(c->members[i].sign_pk, fx_pk[i], GV_PK_BYTES);
        memset(c->members[i].tls_fpr, 0xa0 + i, GV_FPR_BYTES);
        c->members[i].role = GV_ROLE_MEMBER;
    }
}

void fx_next(gv_charter *next, const gv_charter *parent)
{
    *next = *parent;
    next->version = parent->version + 1;
    assert_int_equal(gv_charter_hash(parent, next->parent, NULL), MU_OK);
}

void fx_sign(gv_signed *s, const int *who)
{
    for (; *who >= 0; who++)
        assert_int_equal(gv_signed_sign(s, fx_sk[*who], NULL), MU_OK);
}
