/* test_cheat.c - a cheating coordinator: every case must be refused by the clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"
#include "sa_test_util.h"

/* Re-encodes a decoded message into *bytes (replacing the buffer). */
static void reencode(const sa_msg *m, uint8_t **bytes, size_t *len)
{
    uint8_t *nb;
    size_t nl;
    assert_int_equal(sa_msg_encode_alloc(m, &nb, &nl), MU_OK);
    free(*bytes);
    *bytes = nb;
    *len = nl;
}

static int count_rc(const sa_world *w, int rc)
{
    int c = 0;
    for (uint32_t i = 0; i < w->n; i++)
        c += w->client_rc[i] == rc;
    return c;
}

static int count_stage(const sa_world *w, sa_stage st)
{
    int c = 0;
    for (uint32_t i = 0; i < w->n; i++)
        c += sa_client_stage(w->clients[i]) == st;
    return c;
}

/* ---- substituted public key in KEYS ---- */
static int tamper_keys(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    (void)w;
    (void)to;
    if (type == SA_MSG_KEYS) {
        sa_msg m;
        assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
        m.keys[1].s_pk[0] ^= 0x40; /* the coordinator's own key instead of org 1's */
        reencode(&m, bytes, len);
        sa_msg_deinit(&m);
    }
    return 1;
}

static void test_substituted_key(void **state)
{
    (void)state;
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 21, &diag), MU_OK);
    w.tamper = tamper_keys;
    int rc = sa_world_run(&w, &diag);
    assert_int_not_equal(rc, MU_OK);
    /* org 1 finds its own keys replaced; the other four find org 1's signature broken */
    assert_int_equal(w.client_rc[1], MU_ERR_PROTOCOL);
    assert_int_equal(count_rc(&w, MU_ERR_CRYPTO), 4);
    assert_int_equal(count_stage(&w, SA_STAGE_ABORTED), 5);
    sa_world_free(&w);
}

/* In a Harary ring the substituted org's neighbours abort (they use its keys), the org
 * itself aborts (its own keys are not in KEYS), and nobody else is affected. */
static uint32_t substituted_id;
static int tamper_keys_id(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    (void)w;
    (void)to;
    if (type == SA_MSG_KEYS) {
        sa_msg m;
        assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
        for (size_t i = 0; i < m.n_keys; i++)
            if (m.keys[i].id == substituted_id)
                m.keys[i].c_pk[5] ^= 1;
        reencode(&m, bytes, len);
        sa_msg_deinit(&m);
    }
    return 1;
}

static void test_substituted_key_harary(void **state)
{
    (void)state;
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, 20, 10, 32, 6, 5, 22, &diag), MU_OK);
    substituted_id = w.ids[7];
    w.tamper = tamper_keys_id;
    assert_int_equal(sa_world_make_clients(&w, &diag), MU_OK);
    assert_int_equal(sa_world_start(&w), MU_OK);
    assert_int_equal(sa_world_step(&w, SA_STAGE_ADVERTISE, &diag), MU_OK);
    assert_int_equal(w.client_rc[7], MU_ERR_PROTOCOL);
    assert_int_equal(count_rc(&w, MU_ERR_CRYPTO), 6); /* its 6 neighbours */
    assert_int_equal(count_stage(&w, SA_STAGE_ABORTED), 7);
    assert_int_equal(count_stage(&w, SA_STAGE_MASKED), 13);
    sa_world_free(&w);
}

/* Org 0 is shown a key list without org 4: it derives another session id, so everything
 * it sends is refused and it is left out; the others finish with the exact sum. */
static int tamper_keys_view(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes,
                            size_t *len)
{
    if (type == SA_MSG_KEYS && to == w->ids[0]) {
        sa_msg m;
        assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
        assert_int_equal(m.keys[m.n_keys - 1].id, w->ids[5]);
        m.n_keys--; /* hide org 5 */
        reencode(&m, bytes, len);
        sa_msg_deinit(&m);
    }
    return 1;
}

static void test_split_keys_view(void **state)
{
    (void)state;
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, 6, 10, 32, 5, 4, 23, &diag), MU_OK);
    w.tamper = tamper_keys_view;
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    assert_true(w.server_rejects >= 1); /* org 0's SHARES carry another session id */
    uint32_t surv[6];
    size_t ns = sa_server_survivors(w.server, surv, 6);
    assert_int_equal(ns, 5);
    for (size_t i = 0; i < ns; i++)
        assert_int_not_equal(surv[i], w.ids[0]);
    const uint32_t *sum;
    size_t d;
    assert_int_equal(sa_server_result(w.server, &sum, &d), MU_OK);
    uint32_t want[10] = {0};
    sa_world_expected(&w, want);
    assert_memory_equal(sum, want, sizeof want);
    sa_world_free(&w);
}

/* ---- edited, swapped, moved and replayed share ciphertexts ---- */
static int cheat_mode;
static uint8_t saved_ct[SA_SHARE_CT_BYTES];
static int have_saved;

static int tamper_delivery(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    if (type != SA_MSG_DELIVERY || to != w->ids[0])
        return 1;
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
    assert_true(m.n_cts >= 2);
    if (cheat_mode == 1) { /* edit one byte */
        m.cts[0].ct[40] ^= 1;
    } else if (cheat_mode == 2) { /* swap two senders' ciphertexts */
        uint8_t tmp[SA_SHARE_CT_BYTES];
        memcpy(tmp, m.cts[0].ct, sizeof tmp);
        memcpy(m.cts[0].ct, m.cts[1].ct, sizeof tmp);
        memcpy(m.cts[1].ct, tmp, sizeof tmp);
    } else if (cheat_mode == 3) { /* a ciphertext from another session (replay) */
        memcpy(m.cts[0].ct, saved_ct, sizeof saved_ct);
    }
    reencode(&m, bytes, len);
    sa_msg_deinit(&m);
    return 1;
}

static void capture_ct(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    sa_msg m;
    (void)w;
    (void)from;
    if (sa_msg_decode(&m, bytes, len, NULL) == MU_OK && m.type == SA_MSG_SHARES && !have_saved) {
        memcpy(saved_ct, m.cts[0].ct, SA_SHARE_CT_BYTES);
        have_saved = 1;
    }
    sa_msg_deinit(&m);
}

static void test_ciphertext_tampering(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    /* a session run first, to replay one of its ciphertexts */
    sa_world old;
    assert_int_equal(sa_world_init(&old, 5, 10, 32, 4, 4, 30, &diag), MU_OK);
    have_saved = 0;
    old.spy = capture_ct;
    assert_int_equal(sa_world_run(&old, &diag), MU_OK);
    assert_true(have_saved);
    sa_world_free(&old);

    for (cheat_mode = 1; cheat_mode <= 3; cheat_mode++) {
        sa_world w;
        assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 31, &diag), MU_OK);
        w.tamper = tamper_delivery;
        int rc = sa_world_run(&w, &diag);
        assert_int_equal(w.client_rc[0], MU_ERR_CRYPTO);
        assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_ABORTED);
        /* org 0 never sent its masked input; the rest complete without it */
        assert_int_equal(rc, MU_OK);
        assert_int_equal(sa_server_survivors(w.server, NULL, 0), 4);
        sa_world_free(&w);
    }
}

/* The AD binds sender and recipient: a ciphertext addressed to org 1 presented to org 0
 * fails even when the coordinator claims the right sender. Checked on the client by
 * replacing org 0's DELIVERY entry from sender S with the one S addressed to org 1. */
static uint8_t ct_for_1_from[8][SA_SHARE_CT_BYTES];
static uint32_t ct_for_1_sender[8];
static int n_ct_for_1;
static void capture_for_1(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    sa_msg m;
    if (sa_msg_decode(&m, bytes, len, NULL) == MU_OK && m.type == SA_MSG_SHARES)
        for (size_t i = 0; i < m.n_cts; i++)
            if (m.cts[i].peer == w->ids[1] && n_ct_for_1 < 8) {
                ct_for_1_sender[n_ct_for_1] = from;
                memcpy(ct_for_1_from[n_ct_for_1++], m.cts[i].ct, SA_SHARE_CT_BYTES);
            }
    sa_msg_deinit(&m);
}

static int tamper_moved(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    if (type != SA_MSG_DELIVERY || to != w->ids[0])
        return 1;
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
    int moved = 0;
    for (size_t i = 0; i < m.n_cts && !moved; i++)
        for (int j = 0; j < n_ct_for_1; j++)
            if (m.cts[i].peer == ct_for_1_sender[j]) {
                memcpy(m.cts[i].ct, ct_for_1_from[j], SA_SHARE_CT_BYTES);
                moved = 1;
                break;
            }
    assert_true(moved);
    reencode(&m, bytes, len);
    sa_msg_deinit(&m);
    return 1;
}

static void test_moved_ciphertext(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 33, &diag), MU_OK);
    n_ct_for_1 = 0;
    w.spy = capture_for_1;
    w.tamper = tamper_moved;
    sa_world_run(&w, &diag);
    assert_int_equal(w.client_rc[0], MU_ERR_CRYPTO);
    assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_ABORTED);
    sa_world_free(&w);
}

/* ---- replayed whole messages ---- */
static uint8_t *kept;
static size_t kept_len;
static sa_msg_type kept_type;
static int keep_msg(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    if (to == w->ids[0] && type == kept_type && !kept) {
        kept = malloc(*len);
        memcpy(kept, *bytes, *len);
        kept_len = *len;
    }
    return 1;
}

static void test_replayed_messages(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    /* a DELIVERY from one round, replayed into a later round of the same cohort */
    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 41, &diag), MU_OK);
    kept = NULL;
    kept_type = SA_MSG_DELIVERY;
    w.tamper = keep_msg;
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    assert_non_null(kept);
    sa_outbox ob;
    sa_outbox_init(&ob);
    /* to the same client, now done: refused as out of stage */
    assert_int_equal(sa_client_handle(w.clients[0], kept, kept_len, &ob, &diag), MU_ERR_STATE);
    sa_world_free(&w);

    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 42, &diag), MU_OK);
    assert_int_equal(sa_world_make_clients(&w, &diag), MU_OK);
    assert_int_equal(sa_world_start(&w), MU_OK);
    assert_int_equal(sa_world_step(&w, SA_STAGE_ADVERTISE, &diag), MU_OK);
    /* org 0 now waits for DELIVERY of a new session: the old one is from another session */
    assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_MASKED);
    assert_int_equal(sa_client_handle(w.clients[0], kept, kept_len, &ob, &diag), MU_ERR_FORMAT);
    assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_MASKED); /* unchanged */
    assert_int_equal(ob.count, 0);
    free(kept);
    kept = NULL;
    /* finishing the round still works and a duplicate DELIVERY is refused */
    kept_type = SA_MSG_DELIVERY;
    w.tamper = keep_msg;
    assert_int_equal(sa_world_step(&w, SA_STAGE_SHARE, &diag), MU_OK);
    assert_non_null(kept);
    assert_int_equal(sa_client_handle(w.clients[0], kept, kept_len, &ob, &diag), MU_ERR_STATE);
    assert_int_equal(ob.count, 0);
    free(kept);
    kept = NULL;
    for (int s = SA_STAGE_MASKED; s <= SA_STAGE_UNMASK; s++)
        assert_int_equal(sa_world_step(&w, (sa_stage)s, &diag), MU_OK);
    sa_outbox_deinit(&ob);
    sa_world_free(&w);
}

/* ---- asking for both shares ---- */
static void test_second_unmask_request_refused(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 51, &diag), MU_OK);
    kept = NULL;
    kept_type = SA_MSG_UNMASK_REQ;
    w.tamper = keep_msg;
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    assert_non_null(kept);
    assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_DONE);
    sa_outbox ob;
    sa_outbox_init(&ob);
    /* the same request again, and one naming fewer survivors (asks for the other share) */
    assert_int_equal(sa_client_handle(w.clients[0], kept, kept_len, &ob, &diag), MU_ERR_PROTOCOL);
    assert_non_null(strstr(diag.msg, "second unmask"));
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, kept, kept_len, &diag), MU_OK);
    m.n_ids--;
    uint8_t *b2;
    size_t l2;
    assert_int_equal(sa_msg_encode_alloc(&m, &b2, &l2), MU_OK);
    assert_int_equal(sa_client_handle(w.clients[0], b2, l2, &ob, &diag), MU_ERR_PROTOCOL);
    assert_int_equal(ob.count, 0);
    assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_DONE);
    free(b2);
    sa_msg_deinit(&m);
    free(kept);
    kept = NULL;
    sa_outbox_deinit(&ob);
    sa_world_free(&w);
}

/* A request whose survivor list differs from the one signed (it would mark a live neighbour
 * dropped and so ask for its mask key after its input arrived) is refused. */
static int tamper_unmask_list(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes,
                              size_t *len)
{
    if (type != SA_MSG_UNMASK_REQ || to != w->ids[0])
        return 1;
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
    /* drop the last survivor from the list (not org 0, which is first) */
    m.n_ids--;
    reencode(&m, bytes, len);
    sa_msg_deinit(&m);
    return 1;
}

static void test_unmask_list_differs(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 52, &diag), MU_OK);
    w.tamper = tamper_unmask_list;
    sa_world_run(&w, &diag);
    assert_int_equal(w.client_rc[0], MU_ERR_PROTOCOL);
    assert_int_equal(sa_client_stage(w.clients[0]), SA_STAGE_ABORTED);
    sa_world_free(&w);
}

/* ---- different survivor sets shown to different orgs ---- */
static uint8_t victim_sig[SA_SIG_BYTES];
static int victim_signed;
static void capture_victim_sig(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    sa_msg m;
    if (from == w->ids[0] && sa_msg_decode(&m, bytes, len, NULL) == MU_OK) {
        if (m.type == SA_MSG_CONSIST_SIG) {
            memcpy(victim_sig, m.sig, SA_SIG_BYTES);
            victim_signed = 1;
        }
        sa_msg_deinit(&m);
    }
}

static int tamper_split_view(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes,
                             size_t *len)
{
    sa_msg m;
    if (type == SA_MSG_SURVIVORS && to == w->ids[0]) {
        /* org 0 is shown a set without org 4 */
        assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
        assert_int_equal(m.ids[m.n_ids - 1], w->ids[4]);
        m.n_ids--;
        reencode(&m, bytes, len);
        sa_msg_deinit(&m);
    } else if (type == SA_MSG_UNMASK_REQ && to != w->ids[0] && victim_signed) {
        /* the others get org 0's signature (on the other set) as if it were on theirs */
        assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
        sa_sig_entry *sigs = calloc(m.n_sigs + 1, sizeof *sigs);
        sigs[0].id = w->ids[0];
        memcpy(sigs[0].sig, victim_sig, SA_SIG_BYTES);
        size_t n = 1;
        for (size_t i = 0; i < m.n_sigs; i++)
            if (m.sigs[i].id != w->ids[0])
                sigs[n++] = m.sigs[i];
        free(m.sigs);
        m.sigs = sigs;
        m.n_sigs = n;
        reencode(&m, bytes, len);
        sa_msg_deinit(&m);
    }
    return 1;
}

static void test_split_survivor_view(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    assert_int_equal(sa_world_init(&w, 5, 10, 32, 4, 4, 61, &diag), MU_OK);
    victim_signed = 0;
    w.spy = capture_victim_sig;
    w.tamper = tamper_split_view;
    int rc = sa_world_run(&w, &diag);
    (void)rc;
    assert_true(victim_signed);
    /* org 0's signature is on another set: the server refuses it, and the others, shown it
     * by the cheating coordinator, abort before revealing anything */
    assert_true(w.server_rejects >= 1);
    for (uint32_t i = 1; i < 5; i++) {
        assert_int_equal(w.client_rc[i], MU_ERR_CRYPTO);
        assert_int_equal(sa_client_stage(w.clients[i]), SA_STAGE_ABORTED);
    }
    assert_int_not_equal(sa_server_stage(w.server), SA_STAGE_DONE);
    sa_world_free(&w);
}

int main(void)
{
    if (sa_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_substituted_key),
        cmocka_unit_test(test_substituted_key_harary),
        cmocka_unit_test(test_split_keys_view),
        cmocka_unit_test(test_ciphertext_tampering),
        cmocka_unit_test(test_moved_ciphertext),
        cmocka_unit_test(test_replayed_messages),
        cmocka_unit_test(test_second_unmask_request_refused),
        cmocka_unit_test(test_unmask_list_differs),
        cmocka_unit_test(test_split_survivor_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
