/* nd_serve.c - `mutual serve`: the rpc handlers around the sans-IO round machine.
 *
 * One thread (rpc_server_run's) owns everything here: the co_round, the held long polls, the
 * adapter blob being streamed. Time is mu_now(). After every call that can change the round
 * (a push, an upload, a tick) `pump` drains the round's events (checkpoint, export, a JSON
 * line on stdout) and answers the held polls whose task may have changed. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "co_checkpoint.h"
#include "co_config.h"
#include "co_round.h"
#include "mu_grow.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "nd_internal.h"
#include "nd_serve_int.h"
#include "nd_task.h"
#include "rpc_server.h"
#include "sa.h"
#include "tr_hf.h"
#include "ho_coord.h"
#include "wi_push.h"

#ifndef MUTUAL_VERSION
#define MUTUAL_VERSION "0.1.0"
#endif

/* ---- small helpers ----------------------------------------------------------------------- */

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- tasks and held polls ------------------------------------------------------------------ */

/* Answers `call` with task t (the co_task encoding travels in Task.payload). */
static void reply_task(server *s, rpc_call *call, const co_task *t, double now)
{
    size_t cap = co_task_encoded_len(t), len = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf || co_task_encode(t, buf, cap, &len) != MU_OK) {
        free(buf);
        rpc_call_fail(call, GRPC_STATUS_INTERNAL, "cannot encode the task");
        return;
    }
    Mutual__V1__Task m = MUTUAL__V1__TASK__INIT;
    m.api_version = RPC_API_VERSION;
    nd_task_mirror_set(&m, t);
    int in_round = m.kind != MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT &&
                   m.kind != MUTUAL__V1__TASK_KIND__TASK_KIND_SHUTDOWN;
    m.payload.data = buf;
    m.payload.len = len;
    if (in_round && isfinite(t->deadline) && t->deadline > 0)
        m.stage_deadline_unix_ms = (uint64_t)(wall_ms() + (t->deadline - now) * 1e3);
    m.retry_after_ms = t->kind == CO_TASK_WAIT ? 50 : 0;
    if (s->gov && (t->kind == CO_TASK_TRAIN || t->kind == CO_TASK_DONE) && /* for witnesses */
        ho_gov_log_bytes(s->gov, (const uint8_t **)&m.audit_log.data, &m.audit_log.len, NULL))
        m.audit_log.len = 0;
    nd_srv_gov_tasked(s, t);
    nd_srv_count(s, t->org_id, 0, protobuf_c_message_get_packed_size(&m.base));
    if (t->kind == CO_TASK_DONE) {
        nd_srv_traffic_of(s, t->org_id);
        if (t->org_id <= s->n_traffic)
            s->told_done[t->org_id - 1] = 1;
    }
    rpc_call_reply(call, &m.base);
    free(buf);
}

static void unhold(server *s, size_t i)
{
    s->held[i] = s->held[--s->n_held];
}

/* Re-checks every held poll whose round version changed, and each one at least every second
 * so that an org waiting in a poll stays "connected" for cohort selection; answers WAIT near
 * the call's deadline. */
static void answer_polls(server *s, double now, int all)
{
    uint64_t v = co_round_version(s->r);
    for (size_t i = 0; i < s->n_held;) {
        held *h = &s->held[i];
        double left = rpc_call_deadline(h->call) - now;
        if (now - h->since >= s->o.poll_s)
            left = 0; /* held long enough (JoinReply.poll_timeout_ms): answer WAIT */
        if (h->version == v && left > 0.5 && now - h->checked < 1.0 && !all) {
            i++;
            continue;
        }
        co_task t;
        if (co_round_next_task(s->r, h->org, now, &t) != MU_OK) {
            rpc_call *c = h->call;
            unhold(s, i);
            rpc_call_fail(c, GRPC_STATUS_NOT_FOUND, "org %u is not registered", h->org);
            continue;
        }
        if (t.kind == CO_TASK_WAIT && left > 0.5 && !all) {
            h->version = v;
            h->checked = now;
            i++;
            continue;
        }
        rpc_call *c = h->call;
        unhold(s, i);
        reply_task(s, c, &t, now);
    }
}

static void maybe_finish(server *s, double now)
{
    if (!s->done)
        return;
    int all_told = 1;
    co_status st;
    co_round_status(s->r, now, &st);
    for (uint32_t id = 1; id <= st.orgs_registered; id++)
        if (id > s->n_traffic || !s->told_done[id - 1])
            all_told = 0;
    int settled = nd_srv_gov_settled(s); /* a governed federation waits for the release */
    if ((all_told && settled) || now - s->done_at > s->o.linger_s) {
        mu_info("serve: the federation is done (%s); stopping",
                all_told && settled ? "every org was told" : "linger time over");
        rpc_server_stop(s->srv);
    }
}

/* Test mode (--crash-at R:S): SIGKILL as soon as round R's secure-agg stage S is open, before
 * any held poll is answered, so no org has seen that stage's task: the moment is the same on
 * every run whatever the scheduling (an org that had received its MASKED task would record the
 * round and, rightly, refuse to run it again after the restart). */
static void maybe_crash(server *s, double now)
{
    if (!s->o.crash_round)
        return;
    co_status st;
    co_round_status(s->r, now, &st);
    if (st.round == s->o.crash_round && st.phase == CO_PHASE_SECAGG &&
        st.stage >= s->o.crash_stage) {
        mu_warn("serve: test mode: killing myself in round %llu, stage %s",
                (unsigned long long)st.round, st.stage_name);
        raise(SIGKILL);
    }
}

static void pump(server *s, double now)
{
    co_event ev;
    while (ho_poll_event(s->r, &ev)) {
        if (ev.kind == CO_EVENT_ROUND) {
            nd_srv_on_round(s, &ev);
        } else if (ev.kind == CO_EVENT_DONE && !s->done) {
            s->done = 1;
            s->done_at = now;
            if (ev.reason[0])
                mu_warn("serve: %s; telling the orgs to leave", ev.reason);
            else
                mu_info("serve: all rounds done; telling the orgs to leave");
        }
    }
    maybe_crash(s, now);
    answer_polls(s, now, 0);
    maybe_finish(s, now);
}

/* ---- handlers ------------------------------------------------------------------------------ */

/* The registered org `id` if the caller may speak for it (its certificate names it), else
 * answers the call and returns NULL. */
static const co_org *authorize(server *s, rpc_call *call, uint64_t id, const char *what)
{
    const co_org *org = id <= UINT32_MAX ? co_round_org(s->r, (uint32_t)id) : NULL;
    if (!org) {
        mu_warn("serve: %s from '%s' refused: org id %llu is not registered", what,
                rpc_call_peer(call), (unsigned long long)id);
        rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "org id %llu is not registered; join first",
                      (unsigned long long)id);
        return NULL;
    }
    if (!s->insecure && strcmp(org->name, rpc_call_peer(call)) != 0) {
        mu_warn("serve: %s from '%s' refused: that certificate cannot speak for org %llu ('%s')",
                what, rpc_call_peer(call), (unsigned long long)id, org->name);
        rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED,
                      "your certificate does not name org %llu", (unsigned long long)id);
        return NULL;
    }
    if (nd_srv_gov_check(s, call, org->name, what) != MU_OK)
        return NULL;
    return org;
}

static void on_join(void *user, rpc_call *call, const Mutual__V1__JoinRequest *req)
{
    server *s = user;
    const char *peer = rpc_call_peer(call);
    if (!s->insecure && strcmp(peer, req->org_name) != 0) {
        mu_warn("serve: join refused: certificate '%s' asked to join as '%s'", peer, req->org_name);
        rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED,
                      "org_name '%s' is not the name in your certificate", req->org_name);
        return;
    }
    if (rpc_call_peer_is_operator(call)) { /* a read-only role: Status, not rounds */
        mu_warn("serve: join refused: '%s' holds an operator certificate", peer);
        rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED,
                      "an operator certificate cannot join as an org");
        return;
    }
    if (nd_srv_gov_check(s, call, req->org_name, "join") != MU_OK)
        return; /* before anything is registered or logged */
    uint32_t id = 0;
    mu_diag d = {{0}};
    if (s->gov && (req->signing_public_key.len != GV_PK_BYTES ||
                   ho_gov_admit(s->gov, req->org_name, req->signing_public_key.data,
                                (uint64_t)time(NULL), &d) != MU_OK)) {
        if (!d.msg[0])
            mu_diag_set(&d, MU_ERR_INVALID, "a signing key must be %d bytes", GV_PK_BYTES);
        mu_warn("serve: join refused for '%s' (%s): %s", req->org_name, peer, d.msg);
        rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "%s", d.msg);
        return;
    }
    co_status before;
    co_round_status(s->r, mu_now(), &before);
    int rc = co_round_register(s->r, req->org_name, req->signing_public_key.data, &id, &d);
    if (rc != MU_OK) {
        mu_warn("serve: join refused for '%s' (%s): %s", req->org_name, peer, d.msg);
        rpc_call_fail(call,
                      rc == MU_ERR_INVALID || rc == MU_ERR_CRYPTO ? GRPC_STATUS_PERMISSION_DENIED
                                                                  : rpc_status_from_err(rc),
                      "%s", d.msg);
        return;
    }
    co_status st;
    co_round_status(s->r, mu_now(), &st);
    if (st.orgs_registered > before.orgs_registered)
        mu_info("coordinator: registered org '%s' as id %u", req->org_name, id);
    mu_info("serve: org '%s' joined as id %u (software %s)", req->org_name, id,
            req->software_version);
    Mutual__V1__JoinReply r = MUTUAL__V1__JOIN_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.org_id = id;
    r.federation_name = s->cfg.name;
    r.current_round = st.round;
    r.federation_config.data = (uint8_t *)s->fedcfg;
    r.federation_config.len = s->fedcfg_len;
    r.poll_timeout_ms = (uint32_t)(s->o.poll_s * 1e3);
    if (s->gov && /* the log, admission included: the org checks it extends what it signed */
        ho_gov_log_bytes(s->gov, (const uint8_t **)&r.audit_log.data, &r.audit_log.len, NULL))
        r.audit_log.len = 0;
    nd_srv_count(s, id, protobuf_c_message_get_packed_size(&req->base),
                 protobuf_c_message_get_packed_size(&r.base));
    rpc_call_reply(call, &r.base);
}

static void on_pull(void *user, rpc_call *call, const Mutual__V1__PullTaskRequest *req)
{
    server *s = user;
    if (!authorize(s, call, req->org_id, "pull"))
        return;
    double now = mu_now();
    uint32_t id = (uint32_t)req->org_id;
    nd_srv_count(s, id, protobuf_c_message_get_packed_size(&req->base), 0);
    co_task t;
    co_round_next_task(s->r, id, now, &t);
    if (t.kind == CO_TASK_WAIT && rpc_call_deadline(call) - now > 0.5) {
        if (MU_GROW(&s->held, &s->cap_held, s->n_held + 1, 64) != MU_OK) {
            rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        for (size_t i = 0; i < s->n_held; i++) /* one poll per org: answer the older one */
            if (s->held[i].org == id) {
                rpc_call *old = s->held[i].call;
                unhold(s, i);
                reply_task(s, old, &t, now);
                co_round_next_task(s->r, id, now, &t);
                break;
            }
        s->held[s->n_held++] = (held){call, id, co_round_version(s->r), now, now};
        return;
    }
    reply_task(s, call, &t, now);
    maybe_finish(s, now);
}

static void on_cancelled(void *user, rpc_call *call)
{
    server *s = user;
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].call == call) {
            /* the org hung up (or we are stopping): it no longer counts as connected */
            uint32_t id = s->held[i].org;
            unhold(s, i);
            co_round_disconnect(s->r, id);
            mu_debug("serve: org %u went away (its poll was cancelled)", id);
            return;
        }
}

/* Common to PushStage and UploadMasked: the host layer checks the push signature, then the
 * round machine takes the message. Returns the gRPC status (OK; UNAUTHENTICATED for a bad
 * signature; else the rejection) and fills why. */
static grpc_status_code deliver(server *s, const co_org *org, uint64_t round, uint32_t stage,
                                const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len,
                                const char *what, char *why, size_t why_cap)
{
    double now = mu_now();
    mu_diag d = {{0}};
    int rc = ho_coord_deliver(s->r, org->id, round, stage, data, len, sig, sig_len, now, &d);
    if (rc != MU_OK) {
        snprintf(why, why_cap, "%.200s", d.msg[0] ? d.msg : mu_strerror(rc));
        mu_warn("serve: %s from '%s' round %llu stage %u refused (%s): %s", what, org->name,
                (unsigned long long)round, stage, mu_strerror(rc), why);
        pump(s, now);
        return rc == MU_ERR_CRYPTO ? GRPC_STATUS_UNAUTHENTICATED : rpc_status_from_err(rc);
    }
    mu_debug("serve: %s from '%s' round %llu stage %u: %zu bytes", what, org->name,
             (unsigned long long)round, stage, len);
    pump(s, now);
    return GRPC_STATUS_OK;
}

static void on_push(void *user, rpc_call *call, const Mutual__V1__PushStageRequest *req)
{
    server *s = user;
    const co_org *org = authorize(s, call, req->org_id, "push");
    if (!org)
        return;
    uint32_t id = org->id;
    nd_srv_count(s, id, protobuf_c_message_get_packed_size(&req->base), 0);
    if (req->stage == ND_STAGE_GOVERNANCE && /* witness and release only: signed, no payload */
        (req->payload.len || req->signature.len != WI_PUSH_SIG_BYTES ||
         wi_push_verify(req->signature.data, org->pk, org->id, req->round, req->stage, NULL, 0) !=
             MU_OK)) {
        mu_warn("serve: a governance push from '%s' refused: bad signature or a payload",
                org->name);
        rpc_call_fail(call, GRPC_STATUS_UNAUTHENTICATED, "bad push signature");
        return;
    }
    if (req->stage == ND_STAGE_GOVERNANCE && req->leave_notice.len) { /* mutual join --leave */
        nd_srv_gov_leave(s, org, call, req->leave_notice.data, req->leave_notice.len);
        return;
    }
    if (s->gov)
        nd_srv_gov_push(s, org->name, req);
    char why[RPC_REASON_MAX];
    if (req->stage == ND_STAGE_GOVERNANCE) { /* nothing for the round machine */
        Mutual__V1__PushStageReply gr = MUTUAL__V1__PUSH_STAGE_REPLY__INIT;
        gr.api_version = RPC_API_VERSION;
        gr.accepted = s->gov != NULL;
        gr.reason = s->gov ? "" : "this federation is not governed by a charter";
        rpc_call_reply(call, &gr.base);
        return;
    }
    grpc_status_code code =
        deliver(s, org, req->round, req->stage, req->payload.data, req->payload.len,
                req->signature.data, req->signature.len, "push", why, sizeof why);
    if (code != GRPC_STATUS_OK) {
        rpc_call_fail(call, code, "%s", why);
        return;
    }
    Mutual__V1__PushStageReply r = MUTUAL__V1__PUSH_STAGE_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.accepted = 1;
    r.reason = "";
    nd_srv_count(s, id, 0, protobuf_c_message_get_packed_size(&r.base));
    rpc_call_reply(call, &r.base);
}

static void on_upload(void *user, rpc_call *call, const rpc_upload *up)
{
    server *s = user;
    /* again (on_upload_check ran at the first chunk): a charter adopted meanwhile applies */
    const co_org *org = authorize(s, call, up->org_id, "upload");
    if (!org)
        return;
    uint32_t id = org->id;
    /* chunk framing: ~48 bytes of fields per MiB chunk besides the data */
    nd_srv_count(s, id, up->len + up->signature_len + 48 * (up->len / (1u << 20) + 1), 0);
    char why[RPC_REASON_MAX];
    grpc_status_code code = deliver(s, org, up->round, up->stage, up->data, up->len, up->signature,
                                    up->signature_len, "upload", why, sizeof why);
    if (code != GRPC_STATUS_OK) {
        rpc_call_fail(call, code, "%s", why);
        return;
    }
    Mutual__V1__UploadMaskedReply r = MUTUAL__V1__UPLOAD_MASKED_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.received_bytes = up->len;
    r.accepted = 1;
    r.reason = "";
    nd_srv_count(s, id, 0, protobuf_c_message_get_packed_size(&r.base));
    rpc_call_reply(call, &r.base);
}

/* An UploadMasked stream's first chunk: a caller that may not speak for the org it names is
 * answered now (authorize), before the rest of the stream is read or buffered. */
static int on_upload_check(void *user, rpc_call *call, const rpc_upload *up)
{
    return authorize(user, call, up->org_id, "upload") ? MU_OK : MU_ERR_PROTOCOL;
}

static void on_download(void *user, rpc_call *call, const Mutual__V1__DownloadAdapterRequest *req)
{
    server *s = user;
    const co_org *org = authorize(s, call, req->org_id, "download");
    if (!org)
        return;
    blob *b = s->cur;
    if (req->kind > 1) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "unknown download kind %u", req->kind);
        return;
    }
    if (req->kind == 1 && !(b = s->bundle)) {
        rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "no round has been released yet");
        return;
    }
    if (req->offset > b->len) {
        mu_warn("serve: download from '%s' refused: offset %llu is past the adapter (%zu bytes)",
                org->name, (unsigned long long)req->offset, b->len);
        rpc_call_fail(call, GRPC_STATUS_OUT_OF_RANGE, "offset %llu is past the adapter (%zu bytes)",
                      (unsigned long long)req->offset, b->len);
        return;
    }
    size_t n = b->len - req->offset, chunk = 1u << 20;
    nd_srv_count(s, org->id, protobuf_c_message_get_packed_size(&req->base),
                 n + (n / chunk + 1) * (RPC_SHA256_BYTES + 32));
    co_round_add_bytes(s->r, 0, n);
    co_status st;
    co_round_status(s->r, mu_now(), &st);
    b->refs++;
    rpc_call_stream_blob(call, st.round, b->data, b->len, req->offset, b->sha, chunk,
                         nd_srv_blob_release, b);
}

static void on_status(void *user, rpc_call *call, const Mutual__V1__StatusRequest *req)
{
    server *s = user;
    const char *peer = rpc_call_peer(call);
    if (!nd_status_allowed(&s->cfg, s->r, peer, rpc_call_peer_is_operator(call), s->insecure)) {
        mu_warn("serve: status refused: certificate '%s' is neither a member nor an operator",
                peer);
        rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED,
                      "certificate '%s' is neither a member of this federation nor an operator "
                      "(mutual certs issue --operator)",
                      peer);
        return;
    }
    if (!rpc_call_peer_is_operator(call) && nd_srv_gov_check(s, call, peer, "status") != MU_OK)
        return; /* a member's status: its roster certificate, as for its other calls */
    co_status st;
    co_round_status(s->r, mu_now(), &st);
    Mutual__V1__RoundMetrics m = MUTUAL__V1__ROUND_METRICS__INIT;
    Mutual__V1__StatusReply r = MUTUAL__V1__STATUS_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.software_version = MUTUAL_VERSION;
    r.round = st.round;
    r.stage = (char *)st.stage_name;
    r.orgs_registered = st.orgs_registered;
    r.orgs_connected = st.orgs_connected;
    r.orgs_in_cohort = st.orgs_in_cohort;
    r.federation_name = s->cfg.name;
    r.total_rounds = s->cfg.rounds;
    r.epsilon = st.epsilon;
    r.record_epsilon = st.record_epsilon;
    r.colluders = st.colluders;
    r.epsilon_no_colluders = st.epsilon_all_honest;
    r.epsilon_budget = st.epsilon_budget;
    r.delta = st.delta;
    if (st.has_last) {
        m.round = st.last.round;
        m.loss_sum = isfinite(st.last.loss) ? st.last.loss * st.last.tokens : 0;
        m.tokens = (uint64_t)st.last.tokens;
        m.orgs_completed = st.last.orgs_completed;
        m.orgs_dropped = st.last.orgs_dropped;
        m.duration_s = st.last.t_end - st.last.t_start;
        r.last_round = &m;
    }
    rpc_call_reply(call, &r.base);
}

static void on_tick(void *user, rpc_server *srv, double now)
{
    server *s = user;
    nd_srv_gov_tick(s, now);
    if (co_round_tick(s->r, now) != MU_OK)
        mu_error("serve: out of memory starting a round; trying again at the next tick");
    pump(s, now);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int resume(server *s, mu_diag *d)
{
    co_checkpoint ck;
    int rc = s->o.resume_bundle ? nd_srv_bundle_unpack(s, d) : MU_OK;
    if (rc != MU_OK)
        return rc;
    int governed = s->o.charter_path != NULL; /* the chain decides which configs may follow */
    rc = co_checkpoint_load(s->cfg.checkpoint_dir, governed ? NULL : s->cfg_hash,
                            s->o.accept_config_change, &ck, d);
    if (rc == MU_ERR_NOTFOUND) {
        mu_info("serve: no checkpoint in %s: a new federation", s->cfg.checkpoint_dir);
        return MU_OK;
    }
    if (rc == MU_OK && governed && (rc = nd_srv_gov_ckpt_config(s, ck.config_hash, d)) != MU_OK)
        co_checkpoint_deinit(&ck);
    if (rc != MU_OK)
        return rc;
    co_checkpoint_state_hash(&ck, s->ckpt_state); /* as written, before any key rotation */
    s->resumed_ckpt = 1;
    nd_rotate_pinned_keys(&s->cfg, ck.orgs, ck.n_orgs);
    rc = co_round_restore(s->r, &ck, d);
    if (rc == MU_OK)
        mu_info("serve: resumed from %s/%s after round %llu (%zu orgs registered)",
                s->cfg.checkpoint_dir, CO_CHECKPOINT_FILE, (unsigned long long)ck.round, ck.n_orgs);
    co_checkpoint_deinit(&ck);
    return rc;
}

static int setup(server *s, mu_diag *d)
{
    int rc = co_config_load(s->o.config_path, &s->cfg, d);
    if (rc)
        return rc;
    s->insecure = s->o.insecure || s->cfg.insecure;
    if (s->insecure ? (rc = nd_insecure_check("listen address", s->cfg.listen, d))
                    : (rc = nd_tls_check_server(&s->cfg, 1, d)))
        return rc; /* before anything is loaded or bound */
    if ((rc = co_hash_file(s->o.config_path, s->cfg_hash, d)) ||
        (rc = nd_model_spec_load(s->o.config_path, &s->spec, d)))
        return rc;
    tr_config mc;
    s->model = nd_model_skeleton(&s->spec, &mc, d);
    if (!s->model)
        return MU_ERR_INVALID;
    size_t n = 0;
    co_tensor *t = ho_lora_tensors(s->model, &n);
    if (!t)
        return MU_ERR_NOMEM;
    s->r = co_round_new(&s->cfg, t, n, d);
    free(t);
    if (!s->r)
        return MU_ERR_INVALID;
    if ((rc = resume(s, d)) || (rc = nd_srv_blob_refresh(s)))
        return rc;
    const co_privacy *pv = co_round_privacy(s->r);
    if (pv->org_on || pv->record_on) { /* the plan before training (docs/privacy.md) */
        size_t dim;
        double org, rec;
        co_round_global(s->r, &dim);
        co_privacy_epsilon(pv, s->cfg.rounds, &org, &rec);
        mu_info("serve: privacy plan (adapter of %zu values): after %llu released rounds epsilon "
                "%.4g org level, %.4g record level at delta %g; budget %g",
                dim, (unsigned long long)s->cfg.rounds, org, rec, pv->delta, pv->budget);
    }
    if (s->o.dump_dir) { /* the global the next round starts from, named by the last round */
        size_t nh = 0;
        const co_metrics *hist = co_round_history(s->r, &nh);
        if ((rc = nd_srv_dump_global(s, nh ? hist[nh - 1].round : 0, d)))
            return rc;
    }
    nd_fedcfg f = {0};
    snprintf(f.model_type, sizeof f.model_type, "%s", mc.family == TR_GPT2 ? "gpt2" : "llama");
    if ((rc = nd_model_config_hash(s->spec.base, f.config_sha256, d)))
        return rc;
    f.lora = s->spec.lora;
    f.seed = s->spec.seed;
    f.dim = (uint64_t)tr_lora_trainable_count(s->model);
    randombytes_buf(f.instance, sizeof f.instance);
    if ((rc = nd_srv_gov_open(s, f.instance, d)))
        return rc;
    if (s->gov) { /* the orgs compare it with their charter's */
        f.has_training_hash = 1;
        memcpy(f.training_hash, s->cfg_hash, sizeof f.training_hash);
    }
    if ((rc = nd_fedcfg_encode(&f, &s->fedcfg, &s->fedcfg_len)))
        return rc;
    mu_info("serve: federation '%s': %s, LoRA r=%d%s, %llu values (%.1f KiB) per update",
            s->cfg.name, s->spec.name, s->spec.lora.rank, s->spec.lora.freeze_a ? " frozen A" : "",
            (unsigned long long)f.dim, (double)f.dim * 4 / 1024);

    rpc_server_config rc_cfg = {0};
    rc_cfg.address = s->cfg.listen;
    rc_cfg.ca_path = s->cfg.tls_ca;
    rc_cfg.cert_path = s->cfg.tls_cert;
    rc_cfg.key_path = s->cfg.tls_key;
    rc_cfg.insecure = s->insecure;
    rc_cfg.max_message_bytes = (size_t)s->cfg.max_message_mb << 20;
    rc_cfg.max_upload_bytes = (size_t)s->cfg.max_message_mb << 22;
    rc_cfg.tick_ms = 20;
    if (s->insecure)
        mu_warn("serve: *** INSECURE: plaintext gRPC, no certificates, any peer may claim any "
                "org name. For local experiments only. ***");
    rpc_handlers h = {
        .user = s,
        .join = on_join,
        .pull_task = on_pull,
        .push_stage = on_push,
        .download_adapter = on_download,
        .upload_masked = on_upload,
        .upload_check = on_upload_check,
        .status = on_status,
        .cancelled = on_cancelled,
        .tick = on_tick,
    };
    s->srv = rpc_server_new(&rc_cfg, &h, d);
    if (!s->srv)
        return MU_ERR_IO;
    int port = rpc_server_port(s->srv);
    mu_info("serve: listening on %s (port %d)%s", s->cfg.listen, port,
            s->insecure ? " in PLAINTEXT" : " with mutual TLS");
    if (s->o.port_file) {
        char tmp[ND_PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", s->o.port_file);
        FILE *f2 = fopen(tmp, "w");
        if (!f2 || fprintf(f2, "%d\n", port) < 0 || fclose(f2) || rename(tmp, s->o.port_file))
            return mu_diag_set(d, MU_ERR_IO, "%s: cannot write the port", s->o.port_file);
    }
    return rpc_server_stop_on_signals(s->srv);
}

int nd_serve_run(const nd_serve_opts *o, mu_diag *diag)
{
    if (sa_init() != MU_OK)
        return mu_diag_set(diag, MU_ERR_CRYPTO, "libsodium failed to initialise");
    server *s = calloc(1, sizeof *s);
    if (!s)
        return MU_ERR_NOMEM;
    s->o = *o;
    if (s->o.linger_s <= 0)
        s->o.linger_s = 10;
    if (s->o.poll_s <= 0)
        s->o.poll_s = 10;
    co_config_default(&s->cfg);
#ifndef MUTUAL_TEST_HOOKS
    if (s->o.cheat) {
        free(s);
        return mu_diag_set(diag, MU_ERR_INVALID, "--test-cheat needs a Debug build");
    }
#endif
    int rc = setup(s, diag);
    if (rc == MU_OK) {
        rc = rpc_server_run(s->srv);
        if (s->fatal) {
            rc = s->fatal;
            mu_diag_set(diag, rc, "%s", s->fatal_diag.msg);
        } else {
            mu_info("serve: clean shutdown");
        }
    }
    rpc_server_free(s->srv);
    nd_srv_blob_release(s->cur);
    nd_srv_blob_release(s->bundle);
    co_round_free(s->r);
    tr_model_free(s->model);
    co_config_deinit(&s->cfg);
    free(s->fedcfg);
    free(s->held);
    free(s->traffic);
    free(s->told_done);
    ho_gov_free(s->gov);
    free(s);
    return rc;
}
