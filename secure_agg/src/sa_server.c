/* sa_server.c - the coordinator's side: collects, routes and checks messages stage by stage,
 * keeps one running sum of masked inputs, and unmasks it from the revealed shares. */
#include <omp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"

enum { IN_U2 = 1, IN_U3 = 2, IN_U4 = 4, IN_U5 = 8 };

struct sa_server {
    uint64_t round_id;
    uint32_t n, d, bits, k, t;
    uint32_t *ids;                    /* (n) cohort ids, ascending */
    uint8_t (*pks)[SA_SIGN_PK_BYTES]; /* (n) same order */
    uint8_t cfg_hash[SA_HASH_BYTES];
    uint8_t session[SA_HASH_BYTES];
    sa_stage stage;
    int threads;
    size_t pending;

    /* stage 1, by cohort index */
    sa_key_entry *adv; /* (n) */
    uint8_t *advertised;

    /* from stage 2 on, by index into u1 (the graph's indices) */
    uint32_t m;
    sa_key_entry *u1;  /* (m) advertised keys, ascending ids */
    uint32_t *u1_ci;   /* (m) cohort index */
    int32_t *ci_u1;    /* (n) index into u1, or -1 for an org that did not advertise */
    sa_graph g;        /* over the whole cohort (cohort indices), ordered by the config hash */
    uint32_t *gbuf;    /* (k_eff) scratch: neighbours as cohort indices */
    uint8_t *flags;    /* (m) IN_U* */
    uint8_t *bad;      /* (m) sent a share that did not fit its owner's commitment */
    sa_ct_entry **cts; /* (m) SHARES entries of each sharer (n_cts[i] each) */
    uint32_t *n_cts;   /* (m) its advertised neighbours */
    uint32_t *nbuf;    /* (k_eff) scratch for neighbour lists */
    uint32_t *sum;     /* (d) running sum mod 2^32 */
    uint8_t (*csig)[SA_SIG_BYTES]; /* (m) consistency signatures */
    uint32_t *surv;                /* U3 ids, ascending */
    size_t n_surv;
    uint8_t surv_digest[SA_HASH_BYTES];
    sa_reveal_entry **rev; /* (m) UNMASK entries of each responder */
    uint32_t *n_rev;       /* (m) */

    uint32_t *recipients; /* of the last SA_TO_ALL */
    size_t n_recipients;
    double t_sum, t_unmask;
    sa_clock clock; /* t_sum, t_unmask only with one */
};

static void free_round_tables(sa_server *s)
{
    if (s->cts)
        for (uint32_t i = 0; i < s->m; i++)
            free(s->cts[i]);
    free(s->cts);
    s->cts = NULL;
    if (s->rev)
        for (uint32_t i = 0; i < s->m; i++) {
            if (s->rev[i])
                sodium_memzero(s->rev[i], s->n_rev[i] * sizeof *s->rev[i]);
            free(s->rev[i]);
        }
    free(s->rev);
    s->rev = NULL;
}

void sa_server_free(sa_server *s)
{
    if (!s)
        return;
    free_round_tables(s);
    free(s->ids);
    free(s->pks);
    free(s->adv);
    free(s->advertised);
    free(s->u1);
    free(s->u1_ci);
    free(s->ci_u1);
    free(s->gbuf);
    free(s->n_cts);
    sa_graph_deinit(&s->g);
    free(s->flags);
    free(s->bad);
    free(s->nbuf);
    free(s->sum);
    free(s->csig);
    free(s->surv);
    free(s->n_rev);
    free(s->recipients);
    free(s);
}

sa_server *sa_server_new(const sa_config *cfg, mu_diag *diag)
{
    if (sa_config_check(cfg, diag))
        return NULL;
    sa_server *s = calloc(1, sizeof *s);
    if (!s)
        goto out_nomem;
    s->ids = malloc(cfg->n * sizeof *s->ids);
    s->pks = malloc((size_t)cfg->n * SA_SIGN_PK_BYTES);
    s->adv = calloc(cfg->n, sizeof *s->adv);
    s->advertised = calloc(cfg->n, 1);
    s->sum = calloc(cfg->d ? cfg->d : 1, sizeof *s->sum);
    if (!s->ids || !s->pks || !s->adv || !s->advertised || !s->sum)
        goto out_free;
    for (uint32_t i = 0; i < cfg->n; i++) {
        uint32_t j = i;
        while (j > 0 && s->ids[j - 1] > cfg->org_ids[i]) {
            s->ids[j] = s->ids[j - 1];
            memcpy(s->pks[j], s->pks[j - 1], SA_SIGN_PK_BYTES);
            j--;
        }
        s->ids[j] = cfg->org_ids[i];
        memcpy(s->pks[j], cfg->sign_pks[i], SA_SIGN_PK_BYTES);
    }
    s->round_id = cfg->round_id;
    s->n = cfg->n;
    s->d = cfg->d;
    s->bits = cfg->bits;
    s->k = cfg->k;
    s->t = cfg->t;
    s->clock = cfg->clock;
    sa_config_hash(s->cfg_hash, cfg);
    s->stage = SA_STAGE_ADVERTISE;
    s->threads = 1;
    s->pending = cfg->n;
    return s;
out_free:
    sa_server_free(s);
out_nomem:
    mu_diag_set(diag, MU_ERR_NOMEM, "secure_agg: out of memory creating the server");
    return NULL;
}

void sa_server_set_threads(sa_server *s, int threads)
{
    s->threads = threads;
}

void sa_server_times(const sa_server *s, double *sum_seconds, double *unmask_seconds)
{
    *sum_seconds = s->t_sum;
    *unmask_seconds = s->t_unmask;
}

sa_stage sa_server_stage(const sa_server *s)
{
    return s->stage;
}

size_t sa_server_pending(const sa_server *s)
{
    return s->pending;
}

int sa_server_result(const sa_server *s, const uint32_t **sum, size_t *d)
{
    if (s->stage != SA_STAGE_DONE)
        return MU_ERR_STATE;
    *sum = s->sum;
    *d = s->d;
    return MU_OK;
}

static size_t copy_ids(const uint32_t *src, size_t n, uint32_t *ids, size_t cap)
{
    if (ids)
        memcpy(ids, src, (n < cap ? n : cap) * sizeof *ids);
    return n;
}

size_t sa_server_recipients(const sa_server *s, uint32_t *ids, size_t cap)
{
    return copy_ids(s->recipients, s->n_recipients, ids, cap);
}

size_t sa_server_cheaters(const sa_server *s, uint32_t *ids, size_t cap)
{
    size_t c = 0;
    for (uint32_t i = 0; i < s->m && s->bad; i++)
        if (s->bad[i]) {
            if (ids && c < cap)
                ids[c] = s->u1[i].id;
            c++;
        }
    return c;
}

size_t sa_server_survivors(const sa_server *s, uint32_t *ids, size_t cap)
{
    return copy_ids(s->surv, s->n_surv, ids, cap);
}

static int server_abort(sa_server *s, int rc)
{
    free_round_tables(s);
    sodium_memzero(s->sum, (s->d ? s->d : 1) * sizeof *s->sum);
    s->stage = SA_STAGE_ABORTED;
    s->pending = 0;
    return rc;
}

static void header(const sa_server *s, sa_msg *m, sa_msg_type type, uint32_t to)
{
    sa_msg_init(m);
    m->type = type;
    m->round_id = s->round_id;
    memcpy(m->binding, type == SA_MSG_KEYS ? s->cfg_hash : s->session, SA_HASH_BYTES);
    m->org = to;
}

/* Records the members of U_x (flag) as the recipients of a broadcast; returns how many. */
static int set_recipients(sa_server *s, uint8_t flag)
{
    free(s->recipients);
    s->recipients = malloc((s->m ? s->m : 1) * sizeof *s->recipients);
    if (!s->recipients)
        return MU_ERR_NOMEM;
    s->n_recipients = 0;
    for (uint32_t i = 0; i < s->m; i++)
        if (!flag || (s->flags[i] & flag))
            s->recipients[s->n_recipients++] = s->u1[i].id;
    return MU_OK;
}

static long u1_index(const sa_server *s, uint32_t id)
{
    size_t lo = 0, hi = s->m;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->u1[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < s->m && s->u1[lo].id == id) ? (long)lo : -1;
}

/* The advertisers among u1 index i's ring neighbours, as u1 indices, ascending (u1 and the
 * cohort are both in id order). out has room for the graph's k_eff. */
static uint32_t nbrs(const sa_server *s, uint32_t i, uint32_t *out)
{
    uint32_t nr = sa_graph_neighbours(&s->g, s->u1_ci[i], s->gbuf), c = 0;
    for (uint32_t j = 0; j < nr; j++)
        if (s->ci_u1[s->gbuf[j]] >= 0)
            out[c++] = (uint32_t)s->ci_u1[s->gbuf[j]];
    return c;
}

/* ---- stage handlers ---- */

static int on_advertise(sa_server *s, const sa_msg *m, mu_diag *diag)
{
    long ci = sa_ids_find(s->ids, s->n, m->org);
    if (ci < 0)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: org %u is not in the cohort",
                           m->org);
    if (s->advertised[ci])
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: duplicate ADVERTISE from %u",
                           m->org);
    uint8_t sb[SA_ADV_SIGNED_BYTES];
    sa_key_entry e = m->adv;
    e.id = m->org;
    sa_adv_signed_bytes(sb, s->cfg_hash, &e);
    if (crypto_sign_verify_detached(m->adv.sig, sb, sizeof sb, s->pks[ci]) != 0)
        return mu_diag_set(diag, MU_ERR_CRYPTO, "secure_agg: org %u's ADVERTISE signature fails",
                           m->org);
    s->adv[ci] = m->adv;
    s->adv[ci].id = m->org;
    s->advertised[ci] = 1;
    s->pending--;
    return MU_OK;
}

static int on_shares(sa_server *s, long i, const sa_msg *m, mu_diag *diag)
{
    if (s->flags[i] & IN_U2)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: duplicate SHARES from %u", m->org);
    uint32_t nn = nbrs(s, (uint32_t)i, s->nbuf);
    if (m->n_cts != nn)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: org %u sent %zu shares, expected %u",
                           m->org, m->n_cts, nn);
    for (uint32_t j = 0; j < nn; j++)
        if (m->cts[j].peer != s->u1[s->nbuf[j]].id)
            return mu_diag_set(diag, MU_ERR_PROTOCOL,
                               "secure_agg: org %u addressed a share to %u, not a neighbour",
                               m->org, m->cts[j].peer);
    s->cts[i] = malloc((nn ? nn : 1) * sizeof *s->cts[i]);
    if (!s->cts[i])
        return MU_ERR_NOMEM;
    memcpy(s->cts[i], m->cts, nn * sizeof *s->cts[i]);
    s->n_cts[i] = nn;
    s->flags[i] |= IN_U2;
    s->pending--;
    return MU_OK;
}

static int on_masked(sa_server *s, long i, const sa_msg *m, mu_diag *diag)
{
    if (!(s->flags[i] & IN_U2))
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: MASKED from %u, who did not share",
                           m->org);
    if (s->flags[i] & IN_U3)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: duplicate MASKED from %u", m->org);
    if (m->bits != s->bits || m->d != s->d)
        return mu_diag_set(diag, MU_ERR_PROTOCOL,
                           "secure_agg: org %u sent d=%u at %u bits, expected d=%u at %u bits",
                           m->org, m->d, m->bits, s->d, s->bits);
    double t0 = sa_clock_now(&s->clock);
    /* single-threaded on purpose: memory-bound, and an OpenMP region per message cost 8x
     * more CPU than it saved on the shared 2-core machine */
    sa_unpack_add(s->sum, s->d, m->packed, sa_pack_len(s->d, s->bits), s->bits);
    s->t_sum += sa_clock_now(&s->clock) - t0;
    s->flags[i] |= IN_U3;
    s->pending--;
    return MU_OK;
}

static int on_consist(sa_server *s, long i, const sa_msg *m, mu_diag *diag)
{
    if (!(s->flags[i] & IN_U3))
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: CONSIST_SIG from non-survivor %u",
                           m->org);
    if (s->flags[i] & IN_U4)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: duplicate CONSIST_SIG from %u",
                           m->org);
    if (crypto_sign_verify_detached(m->sig, s->surv_digest, SA_HASH_BYTES, s->pks[s->u1_ci[i]]) !=
        0)
        return mu_diag_set(diag, MU_ERR_CRYPTO, "secure_agg: org %u's survivor-set signature fails",
                           m->org);
    memcpy(s->csig[i], m->sig, SA_SIG_BYTES);
    s->flags[i] |= IN_U4;
    s->pending--;
    return MU_OK;
}

static int on_unmask(sa_server *s, long i, const sa_msg *m, mu_diag *diag)
{
    if (!(s->flags[i] & IN_U4))
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: UNMASK from %u, not asked", m->org);
    if (s->flags[i] & IN_U5)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: duplicate UNMASK from %u", m->org);
    for (size_t r = 0; r < m->n_reveals; r++) {
        long o = u1_index(s, m->reveals[r].owner);
        int ok = o >= 0 && (s->flags[o] & IN_U2) &&
                 (o == i || sa_graph_adjacent(&s->g, s->u1_ci[i], s->u1_ci[o]));
        uint8_t want = (o >= 0 && (s->flags[o] & IN_U3)) ? SA_REVEAL_B : SA_REVEAL_S;
        if (!ok || m->reveals[r].kind != want)
            return mu_diag_set(diag, MU_ERR_PROTOCOL,
                               "secure_agg: org %u revealed a share it should not (owner %u)",
                               m->org, m->reveals[r].owner);
    }
    s->rev[i] = malloc((m->n_reveals ? m->n_reveals : 1) * sizeof *s->rev[i]);
    if (!s->rev[i])
        return MU_ERR_NOMEM;
    memcpy(s->rev[i], m->reveals, m->n_reveals * sizeof *s->rev[i]);
    s->n_rev[i] = (uint32_t)m->n_reveals;
    s->flags[i] |= IN_U5;
    s->pending--;
    return MU_OK;
}

static int msg_stage(sa_msg_type t)
{
    switch (t) {
    case SA_MSG_ADVERTISE:
        return SA_STAGE_ADVERTISE;
    case SA_MSG_SHARES:
        return SA_STAGE_SHARE;
    case SA_MSG_MASKED:
        return SA_STAGE_MASKED;
    case SA_MSG_CONSIST_SIG:
        return SA_STAGE_CONSISTENCY;
    case SA_MSG_UNMASK:
        return SA_STAGE_UNMASK;
    default:
        return 0;
    }
}

int sa_server_handle(sa_server *s, uint32_t from, const uint8_t *bytes, size_t len, sa_outbox *out,
                     mu_diag *diag)
{
    (void)out;
    sa_msg m;
    int rc = sa_msg_decode(&m, bytes, len, diag);
    if (rc)
        return rc;
    int st = msg_stage(m.type);
    const uint8_t *binding = m.type == SA_MSG_ADVERTISE ? s->cfg_hash : s->session;
    if (st == 0)
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: a server-to-client message");
    else if (st < (int)s->stage || s->stage >= SA_STAGE_DONE)
        rc = mu_diag_set(diag, MU_ERR_TIMEOUT, "secure_agg: stage %d is closed (late message)", st);
    else if (st > (int)s->stage)
        rc = mu_diag_set(diag, MU_ERR_STATE, "secure_agg: stage %d is not open yet", st);
    else if (m.round_id != s->round_id || sodium_memcmp(m.binding, binding, SA_HASH_BYTES) != 0)
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: message from another round or session");
    else if (m.org != from)
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: message says org %u, transport says %u",
                         m.org, from);
    else if (st == SA_STAGE_ADVERTISE)
        rc = on_advertise(s, &m, diag);
    else {
        long i = u1_index(s, m.org);
        if (i < 0)
            rc = mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: org %u did not advertise", m.org);
        else if (st == SA_STAGE_SHARE)
            rc = on_shares(s, i, &m, diag);
        else if (st == SA_STAGE_MASKED)
            rc = on_masked(s, i, &m, diag);
        else if (st == SA_STAGE_CONSISTENCY)
            rc = on_consist(s, i, &m, diag);
        else
            rc = on_unmask(s, i, &m, diag);
    }
    sa_msg_deinit(&m);
    return rc;
}

/* ---- closing stages ---- */

static uint32_t count_flag(const sa_server *s, uint8_t flag)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < s->m; i++)
        c += (s->flags[i] & flag) != 0;
    return c;
}

static int close_advertise(sa_server *s, sa_outbox *out, mu_diag *diag)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < s->n; i++)
        m += s->advertised[i];
    uint32_t k_eff = m ? (s->k < m - 1 ? s->k : m - 1) : 0;
    if (m < 2 || k_eff + 1 < s->t)
        return server_abort(s, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: %u orgs advertised keys; threshold t=%u "
                                           "needs at least %u",
                                           m, s->t, s->t > 2 ? s->t : 2));
    s->m = m;
    s->u1 = malloc(m * sizeof *s->u1);
    s->u1_ci = malloc(m * sizeof *s->u1_ci);
    s->flags = calloc(m, 1);
    s->bad = calloc(m, 1);
    s->cts = calloc(m, sizeof *s->cts);
    s->n_cts = calloc(m, sizeof *s->n_cts);
    s->rev = calloc(m, sizeof *s->rev);
    s->n_rev = calloc(m, sizeof *s->n_rev);
    s->csig = calloc(m, SA_SIG_BYTES);
    uint32_t g_keff = s->k < s->n - 1 ? s->k : s->n - 1;
    s->nbuf = malloc((g_keff ? g_keff : 1) * sizeof *s->nbuf);
    s->gbuf = malloc((g_keff ? g_keff : 1) * sizeof *s->gbuf);
    s->ci_u1 = malloc(s->n * sizeof *s->ci_u1);
    if (!s->u1 || !s->u1_ci || !s->flags || !s->bad || !s->cts || !s->rev || !s->n_rev ||
        !s->csig || !s->nbuf || !s->gbuf || !s->ci_u1 || !s->n_cts)
        return server_abort(s, MU_ERR_NOMEM);
    for (uint32_t i = 0, j = 0; i < s->n; i++) {
        s->ci_u1[i] = -1;
        if (s->advertised[i]) {
            s->u1[j] = s->adv[i];
            s->ci_u1[i] = (int32_t)j;
            s->u1_ci[j++] = i;
        }
    }
    sa_session_id(s->session, s->cfg_hash, s->u1, m);
    /* the ring over the whole cohort, as every client builds it (sa_client.c) */
    int rc = sa_graph_build(&s->g, s->cfg_hash, s->n, s->ids, s->k);
    if (rc)
        return server_abort(s, rc);
    sa_msg r;
    header(s, &r, SA_MSG_KEYS, SA_TO_ALL);
    r.keys = s->u1;
    r.n_keys = m;
    if ((rc = set_recipients(s, 0)) || (rc = sa_outbox_push_msg(out, SA_TO_ALL, &r)))
        return server_abort(s, rc);
    s->stage = SA_STAGE_SHARE;
    s->pending = m;
    return MU_OK;
}

static long find_ct(const sa_ct_entry *cts, uint32_t n, uint32_t peer)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cts[mid].peer < peer)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && cts[lo].peer == peer) ? (long)lo : -1;
}

static int close_share(sa_server *s, sa_outbox *out, mu_diag *diag)
{
    uint32_t n2 = count_flag(s, IN_U2);
    if (n2 < s->t)
        return server_abort(s, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: %u orgs shared keys, fewer than t=%u", n2,
                                           s->t));
    sa_msg r;
    header(s, &r, SA_MSG_DELIVERY, 0);
    r.cts = malloc((s->g.k_eff ? s->g.k_eff : 1) * sizeof *r.cts);
    if (!r.cts)
        return server_abort(s, MU_ERR_NOMEM);
    int rc = MU_OK;
    for (uint32_t v = 0; v < s->m && rc == MU_OK; v++) {
        if (!(s->flags[v] & IN_U2))
            continue;
        uint32_t nn = nbrs(s, v, s->nbuf);
        r.org = s->u1[v].id;
        r.n_cts = 0;
        for (uint32_t j = 0; j < nn; j++) {
            uint32_t u = s->nbuf[j];
            if (!(s->flags[u] & IN_U2))
                continue;
            long at = find_ct(s->cts[u], s->n_cts[u], r.org);
            if (at < 0)
                continue; /* impossible: on_shares checked the recipients */
            r.cts[r.n_cts].peer = s->u1[u].id;
            memcpy(r.cts[r.n_cts].ct, s->cts[u][at].ct, SA_SHARE_CT_BYTES);
            r.n_cts++;
        }
        rc = sa_outbox_push_msg(out, r.org, &r);
    }
    free(r.cts);
    if (rc)
        return server_abort(s, rc);
    for (uint32_t i = 0; i < s->m; i++) {
        free(s->cts[i]);
        s->cts[i] = NULL;
    }
    s->stage = SA_STAGE_MASKED;
    s->pending = n2;
    return MU_OK;
}

static int close_masked(sa_server *s, sa_outbox *out, mu_diag *diag)
{
    uint32_t n3 = count_flag(s, IN_U3);
    if (n3 < s->t)
        return server_abort(s, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: %u masked inputs arrived, fewer than "
                                           "t=%u: nothing is revealed",
                                           n3, s->t));
    s->surv = malloc(n3 * sizeof *s->surv);
    if (!s->surv)
        return server_abort(s, MU_ERR_NOMEM);
    s->n_surv = 0;
    for (uint32_t i = 0; i < s->m; i++)
        if (s->flags[i] & IN_U3)
            s->surv[s->n_surv++] = s->u1[i].id;
    sa_survivors_digest(s->surv_digest, s->session, s->surv, s->n_surv);
    sa_msg r;
    header(s, &r, SA_MSG_SURVIVORS, SA_TO_ALL);
    r.ids = s->surv;
    r.n_ids = s->n_surv;
    int rc;
    if ((rc = set_recipients(s, IN_U3)) || (rc = sa_outbox_push_msg(out, SA_TO_ALL, &r)))
        return server_abort(s, rc);
    s->stage = SA_STAGE_CONSISTENCY;
    s->pending = n3;
    return MU_OK;
}

static int close_consistency(sa_server *s, sa_outbox *out, mu_diag *diag)
{
    uint32_t n4 = count_flag(s, IN_U4);
    if (n4 < s->t)
        return server_abort(s, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: %u orgs confirmed the survivor set, fewer "
                                           "than t=%u",
                                           n4, s->t));
    sa_msg r;
    header(s, &r, SA_MSG_UNMASK_REQ, SA_TO_ALL);
    r.ids = s->surv;
    r.n_ids = s->n_surv;
    r.sigs = malloc(n4 * sizeof *r.sigs);
    if (!r.sigs)
        return server_abort(s, MU_ERR_NOMEM);
    for (uint32_t i = 0; i < s->m; i++)
        if (s->flags[i] & IN_U4) {
            r.sigs[r.n_sigs].id = s->u1[i].id;
            memcpy(r.sigs[r.n_sigs++].sig, s->csig[i], SA_SIG_BYTES);
        }
    int rc = set_recipients(s, IN_U4);
    if (rc == MU_OK)
        rc = sa_outbox_push_msg(out, SA_TO_ALL, &r);
    free(r.sigs);
    if (rc)
        return server_abort(s, rc);
    s->stage = SA_STAGE_UNMASK;
    s->pending = n4;
    return MU_OK;
}

/* The share of owner o's secret (kind) held by responder h, or NULL. */
static const uint8_t *find_reveal(const sa_server *s, uint32_t h, uint32_t owner_id, uint8_t kind)
{
    uint32_t lo = 0, hi = s->n_rev[h];
    const sa_reveal_entry *r = s->rev[h];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r[mid].owner < owner_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n_rev[h] && r[lo].owner == owner_id && r[lo].kind == kind)
        return r[lo].share;
    return NULL;
}

/* Lagrange coefficients of the last holder set: reused while the set repeats (in a
 * complete graph most owners are reconstructed from the same first t holders). */
typedef struct {
    uint64_t *xs, *prev; /* (t) current and cached x-coordinates */
    int cached;
    uint8_t (*lambda)[SA_SCALAR_BYTES]; /* (t) for prev */
    uint64_t *all_xs;                   /* (k_eff+1) x of every share found */
    uint32_t *who;                      /* (k_eff+1) holder of each share found */
} lagrange_cache;

/* Whether `secret` is what owner o committed to: H(b) in its signed ADVERTISE for b, the
 * advertised s_pk for s_sk. */
static int secret_matches(const sa_server *s, uint32_t o, uint8_t kind,
                          const uint8_t secret[SA_SECRET_BYTES])
{
    uint8_t want[32];
    if (kind == SA_REVEAL_B) {
        sa_b_commit(want, s->cfg_hash, s->u1[o].id, secret);
        return sodium_memcmp(want, s->u1[o].b_commit, SA_HASH_BYTES) == 0;
    }
    crypto_scalarmult_base(want, secret);
    return sodium_memcmp(want, s->u1[o].s_pk, 32) == 0;
}

/* Combines t of the got shares (the first t, leaving out index `skip` if skip >= 0) and checks
 * the result against the owner's commitment: 1 it matches, 0 it does not, or a negative error
 * (MU_ERR_NOMEM: no verdict on the shares). */
static int try_combine(sa_server *s, uint32_t o, uint8_t kind, uint8_t secret[SA_SECRET_BYTES],
                       const uint8_t **sh, const uint64_t *xs_all, uint32_t got, long skip,
                       lagrange_cache *lc)
{
    const uint8_t **use = sh + got; /* scratch after the got pointers */
    uint32_t n = 0;
    for (uint32_t j = 0; j < got && n < s->t; j++)
        if ((long)j != skip) {
            use[n] = sh[j];
            lc->xs[n++] = xs_all[j];
        }
    if (n < s->t)
        return 0;
    if (!lc->cached || memcmp(lc->prev, lc->xs, s->t * sizeof *lc->xs) != 0) {
        lc->cached = 0;
        int rc = sa_shamir_lagrange(lc->lambda, lc->xs, s->t);
        if (rc)
            return rc;
        memcpy(lc->prev, lc->xs, s->t * sizeof *lc->xs);
        lc->cached = 1;
    }
    if (sa_shamir_combine(secret, use, (const uint8_t(*)[SA_SCALAR_BYTES])lc->lambda, s->t) !=
        MU_OK)
        return 0;
    return secret_matches(s, o, kind, secret);
}

/* Reconstructs o's secret of `kind` from the responders holding a share, leaving out holders
 * already found cheating. If the first t shares do not give the committed secret, the spare
 * shares find the one wrong share: the holder whose omission gives it is marked a cheater. */
static int reconstruct(sa_server *s, uint32_t o, uint8_t kind, uint8_t secret[SA_SECRET_BYTES],
                       const uint8_t **sh, lagrange_cache *lc, mu_diag *diag)
{
    uint64_t *xs = lc->all_xs;
    uint32_t *who = lc->who;
    uint32_t nn = nbrs(s, o, s->nbuf);
    uint32_t got = 0;
    for (uint32_t j = 0; j <= nn; j++) {
        uint32_t h = j < nn ? s->nbuf[j] : o;
        if (!(s->flags[h] & IN_U5) || s->bad[h])
            continue;
        const uint8_t *p = find_reveal(s, h, s->u1[o].id, kind);
        if (!p)
            continue;
        sh[got] = p;
        who[got] = h;
        xs[got++] = (uint64_t)s->u1[h].id + 1;
    }
    if (got < s->t)
        return mu_diag_set(diag, MU_ERR_ABORT,
                           "secure_agg: cannot unmask org %u: %u of t=%u shares arrived",
                           s->u1[o].id, got, s->t);
    int ok = try_combine(s, o, kind, secret, sh, xs, got, -1, lc);
    /* one wrong share among the first t+1: leave each out in turn */
    for (uint32_t j = 0; ok == 0 && j < got && j <= s->t; j++)
        if ((ok = try_combine(s, o, kind, secret, sh, xs, got, (long)j, lc)) == 1)
            s->bad[who[j]] = 1;
    if (ok == 1)
        return MU_OK;
    if (ok < 0) {
        sodium_memzero(secret, SA_SECRET_BYTES);
        return mu_diag_set(diag, ok, "secure_agg: out of memory unmasking org %u", s->u1[o].id);
    }
    sodium_memzero(secret, SA_SECRET_BYTES);
    return mu_diag_set(diag, MU_ERR_ABORT,
                       "secure_agg: shares of org %u's %s do not reconstruct to what it committed "
                       "to, and no single holder explains it (%u shares, t=%u)",
                       s->u1[o].id, kind == SA_REVEAL_B ? "seed b" : "mask key", got, s->t);
}

static int close_unmask(sa_server *s, mu_diag *diag)
{
    double t0 = sa_clock_now(&s->clock);
    uint32_t n3 = count_flag(s, IN_U3), n_drop = count_flag(s, IN_U2) - n3;
    size_t cap = n3 + (size_t)n_drop * s->g.k_eff;
    sa_prg_term *terms = calloc(cap ? cap : 1, sizeof *terms);
    size_t holders = (size_t)s->g.k_eff + 1;
    const uint8_t **sh = malloc((holders + s->t) * sizeof *sh);
    lagrange_cache lc = {malloc(s->t * sizeof *lc.xs),
                         malloc(s->t * sizeof *lc.prev),
                         0,
                         malloc((size_t)s->t * SA_SCALAR_BYTES),
                         malloc(holders * sizeof *lc.all_xs),
                         malloc(holders * sizeof *lc.who)};
    uint32_t *nb = malloc((s->g.k_eff ? s->g.k_eff : 1) * sizeof *nb);
    /* per term: the dropped owner's mask key (an index into dsec; UINT32_MAX for a self mask),
     * the surviving neighbour, the owner's id */
    uint8_t(*dsec)[SA_SECRET_BYTES] = malloc((n_drop ? n_drop : 1) * (size_t)SA_SECRET_BYTES);
    uint32_t(*pair)[3] = malloc((cap ? cap : 1) * sizeof *pair);
    int rc = MU_OK;
    size_t nt = 0, nd = 0;
    if (!terms || !sh || !lc.xs || !lc.prev || !lc.lambda || !lc.all_xs || !lc.who || !nb ||
        !dsec || !pair) {
        rc = MU_ERR_NOMEM;
        goto out;
    }
    for (uint32_t o = 0; o < s->m && rc == MU_OK; o++) {
        if (!(s->flags[o] & IN_U2))
            continue;
        uint8_t secret[SA_SECRET_BYTES];
        uint32_t oid = s->u1[o].id;
        if (s->flags[o] & IN_U3) {
            if ((rc = reconstruct(s, o, SA_REVEAL_B, secret, sh, &lc, diag)))
                break;
            sa_self_key(terms[nt].key, s->session, secret, oid);
            pair[nt][0] = UINT32_MAX;
            terms[nt++].sign = -1;
        } else {
            if ((rc = reconstruct(s, o, SA_REVEAL_S, secret, sh, &lc, diag)))
                break;
            memcpy(dsec[nd], secret, SA_SECRET_BYTES);
            uint32_t nn = nbrs(s, o, nb);
            for (uint32_t j = 0; j < nn; j++) {
                uint32_t v = nb[j];
                if (!(s->flags[v] & IN_U3))
                    continue;
                pair[nt][0] = (uint32_t)nd;
                pair[nt][1] = v;
                pair[nt][2] = oid;
                /* v added +PRG if v < o, -PRG otherwise: undo it */
                terms[nt++].sign = s->u1[v].id < oid ? -1 : 1;
            }
            nd++;
        }
        sodium_memzero(secret, sizeof secret);
    }
    /* The pair keys, one X25519 each, on the unmasking threads (the keys do not depend on the
     * split); sign 0 marks a bad key. */
    int th = s->threads == 0 ? omp_get_max_threads() : s->threads;
#pragma omp parallel for schedule(dynamic, 8) num_threads(th) if (th > 1 && rc == MU_OK)
    for (long i = 0; i < (long)nt; i++) {
        if (rc != MU_OK || pair[i][0] == UINT32_MAX)
            continue;
        uint32_t v = pair[i][1];
        if (sa_pair_key(terms[i].key, s->session, dsec[pair[i][0]], s->u1[v].s_pk, pair[i][2],
                        s->u1[v].id))
            terms[i].sign = 0;
    }
    for (size_t i = 0; i < nt && rc == MU_OK; i++)
        if (terms[i].sign == 0)
            rc = mu_diag_set(diag, MU_ERR_ABORT, "secure_agg: bad mask key of org %u",
                             s->u1[pair[i][1]].id);
    if (rc == MU_OK) {
        sa_prg_apply(s->sum, s->d, terms, nt, s->threads);
        if (s->bits < 32)
            for (uint32_t i = 0; i < s->d; i++)
                s->sum[i] &= (1u << s->bits) - 1;
    }
out:
    if (terms)
        sodium_memzero(terms, (cap ? cap : 1) * sizeof *terms);
    free(terms);
    if (dsec)
        sodium_memzero(dsec, (n_drop ? n_drop : 1) * (size_t)SA_SECRET_BYTES);
    free(dsec);
    free(pair);
    free(sh);
    free(lc.xs);
    free(lc.prev);
    free(lc.lambda);
    free(lc.all_xs);
    free(lc.who);
    free(nb);
    s->t_unmask += sa_clock_now(&s->clock) - t0;
    if (rc)
        return server_abort(s, rc);
    free_round_tables(s);
    s->stage = SA_STAGE_DONE;
    s->pending = 0;
    return MU_OK;
}

int sa_server_close_stage(sa_server *s, sa_stage stage, sa_outbox *out, mu_diag *diag)
{
    if (stage != s->stage || stage >= SA_STAGE_DONE)
        return mu_diag_set(diag, MU_ERR_STATE, "secure_agg: stage %d is not open (open: %d)",
                           (int)stage, (int)s->stage);
    switch (stage) {
    case SA_STAGE_ADVERTISE:
        return close_advertise(s, out, diag);
    case SA_STAGE_SHARE:
        return close_share(s, out, diag);
    case SA_STAGE_MASKED:
        return close_masked(s, out, diag);
    case SA_STAGE_CONSISTENCY:
        return close_consistency(s, out, diag);
    default:
        return close_unmask(s, diag);
    }
}
