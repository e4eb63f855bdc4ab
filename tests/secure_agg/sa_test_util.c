/* sa_test_util.c - the in-process round driver (see sa_test_util.h). */
#include "sa_test_util.h"
#include "sa_internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int sa_world_index(const sa_world *w, uint32_t id)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->ids[i] == id)
            return (int)i;
    return -1;
}

int sa_world_init(sa_world *w, uint32_t n, uint32_t d, uint32_t bits, uint32_t k, uint32_t t,
                  uint64_t seed, mu_diag *diag)
{
    memset(w, 0, sizeof *w);
    if (sa_init())
        return MU_ERR_CRYPTO;
    w->n = n;
    w->d = d;
    w->bits = bits;
    w->k = k;
    w->t = t;
    w->ids = calloc(n, sizeof *w->ids);
    w->pks = calloc(n, 32);
    w->sks = calloc(n, 64);
    w->clients = calloc(n, sizeof *w->clients);
    w->rngs = calloc(n, sizeof *w->rngs);
    w->inputs = calloc(n, sizeof *w->inputs);
    w->drop_at = calloc(n, sizeof *w->drop_at);
    w->late_at = calloc(n, sizeof *w->late_at);
    w->client_rc = calloc(n, sizeof *w->client_rc);
    w->held_from = calloc(n + 1, sizeof *w->held_from);
    w->client_threads = 1;
    w->server_threads = 1;
    sa_outbox_init(&w->held);
    uint8_t s[32] = {0};
    memcpy(s, &seed, sizeof seed);
    sa_rng_seeded master;
    sa_rng_seeded_init(&master, s);
    sa_rng mr = sa_rng_from_seeded(&master);
    uint32_t mask = bits == 32 ? 0xFFFFFFFFu : (1u << bits) - 1;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t ks[32];
        w->ids[i] = 1000 + 7 * i;
        mr.fill(mr.ctx, ks, sizeof ks);
        crypto_sign_seed_keypair(w->pks[i], w->sks[i], ks);
        mr.fill(mr.ctx, ks, sizeof ks);
        sa_rng_seeded_init(&w->rngs[i], ks);
        w->inputs[i] = malloc((d ? d : 1) * sizeof(uint32_t));
        if (d)
            mr.fill(mr.ctx, w->inputs[i], d * sizeof(uint32_t));
        for (uint32_t j = 0; j < d; j++)
            w->inputs[i][j] &= mask;
    }
    w->cfg.round_id = 42;
    w->cfg.n = n;
    w->cfg.org_ids = w->ids;
    w->cfg.sign_pks = (const uint8_t(*)[32])w->pks;
    w->cfg.d = d;
    w->cfg.bits = bits;
    w->cfg.k = k;
    w->cfg.t = t;
    w->server = sa_server_new(&w->cfg, diag);
    if (!w->server)
        return MU_ERR_INVALID;
    sa_server_set_threads(w->server, w->server_threads);
    return MU_OK;
}

void sa_world_free(sa_world *w)
{
    for (uint32_t i = 0; i < w->n; i++) {
        sa_client_free(w->clients ? w->clients[i] : NULL);
        if (w->inputs)
            free(w->inputs[i]);
    }
    sa_server_free(w->server);
    sa_outbox_deinit(&w->held);
    free(w->ids);
    free(w->pks);
    free(w->sks);
    free(w->clients);
    free(w->rngs);
    free(w->inputs);
    free(w->drop_at);
    free(w->late_at);
    free(w->client_rc);
    free(w->held_from);
    memset(w, 0, sizeof *w);
}

int sa_world_make_clients(sa_world *w, mu_diag *diag)
{
    for (uint32_t i = 0; i < w->n; i++) {
        sa_rng r = sa_rng_from_seeded(&w->rngs[i]);
        w->clients[i] = sa_client_new(&w->cfg, w->ids[i], w->sks[i], &r, diag);
        if (!w->clients[i])
            return MU_ERR_INVALID;
        sa_client_set_threads(w->clients[i], w->client_threads);
        int rc = sa_client_set_input(w->clients[i], w->inputs[i], w->d);
        if (rc)
            return rc;
    }
    return MU_OK;
}

static int stage_of_reply(sa_msg_type t)
{
    switch (t) {
    case SA_MSG_ADVERTISE:
        return 1;
    case SA_MSG_SHARES:
        return 2;
    case SA_MSG_MASKED:
        return 3;
    case SA_MSG_CONSIST_SIG:
        return 4;
    default:
        return 5;
    }
}

/* Delivers client i's replies to the server unless it drops or is late at that stage. */
static void to_server(sa_world *w, uint32_t i, sa_outbox *ob)
{
    for (size_t e = 0; e < ob->count; e++) {
        sa_msg_type type;
        uint32_t org;
        if (sa_msg_peek(ob->items[e].bytes, ob->items[e].len, &type, &org))
            continue;
        int st = stage_of_reply(type);
        if (w->late_at[i] == st) {
            w->held_from[w->held.count] = w->ids[i];
            sa_outbox_push(&w->held, SA_TO_SERVER, ob->items[e].bytes, ob->items[e].len);
            ob->items[e].bytes = NULL;
            continue;
        }
        if (w->drop_at[i] && w->drop_at[i] <= st)
            continue;
        if (w->upstream)
            w->upstream(w, w->ids[i], type, &ob->items[e].bytes, &ob->items[e].len);
        if (w->spy)
            w->spy(w, w->ids[i], ob->items[e].bytes, ob->items[e].len);
        if (sa_server_handle(w->server, w->ids[i], ob->items[e].bytes, ob->items[e].len, NULL,
                             NULL))
            w->server_rejects++;
    }
    sa_outbox_clear(ob);
}

int sa_world_start(sa_world *w)
{
    sa_outbox ob;
    sa_outbox_init(&ob);
    for (uint32_t i = 0; i < w->n; i++) {
        int rc = sa_client_start(w->clients[i], &ob, NULL);
        if (rc) {
            sa_outbox_deinit(&ob);
            return rc;
        }
        to_server(w, i, &ob);
    }
    sa_outbox_deinit(&ob);
    return MU_OK;
}

static void deliver(sa_world *w, uint32_t to, sa_msg_type type, const uint8_t *bytes, size_t len,
                    sa_outbox *reply)
{
    int i = sa_world_index(w, to);
    if (i < 0)
        return;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, bytes, len);
    size_t clen = len;
    if (w->tamper && !w->tamper(w, to, type, &copy, &clen)) {
        free(copy);
        return;
    }
    int rc = sa_client_handle(w->clients[i], copy, clen, reply, NULL);
    free(copy);
    if (rc && !w->client_rc[i])
        w->client_rc[i] = rc;
    to_server(w, (uint32_t)i, reply);
}

typedef struct {
    sa_world *w;
    const uint32_t *to; /* (count) recipients */
    const uint8_t *bytes;
    size_t len, count;
    sa_outbox *replies; /* (count) */
    int stride, first;
} par_job;

static void *par_worker(void *arg)
{
    par_job *j = arg;
    for (size_t r = (size_t)j->first; r < j->count; r += (size_t)j->stride) {
        int i = sa_world_index(j->w, j->to[r]);
        int rc = sa_client_handle(j->w->clients[i], j->bytes, j->len, &j->replies[r], NULL);
        if (rc && !j->w->client_rc[i])
            j->w->client_rc[i] = rc; /* each i is written by one thread only */
    }
    return NULL;
}

/* A broadcast handled by all recipients concurrently (clients share no state). */
static void deliver_parallel(sa_world *w, const uint32_t *to, size_t count, const uint8_t *bytes,
                             size_t len)
{
    sa_outbox *replies = calloc(count ? count : 1, sizeof *replies);
    pthread_t th[16];
    par_job jobs[16];
    int nt = w->parallel > 16 ? 16 : w->parallel;
    for (int t = 0; t < nt; t++) {
        jobs[t] = (par_job){w, to, bytes, len, count, replies, nt, t};
        pthread_create(&th[t], NULL, par_worker, &jobs[t]);
    }
    for (int t = 0; t < nt; t++)
        pthread_join(th[t], NULL);
    for (size_t r = 0; r < count; r++) {
        to_server(w, (uint32_t)sa_world_index(w, to[r]), &replies[r]);
        sa_outbox_deinit(&replies[r]);
    }
    free(replies);
}

int sa_world_step(sa_world *w, sa_stage stage, mu_diag *diag)
{
    sa_outbox ob, reply;
    sa_outbox_init(&ob);
    sa_outbox_init(&reply);
    int rc = sa_server_close_stage(w->server, stage, &ob, diag);
    /* late messages of the stage just closed arrive now */
    for (size_t e = 0; e < w->held.count; e++)
        w->late_rc = sa_server_handle(w->server, w->held_from[e], w->held.items[e].bytes,
                                      w->held.items[e].len, NULL, NULL);
    sa_outbox_clear(&w->held);
    uint32_t *rcpt = malloc((w->n + 1) * sizeof *rcpt);
    size_t nr = rcpt ? sa_server_recipients(w->server, rcpt, w->n) : 0;
    for (size_t e = 0; e < ob.count && rcpt; e++) {
        sa_msg_type type;
        uint32_t org;
        if (sa_msg_peek(ob.items[e].bytes, ob.items[e].len, &type, &org))
            continue;
        if (ob.items[e].to == SA_TO_ALL && w->parallel > 1 && !w->tamper)
            deliver_parallel(w, rcpt, nr, ob.items[e].bytes, ob.items[e].len);
        else if (ob.items[e].to == SA_TO_ALL)
            for (size_t r = 0; r < nr; r++)
                deliver(w, rcpt[r], type, ob.items[e].bytes, ob.items[e].len, &reply);
        else
            deliver(w, ob.items[e].to, type, ob.items[e].bytes, ob.items[e].len, &reply);
    }
    free(rcpt);
    sa_outbox_deinit(&ob);
    sa_outbox_deinit(&reply);
    return rc;
}

int sa_world_run(sa_world *w, mu_diag *diag)
{
    int rc = sa_world_make_clients(w, diag);
    if (rc)
        return rc;
    if ((rc = sa_world_start(w)))
        return rc;
    for (int s = SA_STAGE_ADVERTISE; s <= SA_STAGE_UNMASK; s++)
        if ((rc = sa_world_step(w, (sa_stage)s, diag)))
            return rc;
    return MU_OK;
}

void sa_world_expected(const sa_world *w, uint32_t *out)
{
    uint32_t mask = w->bits == 32 ? 0xFFFFFFFFu : (1u << w->bits) - 1;
    uint32_t *surv = malloc((w->n + 1) * sizeof *surv);
    size_t ns = sa_server_survivors(w->server, surv, w->n);
    memset(out, 0, (size_t)w->d * sizeof *out);
    for (size_t s = 0; s < ns && s < w->n; s++) {
        int i = sa_world_index(w, surv[s]);
        for (uint32_t j = 0; j < w->d; j++)
            out[j] += w->inputs[i][j];
    }
    for (uint32_t j = 0; j < w->d; j++)
        out[j] &= mask;
    free(surv);
}
