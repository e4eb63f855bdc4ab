/* rpc_tls.c - credentials from PEM files, and byte-buffer helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <openssl/crypto.h>

#include "rpc_certs.h"
#include "rpc_internal.h"

#define PEM_MAX (1u << 20)

/* Reads a whole PEM file into a NUL-terminated heap string (wipe and free with pem_free),
 * or NULL with diag set. */
static char *pem_read(const char *path, mu_diag *d)
{
    if (!path || !*path) {
        mu_diag_set(d, MU_ERR_INVALID, "a PEM file path is missing (or pass insecure)");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        mu_diag_set(d, MU_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || n > PEM_MAX || n == 0;
    fclose(f);
    if (bad) {
        mu_diag_set(d, MU_ERR_IO, "%s: cannot read (empty, unreadable or over 1 MiB)", path);
        if (buf)
            OPENSSL_cleanse(buf, PEM_MAX + 1);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static void pem_free(char *pem)
{
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
}

grpc_server_credentials *rpc_tls_server_creds(const char *ca_path, const char *cert_path,
                                              const char *key_path, mu_diag *diag)
{
    grpc_server_credentials *creds = NULL;
    char *ca = pem_read(ca_path, diag);
    char *cert = ca ? pem_read(cert_path, diag) : NULL;
    char *key = cert ? pem_read(key_path, diag) : NULL;
    if (key) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_server_credentials_create_ex(
            ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
        if (!creds)
            mu_diag_set(diag, MU_ERR_CRYPTO, "gRPC refused the server's TLS key or certificate");
    }
    pem_free(key);
    pem_free(cert);
    pem_free(ca);
    return creds;
}

/* gRPC's handshake callback (after the CA chain and host name were verified): nonzero
 * refuses the connection, so nothing is sent to a coordinator with another certificate. */
static int pin_check(const char *target, const char *peer_pem, void *user)
{
    rpc_pin *p = user;
    uint8_t have[RPC_CERT_FPR_BYTES];
    int rc =
        peer_pem ? rpc_certs_pem_identity(peer_pem, strlen(peer_pem), NULL, have) : MU_ERR_FORMAT;
    if (rc == MU_OK && CRYPTO_memcmp(have, p->want, sizeof have) == 0)
        return 0;
    char h[3 * 8], w[3 * 8]; /* the first 8 bytes, as the charter tools print them */
    rpc_certs_fpr_format(h, sizeof h, have, 8);
    rpc_certs_fpr_format(w, sizeof w, p->want, 8);
    pthread_mutex_lock(&p->mu);
    p->refused = 1;
    if (rc == MU_OK)
        snprintf(p->why, sizeof p->why,
                 "%.60s presented a certificate with SHA-256 fingerprint %s..., not the pinned "
                 "%s...",
                 target ? target : "the coordinator", h, w);
    else
        snprintf(p->why, sizeof p->why, "%.60s presented no readable certificate",
                 target ? target : "the coordinator");
    pthread_mutex_unlock(&p->mu);
    return 1;
}

static void pin_free(void *user)
{
    rpc_pin *p = user;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

grpc_channel_credentials *rpc_tls_channel_creds(const char *ca_path, const char *cert_path,
                                                const char *key_path, rpc_pin *pin, mu_diag *diag)
{
    grpc_channel_credentials *creds = NULL;
    char *ca = pem_read(ca_path, diag);
    char *cert = ca ? pem_read(cert_path, diag) : NULL;
    char *key = cert ? pem_read(key_path, diag) : NULL;
    if (key) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        verify_peer_options vo = {pin_check, pin, pin_free};
        creds = grpc_ssl_credentials_create(ca, &pair, pin ? &vo : NULL, NULL);
        if (!creds)
            mu_diag_set(diag, MU_ERR_CRYPTO, "gRPC refused the client's TLS key or certificate");
        pin = creds ? NULL : pin; /* the credentials own it now */
    }
    if (pin)
        pin_free(pin);
    pem_free(key);
    pem_free(cert);
    pem_free(ca);
    return creds;
}

grpc_byte_buffer *rpc_bb_from(const uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

grpc_byte_buffer *rpc_bb_pack(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

ProtobufCMessage *rpc_bb_decode(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                                mu_diag *diag)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
        mu_diag_set(diag, MU_ERR_FORMAT, "cannot read a compressed or broken message");
        return NULL;
    }
    grpc_slice s = grpc_byte_buffer_reader_readall(&r); /* no copy when it is one slice */
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m = rpc_msg_decode(desc, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), diag);
    grpc_slice_unref(s);
    return m;
}

gpr_timespec rpc_deadline_in(double seconds)
{
    if (seconds <= 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_micros((int64_t)(seconds * 1e6), GPR_TIMESPAN));
}
