/* rpc_internal.h - helpers shared by the files of mu_rpc, not part of its contract. */
#ifndef MU_RPC_INTERNAL_H
#define MU_RPC_INTERNAL_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "rpc.h"

/* Server credentials that require a client certificate signed by ca_path, or NULL with
 * diag set when a file cannot be read. */
grpc_server_credentials *rpc_tls_server_creds(const char *ca_path, const char *cert_path,
                                              const char *key_path, mu_diag *diag);

/* Channel credentials presenting cert/key and trusting ca_path, or NULL with diag set. */
grpc_channel_credentials *rpc_tls_channel_creds(const char *ca_path, const char *cert_path,
                                                const char *key_path, mu_diag *diag);

/* Copies `len` bytes into a new byte buffer (one slice). */
grpc_byte_buffer *rpc_bb_from(const uint8_t *data, size_t len);

/* Packs a message straight into a new byte buffer (one slice, no intermediate copy).
 * gRPC aborts if memory runs out, so this never returns NULL. */
grpc_byte_buffer *rpc_bb_pack(const ProtobufCMessage *msg);

/* Decodes and validates a received byte buffer as rpc_msg_decode does (the buffer is not
 * consumed). NULL with diag set on bad bytes. */
ProtobufCMessage *rpc_bb_decode(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                                mu_diag *diag);

/* A gpr_timespec `seconds` from now on the monotonic clock (<= 0: infinite future). */
gpr_timespec rpc_deadline_in(double seconds);

#endif
