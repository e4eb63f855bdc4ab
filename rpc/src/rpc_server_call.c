/* rpc_server_call.c - one call on the server: identity, decoding, handing it to the
 * handler, answering, streaming a blob out, assembling an upload. Server thread only. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "mu_log.h"
#include "mu_progress.h"
#include "rpc_certs.h"
#include "rpc_server_int.h"

#define DEFAULT_CHUNK (1u << 20)

static const char *method_name(const rpc_call *c)
{
    if (c->method < 0)
        return "(unknown method)";
    const char *p = rpc_method_get(c->method)->path;
    return strrchr(p, '/') + 1;
}

/* rpc_certs_pem_identity, remembered (rpc_peer_memo): a hit needs the whole PEM to be the
 * same bytes, so two certificates (also two with one name) never share an entry. */
static int peer_identity(rpc_server *srv, const char *pem, size_t len, int *is_operator,
                         uint8_t fpr[RPC_CERT_FPR_BYTES])
{
    for (size_t i = 0; i < RPC_PEER_MEMO; i++) {
        const rpc_peer_memo *m = &srv->peers[i];
        if (m->pem && m->len == len && memcmp(m->pem, pem, len) == 0) {
            memcpy(fpr, m->fpr, RPC_CERT_FPR_BYTES);
            *is_operator = m->is_operator;
            return MU_OK;
        }
    }
    int rc = rpc_certs_pem_identity(pem, len, is_operator, fpr);
    char *copy = rc == MU_OK && len <= RPC_PEER_MEMO_PEM ? malloc(len) : NULL;
    if (!copy)
        return rc; /* not remembered: parsed again next time */
    rpc_peer_memo *m = &srv->peers[srv->peers_next++ % RPC_PEER_MEMO];
    free(m->pem);
    memcpy(copy, pem, len);
    *m = (rpc_peer_memo){.pem = copy, .len = len, .is_operator = *is_operator};
    memcpy(m->fpr, fpr, RPC_CERT_FPR_BYTES);
    return MU_OK;
}

static void set_peer(rpc_call *c)
{
    char *addr = grpc_call_get_peer(c->call);
    rpc_log_peer_seen(addr); /* its connection is past the handshake */
    if (c->srv->insecure) {
        snprintf(c->peer, sizeof c->peer, "insecure:%s", addr ? addr : "?");
        gpr_free(addr);
        return;
    }
    gpr_free(addr);
    snprintf(c->peer, sizeof c->peer, "(no certificate name)");
    grpc_auth_context *ctx = grpc_call_auth_context(c->call);
    if (!ctx)
        return;
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
    const grpc_auth_property *prop = grpc_auth_property_iterator_next(&it);
    if (prop && prop->value_length > 0 && prop->value_length < sizeof c->peer &&
        !memchr(prop->value, 0, prop->value_length)) {
        memcpy(c->peer, prop->value, prop->value_length);
        c->peer[prop->value_length] = 0;
    }
    it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME);
    prop = grpc_auth_property_iterator_next(&it);
    c->has_fpr = prop && peer_identity(c->srv, prop->value, prop->value_length, &c->is_operator,
                                       c->peer_fpr) == MU_OK;
    grpc_auth_context_release(ctx);
}

void rpc_srv_call_destroy(rpc_call *c)
{
    rpc_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->release)
        c->release(c->release_ctx);
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->recv)
        grpc_byte_buffer_destroy(c->recv);
    if (c->send)
        grpc_byte_buffer_destroy(c->send);
    free(c->up);
    free(c);
}

static void maybe_free(rpc_call *c)
{
    if (c->pending == 0 && !c->held && (c->answered || c->closed || !c->started))
        rpc_srv_call_destroy(c);
}

static int start(rpc_call *c, grpc_op *ops, size_t n, rpc_tag *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        mu_error("rpc: %s from %s: cannot start a batch (gRPC error %d)", method_name(c), c->peer,
                 (int)e);
        return MU_ERR_STATE;
    }
    c->pending++;
    return MU_OK;
}

/* Sends the final status (and an optional message). Takes ownership of `msg`. */
static void send_status(rpc_call *c, grpc_status_code code, const char *text, grpc_byte_buffer *msg)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (c->answered) { /* answered twice, or after the call died: nothing more to send */
        if (msg)
            grpc_byte_buffer_destroy(msg);
        return;
    }
    c->answered = 1;
    c->held = 0;
    if (!c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = 1;
    }
    if (msg) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = msg;
        c->send = msg;
    }
    c->status_details = grpc_slice_from_copied_string(text ? text : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    if (start(c, ops, n, &c->t_status) != MU_OK) {
        grpc_slice_unref(c->status_details);
        c->status_details = grpc_empty_slice();
    }
}

void rpc_call_fail(rpc_call *c, grpc_status_code code, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (code == GRPC_STATUS_OK)
        code = GRPC_STATUS_INTERNAL; /* a failure is never OK */
    mu_debug("rpc: %s from %s: %s: %s", method_name(c), c->peer, rpc_status_name(code), text);
    send_status(c, code, text, NULL);
}

int rpc_call_reply(rpc_call *c, const ProtobufCMessage *reply)
{
    if (c->method < 0 || reply->descriptor != rpc_method_get(c->method)->reply ||
        rpc_method_get(c->method)->kind == RPC_SERVER_STREAMING) {
        mu_error("rpc: %s: the handler replied with a %s", method_name(c), reply->descriptor->name);
        rpc_call_fail(c, GRPC_STATUS_INTERNAL, "the coordinator built a wrong reply");
        return MU_ERR_INVALID;
    }
    mu_diag d = {{0}};
    if (rpc_msg_validate(reply, &d) != MU_OK) { /* the peer would refuse it anyway */
        mu_error("rpc: %s: the handler's reply breaks the wire rules: %s", method_name(c), d.msg);
        rpc_call_fail(c, GRPC_STATUS_INTERNAL, "the coordinator built an invalid reply");
        return MU_ERR_INVALID;
    }
    send_status(c, GRPC_STATUS_OK, "", rpc_bb_pack(reply));
    return MU_OK;
}

int rpc_call_peer_is_operator(const rpc_call *c)
{
    return c->is_operator;
}

int rpc_call_peer_fingerprint(const rpc_call *c, uint8_t out[RPC_CERT_FPR_BYTES])
{
    if (c->has_fpr)
        memcpy(out, c->peer_fpr, RPC_CERT_FPR_BYTES);
    return c->has_fpr;
}

const char *rpc_call_peer(const rpc_call *c)
{
    return c->peer;
}

rpc_method rpc_call_method(const rpc_call *c)
{
    return (rpc_method)c->method;
}

double rpc_call_deadline(const rpc_call *c)
{
    if (c->deadline.tv_sec == INT64_MAX)
        return INFINITY;
    gpr_timespec d = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    return mu_now() + (double)left.tv_sec + left.tv_nsec * 1e-9;
}

/* --- server streaming --- */

static void send_next_chunk(rpc_call *c)
{
    size_t n = c->blob_len - c->blob_off;
    if (n > c->chunk)
        n = c->chunk;
    Mutual__V1__AdapterChunk ch = MUTUAL__V1__ADAPTER_CHUNK__INIT;
    ch.api_version = RPC_API_VERSION;
    ch.round = c->blob_round;
    ch.offset = c->blob_off;
    ch.total = c->blob_len;
    ch.data.data = (uint8_t *)(c->blob ? c->blob + c->blob_off : NULL);
    ch.data.len = n;
    ch.sha256.data = c->blob_sha;
    ch.sha256.len = RPC_SHA256_BYTES;
    c->send = rpc_bb_pack(&ch.base);
    c->blob_off += n;
    grpc_op ops[2];
    size_t k = 0;
    memset(ops, 0, sizeof ops);
    if (!c->md_sent) {
        ops[k++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = 1;
    }
    ops[k].op = GRPC_OP_SEND_MESSAGE;
    ops[k++].data.send_message.send_message = c->send;
    if (start(c, ops, k, &c->t_send) != MU_OK)
        c->answered = 1;
}

int rpc_call_stream_blob(rpc_call *c, uint64_t round, const uint8_t *data, size_t len,
                         uint64_t offset, const uint8_t sha256[RPC_SHA256_BYTES],
                         size_t chunk_bytes, void (*release)(void *ctx), void *ctx)
{
    c->release = release;
    c->release_ctx = ctx;
    if (c->answered) /* misuse: the call is over; release() runs when it is freed */
        return MU_ERR_STATE;
    if (c->method != RPC_DOWNLOAD_ADAPTER || offset > len) {
        rpc_call_fail(c, GRPC_STATUS_OUT_OF_RANGE, "offset %llu is past the adapter's %zu bytes",
                      (unsigned long long)offset, len);
        return MU_ERR_INVALID;
    }
    c->held = 0;
    c->blob = data;
    c->blob_len = len;
    c->blob_off = offset;
    c->blob_round = round;
    c->chunk = chunk_bytes ? chunk_bytes : DEFAULT_CHUNK;
    memcpy(c->blob_sha, sha256, RPC_SHA256_BYTES);
    send_next_chunk(c); /* always at least one chunk: it tells the client total and hash */
    return MU_OK;
}

static void on_sent(rpc_call *c, int ok)
{
    grpc_byte_buffer_destroy(c->send);
    c->send = NULL;
    if (c->answered)
        return;
    if (!ok) { /* the client went away */
        c->answered = 1;
        return;
    }
    if (c->blob_off < c->blob_len) {
        send_next_chunk(c);
        return;
    }
    if (c->release) {
        c->release(c->release_ctx);
        c->release = NULL;
    }
    send_status(c, GRPC_STATUS_OK, "", NULL);
}

/* --- client streaming --- */

static void recv_next(rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv;
    if (start(c, &op, 1, &c->t_recv) != MU_OK)
        c->answered = 1;
}

static void upload_done(rpc_call *c)
{
    if (c->up_chunks == 0) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the upload stream had no chunk");
        return;
    }
    if (c->up_len != c->up_total) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the upload ended at %zu of %llu bytes",
                      c->up_len, (unsigned long long)c->up_total);
        return;
    }
    uint8_t sha[RPC_SHA256_BYTES];
    rpc_sha256(c->up ? c->up : (const uint8_t *)"", c->up_len, sha);
    if (memcmp(sha, c->up_sha, sizeof sha)) {
        mu_warn("rpc: UploadMasked from %s: SHA-256 mismatch", c->peer);
        rpc_call_fail(c, GRPC_STATUS_DATA_LOSS, "the upload does not match its SHA-256");
        return;
    }
    rpc_upload up = {c->up_org, c->up_round, c->up_stage,  c->up,
                     c->up_len, c->up_sig,   c->up_sig_len};
    c->held = 1;
    c->srv->h.upload_masked(c->srv->h.user, c, &up);
    free(c->up);
    c->up = NULL;
}

/* Checks one decoded chunk against the stream so far and appends it. */
static int upload_add(rpc_call *c, const Mutual__V1__UploadMaskedChunk *ch)
{
    if (c->up_chunks == 0) {
        if (ch->total > c->srv->max_upload) {
            rpc_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                          "upload of %llu bytes is over the limit of %zu",
                          (unsigned long long)ch->total, c->srv->max_upload);
            return -1;
        }
        c->up_total = ch->total;
        c->up_org = ch->org_id;
        c->up_round = ch->round;
        c->up_stage = ch->stage;
        memcpy(c->up_sha, ch->sha256.data, RPC_SHA256_BYTES);
        const rpc_handlers *h = &c->srv->h;
        rpc_upload first = {ch->org_id, ch->round, ch->stage, NULL, ch->total, NULL, 0};
        int rc = h->upload_check ? h->upload_check(h->user, c, &first) : MU_OK;
        if (rc != MU_OK || c->answered) { /* the check may have answered the call itself */
            mu_warn("rpc: UploadMasked from %s refused on its first chunk (%llu bytes announced, "
                    "none buffered): %s",
                    c->peer, (unsigned long long)ch->total,
                    c->answered ? "answered by the handler's check" : mu_strerror(rc));
            rpc_call_fail(c, rpc_status_from_err(rc), "upload refused: %s", mu_strerror(rc));
            return -1;
        }
    } else if (ch->total != c->up_total || ch->org_id != c->up_org || ch->round != c->up_round ||
               ch->stage != c->up_stage || memcmp(ch->sha256.data, c->up_sha, RPC_SHA256_BYTES)) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                      "chunk %d changes the stream's org, round, stage, total or hash",
                      c->up_chunks);
        return -1;
    }
    if (ch->offset != c->up_len) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "chunk at offset %llu, expected %zu",
                      (unsigned long long)ch->offset, c->up_len);
        return -1;
    }
    if (ch->data.len > c->up_cap - c->up_len) { /* grow geometrically, never past total */
        size_t cap = c->up_cap ? c->up_cap * 2 : (1u << 20);
        if (cap < c->up_len + ch->data.len)
            cap = c->up_len + ch->data.len;
        if (cap > c->up_total)
            cap = c->up_total;
        uint8_t *p = realloc(c->up, cap);
        if (!p) {
            rpc_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return -1;
        }
        c->up = p;
        c->up_cap = cap;
    }
    if (ch->data.len)
        memcpy(c->up + c->up_len, ch->data.data, ch->data.len);
    c->up_len += ch->data.len;
    if (ch->signature.len) {
        memcpy(c->up_sig, ch->signature.data, ch->signature.len);
        c->up_sig_len = ch->signature.len;
    }
    c->up_chunks++;
    return 0;
}

/* Flattens and decodes a received message of the call's method, or answers
 * INVALID_ARGUMENT and returns NULL. */
static ProtobufCMessage *decode(rpc_call *c, grpc_byte_buffer *bb)
{
    mu_diag d = {{0}};
    ProtobufCMessage *m = rpc_bb_decode(rpc_method_get(c->method)->request, bb, &d);
    if (!m) {
        mu_warn("rpc: %s from %s: rejected: %s", method_name(c), c->peer, d.msg);
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s", d.msg);
    }
    return m;
}

static void on_recv(rpc_call *c, int ok)
{
    grpc_byte_buffer *bb = c->recv;
    c->recv = NULL;
    if (c->answered) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return;
    }
    if (!ok) {
        c->answered = 1; /* the call is gone */
        return;
    }
    if (!bb) { /* end of the client's stream */
        upload_done(c);
        return;
    }
    ProtobufCMessage *m = decode(c, bb);
    grpc_byte_buffer_destroy(bb);
    if (!m)
        return;
    int bad = upload_add(c, (const Mutual__V1__UploadMaskedChunk *)m);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!bad)
        recv_next(c);
}

/* --- a new call --- */

static void dispatch_unary(rpc_call *c)
{
    if (!c->payload) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
        return;
    }
    ProtobufCMessage *m = decode(c, c->payload);
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
    if (!m)
        return;
    const rpc_handlers *h = &c->srv->h;
    c->held = 1;
    switch ((rpc_method)c->method) {
    case RPC_JOIN:
        h->join(h->user, c, (const void *)m);
        break;
    case RPC_PULL_TASK:
        h->pull_task(h->user, c, (const void *)m);
        break;
    case RPC_PUSH_STAGE:
        h->push_stage(h->user, c, (const void *)m);
        break;
    case RPC_DOWNLOAD_ADAPTER:
        h->download_adapter(h->user, c, (const void *)m);
        break;
    case RPC_STATUS:
        h->status(h->user, c, (const void *)m);
        break;
    default:
        abort(); /* client streaming never comes here */
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

static int has_handler(const rpc_handlers *h, rpc_method m)
{
    switch (m) {
    case RPC_JOIN:
        return h->join != NULL;
    case RPC_PULL_TASK:
        return h->pull_task != NULL;
    case RPC_PUSH_STAGE:
        return h->push_stage != NULL;
    case RPC_DOWNLOAD_ADAPTER:
        return h->download_adapter != NULL;
    case RPC_UPLOAD_MASKED:
        return h->upload_masked != NULL;
    case RPC_STATUS:
        return h->status != NULL;
    default:
        return 0;
    }
}

static void on_new(rpc_call *c, int ok)
{
    if (!ok)
        return; /* the server is shutting down: no call came */
    c->started = 1;
    set_peer(c);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->client_cancelled;
    if (start(c, &op, 1, &c->t_close) != MU_OK) {
        c->answered = 1;
        return;
    }
    if (c->srv->shut) { /* came in as the server stopped: never reaches a handler */
        rpc_call_fail(c, GRPC_STATUS_UNAVAILABLE, "the coordinator is stopping");
        return;
    }
    if (c->method < 0) {
        char path[128];
        size_t n = GRPC_SLICE_LENGTH(c->details.method);
        snprintf(path, sizeof path, "%.*s", (int)(n < 100 ? n : 100),
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
        mu_warn("rpc: %s called unknown method %s", c->peer, path);
        rpc_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, "no method %s in mutual.v1", path);
        return;
    }
    if (!has_handler(&c->srv->h, c->method)) {
        rpc_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, "%s is not served here", method_name(c));
        return;
    }
    mu_debug("rpc: %s from %s", method_name(c), c->peer);
    if (rpc_method_get(c->method)->kind == RPC_CLIENT_STREAMING)
        recv_next(c);
    else
        dispatch_unary(c);
}

void rpc_srv_call_event(rpc_call *c, rpc_tag_kind kind, int ok)
{
    c->pending--;
    switch (kind) {
    case TAG_NEW:
        on_new(c, ok);
        break;
    case TAG_CLOSE:
        c->closed = 1;
        if (c->held && !c->answered) {
            c->held = 0;
            c->answered = 1;
            mu_debug("rpc: %s from %s: cancelled before the answer", method_name(c), c->peer);
            if (c->srv->h.cancelled)
                c->srv->h.cancelled(c->srv->h.user, c);
        }
        break;
    case TAG_SEND:
        on_sent(c, ok);
        break;
    case TAG_RECV:
        on_recv(c, ok);
        break;
    case TAG_STATUS:
        if (c->send) {
            grpc_byte_buffer_destroy(c->send);
            c->send = NULL;
        }
        grpc_slice_unref(c->status_details);
        c->status_details = grpc_empty_slice();
        break;
    default:
        break;
    }
    maybe_free(c);
}
