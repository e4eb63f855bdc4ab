/* mu_addr.h - "HOST:PORT" network addresses in config files (server.listen, coordinator.address).
 *
 * One parser for every place that reads an address, so `mutual config check` refuses what the
 * server or client would later misread: a missing port, a port that is not a number, port 0
 * (the system would pick a random one) or a port above 65535. IPv6 hosts go in brackets:
 * "[::1]:7443".
 */
#ifndef MU_ADDR_H
#define MU_ADDR_H

#include <stddef.h>

#include "mu_err.h"

/* Splits `addr` into its host and port (1..65535). MU_OK, or MU_ERR_INVALID with *why set to a
 * static phrase that completes "address 'x' ..." (e.g. "has no port (expected HOST:PORT)").
 * `host` (may be NULL) receives the host without brackets; `port` may be NULL; `why` may be NULL.
 * A host that does not fit in host_cap is an error. */
int mu_addr_parse(const char *addr, char *host, size_t host_cap, int *port, const char **why);

#endif
