/* test_rpc_server.c - the rpc layer over plaintext loopback: every call shape, long polls,
 * deadlines, bad input, size limits, wait-for-ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "mu_log.h"
#include "mu_progress.h"
#include "rpc_client.h"
#include "rpc_toy.h"

#define MIB (1u << 20)

static toy T;
static rpc_client *C;

static rpc_server_config plain_cfg(void)
{
    rpc_server_config cfg = {0};
    cfg.address = "127.0.0.1:0";
    cfg.insecure = 1;
    cfg.max_message_bytes = 4 * MIB;
    cfg.max_upload_bytes = 32 * MIB;
    return cfg;
}

static rpc_client *plain_client(int port, size_t max_message, int wait_for_ready)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    rpc_client_config cc = {0};
    cc.target = target;
    cc.insecure = 1;
    cc.max_message_bytes = max_message;
    cc.wait_for_ready = wait_for_ready;
    mu_diag d = {{0}};
    rpc_client *c = rpc_client_new(&cc, &d);
    assert_non_null(c);
    return c;
}

static int setup(void **state)
{
    rpc_server_config cfg = plain_cfg();
    toy_start(&T, &cfg, 5 * MIB + 12345);
    C = plain_client(rpc_server_port(T.srv), 64 * MIB, 0);
    return 0;
}

static int teardown(void **state)
{
    rpc_client_free(C);
    toy_stop(&T);
    return 0;
}

static void test_join_unary(void **state)
{
    uint8_t pk[32] = {1};
    Mutual__V1__JoinRequest rq = MUTUAL__V1__JOIN_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    rq.org_name = "bank-a";
    rq.signing_public_key.data = pk;
    rq.signing_public_key.len = sizeof pk;
    rq.software_version = "0.1.0";
    ProtobufCMessage *rep = NULL;
    rpc_status st;
    assert_int_equal(rpc_client_unary(C, RPC_JOIN, &rq.base, 5, &rep, &st), MU_OK);
    assert_int_equal(st.code, GRPC_STATUS_OK);
    Mutual__V1__JoinReply *jr = (void *)rep;
    assert_int_equal(jr->org_id, 7);
    assert_true(!strncmp(jr->federation_name, "insecure:", 9)); /* the peer the handler saw */
    protobuf_c_message_free_unpacked(rep, NULL);

    rq.org_name = "refused"; /* a handler's own error status reaches the client */
    assert_int_equal(rpc_client_unary(C, RPC_JOIN, &rq.base, 5, &rep, &st), MU_ERR_CRYPTO);
    assert_int_equal(st.code, GRPC_STATUS_PERMISSION_DENIED);
    assert_non_null(strstr(st.message, "not a member"));
    assert_null(rep);

    rq.org_name = "bad-reply"; /* the handler's invalid reply never goes on the wire */
    assert_int_equal(rpc_client_unary(C, RPC_JOIN, &rq.base, 5, &rep, &st), MU_ERR_PROTOCOL);
    assert_int_equal(st.code, GRPC_STATUS_INTERNAL);
    assert_non_null(strstr(st.message, "invalid reply"));
    assert_null(rep);
}

static void test_status_unary(void **state)
{
    Mutual__V1__StatusRequest rq = MUTUAL__V1__STATUS_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    ProtobufCMessage *rep = NULL;
    assert_int_equal(rpc_client_unary(C, RPC_STATUS, &rq.base, 5, &rep, NULL), MU_OK);
    Mutual__V1__StatusReply *sr = (void *)rep;
    assert_int_equal(sr->round, 5);
    assert_string_equal(sr->stage, "masked-input");
    assert_non_null(sr->last_round);
    assert_int_equal(sr->last_round->tokens, 1000);
    protobuf_c_message_free_unpacked(rep, NULL);
}

static Mutual__V1__Task *pull(rpc_client *c, uint64_t org, double timeout, int *rc, rpc_status *st)
{
    Mutual__V1__PullTaskRequest rq = MUTUAL__V1__PULL_TASK_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    rq.org_id = org;
    ProtobufCMessage *rep = NULL;
    *rc = rpc_client_unary(c, RPC_PULL_TASK, &rq.base, timeout, &rep, st);
    return (Mutual__V1__Task *)rep;
}

static void test_long_poll_held_then_answered_by_tick(void **state)
{
    int rc;
    rpc_status st;
    double t0 = mu_now();
    Mutual__V1__Task *task = pull(C, 1, 5, &rc, &st);
    double dt = mu_now() - t0;
    assert_int_equal(rc, MU_OK);
    assert_int_equal(task->kind, MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND);
    assert_int_equal(task->round, 3);
    assert_int_equal(task->payload.len, 3);
    assert_true(dt >= 0.18); /* held for hold_s = 0.2 */
    assert_true(dt < 2.0);
    protobuf_c_message_free_unpacked(&task->base, NULL);

    /* org 3: nothing to do, answered WAIT a little before the client's deadline */
    t0 = mu_now();
    task = pull(C, 3, 1.0, &rc, &st);
    dt = mu_now() - t0;
    assert_int_equal(rc, MU_OK);
    assert_int_equal(task->kind, MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT);
    assert_true(dt >= 0.5 && dt < 1.0);
    protobuf_c_message_free_unpacked(&task->base, NULL);
}

typedef struct {
    rpc_client *c;
    int rc;
    Mutual__V1__Task *task;
} poll_arg;

static void *poll_thread(void *p)
{
    poll_arg *a = p;
    rpc_status st;
    a->task = pull(a->c, 2, 10, &a->rc, &st);
    return NULL;
}

static void test_long_poll_answered_from_another_thread(void **state)
{
    poll_arg a[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (poll_arg){C, -100, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, poll_thread, &a[i]), 0);
    }
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL); /* the three polls are held by now */
    for (int i = 0; i < 3; i++)
        assert_int_equal(a[i].rc, -100);
    toy_release_polls(&T);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, MU_OK);
        assert_int_equal(a[i].task->kind, MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE);
        assert_int_equal(a[i].task->stage, 2);
        protobuf_c_message_free_unpacked(&a[i].task->base, NULL);
    }
}

static void test_deadline_expiry_cancels_held_call(void **state)
{
    int before = atomic_load(&T.cancelled);
    int rc;
    rpc_status st;
    double t0 = mu_now();
    Mutual__V1__Task *task = pull(C, 99, 0.3, &rc, &st); /* org 99 is never answered */
    double dt = mu_now() - t0;
    assert_null(task);
    assert_int_equal(rc, MU_ERR_TIMEOUT);
    assert_int_equal(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_true(dt >= 0.25 && dt < 3.0);
    /* the server noticed too, and told the handler to forget the call */
    assert_int_equal(toy_wait_counter(&T.cancelled, before + 1, 3.0), before + 1);
}

static void test_server_streaming_download(void **state)
{
    int before = atomic_load(&T.releases);
    Mutual__V1__DownloadAdapterRequest rq = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    rq.org_id = 7;
    rq.round = 9;
    rpc_blob b;
    rpc_status st;
    assert_int_equal(rpc_client_download(C, &rq, 10, 64 * MIB, &b, &st), MU_OK);
    assert_int_equal(b.len, T.blob_len);
    assert_int_equal(b.round, 9);
    assert_memory_equal(b.data, T.blob, b.len);
    free(b.data);
    assert_int_equal(toy_wait_counter(&T.releases, before + 1, 2.0), before + 1);

    rq.offset = 3 * MIB + 1; /* resume */
    assert_int_equal(rpc_client_download(C, &rq, 10, 64 * MIB, &b, &st), MU_OK);
    assert_int_equal(b.len, T.blob_len - rq.offset);
    assert_memory_equal(b.data, T.blob + rq.offset, b.len);
    free(b.data);

    rq.offset = 0; /* the client refuses an adapter over its own limit */
    assert_int_equal(rpc_client_download(C, &rq, 10, 1 * MIB, &b, &st), MU_ERR_INVALID);
    assert_int_equal(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_null(b.data);

    rq.offset = T.blob_len + 1; /* past the end */
    assert_int_equal(rpc_client_download(C, &rq, 10, 64 * MIB, &b, &st), MU_ERR_FORMAT);
    assert_int_equal(st.code, GRPC_STATUS_OUT_OF_RANGE);
    assert_int_equal(toy_wait_counter(&T.releases, before + 4, 2.0), before + 4);
}

static void test_client_streaming_upload(void **state)
{
    size_t n = 12 * MIB + 7;
    uint8_t *data = malloc(n), sig[RPC_ED25519_SIG_BYTES] = {0};
    assert_non_null(data);
    toy_fill(data, n);
    rpc_upload_meta meta = {7, 3, 4, sig, sizeof sig};
    Mutual__V1__UploadMaskedReply *r = NULL;
    rpc_status st;
    assert_int_equal(rpc_client_upload(C, &meta, data, n, 1 * MIB, 20, &r, &st), MU_OK);
    assert_true(r->accepted);
    assert_int_equal(r->received_bytes, n);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    data[5 * MIB] ^= 1; /* the handler checks content: it sees exactly what was sent */
    assert_int_equal(rpc_client_upload(C, &meta, data, n, 1 * MIB, 20, &r, &st), MU_OK);
    assert_false(r->accepted);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    free(data);

    /* over the server's cap of 32 MiB: refused after the first chunk */
    size_t big = 40 * MIB;
    uint8_t *huge = calloc(big, 1);
    assert_non_null(huge);
    int uploads = atomic_load(&T.uploads);
    assert_int_equal(rpc_client_upload(C, &meta, huge, big, 1 * MIB, 20, &r, &st), MU_ERR_INVALID);
    assert_int_equal(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_null(r);
    assert_int_equal(atomic_load(&T.uploads), uploads); /* never reached the handler */

    /* refused by the handler's check on the first chunk, before the rest is sent */
    meta.org_id = 13;
    assert_int_equal(rpc_client_upload(C, &meta, huge, 30 * MIB, 1 * MIB, 20, &r, &st),
                     MU_ERR_CRYPTO);
    assert_int_equal(st.code, GRPC_STATUS_PERMISSION_DENIED);
    assert_non_null(strstr(st.message, "refused"));
    assert_int_equal(atomic_load(&T.uploads), uploads);
    /* the check answered the call itself: its status and message, and it saw the caller */
    meta.org_id = 14;
    double t0 = mu_now();
    assert_int_equal(rpc_client_upload(C, &meta, huge, 30 * MIB, 1 * MIB, 20, &r, &st),
                     MU_ERR_NOTFOUND);
    assert_int_equal(st.code, GRPC_STATUS_NOT_FOUND);
    assert_non_null(strstr(st.message, "org 14 (insecure:")); /* rpc_call_peer in the check */
    assert_int_equal(atomic_load(&T.uploads), uploads);
    print_message("refused 30 MiB streams on the first chunk (the last in %.3f s)\n",
                  mu_now() - t0);
    free(huge);
}

/* A raw C-core call to `path`: send `len` bytes, return the status code. */
static grpc_status_code raw_call(int port, const char *path, const uint8_t *data, size_t len)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string(path);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                               deadline, NULL);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_byte_buffer *rep = NULL;
    grpc_metadata_array md1, md2;
    grpc_metadata_array_init(&md1);
    grpc_metadata_array_init(&md2);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md1;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rep;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.trailing_metadata = &md2;
    assert_int_equal(grpc_call_start_batch(call, ops, 6, ops, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    grpc_slice_unref(details);
    if (rep)
        grpc_byte_buffer_destroy(rep);
    grpc_byte_buffer_destroy(req);
    grpc_metadata_array_destroy(&md1);
    grpc_metadata_array_destroy(&md2);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return code;
}

static void test_unknown_method_unimplemented(void **state)
{
    grpc_init();
    int port = rpc_server_port(T.srv);
    assert_int_equal(raw_call(port, "/mutual.v1.Coordinator/Nope", (const uint8_t *)"", 0),
                     GRPC_STATUS_UNIMPLEMENTED);
    assert_int_equal(raw_call(port, "/other.Service/Join", (const uint8_t *)"x", 1),
                     GRPC_STATUS_UNIMPLEMENTED);
    /* and the server still serves registered methods afterwards */
    assert_int_equal(
        raw_call(port, "/mutual.v1.Coordinator/Status", (const uint8_t *)"\x08\x01", 2),
        GRPC_STATUS_OK);
    grpc_shutdown();
}

static void test_malformed_protobuf_invalid_argument(void **state)
{
    rpc_status st;
    int joins = atomic_load(&T.joins);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(
        rpc_client_raw_unary(C, "/mutual.v1.Coordinator/Join", garbage, sizeof garbage, 5, &st),
        MU_ERR_FORMAT);
    assert_int_equal(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    /* well-formed protobuf that breaks our rules: api_version not set */
    const uint8_t no_version[] = {0x12, 0x01, 'a'}; /* org_name = "a" */
    assert_int_equal(rpc_client_raw_unary(C, "/mutual.v1.Coordinator/Join", no_version,
                                          sizeof no_version, 5, &st),
                     MU_ERR_FORMAT);
    assert_non_null(strstr(st.message, "api_version"));
    /* a truncated length-delimited field */
    const uint8_t cut[] = {0x08, 0x01, 0x12, 0x09, 'a'};
    assert_int_equal(
        rpc_client_raw_unary(C, "/mutual.v1.Coordinator/PushStage", cut, sizeof cut, 5, &st),
        MU_ERR_FORMAT);
    assert_int_equal(atomic_load(&T.joins), joins); /* no handler saw any of it */
}

static void test_oversize_message_resource_exhausted(void **state)
{
    size_t n = 5 * MIB; /* the server takes at most 4 MiB per message */
    uint8_t *payload = calloc(n, 1), sig[64] = {0};
    assert_non_null(payload);
    Mutual__V1__PushStageRequest rq = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    rq.org_id = 7;
    rq.round = 1;
    rq.stage = 1;
    rq.payload.data = payload;
    rq.payload.len = n;
    rq.signature.data = sig;
    rq.signature.len = sizeof sig;
    ProtobufCMessage *rep = NULL;
    rpc_status st;
    assert_int_equal(rpc_client_unary(C, RPC_PUSH_STAGE, &rq.base, 10, &rep, &st), MU_ERR_INVALID);
    assert_int_equal(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    /* the same just under the limit goes through */
    rq.payload.len = 3 * MIB;
    assert_int_equal(rpc_client_unary(C, RPC_PUSH_STAGE, &rq.base, 10, &rep, &st), MU_OK);
    assert_true(((Mutual__V1__PushStageReply *)rep)->accepted);
    protobuf_c_message_free_unpacked(rep, NULL);
    /* a client with gRPC's default 4 MiB... here 1 MiB: refuses to send 3 MiB itself */
    rpc_client *small = plain_client(rpc_server_port(T.srv), 1 * MIB, 0);
    assert_int_equal(rpc_client_unary(small, RPC_PUSH_STAGE, &rq.base, 10, &rep, &st),
                     MU_ERR_INVALID);
    assert_int_equal(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    rpc_client_free(small);
    free(payload);
}

static void test_ticks_run(void **state)
{
    int t0 = atomic_load(&T.ticks);
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int dt = atomic_load(&T.ticks) - t0;
    assert_true(dt >= 4 && dt <= 12); /* every ~50 ms: 10 expected */
}

typedef struct {
    rpc_client *c;
    int rc;
    double dt;
} status_arg;

static void *status_thread(void *p)
{
    status_arg *a = p;
    Mutual__V1__StatusRequest rq = MUTUAL__V1__STATUS_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    ProtobufCMessage *rep = NULL;
    double t0 = mu_now();
    a->rc = rpc_client_unary(a->c, RPC_STATUS, &rq.base, 10, &rep, NULL);
    a->dt = mu_now() - t0;
    if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    return NULL;
}

/* A client that starts before the coordinator waits for it with wait_for_ready, and fails
 * UNAVAILABLE at once without. */
static void test_wait_for_ready(void **state)
{
    rpc_server_config cfg = plain_cfg();
    toy t2;
    toy_start(&t2, &cfg, 0);
    int port = rpc_server_port(t2.srv);
    toy_stop(&t2); /* the port is free again: nobody listens */

    rpc_client *impatient = plain_client(port, 0, 0);
    status_arg a = {impatient, -100, 0};
    status_thread(&a);
    assert_int_equal(a.rc, MU_ERR_IO); /* UNAVAILABLE */
    assert_true(a.dt < 2.0);
    rpc_client_free(impatient);

    rpc_client *patient = plain_client(port, 0, 1);
    a = (status_arg){patient, -100, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, status_thread, &a), 0);
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    cfg.address = addr;
    toy_start(&t2, &cfg, 0);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, MU_OK);
    assert_true(a.dt >= 0.35);
    rpc_client_free(patient);
    toy_stop(&t2);
}

static void test_stop_cancels_held_polls(void **state)
{
    rpc_server_config cfg = plain_cfg();
    toy t2;
    toy_start(&t2, &cfg, 0);
    rpc_client *c = plain_client(rpc_server_port(t2.srv), 0, 0);
    poll_arg a = {c, -100, NULL};
    pthread_t th;
    /* org 2 is only answered by toy_release_polls: stopping the server must end it */
    assert_int_equal(pthread_create(&th, NULL, poll_thread, &a), 0);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double t0 = mu_now();
    toy_stop(&t2);
    pthread_join(th, NULL);
    assert_true(mu_now() - t0 < 3.0);
    assert_int_not_equal(a.rc, MU_OK);
    assert_null(a.task);
    assert_int_equal(atomic_load(&t2.cancelled), 1);
    rpc_client_free(c);
}

/* A second server on a port in use fails with a message (gRPC would share it through
 * SO_REUSEPORT unless told not to: two coordinators splitting the orgs between them). */
static void test_port_in_use_refused(void **state)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", rpc_server_port(T.srv));
    rpc_server_config cfg = plain_cfg();
    cfg.address = addr;
    rpc_handlers h = {0};
    mu_diag d = {{0}};
    rpc_server *srv = rpc_server_new(&cfg, &h, &d);
    if (srv)
        rpc_server_free(srv);
    assert_null(srv);
    assert_non_null(strstr(d.msg, "cannot listen"));
}

#define MANY 32

typedef struct {
    rpc_client *c;
    int id, ok;
} org_arg;

/* One org's round: join, a held poll, download, upload. */
static void *org_thread(void *p)
{
    org_arg *a = p;
    uint8_t pk[32] = {(uint8_t)a->id};
    Mutual__V1__JoinRequest jr = MUTUAL__V1__JOIN_REQUEST__INIT;
    jr.api_version = RPC_API_VERSION;
    char name[16];
    snprintf(name, sizeof name, "org-%d", a->id);
    jr.org_name = name;
    jr.signing_public_key = (ProtobufCBinaryData){sizeof pk, pk};
    Mutual__V1__JoinReply *join = NULL;
    if (rpc_client_join(a->c, &jr, 20, &join, NULL) != MU_OK)
        return NULL;
    protobuf_c_message_free_unpacked(&join->base, NULL);
    int rc;
    rpc_status st;
    Mutual__V1__Task *task = pull(a->c, 1, 20, &rc, &st);
    if (rc != MU_OK || task->kind != MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND)
        return NULL;
    protobuf_c_message_free_unpacked(&task->base, NULL);
    Mutual__V1__DownloadAdapterRequest dr = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    dr.api_version = RPC_API_VERSION;
    dr.org_id = 7;
    rpc_blob b;
    if (rpc_client_download(a->c, &dr, 30, 64 * MIB, &b, NULL) != MU_OK)
        return NULL;
    uint8_t sig[RPC_ED25519_SIG_BYTES] = {0};
    rpc_upload_meta meta = {7, 3, 4, sig, sizeof sig};
    Mutual__V1__UploadMaskedReply *r = NULL;
    rc = rpc_client_upload(a->c, &meta, b.data, 256 * 1024, 64 * 1024, 30, &r, NULL);
    free(b.data);
    if (rc != MU_OK)
        return NULL;
    a->ok = r->accepted && r->received_bytes == 256 * 1024;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return NULL;
}

/* 32 orgs at once, each on its own channel: nothing is lost or mixed up between calls. */
static void test_many_orgs_at_once(void **state)
{
    org_arg a[MANY];
    pthread_t th[MANY];
    int uploads = atomic_load(&T.uploads);
    for (int i = 0; i < MANY; i++) {
        a[i] = (org_arg){plain_client(rpc_server_port(T.srv), 0, 1), i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, org_thread, &a[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < MANY; i++) {
        pthread_join(th[i], NULL);
        ok += a[i].ok;
        rpc_client_free(a[i].c);
    }
    assert_int_equal(ok, MANY);
    assert_int_equal(atomic_load(&T.uploads), uploads + MANY);
}

int main(void)
{
    mu_log_set_level(MU_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_unary),
        cmocka_unit_test(test_status_unary),
        cmocka_unit_test(test_long_poll_held_then_answered_by_tick),
        cmocka_unit_test(test_long_poll_answered_from_another_thread),
        cmocka_unit_test(test_deadline_expiry_cancels_held_call),
        cmocka_unit_test(test_server_streaming_download),
        cmocka_unit_test(test_client_streaming_upload),
        cmocka_unit_test(test_unknown_method_unimplemented),
        cmocka_unit_test(test_malformed_protobuf_invalid_argument),
        cmocka_unit_test(test_oversize_message_resource_exhausted),
        cmocka_unit_test(test_ticks_run),
        cmocka_unit_test(test_wait_for_ready),
        cmocka_unit_test(test_stop_cancels_held_polls),
        cmocka_unit_test(test_many_orgs_at_once),
        cmocka_unit_test(test_port_in_use_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
