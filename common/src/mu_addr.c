/* mu_addr.c - HOST:PORT parsing shared by the coordinator and org config loaders. */
#include "mu_addr.h"

#include <string.h>

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return MU_ERR_INVALID;
}

int mu_addr_parse(const char *addr, char *host, size_t host_cap, int *port, const char **why)
{
    if (!addr || !addr[0])
        return fail(why, "is empty (expected HOST:PORT)");
    const char *h = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close)
            return fail(why, "has no closing ']' (expected [IPV6]:PORT)");
        h = addr + 1;
        hlen = (size_t)(close - h);
        if (close[1] != ':')
            return fail(why, close[1] ? "has text after ']' that is not ':PORT'"
                                      : "has no port (expected [IPV6]:PORT)");
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return fail(why, "has no port (expected HOST:PORT)");
        if (memchr(addr, ':', (size_t)(colon - addr)))
            return fail(why, "has more than one ':' (write an IPv6 host in brackets: [::1]:7443)");
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0)
        return fail(why, "has no host (expected HOST:PORT)");
    const char *p = colon + 1;
    if (!*p)
        return fail(why, "has no port (expected HOST:PORT)");
    long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return fail(why, "has a port that is not a number");
        if (v <= 65535)
            v = v * 10 + (*q - '0');
    }
    if (v == 0)
        return fail(why, "has port 0 (the system would pick a random port; use 1-65535)");
    if (v > 65535)
        return fail(why, "has a port above 65535");
    if (host) {
        if (hlen >= host_cap)
            return fail(why, "has a host that is too long");
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = (int)v;
    return MU_OK;
}
