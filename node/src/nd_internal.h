/* nd_internal.h - what the files of the network driver share. */
#ifndef ND_INTERNAL_H
#define ND_INTERNAL_H

#include "nd.h"

/* A model with zeroed base weights (shapes from spec->base/config.json) and LoRA attached
 * as the spec says: the coordinator needs only the LoRA tensors (initial global, export).
 * *cfg_out (may be NULL) receives the validated config. NULL with diag on failure. */
tr_model *nd_model_skeleton(const nd_model_spec *spec, tr_config *cfg_out, mu_diag *diag);

/* 1 if the gRPC address `addr` ("host:port", "[v6]:port", optionally "dns:///", "ipv4:" or
 * "ipv6:" in front) names a loopback host: 127.0.0.0/8, localhost or ::1. 0 otherwise,
 * including 0.0.0.0, other hosts and anything it cannot parse. */
int nd_addr_is_loopback(const char *addr);

/* Insecure mode (plaintext, no peer authentication) is for local tests only: MU_OK when
 * `addr` is loopback, else MU_ERR_INVALID with a one-line reason naming `what` ("listen
 * address", "coordinator address") and the address. */
int nd_insecure_check(const char *what, const char *addr, mu_diag *diag);

/* Prints "mutual CMD: <diag>" to stderr and exits with status 2 (the CLI's usage/config
 * error), for config errors found by nd_serve_run / nd_join_run before anything started. */
_Noreturn void nd_usage_exit(const char *cmd, const mu_diag *diag);

#endif
