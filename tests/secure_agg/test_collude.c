/* test_collude.c - a cheating coordinator helped by colluding orgs (issue 10). Each case plays
 * the attack with the real sa_client code and checks that the target's secrets are NOT both
 * recovered, while honest rounds with the same parameters still give the exact sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"
#include "sa_test_util.h"

static void reencode(const sa_msg *m, uint8_t **bytes, size_t *len)
{
    uint8_t *nb;
    size_t nl;
    assert_int_equal(sa_msg_encode_alloc(m, &nb, &nl), MU_OK);
    free(*bytes);
    *bytes = nb;
    *len = nl;
}

static void check_sum(sa_world *w)
{
    const uint32_t *sum;
    size_t d;
    assert_int_equal(sa_server_result(w->server, &sum, &d), MU_OK);
    uint32_t *want = calloc(w->d ? w->d : 1, sizeof *want);
    sa_world_expected(w, want);
    assert_memory_equal(sum, want, (size_t)w->d * sizeof *want);
    free(want);
}

/* ---- attack 2: split survivor view + colluding holders ---- */

enum { MAXN = 16 };

/* The attack's state: target 0, colluders 1..nc, group A (shown the set with the target) is
 * the target and honest orgs nc+1 .. nc+a; the other honest orgs are group B (shown the set
 * without the target). */
static struct {
    uint32_t nc, a;
    uint8_t session[SA_HASH_BYTES];
    uint8_t tgt_cpk[32];
    uint8_t col_csk[MAXN][32];            /* colluders' share keys, from their seeded rng */
    uint8_t sig_full[MAXN][SA_SIG_BYTES]; /* CONSIST_SIG of each org (on the set it saw) */
    int has_sig[MAXN];
    uint8_t *req; /* the server's UNMASK_REQ, which it sends only to the orgs of its view */
    size_t req_len;
    int col_shares; /* colluders holding both shares of the target */
    int b_revealed, s_revealed;
} atk;

static int in_b(const sa_world *w, uint32_t id)
{
    int i = sa_world_index(w, id);
    return i > (int)(atk.nc + atk.a);
}

static void spy_split(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    sa_msg m;
    if (sa_msg_decode(&m, bytes, len, NULL) != MU_OK)
        return;
    int i = sa_world_index(w, from);
    if (m.type == SA_MSG_CONSIST_SIG) {
        memcpy(atk.sig_full[i], m.sig, SA_SIG_BYTES);
        atk.has_sig[i] = 1;
    } else if (m.type == SA_MSG_UNMASK) {
        for (size_t r = 0; r < m.n_reveals; r++)
            if (m.reveals[r].owner == w->ids[0] && (i == 0 || (uint32_t)i > atk.nc)) {
                atk.b_revealed += m.reveals[r].kind == SA_REVEAL_B;
                atk.s_revealed += m.reveals[r].kind == SA_REVEAL_S;
            }
    }
    sa_msg_deinit(&m);
}

/* The colluders open the target's ciphertexts addressed to them: both shares. */
static void colluder_opens(sa_world *w, uint32_t to, const sa_msg *m)
{
    int ci = sa_world_index(w, to);
    for (size_t e = 0; e < m->n_cts; e++) {
        if (m->cts[e].peer != w->ids[0])
            continue;
        uint8_t key[32], ad[SA_SHARE_AD_BYTES], pt[SA_SHARE_PT_BYTES];
        assert_int_equal(
            sa_share_key(key, atk.session, atk.col_csk[ci], atk.tgt_cpk, w->ids[0], to), 0);
        sa_share_ad(ad, atk.session, w->ids[0], to);
        const uint8_t *ct = m->cts[e].ct;
        assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                             pt, NULL, NULL, ct + SA_NONCE_BYTES,
                             SA_SHARE_CT_BYTES - SA_NONCE_BYTES, ad, sizeof ad, ct, key),
                         0);
        atk.col_shares++;
    }
}

static int tamper_split(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
    int ti = sa_world_index(w, to);
    if (type == SA_MSG_KEYS) {
        memcpy(atk.tgt_cpk, m.keys[0].c_pk, 32);
    } else if (type == SA_MSG_DELIVERY) {
        memcpy(atk.session, m.binding, SA_HASH_BYTES);
        if (ti >= 1 && (uint32_t)ti <= atk.nc)
            colluder_opens(w, to, &m);
    } else if (type == SA_MSG_SURVIVORS && in_b(w, to)) {
        assert_int_equal(m.ids[0], w->ids[0]);
        memmove(m.ids, m.ids + 1, (m.n_ids - 1) * sizeof *m.ids); /* hide the target */
        m.n_ids--;
        reencode(&m, bytes, len);
    } else if (type == SA_MSG_UNMASK_REQ) {
        if (!atk.req) {
            atk.req = malloc(*len);
            memcpy(atk.req, *bytes, *len);
            atk.req_len = *len;
        }
        /* each org gets only the signatures on its own view; the colluders sign both */
        int b = in_b(w, to);
        if (b) {
            memmove(m.ids, m.ids + 1, (m.n_ids - 1) * sizeof *m.ids);
            m.n_ids--;
        }
        uint8_t dg[SA_HASH_BYTES];
        sa_survivors_digest(dg, atk.session, m.ids, m.n_ids);
        size_t ns = 0;
        sa_sig_entry *sigs = calloc(w->n, sizeof *sigs);
        for (uint32_t i = 0; i < w->n; i++) {
            sigs[ns].id = w->ids[i];
            if (i >= 1 && i <= atk.nc)
                crypto_sign_detached(sigs[ns++].sig, NULL, dg, sizeof dg, w->sks[i]);
            else if (atk.has_sig[i] && in_b(w, w->ids[i]) == b)
                memcpy(sigs[ns++].sig, atk.sig_full[i], SA_SIG_BYTES);
        }
        free(m.sigs);
        m.sigs = sigs;
        m.n_sigs = ns;
        reencode(&m, bytes, len);
    }
    sa_msg_deinit(&m);
    return 1;
}

/* Plays the attack at (n, k, t) with nc colluders and a honest orgs beside the target in group
 * A. Returns 1 if the coordinator holds t shares of both b and s_sk of the target. */
static int play_split(uint32_t n, uint32_t k, uint32_t t, uint32_t nc, uint32_t a, uint64_t seed)
{
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, n, 8, 32, k, t, seed, &diag), MU_OK);
    memset(&atk, 0, sizeof atk);
    atk.nc = nc;
    atk.a = a;
    for (uint32_t i = 1; i <= nc; i++) {
        /* a colluder's first draw is its share key pair's seed (sa_client_start) */
        sa_rng_seeded copy = w.rngs[i];
        uint8_t seedb[32], pk[32];
        sa_rng r = sa_rng_from_seeded(&copy);
        r.fill(r.ctx, seedb, sizeof seedb);
        crypto_box_seed_keypair(pk, atk.col_csk[i], seedb);
    }
    w.spy = spy_split;
    w.tamper = tamper_split;
    assert_int_equal(sa_world_make_clients(&w, &diag), MU_OK);
    assert_int_equal(sa_world_start(&w), MU_OK);
    for (int st = SA_STAGE_ADVERTISE; st <= SA_STAGE_CONSISTENCY; st++)
        if (sa_world_step(&w, (sa_stage)st, &diag))
            break;
    /* the orgs of the other view get their request too */
    sa_outbox ob;
    sa_outbox_init(&ob);
    for (uint32_t i = 0; i < n && atk.req; i++) {
        if (!in_b(&w, w.ids[i]))
            continue;
        uint8_t *copy = malloc(atk.req_len);
        size_t clen = atk.req_len;
        memcpy(copy, atk.req, clen);
        tamper_split(&w, w.ids[i], SA_MSG_UNMASK_REQ, &copy, &clen);
        sa_client_handle(w.clients[i], copy, clen, &ob, NULL);
        for (size_t e = 0; e < ob.count; e++)
            spy_split(&w, w.ids[i], ob.items[e].bytes, ob.items[e].len);
        sa_outbox_clear(&ob);
        free(copy);
    }
    sa_outbox_deinit(&ob);
    free(atk.req);
    atk.req = NULL;
    int b = (int)nc + atk.b_revealed, s = (int)nc + atk.s_revealed;
    assert_int_equal(atk.col_shares, (int)nc);
    sa_world_free(&w);
    return b >= (int)t && s >= (int)t;
}

static void test_split_view_with_colluders(void **state)
{
    (void)state;
    /* The working parameters are refused by every client and the server. */
    static const uint32_t bad[][3] = {{10, 9, 6}, {100, 34, 18}, {1000, 38, 20}};
    for (int i = 0; i < 3; i++) {
        uint32_t n = bad[i][0];
        uint32_t *ids = calloc(n, sizeof *ids);
        uint8_t(*pks)[32] = calloc(n, 32);
        for (uint32_t j = 0; j < n; j++)
            ids[j] = j + 1;
        sa_config c = {.round_id = 1,
                       .n = n,
                       .org_ids = ids,
                       .sign_pks = (const uint8_t(*)[32])pks,
                       .d = 4,
                       .bits = 32,
                       .k = bad[i][1],
                       .t = bad[i][2]};
        mu_diag diag = {{0}};
        assert_int_equal(sa_config_check(&c, &diag), MU_ERR_INVALID);
        assert_non_null(strstr(diag.msg, "colluders"));
        assert_null(sa_server_new(&c, &diag));
        free(ids);
        free(pks);
    }
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, 5, 8, 32, 4, 4, 70, &diag), MU_OK);
    sa_config c = w.cfg;
    c.t = 3; /* the old minimum for 5 holders: a client refuses it by itself */
    assert_null(sa_client_new(&c, w.ids[0], w.sks[0], NULL, &diag));
    sa_world_free(&w);

    /* n = 10, the chosen (9, 7): with 2 colluders every split of the honest holders leaves
     * the coordinator short of t shares of b or of s_sk. */
    sa_graph_params p = sa_graph_params_default();
    uint32_t k, t;
    assert_int_equal(sa_graph_choose(10, &p, &k, &t), MU_OK);
    assert_int_equal(k, 9);
    assert_int_equal(t, 7);
    assert_int_equal(sa_max_colluders(10, 9), 3);
    for (uint32_t a = 0; a <= 7; a++)
        assert_false(play_split(10, k, t, 2, a, 71 + a));
    /* and 3 colluders (the bound) as well */
    for (uint32_t a = 0; a <= 6; a++)
        assert_false(play_split(10, k, t, 3, a, 81 + a));

    /* the honest coordinator with the same parameters: exact sum with 3 orgs dropped */
    assert_int_equal(sa_world_init(&w, 10, 50, 32, k, t, 90, &diag), MU_OK);
    w.drop_at[2] = 2;
    w.drop_at[5] = 3;
    w.drop_at[7] = 5;
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    assert_int_equal(sa_server_survivors(w.server, NULL, 0), 8);
    check_sum(&w);
    sa_world_free(&w);
}

/* ---- attack 5: a holder shifts its share ---- */

static struct {
    uint32_t liar[2]; /* org indices that shift a share (liar[1] = -1u: only one) */
    uint32_t owner;   /* whose share they shift */
    uint8_t kind;
} shift;

static void shift_share(sa_world *w, uint32_t from, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    int i = sa_world_index(w, from);
    if (type != SA_MSG_UNMASK || ((uint32_t)i != shift.liar[0] && (uint32_t)i != shift.liar[1]))
        return;
    sa_msg m;
    assert_int_equal(sa_msg_decode(&m, *bytes, *len, NULL), MU_OK);
    int done = 0;
    for (size_t r = 0; r < m.n_reveals; r++)
        if (m.reveals[r].owner == w->ids[shift.owner] && m.reveals[r].kind == shift.kind) {
            m.reveals[r].share[0] ^= 0x01; /* a small shift of the first limb's share */
            done = 1;
        }
    assert_true(done);
    reencode(&m, bytes, len);
    sa_msg_deinit(&m);
}

static void run_shift(uint32_t liar0, uint32_t liar1, uint32_t owner, uint8_t kind, int drop_owner,
                      int drop_other, uint64_t seed, sa_world *w)
{
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(w, 6, 40, 32, 5, 4, seed, &diag), MU_OK);
    shift.liar[0] = liar0;
    shift.liar[1] = liar1;
    shift.owner = owner;
    shift.kind = kind;
    if (drop_owner)
        w->drop_at[owner] = 3; /* shared, then dropped: its s_sk is reconstructed */
    if (drop_other >= 0)
        w->drop_at[drop_other] = 5; /* one holder fewer at unmasking: no spare left */
    w->upstream = shift_share;
}

static void test_shifted_share(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    uint32_t ids[6];

    /* n = 6 complete (k 5, t 4): 6 holders, 2 spares. Org 2 shifts its share of org 0's b:
     * the sum is still exact and org 2 is named. */
    run_shift(2, -1u, 0, SA_REVEAL_B, 0, -1, 101, &w);
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    check_sum(&w);
    assert_int_equal(sa_server_cheaters(w.server, ids, 6), 1);
    assert_int_equal(ids[0], w.ids[2]);
    sa_world_free(&w);

    /* the same for the mask key of a dropped org (reconstructed from s_sk shares) */
    run_shift(3, -1u, 1, SA_REVEAL_S, 1, -1, 102, &w);
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    check_sum(&w);
    assert_int_equal(sa_server_cheaters(w.server, ids, 6), 1);
    assert_int_equal(ids[0], w.ids[3]);
    sa_world_free(&w);

    /* the liar is the first holder (the owner's lowest neighbour): still found */
    run_shift(1, -1u, 0, SA_REVEAL_B, 0, -1, 103, &w);
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    check_sum(&w);
    assert_int_equal(sa_server_cheaters(w.server, ids, 6), 1);
    assert_int_equal(ids[0], w.ids[1]);
    sa_world_free(&w);

    /* two liars on the same owner with one spare: no wrong sum, the round aborts naming the
     * owner */
    run_shift(2, 3, 0, SA_REVEAL_B, 0, 5, 104, &w);
    assert_int_equal(sa_world_run(&w, &diag), MU_ERR_ABORT);
    assert_non_null(strstr(diag.msg, "committed"));
    const uint32_t *sum;
    size_t d;
    assert_int_equal(sa_server_result(w.server, &sum, &d), MU_ERR_STATE);
    sa_world_free(&w);

    /* honest holders: nobody named */
    assert_int_equal(sa_world_init(&w, 6, 40, 32, 5, 4, 105, &diag), MU_OK);
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    check_sum(&w);
    assert_int_equal(sa_server_cheaters(w.server, NULL, 0), 0);
    sa_world_free(&w);
}

/* ---- attack 4: ring re-rolling and carving ---- */

static uint32_t watched;          /* index of the org whose SHARES recipients are recorded */
static uint32_t recips[MAXN * 8]; /* its recipients */
static size_t n_recips;
static int unmasks;
static void spy_shares(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    sa_msg m;
    if (sa_msg_decode(&m, bytes, len, NULL) != MU_OK)
        return;
    if (m.type == SA_MSG_SHARES && from == w->ids[watched]) {
        n_recips = m.n_cts;
        for (size_t e = 0; e < m.n_cts; e++)
            recips[e] = m.cts[e].peer;
    }
    unmasks += m.type == SA_MSG_UNMASK;
    sa_msg_deinit(&m);
}

/* Org 0's neighbours after stage 1, with colluder 5's keys drawn from `colluder_seed` and
 * the orgs in `withheld` (ids) left out of KEYS by the coordinator. */
static size_t ring_of_0(uint8_t colluder_seed, const int *withheld, uint32_t *out)
{
    sa_world w;
    mu_diag diag = {{0}};
    assert_int_equal(sa_world_init(&w, 20, 4, 32, 6, 5, 110, &diag), MU_OK);
    uint8_t seed[32] = {colluder_seed, 7};
    sa_rng_seeded_init(&w.rngs[5], seed); /* fresh keys for the colluder: a re-roll */
    for (const int *p = withheld; *p >= 0; p++)
        w.drop_at[*p] = 1;
    watched = 0;
    n_recips = 0;
    w.spy = spy_shares;
    assert_int_equal(sa_world_make_clients(&w, &diag), MU_OK);
    assert_int_equal(sa_world_start(&w), MU_OK);
    assert_int_equal(sa_world_step(&w, SA_STAGE_ADVERTISE, &diag), MU_OK);
    memcpy(out, recips, n_recips * sizeof *out);
    sa_world_free(&w);
    return n_recips;
}

static void test_ring_cannot_be_rerolled(void **state)
{
    (void)state;
    static const int none[] = {-1};
    uint32_t a[8], b[8];
    size_t na = ring_of_0(1, none, a);
    assert_int_equal(na, 6);
    /* the colluder re-rolls its keys (new session id): org 0's neighbours stay the same */
    for (uint8_t r = 2; r < 6; r++) {
        assert_int_equal(ring_of_0(r, none, b), na);
        assert_memory_equal(a, b, na * sizeof *a);
    }
    /* leaving two of org 0's neighbours out of KEYS does not pull others next to it: the
     * ring is over the whole cohort, the two just count as dropped */
    int withheld[3] = {(int)(a[0] - 1000) / 7, (int)(a[3] - 1000) / 7, -1};
    size_t nb = ring_of_0(1, withheld, b);
    assert_int_equal(nb, 4);
    size_t j = 0;
    for (size_t i = 0; i < na; i++)
        if (i != 0 && i != 3)
            assert_int_equal(b[j++], a[i]);
}

static void test_carving_refused(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_graph_params p = sa_graph_params_default();
    uint32_t k, t;
    assert_int_equal(sa_graph_choose(100, &p, &k, &t), MU_OK);
    assert_int_equal(sa_min_survivors(100, t), 73);
    assert_int_equal(sa_max_dropped(100, k), 26);
    /* the coordinator "loses" the share messages of 30 orgs to sum a smaller set: the rest
     * would still have t live holders, but the dropouts exceed the stated assumption and
     * every org aborts before revealing anything */
    sa_world w;
    assert_int_equal(sa_world_init(&w, 100, 8, 32, k, t, 120, &diag), MU_OK);
    for (int i = 0; i < 30; i++)
        w.drop_at[3 * i + 1] = 2;
    unmasks = 0;
    watched = 0;
    w.spy = spy_shares;
    assert_int_not_equal(sa_world_run(&w, &diag), MU_OK);
    assert_int_equal(unmasks, 0);
    assert_int_not_equal(sa_server_stage(w.server), SA_STAGE_DONE);
    for (uint32_t i = 0; i < 100; i++)
        if (!w.drop_at[i]) {
            assert_int_equal(w.client_rc[i], MU_ERR_ABORT);
            assert_int_equal(sa_client_stage(w.clients[i]), SA_STAGE_ABORTED);
        }
    sa_world_free(&w);

    /* within the assumption (10 dropped before their upload) the sum is exact */
    assert_int_equal(sa_world_init(&w, 100, 8, 32, k, t, 121, &diag), MU_OK);
    for (int i = 0; i < 10; i++)
        w.drop_at[9 * i + 4] = 3;
    assert_int_equal(sa_world_run(&w, &diag), MU_OK);
    assert_int_equal(sa_server_survivors(w.server, NULL, 0), 90);
    check_sum(&w);
    sa_world_free(&w);
}

/* ---- replayed advertisement to a restarted coordinator ---- */

static uint8_t *adv0;
static size_t adv0_len;
static void keep_adv0(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    sa_msg_type type;
    uint32_t org;
    if (from == w->ids[0] && !adv0 && sa_msg_peek(bytes, len, &type, &org) == MU_OK &&
        type == SA_MSG_ADVERTISE) {
        adv0 = malloc(len);
        memcpy(adv0, bytes, len);
        adv0_len = len;
    }
}

static void test_advertisement_replay(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    assert_int_equal(sa_world_init(&w, 5, 4, 32, 4, 4, 130, &diag), MU_OK);
    memset(w.cfg.instance_nonce, 0xA1, SA_INSTANCE_NONCE_BYTES);
    sa_server_free(w.server);
    w.server = sa_server_new(&w.cfg, &diag);
    adv0 = NULL;
    w.spy = keep_adv0;
    assert_int_equal(sa_world_make_clients(&w, &diag), MU_OK);
    assert_int_equal(sa_world_start(&w), MU_OK);
    assert_non_null(adv0);
    /* the coordinator restarts: with the same config the old advertisement still verifies
     * (what the nonce is for), with a fresh instance nonce it is refused */
    sa_server *same = sa_server_new(&w.cfg, &diag);
    assert_int_equal(sa_server_handle(same, w.ids[0], adv0, adv0_len, NULL, &diag), MU_OK);
    sa_server_free(same);
    sa_config fresh = w.cfg;
    memset(fresh.instance_nonce, 0xB2, SA_INSTANCE_NONCE_BYTES);
    sa_server *restarted = sa_server_new(&fresh, &diag);
    assert_int_not_equal(sa_server_handle(restarted, w.ids[0], adv0, adv0_len, NULL, &diag), MU_OK);
    assert_int_equal(sa_server_pending(restarted), 5);
    sa_server_free(restarted);
    free(adv0);
    adv0 = NULL;
    /* the round with the nonce completes */
    for (int st = SA_STAGE_ADVERTISE; st <= SA_STAGE_UNMASK; st++)
        assert_int_equal(sa_world_step(&w, (sa_stage)st, &diag), MU_OK);
    check_sum(&w);
    sa_world_free(&w);
}

/* ---- secrets wiped as soon as they are no longer needed ---- */

static void test_secrets_wiped_after_upload(void **state)
{
    (void)state;
    mu_diag diag = {{0}};
    sa_world w;
    assert_int_equal(sa_world_init(&w, 5, 16, 32, 4, 4, 140, &diag), MU_OK);
    assert_int_equal(sa_world_make_clients(&w, &diag), MU_OK);
    assert_int_equal(sa_world_start(&w), MU_OK);
    assert_int_equal(sa_world_step(&w, SA_STAGE_ADVERTISE, &diag), MU_OK);
    for (uint32_t i = 0; i < 5; i++) /* waiting for DELIVERY: all four are still needed */
        assert_int_equal(sa_client_secrets_held(w.clients[i]), 15);
    assert_int_equal(sa_world_step(&w, SA_STAGE_SHARE, &diag), MU_OK);
    for (uint32_t i = 0; i < 5; i++) { /* uploaded: c_sk, s_sk and b are gone */
        assert_int_equal(sa_client_stage(w.clients[i]), SA_STAGE_CONSISTENCY);
        assert_int_equal(sa_client_secrets_held(w.clients[i]), 0);
    }
    for (int st = SA_STAGE_MASKED; st <= SA_STAGE_UNMASK; st++)
        assert_int_equal(sa_world_step(&w, (sa_stage)st, &diag), MU_OK);
    check_sum(&w);
    sa_world_free(&w);
}

int main(void)
{
    if (sa_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_view_with_colluders),
        cmocka_unit_test(test_shifted_share),
        cmocka_unit_test(test_ring_cannot_be_rerolled),
        cmocka_unit_test(test_carving_refused),
        cmocka_unit_test(test_advertisement_replay),
        cmocka_unit_test(test_secrets_wiped_after_upload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
