/* cl_participant.c - one org: what it does with each task of the round machine. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"
#include "mu_bytes.h"
#include "mu_grow.h"

_Static_assert(CO_WIRE_MAX_COHORT == SA_MAX_ORGS, "a task's cohort is a secure-agg cohort");
_Static_assert(CO_TASK_MAX_DIM + 1 + CO_METRIC_MAX_COORDS == SA_MAX_D,
               "d = dim + 1 + metric coordinates values are masked");

struct cl_participant {
    char name[CO_ORG_NAME_MAX];
    uint8_t sk[SA_SIGN_SK_BYTES], pk[SA_SIGN_PK_BYTES];
    cl_participant_config cfg; /* data pointers; sign_sk wiped; members is `roster` */
    cl_member *roster;         /* (cfg.n_members) sorted by key */
    double examples;           /* floor(n_train / T) of the last TRAIN */

    uint64_t round; /* the round of the held update or evaluation, and of the sa_client */
    int ready;      /* TRAIN or EVAL done for `round`: its secure aggregation may start */
    uint8_t kind;   /* co_round_kind of what was done for `round` */
    float *delta;   /* (dim) while held */
    size_t dim;
    double weight;
    cl_train_info info;
    cl_eval_info eval; /* the last EVAL: the metric coordinates of its round's masked input */
    uint8_t last_report[CO_REPORT_BYTES];

    sa_client *sa;
    int sa_answered;     /* the last stage answered */
    int recorded;        /* this sa client's round is in `log` by its own MASKED task */
    double sa_ddg_noise; /* the ADVERTISE task's ddg_noise and ddg_min (for MASKED) */
    uint32_t sa_ddg_min;
    cl_round_log *log, *own_log; /* cfg.rounds, or own_log when that is NULL */
    sa_rng_seeded rng_sa, rng_q;
};

/* ---- outbox -------------------------------------------------------------------------------*/

void cl_outbox_init(cl_outbox *ob)
{
    memset(ob, 0, sizeof *ob);
}

void cl_outbox_clear(cl_outbox *ob)
{
    for (size_t i = 0; i < ob->count; i++)
        free(ob->items[i].bytes);
    ob->count = 0;
}

void cl_outbox_deinit(cl_outbox *ob)
{
    cl_outbox_clear(ob);
    free(ob->items);
    memset(ob, 0, sizeof *ob);
}

/* Room for n more messages. */
static int outbox_reserve(cl_outbox *ob, size_t n)
{
    return MU_GROW(&ob->items, &ob->cap, ob->count + n, 4);
}

/* Takes ownership of bytes (freed on failure). */
static int outbox_push(cl_outbox *ob, uint8_t *bytes, size_t len)
{
    if (outbox_reserve(ob, 1) != MU_OK) {
        free(bytes);
        return MU_ERR_NOMEM;
    }
    ob->items[ob->count++] = (cl_msg){bytes, len};
    return MU_OK;
}

static int outbox_push_copy(cl_outbox *ob, const uint8_t *bytes, size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return MU_ERR_NOMEM;
    memcpy(b, bytes, len);
    return outbox_push(ob, b, len);
}

/* Moves every SA_TO_SERVER envelope of `sa` into `out` (all of a client's are). On failure
 * `out` is back to `mark` messages. */
static int outbox_take(cl_outbox *out, sa_outbox *sa)
{
    size_t mark = out->count;
    int rc = MU_OK;
    for (size_t i = 0; i < sa->count; i++) {
        if (rc == MU_OK)
            rc = outbox_push(out, sa->items[i].bytes, sa->items[i].len);
        else
            free(sa->items[i].bytes);
        sa->items[i].bytes = NULL;
    }
    sa->count = 0;
    if (rc != MU_OK) {
        for (size_t i = mark; i < out->count; i++)
            free(out->items[i].bytes);
        out->count = mark;
    }
    return rc;
}

/* ---- randomness ---------------------------------------------------------------------------*/

/* A per-round seed: BLAKE2b keyed by the participant's seed over (label, round). */
static void derive(uint8_t out[32], const uint8_t seed[32], const char *label, uint64_t round)
{
    uint8_t msg[24] = {0};
    size_t l = strlen(label);
    memcpy(msg, label, l < 16 ? l : 16);
    mu_put_le64(msg + 16, round);
    crypto_generichash(out, 32, msg, sizeof msg, seed, 32);
}

void cl_synthetic_update(float *out, size_t dim, const uint8_t seed[32], uint64_t round, double amp)
{
    uint8_t k[32];
    derive(k, seed, "synthetic", round);
    sa_rng_seeded st;
    sa_rng_seeded_init(&st, k);
    sa_rng rng = sa_rng_from_seeded(&st);
    uint32_t buf[1024];
    for (size_t i = 0; i < dim; i += 1024) {
        size_t c = dim - i < 1024 ? dim - i : 1024;
        rng.fill(rng.ctx, buf, c * sizeof *buf);
        for (size_t j = 0; j < c; j++) /* 24 random bits -> [-1, 1) */
            out[i + j] = (float)(amp * ((double)(buf[j] >> 8) / 8388608.0 - 1.0));
    }
    sodium_memzero(&st, sizeof st);
}

/* ---- participant --------------------------------------------------------------------------*/

cl_participant *cl_participant_new(const cl_participant_config *cfg, mu_diag *diag)
{
    size_t nl = cfg->name ? strlen(cfg->name) : 0;
    if (nl == 0 || nl >= CO_ORG_NAME_MAX) {
        mu_diag_set(diag, MU_ERR_INVALID, "org name must be 1..%d bytes", CO_ORG_NAME_MAX - 1);
        return NULL;
    }
    if (cfg->n_train < 0 || cfg->n_eval < 0 || (cfg->n_train && !cfg->train_tokens) ||
        (cfg->n_eval && !cfg->eval_tokens) ||
        (cfg->synthetic && !(cfg->synthetic_amp >= 0 && isfinite(cfg->synthetic_amp)))) {
        mu_diag_set(diag, MU_ERR_INVALID, "org %s: bad data or synthetic settings", cfg->name);
        return NULL;
    }
    if (cfg->min_cohort && cfg->min_cohort < CL_MIN_COHORT && !cfg->allow_small_cohort) {
        mu_diag_set(diag, MU_ERR_INVALID,
                    "org %s: min_cohort %u is below %u: the minimum can only be raised", cfg->name,
                    cfg->min_cohort, CL_MIN_COHORT);
        return NULL;
    }
    if (!(cfg->min_ddg_noise >= 0 && isfinite(cfg->min_ddg_noise))) {
        mu_diag_set(diag, MU_ERR_INVALID, "org %s: bad min_ddg_noise", cfg->name);
        return NULL;
    }
    cl_participant *p = calloc(1, sizeof *p);
    if (!p || cl_roster_copy(&p->roster, cfg->members, cfg->n_members) != MU_OK) {
        free(p);
        mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->log = cfg->rounds;
    if (!p->log) {
        static const uint8_t none[CL_FEDERATION_BYTES];
        if (!(p->log = p->own_log = cl_round_log_open(NULL, none, diag))) {
            free(p->roster);
            free(p);
            return NULL;
        }
    }
    memcpy(p->name, cfg->name, nl + 1);
    p->cfg = *cfg;
    p->cfg.name = p->name;
    p->cfg.members = p->roster;
    if (!cfg->min_cohort)
        p->cfg.min_cohort = CL_MIN_COHORT;
    memcpy(p->sk, cfg->sign_sk, sizeof p->sk);
    sodium_memzero(p->cfg.sign_sk, sizeof p->cfg.sign_sk);
    crypto_sign_ed25519_sk_to_pk(p->pk, p->sk);
    return p;
}

/* The update says what the org's data taught the model: wiped before it is freed. */
static void free_delta(cl_participant *p)
{
    if (p->delta)
        sodium_memzero(p->delta, p->dim * sizeof *p->delta);
    free(p->delta);
    p->delta = NULL;
}

static void drop_round(cl_participant *p)
{
    sa_client_free(p->sa);
    p->sa = NULL;
    free_delta(p);
    p->ready = 0;
    p->sa_answered = 0;
}

void cl_participant_free(cl_participant *p)
{
    if (!p)
        return;
    drop_round(p);
    sodium_memzero(p->sk, sizeof p->sk);
    sodium_memzero(p->cfg.seed, sizeof p->cfg.seed);
    sodium_memzero(&p->rng_sa, sizeof p->rng_sa);
    sodium_memzero(&p->rng_q, sizeof p->rng_q);
    sodium_memzero(&p->eval, sizeof p->eval);
    sodium_memzero(&p->info, sizeof p->info);
    free(p->roster);
    cl_round_log_free(p->own_log);
    free(p);
}

const char *cl_participant_name(const cl_participant *p)
{
    return p->name;
}

const uint8_t *cl_participant_pk(const cl_participant *p)
{
    return p->pk;
}

void cl_participant_last_train(const cl_participant *p, cl_train_info *info)
{
    *info = p->info;
}

void cl_participant_last_eval(const cl_participant *p, cl_eval_info *info)
{
    *info = p->eval;
}

const float *cl_participant_delta(const cl_participant *p, size_t *dim)
{
    *dim = p->delta ? p->dim : 0;
    return p->delta;
}

/* Deterministic mode: an sa_rng from the participant's seed for (label, round); else NULL
 * (system randomness). */
static const sa_rng *round_rng(cl_participant *p, sa_rng_seeded *st, const char *label,
                               uint64_t round, sa_rng *out)
{
    if (!p->cfg.deterministic)
        return NULL;
    uint8_t k[32];
    derive(k, p->cfg.seed, label, round);
    sa_rng_seeded_init(st, k);
    sodium_memzero(k, sizeof k);
    *out = sa_rng_from_seeded(st);
    return out;
}

static int push_report(cl_participant *p, co_report_type type, uint64_t round, cl_outbox *out)
{
    co_report r = {type, round};
    co_report_encode(&r, p->last_report);
    return outbox_push_copy(out, p->last_report, CO_REPORT_BYTES);
}

static int do_train(cl_participant *p, cl_engine *e, const co_task *t, const float *global,
                    size_t dim, cl_outbox *out, mu_diag *diag)
{
    const co_round_config *c = &t->cfg;
    /* A repeated pull before secure aggregation began: the same report again. Once the
     * update has been used (a coordinator that restarted the round), train again. */
    if (p->ready && p->kind == CO_ROUND_TRAIN && p->round == c->round && p->sa_answered == 0 &&
        (p->delta || p->cfg.synthetic))
        return outbox_push_copy(out, p->last_report, CO_REPORT_BYTES);
    drop_round(p);
    p->round = c->round;
    p->kind = CO_ROUND_TRAIN;
    p->dim = dim;
    p->examples = c->seq ? floor((double)p->cfg.n_train / c->seq) : 0;
    if (p->examples < 1)
        p->examples = 1;
    p->weight = c->weight == CO_WEIGHT_UNIFORM || p->cfg.synthetic
                    ? 1.0
                    : (p->examples < c->weight_max ? p->examples : c->weight_max);
    double loss_sum = 0, tokens = 0;
    if (!p->cfg.synthetic) {
        if (!e || !global)
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "org %s: TRAIN needs an engine and the "
                               "global adapter",
                               p->name);
        p->delta = malloc(dim * sizeof *p->delta);
        if (!p->delta)
            return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        uint8_t fw[32];
        derive(fw, p->cfg.seed, "forwards", c->round);
        uint64_t forwards = mu_le64(fw);
        /* DP noise must be unknown to the coordinator: system randomness, or the org's own
         * seed in the simulator (which runs the coordinator itself), as secure aggregation */
        uint8_t dpk[32];
        if (p->cfg.simulated)
            derive(dpk, p->cfg.seed, "dp-sgd", c->round);
        else
            randombytes_buf(dpk, sizeof dpk);
        cl_train_job job = {.global = global,
                            .tokens = p->cfg.train_tokens,
                            .n_tokens = p->cfg.n_train,
                            .steps = c->steps,
                            .batch = c->batch,
                            .seq = c->seq,
                            .lr = c->lr,
                            .fedprox_mu = c->fedprox_mu,
                            .first_step = (c->round ? c->round - 1 : 0) * (uint64_t)c->steps,
                            .forwards = forwards >> 1,
                            .dp_clip = c->dp_clip,
                            .dp_noise = c->dp_noise,
                            .dp_sampling = c->dp_sampling,
                            .dp_key = dpk};
        int rc = cl_engine_train(e, &job, p->delta, &loss_sum, &tokens, diag);
        sodium_memzero(dpk, sizeof dpk);
        if (rc != MU_OK) {
            free_delta(p);
            return rc;
        }
    }
    p->info = (cl_train_info){c->round, loss_sum, tokens, p->weight};
    /* no numbers: the loss sum and tokens go into the masked input (set_input) */
    int rc = push_report(p, CO_REPORT_READY, c->round, out);
    if (rc == MU_OK)
        p->ready = 1;
    return rc;
}

/* The org's noise pin (cl_participant.h): the task's distributed noise against this org's own
 * minimum, before it trains or advertises. */
static int ddg_pin_check(const cl_participant *p, const co_round_config *c, mu_diag *diag)
{
    if (p->cfg.require_ddg && !(c->ddg_noise > 0))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: round %" PRIu64 " has no distributed noise (ddg_noise 0) and "
                           "this org requires it (privacy.require_ddg): leaving the round",
                           p->name, c->round);
    if (c->ddg_noise > 0 && c->ddg_noise < p->cfg.min_ddg_noise)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: round %" PRIu64 " asks for ddg_noise %g, below this org's "
                           "minimum %g (privacy.min_ddg_noise): leaving the round",
                           p->name, c->round, c->ddg_noise, p->cfg.min_ddg_noise);
    return MU_OK;
}

static int do_eval(cl_participant *p, cl_engine *e, const co_task *t, const float *global,
                   size_t dim, cl_outbox *out, mu_diag *diag)
{
    const co_round_config *c = &t->cfg;
    /* A repeated pull before secure aggregation began: the same report again. */
    if (p->ready && p->kind == CO_ROUND_EVAL && p->round == c->round && p->sa_answered == 0)
        return outbox_push_copy(out, p->last_report, CO_REPORT_BYTES);
    drop_round(p);
    p->round = c->round;
    p->kind = CO_ROUND_EVAL;
    p->dim = dim;
    double ls = 0, tk = 0;
    if (!p->cfg.synthetic) {
        if (!e || !global)
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "org %s: EVAL needs an engine and the "
                               "global adapter",
                               p->name);
        int rc = cl_engine_eval(e, global, p->cfg.eval_tokens, p->cfg.n_eval, c->batch, c->seq, &ls,
                                &tk, diag);
        if (rc != MU_OK)
            return rc;
    }
    p->eval = (cl_eval_info){c->round, ls, tk};
    /* no numbers: the loss sum and tokens are the masked input of the round's secure sum */
    int rc = push_report(p, CO_REPORT_EVAL, c->round, out);
    if (rc == MU_OK)
        p->ready = 1;
    return rc;
}

/* An evaluation round's input: the M metric coordinates of the held-out loss sum and token
 * count, nothing else (co_wire.h "Metrics inside the secure sum"). */
static int set_eval_input(cl_participant *p, const co_round_config *c, mu_diag *diag)
{
    size_t m = co_metric_coords(c->bits, c->quant_n);
    uint32_t *q = malloc((m ? m : 1) * sizeof *q);
    if (!q)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    int rc = co_metric_encode(q, m, p->eval.loss_sum, p->eval.tokens, c->bits, c->quant_n, diag);
    if (rc == MU_OK)
        rc = sa_client_set_input(p->sa, q, m);
    sodium_memzero(q, m * sizeof *q);
    free(q);
    return rc;
}

/* The quantised input w·Δ, w, then the metric coordinates of the round's loss sum and tokens
 * (co_wire.h "Metrics inside the secure sum") for the MASKED stage (Δ stays until the stage has
 * succeeded). */
static int set_input(cl_participant *p, const co_round_config *c, mu_diag *diag)
{
    size_t dim = c->dim;
    float *x = p->delta;
    if (p->cfg.synthetic) {
        x = malloc((dim ? dim : 1) * sizeof *x);
        if (!x)
            return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        cl_synthetic_update(x, dim, p->cfg.seed, c->round, p->cfg.synthetic_amp);
    } else if (!x || p->dim != dim) {
        return mu_diag_set(diag, MU_ERR_STATE, "org %s: no update of %u values for round %" PRIu64,
                           p->name, c->dim, c->round);
    }
    size_t m = co_metric_coords(c->bits, c->quant_n), d = dim + 1 + m;
    uint32_t *q = malloc(d * sizeof *q);
    int rc = MU_ERR_NOMEM;
    if (!q) {
        mu_diag_set(diag, rc, "out of memory");
        goto out_free_x;
    }
    sa_quant sq = {.clip_norm = c->clip,
                   .scale = c->scale,
                   .w_max = c->weight_max,
                   .bits = c->bits,
                   .n = c->quant_n};
    sa_rng r;
    const sa_rng *rng = round_rng(p, &p->rng_q, "quantise", c->round, &r);
    if (c->ddg_noise > 0) {
        /* the noise must be unknown to the coordinator: as for DP-SGD's key */
        uint8_t k[DP_SEED_BYTES];
        if (p->cfg.simulated && p->cfg.deterministic)
            derive(k, p->cfg.seed, "ddg", c->round);
        else
            randombytes_buf(k, sizeof k);
        rc = cl_ddg_encode(q, x, dim, p->weight, c, k, rng, (int)p->cfg.mask_threads, diag);
        sodium_memzero(k, sizeof k);
    } else {
        rc = sa_quant_encode(q, dim + 1, x, dim, p->weight, &sq, rng, diag);
    }
    if (rc == MU_OK)
        rc = co_metric_encode(q + dim + 1, m, p->info.loss_sum, p->info.tokens, c->bits, c->quant_n,
                              diag);
    if (rc == MU_OK)
        rc = sa_client_set_input(p->sa, q, d);
    sodium_memzero(q, d * sizeof *q);
    free(q);
out_free_x:
    if (x != p->delta) {
        sodium_memzero(x, dim * sizeof *x);
        free(x);
    }
    return rc;
}

static int start_secagg(cl_participant *p, const co_task *t, sa_outbox *sob, mu_diag *diag)
{
    const co_round_config *c = &t->cfg;
    sa_config sc = {.round_id = c->round,
                    .n = t->n_cohort,
                    .org_ids = t->cohort_ids,
                    .sign_pks = (const uint8_t(*)[SA_SIGN_PK_BYTES])t->cohort_pks,
                    .d = co_secagg_dim(c),
                    .bits = c->bits,
                    .k = c->k,
                    .t = c->t,
                    .min_survivors = c->ddg_noise > 0 ? c->ddg_min : 0};
    _Static_assert(CO_SA_NONCE_BYTES == SA_INSTANCE_NONCE_BYTES, "one nonce size");
    memcpy(sc.instance_nonce, c->sa_nonce, SA_INSTANCE_NONCE_BYTES);
    cl_cohort_rule rule = {p->name, p->pk, p->roster, p->cfg.n_members, p->cfg.min_cohort};
    int rc = cl_cohort_check(&rule, t, diag);
    /* the noise pin is about the update: an evaluation round masks no update */
    if (rc != MU_OK || (c->kind == CO_ROUND_TRAIN && (rc = ddg_pin_check(p, c, diag)) != MU_OK))
        return rc;
    /* The noise is scaled for ddg_min survivors (sc.min_survivors makes that binding): a
     * minimum beyond the cohort is a coordinator scaling every org's noise down. */
    if (c->ddg_noise > 0 && c->ddg_min > t->n_cohort)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: round %" PRIu64 " scales the noise for %u survivors in a "
                           "cohort of %u: leaving the round",
                           p->name, c->round, c->ddg_min, t->n_cohort);
    /* Without a fresh nonce, keys advertised to one coordinator instance would verify in
     * another instance of the same round. */
    if (sodium_is_zero(c->sa_nonce, CO_SA_NONCE_BYTES))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: the secure-aggregation task of round %llu has no instance "
                           "nonce",
                           p->name, (unsigned long long)c->round);
    /* What sa_client_new would refuse, checked here so that its NULL means out of memory. */
    if ((rc = sa_config_check(&sc, diag)) != MU_OK)
        return rc;
    uint32_t at = 0;
    while (at < sc.n && sc.org_ids[at] != t->org_id)
        at++;
    if (at == sc.n || sodium_memcmp(sc.sign_pks[at], p->pk, SA_SIGN_PK_BYTES) != 0)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: the cohort does not hold id %u with this org's key", p->name,
                           t->org_id);
    sa_rng r; /* keys from the seed only in the simulator (see cl_participant.h) */
    const sa_rng *rng =
        p->cfg.simulated ? round_rng(p, &p->rng_sa, "secure_agg", c->round, &r) : NULL;
    sa_client_free(p->sa);
    p->recorded = 0;
    p->sa = sa_client_new(&sc, t->org_id, p->sk, rng, diag);
    if (!p->sa)
        return MU_ERR_NOMEM;
    p->sa_ddg_noise = c->ddg_noise;
    p->sa_ddg_min = sc.min_survivors;
    if (p->cfg.mask_threads > 1)
        sa_client_set_threads(p->sa, p->cfg.mask_threads);
    return sa_client_start(p->sa, sob, diag);
}

/* At most one masked input per round (cl_participant.h "Once per round"): ADVERTISE and
 * MASKED are refused for a recorded round, except a retried MASKED of the secure aggregation
 * that recorded it; a first MASKED records the round before anything is uploaded. */
static int once_per_round(cl_participant *p, const co_task *t, mu_diag *diag)
{
    uint64_t round = t->cfg.round;
    if (t->stage != SA_STAGE_ADVERTISE && t->stage != SA_STAGE_MASKED)
        return MU_OK;
    if (t->stage == SA_STAGE_MASKED && p->recorded)
        return MU_OK;
    if (cl_round_log_has(p->log, round))
        return mu_diag_set(diag, MU_ERR_ABORT,
                           "org %s: already put a masked input into round %" PRIu64
                           ": refusing a second secure aggregation for it",
                           p->name, round);
    if (t->stage == SA_STAGE_ADVERTISE)
        return MU_OK;
    int rc = cl_round_log_add(p->log, round, diag);
    if (rc == MU_OK)
        p->recorded = 1;
    return rc;
}

static int do_secagg(cl_participant *p, const co_task *t, cl_outbox *out, mu_diag *diag)
{
    const co_round_config *c = &t->cfg;
    if (!p->ready || p->round != c->round)
        return mu_diag_set(diag, MU_ERR_STATE,
                           "org %s: secure aggregation for round %" PRIu64
                           " without having trained or evaluated in it",
                           p->name, c->round);
    /* The input's shape follows what the org did: its held-out loss alone after an EVAL. */
    if (c->kind != p->kind)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: round %" PRIu64 "'s secure aggregation is for %s round, but "
                           "this org %s in it",
                           p->name, c->round,
                           c->kind == CO_ROUND_EVAL ? "an evaluation" : "a training",
                           p->kind == CO_ROUND_EVAL ? "evaluated" : "trained");
    if (t->stage <= p->sa_answered)
        return mu_diag_set(diag, MU_ERR_STATE, "org %s: stage %u already answered", p->name,
                           t->stage);
    if (t->stage != SA_STAGE_ADVERTISE && !p->sa)
        return mu_diag_set(diag, MU_ERR_STATE, "org %s: stage %u before ADVERTISE", p->name,
                           t->stage);
    /* e.g. a retry after MU_ERR_NOMEM mid-stage: secure_agg gave that round up for this org */
    if (t->stage != SA_STAGE_ADVERTISE && sa_client_stage(p->sa) == SA_STAGE_ABORTED)
        return mu_diag_set(diag, MU_ERR_ABORT, "org %s: out of round %" PRIu64, p->name, c->round);
    if (c->dim != p->dim && !p->cfg.synthetic)
        return mu_diag_set(diag, MU_ERR_INVALID, "org %s: round config dim %u, trained %zu",
                           p->name, c->dim, p->dim);
    int rc = once_per_round(p, t, diag);
    if (rc != MU_OK)
        return rc;
    /* A client stage answers with one message: room for it first, so that once the client
     * has moved on, handing its answer over cannot fail (a retry would find it moved on). */
    if (outbox_reserve(out, 1) != MU_OK)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    sa_outbox sob;
    sa_outbox_init(&sob);
    if (t->stage == SA_STAGE_ADVERTISE) {
        rc = start_secagg(p, t, &sob, diag);
    } else {
        rc = MU_OK;
        if (t->stage == SA_STAGE_MASKED &&
            (c->ddg_noise != p->sa_ddg_noise || (c->ddg_noise > 0 && c->ddg_min != p->sa_ddg_min)))
            rc = mu_diag_set(diag, MU_ERR_INVALID,
                             "org %s: the MASKED task of round %" PRIu64 " has ddg_noise %g, "
                             "ddg_min %u, not the %g, %u it advertised for",
                             p->name, c->round, c->ddg_noise, c->ddg_min, p->sa_ddg_noise,
                             p->sa_ddg_min);
        else if (t->stage == SA_STAGE_MASKED)
            rc = p->kind == CO_ROUND_EVAL ? set_eval_input(p, c, diag) : set_input(p, c, diag);
        if (rc == MU_OK)
            rc = sa_client_handle(p->sa, t->sa_msg, t->sa_len, &sob, diag);
    }
    if (rc == MU_OK)
        rc = outbox_take(out, &sob);
    if (rc == MU_OK)
        p->sa_answered = t->stage;
    if (rc == MU_OK && t->stage == SA_STAGE_MASKED) /* the input is in; Δ is not needed */
        free_delta(p);
    sa_outbox_deinit(&sob);
    if (rc == MU_OK && sa_client_stage(p->sa) == SA_STAGE_DONE) {
        sa_client_free(p->sa); /* the round is over for this org */
        p->sa = NULL;
    }
    return rc;
}

/* Can the engine's model run batch x seq of this task? Before anything is allocated. */
static int check_model_fit(const cl_participant *p, cl_engine *e, const co_round_config *c,
                           mu_diag *diag)
{
    const tr_config *mc = tr_model_config(cl_engine_model(e));
    if (c->seq > (uint32_t)mc->max_pos)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "org %s: task seq %u exceeds the model's context of %d positions",
                           p->name, c->seq, mc->max_pos);
    return MU_OK; /* batch x seq x vocab: the engine's loss runs in chunks, no limit */
}

int cl_participant_handle_task(cl_participant *p, cl_engine *engine, const co_task *task,
                               const float *global, size_t dim, cl_outbox *out, mu_diag *diag)
{
    int rc = co_task_check(task, diag);
    if (rc != MU_OK)
        return rc;
    if ((task->kind == CO_TASK_TRAIN || task->kind == CO_TASK_EVAL) && !p->cfg.synthetic &&
        engine && (rc = check_model_fit(p, engine, &task->cfg, diag)) != MU_OK)
        return rc;
    switch (task->kind) {
    case CO_TASK_WAIT:
    case CO_TASK_DONE:
        return MU_OK;
    case CO_TASK_TRAIN:
    case CO_TASK_EVAL:
        if (dim != task->cfg.dim || (!p->cfg.synthetic && engine && cl_engine_dim(engine) != dim))
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "org %s: adapter of %zu values, round config says %u, model %zu",
                               p->name, dim, task->cfg.dim, engine ? cl_engine_dim(engine) : 0);
        if (task->kind == CO_TASK_TRAIN && (rc = ddg_pin_check(p, &task->cfg, diag)) != MU_OK)
            return rc;
        if (task->kind == CO_TASK_TRAIN)
            return do_train(p, engine, task, global, dim, out, diag);
        return do_eval(p, engine, task, global, dim, out, diag);
    case CO_TASK_SECAGG:
        return do_secagg(p, task, out, diag);
    }
    return mu_diag_set(diag, MU_ERR_INVALID, "org %s: unknown task kind %d", p->name,
                       (int)task->kind);
}
