/* sim_run.c - the in-process driver: virtual orgs, a virtual clock, one co_round. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cl_participant.h"
#include "co_round.h"
#include "gv_store.h"
#include "ho_coord.h"
#include "ho_org.h"
#include "mu_file.h"
#include "mu_grow.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "sim_internal.h"
#include "tr_data.h"
#include "tr_hf.h"
#include "wi_blob.h"

int sim_inner_threads(int outer_threads)
{
    omp_set_max_active_levels(1);
    int most = 0;
#pragma omp parallel num_threads(outer_threads) reduction(max : most)
    {
#pragma omp parallel
        {
#pragma omp single
            most = omp_get_num_threads();
        }
    }
    return most;
}

void sim_org_seed(uint64_t seed, uint32_t index, const char *what, uint8_t out[32])
{
    uint8_t msg[16], key[16] = "mutual-sim-";
    for (int b = 0; b < 8; b++) {
        msg[b] = (uint8_t)(seed >> (8 * b));
        msg[8 + b] = (uint8_t)((uint64_t)index >> (8 * b));
    }
    size_t l = strlen(what);
    memcpy(key + 11, what, l < 5 ? l : 5);
    crypto_generichash(out, 32, msg, sizeof msg, key, sizeof key);
}

/* ---- setup --------------------------------------------------------------------------------*/

static int load_data(sim *s, mu_diag *diag)
{
    const sim_config *c = s->cfg;
    int err;
    if (c->split == SIM_SPLIT_FILES) {
        s->data = calloc(c->n_files, sizeof *s->data);
        if (!s->data)
            return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < c->n_files; i++, s->n_data++)
            if (!(s->data[i] = tr_data_open(c->files[i], &err, diag)))
                return err;
        return MU_OK;
    }
    if (!c->pool[0])
        return MU_OK; /* synthetic orgs without data */
    s->data = calloc(1, sizeof *s->data);
    if (!s->data || !(s->data[0] = tr_data_open(c->pool, &err, diag)))
        return s->data ? err : mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    s->n_data = 1;
    int64_t n = tr_data_len(s->data[0]);
    s->split_tokens = malloc(sizeof(int32_t) * (size_t)n);
    if (!s->split_tokens)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    return MU_OK;
}

/* Org i's tokens: its file, or its part of the split pool; the last eval_fraction of them are
 * its held-out set. */
/* Org i's Ed25519 signing key (libsodium layout): from the seed, or its key file. */
static int org_key(const sim *s, uint32_t i, uint8_t sk[64], mu_diag *diag)
{
    if (s->opts->org_keys_dir) {
        char path[CO_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/org-%u.key", s->opts->org_keys_dir, i + 1);
        return gv_signing_key_load(path, sk, diag);
    }
    uint8_t key_seed[32], pk[32];
    sim_org_seed(s->cfg->seed, i, "keys", key_seed);
    crypto_sign_seed_keypair(pk, sk, key_seed);
    sodium_memzero(key_seed, sizeof key_seed);
    return MU_OK;
}

static int make_orgs(sim *s, mu_diag *diag)
{
    const sim_config *c = s->cfg;
    s->n = c->orgs;
    s->orgs = calloc(s->n, sizeof *s->orgs);
    int64_t *counts = calloc(s->n, sizeof *counts);
    s->roster = calloc(s->n, sizeof *s->roster);
    int rc = MU_OK;
    if (!s->orgs || !counts || !s->roster) {
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (s->split_tokens &&
        (rc = sim_split_tokens(tr_data_tokens(s->data[0]), tr_data_len(s->data[0]), c->split, s->n,
                               c->chunks, c->alpha, c->seed, s->split_tokens, counts, diag)) !=
            MU_OK)
        goto out;
    for (uint32_t i = 0; i < s->n && rc == MU_OK; i++) { /* the simulator knows every key */
        uint8_t sk[64];
        rc = org_key(s, i, sk, diag);
        memcpy(s->roster[i].pk, sk + 32, 32);
        snprintf(s->roster[i].name, sizeof s->roster[i].name, "org-%u", i + 1);
        sodium_memzero(sk, sizeof sk);
    }
    if (rc != MU_OK)
        goto out;
    int64_t off = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        vorg *o = &s->orgs[i];
        char name[32];
        snprintf(name, sizeof name, "org-%u", i + 1);
        cl_participant_config pc = {.name = name,
                                    .synthetic = c->synthetic_dim > 0,
                                    .synthetic_amp = c->synthetic_amp,
                                    .deterministic = 1,
                                    .simulated = 1,
                                    .members = s->roster,
                                    .n_members = s->n,
                                    .min_cohort = 1, /* one process runs every side */
                                    .allow_small_cohort = 1};
        static const uint8_t fed[CL_FEDERATION_BYTES]; /* one federation per run */
        if (!(o->rounds = cl_round_log_open(NULL, fed, diag))) {
            rc = MU_ERR_NOMEM;
            goto out;
        }
        pc.rounds = o->rounds;
        const int32_t *tok = NULL;
        int64_t nt = 0;
        if (c->split == SIM_SPLIT_FILES) {
            tok = tr_data_tokens(s->data[i]);
            nt = tr_data_len(s->data[i]);
        } else if (s->split_tokens) {
            tok = s->split_tokens + off;
            nt = counts[i];
            off += nt;
        }
        int64_t ne = (int64_t)floor((double)nt * c->eval_fraction);
        pc.train_tokens = tok;
        pc.n_train = nt - ne;
        pc.eval_tokens = ne ? tok + (nt - ne) : NULL;
        pc.n_eval = ne;
        if (!c->synthetic_dim && pc.n_train <= (int64_t)c->co.seq) {
            rc = mu_diag_set(diag, MU_ERR_INVALID,
                             "org-%u has %" PRId64 " training tokens, too few for train.seq %u",
                             i + 1, pc.n_train, c->co.seq);
            goto out;
        }
        if (!c->synthetic_dim && c->co.eval_every && ne <= (int64_t)c->co.seq) {
            rc = mu_diag_set(diag, MU_ERR_INVALID,
                             "org-%u has %" PRId64 " held-out tokens, too few for train.seq %u "
                             "(raise data.eval_fraction or set federation.eval_every 0)",
                             i + 1, ne, c->co.seq);
            goto out;
        }
        if ((rc = org_key(s, i, pc.sign_sk, diag)) != MU_OK)
            goto out;
        sim_org_seed(c->seed, i, "org", pc.seed);
        if (c->has_org_seed && c->has_org_seed[i]) /* to replay a real federation's orgs */
            memcpy(pc.seed, c->org_seeds[i], 32);
        o->h = ho_org_new(&pc, diag);
        sodium_memzero(pc.sign_sk, sizeof pc.sign_sk);
        ho_reply_init(&o->rep);
        if (!o->h) {
            rc = MU_ERR_INVALID;
            goto out;
        }
    }
out:
    free(counts);
    return rc;
}

/* The per-org lines' tracker, when opts->org_metrics asks for them. */
static int sim_orgs_open(sim *s, mu_diag *diag)
{
    if (!s->opts->org_metrics)
        return MU_OK;
    if (!(s->orgrep = sim_orgs_new(s->opts->org_metrics, s->n)))
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < s->n; i++) {
        sim_orgs_name(s->orgrep, i, cl_participant_name(ho_org_participant(s->orgs[i].h)));
        sim_orgs_org(s->orgrep, i, s->orgs[i].h);
    }
    return MU_OK;
}

static int make_engines(sim *s, mu_diag *diag)
{
    const sim_config *c = s->cfg;
    if (c->synthetic_dim) {
        if (s->opts->checkpointing || s->opts->bf16)
            mu_warn("sim: synthetic updates, no model: --checkpointing and --bf16 do nothing");
        s->dim = c->synthetic_dim;
        return MU_OK;
    }
    s->n_eng = s->threads;
    s->eng = calloc((size_t)s->n_eng, sizeof *s->eng);
    if (!s->eng)
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    /* the orgs' memory and speed: checkpointing keeps the bits, bf16 rounds the base */
    cl_engine_opts eo = {.checkpointing = s->opts->checkpointing, .bf16 = s->opts->bf16};
    for (int i = 0; i < s->n_eng; i++)
        if (!(s->eng[i] = cl_engine_new(c->base, &c->lora, c->lora_seed, &eo, diag)))
            return MU_ERR_INVALID;
    cl_engine_log_opts(s->eng[0], "sim: the orgs' engines");
    s->dim = cl_engine_dim(s->eng[0]);
    const tr_config *mc = tr_model_config(cl_engine_model(s->eng[0]));
    int vocab = mc->vocab_size;
    if (c->co.seq > (uint32_t)mc->max_pos)
        return mu_diag_set(diag, MU_ERR_INVALID, "train.seq %u exceeds the model's context %d",
                           c->co.seq, mc->max_pos);
    for (size_t i = 0; i < s->n_data; i++)
        if (tr_data_vocab(s->data[i]) > vocab)
            return mu_diag_set(diag, MU_ERR_INVALID, "%s: vocab_size %d exceeds the model's %d",
                               tr_data_path(s->data[i]), tr_data_vocab(s->data[i]), vocab);
    return MU_OK;
}

/* The coordinator, starting from the engine's LoRA trainable tensors (B only with frozen A;
 * B is zero, so the adapter starts as the base model) or a zero synthetic vector. The first
 * global is kept: by the time a restarted coordinator starts afresh (no round had finished)
 * the engines hold what the orgs trained. */
int sim_make_round(sim *s, mu_diag *diag)
{
    co_tensor *t = NULL;
    size_t nt = 0, off = 0;
    float *zeros = NULL;
    int rc = MU_OK;
    if (s->eng) {
        if (!(t = ho_lora_tensors(cl_engine_model(s->eng[0]), &nt)))
            return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        for (size_t i = 0; s->global0 && i < nt; i++) {
            t[i].data = s->global0 + off;
            off += co_tensor_numel(&t[i]);
        }
    } else {
        zeros = calloc(s->dim, sizeof *zeros);
        t = calloc(1, sizeof *t);
        if (!zeros || !t) {
            rc = mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
            goto out;
        }
        t[0] = (co_tensor){.name = "synthetic", .ndim = 1, .shape = {s->dim}, .data = zeros};
        nt = 1;
    }
    if (!(s->r = co_round_new(&s->cfg->co, t, nt, diag))) {
        rc = MU_ERR_INVALID;
        goto out;
    }
    if (!s->global0) {
        size_t dim;
        const float *g = co_round_global(s->r, &dim);
        if (!(s->global0 = malloc(dim * sizeof *g))) {
            rc = mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(s->global0, g, dim * sizeof *g);
    }
out:
    free(t);
    free(zeros);
    return rc;
}

/* The orgs join (again, after a restart: the same key gives the same id) and learn which
 * coordinator instance they talk to: the number of restarts so far. */
int sim_register_orgs(sim *s, mu_diag *diag)
{
    uint8_t instance[HO_INSTANCE_BYTES];
    for (int b = 0; b < HO_INSTANCE_BYTES; b++)
        instance[b] = (uint8_t)(s->restarts >> (8 * b));
    /* One "registered org" line per virtual org says nothing here; -v shows them. */
    int rc = MU_OK;
    for (uint32_t i = 0; i < s->n && rc == MU_OK; i++) {
        vorg *o = &s->orgs[i];
        cl_participant *p = ho_org_participant(o->h);
        const char *name = cl_participant_name(p);
        rc = co_round_register(s->r, name, cl_participant_pk(p), &o->id, diag);
        if (rc == MU_OK) {
            mu_debug("coordinator: registered org '%s' as id %u", name, o->id);
            ho_org_set_id(o->h, o->id);
            int c = ho_org_coordinator(o->h, instance, diag);
            rc = c < 0 ? c : MU_OK;
        }
    }
    return rc;
}

/* ---- events and outputs -------------------------------------------------------------------*/

static int drain(sim *s, mu_diag *diag)
{
    co_event ev;
    while (ho_poll_event(s->r, &ev)) {
        if (ev.kind == CO_EVENT_DONE)
            s->done = 1;
        if (ev.kind != CO_EVENT_ROUND)
            continue;
        if (MU_GROW(&s->round_wall, &s->cap_wall, (size_t)s->rounds + 1, 16) != MU_OK)
            return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        double t = mu_now();
        s->round_wall[s->rounds++] = t - s->last_event_wall;
        s->last_event_wall = t;
        if (ev.metrics.outcome == CO_ROUND_COMPLETED)
            s->completed++;
        else if (++s->aborted >= s->cfg->max_aborted) {
            mu_warn("stopping: %" PRIu64 " rounds aborted (max_aborted)", s->aborted);
            s->done = 1;
        }
        if (s->opts->progress && s->bar_round) {
            char extra[64];
            snprintf(extra, sizeof extra, "%s loss %.4f",
                     ev.metrics.outcome == CO_ROUND_COMPLETED ? "done" : "ABORTED",
                     ev.metrics.loss);
            mu_progress_finish(&s->bar, extra);
            s->bar_round = 0;
        }
        if (ev.metrics.outcome == CO_ROUND_ABORTED)
            mu_warn("round %" PRIu64 " aborted: %s", ev.metrics.round, ev.reason);
        /* this driver's fields of the metrics line: wall_s (the round), elapsed_s (since the
         * start) */
        char fields[96];
        snprintf(fields, sizeof fields, ",\"wall_s\":%.3f,\"elapsed_s\":%.3f",
                 s->round_wall[s->rounds - 1], mu_now() - s->t0);
        ho_after a = {.checkpoint_dir = s->cfg->checkpoint ? s->cfg->co.checkpoint_dir : NULL,
                      .config_hash = s->config_hash,
                      .export_dir = s->cfg->co.export_dir,
                      .model = s->eng ? cl_engine_model(s->eng[0]) : NULL,
                      .base_name = s->cfg->model_name,
                      .metrics = s->opts->metrics,
                      .extra = fields};
        int rc = s->gov ? ho_gov_on_round(s->gov, s->r, &ev, (uint64_t)time(NULL), diag) : MU_OK;
        if (rc == MU_OK) /* the audit entry first, as serve: ho_gov.h */
            rc = ho_after_round(&a, s->r, &ev, diag);
        if (rc != MU_OK)
            return rc;
        s->checkpointed |= s->cfg->checkpoint;
        if ((rc = sim_orgs_round(s->orgrep, &ev)) != MU_OK)
            return mu_diag_set(diag, rc, "per-org metrics: write failed");
    }
    return MU_OK;
}

static void show_progress(sim *s)
{
    if (!s->opts->progress)
        return;
    co_status st;
    co_round_status(s->r, s->now, &st);
    if (st.phase == CO_PHASE_IDLE || st.phase == CO_PHASE_DONE)
        return;
    if (s->bar_round != st.round) {
        char label[32];
        snprintf(label, sizeof label, "round %" PRIu64, st.round);
        mu_progress_init(&s->bar, label, 6);
        s->bar_round = st.round;
    }
    long done = st.phase == CO_PHASE_SECAGG ? st.stage : 0;
    char extra[64];
    snprintf(extra, sizeof extra, "%s (%u/%u pending)", st.stage_name, st.orgs_pending,
             st.orgs_in_cohort);
    mu_progress_update(&s->bar, done, extra);
}

/* ---- one step -----------------------------------------------------------------------------*/

/* Org o stops at `stage` of `round` as `mutual join` does on SIGTERM: it does not act and
 * pushes a signed LEAVE report, through the same signature check as every push. */
static int leave(sim *s, vorg *o, uint32_t index, uint64_t round, int stage, int *progress,
                 mu_diag *diag)
{
    mu_info("org-%u leaves round %" PRIu64 " at %s", index + 1, round, wi_stage_name(stage));
    ho_org_leave(o->h, round);
    s->left_in++;
    sim_orgs_fault(s->orgrep, index, round, "leave");
    uint8_t msg[CO_REPORT_BYTES], sig[HO_SIG_BYTES];
    ho_org_leave_message(o->h, round, msg, sig);
    mu_diag d = {{0}};
    int rc = ho_coord_deliver(s->r, o->id, round, WI_STAGE_REPORT, msg, sizeof msg, sig,
                              HO_SIG_BYTES, s->now, &d);
    if (rc == MU_ERR_NOMEM)
        return mu_diag_set(diag, rc, "coordinator: out of memory");
    if (rc != MU_OK)
        mu_debug("org-%u: coordinator refused its leave: %s", index + 1, d.msg);
    *progress = 1;
    return MU_OK;
}

/* Pulls org o's task and hands it to the host layer; injects dropouts, leaves, stragglers and
 * replays. A replay delivered counts as progress (the org did something this step). */
static int pull(sim *s, vorg *o, uint32_t index, int *progress, mu_diag *diag)
{
    o->has_task = 0;
    o->straggle = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int replayed, rc = sim_next_task_bytes(s, o, &buf, &len, &replayed);
    if (rc != MU_OK)
        return mu_diag_set(diag, rc, "org-%u: pulling a task failed", index + 1);
    ho_verdict v = ho_org_take(o->h, buf, len, &o->task, &o->rep);
    if (replayed) {
        s->replays++;
        *progress = 1;
        mu_info("org-%u is given its task of round %" PRIu64 " again: %s", index + 1, o->rep.round,
                v == HO_ACT ? "acting on it" : "not acted on");
    }
    if (v == HO_FATAL) {
        free(buf);
        return mu_diag_set(diag, o->rep.rc, "org-%u: %s", index + 1, o->rep.diag.msg);
    }
    if (v == HO_STOP)
        s->done = 1;
    if (v != HO_ACT) {
        free(buf);
        return MU_OK;
    }
    int stage = wi_task_stage(&o->task);
    uint64_t round = o->task.cfg.round;
    if (sim_fault_hits(&s->cfg->dropout, s->cfg->seed, 1, index + 1, round, stage)) {
        mu_info("org-%u drops out of round %" PRIu64 " at %s", index + 1, round,
                wi_stage_name(stage));
        ho_org_leave(o->h, round);
        s->dropped_in++;
        sim_orgs_fault(s->orgrep, index, round, "dropout");
        co_task_deinit(&o->task);
        free(buf);
        return MU_OK;
    }
    if (sim_fault_hits(&s->cfg->leave, s->cfg->seed, 4, index + 1, round, stage)) {
        co_task_deinit(&o->task);
        free(buf);
        return leave(s, o, index, round, stage, progress, diag);
    }
    /* The global adapter the org needs travels as serve's DownloadAdapter stream does: the
     * same payload bytes in the round's bytes_out (an org that drops out never fetches it). */
    if (ho_task_needs_global(&o->task))
        co_round_add_bytes(s->r, 0, wi_blob_len(s->dim));
    o->straggle = sim_fault_hits(&s->cfg->stragglers, s->cfg->seed, 2, index + 1, round, stage);
    o->has_task = 1;
    sim_orgs_task(s->orgrep, index, round);
    if (o->straggle)
        sim_orgs_fault(s->orgrep, index, round, "straggler");
    if (o->replay)
        o->replay_armed = 1;
    if (!replayed && !o->replay &&
        sim_fault_hits(&s->cfg->replay, s->cfg->seed, 3, index + 1, round, stage)) {
        o->replay = buf; /* delivered again after the org's next task */
        o->replay_len = len;
        buf = NULL;
    }
    free(buf);
    return MU_OK;
}

/* Pushes org o's answer, signed, through the host layer's signature check; a straggler's is
 * held until after the deadline. */
static int push(sim *s, vorg *o, uint32_t index, int *progress, mu_diag *diag)
{
    ho_reply *rep = &o->rep;
    if (rep->verdict == HO_FATAL)
        return mu_diag_set(diag, rep->rc, "org-%u: %s", index + 1, rep->diag.msg);
    if (rep->verdict != HO_PUSH)
        return MU_OK;
    for (size_t k = 0; k < rep->out.count; k++) {
        cl_msg *m = &rep->out.items[k];
        if (o->straggle) {
            free(o->held);
            o->held = m->bytes;
            o->held_len = m->len;
            o->held_round = rep->round;
            o->held_stage = rep->stage;
            memcpy(o->held_sig, rep->sigs[k], HO_SIG_BYTES);
            m->bytes = NULL;
            ho_org_leave(o->h, rep->round);
            continue;
        }
        mu_diag d;
        int rc = ho_coord_deliver(s->r, o->id, rep->round, rep->stage, m->bytes, m->len,
                                  rep->sigs[k], HO_SIG_BYTES, s->now, &d);
        if (rc == MU_OK) {
            *progress = 1;
            sim_orgs_accepted(s->orgrep, index, rep->round, rep->stage, m->bytes, m->len);
        } else if (rc == MU_ERR_NOMEM)
            return mu_diag_set(diag, rc, "coordinator: out of memory");
        else
            mu_debug("org-%u: coordinator refused a %s message: %s", index + 1,
                     wi_stage_name(wi_task_stage(&o->task)), d.msg);
    }
    if (o->straggle && o->held)
        mu_info("org-%u answers %s of round %" PRIu64 " after its deadline", index + 1,
                wi_stage_name(wi_task_stage(&o->task)), rep->round);
    return MU_OK;
}

static void act(sim *s, vorg *o, const float *global, int thread)
{
    cl_engine *e = s->eng ? s->eng[thread < s->n_eng ? thread : 0] : NULL;
    ho_org_act(o->h, e, &o->task, global, s->dim, &o->rep);
}

static int step_chunk(sim *s, uint32_t c0, uint32_t c1, int *progress, mu_diag *diag)
{
    uint32_t idx[SIM_CHUNK];
    int n_act = 0, rc = MU_OK;
    for (uint32_t i = c0; i < c1; i++) {
        if ((rc = pull(s, &s->orgs[i], i, progress, diag)) != MU_OK)
            return rc;
        if (s->orgs[i].has_task)
            idx[n_act++] = i;
    }
    size_t dim;
    const float *global = co_round_global(s->r, &dim);
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->threads) if (s->threads > 1)
    for (int k = 0; k < n_act; k++)
        act(s, &s->orgs[idx[k]], global, omp_get_thread_num());
    for (int k = 0; k < n_act; k++) {
        vorg *o = &s->orgs[idx[k]];
        if (rc == MU_OK)
            rc = push(s, o, idx[k], progress, diag);
        cl_outbox_clear(&o->rep.out);
        co_task_deinit(&o->task);
        o->has_task = 0;
    }
    return rc;
}

/* Time jumps to the next deadline; the stragglers' held messages arrive just after it. */
static int jump(sim *s, mu_diag *diag)
{
    double next = co_round_next_deadline(s->r);
    uint64_t v = co_round_version(s->r);
    if (isinf(next)) {
        int rc = co_round_tick(s->r, s->now);
        if (rc != MU_OK)
            return mu_diag_set(diag, rc, "coordinator tick failed");
        if (co_round_version(s->r) == v)
            return mu_diag_set(diag, MU_ERR_STATE,
                               "simulation stuck: nobody can act and nothing is timed");
        return MU_OK;
    }
    s->now = next > s->now ? next : s->now;
    int rc = co_round_tick(s->r, s->now);
    if (rc != MU_OK)
        return mu_diag_set(diag, rc, "coordinator tick failed");
    for (uint32_t i = 0; i < s->n; i++) {
        vorg *o = &s->orgs[i];
        if (!o->held)
            continue;
        mu_diag d;
        rc = ho_coord_deliver(s->r, o->id, o->held_round, o->held_stage, o->held, o->held_len,
                              o->held_sig, HO_SIG_BYTES, s->now, &d);
        if (rc != MU_OK) {
            s->late_rejected++;
            mu_info("org-%u's late message refused: %s", i + 1, d.msg);
        } else {
            sim_orgs_accepted(s->orgrep, i, o->held_round, o->held_stage, o->held, o->held_len);
        }
        free(o->held);
        o->held = NULL;
        o->held_len = 0;
    }
    return MU_OK;
}

static int loop(sim *s, mu_diag *diag)
{
    int rc = MU_OK;
    for (uint64_t steps = 0; !s->done && rc == MU_OK; steps++) {
        if ((rc = co_round_tick(s->r, s->now)) != MU_OK || (rc = drain(s, diag)) != MU_OK ||
            (rc = sim_restart(s, diag)) != MU_OK)
            break;
        show_progress(s);
        int progress = 0;
        for (uint32_t c0 = 0; c0 < s->n && rc == MU_OK && !s->done; c0 += SIM_CHUNK)
            rc = step_chunk(s, c0, c0 + SIM_CHUNK < s->n ? c0 + SIM_CHUNK : s->n, &progress, diag);
        if (rc == MU_OK)
            rc = drain(s, diag);
        if (rc == MU_OK && !progress && !s->done)
            rc = jump(s, diag);
        if (rc == MU_OK)
            rc = drain(s, diag);
    }
    return rc;
}

/* ---- the charter ------------------------------------------------------------------------ */

int sim_gov_open(sim *s, mu_diag *diag)
{
    if (!s->opts->charter_path)
        return MU_OK;
    uint8_t h[CO_HASH_BYTES];
    int rc = co_hash_file(s->opts->config_path, h, diag);
    if (rc != MU_OK)
        return rc;
    ho_gov_opts go = {.chain_path = s->opts->charter_path,
                      .key_path = s->opts->coordinator_key,
                      .dir = s->opts->audit_dir,
                      .config_hash = h,
                      .now = (uint64_t)time(NULL),
                      .instance = s->restarts,
                      .resumed_state = s->resumed_ckpt ? s->ckpt_state : NULL,
                      .round = s->r};
    size_t nh = 0;
    const co_metrics *hist = co_round_history(s->r, &nh);
    go.resumed = nh > 0;
    go.resumed_round = nh ? hist[nh - 1].round : 0;
    if (!(s->gov = ho_gov_open(&go, diag)))
        return MU_ERR_INVALID;
    for (uint32_t i = 0; i < s->n && rc == MU_OK; i++)
        rc = ho_gov_admit(s->gov, s->roster[i].name, s->roster[i].pk, go.now, diag);
    return rc;
}

/* Each org signs the release of the last logged round (the simulator holds their keys); the
 * coordinator logs it once the charter's quorum signed. Without it nothing is exported. */
static int gov_release(sim *s, mu_diag *diag)
{
    if (!s->gov)
        return MU_OK;
    uint8_t log_id[GV_HASH_BYTES], global[GV_HASH_BYTES], sk[64];
    uint64_t round = 0;
    if (ho_gov_release_subject(s->gov, log_id, &round, global) != MU_OK)
        return mu_diag_set(diag, MU_ERR_STATE, "no completed round to release");
    gv_sig *sigs = calloc(s->n, sizeof *sigs);
    int rc = sigs ? MU_OK : mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < s->n && rc == MU_OK; i++)
        if ((rc = org_key(s, i, sk, diag)) == MU_OK)
            gv_release_sign(&sigs[i], log_id, round, global, sk);
    sodium_memzero(sk, sizeof sk);
    if (rc == MU_OK)
        rc = ho_gov_release(s->gov, sigs, s->n, (uint64_t)time(NULL), diag);
    free(sigs);
    if (rc == MU_OK)
        mu_info("sim: the orgs released round %" PRIu64 "'s adapter (audit log %s/%s)", round,
                s->opts->audit_dir, HO_GOV_LOG_FILE);
    return rc;
}

/* ---- outputs ------------------------------------------------------------------------------*/

static int export_global(sim *s, const char *dir, mu_diag *diag)
{
    int rc = ho_mkdirs(dir, diag);
    if (rc != MU_OK)
        return rc;
    size_t dim;
    const float *g = co_round_global(s->r, &dim);
    char path[CO_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/global.f32", dir);
    size_t len = wi_blob_len(dim);
    unsigned char *blob = malloc(len ? len : 1);
    if (!blob)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
    wi_blob_encode(blob, len, g, dim); /* little-endian whatever the host, as serve streams it */
    rc = mu_write_file_atomic(path, blob, len, diag); /* old or new file after a crash */
    free(blob);
    if (rc != MU_OK)
        return rc;
    if (!s->eng)
        return MU_OK;
    return ho_peft_write(cl_engine_model(s->eng[0]), g, dim, dir, s->cfg->model_name, diag);
}

static void sim_free(sim *s)
{
    for (uint32_t i = 0; s->orgs && i < s->n; i++) {
        ho_org_free(s->orgs[i].h);
        cl_round_log_free(s->orgs[i].rounds);
        ho_reply_deinit(&s->orgs[i].rep);
        free(s->orgs[i].held);
        free(s->orgs[i].replay);
    }
    free(s->orgs);
    free(s->roster);
    for (int i = 0; i < s->n_eng; i++)
        cl_engine_free(s->eng[i]);
    free(s->eng);
    for (size_t i = 0; i < s->n_data; i++)
        tr_data_free(s->data[i]);
    free(s->data);
    free(s->split_tokens);
    free(s->round_wall);
    free(s->global0);
    sim_orgs_free(s->orgrep);
    ho_gov_free(s->gov);
    co_round_free(s->r);
}

int sim_run(const sim_config *cfg, const sim_run_opts *opts, sim_result *res, mu_diag *diag)
{
    memset(res, 0, sizeof *res);
    sim s = {.cfg = cfg, .opts = opts, .t0 = mu_now()};
    s.last_event_wall = s.t0;
    int rc = sa_init();
    if (rc != MU_OK)
        return mu_diag_set(diag, rc, "libsodium failed to initialise");
    s.threads = opts->sequential ? 1 : cfg->threads > 0 ? cfg->threads : omp_get_num_procs();
    omp_set_max_active_levels(1); /* nested regions run on one thread */
    tr_threads_set(s.threads);
    if (cfg->checkpoint && opts->config_path &&
        (rc = co_hash_file(opts->config_path, s.config_hash, diag)) != MU_OK)
        return rc;
    if ((rc = load_data(&s, diag)) != MU_OK || (rc = make_orgs(&s, diag)) != MU_OK ||
        (rc = sim_orgs_open(&s, diag)) != MU_OK || (rc = make_engines(&s, diag)) != MU_OK ||
        (rc = sim_make_round(&s, diag)) != MU_OK || (rc = sim_register_orgs(&s, diag)) != MU_OK)
        goto out;
    mu_info("sim: %u orgs, adapter of %zu values, %d thread%s%s", s.n, s.dim, s.threads,
            s.threads == 1 ? "" : "s", cfg->synthetic_dim ? ", synthetic updates" : "");
    if ((rc = sim_gov_open(&s, diag)) != MU_OK || (rc = loop(&s, diag)) != MU_OK ||
        (rc = gov_release(&s, diag)) != MU_OK)
        goto out;
    if (opts->out_dir && (rc = export_global(&s, opts->out_dir, diag)) != MU_OK)
        goto out;
    size_t dim, nh;
    const float *g = co_round_global(s.r, &dim);
    const co_metrics *h = co_round_history(s.r, &nh);
    res->global = malloc(dim * sizeof *g);
    res->history = malloc((nh ? nh : 1) * sizeof *h);
    if (!res->global || !res->history) {
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        sim_result_deinit(res);
        goto out;
    }
    memcpy(res->global, g, dim * sizeof *g);
    memcpy(res->history, h, nh * sizeof *h);
    res->round_wall_s = s.round_wall; /* one per ROUND event, as the history */
    s.round_wall = NULL;
    res->dim = dim;
    res->n_history = nh;
    res->rounds = s.rounds;
    res->completed = s.completed;
    res->aborted = s.aborted;
    res->virtual_s = s.now;
    res->late_rejected = s.late_rejected;
    res->orgs_dropped_in = s.dropped_in;
    res->orgs_left_in = s.left_in;
    res->restarts = s.restarts;
    res->replays = s.replays;
    for (uint32_t i = 0; i < s.n; i++) {
        ho_org_stats st;
        ho_org_get_stats(s.orgs[i].h, &st);
        res->tasks_acted += st.acted;
        res->tasks_repeated += st.repeats;
    }
    res->wall_s = mu_now() - s.t0;
out:
    sim_free(&s);
    return rc;
}

void sim_result_deinit(sim_result *res)
{
    free(res->global);
    free(res->history);
    free(res->round_wall_s);
    memset(res, 0, sizeof *res);
}

void sim_print_table(FILE *out, const sim_result *res)
{
    const co_metrics *h = res->history;
    fprintf(out, "%5s  %-5s  %-9s  %10s  %8s  %9s  %7s  %10s  %10s  %9s  %8s\n", "round", "kind",
            "outcome", "loss", "selected", "completed", "dropped", "MB in", "MB out", "virtual s",
            "wall s");
    for (size_t i = 0; i < res->n_history; i++) {
        char loss[32] = "-";
        if (isfinite(h[i].loss))
            snprintf(loss, sizeof loss, "%.5f", h[i].loss);
        fprintf(out,
                "%5" PRIu64 "  %-5s  %-9s  %10s  %8u  %9u  %7u  %10.2f  %10.2f  %9.1f  %8.2f\n",
                h[i].round, h[i].kind == CO_ROUND_EVAL ? "eval" : "train",
                h[i].outcome == CO_ROUND_COMPLETED ? "completed" : "aborted", loss,
                h[i].orgs_selected, h[i].orgs_completed, h[i].orgs_dropped, h[i].bytes_in / 1e6,
                h[i].bytes_out / 1e6, h[i].t_end - h[i].t_start,
                i < res->rounds && res->round_wall_s ? res->round_wall_s[i] : NAN);
    }
    fprintf(out,
            "%" PRIu64 " rounds (%" PRIu64 " completed, %" PRIu64 " aborted) in %.2f s wall, "
            "%.1f s virtual\n",
            res->rounds, res->completed, res->aborted, res->wall_s, res->virtual_s);
    if (res->restarts || res->replays)
        fprintf(out,
                "%" PRIu64 " coordinator restart(s), %" PRIu64 " replayed task(s); the orgs "
                "acted on %" PRIu64 " tasks and did not act on %" PRIu64 " repeats\n",
                res->restarts, res->replays, res->tasks_acted, res->tasks_repeated);
}
