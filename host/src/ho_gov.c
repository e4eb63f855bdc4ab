/* ho_gov.c - the charter enforced by the coordinator (ho_gov) and by each org (ho_witness). */
#include "ho_gov.h"

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gv_store.h"
#include "ho_coord.h"
#include "mu_file.h"
#include "mu_log.h"
#include "wi_blob.h"
#include "wi_bytes.h"
#include "wi_push.h"

struct ho_gov {
    gv_signed *chain;
    size_t n_chain;
    uint8_t sk[GV_SK_BYTES];
    char log_path[4096], dir[4096], pending_path[4096];
    gv_log *log;
    uint8_t *enc; /* gv_log_encode of log, or NULL when stale */
    size_t enc_len;
    unsigned skip;
    char (*admitted)[GV_NAME_MAX]; /* members with an admission entry */
    size_t n_admitted;
    uint64_t task_round; /* the round whose TRAIN/EVAL recipients `tasked` holds */
    char tasked[GV_COHORT_MAX][GV_NAME_MAX];
    size_t n_tasked;
    float *prev; /* (dim) the global the round in flight started from */
    size_t dim;
    uint64_t offer_round; /* the round the release signatures in `offers` are for */
    gv_sig offers[GV_MEMBERS_MAX];
    uint32_t n_offers;

    uint8_t config_hash[GV_HASH_BYTES];     /* our config's: a charter adopted later must name it */
    char left[GV_MEMBERS_MAX][GV_NAME_MAX]; /* members whose leave notice was accepted */
    size_t n_left;
    gv_leave pending[GV_MEMBERS_MAX]; /* accepted while a round ran: logged after its entry */
    size_t n_pending;
};

static int in_list(char (*list)[GV_NAME_MAX], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return 1;
    return 0;
}

const gv_charter *ho_gov_charter(const ho_gov *g)
{
    return &g->chain[g->n_chain - 1].charter;
}

static int is_admitted(ho_gov *g, const char *name)
{
    return in_list(g->admitted, g->n_admitted, name);
}

static int note_admitted(ho_gov *g, const char *name)
{
    if (is_admitted(g, name))
        return MU_OK;
    void *p = realloc(g->admitted, (g->n_admitted + 1) * sizeof *g->admitted);
    if (!p)
        return MU_ERR_NOMEM;
    g->admitted = p;
    snprintf(g->admitted[g->n_admitted++], GV_NAME_MAX, "%s", name);
    return MU_OK;
}

/* Appends e (signed with our key), then writes the log's next version atomically. On a
 * failed save the entry is taken back out, so memory and file agree. */
static int append(ho_gov *g, gv_entry *e, uint64_t now, mu_diag *d)
{
    e->time = now;
    int rc = gv_log_append(g->log, e, g->sk, d);
    if (rc)
        return rc;
    free(g->enc);
    g->enc = NULL;
    rc = gv_log_save(g->log_path, g->log, d);
    if (rc == MU_OK)
        return MU_OK;
    gv_log *back = gv_log_new(); /* rebuild without the last entry */
    if (!back)
        return rc;
    for (size_t i = 0; i + 1 < gv_log_len(g->log); i++) {
        const uint8_t *b;
        size_t n;
        gv_log_raw(g->log, i, &b, &n);
        if (gv_log_append_raw(back, b, n, NULL) != MU_OK) {
            gv_log_free(back);
            return rc;
        }
    }
    gv_log_free(g->log);
    g->log = back;
    return rc;
}

/* What the log's last ROUND entry of a round names (have = 0: no such entry; has_state = 0:
 * a format-1 entry, without state hash). */
typedef struct {
    uint8_t global[GV_HASH_BYTES], state[GV_HASH_BYTES];
    int have, has_state;
} logged_round;

/* Replays an existing, verified log: which charter version it adopted last, who is admitted,
 * which round it logged last, and what its last ROUND entry for round `want` names. */
static int replay(ho_gov *g, uint64_t *version, uint64_t *last_round, uint64_t want,
                  logged_round *lr, gv_entry *e)
{
    *version = 0;
    *last_round = 0;
    memset(lr, 0, sizeof *lr);
    for (size_t i = 0; i < gv_log_len(g->log); i++) {
        gv_log_entry(g->log, i, e);
        if (e->kind == GV_ENTRY_CHARTER)
            *version = e->charter_version;
        else if (e->kind == GV_ENTRY_ADMISSION && note_admitted(g, e->member))
            return MU_ERR_NOMEM;
        else if (e->kind == GV_ENTRY_LEAVE && !in_list(g->left, g->n_left, e->member) &&
                 g->n_left < GV_MEMBERS_MAX)
            snprintf(g->left[g->n_left++], GV_NAME_MAX, "%s", e->member);
        else if (e->kind == GV_ENTRY_ROUND || e->kind == GV_ENTRY_RESTART)
            *last_round = e->round;
        if (e->kind == GV_ENTRY_ROUND && e->round == want) {
            memcpy(lr->global, e->global_hash, GV_HASH_BYTES);
            memcpy(lr->state, e->state_hash, GV_HASH_BYTES);
            lr->have = 1;
            lr->has_state = e->format >= GV_ENTRY_FORMAT;
        }
    }
    return MU_OK;
}

/* MU_OK when a resumed checkpoint's part hashes to what the log's entry for the resumed round
 * names; else the refusal naming both hashes. state: the part is the whole state (else the
 * global). */
static int check_resumed(const ho_gov *g, uint64_t round, int state,
                         const uint8_t have[GV_HASH_BYTES], const uint8_t want[GV_HASH_BYTES],
                         mu_diag *d)
{
    if (sodium_memcmp(have, want, GV_HASH_BYTES) == 0)
        return MU_OK;
    char hh[2 * GV_HASH_BYTES + 1], wh[2 * GV_HASH_BYTES + 1];
    wi_hex_encode(hh, sizeof hh, have, GV_HASH_BYTES);
    wi_hex_encode(wh, sizeof wh, want, GV_HASH_BYTES);
    return mu_diag_set(d, MU_ERR_INVALID,
                       "%s: the checkpoint's %s after round %llu%s hashes to %.16s..., the audit "
                       "log's round %llu entry names %s%.16s...: the checkpoint is not the state "
                       "the log records%s",
                       g->log_path, state ? "state" : "global", (unsigned long long)round,
                       state ? " (optimizer state, round counter, metrics, orgs)" : "", hh,
                       (unsigned long long)round, state ? "state " : "", wh,
                       state ? "" : " (edited, or from another run)");
}

/* A resumed coordinator's starting global (g->prev, from the checkpoint) must be the one the
 * log's entry for the resumed round names: a checkpoint handed over by a departing (or
 * hostile) coordinator cannot carry another adapter than the one the members saw logged. */
static int check_resumed_global(const ho_gov *g, uint64_t round, const uint8_t want[GV_HASH_BYTES],
                                mu_diag *d)
{
    size_t len = wi_blob_len(g->dim);
    uint8_t *b = malloc(len ? len : 1), have[GV_HASH_BYTES];
    if (!b)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    wi_blob_encode(b, len, g->prev, g->dim);
    crypto_hash_sha256(have, b, len);
    free(b);
    return check_resumed(g, round, 0, have, want, d);
}

static int open_log(ho_gov *g, const ho_gov_opts *o, gv_entry *e, mu_diag *d)
{
    int rc = gv_log_load(g->log_path, &g->log, d);
    int fresh = rc == MU_ERR_NOTFOUND;
    if (fresh) {
        if (!(g->log = gv_log_new()))
            return MU_ERR_NOMEM;
    } else if (rc) {
        return rc;
    } else {
        size_t bad = 0;
        mu_diag why = {{0}};
        if ((rc = gv_log_verify(g->log, g->chain, g->n_chain, &bad, &why)))
            return mu_diag_set(d, rc, "%s does not verify against %s: %s", g->log_path,
                               o->chain_path, why.msg);
    }
    uint64_t version = 0, last_round = 0;
    logged_round lr;
    if ((rc = replay(g, &version, &last_round, o->resumed ? o->resumed_round : 0, &lr, e)))
        return rc;
    if (o->resumed && lr.have && (rc = check_resumed_global(g, o->resumed_round, lr.global, d)))
        return rc;
    if (o->resumed && lr.have && lr.has_state && o->resumed_state &&
        (rc = check_resumed(g, o->resumed_round, 1, o->resumed_state, lr.state, d)))
        return rc;
    for (uint64_t v = version; v < g->n_chain; v++) {
        memset(e, 0, sizeof *e);
        e->kind = GV_ENTRY_CHARTER;
        e->charter_version = v + 1;
        if ((rc = gv_charter_hash(&g->chain[v].charter, e->charter_hash, d)) ||
            (rc = append(g, e, o->now, d)))
            return rc;
    }
    if (fresh)
        return MU_OK;
    memset(e, 0, sizeof *e);
    e->kind = GV_ENTRY_RESTART;
    e->round = o->resumed ? o->resumed_round : 0;
    if (e->round > last_round)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "%s: the checkpoint is after round %llu but the audit log ends at "
                           "round %llu: they are not from the same federation run",
                           g->log_path, (unsigned long long)e->round,
                           (unsigned long long)last_round);
    e->instance = o->instance;
    return append(g, e, o->now, d);
}

static int check_identity(ho_gov *g, const ho_gov_opts *o, mu_diag *d)
{
    const gv_charter *c = ho_gov_charter(g);
    char want[2 * GV_HASH_BYTES + 1], have[2 * GV_HASH_BYTES + 1];
    if (sodium_memcmp(g->sk + 32, c->coord_pk, GV_PK_BYTES))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "%s is not the coordinator key that charter version %llu names",
                           o->key_path, (unsigned long long)c->version);
    if (memcmp(o->config_hash, c->training_hash, GV_HASH_BYTES) == 0)
        return MU_OK;
    wi_hex_encode(want, sizeof want, c->training_hash, GV_HASH_BYTES);
    wi_hex_encode(have, sizeof have, o->config_hash, GV_HASH_BYTES);
    if (o->skip & HO_GOV_SKIP_CONFIG)
        return MU_OK; /* the test hook: a coordinator that does not check */
    return mu_diag_set(d, MU_ERR_INVALID,
                       "the config hashes to %.16s..., charter version %llu allows only training "
                       "config %.16s...: a config change needs the members' change_config "
                       "quorum (mutual charter propose)",
                       have, (unsigned long long)c->version, want);
}

/* The notices accepted but not logged yet, saved (fsynced) as DIR/HO_GOV_PENDING_FILE: each
 * a u16 big-endian length and the gv_leave_encode bytes; no file when there are none. */
static int save_pending(ho_gov *g, mu_diag *d)
{
    if (g->n_pending == 0)
        return mu_file_remove(g->pending_path, d);
    uint8_t *buf = malloc(g->n_pending * (2 + GV_LEAVE_MAX_BYTES)), *e = NULL;
    size_t len = 0, n = 0;
    int rc = buf ? MU_OK : mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == MU_OK && i < g->n_pending; i++) {
        if ((rc = gv_leave_encode(&g->pending[i], &e, &n, d)) != MU_OK)
            break;
        buf[len] = (uint8_t)(n >> 8);
        buf[len + 1] = (uint8_t)n;
        memcpy(buf + len + 2, e, n);
        len += 2 + n;
        free(e);
    }
    if (rc == MU_OK)
        rc = mu_write_file_atomic(g->pending_path, buf, len, d);
    free(buf);
    return rc;
}

/* Record `off` of the kept file b[0..len): MU_OK with *l and *next (the record after it), or
 * an error in why; *next is 0 when the framing itself is broken (nothing after it can be
 * found). A notice is taken only as ho_gov_leave would take it: it checks (this federation,
 * a member of the head charter, signed by its roster key) and names an admitted member. */
static int pending_record(ho_gov *g, const uint8_t *b, size_t len, size_t off,
                          const uint8_t log_id[GV_HASH_BYTES], gv_leave *l, size_t *next,
                          mu_diag *why)
{
    size_t n = len - off < 2 ? 0 : (size_t)b[off] << 8 | b[off + 1];
    *next = 0;
    if (len - off < 2 || n > len - off - 2)
        return mu_diag_set(why, MU_ERR_FORMAT, "truncated (the file ends at byte %zu)", len);
    *next = off + 2 + n;
    int rc = gv_leave_decode(l, b + off + 2, n, why);
    if (rc == MU_OK)
        rc = gv_leave_check(l, log_id, ho_gov_charter(g), why);
    if (rc == MU_OK && !is_admitted(g, l->name))
        rc = mu_diag_set(why, MU_ERR_PROTOCOL, "'%s' was never admitted in this log", l->name);
    if (rc == MU_OK && g->n_pending >= GV_MEMBERS_MAX)
        rc = mu_diag_set(why, MU_ERR_FORMAT, "more notices than a charter has members");
    return rc;
}

/* What does not check is not applied, and not thrown away: DIR/HO_GOV_PENDING_FILE is kept as
 * DIR/HO_GOV_PENDING_FILE.bad-NOW (its bytes b[0..len) written, or, when b is NULL, the file
 * renamed) before the caller rewrites it with the notices that check; `what` says why. */
static int pending_set_aside(ho_gov *g, const char *b, size_t len, const char *what, uint64_t now,
                             mu_diag *d)
{
    char bad[sizeof g->pending_path + 32];
    snprintf(bad, sizeof bad, "%s.bad-%llu", g->pending_path, (unsigned long long)now);
    int rc = b ? mu_write_file_atomic(bad, b, len, d) : mu_file_rename(g->pending_path, bad, d);
    if (rc)
        return rc;
    mu_warn("governance: %s: kept leave notices not applied: %s; the file is kept as %s. A "
            "notice is applied only if it is signed by an admitted member's roster key for this "
            "federation; a member whose notice is lost can send it again (mutual join --leave "
            "NOTICE)",
            g->pending_path, what, bad);
    return MU_OK;
}

/* A restart: the notices a coordinator accepted during a round it did not live to end. Each
 * is checked again (the folder may have come from elsewhere); one whose leave the log holds
 * already (logged, then killed before the file went) is dropped. Logged by the caller. The
 * file is only ever replaced whole (mu_write_file_atomic), so a crash does not damage it;
 * damage (an edit, a copy from another run, a bad disk) does not stop serve: the notices
 * that check are kept, the rest set aside with a warning. A file that cannot be read
 * (I/O) stops serve with the reason. */
static int load_pending(ho_gov *g, uint64_t now, mu_diag *d)
{
    char *b = NULL;
    size_t len = 0, max = GV_MEMBERS_MAX * (2 + GV_LEAVE_MAX_BYTES);
    uint8_t log_id[GV_HASH_BYTES];
    int rc = mu_read_file(g->pending_path, max, &b, &len, d);
    if (rc == MU_ERR_NOTFOUND) {
        d->msg[0] = 0;
        return MU_OK;
    }
    if (rc == MU_ERR_FORMAT) { /* larger than serve ever writes */
        char what[sizeof d->msg];
        snprintf(what, sizeof what, "%s", d->msg);
        d->msg[0] = 0;
        return pending_set_aside(g, NULL, 0, what, now, d);
    }
    if (rc == MU_OK)
        rc = gv_charter_hash(&g->chain[0].charter, log_id, d);
    const uint8_t *p = (const uint8_t *)b;
    size_t n_bad = 0, next = 0, off = 0;
    char what[512] = "the file is empty";
    for (; rc == MU_OK && off < len; off = next) {
        gv_leave l;
        mu_diag why = {{0}};
        if (pending_record(g, p, len, off, log_id, &l, &next, &why)) {
            if (!n_bad++)
                snprintf(what, sizeof what, "the record at byte %zu: %.300s", off, why.msg);
            if (!next)
                break; /* the framing is lost: nothing after off can be read */
            continue;
        }
        if (in_list(g->left, g->n_left, l.name))
            continue; /* its leave entry made it into the log, or it came twice */
        g->pending[g->n_pending++] = l;
        if (g->n_left < GV_MEMBERS_MAX)
            snprintf(g->left[g->n_left++], GV_NAME_MAX, "%s", l.name);
    }
    if (n_bad > 1 || (n_bad && !next)) {
        size_t k = strlen(what);
        snprintf(what + k, sizeof what - k, " (%zu record%s not applied%s)", n_bad,
                 n_bad == 1 ? "" : "s", next ? "" : ", and none after it can be read");
    }
    if (rc == MU_OK && (n_bad || !len) &&
        (rc = pending_set_aside(g, b, len, what, now, d)) == MU_OK)
        rc = save_pending(g, d); /* the notices that check, or no file */
    else if (rc == MU_OK && g->n_pending == 0)
        rc = mu_file_remove(g->pending_path, d);
    free(b);
    return rc;
}

ho_gov *ho_gov_open(const ho_gov_opts *o, mu_diag *d)
{
    ho_gov *g = calloc(1, sizeof *g);
    gv_entry *e = malloc(sizeof *e);
    int rc = g && e ? MU_OK : MU_ERR_NOMEM;
    if (rc == MU_OK) {
        g->skip = o->skip;
        memcpy(g->config_hash, o->config_hash, GV_HASH_BYTES);
        snprintf(g->dir, sizeof g->dir, "%s", o->dir);
        snprintf(g->log_path, sizeof g->log_path, "%s/%s", o->dir, HO_GOV_LOG_FILE);
        snprintf(g->pending_path, sizeof g->pending_path, "%s/%s", o->dir, HO_GOV_PENDING_FILE);
        rc = gv_chain_load(o->chain_path, &g->chain, &g->n_chain, d);
    }
    if (rc == MU_OK)
        rc = ho_mkdirs(o->dir, d);
    if (rc == MU_OK) {
        const float *gl = co_round_global(o->round, &g->dim);
        if (!(g->prev = malloc((g->dim ? g->dim : 1) * sizeof *g->prev)))
            rc = mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
        else
            memcpy(g->prev, gl, g->dim * sizeof *gl);
    }
    size_t bad = 0;
    mu_diag why = {{0}};
    if (rc == MU_OK && (rc = gv_chain_verify(g->chain, g->n_chain, &bad, &why)))
        mu_diag_set(d, rc, "%s: %s", o->chain_path, why.msg);
    if (rc == MU_OK)
        rc = gv_signing_key_load(o->key_path, g->sk, d);
    if (rc == MU_OK)
        rc = check_identity(g, o, d);
    if (rc == MU_OK)
        rc = open_log(g, o, e, d);
    if (rc == MU_OK && (rc = load_pending(g, o->now, d)) == MU_OK) /* no round runs: log them */
        rc = ho_gov_leave_flush(g, o->now, d);
    free(e);
    if (rc == MU_ERR_NOMEM && !d->msg[0])
        mu_diag_set(d, rc, "governance: out of memory");
    if (rc) {
        ho_gov_free(g);
        return NULL;
    }
    return g;
}

void ho_gov_free(ho_gov *g)
{
    if (!g)
        return;
    sodium_memzero(g->sk, sizeof g->sk);
    free(g->chain);
    gv_log_free(g->log);
    free(g->enc);
    free(g->admitted);
    free(g->prev);
    free(g);
}

int ho_gov_admit(ho_gov *g, const char *name, const uint8_t pk[GV_PK_BYTES], uint64_t now,
                 mu_diag *d)
{
    const gv_charter *c = ho_gov_charter(g);
    const gv_member *m = gv_charter_member(c, name);
    if (g->skip & HO_GOV_SKIP_ADMIT)
        return MU_OK; /* the test hook: registers anyone, logs nothing */
    if (!m)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "'%s' is not on the roster of charter version %llu: admitting it "
                           "needs a charter change signed by the admit quorum",
                           name, (unsigned long long)c->version);
    if (sodium_memcmp(m->sign_pk, pk, GV_PK_BYTES))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "'%s' joined with a signing key that charter version %llu does not "
                           "give it",
                           name, (unsigned long long)c->version);
    if (is_admitted(g, name))
        return MU_OK;
    gv_entry *e = calloc(1, sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    e->kind = GV_ENTRY_ADMISSION;
    snprintf(e->member, sizeof e->member, "%s", name);
    memcpy(e->member_pk, pk, GV_PK_BYTES);
    int rc = append(g, e, now, d);
    free(e);
    return rc ? rc : note_admitted(g, name);
}

void ho_gov_note_task(ho_gov *g, const co_task *t, const char *name)
{
    if (t->kind != CO_TASK_TRAIN && t->kind != CO_TASK_EVAL)
        return;
    if (t->cfg.round != g->task_round) {
        g->task_round = t->cfg.round;
        g->n_tasked = 0;
    }
    if (in_list(g->tasked, g->n_tasked, name) || g->n_tasked >= GV_COHORT_MAX)
        return;
    snprintf(g->tasked[g->n_tasked++], GV_NAME_MAX, "%s", name);
}

/* The aggregate and global hashes of the round that just ended; keeps the new global. */
static int round_hashes(ho_gov *g, const co_round *r, gv_entry *e, mu_diag *d)
{
    size_t dim = 0;
    const float *now = co_round_global(r, &dim);
    size_t len = wi_blob_len(dim);
    uint8_t *b = malloc(len ? len : 1);
    float *v = malloc((dim ? dim : 1) * sizeof *v);
    if (!b || !v || dim != g->dim) {
        free(b);
        free(v);
        return mu_diag_set(d, dim != g->dim ? MU_ERR_INVALID : MU_ERR_NOMEM,
                           "audit log: the global changed shape");
    }
    for (size_t i = 0; i < dim; i++)
        v[i] = now[i] - g->prev[i];
    wi_blob_encode(b, len, v, dim);
    crypto_generichash(e->aggregate_hash, GV_HASH_BYTES, b, len, NULL, 0);
    wi_blob_encode(b, len, now, dim);
    crypto_hash_sha256(e->global_hash, b, len);
    memcpy(g->prev, now, dim * sizeof *now);
    free(b);
    free(v);
    return MU_OK;
}

int ho_gov_on_round(ho_gov *g, const co_round *r, const co_event *ev, uint64_t now, mu_diag *d)
{
    const co_metrics *m = &ev->metrics;
    if (ev->kind != CO_EVENT_ROUND || m->outcome != CO_ROUND_COMPLETED) {
        size_t dim = 0; /* an aborted round leaves the global as it was */
        const float *gl = co_round_global(r, &dim);
        if (dim == g->dim)
            memcpy(g->prev, gl, dim * sizeof *gl);
        return MU_OK;
    }
    gv_entry *e = calloc(1, sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    e->kind = GV_ENTRY_ROUND;
    e->round = m->round;
    memcpy(e->config_hash, ho_gov_charter(g)->training_hash, GV_HASH_BYTES);
    if (m->round == g->task_round)
        for (size_t i = 0; i < g->n_tasked; i++)
            memcpy(e->cohort[e->n_cohort++], g->tasked[i], GV_NAME_MAX);
    for (uint32_t j = 0; j < ev->n_dropped && e->n_dropped < GV_COHORT_MAX; j++) {
        const char *name = ev->dropped[j].name;
        if (!in_list(e->cohort, e->n_cohort, name) && e->n_cohort < GV_COHORT_MAX)
            snprintf(e->cohort[e->n_cohort++], GV_NAME_MAX, "%s", name);
        snprintf(e->dropped[e->n_dropped].name, GV_NAME_MAX, "%s", name);
        e->dropped[e->n_dropped++].stage = ev->dropped[j].stage;
    }
    char eps[96] = "", e1[32] = "null", e2[32] = "null";
    if (isfinite(m->epsilon)) /* the spent ε (docs/privacy.md); null: untracked or unbounded */
        snprintf(e1, sizeof e1, "%.6g", m->epsilon);
    if (isfinite(m->record_epsilon))
        snprintf(e2, sizeof e2, "%.6g", m->record_epsilon);
    if (m->dp_tracked)
        snprintf(eps, sizeof eps, ",\"epsilon\":%s,\"record_epsilon\":%s", e1, e2);
    snprintf(e->metrics, sizeof e->metrics,
             "{\"kind\":\"%s\",\"loss\":%.6g,\"tokens\":%.0f,\"orgs_completed\":%u,"
             "\"orgs_dropped\":%u%s}",
             m->kind == CO_ROUND_EVAL ? "eval" : "train", isfinite(m->loss) ? m->loss : 0.0,
             m->tokens, m->orgs_completed, m->orgs_dropped, eps);
    int rc = round_hashes(g, r, e, d);
    co_checkpoint view; /* what the checkpoint written next holds: a successor resumes from it */
    static const uint8_t no_config[CO_HASH_BYTES];
    co_round_checkpoint_view(r, no_config, &view);
    co_checkpoint_state_hash(&view, e->state_hash);
    if (rc == MU_OK)
        rc = append(g, e, now, d);
    free(e);
    return rc;
}

int ho_gov_release_subject(const ho_gov *g, uint8_t log_id[GV_HASH_BYTES], uint64_t *round,
                           uint8_t global_hash[GV_HASH_BYTES])
{
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return MU_ERR_NOMEM;
    int found = 0;
    for (size_t i = gv_log_len(g->log); i-- > 0 && !found;)
        if (gv_log_entry(g->log, i, e) == MU_OK && e->kind == GV_ENTRY_ROUND) {
            found = 1;
            *round = e->round;
            memcpy(global_hash, e->global_hash, GV_HASH_BYTES);
        }
    free(e);
    if (!found)
        return MU_ERR_STATE;
    return gv_charter_hash(&g->chain[0].charter, log_id, NULL);
}

int ho_gov_release(ho_gov *g, const gv_sig *sigs, size_t n, uint64_t now, mu_diag *d)
{
    uint8_t log_id[GV_HASH_BYTES], global[GV_HASH_BYTES];
    uint64_t round = 0;
    int rc = ho_gov_release_subject(g, log_id, &round, global);
    if (rc)
        return mu_diag_set(d, rc, "nothing to release: no round is logged");
    const gv_charter *c = ho_gov_charter(g);
    gv_entry *e = calloc(1, sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    e->kind = GV_ENTRY_RELEASE;
    e->round = round;
    memcpy(e->global_hash, global, GV_HASH_BYTES);
    for (size_t i = 0; i < n && e->n_sigs < GV_MEMBERS_MAX; i++) {
        const gv_member *m = gv_charter_member_by_key(c, sigs[i].pk);
        int dup = 0;
        for (uint32_t k = 0; k < e->n_sigs && !dup; k++)
            dup = !memcmp(e->sigs[k].pk, sigs[i].pk, GV_PK_BYTES);
        if (m && m->role == GV_ROLE_MEMBER && !dup &&
            gv_release_sig_ok(&sigs[i], log_id, round, global))
            e->sigs[e->n_sigs++] = sigs[i];
    }
    uint32_t need = gv_quorum_need(c, GV_KIND_RELEASE);
    if (e->n_sigs < need)
        rc = mu_diag_set(d, MU_ERR_CRYPTO,
                         "round %llu: %u valid member signatures, the charter's release quorum "
                         "is %u: not released",
                         (unsigned long long)round, e->n_sigs, need);
    else
        rc = append(g, e, now, d);
    free(e);
    return rc;
}

/* 1 when the log holds a release entry for round. */
static int released(const ho_gov *g, uint64_t round, gv_entry *e)
{
    for (size_t i = 0; i < gv_log_len(g->log); i++)
        if (gv_log_entry(g->log, i, e) == MU_OK && e->kind == GV_ENTRY_RELEASE && e->round == round)
            return 1;
    return 0;
}

int ho_gov_release_offer(ho_gov *g, const char *name, uint64_t round, const uint8_t *b, size_t len,
                         uint64_t now, mu_diag *d)
{
    uint8_t log_id[GV_HASH_BYTES], global[GV_HASH_BYTES];
    uint64_t last = 0;
    if (len != HO_GOV_RELEASE_SIG_BYTES)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "a release signature is %d bytes, not %zu",
                           HO_GOV_RELEASE_SIG_BYTES, len);
    if (ho_gov_release_subject(g, log_id, &last, global) != MU_OK || last != round)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "a release of round %llu, but the last logged round is %llu",
                           (unsigned long long)round, (unsigned long long)last);
    gv_sig s;
    memcpy(s.pk, b, GV_PK_BYTES);
    memcpy(s.sig, b + GV_PK_BYTES, GV_SIG_BYTES);
    const gv_charter *c = ho_gov_charter(g);
    const gv_member *m = gv_charter_member(c, name);
    if (!m || m->role != GV_ROLE_MEMBER || sodium_memcmp(m->sign_pk, s.pk, GV_PK_BYTES) ||
        !gv_release_sig_ok(&s, log_id, round, global))
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "'%s' sent a release of round %llu that is not a valid signature by "
                           "a voting member's roster key",
                           name, (unsigned long long)round);
    if (g->offer_round != round) {
        g->offer_round = round;
        g->n_offers = 0;
    }
    for (uint32_t i = 0; i < g->n_offers; i++)
        if (!memcmp(g->offers[i].pk, s.pk, GV_PK_BYTES))
            return 0;
    g->offers[g->n_offers++] = s;
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    int done = released(g, round, e);
    free(e);
    if (done || g->n_offers < gv_quorum_need(c, GV_KIND_RELEASE))
        return 0;
    int rc = ho_gov_release(g, g->offers, g->n_offers, now, d);
    return rc ? rc : 1;
}

int ho_gov_may_release(const ho_gov *g, uint64_t round, mu_diag *d)
{
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory"), 0;
    int ok = 0;
    for (size_t i = 0; i < gv_log_len(g->log) && !ok; i++)
        ok =
            gv_log_entry(g->log, i, e) == MU_OK && e->kind == GV_ENTRY_RELEASE && e->round == round;
    free(e);
    if (!ok)
        mu_diag_set(d, MU_ERR_STATE,
                    "round %llu is not released: the charter's release rule needs %u member "
                    "signatures in a release entry, and the log has none for it",
                    (unsigned long long)round, gv_quorum_need(ho_gov_charter(g), GV_KIND_RELEASE));
    return ok;
}

int ho_gov_log_bytes(ho_gov *g, const uint8_t **bytes, size_t *len, mu_diag *d)
{
    if (!g->enc) {
        int rc = gv_log_encode(g->log, &g->enc, &g->enc_len, d);
        if (rc)
            return rc;
    }
    *bytes = g->enc;
    *len = g->enc_len;
    return MU_OK;
}

int ho_gov_witness(ho_gov *g, const char *name, const uint8_t *b, size_t n, mu_diag *d)
{
    gv_witness w;
    int rc = gv_witness_decode(&w, b, n, d);
    if (rc)
        return rc;
    const gv_member *m = gv_charter_member(ho_gov_charter(g), name);
    if (!m || sodium_memcmp(m->sign_pk, w.pk, GV_PK_BYTES))
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "a countersignature from '%s' by a key that is not "
                           "its roster key",
                           name);
    if ((rc = gv_witness_check(&w, g->log, d)))
        return rc;
    char path[4096 + 2 * GV_NAME_MAX];
    snprintf(path, sizeof path, "%s/audit.%s.witness", g->dir, name);
    return gv_witness_save(path, &w, d);
}

/* "AB:CD:..." of the first 8 bytes of a fingerprint (out: 24 bytes). */
static void fpr_str(char out[24], const uint8_t *f)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 8; i++) {
        out[3 * i] = hex[f[i] >> 4];
        out[3 * i + 1] = hex[f[i] & 15];
        out[3 * i + 2] = i < 7 ? ':' : 0;
    }
}

int ho_gov_cert_check(const ho_gov *g, const char *name, const uint8_t *fpr, mu_diag *d)
{
    if (g->skip & HO_GOV_SKIP_ADMIT)
        return MU_OK; /* the test hook: a coordinator that checks no identity */
    const gv_charter *c = ho_gov_charter(g);
    const gv_member *m = gv_charter_member(c, name);
    if (!m)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "'%s' is not on the roster of charter version %llu: refused", name,
                           (unsigned long long)c->version);
    if (!fpr)
        return mu_diag_set(d, MU_ERR_INVALID, "'%s' presented no TLS certificate: refused", name);
    if (sodium_memcmp(fpr, m->tls_fpr, GV_FPR_BYTES) == 0)
        return MU_OK;
    char have[24], want[24];
    fpr_str(have, fpr);
    fpr_str(want, m->tls_fpr);
    return mu_diag_set(d, MU_ERR_INVALID,
                       "the TLS certificate presented for '%s' (SHA-256 %s...) is not the one "
                       "charter version %llu names for it (%s...): refused (a replaced or "
                       "revoked certificate, or another holder of the name)",
                       name, have, (unsigned long long)c->version, want);
}

/* The versions of a verified chain after ours, if they extend ours and keep this coordinator
 * (key) and its config. */
static int check_successor(const ho_gov *g, const gv_signed *chain, size_t n, mu_diag *d)
{
    uint8_t a[GV_HASH_BYTES], b[GV_HASH_BYTES];
    if (n < g->n_chain)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "it has %zu versions, this coordinator runs %zu", n,
                           g->n_chain);
    for (size_t v = 0; v < g->n_chain; v++)
        if (gv_charter_hash(&chain[v].charter, a, NULL) ||
            gv_charter_hash(&g->chain[v].charter, b, NULL) || memcmp(a, b, sizeof a))
            return mu_diag_set(d, MU_ERR_PROTOCOL,
                               "its version %zu is not the one this coordinator runs under", v + 1);
    for (size_t v = g->n_chain; v < n; v++) {
        const gv_charter *c = &chain[v].charter;
        if (sodium_memcmp(c->coord_pk, g->sk + 32, GV_PK_BYTES))
            return mu_diag_set(d, MU_ERR_STATE,
                               "charter version %llu names another coordinator key: this "
                               "coordinator is replaced",
                               (unsigned long long)c->version);
        if (memcmp(c->training_hash, g->config_hash, GV_HASH_BYTES) &&
            !(g->skip & HO_GOV_SKIP_CONFIG))
            return mu_diag_set(d, MU_ERR_STATE,
                               "charter version %llu names another training config: restart "
                               "the coordinator with that config",
                               (unsigned long long)c->version);
    }
    return MU_OK;
}

int ho_gov_adopt(ho_gov *g, const char *chain_path, uint64_t now, mu_diag *d)
{
    gv_signed *chain = NULL;
    size_t n = 0, bad = 0;
    mu_diag why = {{0}};
    int rc = gv_chain_load(chain_path, &chain, &n, &why);
    if (rc == MU_OK)
        rc = gv_chain_verify(chain, n, &bad, &why);
    if (rc == MU_OK)
        rc = check_successor(g, chain, n, &why);
    if (rc) {
        free(chain);
        return mu_diag_set(d, rc, "%s: not adopted: %.400s", chain_path, why.msg);
    }
    size_t have = g->n_chain;
    if (n == have) {
        free(chain);
        return 0;
    }
    free(g->chain); /* the same versions up to ours: keep the new array */
    g->chain = chain;
    gv_entry *e = calloc(1, sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    for (size_t v = have; v < n && rc == MU_OK; v++) {
        memset(e, 0, sizeof *e);
        e->kind = GV_ENTRY_CHARTER;
        e->charter_version = v + 1;
        if ((rc = gv_charter_hash(&chain[v].charter, e->charter_hash, d)) == MU_OK &&
            (rc = append(g, e, now, d)) == MU_OK)
            g->n_chain = v + 1; /* what the log adopted, also if a later one fails */
    }
    free(e);
    return rc ? rc : 1;
}

static int log_leave(ho_gov *g, const gv_leave *l, uint64_t now, mu_diag *d)
{
    gv_entry *e = calloc(1, sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    e->kind = GV_ENTRY_LEAVE;
    snprintf(e->member, sizeof e->member, "%s", l->name);
    memcpy(e->member_sig, l->sig, GV_SIG_BYTES);
    int rc = append(g, e, now, d);
    free(e);
    return rc;
}

int ho_gov_leave(ho_gov *g, const char *name, const uint8_t *b, size_t n, int in_flight,
                 uint64_t now, mu_diag *d)
{
    gv_leave l;
    uint8_t log_id[GV_HASH_BYTES];
    int rc = gv_leave_decode(&l, b, n, d);
    if (rc)
        return rc;
    if ((rc = gv_charter_hash(&g->chain[0].charter, log_id, d)) ||
        (rc = gv_leave_check(&l, log_id, ho_gov_charter(g), d)))
        return rc;
    if (strcmp(l.name, name))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "'%s' sent the leave notice of '%s': a member sends its own", name,
                           l.name);
    if (in_list(g->left, g->n_left, name))
        return mu_diag_set(d, MU_ERR_STATE, "'%s' has left already", name);
    if (!is_admitted(g, name) || g->n_left >= GV_MEMBERS_MAX)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "'%s' leaves, but was never admitted", name);
    if (in_flight) { /* kept on disk before it is acknowledged: a crash does not lose it */
        g->pending[g->n_pending++] = l;
        if ((rc = save_pending(g, d)) != MU_OK) {
            g->n_pending--;
            return rc;
        }
    } else if ((rc = log_leave(g, &l, now, d))) {
        return rc;
    }
    snprintf(g->left[g->n_left++], GV_NAME_MAX, "%s", name);
    return in_flight ? 0 : 1;
}

int ho_gov_leave_flush(ho_gov *g, uint64_t now, mu_diag *d)
{
    size_t done = 0;
    int rc = MU_OK;
    while (done < g->n_pending && (rc = log_leave(g, &g->pending[done], now, d)) == MU_OK)
        done++;
    memmove(g->pending, g->pending + done, (g->n_pending - done) * sizeof *g->pending);
    g->n_pending -= done;
    int src = done ? save_pending(g, rc ? NULL : d) : MU_OK; /* what is logged leaves the file */
    return rc ? rc : src;
}

int ho_gov_has_left(const ho_gov *g, const char *name)
{
    if (g->skip & HO_GOV_SKIP_LEAVE)
        return 0; /* the test hook: a coordinator that keeps members who left */
    return in_list((char(*)[GV_NAME_MAX])g->left, g->n_left, name);
}

/* ---- the org's side ------------------------------------------------------------------------ */

struct ho_witness {
    gv_signed *chain;
    size_t n_chain;
    uint8_t log_id[GV_HASH_BYTES];
    uint64_t last_round, signed_round; /* the last round of the log taken; the last released */
    int has_round;
    uint8_t last_global[GV_HASH_BYTES];
    uint8_t sk[GV_SK_BYTES];
    char head_path[4096];
    int has_head;
    gv_witness head;
    char left[GV_MEMBERS_MAX][GV_NAME_MAX]; /* members the log taken last says left */
    size_t n_left;
};

const gv_charter *ho_witness_charter(const ho_witness *w)
{
    return &w->chain[w->n_chain - 1].charter;
}

ho_witness *ho_witness_open(const char *chain_path, const char *head_path,
                            const uint8_t sk[GV_SK_BYTES], mu_diag *d)
{
    ho_witness *w = calloc(1, sizeof *w);
    if (!w) {
        mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(w->sk, sk, GV_SK_BYTES);
    snprintf(w->head_path, sizeof w->head_path, "%s", head_path);
    int rc = gv_chain_load(chain_path, &w->chain, &w->n_chain, d);
    mu_diag why = {{0}};
    if (rc == MU_OK && (rc = gv_chain_verify(w->chain, w->n_chain, NULL, &why)))
        mu_diag_set(d, rc, "%s: %s", chain_path, why.msg);
    if (rc == MU_OK && !gv_charter_member_by_key(ho_witness_charter(w), sk + 32))
        rc = mu_diag_set(d, MU_ERR_INVALID,
                         "%s: this org's signing key is not on the roster of charter version "
                         "%llu",
                         chain_path, (unsigned long long)ho_witness_charter(w)->version);
    if (rc == MU_OK) {
        rc = gv_witness_load(head_path, &w->head, d);
        w->has_head = rc == MU_OK;
        if (rc == MU_ERR_NOTFOUND)
            rc = MU_OK;
        else if (rc == MU_OK && sodium_memcmp(w->head.pk, sk + 32, GV_PK_BYTES))
            rc = mu_diag_set(d, MU_ERR_INVALID, "%s: a head countersigned by another key",
                             head_path);
    }
    if (rc) {
        ho_witness_free(w);
        return NULL;
    }
    return w;
}

void ho_witness_free(ho_witness *w)
{
    if (!w)
        return;
    sodium_memzero(w->sk, sizeof w->sk);
    free(w->chain);
    free(w);
}

int ho_witness_roster(const ho_witness *w, cl_member **out, size_t *n)
{
    const gv_charter *c = ho_witness_charter(w);
    *out = calloc(c->n_members ? c->n_members : 1, sizeof **out);
    if (!*out)
        return MU_ERR_NOMEM;
    for (uint32_t i = 0; i < c->n_members; i++) {
        snprintf((*out)[i].name, sizeof(*out)[i].name, "%s", c->members[i].name);
        memcpy((*out)[i].pk, c->members[i].sign_pk, GV_PK_BYTES);
    }
    *n = c->n_members;
    return MU_OK;
}

int ho_witness_check_config(const ho_witness *w, const uint8_t *hash, mu_diag *d)
{
    const gv_charter *c = ho_witness_charter(w);
    if (!hash)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "the coordinator does not say which training config it runs; charter "
                           "version %llu names one",
                           (unsigned long long)c->version);
    if (memcmp(hash, c->training_hash, GV_HASH_BYTES) == 0)
        return MU_OK;
    char want[2 * GV_HASH_BYTES + 1], have[2 * GV_HASH_BYTES + 1];
    wi_hex_encode(want, sizeof want, c->training_hash, GV_HASH_BYTES);
    wi_hex_encode(have, sizeof have, hash, GV_HASH_BYTES);
    return mu_diag_set(d, MU_ERR_INVALID,
                       "the coordinator runs training config %.16s..., charter version %llu "
                       "allows only %.16s...: refusing its tasks",
                       have, (unsigned long long)c->version, want);
}

/* The charter version the log adopted last. */
static uint64_t adopted(const gv_log *log, gv_entry *e)
{
    uint64_t v = 0;
    for (size_t i = 0; i < gv_log_len(log); i++)
        if (gv_log_entry(log, i, e) == MU_OK && e->kind == GV_ENTRY_CHARTER)
            v = e->charter_version;
    return v;
}

int ho_witness_take(ho_witness *w, const uint8_t *bytes, size_t len, uint8_t out[GV_WITNESS_BYTES],
                    mu_diag *d)
{
    gv_log *log = NULL;
    mu_diag why = {{0}};
    int rc = gv_log_decode(&log, bytes, len, &why);
    if (rc)
        return mu_diag_set(d, rc, "the coordinator's audit log: %s", why.msg);
    gv_entry *e = malloc(sizeof *e);
    if (!e) {
        gv_log_free(log);
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    }
    size_t bad = 0;
    if ((rc = gv_log_verify(log, w->chain, w->n_chain, &bad, &why)))
        mu_diag_set(d, rc,
                    "the coordinator's audit log does not verify against our charter "
                    "chain: %s",
                    why.msg);
    else if (adopted(log, e) != w->n_chain)
        rc = mu_diag_set(d, MU_ERR_PROTOCOL,
                         "the coordinator's audit log adopted charter version %llu, our chain's "
                         "head is version %zu",
                         (unsigned long long)adopted(log, e), w->n_chain);
    else if (w->has_head && (rc = gv_witness_check(&w->head, log, &why)))
        mu_diag_set(d, rc,
                    "the coordinator's audit log does not extend the head this org "
                    "countersigned (entry %llu): %s",
                    (unsigned long long)w->head.index, why.msg);
    if (rc == MU_OK) { /* what a release would name */
        w->has_round = 0;
        for (size_t i = gv_log_len(log); i-- > 0 && !w->has_round;)
            if (gv_log_entry(log, i, e) == MU_OK && e->kind == GV_ENTRY_ROUND) {
                w->has_round = 1;
                w->last_round = e->round;
                memcpy(w->last_global, e->global_hash, GV_HASH_BYTES);
            }
        gv_charter_hash(&w->chain[0].charter, w->log_id, NULL);
        w->n_left = 0;
        for (size_t i = 0; i < gv_log_len(log); i++)
            if (gv_log_entry(log, i, e) == MU_OK && e->kind == GV_ENTRY_LEAVE &&
                w->n_left < GV_MEMBERS_MAX)
                snprintf(w->left[w->n_left++], GV_NAME_MAX, "%s", e->member);
    }
    free(e);
    gv_witness nw;
    if (rc == MU_OK && (rc = gv_witness_sign(&nw, log, w->sk)))
        mu_diag_set(d, rc, "cannot countersign an empty log");
    gv_log_free(log);
    if (rc == MU_OK && (rc = gv_witness_save(w->head_path, &nw, d)) == MU_OK) {
        w->head = nw;
        w->has_head = 1;
        gv_witness_encode(&nw, out);
    }
    return rc;
}

int ho_witness_release_sign(ho_witness *w, const float *global, size_t dim, uint64_t *round,
                            uint8_t out[HO_GOV_RELEASE_SIG_BYTES], mu_diag *d)
{
    if (!w->has_round || w->signed_round == w->last_round)
        return MU_ERR_STATE;
    size_t len = wi_blob_len(dim);
    uint8_t *b = malloc(len ? len : 1), h[GV_HASH_BYTES];
    if (!b)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    wi_blob_encode(b, len, global, dim);
    crypto_hash_sha256(h, b, len);
    free(b);
    if (memcmp(h, w->last_global, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "the adapter the coordinator sent is not round %llu's global as its "
                           "audit log names it: not releasing it",
                           (unsigned long long)w->last_round);
    gv_sig s;
    gv_release_sign(&s, w->log_id, w->last_round, w->last_global, w->sk);
    memcpy(out, s.pk, GV_PK_BYTES);
    memcpy(out + GV_PK_BYTES, s.sig, GV_SIG_BYTES);
    *round = w->last_round;
    w->signed_round = w->last_round;
    return MU_OK;
}

void ho_witness_push_sign(const ho_witness *w, uint64_t org_id, uint64_t round, uint32_t stage,
                          uint8_t sig[GV_SIG_BYTES])
{
    wi_push_sign(sig, w->sk, org_id, round, stage, NULL, 0);
}

int ho_witness_cohort_check(const ho_witness *w, const co_task *t, mu_diag *d)
{
    const gv_charter *c = ho_witness_charter(w);
    for (size_t k = 0; k < w->n_left; k++) {
        const gv_member *m = gv_charter_member(c, w->left[k]);
        for (uint32_t i = 0; m && i < t->n_cohort; i++)
            if (sodium_memcmp(t->cohort_pks[i], m->sign_pk, GV_PK_BYTES) == 0)
                return mu_diag_set(d, MU_ERR_PROTOCOL,
                                   "round %llu: the cohort holds '%s', who left the federation "
                                   "by its own notice (in the audit log): refusing the round",
                                   (unsigned long long)t->cfg.round, m->name);
    }
    return MU_OK;
}
