/* gv_verify.c - gv_log_verify: every entry's link, signature and rule against the charter in
 * force when it was written. */
#include <stdlib.h>
#include <string.h>

#include "gv_internal.h"
#include "gv_log.h"
#include "mu_grow.h"

typedef struct {
    char name[GV_NAME_MAX];
    int left;
} gv_seat;

typedef struct {
    uint64_t round;
    uint8_t global[GV_HASH_BYTES];
    int released;
} gv_done;

/* What verification has seen so far. */
typedef struct {
    const gv_signed *chain;
    size_t n_chain, cur; /* chain[cur] is in force */
    uint8_t log_id[GV_HASH_BYTES];
    gv_seat *seats;
    size_t n_seats, cap_seats;
    gv_done *rounds;
    size_t n_rounds, cap_rounds;
    uint64_t last_round;
    uint8_t format; /* the highest entry format seen */
} gv_state;

static gv_seat *seat(gv_state *s, const char *name)
{
    for (size_t i = 0; i < s->n_seats; i++)
        if (!strcmp(s->seats[i].name, name))
            return &s->seats[i];
    return NULL;
}

static const gv_charter *now(const gv_state *s)
{
    return &s->chain[s->cur].charter;
}

static int on_charter(gv_state *s, const gv_entry *e, size_t i, mu_diag *d)
{
    size_t want = i == 0 ? 0 : s->cur + 1;
    if (e->charter_version != want + 1 || want >= s->n_chain)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "adopts charter version %llu, expected %zu%s",
                           (unsigned long long)e->charter_version, want + 1,
                           want >= s->n_chain ? " (not in the charter chain)" : "");
    uint8_t h[GV_HASH_BYTES];
    int rc = gv_charter_hash(&s->chain[want].charter, h, d);
    if (rc)
        return rc;
    if (memcmp(h, e->charter_hash, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL, "charter hash is not version %zu's", want + 1);
    if (i == 0)
        memcpy(s->log_id, h, GV_HASH_BYTES);
    s->cur = want;
    return MU_OK;
}

static int on_admission(gv_state *s, const gv_entry *e, mu_diag *d)
{
    const gv_member *m = gv_charter_member(now(s), e->member);
    if (!m || memcmp(m->sign_pk, e->member_pk, GV_PK_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL, "admits '%s'%s", e->member,
                           m ? " with a key the charter does not give it" : ", not on the roster");
    gv_seat *st = seat(s, e->member);
    if (st && !st->left)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "admits '%s' a second time", e->member);
    if (!st) {
        if (MU_GROW(&s->seats, &s->cap_seats, s->n_seats + 1, 8) != MU_OK)
            return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
        st = &s->seats[s->n_seats++];
        memcpy(st->name, e->member, GV_NAME_MAX);
    }
    st->left = 0;
    return MU_OK;
}

static int in_cohort(const gv_entry *e, const char *name, uint32_t before)
{
    for (uint32_t j = 0; j < before; j++)
        if (!strcmp(e->cohort[j], name))
            return 1;
    return 0;
}

static int on_round(gv_state *s, const gv_entry *e, mu_diag *d)
{
    const gv_charter *c = now(s);
    if (s->n_rounds && e->round <= s->last_round)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "round %llu after round %llu",
                           (unsigned long long)e->round, (unsigned long long)s->last_round);
    if (memcmp(e->config_hash, c->training_hash, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "round %llu ran a config that is not charter "
                           "version %llu's training config",
                           (unsigned long long)e->round, (unsigned long long)c->version);
    for (uint32_t j = 0; j < e->n_cohort; j++) {
        gv_seat *st = seat(s, e->cohort[j]);
        if (!gv_charter_member(c, e->cohort[j]) || !st || st->left)
            return mu_diag_set(d, MU_ERR_PROTOCOL,
                               "round %llu: cohort member '%s' is not an "
                               "admitted member",
                               (unsigned long long)e->round, e->cohort[j]);
        if (in_cohort(e, e->cohort[j], j))
            return mu_diag_set(d, MU_ERR_PROTOCOL, "round %llu: '%s' twice in the cohort",
                               (unsigned long long)e->round, e->cohort[j]);
    }
    for (uint32_t j = 0; j < e->n_dropped; j++) {
        if (!in_cohort(e, e->dropped[j].name, e->n_cohort))
            return mu_diag_set(d, MU_ERR_PROTOCOL, "round %llu: dropped '%s' not in the cohort",
                               (unsigned long long)e->round, e->dropped[j].name);
        for (uint32_t k = 0; k < j; k++)
            if (!strcmp(e->dropped[k].name, e->dropped[j].name))
                return mu_diag_set(d, MU_ERR_PROTOCOL, "round %llu: '%s' dropped twice",
                                   (unsigned long long)e->round, e->dropped[j].name);
    }
    if (e->n_cohort - e->n_dropped < c->privacy.min_cohort)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "round %llu: %u survivors, the charter's minimum "
                           "cohort is %u",
                           (unsigned long long)e->round, e->n_cohort - e->n_dropped,
                           c->privacy.min_cohort);
    if (MU_GROW(&s->rounds, &s->cap_rounds, s->n_rounds + 1, 16) != MU_OK)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    gv_done *nr = s->rounds;
    nr[s->n_rounds].round = e->round;
    memcpy(nr[s->n_rounds].global, e->global_hash, GV_HASH_BYTES);
    nr[s->n_rounds++].released = 0;
    s->last_round = e->round;
    return MU_OK;
}

static int on_release(gv_state *s, const gv_entry *e, mu_diag *d)
{
    gv_done *r = NULL; /* the latest entry of that round: a restart may have run it again */
    for (size_t j = s->n_rounds; j-- > 0 && !r;)
        if (s->rounds[j].round == e->round)
            r = &s->rounds[j];
    if (!r || memcmp(r->global, e->global_hash, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL, "releases round %llu%s",
                           (unsigned long long)e->round,
                           r ? " with another global adapter than the round logged"
                             : ", which the log has no entry for");
    if (r->released)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "releases round %llu a second time",
                           (unsigned long long)e->round);
    const gv_charter *c = now(s);
    uint32_t have = 0, need = gv_quorum_need(c, GV_KIND_RELEASE);
    for (uint32_t j = 0; j < e->n_sigs; j++) {
        const gv_member *m = gv_charter_member_by_key(c, e->sigs[j].pk);
        int dup = 0;
        for (uint32_t k = 0; k < j && !dup; k++)
            dup = !memcmp(e->sigs[k].pk, e->sigs[j].pk, GV_PK_BYTES);
        if (m && m->role == GV_ROLE_MEMBER && !dup &&
            gv_release_sig_ok(&e->sigs[j], s->log_id, e->round, e->global_hash))
            have++;
    }
    if (have < need)
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "release of round %llu has %u valid member "
                           "signatures, the charter's release quorum is %u",
                           (unsigned long long)e->round, have, need);
    r->released = 1;
    return MU_OK;
}

static int on_leave(gv_state *s, const gv_entry *e, mu_diag *d)
{
    const gv_member *m = gv_charter_member(now(s), e->member);
    gv_seat *st = seat(s, e->member);
    if (!m || !st || st->left)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "'%s' leaves, but is not an admitted member",
                           e->member);
    if (!gv_leave_sig_ok(e->member_sig, s->log_id, e->member, m->sign_pk))
        return mu_diag_set(d, MU_ERR_CRYPTO, "the leave notice is not signed by '%s'", e->member);
    st->left = 1;
    return MU_OK;
}

static int check_entry(gv_state *s, const gv_log *log, size_t i, const gv_entry *e, mu_diag *d)
{
    uint8_t prev[GV_HASH_BYTES] = {0};
    if (e->index != i)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "says it is entry %llu",
                           (unsigned long long)e->index);
    if (i > 0)
        gv_log_entry_hash(log, i - 1, prev);
    if (memcmp(prev, e->prev, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "previous-entry hash does not match entry %zu "
                           "(an entry was edited, dropped or inserted before it)",
                           i - 1);
    if (e->format < s->format)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "entry format %u after format %u entries (a log does not go back to "
                           "round entries without a state hash)",
                           e->format, s->format);
    s->format = e->format;
    if (i == 0 && e->kind != GV_ENTRY_CHARTER)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "the first entry must adopt the genesis charter");
    /* A charter entry is signed by the coordinator of the charter it adopts. */
    size_t signer = s->cur;
    if (e->kind == GV_ENTRY_CHARTER && (i == 0 ? 0 : s->cur + 1) < s->n_chain)
        signer = i == 0 ? 0 : s->cur + 1;
    int ok = gv_entry_sig_ok(e, s->chain[signer].charter.coord_pk);
    if (ok < 0)
        return mu_diag_set(d, ok, "cannot check the signature (%s)", mu_strerror(ok));
    if (!ok)
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "not signed by the coordinator key of charter "
                           "version %zu",
                           signer + 1);
    switch (e->kind) {
    case GV_ENTRY_CHARTER:
        return on_charter(s, e, i, d);
    case GV_ENTRY_ADMISSION:
        return on_admission(s, e, d);
    case GV_ENTRY_ROUND:
        return on_round(s, e, d);
    case GV_ENTRY_RELEASE:
        return on_release(s, e, d);
    case GV_ENTRY_RESTART:
        if (e->round > s->last_round)
            return mu_diag_set(d, MU_ERR_PROTOCOL, "restart from round %llu, last round %llu",
                               (unsigned long long)e->round, (unsigned long long)s->last_round);
        /* The rounds after the checkpoint resumed from run again: a round logged before a
         * crash but never checkpointed is logged a second time, with its new result. */
        s->last_round = e->round;
        return MU_OK;
    case GV_ENTRY_LEAVE:
        return on_leave(s, e, d);
    }
    return mu_diag_set(d, MU_ERR_PROTOCOL, "unknown kind");
}

int gv_log_verify(const gv_log *log, const gv_signed *chain, size_t n_chain, size_t *bad,
                  mu_diag *d)
{
    if (bad)
        *bad = SIZE_MAX;
    int rc = gv_chain_verify(chain, n_chain, NULL, d);
    if (rc)
        return rc;
    if (gv_log_len(log) == 0)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "log: empty (entry 0 adopts the genesis)");
    gv_state s = {.chain = chain, .n_chain = n_chain};
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "log: out of memory");
    for (size_t i = 0; i < gv_log_len(log) && !rc; i++) {
        mu_diag why = {{0}};
        rc = gv_log_entry(log, i, e);
        if (!rc)
            rc = check_entry(&s, log, i, e, &why);
        else
            mu_diag_set(&why, rc, "does not decode");
        if (rc) {
            if (bad)
                *bad = i;
            mu_diag_set(d, rc, "entry %zu (%s): %s", i, gv_entry_kind_name(e->kind), why.msg);
        }
    }
    free(s.seats);
    free(s.rounds);
    free(e);
    return rc;
}
