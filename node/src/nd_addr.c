/* nd_addr.c - which addresses insecure (plaintext, unauthenticated) mode may use. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nd_internal.h"

int nd_addr_is_loopback(const char *addr)
{
    if (!addr)
        return 0;
    /* gRPC target prefixes naming the address family or the resolver */
    static const char *const pfx[] = {"dns:///", "dns:", "ipv4:", "ipv6:", NULL};
    for (int i = 0; pfx[i]; i++) {
        size_t n = strlen(pfx[i]);
        if (strncmp(addr, pfx[i], n) == 0) {
            addr += n;
            break;
        }
    }
    char host[256];
    size_t len;
    if (addr[0] == '[') { /* [v6]:port */
        const char *end = strchr(addr, ']');
        if (!end || (end[1] != '\0' && end[1] != ':'))
            return 0;
        len = (size_t)(end - addr - 1);
        addr++;
    } else {
        const char *colon = strrchr(addr, ':');
        len = colon ? (size_t)(colon - addr) : strlen(addr);
        if (colon && memchr(addr, ':', len))
            return 0; /* a bare IPv6 address without brackets: ambiguous, refuse */
    }
    if (len == 0 || len >= sizeof host)
        return 0;
    memcpy(host, addr, len);
    host[len] = '\0';
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
    return 0;
}

int nd_insecure_check(const char *what, const char *addr, mu_diag *diag)
{
    if (nd_addr_is_loopback(addr))
        return MU_OK;
    return mu_diag_set(diag, MU_ERR_INVALID,
                       "insecure mode refused: %s '%s' is not a loopback address; --insecure / "
                       "insecure: true is for local tests only (use 127.0.0.1, localhost or "
                       "[::1], or configure TLS)",
                       what, addr ? addr : "");
}
