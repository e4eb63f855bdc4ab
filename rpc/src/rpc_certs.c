/* rpc_certs.c - a federation CA and org certificates with OpenSSL's X.509 API. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mu_log.h"
#include "rpc.h"
#include "rpc_certs.h"
#include "wi_org.h"

#define PATH_CAP  4096
#define HOSTS_MAX 32
#define HOST_MAX  253

int rpc_certs_name_ok(const char *name)
{
    return wi_org_name_valid(name);
}

/* The first OpenSSL error as text, for diagnostics. */
static int ossl_fail(mu_diag *d, const char *what)
{
    char buf[160];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mu_diag_set(d, MU_ERR_CRYPTO, "%s: %s", what, e ? buf : "failed");
}

static int path_join(char *out, const char *dir, const char *name, const char *ext, mu_diag *d)
{
    int n = snprintf(out, PATH_CAP, "%s/%s%s", dir, name, ext);
    if (n < 0 || n >= PATH_CAP)
        return mu_diag_set(d, MU_ERR_INVALID, "%s: path too long", dir);
    return MU_OK;
}

/* Writes a key (mode 0600), a certificate or a certificate request (0644) to a file that
 * must not exist yet; exactly one of key, cert, req is not NULL. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, X509_REQ *req, mu_diag *d)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, key ? 0600 : 0644);
    if (fd < 0)
        return mu_diag_set(d, errno == EEXIST ? MU_ERR_STATE : MU_ERR_IO, "%s: %s", path,
                           errno == EEXIST ? "exists already; not overwritten" : strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return mu_diag_set(d, MU_ERR_IO, "%s: %s", path, strerror(errno));
    }
    int ok = key    ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
             : cert ? PEM_write_X509(f, cert)
                    : PEM_write_X509_REQ(f, req);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        unlink(path);
        return mu_diag_set(d, MU_ERR_IO, "%s: cannot write", path);
    }
    return MU_OK;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value, mu_diag *d)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return ossl_fail(d, "bad certificate extension");
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? MU_OK : ossl_fail(d, "cannot add a certificate extension");
}

/* A certificate for `key` named `cn` (and `ou` unless NULL), valid `days`, not yet signed.
 * issuer NULL: itself. */
static X509 *cert_new(EVP_PKEY *key, const char *cn, const char *ou, int days, X509 *issuer,
                      mu_diag *d)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    int ok = x && serial && X509_set_version(x, 2) &&
             BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
             X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) && X509_set_pubkey(x, key) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_UTF8,
                                        (const unsigned char *)"mutual", -1, -1, 0) &&
             (!ou || X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "OU", MBSTRING_UTF8,
                                                (const unsigned char *)ou, -1, -1, 0)) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                        (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    BN_free(serial);
    if (!ok) {
        ossl_fail(d, "cannot build a certificate");
        X509_free(x);
        return NULL;
    }
    return x;
}

/* mkdir -p DIR; new directories get mode 0700. */
static int dir_ensure(const char *dir, mu_diag *d)
{
    char path[PATH_CAP];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return mu_diag_set(d, MU_ERR_INVALID, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        int end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(path, 0700) != 0 && errno != EEXIST)
                return mu_diag_set(d, MU_ERR_IO, "%s: cannot create the directory: %s", path,
                                   strerror(errno));
            if (end)
                break;
            *p = '/';
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mu_diag_set(d, MU_ERR_IO, "%s: not a directory", dir);
    return MU_OK;
}

int rpc_certs_init(const char *dir, const char *ca_name, int days, mu_diag *d)
{
    char kpath[PATH_CAP], cpath[PATH_CAP];
    int rc;
    if ((rc = path_join(kpath, dir, "ca", ".key", d)) ||
        (rc = path_join(cpath, dir, "ca", ".crt", d)))
        return rc;
    if (days <= 0)
        days = RPC_CERT_DEFAULT_DAYS;
    if ((rc = dir_ensure(dir, d)))
        return rc;
    if (access(kpath, F_OK) == 0 || access(cpath, F_OK) == 0)
        return mu_diag_set(d, MU_ERR_STATE, "%s already holds a CA; not overwritten", dir);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        return ossl_fail(d, "cannot generate the CA key");
    X509 *x = cert_new(key, ca_name ? ca_name : "mutual federation CA", NULL, days, NULL, d);
    rc = x ? MU_OK : MU_ERR_CRYPTO;
    if (!rc)
        rc = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", d);
    if (!rc)
        rc = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", d);
    if (!rc)
        rc = add_ext(x, x, NID_subject_key_identifier, "hash", d);
    if (!rc && !X509_sign(x, key, EVP_sha256()))
        rc = ossl_fail(d, "cannot sign the CA certificate");
    if (!rc)
        rc = write_pem(kpath, key, NULL, NULL, d);
    if (!rc && (rc = write_pem(cpath, NULL, x, NULL, d)))
        unlink(kpath);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* Builds "DNS:a,IP:1.2.3.4" for subjectAltName; hosts are checked so that nothing can
 * smuggle another entry in. */
static int san_string(char *out, size_t cap, const char *const *hosts, size_t n, mu_diag *d)
{
    size_t used = 0;
    out[0] = 0;
    if (n > HOSTS_MAX)
        return mu_diag_set(d, MU_ERR_INVALID, "at most %d hosts", HOSTS_MAX);
    for (size_t i = 0; i < n; i++) {
        const char *h = hosts[i];
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, h, ip) == 1 || inet_pton(AF_INET6, h, ip) == 1;
        size_t len = strlen(h);
        int ok = len > 0 && len <= HOST_MAX;
        for (size_t j = 0; ok && !is_ip && j < len; j++) {
            char c = h[j];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || (c == '*' && j == 0);
        }
        if (!ok)
            return mu_diag_set(d, MU_ERR_INVALID, "'%s' is not a host name or IP address", h);
        int w = snprintf(out + used, cap - used, "%s%s:%s", i ? "," : "", is_ip ? "IP" : "DNS", h);
        if (w < 0 || (size_t)w >= cap - used)
            return mu_diag_set(d, MU_ERR_INVALID, "too many hosts");
        used += (size_t)w;
    }
    return MU_OK;
}

/* Loads DIR/ca.key and DIR/ca.crt and checks that they belong together. */
static int load_ca(const char *dir, EVP_PKEY **key, X509 **cert, mu_diag *d)
{
    char kpath[PATH_CAP], cpath[PATH_CAP];
    int rc;
    if ((rc = path_join(kpath, dir, "ca", ".key", d)) ||
        (rc = path_join(cpath, dir, "ca", ".crt", d)))
        return rc;
    FILE *kf = fopen(kpath, "r");
    if (!kf)
        return mu_diag_set(d, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO,
                           "%s: %s (run 'mutual certs init --dir %s' first)", kpath,
                           strerror(errno), dir);
    *key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
    fclose(kf);
    FILE *cf = fopen(cpath, "r");
    *cert = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
    if (cf)
        fclose(cf);
    if (!*key || !*cert || !X509_check_private_key(*cert, *key)) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        *key = NULL;
        *cert = NULL;
        return ossl_fail(d, "the CA in DIR cannot be read or its key and certificate differ");
    }
    return MU_OK;
}

/* Signs a certificate for `key`'s public half with DIR's CA (CN = org, OU = ou unless NULL;
 * a server certificate for `hosts` when n_hosts > 0) and writes DIR/ORG.crt; with
 * write_key also DIR/ORG.key, the private half. */
static int issue_for(const char *dir, const char *org, EVP_PKEY *key, int write_key,
                     const char *const *hosts, size_t n_hosts, int days, const char *ou, mu_diag *d)
{
    char kpath[PATH_CAP], cpath[PATH_CAP], san[HOSTS_MAX * (HOST_MAX + 8)];
    int rc;
    if (!rpc_certs_name_ok(org))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "org name '%s' must be 1-%d of [A-Za-z0-9._-], not starting with . or -",
                           org ? org : "", CO_ORG_NAME_MAX - 1);
    if (!strcmp(org, "ca"))
        return mu_diag_set(d, MU_ERR_INVALID, "'ca' is the CA's own name");
    if ((rc = path_join(kpath, dir, org, ".key", d)) ||
        (rc = path_join(cpath, dir, org, ".crt", d)) ||
        (rc = san_string(san, sizeof san, hosts, n_hosts, d)))
        return rc;
    if (days <= 0)
        days = RPC_CERT_DEFAULT_DAYS;
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL, *x = NULL;
    if ((rc = load_ca(dir, &ca_key, &ca, d)))
        return rc;
    if ((write_key && access(kpath, F_OK) == 0) || access(cpath, F_OK) == 0) {
        rc = mu_diag_set(d, MU_ERR_STATE, "%s already has a %s for '%s'; not overwritten", dir,
                         write_key ? "key or certificate" : "certificate", org);
        goto out;
    }
    x = cert_new(key, org, ou, days, ca, d);
    rc = x ? MU_OK : MU_ERR_CRYPTO;
    if (!rc)
        rc = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE", d);
    if (!rc)
        rc = add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment", d);
    if (!rc)
        rc = add_ext(x, ca, NID_ext_key_usage, n_hosts ? "clientAuth,serverAuth" : "clientAuth", d);
    if (!rc)
        rc = add_ext(x, ca, NID_subject_key_identifier, "hash", d);
    if (!rc)
        rc = add_ext(x, ca, NID_authority_key_identifier, "keyid:always", d);
    if (!rc && n_hosts)
        rc = add_ext(x, ca, NID_subject_alt_name, san, d);
    if (!rc && !X509_sign(x, ca_key, EVP_sha256()))
        rc = ossl_fail(d, "cannot sign the certificate");
    if (!rc && write_key)
        rc = write_pem(kpath, key, NULL, NULL, d);
    if (!rc && (rc = write_pem(cpath, NULL, x, NULL, d)) && write_key)
        unlink(kpath);
out:
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* rpc_certs_issue, with the subject OU `ou` unless NULL: a new key and its certificate. */
static int issue(const char *dir, const char *org, const char *const *hosts, size_t n_hosts,
                 int days, const char *ou, mu_diag *d)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        return ossl_fail(d, "cannot generate the org's key");
    int rc = issue_for(dir, org, key, 1, hosts, n_hosts, days, ou, d);
    EVP_PKEY_free(key);
    return rc;
}

int rpc_certs_issue(const char *dir, const char *org, const char *const *hosts, size_t n_hosts,
                    int days, mu_diag *d)
{
    return issue(dir, org, hosts, n_hosts, days, NULL, d);
}

int rpc_certs_issue_operator(const char *dir, const char *name, int days, mu_diag *d)
{
    return issue(dir, name, NULL, 0, days, RPC_CERT_OPERATOR_OU, d);
}

int rpc_certs_request(const char *dir, const char *name, mu_diag *d)
{
    char kpath[PATH_CAP], rpath[PATH_CAP];
    int rc;
    if (!rpc_certs_name_ok(name) || !strcmp(name, "ca"))
        return mu_diag_set(d, MU_ERR_INVALID,
                           "org name '%s' must be 1-%d of [A-Za-z0-9._-], not starting with . or "
                           "- (and not 'ca')",
                           name ? name : "", CO_ORG_NAME_MAX - 1);
    if ((rc = path_join(kpath, dir, name, ".key", d)) ||
        (rc = path_join(rpath, dir, name, ".csr", d)) || (rc = dir_ensure(dir, d)))
        return rc;
    if (access(kpath, F_OK) == 0 || access(rpath, F_OK) == 0)
        return mu_diag_set(d, MU_ERR_STATE,
                           "%s already has a key or request for '%s'; not "
                           "overwritten",
                           dir, name);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subj = req ? X509_REQ_get_subject_name(req) : NULL;
    int ok = key && subj && X509_REQ_set_version(req, 0) &&
             X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8, (const unsigned char *)"mutual",
                                        -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1,
                                        -1, 0) &&
             X509_REQ_set_pubkey(req, key) && X509_REQ_sign(req, key, EVP_sha256());
    rc = ok ? MU_OK : ossl_fail(d, "cannot build the certificate request");
    if (!rc)
        rc = write_pem(kpath, key, NULL, NULL, d);
    if (!rc && (rc = write_pem(rpath, NULL, NULL, req, d)))
        unlink(kpath);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

/* Reads a PEM certificate request of at most RPC_CSR_MAX bytes into *out: it comes from
 * another machine, so its size is bounded before OpenSSL parses it. */
static int csr_read(const char *path, X509_REQ **out, mu_diag *d)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return mu_diag_set(d, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                           strerror(errno));
    char *buf = malloc(RPC_CSR_MAX + 1);
    size_t n = buf ? fread(buf, 1, RPC_CSR_MAX + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    int rc = MU_OK;
    if (!buf)
        rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", path);
    else if (err)
        rc = mu_diag_set(d, MU_ERR_IO, "%s: cannot read", path);
    else if (n > RPC_CSR_MAX)
        rc = mu_diag_set(d, MU_ERR_FORMAT, "%s: larger than %d bytes; not a certificate request",
                         path, RPC_CSR_MAX);
    if (!rc) {
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        *out = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        ERR_clear_error();
        if (!*out)
            rc = mu_diag_set(d, MU_ERR_FORMAT, "%s: not a PEM certificate request", path);
    }
    free(buf);
    return rc;
}

/* The request's one subject CN, checked as an org name, into name[RPC_CSR_NAME_CAP]. */
static int csr_name(X509_REQ *req, const char *path, char *name, mu_diag *d)
{
    const X509_NAME *subj = X509_REQ_get_subject_name(req);
    int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(subj, NID_commonName, i) >= 0)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: the request must name exactly one CN", path);
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
    int len = v ? ASN1_STRING_length(v) : 0;
    const unsigned char *p = v ? ASN1_STRING_get0_data(v) : NULL;
    if (len <= 0 || len >= RPC_CSR_NAME_CAP || memchr(p, 0, (size_t)len))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: the request's CN is not an org name", path);
    memcpy(name, p, (size_t)len);
    name[len] = 0;
    if (!rpc_certs_name_ok(name) || !strcmp(name, "ca"))
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: the request's CN '%s' is not an org name (1-63 of "
                           "[A-Za-z0-9._-], not starting with . or -, not 'ca')",
                           path, name);
    return MU_OK;
}

int rpc_certs_sign(const char *dir, const char *csr_path, int days, char name[RPC_CSR_NAME_CAP],
                   mu_diag *d)
{
    name[0] = 0;
    X509_REQ *req = NULL;
    int rc = csr_read(csr_path, &req, d);
    if (rc)
        return rc;
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    char group[32] = "";
    rc = csr_name(req, csr_path, name, d);
    if (!rc && (!pub || !EVP_PKEY_is_a(pub, "EC") ||
                !EVP_PKEY_get_group_name(pub, group, sizeof group, NULL) ||
                strcmp(group, "prime256v1") != 0))
        rc = mu_diag_set(d, MU_ERR_FORMAT, "%s: the request's key is not ECDSA P-256", csr_path);
    if (!rc && X509_REQ_verify(req, pub) != 1)
        rc = mu_diag_set(d, MU_ERR_CRYPTO, "%s: the request's signature does not verify", csr_path);
    ERR_clear_error();
    if (!rc)
        rc = issue_for(dir, name, pub, 0, NULL, 0, days, NULL, d);
    X509_REQ_free(req);
    return rc;
}

static X509 *pem_x509(const char *pem, size_t len)
{
    if (!pem || len == 0 || len > INT32_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return x;
}

static int x509_is_operator(const X509 *x)
{
    const X509_NAME *n = X509_get_subject_name(x);
    int found = 0;
    for (int i = -1;
         !found && (i = X509_NAME_get_index_by_NID(n, NID_organizationalUnitName, i)) >= 0;) {
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
        size_t want = strlen(RPC_CERT_OPERATOR_OU);
        found = v && (size_t)ASN1_STRING_length(v) == want &&
                memcmp(ASN1_STRING_get0_data(v), RPC_CERT_OPERATOR_OU, want) == 0;
    }
    return found;
}

int rpc_certs_pem_identity(const char *pem, size_t len, int *is_operator,
                           uint8_t fpr[RPC_CERT_FPR_BYTES])
{
    X509 *x = pem_x509(pem, len);
    unsigned n = 0;
    int ok = x && X509_digest(x, EVP_sha256(), fpr, &n) && n == RPC_CERT_FPR_BYTES;
    ERR_clear_error();
    if (is_operator)
        *is_operator = ok && x509_is_operator(x);
    X509_free(x);
    if (!ok)
        memset(fpr, 0, RPC_CERT_FPR_BYTES);
    return ok ? MU_OK : MU_ERR_FORMAT;
}

void rpc_certs_fpr_format(char *out, size_t cap, const uint8_t *fpr, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < cap; i++) {
        if (i)
            out[k++] = ':';
        out[k++] = hex[fpr[i] >> 4];
        out[k++] = hex[fpr[i] & 15];
    }
    if (cap)
        out[k < cap ? k : cap - 1] = 0;
}
