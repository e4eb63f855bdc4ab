/* sa_client.c - one org's side of the round: keys, shares, masked input, consistency check,
 * unmasking with the never-both rule. */
#include <omp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sa_internal.h"

struct sa_client {
    /* the round */
    uint64_t round_id;
    uint32_t n, d, bits, k, t;
    uint32_t k_eff;                   /* ring neighbours in the whole cohort */
    uint32_t max_drop;                /* sa_max_dropped: more lost neighbours and I abort */
    uint32_t min_surv;                /* max(sa_min_survivors, cfg min_survivors) */
    uint32_t *ids;                    /* (n) cohort ids, ascending */
    uint8_t (*pks)[SA_SIGN_PK_BYTES]; /* (n) identity keys, same order */
    uint8_t cfg_hash[SA_HASH_BYTES];
    uint32_t self;
    uint8_t sign_sk[SA_SIGN_SK_BYTES];
    sa_rng rng;
    int threads;
    sa_stage stage;

    /* round secrets */
    uint8_t c_pk[32], c_sk[32], s_pk[32], s_sk[32], b[SA_SECRET_BYTES];
    uint8_t b_commit[SA_HASH_BYTES];
    uint8_t session[SA_HASH_BYTES];

    /* neighbours (ascending ids) and what they sent */
    uint32_t nn;
    uint32_t *nb;                           /* (nn) ids */
    uint8_t (*nb_cpk)[32];                  /* (nn) */
    uint8_t (*nb_spk)[32];                  /* (nn) */
    uint8_t (*nb_share)[SA_SHARE_PT_BYTES]; /* (nn) their shares of b and s_sk for me */
    uint8_t (*nb_rkey)[32]; /* (nn) keys of their share ciphertexts to me, until DELIVERY */
    uint8_t *nb_has;        /* (nn) a share arrived in DELIVERY */
    uint8_t *nb_revealed;   /* (nn) 0, SA_REVEAL_B or SA_REVEAL_S */
    uint8_t own_share[SA_SHARE_PT_BYTES];

    uint32_t *input; /* (d) from set_input until the masked upload, else NULL */
    int has_input;
    uint32_t *surv; /* (n_surv) the survivor set I signed */
    size_t n_surv;
    double times[6];
    sa_clock clock; /* times[] only with one */
};

static void wipe_secrets(sa_client *c)
{
    sodium_memzero(c->c_sk, sizeof c->c_sk);
    sodium_memzero(c->s_sk, sizeof c->s_sk);
    sodium_memzero(c->b, sizeof c->b);
    sodium_memzero(c->own_share, sizeof c->own_share);
    if (c->nb_share)
        sodium_memzero(c->nb_share, (size_t)c->nn * SA_SHARE_PT_BYTES);
    if (c->nb_rkey)
        sodium_memzero(c->nb_rkey, (size_t)c->nn * 32);
    if (c->input)
        sodium_memzero(c->input, (size_t)c->d * sizeof *c->input);
}

static int client_abort(sa_client *c, int rc)
{
    wipe_secrets(c);
    c->stage = SA_STAGE_ABORTED;
    return rc;
}

sa_client *sa_client_new(const sa_config *cfg, uint32_t self_id,
                         const uint8_t sign_sk[SA_SIGN_SK_BYTES], const sa_rng *rng, mu_diag *diag)
{
    if (sa_config_check(cfg, diag))
        return NULL;
    long at = -1;
    for (uint32_t i = 0; i < cfg->n; i++)
        if (cfg->org_ids[i] == self_id)
            at = i;
    if (at < 0) {
        mu_diag_set(diag, MU_ERR_INVALID, "secure_agg: org %u is not in the cohort", self_id);
        return NULL;
    }
    uint8_t pk[SA_SIGN_PK_BYTES];
    crypto_sign_ed25519_sk_to_pk(pk, sign_sk);
    if (sodium_memcmp(pk, cfg->sign_pks[at], SA_SIGN_PK_BYTES) != 0) {
        mu_diag_set(diag, MU_ERR_INVALID,
                    "secure_agg: org %u's signing key does not match the round config", self_id);
        return NULL;
    }
    sa_client *c = calloc(1, sizeof *c);
    if (!c)
        goto out_nomem;
    c->ids = malloc(cfg->n * sizeof *c->ids);
    c->pks = malloc((size_t)cfg->n * SA_SIGN_PK_BYTES);
    if (!c->ids || !c->pks)
        goto out_free;
    /* cohort sorted by id (insertion into place: n is at most SA_MAX_ORGS, done once) */
    uint32_t *order = malloc(cfg->n * sizeof *order);
    if (!order)
        goto out_free;
    for (uint32_t i = 0; i < cfg->n; i++) {
        uint32_t j = i;
        while (j > 0 && cfg->org_ids[order[j - 1]] > cfg->org_ids[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (uint32_t i = 0; i < cfg->n; i++) {
        c->ids[i] = cfg->org_ids[order[i]];
        memcpy(c->pks[i], cfg->sign_pks[order[i]], SA_SIGN_PK_BYTES);
    }
    free(order);
    c->round_id = cfg->round_id;
    c->n = cfg->n;
    c->d = cfg->d;
    c->bits = cfg->bits;
    c->k = cfg->k;
    c->t = cfg->t;
    c->k_eff = cfg->k < cfg->n - 1 ? cfg->k : cfg->n - 1;
    c->max_drop = sa_max_dropped(cfg->n, c->k_eff);
    c->min_surv = sa_min_survivors(cfg->n, cfg->t);
    if (cfg->min_survivors > c->min_surv)
        c->min_surv = cfg->min_survivors;
    c->clock = cfg->clock;
    sa_config_hash(c->cfg_hash, cfg);
    c->self = self_id;
    memcpy(c->sign_sk, sign_sk, SA_SIGN_SK_BYTES);
    if (rng)
        c->rng = *rng;
    c->threads = 1;
    c->stage = SA_STAGE_ADVERTISE;
    return c;
out_free:
    sa_client_free(c);
out_nomem:
    mu_diag_set(diag, MU_ERR_NOMEM, "secure_agg: out of memory creating a client");
    return NULL;
}

void sa_client_free(sa_client *c)
{
    if (!c)
        return;
    wipe_secrets(c);
    sodium_memzero(c->sign_sk, sizeof c->sign_sk);
    free(c->ids);
    free(c->pks);
    free(c->nb);
    free(c->nb_cpk);
    free(c->nb_spk);
    free(c->nb_share);
    free(c->nb_rkey);
    free(c->nb_has);
    free(c->nb_revealed);
    free(c->input);
    free(c->surv);
    free(c);
}

static int nonzero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc != 0;
}

unsigned sa_client_secrets_held(const sa_client *c)
{
    return (unsigned)nonzero(c->c_sk, sizeof c->c_sk) |
           (unsigned)nonzero(c->s_sk, sizeof c->s_sk) << 1 |
           (unsigned)nonzero(c->b, sizeof c->b) << 2 |
           (unsigned)(c->nb_rkey && nonzero(c->nb_rkey[0], (size_t)c->nn * 32)) << 3;
}

sa_stage sa_client_stage(const sa_client *c)
{
    return c->stage;
}

void sa_client_set_threads(sa_client *c, int threads)
{
    c->threads = threads;
}

/* Threads for the per-neighbour work (signature checks, key agreements, share encryption) and
 * the mask expansion. */
static int nthreads(const sa_client *c)
{
    return c->threads == 0 ? omp_get_max_threads() : c->threads;
}

void sa_client_times(const sa_client *c, double times[6])
{
    memcpy(times, c->times, sizeof c->times);
}

int sa_client_set_input(sa_client *c, const uint32_t *q, size_t len)
{
    if (c->stage != SA_STAGE_ADVERTISE && c->stage != SA_STAGE_SHARE && c->stage != SA_STAGE_MASKED)
        return MU_ERR_STATE;
    if (len != c->d || (len && !q))
        return MU_ERR_INVALID;
    if (c->bits < 32)
        for (size_t i = 0; i < len; i++)
            if (q[i] >> c->bits)
                return MU_ERR_INVALID;
    if (!c->input && !(c->input = malloc((c->d ? c->d : 1) * sizeof *c->input)))
        return MU_ERR_NOMEM;
    if (len)
        memcpy(c->input, q, len * sizeof *q);
    c->has_input = 1;
    return MU_OK;
}

static void header(const sa_client *c, sa_msg *m, sa_msg_type type)
{
    sa_msg_init(m);
    m->type = type;
    m->round_id = c->round_id;
    memcpy(m->binding, type == SA_MSG_ADVERTISE ? c->cfg_hash : c->session, SA_HASH_BYTES);
    m->org = c->self;
}

int sa_client_start(sa_client *c, sa_outbox *out, mu_diag *diag)
{
    if (c->stage != SA_STAGE_ADVERTISE)
        return mu_diag_set(diag, MU_ERR_STATE, "secure_agg: client already started");
    double t0 = sa_clock_now(&c->clock);
    uint8_t seed[crypto_box_SEEDBYTES];
    sa_rng_fill(&c->rng, seed, sizeof seed);
    crypto_box_seed_keypair(c->c_pk, c->c_sk, seed);
    sa_rng_fill(&c->rng, seed, sizeof seed);
    crypto_box_seed_keypair(c->s_pk, c->s_sk, seed);
    sodium_memzero(seed, sizeof seed);
    /* b now, so that its commitment is in the signed advertisement */
    sa_rng_fill(&c->rng, c->b, sizeof c->b);
    sa_b_commit(c->b_commit, c->cfg_hash, c->self, c->b);

    sa_msg m;
    header(c, &m, SA_MSG_ADVERTISE);
    m.adv.id = c->self;
    memcpy(m.adv.c_pk, c->c_pk, 32);
    memcpy(m.adv.s_pk, c->s_pk, 32);
    memcpy(m.adv.b_commit, c->b_commit, SA_HASH_BYTES);
    uint8_t signed_bytes[SA_ADV_SIGNED_BYTES];
    sa_adv_signed_bytes(signed_bytes, c->cfg_hash, &m.adv);
    crypto_sign_detached(m.adv.sig, NULL, signed_bytes, sizeof signed_bytes, c->sign_sk);
    int rc = sa_outbox_push_msg(out, SA_TO_SERVER, &m);
    if (rc)
        return mu_diag_set(diag, rc, "secure_agg: cannot queue ADVERTISE");
    c->stage = SA_STAGE_SHARE;
    c->times[1] += sa_clock_now(&c->clock) - t0;
    return MU_OK;
}

/* ---- stage 2: KEYS -> SHARES ---- */

/* Index of org id in KEYS (ids ascending), or -1. */
static long key_find(const sa_key_entry *keys, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && keys[lo].id == id) ? (long)lo : -1;
}

static int handle_keys(sa_client *c, const sa_msg *m, sa_outbox *out, mu_diag *diag)
{
    const sa_key_entry *keys = m->keys;
    size_t nk = m->n_keys;
    long me = -1;
    for (size_t i = 0; i < nk; i++) {
        long ci = sa_ids_find(c->ids, c->n, keys[i].id);
        if (ci < 0)
            return client_abort(c, mu_diag_set(diag, MU_ERR_PROTOCOL,
                                               "secure_agg: KEYS lists org %u, not in the cohort",
                                               keys[i].id));
        if (keys[i].id == c->self)
            me = (long)i;
    }
    if (me < 0 || sodium_memcmp(keys[me].c_pk, c->c_pk, 32) != 0 ||
        sodium_memcmp(keys[me].s_pk, c->s_pk, 32) != 0 ||
        sodium_memcmp(keys[me].b_commit, c->b_commit, SA_HASH_BYTES) != 0)
        return client_abort(
            c, mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: KEYS does not carry my own keys"));
    sa_session_id(c->session, c->cfg_hash, keys, nk);

    /* The ring is over the whole cohort, ordered by the config hash: fixed before any key is
     * advertised, so neither fresh keys nor leaving advertisers out moves anyone on it. */
    sa_graph g;
    int rc = sa_graph_build(&g, c->cfg_hash, c->n, c->ids, c->k);
    if (rc)
        return client_abort(c, mu_diag_set(diag, rc, "secure_agg: cannot build the graph"));
    uint32_t *nbi = malloc((g.k_eff ? g.k_eff : 1) * sizeof *nbi);
    uint64_t *xs = malloc((g.k_eff + 1) * sizeof *xs);
    uint8_t(*sh_b)[SA_SHARE_BYTES] = malloc((g.k_eff + 1) * (size_t)SA_SHARE_BYTES);
    uint8_t(*sh_s)[SA_SHARE_BYTES] = malloc((g.k_eff + 1) * (size_t)SA_SHARE_BYTES);
    c->nb = malloc((g.k_eff ? g.k_eff : 1) * sizeof *c->nb);
    c->nb_cpk = malloc((g.k_eff ? g.k_eff : 1) * 32);
    c->nb_spk = malloc((g.k_eff ? g.k_eff : 1) * 32);
    c->nb_share = calloc(g.k_eff ? g.k_eff : 1, SA_SHARE_PT_BYTES);
    c->nb_rkey = calloc(g.k_eff ? g.k_eff : 1, 32);
    c->nb_has = calloc(g.k_eff ? g.k_eff : 1, 1);
    uint8_t *fail = calloc(g.k_eff ? g.k_eff : 1, 1);
    c->nb_revealed = calloc(g.k_eff ? g.k_eff : 1, 1);
    sa_msg r;
    header(c, &r, SA_MSG_SHARES);
    r.cts = calloc(g.k_eff ? g.k_eff : 1, sizeof *r.cts);
    if (!nbi || !xs || !sh_b || !sh_s || !c->nb || !c->nb_cpk || !c->nb_spk || !c->nb_share ||
        !c->nb_rkey || !c->nb_has || !c->nb_revealed || !r.cts || !fail) {
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "secure_agg: out of memory sharing keys");
        goto out;
    }
    /* my ring neighbours (cohort indices) that advertised, as indices into KEYS */
    uint32_t nr = sa_graph_neighbours(&g, (uint32_t)sa_ids_find(c->ids, c->n, c->self), nbi);
    c->nn = 0;
    for (uint32_t j = 0; j < nr; j++) {
        long ki = key_find(keys, nk, c->ids[nbi[j]]);
        if (ki >= 0)
            nbi[c->nn++] = (uint32_t)ki;
    }
    if (c->k_eff - c->nn > c->max_drop) {
        rc = client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                         "secure_agg: %u of my %u neighbours did not advertise "
                                         "keys; the dropout assumption allows %u",
                                         c->k_eff - c->nn, c->k_eff, c->max_drop));
        goto out;
    }
    if (c->nn + 1 < c->t) {
        rc = client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                         "secure_agg: only %u neighbours advertised keys; "
                                         "threshold t=%u needs %u",
                                         c->nn, c->t, c->t - 1));
        goto out;
    }
    /* Only the neighbours' keys are used, so only their signatures are checked (O(k), not
     * O(n) verifications); the session id still hashes every entry, so all orgs that go
     * on saw the same list, and a substituted key makes its owner's neighbours abort. */
    int th = nthreads(c);
#pragma omp parallel for schedule(dynamic, 4) num_threads(th) if (th > 1)
    for (long j = 0; j < (long)c->nn; j++) {
        const sa_key_entry *e = &keys[nbi[j]];
        uint8_t sb[SA_ADV_SIGNED_BYTES];
        sa_adv_signed_bytes(sb, c->cfg_hash, e);
        fail[j] = crypto_sign_verify_detached(e->sig, sb, sizeof sb,
                                              c->pks[sa_ids_find(c->ids, c->n, e->id)]) != 0;
    }
    for (uint32_t j = 0; j < c->nn; j++)
        if (fail[j]) {
            rc = client_abort(c, mu_diag_set(diag, MU_ERR_CRYPTO,
                                             "secure_agg: org %u's advertised keys fail their "
                                             "signature (substituted?)",
                                             keys[nbi[j]].id));
            goto out;
        }
    for (uint32_t j = 0; j < c->nn; j++) {
        c->nb[j] = keys[nbi[j]].id;
        memcpy(c->nb_cpk[j], keys[nbi[j]].c_pk, 32);
        memcpy(c->nb_spk[j], keys[nbi[j]].s_pk, 32);
        xs[j] = (uint64_t)c->nb[j] + 1;
    }
    xs[c->nn] = (uint64_t)c->self + 1;
    if ((rc = sa_shamir_split(sh_b, xs, c->nn + 1, c->t, c->b, &c->rng, th)) ||
        (rc = sa_shamir_split(sh_s, xs, c->nn + 1, c->t, c->s_sk, &c->rng, th))) {
        rc = client_abort(c, mu_diag_set(diag, rc, "secure_agg: cannot split secrets"));
        goto out;
    }
    memcpy(c->own_share, sh_b[c->nn], SA_SHARE_BYTES);
    memcpy(c->own_share + SA_SHARE_BYTES, sh_s[c->nn], SA_SHARE_BYTES);
    r.n_cts = c->nn;
    for (uint32_t j = 0; j < c->nn; j++) { /* nonces first: the rng is not shared by threads */
        r.cts[j].peer = c->nb[j];
        sa_rng_fill(&c->rng, r.cts[j].ct, SA_NONCE_BYTES);
    }
    /* One X25519 per neighbour gives the key of my ciphertext to it and of its one to me (kept
     * for DELIVERY, wiped there). */
#pragma omp parallel for schedule(dynamic, 4) num_threads(th) if (th > 1)
    for (long j = 0; j < (long)c->nn; j++) {
        uint8_t key[32], ad[SA_SHARE_AD_BYTES], pt[SA_SHARE_PT_BYTES];
        uint8_t *ct = r.cts[j].ct;
        fail[j] = sa_share_keys(key, c->nb_rkey[j], c->session, c->c_sk, c->nb_cpk[j], c->self,
                                c->nb[j]) != 0;
        if (fail[j])
            continue;
        sa_share_ad(ad, c->session, c->self, c->nb[j]);
        memcpy(pt, sh_b[j], SA_SHARE_BYTES);
        memcpy(pt + SA_SHARE_BYTES, sh_s[j], SA_SHARE_BYTES);
        crypto_aead_xchacha20poly1305_ietf_encrypt(ct + SA_NONCE_BYTES, NULL, pt, sizeof pt, ad,
                                                   sizeof ad, NULL, ct, key);
        sodium_memzero(key, sizeof key);
        sodium_memzero(pt, sizeof pt);
    }
    for (uint32_t j = 0; j < c->nn; j++)
        if (fail[j]) {
            rc = client_abort(c, mu_diag_set(diag, MU_ERR_CRYPTO,
                                             "secure_agg: org %u advertised an invalid key",
                                             c->nb[j]));
            goto out;
        }
    rc = sa_outbox_push_msg(out, SA_TO_SERVER, &r);
    if (rc == MU_OK)
        c->stage = SA_STAGE_MASKED;
out:
    if (rc == MU_ERR_NOMEM)
        client_abort(c, rc); /* partial neighbour tables: do not retry */
    if (sh_b)
        sodium_memzero(sh_b, (g.k_eff + 1) * (size_t)SA_SHARE_BYTES);
    if (sh_s)
        sodium_memzero(sh_s, (g.k_eff + 1) * (size_t)SA_SHARE_BYTES);
    free(sh_b);
    free(sh_s);
    free(r.cts);
    free(fail);
    free(xs);
    free(nbi);
    sa_graph_deinit(&g);
    return rc;
}

/* ---- stage 3: DELIVERY -> MASKED ---- */

static long nb_index(const sa_client *c, uint32_t id)
{
    return sa_ids_find(c->nb, c->nn, id);
}

static int handle_delivery(sa_client *c, const sa_msg *m, sa_outbox *out, mu_diag *diag)
{
    if (!c->has_input)
        return mu_diag_set(diag, MU_ERR_STATE, "secure_agg: no input set before DELIVERY");
    uint8_t *has = calloc(c->nn ? c->nn : 1, 1);
    long *at = malloc((m->n_cts ? m->n_cts : 1) * sizeof *at);
    if (!has || !at) {
        free(has);
        free(at);
        return MU_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->n_cts; i++) { /* peers are ascending (decoder): no repeats */
        if ((at[i] = nb_index(c, m->cts[i].peer)) < 0) {
            free(has);
            free(at);
            return client_abort(c, mu_diag_set(diag, MU_ERR_PROTOCOL,
                                               "secure_agg: DELIVERY from org %u, not a neighbour",
                                               m->cts[i].peer));
        }
    }
    int th = nthreads(c);
#pragma omp parallel for schedule(dynamic, 4) num_threads(th) if (th > 1)
    for (long i = 0; i < (long)m->n_cts; i++) {
        long j = at[i];
        uint8_t ad[SA_SHARE_AD_BYTES];
        const uint8_t *ct = m->cts[i].ct;
        sa_share_ad(ad, c->session, c->nb[j], c->self);
        /* has[j]: 1 decrypted, 2 failed */
        has[j] = crypto_aead_xchacha20poly1305_ietf_decrypt(
                     c->nb_share[j], NULL, NULL, ct + SA_NONCE_BYTES,
                     SA_SHARE_CT_BYTES - SA_NONCE_BYTES, ad, sizeof ad, ct, c->nb_rkey[j]) == 0
                     ? 1
                     : 2;
    }
    free(at);
    for (size_t i = 0; i < m->n_cts; i++)
        if (has[nb_index(c, m->cts[i].peer)] == 2) {
            free(has);
            return client_abort(c, mu_diag_set(diag, MU_ERR_CRYPTO,
                                               "secure_agg: share from org %u fails to decrypt "
                                               "(edited, replayed or moved ciphertext)",
                                               m->cts[i].peer));
        }
    uint32_t live = 0;
    for (uint32_t j = 0; j < c->nn; j++)
        live += has[j];
    if (c->k_eff - live > c->max_drop) {
        free(has);
        return client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: %u of my %u neighbours sent no shares; "
                                           "the dropout assumption allows %u",
                                           c->k_eff - live, c->k_eff, c->max_drop));
    }
    if (live + 1 < c->t) {
        free(has);
        return client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: only %u neighbours hold my shares; "
                                           "threshold t=%u needs %u",
                                           live, c->t, c->t - 1));
    }
    memcpy(c->nb_has, has, c->nn);
    free(has);

    sa_prg_term *terms = calloc(live + 1, sizeof *terms);
    uint32_t *tj = malloc((live + 1) * sizeof *tj); /* the neighbour of each pair term */
    sa_msg r;
    header(c, &r, SA_MSG_MASKED);
    size_t plen = sa_pack_len(c->d, c->bits);
    uint8_t *packed = malloc(plen ? plen : 1);
    if (!terms || !tj || !packed) {
        free(terms);
        free(tj);
        free(packed);
        return MU_ERR_NOMEM;
    }
    int rc = MU_OK;
    size_t nt = 0;
    sa_self_key(terms[nt].key, c->session, c->b, c->self);
    terms[nt++].sign = 1;
    for (uint32_t j = 0; j < c->nn; j++)
        if (c->nb_has[j])
            tj[nt++] = j;
#pragma omp parallel for schedule(dynamic, 4) num_threads(th) if (th > 1)
    for (long i = 1; i < (long)nt; i++) { /* sign 0 marks an invalid key */
        uint32_t j = tj[i];
        terms[i].sign =
            sa_pair_key(terms[i].key, c->session, c->s_sk, c->nb_spk[j], c->self, c->nb[j]) ? 0
            : c->self < c->nb[j]                                                            ? 1
                                                                                            : -1;
    }
    for (size_t i = 1; i < nt; i++)
        if (terms[i].sign == 0) {
            rc = client_abort(c, mu_diag_set(diag, MU_ERR_CRYPTO,
                                             "secure_agg: org %u's mask key is invalid",
                                             c->nb[tj[i]]));
            goto out;
        }
    /* y = x + PRG(b) + sum of pair masks, in place over the input, then packed */
    sa_prg_apply(c->input, c->d, terms, nt, c->threads);
    sa_pack(packed, plen, c->input, c->d, c->bits);
    sodium_memzero(c->input, (size_t)c->d * sizeof *c->input);
    free(c->input); /* the vector is only held between set_input and the upload */
    c->input = NULL;
    c->has_input = 0;
    /* the key pairs' secrets and b are not needed after the upload: only the shares are */
    sodium_memzero(c->nb_rkey, (size_t)c->nn * 32);
    sodium_memzero(c->c_sk, sizeof c->c_sk);
    sodium_memzero(c->s_sk, sizeof c->s_sk);
    sodium_memzero(c->b, sizeof c->b);
    r.bits = c->bits;
    r.d = c->d;
    r.packed = packed;
    rc = sa_outbox_push_msg(out, SA_TO_SERVER, &r);
    if (rc == MU_OK)
        c->stage = SA_STAGE_CONSISTENCY;
    else
        client_abort(c, rc); /* the input and c_sk are gone: no retry */
out:
    sodium_memzero(terms, (live + 1) * sizeof *terms);
    free(terms);
    free(tj);
    free(packed);
    return rc;
}

/* ---- stage 4: SURVIVORS -> CONSIST_SIG ---- */

static int handle_survivors(sa_client *c, const sa_msg *m, sa_outbox *out, mu_diag *diag)
{
    if (sa_ids_find(m->ids, m->n_ids, c->self) < 0)
        return client_abort(
            c, mu_diag_set(diag, MU_ERR_PROTOCOL, "secure_agg: survivor set without me"));
    if (m->n_ids < c->min_surv)
        return client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: %zu survivors, fewer than the %u the "
                                           "threshold t=%u, the dropout assumption and this "
                                           "org's own minimum allow",
                                           m->n_ids, c->min_surv, c->t));
    uint32_t in_sum = 0;
    for (uint32_t j = 0; j < c->nn; j++)
        in_sum += c->nb_has[j] && sa_ids_find(m->ids, m->n_ids, c->nb[j]) >= 0;
    if (c->k_eff - in_sum > c->max_drop)
        return client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: only %u of my %u neighbours are survivors; "
                                           "the dropout assumption allows losing %u",
                                           in_sum, c->k_eff, c->max_drop));
    /* a neighbour counted as a survivor must have shared with me (else its mask with me
     * could not cancel) */
    for (uint32_t j = 0; j < c->nn; j++)
        if (!c->nb_has[j] && sa_ids_find(m->ids, m->n_ids, c->nb[j]) >= 0)
            return client_abort(c, mu_diag_set(diag, MU_ERR_PROTOCOL,
                                               "secure_agg: survivor %u never shared with me",
                                               c->nb[j]));
    c->surv = malloc((m->n_ids ? m->n_ids : 1) * sizeof *c->surv);
    if (!c->surv)
        return MU_ERR_NOMEM;
    memcpy(c->surv, m->ids, m->n_ids * sizeof *c->surv);
    c->n_surv = m->n_ids;
    sa_msg r;
    header(c, &r, SA_MSG_CONSIST_SIG);
    uint8_t dg[SA_HASH_BYTES];
    sa_survivors_digest(dg, c->session, c->surv, c->n_surv);
    crypto_sign_detached(r.sig, NULL, dg, sizeof dg, c->sign_sk);
    int rc = sa_outbox_push_msg(out, SA_TO_SERVER, &r);
    if (rc)
        return client_abort(c, rc);
    c->stage = SA_STAGE_UNMASK;
    return MU_OK;
}

/* ---- stage 5: UNMASK_REQ -> UNMASK ---- */

static int handle_unmask_req(sa_client *c, const sa_msg *m, sa_outbox *out, mu_diag *diag)
{
    if (m->n_ids != c->n_surv ||
        (c->n_surv && memcmp(m->ids, c->surv, c->n_surv * sizeof *c->surv) != 0))
        return client_abort(c, mu_diag_set(diag, MU_ERR_PROTOCOL,
                                           "secure_agg: unmask request names another survivor "
                                           "set than the one I signed"));
    /* Consistency: every signature from a neighbour (or me) must be on my set. */
    uint8_t dg[SA_HASH_BYTES];
    sa_survivors_digest(dg, c->session, c->surv, c->n_surv);
    /* who[i]: the cohort index of signer i if it is me or a neighbour, else -1 (not checked) */
    long *who = malloc((m->n_sigs ? m->n_sigs : 1) * sizeof *who);
    if (!who)
        return MU_ERR_NOMEM;
    for (size_t i = 0; i < m->n_sigs; i++) {
        uint32_t id = m->sigs[i].id;
        who[i] = -1;
        if (id != c->self && nb_index(c, id) < 0)
            continue;
        long ci = sa_ids_find(c->ids, c->n, id);
        if (ci < 0 || sa_ids_find(c->surv, c->n_surv, id) < 0) {
            free(who);
            return client_abort(c, mu_diag_set(diag, MU_ERR_PROTOCOL,
                                               "secure_agg: signature from org %u, not a survivor",
                                               id));
        }
        who[i] = ci;
    }
    int th = nthreads(c);
#pragma omp parallel for schedule(dynamic, 4) num_threads(th) if (th > 1)
    for (long i = 0; i < (long)m->n_sigs; i++) /* -2: the signature fails */
        if (who[i] >= 0 &&
            crypto_sign_verify_detached(m->sigs[i].sig, dg, sizeof dg, c->pks[who[i]]) != 0)
            who[i] = -2;
    uint32_t valid = 0;
    for (size_t i = 0; i < m->n_sigs; i++) {
        if (who[i] == -2) {
            uint32_t id = m->sigs[i].id;
            free(who);
            return client_abort(c, mu_diag_set(diag, MU_ERR_CRYPTO,
                                               "secure_agg: org %u signed a different survivor "
                                               "set (or the signature was altered)",
                                               id));
        }
        valid += who[i] >= 0;
    }
    free(who);
    if (valid < c->t)
        return client_abort(c, mu_diag_set(diag, MU_ERR_ABORT,
                                           "secure_agg: only %u of my neighbours confirmed the "
                                           "survivor set; t=%u needed",
                                           valid, c->t));
    sa_msg r;
    header(c, &r, SA_MSG_UNMASK);
    r.reveals = calloc(c->nn + 1, sizeof *r.reveals);
    if (!r.reveals)
        return MU_ERR_NOMEM;
    /* reveals in ascending owner order: my neighbours with shares, and me */
    size_t nr = 0;
    int me_done = 0;
    for (uint32_t j = 0; j <= c->nn; j++) {
        if (!me_done && (j == c->nn || c->self < c->nb[j])) {
            r.reveals[nr].owner = c->self;
            r.reveals[nr].kind = SA_REVEAL_B;
            memcpy(r.reveals[nr].share, c->own_share, SA_SHARE_BYTES);
            nr++;
            me_done = 1;
        }
        if (j == c->nn || !c->nb_has[j])
            continue;
        int alive = sa_ids_find(c->surv, c->n_surv, c->nb[j]) >= 0;
        uint8_t kind = alive ? SA_REVEAL_B : SA_REVEAL_S;
        if (c->nb_revealed[j] && c->nb_revealed[j] != kind) {
            sodium_memzero(r.reveals, (c->nn + 1) * sizeof *r.reveals);
            free(r.reveals);
            return client_abort(c, mu_diag_set(diag, MU_ERR_PROTOCOL,
                                               "secure_agg: refusing both shares of org %u",
                                               c->nb[j]));
        }
        c->nb_revealed[j] = kind;
        r.reveals[nr].owner = c->nb[j];
        r.reveals[nr].kind = kind;
        memcpy(r.reveals[nr].share, c->nb_share[j] + (alive ? 0 : SA_SHARE_BYTES), SA_SHARE_BYTES);
        nr++;
    }
    r.n_reveals = nr;
    int rc = sa_outbox_push_msg(out, SA_TO_SERVER, &r);
    sodium_memzero(r.reveals, (c->nn + 1) * sizeof *r.reveals);
    free(r.reveals);
    if (rc)
        return client_abort(c, rc); /* reveals were recorded: never answer again */
    if (rc == MU_OK) {
        c->stage = SA_STAGE_DONE;
        wipe_secrets(c);
    }
    return rc;
}

int sa_client_handle(sa_client *c, const uint8_t *bytes, size_t len, sa_outbox *out, mu_diag *diag)
{
    sa_msg m;
    int rc = sa_msg_decode(&m, bytes, len, diag);
    if (rc)
        return rc;
    static const sa_msg_type want[] = {
        [SA_STAGE_SHARE] = SA_MSG_KEYS,
        [SA_STAGE_MASKED] = SA_MSG_DELIVERY,
        [SA_STAGE_CONSISTENCY] = SA_MSG_SURVIVORS,
        [SA_STAGE_UNMASK] = SA_MSG_UNMASK_REQ,
    };
    int broadcast =
        m.type == SA_MSG_KEYS || m.type == SA_MSG_SURVIVORS || m.type == SA_MSG_UNMASK_REQ;
    const uint8_t *binding = m.type == SA_MSG_KEYS ? c->cfg_hash : c->session;
    if (m.type == SA_MSG_ADVERTISE || m.type == SA_MSG_SHARES || m.type == SA_MSG_MASKED ||
        m.type == SA_MSG_CONSIST_SIG || m.type == SA_MSG_UNMASK) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "secure_agg: a client-to-server message");
    } else if (c->stage == SA_STAGE_DONE && m.type == SA_MSG_UNMASK_REQ) {
        rc = mu_diag_set(diag, MU_ERR_PROTOCOL,
                         "secure_agg: a second unmask request (could ask for both shares of an "
                         "org): refused");
    } else if (c->stage == SA_STAGE_ADVERTISE || c->stage == SA_STAGE_DONE ||
               c->stage == SA_STAGE_ABORTED || want[c->stage] != m.type) {
        rc = mu_diag_set(diag, MU_ERR_STATE, "secure_agg: message type %d not expected now",
                         (int)m.type);
    } else if (m.round_id != c->round_id || sodium_memcmp(m.binding, binding, SA_HASH_BYTES) ||
               (m.org != c->self && !(broadcast && m.org == SA_TO_ALL))) {
        rc = mu_diag_set(diag, MU_ERR_FORMAT,
                         "secure_agg: message from another round, session or recipient");
    } else {
        sa_stage at = c->stage;
        double t0 = sa_clock_now(&c->clock);
        switch (m.type) {
        case SA_MSG_KEYS:
            rc = handle_keys(c, &m, out, diag);
            break;
        case SA_MSG_DELIVERY:
            rc = handle_delivery(c, &m, out, diag);
            break;
        case SA_MSG_SURVIVORS:
            rc = handle_survivors(c, &m, out, diag);
            break;
        default:
            rc = handle_unmask_req(c, &m, out, diag);
            break;
        }
        c->times[at] += sa_clock_now(&c->clock) - t0;
    }
    sa_msg_deinit(&m);
    return rc;
}
