/* rpc_internal.h - helpers shared by the files of mu_rpc, not part of its contract. */
#ifndef MU_RPC_INTERNAL_H
#define MU_RPC_INTERNAL_H

#include <pthread.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "rpc.h"

/* Server credentials that require a client certificate signed by ca_path, or NULL with
 * diag set when a file cannot be read. */
grpc_server_credentials *rpc_tls_server_creds(const char *ca_path, const char *cert_path,
                                              const char *key_path, mu_diag *diag);

/* What a client pins of the coordinator's certificate: its fingerprint. Shared by the client
 * and gRPC's handshake callback (any thread), which frees it once the credentials go. */
typedef struct {
    uint8_t want[32]; /* SHA-256 of the DER */
    pthread_mutex_t mu;
    int refused;   /* under mu: a handshake was refused for another certificate */
    char why[240]; /* under mu */
} rpc_pin;

/* Channel credentials presenting cert/key and trusting ca_path, or NULL with diag set. With
 * pin (may be NULL) the server's certificate must also have pin->want as its fingerprint;
 * the credentials then own pin (freed with them, also on failure). */
grpc_channel_credentials *rpc_tls_channel_creds(const char *ca_path, const char *cert_path,
                                                const char *key_path, rpc_pin *pin, mu_diag *diag);

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

/* rpc_tls_probe.c: one TCP connection and TLS handshake to `target` with the client's files
 * (server_name NULL or "": the target's host is checked), to say why a channel does not come
 * up. MU_OK: the coordinator accepted us (or did not answer within timeout_s after the
 * handshake); MU_ERR_IO: no TCP connection (diag says why); MU_ERR_CRYPTO: the handshake
 * failed, diag says which side refused what; MU_ERR_INVALID: our own files or target are
 * unusable. */
int rpc_tls_probe(const char *target, const char *server_name, const char *ca, const char *cert,
                  const char *key, double timeout_s, mu_diag *diag);

/* rpc_log.c: gRPC core's log lines through mu_log (see there). A handshake failure is one
 * line naming the (likely) peer, at most RPC_LOG_BURST per RPC_LOG_WINDOW_S, then a count
 * per window; other gRPC errors have the same limit. */
#define RPC_LOG_BURST    5
#define RPC_LOG_WINDOW_S 60.0
/* Routes gRPC's logging (gpr_set_log_function), once per process; before grpc_init. */
void rpc_log_install(void);
/* The port of this process's server, whose accepted connections are the candidates when a
 * handshake fails (0: none; handshake failures are then debug lines, as for a client). */
void rpc_log_server_port(int port);
/* A call arrived from `peer` (grpc_call_get_peer): its connection is not handshaking. */
void rpc_log_peer_seen(const char *peer);
/* Prints the summary of the current window now if it is over, or at once with force. */
void rpc_log_flush(int force);

#endif
