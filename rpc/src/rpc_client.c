/* rpc_client.c - blocking calls over one channel; each call has its own pluck queue. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "mu_log.h"
#include "mu_progress.h"
#include "rpc_client.h"
#include "rpc_internal.h"

#define DEFAULT_CHUNK  (1u << 20)
#define CHUNK_OVERHEAD 256 /* room for a chunk's other fields under the message limit */

#define PROBE_EVERY_S   5.0 /* at most one TLS probe per client this often */
#define PROBE_TIMEOUT_S 3.0

struct rpc_client {
    grpc_channel *channel;
    int wait_for_ready;
    size_t max_message;
    /* To explain a channel that does not come up (rpc_tls_probe); NULL when insecure. */
    char *target, *server_name, *ca, *cert, *key;
    rpc_pin *pin; /* the coordinator's pinned fingerprint, or NULL; owned by the credentials */
    pthread_mutex_t mu; /* guards what follows */
    double probed_at;
    int tls_failed;
    char tls_why[200];
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_paths(rpc_client *c)
{
    free(c->target);
    free(c->server_name);
    free(c->ca);
    free(c->cert);
    free(c->key);
}

rpc_client *rpc_client_new(const rpc_client_config *cfg, mu_diag *d)
{
    if (!cfg || !cfg->target) {
        mu_diag_set(d, MU_ERR_INVALID, "rpc_client_new: a target host:port is needed");
        return NULL;
    }
    rpc_client *c = calloc(1, sizeof *c);
    if (!c) {
        mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rpc_log_install();
    grpc_init();
    grpc_channel_credentials *creds;
    if (cfg->insecure) {
        mu_warn("rpc: *** INSECURE: talking to %s in PLAINTEXT, without TLS ***", cfg->target);
        creds = grpc_insecure_credentials_create();
    } else {
        rpc_pin *pin = cfg->server_fingerprint ? calloc(1, sizeof *pin) : NULL;
        if (pin) {
            memcpy(pin->want, cfg->server_fingerprint, sizeof pin->want);
            pthread_mutex_init(&pin->mu, NULL);
        } else if (cfg->server_fingerprint) {
            mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
            free(c);
            grpc_shutdown();
            return NULL;
        }
        c->pin = pin;
        creds = rpc_tls_channel_creds(cfg->ca_path, cfg->cert_path, cfg->key_path, pin, d);
        if (!creds) {
            free(c);
            grpc_shutdown();
            return NULL;
        }
    }
    pthread_mutex_init(&c->mu, NULL);
    c->probed_at = -1e9;
    if (!cfg->insecure) {
        c->target = dup_or_null(cfg->target);
        c->server_name = dup_or_null(cfg->server_name);
        c->ca = dup_or_null(cfg->ca_path);
        c->cert = dup_or_null(cfg->cert_path);
        c->key = dup_or_null(cfg->key_path);
    }
    c->wait_for_ready = cfg->wait_for_ready;
    c->max_message = cfg->max_message_bytes ? cfg->max_message_bytes : RPC_DEFAULT_MAX_MESSAGE;
    if (c->max_message > INT32_MAX)
        c->max_message = INT32_MAX;
    int backoff = cfg->max_reconnect_backoff_ms ? (int)cfg->max_reconnect_backoff_ms : 5000;
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = (int)c->max_message}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = (int)c->max_message}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, {.integer = backoff}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         {.integer = backoff < 1000 ? backoff : 1000}},
        /* Ping during long polls so that a vanished coordinator (or a firewall that dropped
         * the idle connection) is noticed; the server allows pings this often. */
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = RPC_KEEPALIVE_MS}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = 10000}},
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, {.integer = 0}},
        {GRPC_ARG_STRING, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, {.string = (char *)cfg->server_name}},
    };
    size_t nargs = sizeof args / sizeof args[0];
    grpc_channel_args cargs = {cfg->server_name && !cfg->insecure ? nargs : nargs - 1, args};
    c->channel = grpc_channel_create(cfg->target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return c;
}

void rpc_client_free(rpc_client *c)
{
    if (!c)
        return;
    grpc_channel_destroy(c->channel);
    free_paths(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
    grpc_shutdown();
}

/* One call in flight: its queue, the gRPC call, and what the final status said. */
typedef struct {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code code;
    grpc_slice details;
    const char *error_string;
    int wait_for_ready;
} ccall;

static void ccall_open(rpc_client *c, ccall *k, const char *path, double timeout_s)
{
    memset(k, 0, sizeof *k);
    k->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string(path);
    k->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, k->cq, method,
                                       NULL, rpc_deadline_in(timeout_s), NULL);
    grpc_metadata_array_init(&k->md_initial);
    grpc_metadata_array_init(&k->md_trailing);
    k->details = grpc_empty_slice();
    k->code = GRPC_STATUS_UNKNOWN;
    k->wait_for_ready = c->wait_for_ready;
}

static void ccall_close(ccall *k)
{
    grpc_call_unref(k->call);
    grpc_completion_queue_shutdown(k->cq);
    grpc_completion_queue_destroy(k->cq);
    grpc_metadata_array_destroy(&k->md_initial);
    grpc_metadata_array_destroy(&k->md_trailing);
    grpc_slice_unref(k->details);
    gpr_free((void *)k->error_string);
}

/* Starts a batch tagged `tag`; returns nonzero if gRPC refused it. */
static int ccall_start(ccall *k, grpc_op *ops, size_t n, void *tag)
{
    grpc_call_error e = grpc_call_start_batch(k->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK)
        mu_error("rpc: cannot start a batch (gRPC error %d)", (int)e);
    return e != GRPC_CALL_OK;
}

/* Waits for the batch tagged `tag`; returns its success flag. */
static int ccall_wait(ccall *k, void *tag)
{
    grpc_event ev =
        grpc_completion_queue_pluck(k->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void op_send_md(ccall *k, grpc_op *op)
{
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    if (k->wait_for_ready)
        op->flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                    GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
}

static void op_recv_status(ccall *k, grpc_op *op)
{
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &k->md_trailing;
    op->data.recv_status_on_client.status = &k->code;
    op->data.recv_status_on_client.status_details = &k->details;
    op->data.recv_status_on_client.error_string = &k->error_string;
}

/* Copies the call's final status into *st and returns its mu_err code. */
static int ccall_status(ccall *k, rpc_status *st)
{
    if (st) {
        st->code = k->code;
        size_t n = GRPC_SLICE_LENGTH(k->details);
        if (n >= sizeof st->message)
            n = sizeof st->message - 1;
        memcpy(st->message, GRPC_SLICE_START_PTR(k->details), n);
        st->message[n] = 0;
    }
    return rpc_err_from_status(k->code);
}

static int local_fail(rpc_status *st, grpc_status_code code, int err, const char *msg)
{
    if (st) {
        st->code = code;
        snprintf(st->message, sizeof st->message, "%.200s", msg);
    }
    return err;
}

/* Sends `data` as the one request and receives one reply into *reply_bb (may be NULL). */
static int unary_raw(rpc_client *c, const char *path, grpc_byte_buffer *req, double timeout_s,
                     grpc_byte_buffer **reply_bb, rpc_status *st)
{
    ccall k;
    ccall_open(c, &k, path, timeout_s);
    grpc_byte_buffer *rep = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    op_send_md(&k, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k.md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rep;
    op_recv_status(&k, &ops[5]);
    int rc;
    if (ccall_start(&k, ops, 6, &k)) {
        rc = local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_STATE, "gRPC refused the batch");
    } else {
        ccall_wait(&k, &k); /* RECV_STATUS_ON_CLIENT always succeeds: read the code */
        rc = ccall_status(&k, st);
    }
    if (rc == MU_OK && reply_bb)
        *reply_bb = rep;
    else if (rep)
        grpc_byte_buffer_destroy(rep);
    ccall_close(&k);
    return rc;
}

int rpc_client_raw_unary(rpc_client *c, const char *path, const uint8_t *data, size_t len,
                         double timeout_s, rpc_status *st)
{
    grpc_byte_buffer *req = rpc_bb_from(data, len);
    int rc = unary_raw(c, path, req, timeout_s, NULL, st);
    grpc_byte_buffer_destroy(req);
    return rc;
}

/* Decodes a reply buffer of type `desc`; MU_ERR_FORMAT with st set if it is bad. */
static int decode_reply(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                        ProtobufCMessage **out, rpc_status *st)
{
    if (!bb)
        return local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_FORMAT, "status OK but no reply");
    mu_diag d = {{0}};
    *out = rpc_bb_decode(desc, bb, &d);
    if (!*out) {
        mu_warn("rpc: bad reply from the coordinator: %s", d.msg);
        return local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_FORMAT, d.msg);
    }
    return MU_OK;
}

/* A call that failed UNAVAILABLE or DEADLINE_EXCEEDED under TLS may be a handshake that one
 * side refuses: find out with one probe (at most every PROBE_EVERY_S) and say so in st. */
static void explain_failure(rpc_client *c, int rc, rpc_status *st)
{
    if (!c->target || !c->ca || !c->cert || !c->key)
        return;
    pthread_mutex_lock(&c->mu);
    if (rc == MU_OK) {
        c->tls_failed = 0;
    } else if (st &&
               (st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED)) {
        double now = mu_now();
        char pinned[sizeof c->pin->why]; /* all of it: cut below, where it is quoted */
        if (rpc_client_pin_refused(c, pinned, sizeof pinned)) { /* we refused it: no probe */
            c->tls_failed = 1;
            snprintf(c->tls_why, sizeof c->tls_why, "this org refused the certificate: %.165s",
                     pinned);
        } else if (now - c->probed_at >= PROBE_EVERY_S) {
            mu_diag d = {{0}};
            c->probed_at = now;
            c->tls_failed = rpc_tls_probe(c->target, c->server_name, c->ca, c->cert, c->key,
                                          PROBE_TIMEOUT_S, &d) == MU_ERR_CRYPTO;
            snprintf(c->tls_why, sizeof c->tls_why, "%.199s", d.msg);
        }
        if (c->tls_failed) {
            int n = snprintf(st->message, sizeof st->message,
                             "TLS handshake with %.60s failed: ", c->target);
            if (n > 0 && (size_t)n < sizeof st->message)
                snprintf(st->message + n, sizeof st->message - (size_t)n, "%s", c->tls_why);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

int rpc_client_pin_refused(rpc_client *c, char *why, size_t cap)
{
    if (!c->pin)
        return 0;
    pthread_mutex_lock(&c->pin->mu);
    int refused = c->pin->refused;
    if (refused && why && cap)
        snprintf(why, cap, "%s", c->pin->why);
    pthread_mutex_unlock(&c->pin->mu);
    return refused;
}

int rpc_client_tls_failed(rpc_client *c, char *why, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    int failed = c->tls_failed;
    if (failed && why && cap)
        snprintf(why, cap, "%s", c->tls_why);
    pthread_mutex_unlock(&c->mu);
    return failed;
}

int rpc_client_unary(rpc_client *c, rpc_method m, const ProtobufCMessage *req, double timeout_s,
                     ProtobufCMessage **reply, rpc_status *st)
{
    const rpc_method_info *mi = rpc_method_get(m);
    *reply = NULL;
    if (mi->kind != RPC_UNARY || req->descriptor != mi->request)
        return local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_INVALID,
                          "wrong request type for this method");
    grpc_byte_buffer *rq = rpc_bb_pack(req), *bb = NULL;
    int rc = unary_raw(c, mi->path, rq, timeout_s, &bb, st);
    grpc_byte_buffer_destroy(rq);
    explain_failure(c, rc, st);
    if (rc == MU_OK) {
        rc = decode_reply(mi->reply, bb, reply, st);
        if (bb)
            grpc_byte_buffer_destroy(bb);
    }
    return rc;
}

/* Receives and checks one AdapterChunk; appends it to *out. Returns MU_OK, 1 at the end of
 * the stream, or an error with st set. */
static int download_step(ccall *k, rpc_blob *out, size_t *cap, uint64_t *total,
                         uint8_t sha[RPC_SHA256_BYTES], int first, uint64_t want_offset,
                         size_t max_total, rpc_status *st)
{
    grpc_byte_buffer *bb = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    if (ccall_start(k, &op, 1, &op) || !ccall_wait(k, &op) || !bb)
        return 1;
    ProtobufCMessage *m = NULL;
    int rc = decode_reply(&mutual__v1__adapter_chunk__descriptor, bb, &m, st);
    grpc_byte_buffer_destroy(bb);
    if (rc != MU_OK)
        return rc;
    const Mutual__V1__AdapterChunk *ch = (const void *)m;
    if (first) {
        if (ch->total > max_total) {
            rc = local_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, MU_ERR_INVALID,
                            "the adapter is larger than this client accepts");
            goto out;
        }
        *total = ch->total;
        out->round = ch->round;
        memcpy(sha, ch->sha256.data, RPC_SHA256_BYTES);
    } else if (ch->total != *total || ch->round != out->round ||
               memcmp(sha, ch->sha256.data, RPC_SHA256_BYTES)) {
        rc = local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_PROTOCOL,
                        "a chunk changed the adapter's round, size or hash");
        goto out;
    }
    if (ch->offset != want_offset + out->len) {
        rc = local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_PROTOCOL, "chunks out of order");
        goto out;
    }
    if (ch->data.len > *cap - out->len) {
        size_t ncap = *cap ? *cap * 2 : ch->data.len;
        if (ncap < out->len + ch->data.len)
            ncap = out->len + ch->data.len;
        if (ncap > *total - want_offset)
            ncap = *total - want_offset;
        uint8_t *p = realloc(out->data, ncap ? ncap : 1);
        if (!p) {
            rc = local_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, MU_ERR_NOMEM, "out of memory");
            goto out;
        }
        out->data = p;
        *cap = ncap;
    }
    if (ch->data.len)
        memcpy(out->data + out->len, ch->data.data, ch->data.len);
    out->len += ch->data.len;
out:
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

int rpc_client_download(rpc_client *c, const Mutual__V1__DownloadAdapterRequest *req,
                        double timeout_s, size_t max_total, rpc_blob *out, rpc_status *st)
{
    memset(out, 0, sizeof *out);
    ccall k;
    ccall_open(c, &k, rpc_method_get(RPC_DOWNLOAD_ADAPTER)->path, timeout_s);
    grpc_byte_buffer *rq = rpc_bb_pack(&req->base);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    op_send_md(&k, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = rq;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k.md_initial;
    int rc = MU_OK, chunks = 0;
    size_t cap = 0;
    uint64_t total = 0;
    uint8_t sha[RPC_SHA256_BYTES];
    if (!ccall_start(&k, ops, 4, ops) && ccall_wait(&k, ops)) {
        for (;;) {
            rc = download_step(&k, out, &cap, &total, sha, chunks == 0, req->offset, max_total, st);
            if (rc != MU_OK)
                break;
            chunks++;
        }
    }
    grpc_byte_buffer_destroy(rq);
    int local = rc < 0;
    if (local) /* we stopped reading: tell the server, then collect the status */
        grpc_call_cancel(k.call, NULL);
    grpc_op sop;
    memset(&sop, 0, sizeof sop);
    op_recv_status(&k, &sop);
    if (!ccall_start(&k, &sop, 1, &sop))
        ccall_wait(&k, &sop);
    if (!local) {
        rc = ccall_status(&k, st);
        if (rc == MU_OK && chunks == 0)
            rc = local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_PROTOCOL, "no chunk came");
        else if (rc == MU_OK && req->offset + out->len != total)
            rc = local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_PROTOCOL,
                            "the stream ended before the whole adapter");
    }
    if (rc == MU_OK && req->offset == 0) {
        uint8_t got[RPC_SHA256_BYTES];
        rpc_sha256(out->data ? out->data : (const uint8_t *)"", out->len, got);
        if (memcmp(got, sha, sizeof got))
            rc = local_fail(st, GRPC_STATUS_DATA_LOSS, MU_ERR_CRYPTO,
                            "the adapter does not match its SHA-256");
    }
    ccall_close(&k);
    if (rc != MU_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* Sends one UploadMaskedChunk; returns the batch's success flag. */
static int upload_chunk(ccall *k, const rpc_upload_meta *meta, const uint8_t *data, size_t len,
                        size_t off, size_t n, const uint8_t sha[RPC_SHA256_BYTES])
{
    Mutual__V1__UploadMaskedChunk ch = MUTUAL__V1__UPLOAD_MASKED_CHUNK__INIT;
    ch.api_version = RPC_API_VERSION;
    ch.org_id = meta->org_id;
    ch.round = meta->round;
    ch.stage = meta->stage;
    ch.offset = off;
    ch.total = len;
    ch.data.data = (uint8_t *)(data ? data + off : NULL);
    ch.data.len = n;
    ch.sha256.data = (uint8_t *)sha;
    ch.sha256.len = RPC_SHA256_BYTES;
    if (off + n == len && meta->signature) {
        ch.signature.data = (uint8_t *)meta->signature;
        ch.signature.len = meta->signature_len;
    }
    grpc_byte_buffer *bb = rpc_bb_pack(&ch.base);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int ok = !ccall_start(k, &op, 1, &op) && ccall_wait(k, &op);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

int rpc_client_upload(rpc_client *c, const rpc_upload_meta *meta, const uint8_t *data, size_t len,
                      size_t chunk_bytes, double timeout_s, Mutual__V1__UploadMaskedReply **reply,
                      rpc_status *st)
{
    *reply = NULL;
    size_t chunk = chunk_bytes ? chunk_bytes : DEFAULT_CHUNK;
    if (chunk > c->max_message - CHUNK_OVERHEAD)
        chunk = c->max_message - CHUNK_OVERHEAD;
    uint8_t sha[RPC_SHA256_BYTES];
    rpc_sha256(data ? data : (const uint8_t *)"", len, sha);
    ccall k;
    ccall_open(c, &k, rpc_method_get(RPC_UPLOAD_MASKED)->path, timeout_s);
    grpc_byte_buffer *rep = NULL;
    grpc_op md;
    memset(&md, 0, sizeof md);
    op_send_md(&k, &md);
    int ok = !ccall_start(&k, &md, 1, &md) && ccall_wait(&k, &md);
    /* The reply and status batch runs beside the sends: an early error ends them. */
    grpc_op rops[3];
    memset(rops, 0, sizeof rops);
    rops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    rops[0].data.recv_initial_metadata.recv_initial_metadata = &k.md_initial;
    rops[1].op = GRPC_OP_RECV_MESSAGE;
    rops[1].data.recv_message.recv_message = &rep;
    op_recv_status(&k, &rops[2]);
    int started = !ccall_start(&k, rops, 3, rops);
    size_t off = 0;
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        if (!ok || !upload_chunk(&k, meta, data, len, off, n, sha))
            break;
        off += n;
    } while (off < len);
    grpc_op cl;
    memset(&cl, 0, sizeof cl);
    cl.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (!ccall_start(&k, &cl, 1, &cl))
        ccall_wait(&k, &cl);
    int rc;
    if (!started) {
        rc = local_fail(st, GRPC_STATUS_INTERNAL, MU_ERR_STATE, "gRPC refused the batch");
    } else {
        ccall_wait(&k, rops);
        rc = ccall_status(&k, st);
        if (rc == MU_OK)
            rc = decode_reply(&mutual__v1__upload_masked_reply__descriptor, rep,
                              (ProtobufCMessage **)reply, st);
    }
    if (rep)
        grpc_byte_buffer_destroy(rep);
    ccall_close(&k);
    return rc;
}
