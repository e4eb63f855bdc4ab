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

/* Flattens a received byte buffer into a malloc'ed array (*out, *len); MU_OK or
 * MU_ERR_NOMEM. An empty buffer gives a non-NULL 1-byte allocation and *len 0. */
int rpc_bb_flatten(grpc_byte_buffer *bb, uint8_t **out, size_t *len);

/* A gpr_timespec `seconds` from now on the monotonic clock (<= 0: infinite future). */
gpr_timespec rpc_deadline_in(double seconds);

#endif
