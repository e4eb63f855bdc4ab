/* rpc_server_int.h - the server's state, shared by rpc_server.c (the loop) and
 * rpc_server_call.c (one call's life). Everything here belongs to the server thread,
 * except the post queue (under `mu`) and `stop` (atomic). */
#ifndef MU_RPC_SERVER_INT_H
#define MU_RPC_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "rpc_certs.h"
#include "rpc_internal.h"
#include "rpc_server.h"

typedef enum { TAG_NEW, TAG_CLOSE, TAG_SEND, TAG_RECV, TAG_STATUS, TAG_SHUTDOWN } rpc_tag_kind;

/* What a completion-queue event points at. */
typedef struct {
    rpc_tag_kind kind;
    rpc_call *call; /* NULL for TAG_SHUTDOWN */
} rpc_tag;

#define RPC_PEER_MAX 160

struct rpc_call {
    rpc_server *srv;
    int method; /* rpc_method, or -1 for the generic (unknown-method) request */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* generic request only */
    grpc_byte_buffer *payload; /* the request of unary and server-streaming methods */
    grpc_byte_buffer *recv;    /* the chunk being received (client streaming) */
    grpc_byte_buffer *send;    /* the message being sent */
    grpc_slice status_details; /* message of the status being sent */
    int client_cancelled;      /* output of RECV_CLOSE_ON_SERVER */
    rpc_tag t_new, t_close, t_send, t_recv, t_status;
    int pending;             /* batches (or the request) in flight */
    unsigned started : 1;    /* the request completed: a grpc_call exists */
    unsigned closed : 1;     /* RECV_CLOSE_ON_SERVER completed */
    unsigned held : 1;       /* a handler has the pointer and has not answered */
    unsigned answered : 1;   /* nothing more will be sent (status sent or call dead) */
    unsigned md_sent : 1;    /* initial metadata went out */
    char peer[RPC_PEER_MAX]; /* identity shown to handlers */
    int is_operator;         /* its certificate carries the operator OU (rpc_certs.h) */
    int has_fpr;             /* peer_fpr holds its certificate's fingerprint */
    uint8_t peer_fpr[32];    /* SHA-256 of the client certificate's DER (RPC_CERT_FPR_BYTES) */

    /* server streaming (DownloadAdapter) */
    const uint8_t *blob;
    size_t blob_len, blob_off, chunk;
    uint64_t blob_round;
    uint8_t blob_sha[RPC_SHA256_BYTES];
    void (*release)(void *ctx);
    void *release_ctx;

    /* client streaming (UploadMasked) */
    uint8_t *up;
    size_t up_len, up_cap;
    uint64_t up_total, up_org, up_round;
    uint32_t up_stage;
    int up_chunks;
    uint8_t up_sha[RPC_SHA256_BYTES];
    uint8_t up_sig[RPC_ED25519_SIG_BYTES];
    size_t up_sig_len;

    rpc_call *prev, *next; /* srv->calls */
};

typedef struct rpc_post {
    void (*fn)(rpc_server *srv, void *arg);
    void *arg;
    struct rpc_post *next;
} rpc_post;

/* A client certificate's identity (fingerprint, operator OU) remembered by its PEM bytes,
 * which it is a function of: gRPC hands the server the same PEM on every call of a
 * connection, and parsing it is most of an mTLS call's server time (tests/rpc/rpc_bench). */
#define RPC_PEER_MEMO     32   /* distinct certificates remembered, replaced in turn */
#define RPC_PEER_MEMO_PEM 8192 /* a longer PEM is parsed on every call */
typedef struct {
    char *pem; /* (len) the whole PEM, or NULL: an empty slot */
    size_t len;
    uint8_t fpr[RPC_CERT_FPR_BYTES];
    int is_operator;
} rpc_peer_memo;

struct rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    void *reg[RPC_METHOD_COUNT];
    rpc_handlers h;
    int insecure;
    int port;
    size_t max_upload;
    double tick_s, drain_s;
    atomic_int stop;
    int ran;  /* rpc_server_run was called */
    int shut; /* grpc_server_shutdown_and_notify was called */
    int down; /* fully shut down: queue drained, server destroyed */
    pthread_mutex_t mu;
    rpc_post *posts, **posts_tail;      /* under mu */
    int posts_closed;                   /* under mu */
    rpc_call *calls;                    /* every call object, for shutdown */
    rpc_peer_memo peers[RPC_PEER_MEMO]; /* server thread only */
    unsigned peers_next;
};

/* Asks gRPC for the next call of `method` (-1: generic). Returns MU_OK or MU_ERR_NOMEM. */
int rpc_srv_request(rpc_server *srv, int method);

/* Handles one completion of a call's batch. */
void rpc_srv_call_event(rpc_call *c, rpc_tag_kind kind, int ok);

/* Frees a call object (its grpc_call, buffers, blob) and unlinks it. */
void rpc_srv_call_destroy(rpc_call *c);

#endif
