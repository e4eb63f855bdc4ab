/* rpc_log.c - gRPC core's own log lines, routed through mu_log and rate-limited.
 *
 * gRPC core prints to stderr itself: one raw "Handshake failed with fatal error ..." line per
 * connection that fails TLS, without the peer, so anyone who can reach the port can flood
 * the coordinator's log. Here every gRPC line goes through one function: handshake failures
 * become "rpc: TLS handshake with PEER failed: REASON" (at most RPC_LOG_BURST per
 * RPC_LOG_WINDOW_S, then one summary line per window with the count), other gRPC errors are
 * warnings under their own limit, and gRPC's info/debug lines are mu_debug.
 *
 * The peer: gRPC does not say which connection failed. When a line is going to be printed,
 * the sockets of this process accepted on the server's port are listed (/proc/self/fd) and
 * the one that received data most recently, among those that never carried a call
 * (rpc_log_peer_seen), is named; it is a best guess, marked as such when there were several
 * candidates. Thread-safe: gRPC may log from any of its threads. */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <grpc/support/log.h>

#include "mu_log.h"
#include "mu_progress.h"
#include "rpc_internal.h"

#define SEEN_CAP 4096 /* peers that carried a call; cleared when full */
#define PEER_MAX 80

typedef struct { /* one rate limit: BURST lines per window, then a count */
    double window_start;
    unsigned printed, suppressed;
} limiter;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_port; /* the server's port, 0: no server in this process */
static limiter g_tls, g_other;
static char g_seen[SEEN_CAP][PEER_MAX];
static size_t g_n_seen;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of `peer` in the open-addressed set (its own or the empty one to fill). Locked. */
static size_t seen_slot(const char *peer)
{
    size_t i = fnv(peer) % SEEN_CAP;
    while (g_seen[i][0] && strcmp(g_seen[i], peer) != 0)
        i = (i + 1) % SEEN_CAP;
    return i;
}

void rpc_log_peer_seen(const char *peer)
{
    if (!peer || strlen(peer) >= PEER_MAX)
        return;
    pthread_mutex_lock(&g_mu);
    if (g_n_seen >= SEEN_CAP / 2) { /* stale entries of closed connections: start over */
        memset(g_seen, 0, sizeof g_seen);
        g_n_seen = 0;
    }
    size_t i = seen_slot(peer);
    if (!g_seen[i][0]) {
        snprintf(g_seen[i], PEER_MAX, "%s", peer);
        g_n_seen++;
    }
    pthread_mutex_unlock(&g_mu);
}

/* "ipv4:1.2.3.4:5" / "ipv6:[::1]:5", as grpc_call_get_peer writes them. */
static int peer_str(const struct sockaddr_storage *a, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)a;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        return snprintf(out, cap, "ipv4:%s:%u", ip, ntohs(s->sin_port)) > 0;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)a;
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) { /* gRPC names these ipv4: */
            inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], ip, sizeof ip);
            return snprintf(out, cap, "ipv4:%s:%u", ip, ntohs(s->sin6_port)) > 0;
        }
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        return snprintf(out, cap, "ipv6:[%s]:%u", ip, ntohs(s->sin6_port)) > 0;
    }
    return 0;
}

static int port_of(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)a)->sin6_port);
    return -1;
}

/* The best guess at the peer whose handshake just failed (see the top), or "an unknown
 * peer". Locked (reads g_seen). */
static void guess_peer(char *out, size_t cap)
{
    snprintf(out, cap, "an unknown peer");
    DIR *dir = g_port ? opendir("/proc/self/fd") : NULL;
    if (!dir)
        return;
    /* gRPC has read what the failing peer sent: its receive queue is empty, while the
     * connections still waiting for their turn have their first bytes queued. */
    unsigned best_idle = UINT32_MAX, candidates = 0;
    int best_read = 0;
    char best[PEER_MAX] = "";
    struct dirent *e;
    while ((e = readdir(dir))) {
        int fd = atoi(e->d_name);
        struct stat st;
        struct sockaddr_storage local, peer;
        socklen_t ll = sizeof local, pl = sizeof peer;
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(dir) || fstat(fd, &st) ||
            !S_ISSOCK(st.st_mode) || getsockname(fd, (struct sockaddr *)&local, &ll) ||
            port_of(&local) != g_port || getpeername(fd, (struct sockaddr *)&peer, &pl))
            continue;
        char name[PEER_MAX];
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        if (!peer_str(&peer, name, sizeof name) || g_seen[seen_slot(name)][0] ||
            getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl))
            continue;
        int queued = 0;
        int read_all = ioctl(fd, FIONREAD, &queued) == 0 && queued == 0;
        if (read_all < best_read)
            continue;
        if (read_all > best_read) { /* the first fully read connection: a better class */
            best_read = 1;
            candidates = 0;
            best_idle = UINT32_MAX;
        }
        candidates++;
        if (ti.tcpi_last_data_recv < best_idle) {
            best_idle = ti.tcpi_last_data_recv;
            snprintf(best, sizeof best, "%s", name);
        }
    }
    closedir(dir);
    if (candidates == 1)
        snprintf(out, cap, "%s", best);
    else if (candidates > 1)
        snprintf(out, cap, "%s (likely; %u connections were handshaking)", best, candidates);
}

/* Starts a new window when the old one is over, printing its summary. Locked. */
static void roll(limiter *l, double now, const char *what, int force)
{
    if (!force && now - l->window_start < RPC_LOG_WINDOW_S)
        return;
    if (l->suppressed)
        mu_warn("rpc: %u more %s in the last %.0f s (not logged one by one)", l->suppressed, what,
                now - l->window_start);
    l->window_start = now;
    l->printed = l->suppressed = 0;
}

/* 1 if the limiter allows one more line now. Locked. */
static int allow(limiter *l, double now, const char *what)
{
    roll(l, now, what, 0);
    if (l->printed < RPC_LOG_BURST) {
        l->printed++;
        return 1;
    }
    l->suppressed++;
    return 0;
}

static const char TLS_WHAT[] = "TLS handshake failures";
static const char OTHER_WHAT[] = "gRPC errors";

static void route(gpr_log_func_args *a)
{
    const char *m = a->message ? a->message : "";
    static const char hs[] = "Handshake failed with fatal error ";
    double now = mu_now();
    if (strncmp(m, hs, sizeof hs - 1) == 0 || strncmp(m, "Handshake failed", 16) == 0) {
        const char *why = strncmp(m, hs, sizeof hs - 1) == 0 ? m + sizeof hs - 1 : m;
        pthread_mutex_lock(&g_mu);
        if (allow(&g_tls, now, TLS_WHAT)) {
            char peer[PEER_MAX + 64];
            guess_peer(peer, sizeof peer);
            if (g_port)
                mu_warn("rpc: TLS handshake with %s failed: %s", peer, why);
            else
                mu_debug("rpc: TLS handshake failed: %s", why);
        }
        pthread_mutex_unlock(&g_mu);
        return;
    }
    if (a->severity != GPR_LOG_SEVERITY_ERROR) {
        mu_debug("grpc: %s (%s:%d)", m, a->file, a->line);
        return;
    }
    pthread_mutex_lock(&g_mu);
    if (allow(&g_other, now, OTHER_WHAT))
        mu_warn("grpc: %s (%s:%d)", m, a->file, a->line);
    pthread_mutex_unlock(&g_mu);
}

static void install(void)
{
    gpr_set_log_function(route);
}

void rpc_log_install(void)
{
    pthread_once(&g_once, install);
}

void rpc_log_server_port(int port)
{
    pthread_mutex_lock(&g_mu);
    g_port = port;
    pthread_mutex_unlock(&g_mu);
}

void rpc_log_flush(int force)
{
    double now = mu_now();
    pthread_mutex_lock(&g_mu);
    roll(&g_tls, now, TLS_WHAT, force);
    roll(&g_other, now, OTHER_WHAT, force);
    pthread_mutex_unlock(&g_mu);
}
