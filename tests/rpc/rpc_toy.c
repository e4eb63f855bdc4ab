/* rpc_toy.c - the toy coordinator of rpc_toy.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mu_progress.h"
#include "rpc_toy.h"

#include "rpc_certs.h"

void toy_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = toy_byte(i);
}

static void on_join(void *user, rpc_call *call, const Mutual__V1__JoinRequest *req)
{
    toy *t = user;
    atomic_fetch_add(&t->joins, 1);
    if (!strcmp(req->org_name, "refused")) {
        rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "org %s is not a member", req->org_name);
        return;
    }
    Mutual__V1__JoinReply r = MUTUAL__V1__JOIN_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.org_id = !strcmp(req->org_name, "bad-reply") ? 0 : 7; /* 0 breaks the rules */
    r.federation_name = (char *)rpc_call_peer(call);
    char fpr_hex[2 * RPC_CERT_FPR_BYTES + 1];
    uint8_t fpr[RPC_CERT_FPR_BYTES];
    if (!strcmp(req->org_name, "fingerprint")) { /* the certificate's, as the server saw it */
        int has = rpc_call_peer_fingerprint(call, fpr);
        for (size_t i = 0; i < RPC_CERT_FPR_BYTES; i++)
            snprintf(fpr_hex + 2 * i, 3, "%02x", has ? fpr[i] : 0);
        r.federation_name = fpr_hex;
    }
    r.current_round = 1;
    r.poll_timeout_ms = 1000;
    rpc_call_reply(call, &r.base);
}

static void reply_task(rpc_call *call, Mutual__V1__TaskKind kind, uint64_t round, uint32_t stage)
{
    static uint8_t payload[3] = {1, 2, 3};
    Mutual__V1__Task task = MUTUAL__V1__TASK__INIT;
    task.api_version = RPC_API_VERSION;
    task.kind = kind;
    task.round = round;
    task.stage = stage;
    task.payload.data = payload;
    task.payload.len = sizeof payload;
    task.retry_after_ms = kind == MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT ? 100 : 0;
    rpc_call_reply(call, &task.base);
}

static void on_pull(void *user, rpc_call *call, const Mutual__V1__PullTaskRequest *req)
{
    toy *t = user;
    for (int i = 0; i < TOY_MAX_HELD; i++) {
        if (!t->held[i]) {
            t->held[i] = call;
            t->held_org[i] = req->org_id;
            t->held_since[i] = mu_now();
            return;
        }
    }
    rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many polls held");
}

static void on_tick(void *user, rpc_server *srv, double now)
{
    toy *t = user;
    atomic_fetch_add(&t->ticks, 1);
    for (int i = 0; i < TOY_MAX_HELD; i++) {
        rpc_call *c = t->held[i];
        if (!c)
            continue;
        if (t->held_org[i] == 1 && now - t->held_since[i] >= t->hold_s) {
            t->held[i] = NULL;
            reply_task(c, MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND, 3, 0);
        } else if (t->held_org[i] == 3 && rpc_call_deadline(c) - now < 0.3) {
            t->held[i] = NULL;
            reply_task(c, MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT, 0, 0);
        }
    }
}

static void release_polls(rpc_server *srv, void *arg)
{
    toy *t = arg;
    for (int i = 0; i < TOY_MAX_HELD; i++) {
        if (t->held[i] && t->held_org[i] == 2) {
            rpc_call *c = t->held[i];
            t->held[i] = NULL;
            reply_task(c, MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE, 4, 2);
        }
    }
}

void toy_release_polls(toy *t)
{
    if (rpc_server_post(t->srv, release_polls, t) != MU_OK)
        abort();
}

static void on_cancelled(void *user, rpc_call *call)
{
    toy *t = user;
    for (int i = 0; i < TOY_MAX_HELD; i++)
        if (t->held[i] == call)
            t->held[i] = NULL;
    atomic_fetch_add(&t->cancelled, 1);
}

static void on_push(void *user, rpc_call *call, const Mutual__V1__PushStageRequest *req)
{
    Mutual__V1__PushStageReply r = MUTUAL__V1__PUSH_STAGE_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.accepted = req->payload.len > 0;
    r.reason = r.accepted ? "" : "empty payload";
    rpc_call_reply(call, &r.base);
}

static void on_release(void *ctx)
{
    toy *t = ctx;
    atomic_fetch_add(&t->releases, 1);
}

static void on_download(void *user, rpc_call *call, const Mutual__V1__DownloadAdapterRequest *req)
{
    toy *t = user;
    rpc_call_stream_blob(call, req->round, t->blob, t->blob_len, req->offset, t->blob_sha, 1u << 20,
                         on_release, t);
}

static void on_upload(void *user, rpc_call *call, const rpc_upload *up)
{
    toy *t = user;
    atomic_fetch_add(&t->uploads, 1);
    int ok = up->signature_len == RPC_ED25519_SIG_BYTES;
    for (size_t i = 0; ok && i < up->len; i++)
        ok = up->data[i] == toy_byte(i);
    Mutual__V1__UploadMaskedReply r = MUTUAL__V1__UPLOAD_MASKED_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.received_bytes = up->len;
    r.accepted = ok;
    r.reason = ok ? "" : "pattern or signature mismatch";
    rpc_call_reply(call, &r.base);
}

static int on_upload_check(void *user, rpc_call *call, const rpc_upload *up)
{
    if (up->org_id == 14) { /* refused with the check's own status and message */
        rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "org 14 (%s) is not registered",
                      rpc_call_peer(call));
        return MU_ERR_NOTFOUND;
    }
    return up->org_id == 13 ? MU_ERR_CRYPTO : MU_OK; /* org 13 is not in the cohort */
}

static void on_status(void *user, rpc_call *call, const Mutual__V1__StatusRequest *req)
{
    Mutual__V1__RoundMetrics m = MUTUAL__V1__ROUND_METRICS__INIT;
    m.round = 4;
    m.loss_sum = 1234.5;
    m.tokens = 1000;
    m.orgs_completed = 2;
    m.orgs_dropped = 1;
    m.duration_s = 2.5;
    Mutual__V1__StatusReply r = MUTUAL__V1__STATUS_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.software_version = "toy-1";
    r.round = 5;
    r.stage = "masked-input";
    r.orgs_registered = 3;
    r.orgs_connected = 2;
    r.orgs_in_cohort = 2;
    r.last_round = &m;
    r.federation_name = "toy-federation";
    rpc_call_reply(call, &r.base);
}

static void *run(void *arg)
{
    toy *t = arg;
    rpc_server_run(t->srv);
    return NULL;
}

void toy_start(toy *t, const rpc_server_config *cfg, size_t blob_len)
{
    memset(t, 0, sizeof *t);
    t->hold_s = 0.2;
    t->blob_len = blob_len;
    t->blob = malloc(blob_len ? blob_len : 1);
    if (!t->blob)
        abort();
    toy_fill(t->blob, blob_len);
    rpc_sha256(t->blob, blob_len, t->blob_sha);
    rpc_handlers h = {
        .user = t,
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
    mu_diag d = {{0}};
    t->srv = rpc_server_new(cfg, &h, &d);
    if (!t->srv) {
        fprintf(stderr, "toy_start: %s\n", d.msg);
        abort();
    }
    if (pthread_create(&t->thread, NULL, run, t))
        abort();
}

void toy_stop(toy *t)
{
    rpc_server_stop(t->srv);
    pthread_join(t->thread, NULL);
    rpc_server_free(t->srv);
    free(t->blob);
}

int toy_wait_counter(atomic_int *counter, int want, double seconds)
{
    double end = mu_now() + seconds;
    int v;
    while ((v = atomic_load(counter)) < want && mu_now() < end) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return v;
}
