/* rpc_client.h - an org's (or an operator's) side of the wire: blocking calls over one
 * channel to the coordinator.
 *
 * Each call makes its own completion queue, so one rpc_client may be used by several
 * threads at once. Every call takes a timeout (seconds from now; <= 0 means none) and,
 * when the client was made with wait_for_ready, waits for the coordinator to come up
 * instead of failing UNAVAILABLE at once.
 *
 * Every call returns MU_OK, or a negative mu_err code with *st holding the gRPC status
 * code and message (rpc_err_from_status maps one to the other; a reply that does not
 * decode gives MU_ERR_FORMAT with st->code GRPC_STATUS_INTERNAL). `st` may be NULL.
 */
#ifndef MU_RPC_CLIENT_H
#define MU_RPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

typedef struct rpc_client rpc_client;

typedef struct {
    const char *target; /* "host:port" of the coordinator */
    /* Mutual TLS (the default): the federation CA (to check the coordinator), and the
     * org's own certificate and key (its identity). */
    const char *ca_path;
    const char *cert_path;
    const char *key_path;
    const char *server_name;  /* name to check the coordinator's certificate for; NULL:
                                 the host of target */
    int insecure;             /* nonzero: plaintext (local experiments only) */
    int wait_for_ready;       /* nonzero: calls wait for the coordinator to be reachable */
    size_t max_message_bytes; /* per message, both directions; 0: RPC_DEFAULT_MAX_MESSAGE */
    unsigned max_reconnect_backoff_ms; /* longest wait between reconnection attempts after
                                          the coordinator went away; 0: 5000 (gRPC's own
                                          default is 120 s) */
    /* NULL, or 32 bytes: the SHA-256 (of the DER) the coordinator's certificate must have,
     * besides being CA-valid. A handshake with another certificate is refused by this side
     * before any request is sent (calls then fail UNAVAILABLE or DEADLINE_EXCEEDED; see
     * rpc_client_pin_refused). */
    const uint8_t *server_fingerprint;
} rpc_client_config;

/* Makes a channel (it connects lazily, on the first call). Calls grpc_init (balanced by
 * rpc_client_free). Returns NULL with diag set when a PEM file cannot be read. */
rpc_client *rpc_client_new(const rpc_client_config *cfg, mu_diag *diag);

/* Frees the client; every call on it must have returned. NULL is a no-op. */
void rpc_client_free(rpc_client *c);

/* A unary call (RPC_JOIN, RPC_PULL_TASK, RPC_PUSH_STAGE, RPC_STATUS): sends `req` (of the
 * method's request type) and on success stores the decoded, validated reply in *reply
 * (free with protobuf_c_message_free_unpacked(*reply, NULL)); *reply is NULL on failure. */
int rpc_client_unary(rpc_client *c, rpc_method m, const ProtobufCMessage *req, double timeout_s,
                     ProtobufCMessage **reply, rpc_status *st);

/* A unary call that fails UNAVAILABLE or DEADLINE_EXCEEDED under TLS is explained: one TLS
 * handshake with the client's own files (at most every 5 s, up to 3 s) tells a refused or
 * unverifiable certificate from a coordinator that is down, and st->message then reads
 * "TLS handshake with TARGET failed: <which side refused what>".
 * rpc_client_tls_failed: 1 if the last failed call was such a TLS failure (its reason copied
 * to why, cap bytes, may be NULL), 0 if it was not or the last call succeeded. */
int rpc_client_tls_failed(rpc_client *c, char *why, size_t cap);

/* 1 if this side refused a handshake because the coordinator's certificate was not the
 * pinned one (rpc_client_config.server_fingerprint) since the client was made, with the
 * reason (both fingerprints) copied to why (cap bytes, may be NULL); else 0. Thread-safe. */
int rpc_client_pin_refused(rpc_client *c, char *why, size_t cap);

/* Typed forms of rpc_client_unary, one per unary method. */
static inline int rpc_client_join(rpc_client *c, const Mutual__V1__JoinRequest *req,
                                  double timeout_s, Mutual__V1__JoinReply **reply, rpc_status *st)
{
    return rpc_client_unary(c, RPC_JOIN, &req->base, timeout_s, (ProtobufCMessage **)reply, st);
}

static inline int rpc_client_pull_task(rpc_client *c, const Mutual__V1__PullTaskRequest *req,
                                       double timeout_s, Mutual__V1__Task **reply, rpc_status *st)
{
    return rpc_client_unary(c, RPC_PULL_TASK, &req->base, timeout_s, (ProtobufCMessage **)reply,
                            st);
}

static inline int rpc_client_push_stage(rpc_client *c, const Mutual__V1__PushStageRequest *req,
                                        double timeout_s, Mutual__V1__PushStageReply **reply,
                                        rpc_status *st)
{
    return rpc_client_unary(c, RPC_PUSH_STAGE, &req->base, timeout_s, (ProtobufCMessage **)reply,
                            st);
}

static inline int rpc_client_status(rpc_client *c, const Mutual__V1__StatusRequest *req,
                                    double timeout_s, Mutual__V1__StatusReply **reply,
                                    rpc_status *st)
{
    return rpc_client_unary(c, RPC_STATUS, &req->base, timeout_s, (ProtobufCMessage **)reply, st);
}

/* The downloaded adapter of rpc_client_download. */
typedef struct {
    uint64_t round;
    uint8_t *data; /* (len), malloc'ed: free() it */
    size_t len;
} rpc_blob;

/* DownloadAdapter: receives every chunk, checks that they are contiguous from
 * req->offset, that total is the same in each and <= max_total, and that the SHA-256 of
 * the whole matches (only checked when req->offset is 0). On success *out holds bytes
 * [req->offset, total). */
int rpc_client_download(rpc_client *c, const Mutual__V1__DownloadAdapterRequest *req,
                        double timeout_s, size_t max_total, rpc_blob *out, rpc_status *st);

/* What identifies an UploadMasked stream. */
typedef struct {
    uint64_t org_id, round;
    uint32_t stage;
    const uint8_t *signature; /* (signature_len), sent in the last chunk; may be NULL */
    size_t signature_len;
} rpc_upload_meta;

/* UploadMasked: sends data[0..len) as chunks of at most chunk_bytes (0: 1 MiB) with its
 * SHA-256, and on success stores the reply in *reply (free as for rpc_client_unary). */
int rpc_client_upload(rpc_client *c, const rpc_upload_meta *meta, const uint8_t *data, size_t len,
                      size_t chunk_bytes, double timeout_s, Mutual__V1__UploadMaskedReply **reply,
                      rpc_status *st);

/* Sends raw bytes to any method path as one unary request and reports the status; the
 * reply (if any) is discarded. For tests and probes of how a server treats bad input. */
int rpc_client_raw_unary(rpc_client *c, const char *path, const uint8_t *data, size_t len,
                         double timeout_s, rpc_status *st);

#endif
