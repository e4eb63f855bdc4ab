/* nd_join.c - `mutual join`: one org's loop over gRPC around the participant core (cl_).
 *
 *   Join -> loop { PullTask (long poll) -> [DownloadAdapter] -> cl_participant_handle_task
 *                  -> PushStage / UploadMasked for each outgoing message }
 *
 * A coordinator that goes away (UNAVAILABLE, a deadline) sends the org back to Join with
 * exponential backoff; registering again with the same key gives the same id, so a restarted
 * coordinator (resumed from its checkpoint) and the org pick up where they were. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cl_participant.h"
#include "co_wire.h"
#include "gv_store.h"
#include "ho_bundle.h"
#include "ho_gov.h"
#include "ho_org.h"
#include "mu_file.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "nd_internal.h"
#include "nd_orgcfg.h"
#include "nd_task.h"
#include "rpc_client.h"
#include "sa.h"
#include "tr_data.h"
#include "tr_hf.h"
#include "wi_blob.h"
#include "wi_stage.h"

#ifndef MUTUAL_VERSION
#define MUTUAL_VERSION "0.1.0"
#endif

#define UPLOAD_MIN_BYTES (64u << 10) /* messages at least this big go by UploadMasked */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    static const char m[] = "mutual: join: stopping after the current call (a second signal "
                            "quits at once)\n";
    g_stop = 1;
    ssize_t n = write(STDERR_FILENO, m, sizeof m - 1); /* async-signal-safe, unlike mu_log */
    (void)n;
}

typedef struct {
    nd_join_opts o;
    nd_orgcfg cfg;
    uint8_t pk[32], sk[64];
    tr_data *train, *eval;
    rpc_client *client;
    ho_org *h;            /* the participant and what it does with each task (host layer) */
    cl_round_log *rounds; /* IDENTITY_KEY.rounds: the rounds this org put a masked input into */
    ho_reply rep;
    cl_engine *engine;
    nd_fedcfg fed;
    uint64_t org_id;
    uint64_t last_round; /* the latest round this org has heard of (its LEAVE names it) */
    uint32_t poll_ms;
    float *global; /* (dim) the last downloaded adapter */
    size_t dim;
    ho_witness *wit;   /* --charter: the charter this org enforces; NULL: none */
    cl_member *roster; /* (n_roster) the charter's roster: the pinned cohort members */
    size_t n_roster;
    uint8_t witness[GV_WITNESS_BYTES]; /* the head countersigned last, for the next report */
    int has_witness;
    uint8_t release[HO_GOV_RELEASE_SIG_BYTES]; /* --release: our signature, for the next report */
    uint64_t release_round;
    int has_release;
    uint64_t bundle_want;  /* the last round whose release we signed: its bundle is wanted */
    uint64_t bundle_round; /* the last round whose release bundle we verified and stored */
} org;

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR && !g_stop)
        ;
}

/* Transport trouble worth a reconnect rather than giving up. */
static int transient(grpc_status_code c)
{
    return c == GRPC_STATUS_UNAVAILABLE || c == GRPC_STATUS_DEADLINE_EXCEEDED ||
           c == GRPC_STATUS_CANCELLED || c == GRPC_STATUS_UNKNOWN || c == GRPC_STATUS_INTERNAL ||
           c == GRPC_STATUS_RESOURCE_EXHAUSTED;
}

/* ---- joining ------------------------------------------------------------------------------ */

/* The org: its identity and data, no round state. */
static int make_org(org *g, mu_diag *d)
{
    cl_participant_config pc = {0};
    pc.name = g->cfg.name;
    memcpy(pc.sign_sk, g->sk, sizeof g->sk);
    pc.train_tokens = tr_data_tokens(g->train);
    pc.n_train = tr_data_len(g->train);
    const tr_data *ev = g->eval ? g->eval : g->train;
    pc.eval_tokens = tr_data_tokens(ev);
    pc.n_eval = tr_data_len(ev);
    /* An org has its machine to itself: masks expand on every core it trains with. */
    pc.mask_threads = g->cfg.threads > 0 ? g->cfg.threads : omp_get_num_procs();
    pc.rounds = g->rounds;
    pc.members = g->cfg.members;
    pc.n_members = g->cfg.n_members;
    pc.min_cohort = g->cfg.min_cohort;
    if (g->wit) { /* the members' roster and minimum, not the coordinator's word */
        pc.members = g->roster;
        pc.n_members = g->n_roster;
        uint32_t floor = ho_witness_charter(g->wit)->privacy.min_cohort;
        if (floor > pc.min_cohort)
            pc.min_cohort = floor;
    }
    pc.allow_small_cohort = g->cfg.small_cohort;
    pc.min_ddg_noise = g->cfg.min_ddg_noise; /* the org's own noise pin (issue 13) */
    pc.require_ddg = g->cfg.require_ddg;
    if (g->cfg.deterministic) {
        pc.deterministic = 1;
        memcpy(pc.seed, g->cfg.seed, sizeof pc.seed);
    }
    g->h = ho_org_new(&pc, d);
    sodium_memzero(pc.sign_sk, sizeof pc.sign_sk);
    sodium_memzero(g->sk, sizeof g->sk); /* the host layer keeps the one copy it signs with */
    return g->h ? MU_OK : MU_ERR_INVALID;
}

/* Tells the host layer which coordinator instance we joined: a new one resumed from its
 * checkpoint and runs the round in flight again. */
static int set_instance(org *g, mu_diag *d)
{
    int rc = ho_org_coordinator(g->h, g->fed.instance, d);
    if (rc == 1)
        mu_info("join: the coordinator restarted; starting the round in flight over");
    return rc < 0 ? rc : MU_OK;
}

static int make_engine(org *g, const Mutual__V1__JoinReply *r, mu_diag *d)
{
    nd_fedcfg f;
    int rc = nd_fedcfg_decode(r->federation_config.data, r->federation_config.len, &f, d);
    if (rc)
        return rc;
    uint8_t h[32];
    if ((rc = nd_model_config_hash(g->cfg.base, h, d)))
        return rc;
    if (memcmp(h, f.config_sha256, 32) != 0)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "%s/config.json differs from the coordinator's base model (%s): "
                           "refusing to train a different model",
                           g->cfg.base, f.model_type);
    if (g->wit &&
        (rc = ho_witness_check_config(g->wit, f.has_training_hash ? f.training_hash : NULL, d)))
        return rc;
    if (g->engine) { /* rejoined: the federation must be the same */
        nd_fedcfg same = f;
        memcpy(same.instance, g->fed.instance, sizeof same.instance);
        if (memcmp(&same, &g->fed, sizeof same) != 0)
            return mu_diag_set(d, MU_ERR_INVALID,
                               "the coordinator's federation config changed while we were away");
        memcpy(g->fed.instance, f.instance, sizeof f.instance);
        return set_instance(g, d);
    }
    /* this org's memory and speed (training:), not the federation's: what is sent keeps
     * its form; bf16 changes the update by bf16 rounding, checkpointing not at all */
    cl_engine_opts eo = {.checkpointing = g->cfg.checkpointing, .bf16 = g->cfg.bf16};
    g->engine = cl_engine_new(g->cfg.base, &f.lora, f.seed, &eo, d);
    if (!g->engine)
        return MU_ERR_INVALID;
    cl_engine_log_opts(g->engine, "join");
    if (cl_engine_dim(g->engine) != f.dim)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "our LoRA vector has %zu values, the coordinator's %llu",
                           cl_engine_dim(g->engine), (unsigned long long)f.dim);
    g->fed = f;
    g->dim = (size_t)f.dim;
    g->global = calloc(g->dim, sizeof *g->global);
    return g->global ? set_instance(g, d) : MU_ERR_NOMEM;
}

/* A join or training task of a governed federation: verify the audit log it carries against our
 * charter chain and the head we countersigned before, then countersign its head (sent back
 * with our report). A fatal code (the org stops, saying why) when anything does not hold. */
static int witness(org *g, const uint8_t *log, size_t len, uint64_t round, mu_diag *d)
{
    if (!len)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "round %llu: the coordinator sent no audit log, and the charter "
                           "requires one: stopping",
                           (unsigned long long)round);
    mu_diag why = {{0}};
    int rc = ho_witness_take(g->wit, log, len, g->witness, &why);
    if (rc != MU_OK)
        return mu_diag_set(d, rc, "round %llu: refusing the coordinator: %.440s",
                           (unsigned long long)round, why.msg);
    g->has_witness = 1;
    mu_info("join: round %llu: the audit log verifies against our charter; countersigned its "
            "head",
            (unsigned long long)round);
    return MU_OK;
}

/* One Join attempt. MU_OK; MU_ERR_IO for transport trouble (retry); anything else is final. */
static int join_once(org *g, mu_diag *d)
{
    Mutual__V1__JoinRequest req = MUTUAL__V1__JOIN_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_name = g->cfg.name;
    req.signing_public_key.data = g->pk;
    req.signing_public_key.len = 32;
    req.software_version = MUTUAL_VERSION;
    ProtobufCMessage *reply = NULL;
    rpc_status st = {0};
    int rc = rpc_client_unary(g->client, RPC_JOIN, &req.base, 10, &reply, &st);
    char pinned[240];
    if (rc != MU_OK && g->wit && rpc_client_pin_refused(g->client, pinned, sizeof pinned))
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "refusing the coordinator: %.240s: charter version %llu names "
                           "another coordinator certificate (no request was sent to it)",
                           pinned, (unsigned long long)ho_witness_charter(g->wit)->version);
    if (rc != MU_OK) {
        if (transient(st.code))
            return mu_diag_set(d, MU_ERR_IO, "join: %s: %s", rpc_status_name(st.code), st.message);
        return mu_diag_set(d, rc, "join refused: %s: %s", rpc_status_name(st.code), st.message);
    }
    Mutual__V1__JoinReply *r = (Mutual__V1__JoinReply *)reply;
    g->org_id = r->org_id;
    g->poll_ms = r->poll_timeout_ms ? r->poll_timeout_ms : 20000;
    if (r->org_id == 0 || r->org_id > UINT32_MAX)
        rc = mu_diag_set(d, MU_ERR_PROTOCOL, "join: the coordinator gave us org id %llu",
                         (unsigned long long)r->org_id);
    else
        ho_org_set_id(g->h, (uint32_t)r->org_id);
    if (rc == MU_OK)
        rc = make_engine(g, r, d);
    if (rc == MU_OK && g->wit) /* a log that forks from our head: stop before any task */
        rc = witness(g, r->audit_log.data, r->audit_log.len, r->current_round, d);
    if (rc == MU_OK && r->current_round > g->last_round)
        g->last_round = r->current_round;
    if (rc == MU_OK)
        mu_info("join: '%s' joined federation '%s' as org %llu (round %llu)", g->cfg.name,
                r->federation_name, (unsigned long long)r->org_id,
                (unsigned long long)r->current_round);
    protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

/* Joins, retrying with exponential backoff while the coordinator is unreachable. */
static int join_retry(org *g, mu_diag *d)
{
    double wait = g->cfg.backoff_initial_s, since = mu_now();
    double give_up = g->o.give_up_s > 0 ? g->o.give_up_s : g->cfg.give_up_s;
    for (;;) {
        int rc = join_once(g, d);
        if (rc != MU_ERR_IO || g_stop)
            return rc;
        if (give_up > 0 && mu_now() - since > give_up) {
            char last[sizeof d->msg];
            snprintf(last, sizeof last, "%s", d->msg);
            return mu_diag_set(d, MU_ERR_TIMEOUT,
                               "no coordinator for %.0f s (wrong certificate or CA, or it is "
                               "down): %.400s",
                               give_up, last);
        }
        if (rpc_client_tls_failed(g->client, NULL, 0)) /* it answers, but TLS is refused */
            mu_warn("join: %s; retrying in %.1f s", d->msg, wait);
        else
            mu_warn("join: coordinator unreachable (%s); retrying in %.1f s", d->msg, wait);
        sleep_s(wait);
        wait = fmin(wait * 2, g->cfg.backoff_max_s);
    }
}

/* ---- one task ------------------------------------------------------------------------------ */

static int download(org *g, uint64_t round, mu_diag *d)
{
    Mutual__V1__DownloadAdapterRequest req = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_id = g->org_id;
    req.round = round;
    rpc_blob b = {0};
    rpc_status st = {0};
    int rc = rpc_client_download(g->client, &req, 120, wi_blob_len(g->dim), &b, &st);
    if (rc != MU_OK)
        return mu_diag_set(d, transient(st.code) ? MU_ERR_IO : rc, "download: %s: %s",
                           rpc_status_name(st.code), st.message);
    mu_diag bd = {{0}};
    rc = wi_blob_decode(g->global, g->dim, b.data, b.len, &bd);
    free(b.data);
    if (rc != MU_OK)
        return mu_diag_set(d, rc, "download: %.400s", bd.msg);
    return MU_OK;
}

/* --charter: fetch the coordinator's last release bundle, verify it against our own charter
 * chain (ho_bundle_verify: the log, its release quorum, the adapter the log names) and keep
 * it as IDENTITY_KEY.release-RRRRRR.bundle: the federation's state, ours to take elsewhere.
 * Never fatal: a bundle that does not verify is refused (and said so), not stored. */
static void fetch_bundle(org *g)
{
    Mutual__V1__DownloadAdapterRequest req = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_id = g->org_id;
    req.kind = 1;
    rpc_blob b = {0};
    rpc_status st = {0};
    if (rpc_client_download(g->client, &req, 120, HO_BUNDLE_MAX, &b, &st) != MU_OK) {
        mu_debug("join: no release bundle: %s: %s", rpc_status_name(st.code), st.message);
        return;
    }
    char dir[ND_PATH_MAX], path[ND_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", g->cfg.identity_key);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    gv_signed *chain = NULL;
    size_t n = 0;
    uint64_t round = 0;
    mu_diag d = {{0}};
    int rc = gv_chain_load(g->o.charter_path, &chain, &n, &d);
    if (rc == MU_OK)
        rc = ho_bundle_verify(b.data, b.len, chain, n, dir, &round, &d);
    free(chain);
    if (rc != MU_OK) {
        mu_warn("join: refusing the coordinator's release bundle: %s", d.msg);
    } else if (round > g->bundle_round) {
        snprintf(path, sizeof path, "%s.release-%06llu.bundle", g->cfg.identity_key,
                 (unsigned long long)round);
        if ((rc = mu_write_file_atomic(path, b.data, b.len, &d)) != MU_OK) {
            mu_warn("join: cannot store the release bundle: %s", d.msg);
        } else {
            g->bundle_round = round;
            mu_info("join: the release bundle of round %llu verifies against our charter; kept "
                    "as %s",
                    (unsigned long long)round, path);
        }
    }
    free(b.data);
}

/* Pushes one message with the host layer's signature. MU_OK; MU_ERR_IO (reconnect); other codes:
 * the coordinator refused it (logged; the org goes on pulling). */
static int push(org *g, uint64_t round, uint32_t stage, const cl_msg *m,
                const uint8_t sig[HO_SIG_BYTES], mu_diag *d)
{
    rpc_status st = {0};
    int rc;
    if (m->len >= UPLOAD_MIN_BYTES) {
        rpc_upload_meta meta = {g->org_id, round, stage, sig, HO_SIG_BYTES};
        Mutual__V1__UploadMaskedReply *r = NULL;
        rc = rpc_client_upload(g->client, &meta, m->bytes, m->len, 0, 120, &r, &st);
        if (r)
            protobuf_c_message_free_unpacked(&r->base, NULL);
    } else {
        Mutual__V1__PushStageRequest req = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
        req.api_version = RPC_API_VERSION;
        req.org_id = g->org_id;
        req.round = round;
        req.stage = stage;
        req.payload.data = m->bytes;
        req.payload.len = m->len;
        req.signature.data = (uint8_t *)sig;
        req.signature.len = HO_SIG_BYTES;
        if (g->has_witness && stage == WI_STAGE_REPORT) { /* the head we countersigned */
            req.witness.data = g->witness;
            req.witness.len = sizeof g->witness;
        }
        if (g->has_release && stage == WI_STAGE_REPORT) {
            req.release_signature.data = g->release;
            req.release_signature.len = sizeof g->release;
            req.release_round = g->release_round;
        }
        ProtobufCMessage *r = NULL;
        rc = rpc_client_unary(g->client, RPC_PUSH_STAGE, &req.base, 60, &r, &st);
        if (r)
            protobuf_c_message_free_unpacked(r, NULL);
        if (rc == MU_OK && req.witness.len)
            g->has_witness = 0;
        if (rc == MU_OK && req.release_signature.len) {
            g->has_release = 0;
            if (g->release_round > g->bundle_want)
                g->bundle_want = g->release_round;
        }
    }
    if (rc == MU_OK && g->wit && g->bundle_want > g->bundle_round)
        fetch_bundle(g);
    if (rc == MU_OK)
        return MU_OK;
    if (transient(st.code) && st.code != GRPC_STATUS_DEADLINE_EXCEEDED)
        return mu_diag_set(d, MU_ERR_IO, "push: %s: %s", rpc_status_name(st.code), st.message);
    mu_warn("join: round %llu stage %u: the coordinator refused our message: %s: %s",
            (unsigned long long)round, stage, rpc_status_name(st.code), st.message);
    return rc;
}

/* --release: after downloading the global the last logged round produced, sign its release
 * if it is the adapter the audit log names (sent with the next report). */
static void offer_release(org *g)
{
    mu_diag why = {{0}};
    int rc =
        ho_witness_release_sign(g->wit, g->global, g->dim, &g->release_round, g->release, &why);
    if (rc == MU_OK) {
        g->has_release = 1;
        mu_info("join: signed the release of round %llu (its global is the one the audit log "
                "names)",
                (unsigned long long)g->release_round);
    } else if (rc != MU_ERR_STATE) {
        mu_warn("join: %s", why.msg);
    }
}

/* The federation is over: check the final log, and with --release sign the release of the
 * last round and send it (with the countersigned head) in a governance-only push. */
static int on_done(org *g, const Mutual__V1__Task *task, mu_diag *d)
{
    int rc = witness(g, task->audit_log.data, task->audit_log.len, g->last_round, d);
    if (rc != MU_OK || !g->o.release || !g->dim)
        return rc;
    mu_diag dd = {{0}};
    if (download(g, g->last_round, &dd) != MU_OK) {
        mu_warn("join: cannot fetch the final adapter to release it: %s", dd.msg);
        return MU_OK;
    }
    offer_release(g);
    Mutual__V1__PushStageRequest req = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_id = g->org_id;
    req.round = g->release_round;
    req.stage = ND_STAGE_GOVERNANCE;
    req.witness.data = g->witness;
    req.witness.len = g->has_witness ? sizeof g->witness : 0;
    req.release_signature.data = g->release;
    req.release_signature.len = g->has_release ? sizeof g->release : 0;
    req.release_round = g->release_round;
    uint8_t sig[HO_SIG_BYTES];
    ho_witness_push_sign(g->wit, g->org_id, req.round, req.stage, sig);
    req.signature.data = sig;
    req.signature.len = sizeof sig;
    ProtobufCMessage *r = NULL;
    rpc_status st = {0};
    if (rpc_client_unary(g->client, RPC_PUSH_STAGE, &req.base, 10, &r, &st) != MU_OK)
        mu_warn("join: could not send the release: %s: %s", rpc_status_name(st.code), st.message);
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    g->has_witness = g->has_release = 0;
    fetch_bundle(g); /* the last released round's, if the quorum has signed it by now */
    return MU_OK;
}

/* Test mode: DUMP/delta-RRRRRR-NAME.f32 = float32 LE [w, scale, clip, delta (dim)], delta
 * before clipping, as cl_ holds it between TRAIN and the masked input. */
static void dump_delta(org *g, const co_task *t)
{
    size_t dim = 0;
    const float *delta = cl_participant_delta(ho_org_participant(g->h), &dim);
    cl_train_info info;
    cl_participant_last_train(ho_org_participant(g->h), &info);
    if (!delta || info.round != t->cfg.round)
        return;
    char path[ND_PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/delta-%06llu-%s.f32", g->o.dump_dir,
             (unsigned long long)t->cfg.round, g->cfg.name);
    float hdr[3] = {(float)info.weight, (float)t->cfg.scale, (float)t->cfg.clip};
    size_t len = wi_blob_len(3 + dim);
    unsigned char *blob = malloc(len);
    mu_diag d = {{0}};
    int rc = MU_ERR_NOMEM;
    if (blob) { /* little-endian on any host, as the comment above and its reader say */
        wi_blob_encode(blob, wi_blob_len(3), hdr, 3);
        wi_blob_encode(blob + wi_blob_len(3), len - wi_blob_len(3), delta, dim);
        rc = mu_write_file_atomic(path, blob, len, &d);
        free(blob);
    }
    if (rc != MU_OK)
        mu_error("join: cannot write %s: %s", path, d.msg[0] ? d.msg : mu_strerror(rc));
}

/* Acts on a task the host layer took (HO_ACT) and pushes the answer. MU_OK (go on),
 * MU_ERR_IO (reconnect), or a fatal code. */
static int do_task(org *g, const co_task *t, mu_diag *d)
{
    uint64_t round = t->cfg.round;
    int rc = MU_OK;
    double t0 = mu_now();
    if (ho_task_needs_global(t) && (rc = download(g, round, d)) != MU_OK)
        return rc;
    if (t->kind == CO_TASK_TRAIN && g->wit && g->o.release)
        offer_release(g);
    if (g->wit && t->n_cohort && (rc = ho_witness_cohort_check(g->wit, t, d)) != MU_OK)
        return rc; /* a member that left, in the cohort: the coordinator ignores its notice */
    ho_reply *rep = &g->rep;
    ho_verdict v = ho_org_act(g->h, g->engine, t, g->global, g->dim, rep);
    if (v == HO_FATAL)
        return mu_diag_set(d, rep->rc, "%s", rep->diag.msg);
    if (v != HO_PUSH)
        return MU_OK; /* ignored, or out of this round: the host layer logged why */
    if (t->kind == CO_TASK_TRAIN) {
        cl_train_info info;
        cl_participant_last_train(ho_org_participant(g->h), &info);
        mu_info("join: round %llu: trained %.0f tokens, loss %.4f, weight %.0f (%.2f s)",
                (unsigned long long)round, info.tokens,
                info.tokens > 0 ? info.loss_sum / info.tokens : NAN, info.weight, mu_now() - t0);
        if (g->o.dump_dir)
            dump_delta(g, t);
    }
    if (g->o.die_round == round && (uint32_t)g->o.die_stage == rep->stage) {
        int sig = g->o.die_signal ? g->o.die_signal : SIGKILL;
        mu_warn("join: test mode: %s myself in round %llu before stage %u",
                sig == SIGKILL ? "killing" : "stopping", (unsigned long long)round, rep->stage);
        raise(sig);
    }
    if (g_stop && t->kind == CO_TASK_TRAIN) { /* it cannot reach the sum: leave instead */
        mu_info("join: stopping: round %llu's training is not reported", (unsigned long long)round);
        cl_outbox_clear(&rep->out);
        return MU_OK;
    }
    for (size_t i = 0; i < rep->out.count && rc == MU_OK; i++) {
        rc = push(g, round, rep->stage, &rep->out.items[i], rep->sigs[i], d);
        if (rc != MU_OK && rc != MU_ERR_IO)
            rc = MU_OK; /* refused: logged; the coordinator drops us for the round */
    }
    cl_outbox_clear(&rep->out);
    return rc;
}

/* Pulls and works until the federation is over (1), transport trouble (MU_ERR_IO), a signal
 * (MU_OK) or a fatal error. What each task means is the host layer's (ho_org.h). */
static int work(org *g, mu_diag *d)
{
    while (!g_stop) {
        Mutual__V1__PullTaskRequest req = MUTUAL__V1__PULL_TASK_REQUEST__INIT;
        req.api_version = RPC_API_VERSION;
        req.org_id = g->org_id;
        ProtobufCMessage *reply = NULL;
        rpc_status st = {0};
        int rc = rpc_client_unary(g->client, RPC_PULL_TASK, &req.base, g->poll_ms / 1e3 + 10,
                                  &reply, &st);
        if (rc != MU_OK) {
            if (st.code == GRPC_STATUS_NOT_FOUND || transient(st.code))
                return mu_diag_set(d, MU_ERR_IO, "pull: %s: %s", rpc_status_name(st.code),
                                   st.message);
            return mu_diag_set(d, rc, "pull refused: %s: %s", rpc_status_name(st.code), st.message);
        }
        Mutual__V1__Task *task = (Mutual__V1__Task *)reply;
        co_task t;
        ho_verdict v = ho_org_take(g->h, task->payload.data, task->payload.len, &t, &g->rep);
        uint32_t retry = task->retry_after_ms;
        mu_diag md = {{0}};
        rc = v == HO_ACT ? nd_task_mirror_check(task, &t, &md) : MU_OK;
        if (rc != MU_OK) {
            protobuf_c_message_free_unpacked(reply, NULL);
            co_task_deinit(&t);
            return mu_diag_set(d, rc, "the coordinator sent a task that contradicts itself: %.400s",
                               md.msg);
        }
        if (v == HO_ACT && t.kind == CO_TASK_TRAIN && g->wit) /* the members' audit log */
            rc = witness(g, task->audit_log.data, task->audit_log.len, t.cfg.round, d);
        if (v == HO_STOP && g->wit)
            rc = on_done(g, task, d);
        protobuf_c_message_free_unpacked(reply, NULL);
        if (rc != MU_OK) {
            if (v == HO_ACT)
                co_task_deinit(&t);
            return rc;
        }
        if (v == HO_FATAL)
            return mu_diag_set(d, g->rep.rc, "%s", g->rep.diag.msg);
        if (v == HO_STOP)
            return 1;
        if (v == HO_WAIT) {
            sleep_s(g->rep.repeat ? g->rep.backoff_s : retry / 1e3);
            continue;
        }
        if (t.cfg.round > g->last_round)
            g->last_round = t.cfg.round;
        rc = do_task(g, &t, d);
        co_task_deinit(&t);
        if (rc != MU_OK)
            return rc;
    }
    return MU_OK;
}

/* Stopped by a signal: tells the coordinator (a signed LEAVE report), so that the round in
 * flight drops this org now rather than at its stage's deadline. One try, briefly: the org
 * is going away whatever the answer. */
static void say_leave(org *g)
{
    uint8_t msg[CO_REPORT_BYTES], sig[HO_SIG_BYTES];
    ho_org_leave_message(g->h, g->last_round, msg, sig);
    Mutual__V1__PushStageRequest req = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_id = g->org_id;
    req.round = g->last_round;
    req.stage = WI_STAGE_REPORT;
    req.payload.data = msg;
    req.payload.len = sizeof msg;
    req.signature.data = sig;
    req.signature.len = sizeof sig;
    ProtobufCMessage *r = NULL;
    rpc_status st = {0};
    if (rpc_client_unary(g->client, RPC_PUSH_STAGE, &req.base, 5, &r, &st) == MU_OK)
        mu_info("join: told the coordinator that '%s' leaves (round %llu)", g->cfg.name,
                (unsigned long long)g->last_round);
    else
        mu_warn("join: could not tell the coordinator that we leave: %s: %s",
                rpc_status_name(st.code), st.message);
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
}

/* --leave: the member's signed notice (mutual charter leave) in a governance push. MU_OK once
 * the coordinator accepted it; its refusal (a forged notice, a member gone already) else. */
static int send_leave(org *g, mu_diag *d)
{
    char *b = NULL;
    size_t n = 0;
    int rc = mu_read_file(g->o.leave_path, GV_LEAVE_MAX_BYTES, &b, &n, d);
    if (rc)
        return rc;
    Mutual__V1__PushStageRequest req = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_id = g->org_id;
    req.round = g->last_round ? g->last_round : 1;
    req.stage = ND_STAGE_GOVERNANCE;
    req.leave_notice.data = (uint8_t *)b;
    req.leave_notice.len = n;
    uint8_t sig[HO_SIG_BYTES];
    ho_witness_push_sign(g->wit, g->org_id, req.round, req.stage, sig);
    req.signature.data = sig;
    req.signature.len = sizeof sig;
    Mutual__V1__PushStageReply *r = NULL;
    rpc_status st = {0};
    rc = rpc_client_push_stage(g->client, &req, 10, &r, &st);
    free(b);
    if (rc != MU_OK)
        return mu_diag_set(d, rc, "the coordinator refused the leave notice %s: %s: %s",
                           g->o.leave_path, rpc_status_name(st.code), st.message);
    mu_info("join: the coordinator accepted the leave notice of '%s'%s%s: this member takes no "
            "further part (the release bundles it kept stay its own)",
            g->cfg.name, r->reason[0] ? ": " : "", r->reason);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return MU_OK;
}

/* ---- setup ---------------------------------------------------------------------------------- */

/* The once-per-round record, next to the identity key; the federation is named by the
 * coordinator address of our own config (never by anything the coordinator says). */
static int open_rounds(org *g, mu_diag *d)
{
    char path[ND_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s.rounds", g->cfg.identity_key);
    uint8_t fed[CL_FEDERATION_BYTES];
    crypto_generichash(fed, sizeof fed, (const uint8_t *)g->cfg.address, strlen(g->cfg.address),
                       (const uint8_t *)"mutual-rounds", 13);
    g->rounds = cl_round_log_open(path, fed, d);
    return g->rounds ? MU_OK : MU_ERR_IO;
}

static int setup(org *g, mu_diag *d)
{
    int rc = nd_orgcfg_load(g->o.config_path, &g->cfg, d);
    if (rc)
        return rc;
    int insecure = g->o.insecure || g->cfg.insecure;
    if (insecure ? (rc = nd_insecure_check("coordinator address", g->cfg.address, d))
                 : (rc = nd_tls_check_org(&g->cfg, d)))
        return rc; /* before anything is loaded or dialed */
    if ((rc = nd_identity_load(g->cfg.identity_key, g->pk, g->sk, d)) || (rc = open_rounds(g, d)))
        return rc;
    int err = 0;
    g->train = tr_data_open(g->cfg.train, &err, d);
    if (!g->train)
        return err ? err : MU_ERR_IO;
    if (g->cfg.eval[0] && !(g->eval = tr_data_open(g->cfg.eval, &err, d)))
        return err ? err : MU_ERR_IO;
    tr_threads_set(g->cfg.threads);
    if (g->cfg.deterministic)
        mu_warn("join: testing.deterministic_seed is set: this org's rounding is predictable. "
                "Tests only.");
    if (g->cfg.small_cohort)
        mu_warn("join: testing.min_cohort is set: this org aggregates in cohorts of %u. Tests "
                "only.",
                g->cfg.min_cohort);
    if (g->o.charter_path) {
        char head[ND_PATH_MAX + 16];
        snprintf(head, sizeof head, "%s.head", g->cfg.identity_key);
        g->wit =
            ho_witness_open(g->o.charter_path, g->o.head_path ? g->o.head_path : head, g->sk, d);
        if (!g->wit)
            return MU_ERR_INVALID;
        if (ho_witness_roster(g->wit, &g->roster, &g->n_roster))
            return MU_ERR_NOMEM;
        mu_info("join: enforcing charter '%s' version %llu (%zu members)",
                ho_witness_charter(g->wit)->federation,
                (unsigned long long)ho_witness_charter(g->wit)->version, g->n_roster);
    } else if (g->cfg.n_members == 0)
        mu_warn("join: no cohort.members pinned in %s: this org will refuse every secure "
                "aggregation",
                g->o.config_path);
    if ((rc = make_org(g, d)))
        return rc;
    if (insecure)
        mu_warn("join: *** INSECURE: plaintext gRPC, the coordinator is not authenticated and "
                "our traffic is readable on the network. For local experiments only. ***");
    rpc_client_config cc = {0};
    cc.target = g->cfg.address;
    if (g->wit) { /* the members' charter names the coordinator: follow it (a handover) */
        const char *addr = ho_witness_charter(g->wit)->coord_addr;
        if (strcmp(addr, g->cfg.address))
            mu_info("join: charter version %llu names the coordinator %s (our config: %s)",
                    (unsigned long long)ho_witness_charter(g->wit)->version, addr, g->cfg.address);
        cc.target = addr;
        const uint8_t *fpr = ho_witness_charter(g->wit)->coord_fpr;
        if (!sodium_is_zero(fpr, GV_FPR_BYTES)) /* its certificate too: checked at handshake */
            cc.server_fingerprint = fpr;
    }
    cc.ca_path = g->cfg.ca;
    cc.cert_path = g->cfg.cert;
    cc.key_path = g->cfg.key;
    cc.server_name = g->cfg.server_name[0] ? g->cfg.server_name : NULL;
    cc.insecure = insecure;
    cc.wait_for_ready = 1;
    cc.max_message_bytes = 64u << 20;
    g->client = rpc_client_new(&cc, d);
    return g->client ? MU_OK : MU_ERR_IO;
}

int nd_join_run(const nd_join_opts *o, mu_diag *diag)
{
    if (sa_init() != MU_OK)
        return mu_diag_set(diag, MU_ERR_CRYPTO, "libsodium failed to initialise");
    org *g = calloc(1, sizeof *g);
    if (!g)
        return MU_ERR_NOMEM;
    g->o = *o;
    ho_reply_init(&g->rep);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the process at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = setup(g, diag);
    while (rc == MU_OK && !g_stop) {
        rc = join_retry(g, diag);
        if (rc != MU_OK)
            break;
        if (g->o.leave_path) {
            rc = send_leave(g, diag);
            break;
        }
        rc = work(g, diag);
        if (rc == 1) {
            mu_info("join: the coordinator says the federation is over; leaving");
            rc = MU_OK;
            break;
        }
        if (rc == MU_ERR_IO) {
            mu_warn("join: lost the coordinator (%s); reconnecting", diag->msg);
            rc = MU_OK;
            sleep_s(g->cfg.backoff_initial_s);
        }
    }
    if (g_stop && g->client && g->h && g->org_id)
        say_leave(g);
    if (g_stop)
        mu_info("join: stopped by a signal");
    rpc_client_free(g->client);
    ho_org_free(g->h);
    ho_witness_free(g->wit);
    free(g->roster);
    cl_round_log_free(g->rounds);
    ho_reply_deinit(&g->rep);
    cl_engine_free(g->engine);
    tr_data_free(g->train);
    tr_data_free(g->eval);
    free(g->global);
    sodium_memzero(g->sk, sizeof g->sk);
    free(g);
    return rc;
}
