/* rpc_tls_probe.c - why a TLS channel does not come up: one TCP connection and one TLS
 * handshake made with OpenSSL and the client's own files, read for a plain reason. gRPC only
 * says "Socket closed" or DEADLINE_EXCEEDED when the coordinator refuses our certificate. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mu_addr.h"
#include "rpc_internal.h"

/* "dns:///h:p", "ipv4:h:p", "ipv6:[h]:p" or "h:p" -> host, port. */
static int split_target(const char *target, char *host, size_t cap, int *port)
{
    static const char *const prefixes[] = {"dns:///", "dns:", "ipv4:", "ipv6:"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(target, prefixes[i], strlen(prefixes[i]))) {
            target += strlen(prefixes[i]);
            break;
        }
    return mu_addr_parse(target, host, cap, port, NULL);
}

/* A connected TCP socket (send/receive timeouts set), or -1 with diag. */
static int dial(const char *host, int port, double timeout_s, mu_diag *d)
{
    char ports[8];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(host, ports, &hints, &res);
    if (e) {
        mu_diag_set(d, MU_ERR_IO, "cannot resolve '%s': %s", host, gai_strerror(e));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int ok = fd >= 0;
    if (ok && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        ok = errno == EINPROGRESS && poll(&p, 1, (int)(timeout_s * 1e3)) == 1 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
        if (!ok)
            mu_diag_set(d, MU_ERR_IO, "cannot connect to %s:%d: %s", host, port,
                        err ? strerror(err) : "timed out");
    }
    freeaddrinfo(res);
    if (!ok) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {(time_t)timeout_s,
                         (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key, mu_diag *d)
{
    static const unsigned char alpn[] = "\x02h2";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
        mu_diag_set(d, MU_ERR_INVALID, "cannot load our TLS files (%s, %s, %s)", ca, cert, key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* The name the client checks in the server's certificate: an IP or a DNS name. */
static void expect_name(SSL *ssl, const char *name)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    } else {
        SSL_set_tlsext_host_name(ssl, name);
        SSL_set1_host(ssl, name);
    }
}

/* Why SSL_connect or the first SSL_read failed, as a sentence. */
static int explain(SSL *ssl, const char *ca, const char *name, int during_handshake, mu_diag *d)
{
    long v = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_last_error();
    char buf[160];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (during_handshake && v != X509_V_OK) {
        if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
            return mu_diag_set(d, MU_ERR_CRYPTO,
                               "the coordinator's certificate does not name '%s' (see "
                               "coordinator.server_name)",
                               name);
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "we do not trust the coordinator's certificate (%s) with CA file %s",
                           X509_verify_cert_error_string(v), ca);
    }
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (during_handshake && ERR_GET_LIB(e) == ERR_LIB_SSL)
        return mu_diag_set(d, MU_ERR_CRYPTO, "the handshake failed: %s", why ? why : buf);
    if (!during_handshake && why && strstr(why, "alert"))
        return mu_diag_set(d, MU_ERR_CRYPTO, "the coordinator refused our certificate (%s)", why);
    if (!during_handshake)
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "the coordinator hung up right after the handshake: it does not "
                           "accept our certificate (not from the CA it trusts?)");
    return mu_diag_set(d, MU_ERR_IO, "the connection closed during the TLS handshake");
}

static int probe(const char *target, const char *server_name, const char *ca, const char *cert,
                 const char *key, double timeout_s, mu_diag *d)
{
    char host[256];
    int port = 0;
    if (split_target(target, host, sizeof host, &port) != MU_OK)
        return mu_diag_set(d, MU_ERR_INVALID, "'%s' is not HOST:PORT", target);
    const char *name = server_name && *server_name ? server_name : host;
    int fd = dial(host, port, timeout_s, d);
    if (fd < 0)
        return MU_ERR_IO;
    SSL_CTX *ctx = client_ctx(ca, cert, key, d);
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    int rc = ctx ? MU_OK : MU_ERR_INVALID;
    if (ssl) {
        SSL_set_fd(ssl, fd);
        expect_name(ssl, name);
        if (SSL_connect(ssl) != 1) {
            rc = explain(ssl, ca, name, 1, d);
        } else {
            /* TLS 1.3: the server judges our certificate after our Finished; a refusal is an
             * alert on the first read, acceptance is its HTTP/2 SETTINGS frame. */
            char b[64];
            errno = 0;
            int n = SSL_read(ssl, b, sizeof b);
            int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n);
            int timed_out = err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
            if (err != SSL_ERROR_NONE && !timed_out) /* an alert, or it hung up */
                rc = explain(ssl, ca, name, 0, d);
        }
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}

int rpc_tls_probe(const char *target, const char *server_name, const char *ca, const char *cert,
                  const char *key, double timeout_s, mu_diag *d)
{
    /* A peer that hangs up after its alert must not kill us with SIGPIPE: block it on this
     * thread for the probe and drop one that came meanwhile. */
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    int rc = probe(target, server_name, ca, cert, key, timeout_s, d);
    sigset_t pending;
    struct timespec zero = {0, 0};
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
        sigtimedwait(&pipe, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
