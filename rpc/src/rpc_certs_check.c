/* rpc_certs_check.c - the local check of a TLS identity before any connection: the mistakes
 * that otherwise only show as a handshake that fails on the far side. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rpc_certs.h"

/* Reads one PEM object from `path` with `rd`; MU_ERR_IO / MU_ERR_FORMAT with diag naming
 * the file and what it should have held. */
static int read_pem(const char *path, const char *what, void **out,
                    void *(*rd)(FILE *, void **, pem_password_cb *, void *), mu_diag *d)
{
    if (!path || !*path)
        return mu_diag_set(d, MU_ERR_INVALID, "no %s file is configured", what);
    FILE *f = fopen(path, "r");
    if (!f)
        return mu_diag_set(d, MU_ERR_IO, "%s (%s): %s", path, what, strerror(errno));
    *out = rd(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!*out)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: not a PEM %s", path, what);
    return MU_OK;
}

static void *rd_x509(FILE *f, void **x, pem_password_cb *cb, void *u)
{
    return PEM_read_X509(f, (X509 **)x, cb, u);
}

static void *rd_key(FILE *f, void **x, pem_password_cb *cb, void *u)
{
    return PEM_read_PrivateKey(f, (EVP_PKEY **)x, cb, u);
}

/* "Dec  7 01:50:49 2026 GMT" */
static void time_str(const ASN1_TIME *t, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = b && ASN1_TIME_print(b, t) ? BIO_read(b, out, (int)cap - 1) : 0;
    out[n > 0 ? n : 0] = 0;
    BIO_free(b);
}

static int check_dates(const X509 *x, const char *path, mu_diag *d)
{
    char when[64];
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        time_str(X509_get0_notBefore(x), when, sizeof when);
        return mu_diag_set(d, MU_ERR_CRYPTO, "%s is not valid yet: valid from %s (check the clock)",
                           path, when);
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        time_str(X509_get0_notAfter(x), when, sizeof when);
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "%s expired on %s: issue a new one (mutual certs issue)", path, when);
    }
    return MU_OK;
}

/* Verifies `x` against the CA certificates of ca_path (one, or a bundle) for TLS client or
 * server use. */
static int check_chain(X509 *x, rpc_cert_role role, const char *cert_path, const char *ca_path,
                       mu_diag *d)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = MU_OK;
    if (!store || !ctx || !X509_STORE_load_file(store, ca_path) ||
        !X509_STORE_CTX_init(ctx, store, x, NULL) ||
        !X509_STORE_CTX_set_purpose(ctx, role == RPC_CERT_SERVER ? X509_PURPOSE_SSL_SERVER
                                                                 : X509_PURPOSE_SSL_CLIENT)) {
        rc = mu_diag_set(d, MU_ERR_NOMEM, "cannot set up the certificate check");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        const char *why = X509_verify_cert_error_string(e);
        if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || e == X509_V_ERR_CERT_SIGNATURE_FAILURE ||
            e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
            rc = mu_diag_set(d, MU_ERR_CRYPTO,
                             "%s is not signed by the CA in %s (%s): the certificate and the CA "
                             "file come from different federations",
                             cert_path, ca_path, why);
        else if (e == X509_V_ERR_INVALID_PURPOSE)
            rc = mu_diag_set(d, MU_ERR_CRYPTO, "%s is not a TLS %s certificate (%s)%s", cert_path,
                             role == RPC_CERT_SERVER ? "server" : "client", why,
                             role == RPC_CERT_SERVER ? ": issue it with mutual certs issue --server"
                                                     : "");
        else
            rc = mu_diag_set(d, MU_ERR_CRYPTO, "%s does not verify against the CA in %s: %s",
                             cert_path, ca_path, why);
    }
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

/* The certificate's subject CN, or "" */
static void cert_cn(const X509 *x, char *out, size_t cap)
{
    out[0] = 0;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap);
    if (n < 0)
        out[0] = 0;
}

/* A server certificate must name `host` in its subjectAltName (what clients check). */
static int check_host(X509 *x, const char *host, const char *cert_path, mu_diag *d)
{
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = is_ip ? X509_check_ip_asc(x, host, 0) : X509_check_host(x, host, 0, 0, NULL);
    ERR_clear_error();
    if (ok != 1)
        return mu_diag_set(d, MU_ERR_CRYPTO,
                           "%s does not name the host '%s' (its subjectAltName), so clients "
                           "dialing it would refuse it: issue it with --server %s",
                           cert_path, host, host);
    return MU_OK;
}

int rpc_certs_check(const char *ca_path, const char *cert_path, const char *key_path,
                    rpc_cert_role role, const char *name, const char *host, mu_diag *d)
{
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *key = NULL;
    int rc;
    if ((rc = read_pem(ca_path, "CA certificate", (void **)&ca, rd_x509, d)) ||
        (rc = read_pem(cert_path, "certificate", (void **)&x, rd_x509, d)) ||
        (rc = read_pem(key_path, "private key", (void **)&key, rd_key, d)))
        goto out;
    if (X509_check_private_key(x, key) != 1) {
        ERR_clear_error();
        rc = mu_diag_set(d, MU_ERR_CRYPTO,
                         "%s is not the key of %s: the key and the certificate do not match",
                         key_path, cert_path);
        goto out;
    }
    if ((rc = check_dates(ca, ca_path, d)) || (rc = check_dates(x, cert_path, d)) ||
        (rc = check_chain(x, role, cert_path, ca_path, d)))
        goto out;
    char cn[256];
    cert_cn(x, cn, sizeof cn);
    if (name && strcmp(cn, name) != 0) {
        rc = mu_diag_set(d, MU_ERR_CRYPTO,
                         "%s is for '%s', not for '%s': the certificate's name (CN) must be the "
                         "org's name",
                         cert_path, cn, name);
        goto out;
    }
    if (role == RPC_CERT_SERVER && X509_get_ext_by_NID(x, NID_subject_alt_name, -1) < 0) {
        rc = mu_diag_set(d, MU_ERR_CRYPTO,
                         "%s names no host (no subjectAltName), so no org can accept it as the "
                         "coordinator: issue it with mutual certs issue --server HOST",
                         cert_path);
        goto out;
    }
    if (host && *host)
        rc = check_host(x, host, cert_path, d);
out:
    EVP_PKEY_free(key);
    X509_free(x);
    X509_free(ca);
    return rc;
}
