/* rpc.h - what the server and the client of the mutual.v1 wire share: the method table,
 * message decoding with validation, and the mapping between gRPC status codes and mu_err.
 *
 * Messages are the protobuf-c types generated from proto/mutual.proto (mutual.pb-c.h).
 * Everything here is thread-safe (tables are constant, functions keep no state).
 */
#ifndef MU_RPC_H
#define MU_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#include "mu_err.h"
#include "mutual.pb-c.h"

/* The api_version every request and reply of mutual.v1 carries. */
#define RPC_API_VERSION 1

/* Limits checked by the validators (bytes unless named otherwise). */
#define RPC_NAME_MAX          64  /* org and federation names */
#define RPC_VERSION_STR_MAX   64  /* software version strings */
#define RPC_ED25519_PK_BYTES  32  /* JoinRequest.signing_public_key */
#define RPC_ED25519_SIG_BYTES 64  /* signatures, when present */
#define RPC_SHA256_BYTES      32  /* AdapterChunk / UploadMaskedChunk sha256 */
#define RPC_REASON_MAX        256 /* reasons and stage names */

/* Clients ping an idle call this often; servers accept pings half as far apart. */
#define RPC_KEEPALIVE_MS 20000

/* Default message size limit of both ends (gRPC's own default is 4 MiB). */
#define RPC_DEFAULT_MAX_MESSAGE (16u << 20)

/* The methods of mutual.v1.Coordinator, in proto order. */
typedef enum {
    RPC_JOIN = 0,
    RPC_PULL_TASK,
    RPC_PUSH_STAGE,
    RPC_DOWNLOAD_ADAPTER,
    RPC_UPLOAD_MASKED,
    RPC_STATUS,
    RPC_METHOD_COUNT
} rpc_method;

/* How a method streams. protoc-c's service descriptor does not say, so we keep it here. */
typedef enum {
    RPC_UNARY = 0,
    RPC_SERVER_STREAMING, /* one request, a stream of replies */
    RPC_CLIENT_STREAMING, /* a stream of requests, one reply */
} rpc_method_kind;

typedef struct {
    const char *path; /* gRPC path, "/mutual.v1.Coordinator/Join" */
    rpc_method_kind kind;
    const ProtobufCMessageDescriptor *request; /* type of each request message */
    const ProtobufCMessageDescriptor *reply;   /* type of each reply message */
} rpc_method_info;

/* The table entry of method m (m < RPC_METHOD_COUNT; anything else aborts). */
const rpc_method_info *rpc_method_get(rpc_method m);

/* The method whose path is `path` (length len, not NUL-terminated), or -1. */
int rpc_method_find(const char *path, size_t len);

/* Unpacks `len` bytes as a message of type `desc` and validates it (api_version set,
 * lengths and ranges of every field; see rpc_msg_validate). Returns the message, to be
 * freed with protobuf_c_message_free_unpacked(msg, NULL), or NULL with diag set when the
 * bytes are not a well-formed, valid message. */
ProtobufCMessage *rpc_msg_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                 size_t len, mu_diag *diag);

/* Checks the field rules of a message of mutual.v1 (any type of this package).
 * Returns MU_OK or MU_ERR_FORMAT with diag naming the field. */
int rpc_msg_validate(const ProtobufCMessage *msg, mu_diag *diag);

/* Packs `msg` into a new heap buffer (*out, *len; free() it). Returns MU_OK or
 * MU_ERR_NOMEM. */
int rpc_msg_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len);

/* The mu_err code for a gRPC status (GRPC_STATUS_OK -> MU_OK). */
int rpc_err_from_status(grpc_status_code code);

/* The gRPC status a handler should answer for a mu_err code (MU_OK -> GRPC_STATUS_OK). */
grpc_status_code rpc_status_from_err(int err);

/* A static name for a gRPC status code ("UNAVAILABLE"). Never NULL. */
const char *rpc_status_name(grpc_status_code code);

/* SHA-256 of data[0..len) into out[RPC_SHA256_BYTES]. */
void rpc_sha256(const uint8_t *data, size_t len, uint8_t out[RPC_SHA256_BYTES]);

/* The outcome of a call as the client saw it: the gRPC status code and its message. */
typedef struct {
    grpc_status_code code;
    char message[256];
} rpc_status;

#endif
