/* nd_internal.h - what the files of the network driver share. */
#ifndef ND_INTERNAL_H
#define ND_INTERNAL_H

#include "co_config.h"
#include "co_round.h"
#include "nd.h"
#include "nd_orgcfg.h"

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

/* nd_preflight.c: the TLS identity of the coordinator (a server certificate; with warn_host,
 * a listen host its subjectAltName lacks is logged as a warning, since orgs may dial another
 * name) and of an org (a client certificate whose CN is org.name), checked with
 * rpc_certs_check. MU_OK or MU_ERR_* with diag. */
int nd_tls_check_server(const co_config *cfg, int warn_host, mu_diag *diag);
int nd_tls_check_org(const nd_orgcfg *cfg, mu_diag *diag);

/* nd_access.c: 1 if the caller `peer` (its certificate's CN) may read Status: an operator
 * certificate (rpc_call_peer_is_operator), a member - an org on the allowlist, or any
 * registered org when there is no allowlist - or anyone in insecure (loopback) mode. */
int nd_status_allowed(const co_config *cfg, const co_round *r, const char *peer, int is_operator,
                      int insecure);

/* Key rotation: every org of a loaded checkpoint (orgs, n_orgs) whose name the orgs list pins
 * to another key gets the pinned key (one warning line each), so after a restart the org
 * registers again under its old id with its new key, and its old key is refused. Returns
 * how many keys were replaced. */
size_t nd_rotate_pinned_keys(const co_config *cfg, co_org *orgs, size_t n_orgs);

#endif
