/* test_nomem.c - every allocation the library makes during a round fails once, in turn.
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (mu_nomem.h): only calls made
 * while `nomem_on` is set (inside library calls) are counted. Checks: no crash, no leak
 * (LeakSanitizer at exit), every failure reported (MU_ERR_NOMEM or a NULL constructor), and a round
 * that still completes gives the exact sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mu_nomem.h"
#include "sa.h"
#include "sa_msg.h"

#define N      4
#define D      37
#define LIB(x) (nomem_on = 1, tmp_rc = (x), nomem_on = 0, tmp_rc)

static int tmp_rc;

/* One round of N orgs (complete graph, t=3); returns 1 if it completed. */
static int run_round(void)
{
    uint32_t ids[N] = {11, 22, 33, 44};
    uint8_t pks[N][32], sks[N][64];
    uint32_t in[N][D], want[D] = {0};
    int completed = 0, errors = 0;
    for (int i = 0; i < N; i++) {
        uint8_t seed[32] = {(uint8_t)(i + 1)};
        crypto_sign_seed_keypair(pks[i], sks[i], seed);
        for (int j = 0; j < D; j++) {
            in[i][j] = (uint32_t)(i * 1000003 + j * 7919);
            want[j] += in[i][j];
        }
    }
    sa_config cfg = {.round_id = 3,
                     .n = N,
                     .org_ids = ids,
                     .sign_pks = (const uint8_t(*)[32])pks,
                     .d = D,
                     .bits = 32,
                     .k = 3,
                     .t = 3};
    sa_rng_seeded st[N];
    sa_client *c[N] = {0};
    sa_outbox ob, srv_out;
    sa_outbox_init(&ob);
    sa_outbox_init(&srv_out);
    nomem_on = 1;
    sa_server *s = sa_server_new(&cfg, NULL);
    nomem_on = 0;
    if (!s)
        goto out;
    for (int i = 0; i < N; i++) {
        uint8_t seed[32] = {(uint8_t)(0x80 + i)};
        sa_rng_seeded_init(&st[i], seed);
        sa_rng r = sa_rng_from_seeded(&st[i]);
        nomem_on = 1;
        c[i] = sa_client_new(&cfg, ids[i], sks[i], &r, NULL);
        nomem_on = 0;
        if (!c[i] || LIB(sa_client_set_input(c[i], in[i], D)) ||
            LIB(sa_client_start(c[i], &ob, NULL)))
            errors++;
        for (size_t e = 0; e < ob.count; e++)
            if (LIB(sa_server_handle(s, ids[i], ob.items[e].bytes, ob.items[e].len, NULL, NULL)))
                errors++;
        sa_outbox_clear(&ob);
    }
    for (int stage = SA_STAGE_ADVERTISE; stage <= SA_STAGE_UNMASK; stage++) {
        if (LIB(sa_server_close_stage(s, (sa_stage)stage, &srv_out, NULL))) {
            errors++;
            break;
        }
        uint32_t rcpt[N];
        size_t nr = sa_server_recipients(s, rcpt, N);
        for (size_t e = 0; e < srv_out.count; e++) {
            for (int i = 0; i < N; i++) {
                int to_me = srv_out.items[e].to == ids[i];
                for (size_t r = 0; r < nr && srv_out.items[e].to == SA_TO_ALL; r++)
                    to_me |= rcpt[r] == ids[i];
                if (!to_me || !c[i])
                    continue;
                const uint8_t *mb = srv_out.items[e].bytes;
                size_t ml = srv_out.items[e].len;
                int rc = LIB(sa_client_handle(c[i], mb, ml, &ob, NULL));
                if (rc)
                    errors++;
                /* out of memory without an abort promises nothing changed: retry */
                if (rc == MU_ERR_NOMEM && sa_client_stage(c[i]) != SA_STAGE_ABORTED)
                    (void)LIB(sa_client_handle(c[i], mb, ml, &ob, NULL));
                for (size_t k = 0; k < ob.count; k++) {
                    rc = LIB(sa_server_handle(s, ids[i], ob.items[k].bytes, ob.items[k].len, NULL,
                                              NULL));
                    if (rc)
                        errors++;
                    if (rc == MU_ERR_NOMEM)
                        (void)LIB(sa_server_handle(s, ids[i], ob.items[k].bytes, ob.items[k].len,
                                                   NULL, NULL));
                }
                sa_outbox_clear(&ob);
            }
        }
        sa_outbox_clear(&srv_out);
    }
    const uint32_t *sum;
    size_t d;
    if (sa_server_result(s, &sum, &d) == MU_OK) {
        uint32_t surv[N];
        size_t ns = sa_server_survivors(s, surv, N);
        uint32_t exp[D] = {0};
        for (size_t k = 0; k < ns; k++)
            for (int i = 0; i < N; i++)
                if (ids[i] == surv[k])
                    for (int j = 0; j < D; j++)
                        exp[j] += in[i][j];
        assert_memory_equal(sum, exp, sizeof exp);
        completed = 1;
    }
out:
    for (int i = 0; i < N; i++)
        sa_client_free(c[i]);
    sa_server_free(s);
    sa_outbox_deinit(&ob);
    sa_outbox_deinit(&srv_out);
    (void)want;
    return completed && errors == 0;
}

static void test_every_allocation_fails_once(void **state)
{
    (void)state;
    nomem_fail_at = -1;
    nomem_count = 0;
    nomem_failed = 0;
    assert_true(run_round()); /* no injection: completes */
    long total = nomem_count;
    assert_true(total > 50);
    long clean = 0;
    for (nomem_fail_at = 0; nomem_fail_at < total; nomem_fail_at++) {
        nomem_count = 0;
        nomem_failed = 0;
        int ok = run_round();
        assert_true(nomem_failed);
        clean += ok; /* a failure that the round absorbed without any error is a bug */
    }
    print_message("%ld allocations, each failed once; %ld runs still completed cleanly\n", total,
                  clean);
    assert_int_equal(clean, 0);
}

int main(void)
{
    if (sa_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
