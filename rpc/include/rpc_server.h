/* rpc_server.h - the coordinator's side of the wire: one loop over a gRPC completion queue.
 *
 * One thread (the one in rpc_server_run) owns the completion queue and every call's state,
 * Redis-style. Every handler callback runs on that thread; a handler answers a call at
 * once or keeps the `rpc_call *` and answers later (a long poll), always from the server
 * thread: from a later callback, from the tick, or from a function another thread handed
 * over with rpc_server_post.
 *
 * Requests reach a handler already decoded and validated (rpc_msg_decode): a malformed
 * message is answered INVALID_ARGUMENT with a log line and never reaches the handler. The
 * request (and an rpc_upload) is valid only during the callback: copy what you keep. A
 * method whose handler is NULL, and any method not in mutual.v1, is answered
 * UNIMPLEMENTED.
 *
 * Life of a call: the `rpc_call *` a handler receives stays valid until the handler
 * answers it (rpc_call_reply, rpc_call_fail, rpc_call_stream_blob) or until the server
 * calls `cancelled` for it (the client gave up, its deadline passed, or the server is
 * stopping), whichever comes first. After that the pointer must not be used.
 */
#ifndef MU_RPC_SERVER_H
#define MU_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

/* An assembled client stream of UploadMasked, checked: chunks were contiguous, total and
 * sha256 matched, total <= the configured cap. Pointers are valid during the callback. */
typedef struct {
    uint64_t org_id, round;
    uint32_t stage;
    const uint8_t *data; /* (len) */
    size_t len;
    const uint8_t *signature; /* (signature_len), from the last chunk; may be empty */
    size_t signature_len;
} rpc_upload;

/* The coordinator's side: one callback per method, each may be NULL (UNIMPLEMENTED).
 * `user` is passed back unchanged. */
typedef struct {
    void *user;
    void (*join)(void *user, rpc_call *call, const Mutual__V1__JoinRequest *req);
    /* Long poll: may keep `call` and answer later; see rpc_call_deadline. */
    void (*pull_task)(void *user, rpc_call *call, const Mutual__V1__PullTaskRequest *req);
    void (*push_stage)(void *user, rpc_call *call, const Mutual__V1__PushStageRequest *req);
    /* Answer with rpc_call_stream_blob, or rpc_call_fail. */
    void (*download_adapter)(void *user, rpc_call *call,
                             const Mutual__V1__DownloadAdapterRequest *req);
    /* Called once the whole stream arrived; answer with an UploadMaskedReply. */
    void (*upload_masked)(void *user, rpc_call *call, const rpc_upload *up);
    /* Called on the first chunk of an UploadMasked stream, before anything is buffered,
     * with up->data NULL and up->len the announced total, and the call, whose caller
     * (rpc_call_peer, rpc_call_peer_fingerprint, rpc_call_peer_is_operator) is known:
     * return MU_OK to receive the stream, or refuse it at once and return a negative
     * mu_err code, either having answered the call (rpc_call_fail: your status and
     * message) or not (the client gets rpc_status_from_err(code)). The call must not be
     * kept. May be NULL: every stream under the cap is received. */
    int (*upload_check)(void *user, rpc_call *call, const rpc_upload *up);
    void (*status)(void *user, rpc_call *call, const Mutual__V1__StatusRequest *req);
    /* A call the handler kept was cancelled; forget the pointer. May be NULL. */
    void (*cancelled)(void *user, rpc_call *call);
    /* Every tick_ms, with mu_now(): check deadlines, answer held polls. May be NULL. */
    void (*tick)(void *user, rpc_server *srv, double now);
} rpc_handlers;

typedef struct {
    const char *address; /* "127.0.0.1:0" (port 0: the system picks; see rpc_server_port) */
    /* Mutual TLS (the default): PEM files of the federation CA, and the server's own
     * certificate and key. Clients must present a certificate signed by the CA. */
    const char *ca_path;
    const char *cert_path;
    const char *key_path;
    int insecure;              /* nonzero: plaintext, no identities (local experiments) */
    size_t max_message_bytes;  /* per message, both directions; 0: RPC_DEFAULT_MAX_MESSAGE */
    size_t max_upload_bytes;   /* total of one UploadMasked stream; 0: 256 MiB */
    unsigned tick_ms;          /* period of handlers.tick; 0: 50 */
    unsigned drain_timeout_ms; /* on stop, how long to wait (plus 5 s) for gRPC to release
                                  the cancelled calls before giving up; 0: 1000 */
} rpc_server_config;

/* Creates the server, binds the address (TLS, or plaintext with a loud warning when
 * cfg->insecure) and starts accepting calls; they are served once rpc_server_run runs.
 * Calls grpc_init (balanced by rpc_server_free). Returns NULL with diag set when the
 * certificates cannot be read or the address cannot be bound. */
rpc_server *rpc_server_new(const rpc_server_config *cfg, const rpc_handlers *h, mu_diag *diag);

/* The bound TCP port (useful with port 0). */
int rpc_server_port(const rpc_server *srv);

/* Runs the loop on the calling thread until rpc_server_stop, then shuts down in order:
 * stop accepting, cancel the calls in flight (`cancelled` for those a handler kept), wait
 * for gRPC to release them, drain the queue. Returns MU_OK, or MU_ERR_STATE if called
 * twice. */
int rpc_server_run(rpc_server *srv);

/* Asks the loop to stop. Thread-safe and async-signal-safe. */
void rpc_server_stop(rpc_server *srv);

/* Makes SIGINT and SIGTERM call rpc_server_stop(srv) (one server per process). Returns
 * MU_OK or MU_ERR_IO. */
int rpc_server_stop_on_signals(rpc_server *srv);

/* Hands fn(srv, arg) to the server thread, which runs it within about 10 ms, in the order
 * posted. Everything posted before the loop stops still runs (as the loop stops, before
 * the calls in flight are cancelled); after that, posting fails and fn is never called.
 * Thread-safe. Returns MU_OK, MU_ERR_NOMEM, or MU_ERR_STATE once the loop has stopped. */
int rpc_server_post(rpc_server *srv, void (*fn)(rpc_server *srv, void *arg), void *arg);

/* Frees a server that is not running (after rpc_server_run returned, or never run).
 * NULL is a no-op. */
void rpc_server_free(rpc_server *srv);

/* --- calls: only on the server thread, on a call the handler still holds --- */

/* The identity of the caller: the CN of its client certificate under TLS, or
 * "insecure:<peer address>" in plaintext mode. Valid while the call is. */
const char *rpc_call_peer(const rpc_call *call);

/* 1 if the caller's certificate (verified against the CA by TLS) is an operator certificate
 * (rpc_certs_issue_operator); always 0 in plaintext mode. */
int rpc_call_peer_is_operator(const rpc_call *call);

/* 1 and the SHA-256 of the caller's certificate (DER; verified against the CA by TLS) in out
 * (RPC_CERT_FPR_BYTES = 32, rpc_certs.h); 0 in plaintext mode or without a certificate. */
int rpc_call_peer_fingerprint(const rpc_call *call, uint8_t out[32]);

/* Which method the call is. */
rpc_method rpc_call_method(const rpc_call *call);

/* The call's deadline in mu_now() seconds (+infinity if the client set none). A long poll
 * should be answered (e.g. TASK_KIND_WAIT) a little before it. */
double rpc_call_deadline(const rpc_call *call);

/* Answers a unary or client-streaming call with `reply` (its type must be the method's
 * reply type; it is packed, the caller keeps ownership) and status OK. A reply that breaks
 * the wire rules (rpc_msg_validate, e.g. api_version not set) is not sent: the call is
 * answered INTERNAL, the reason logged, and MU_ERR_INVALID returned. In every case the call
 * is answered and released. */
int rpc_call_reply(rpc_call *call, const ProtobufCMessage *reply);

/* Answers any call with an error status (code != GRPC_STATUS_OK) and a message. */
void rpc_call_fail(rpc_call *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answers a DownloadAdapter call: streams data[offset..len) as AdapterChunk messages of at
 * most chunk_bytes data each (0: 1 MiB), each carrying sha256 (of the whole data), then
 * status OK. `data` is not copied: it must stay unchanged until release(ctx) is called on
 * the server thread (called exactly once, also on failure; release may be NULL). */
int rpc_call_stream_blob(rpc_call *call, uint64_t round, const uint8_t *data, size_t len,
                         uint64_t offset, const uint8_t sha256[RPC_SHA256_BYTES],
                         size_t chunk_bytes, void (*release)(void *ctx), void *ctx);

#endif
