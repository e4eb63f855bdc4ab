/* test_rpc_certs_check.c - rpc_certs_check finds each certificate mistake locally, with a
 * message naming the problem: another CA's certificate, the wrong CA file, a key of another
 * certificate, an expired or not yet valid certificate, another name, a client certificate
 * used as a server's; and operator certificates are told apart from org certificates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "rpc_certs.h"

static char dir[64], other[64];

static const char *path(const char *d, const char *file)
{
    static char buf[8][160];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d, file);
    return buf[k];
}

/* Writes DIR/NAME.crt for DIR/bank-a.key, CN bank-a, signed by DIR's CA, valid from
 * now + from_s to now + to_s: what `mutual certs` never makes (an expired certificate). */
static void write_dated(const char *name, long from_s, long to_s)
{
    FILE *f = fopen(path(dir, "ca.key"), "r");
    EVP_PKEY *ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(path(dir, "ca.crt"), "r");
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(path(dir, "bank-a.key"), "r");
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    X509 *x = X509_new();
    assert_non_null(ca_key && ca && key && x ? x : NULL);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"bank-a", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    f = fopen(path(dir, name), "w");
    assert_non_null(f);
    assert_true(PEM_write_X509(f, x));
    fclose(f);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rpc_certs_check_XXXXXX");
    snprintf(other, sizeof other, "/tmp/rpc_certs_check_o_XXXXXX");
    if (!mkdtemp(dir) || !mkdtemp(other))
        return -1;
    rmdir(dir);
    rmdir(other);
    mu_diag d = {{0}};
    const char *hosts[] = {"localhost", "127.0.0.1"};
    if (rpc_certs_init(dir, NULL, 0, &d) || rpc_certs_issue(dir, "coordinator", hosts, 2, 0, &d) ||
        rpc_certs_issue(dir, "bank-a", NULL, 0, 0, &d) ||
        rpc_certs_issue(dir, "bank-b", NULL, 0, 0, &d) ||
        rpc_certs_issue_operator(dir, "op", 0, &d) || rpc_certs_init(other, "another CA", 0, &d) ||
        rpc_certs_issue(other, "bank-a", NULL, 0, 0, &d)) {
        fprintf(stderr, "setup: %s\n", d.msg);
        return -1;
    }
    write_dated("expired.crt", -7200, -3600);
    write_dated("future.crt", 3600, 7200);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"ca.key",     "ca.crt",     "coordinator.key", "coordinator.crt",
                           "bank-a.key", "bank-a.crt", "bank-b.key",      "bank-b.crt",
                           "op.key",     "op.crt",     "expired.crt",     "future.crt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        unlink(path(dir, files[i]));
        unlink(path(other, files[i]));
    }
    rmdir(dir);
    rmdir(other);
    return 0;
}

/* rpc_certs_check for a client, expecting `want` and, unless NULL, `phrase` in the message. */
static void expect(const char *ca, const char *cert, const char *key, const char *name, int want,
                   const char *phrase)
{
    mu_diag d = {{0}};
    int rc = rpc_certs_check(ca, cert, key, RPC_CERT_CLIENT, name, NULL, &d);
    if (rc != want || (phrase && !strstr(d.msg, phrase)))
        fail_msg("got %d '%s', want %d '%s'", rc, d.msg, want, phrase ? phrase : "");
}

static void test_good_identities_pass(void **state)
{
    (void)state;
    expect(path(dir, "ca.crt"), path(dir, "bank-a.crt"), path(dir, "bank-a.key"), "bank-a", MU_OK,
           NULL);
    expect(path(dir, "ca.crt"), path(dir, "op.crt"), path(dir, "op.key"), NULL, MU_OK, NULL);
    mu_diag d = {{0}};
    assert_int_equal(rpc_certs_check(path(dir, "ca.crt"), path(dir, "coordinator.crt"),
                                     path(dir, "coordinator.key"), RPC_CERT_SERVER, NULL,
                                     "127.0.0.1", &d),
                     MU_OK);
    assert_int_equal(rpc_certs_check(path(dir, "ca.crt"), path(dir, "coordinator.crt"),
                                     path(dir, "coordinator.key"), RPC_CERT_SERVER, NULL,
                                     "localhost", &d),
                     MU_OK);
}

static void test_each_mistake_is_named(void **state)
{
    (void)state;
    /* a certificate from another federation's CA */
    expect(path(dir, "ca.crt"), path(other, "bank-a.crt"), path(other, "bank-a.key"), "bank-a",
           MU_ERR_CRYPTO, "is not signed by the CA in");
    /* the right certificate, the wrong CA file */
    expect(path(other, "ca.crt"), path(dir, "bank-a.crt"), path(dir, "bank-a.key"), "bank-a",
           MU_ERR_CRYPTO, "is not signed by the CA in");
    /* another certificate's key */
    expect(path(dir, "ca.crt"), path(dir, "bank-a.crt"), path(dir, "bank-b.key"), "bank-a",
           MU_ERR_CRYPTO, "the key and the certificate do not match");
    expect(path(dir, "ca.crt"), path(dir, "expired.crt"), path(dir, "bank-a.key"), "bank-a",
           MU_ERR_CRYPTO, "expired on");
    expect(path(dir, "ca.crt"), path(dir, "future.crt"), path(dir, "bank-a.key"), "bank-a",
           MU_ERR_CRYPTO, "is not valid yet");
    /* a valid certificate for another org */
    expect(path(dir, "ca.crt"), path(dir, "bank-b.crt"), path(dir, "bank-b.key"), "bank-a",
           MU_ERR_CRYPTO, "is for 'bank-b', not for 'bank-a'");
    /* files that are not there or not PEM */
    expect(path(dir, "ca.crt"), path(dir, "nope.crt"), path(dir, "bank-a.key"), "bank-a", MU_ERR_IO,
           "nope.crt");
    expect(path(dir, "ca.crt"), path(dir, "bank-a.key"), path(dir, "bank-a.key"), "bank-a",
           MU_ERR_FORMAT, "not a PEM certificate");
    expect(path(dir, "ca.crt"), path(dir, "bank-a.crt"), "", "bank-a", MU_ERR_INVALID,
           "no private key file");
}

static void test_server_certificates(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    /* an org's certificate is not a server's (no serverAuth, no host names) */
    assert_int_equal(rpc_certs_check(path(dir, "ca.crt"), path(dir, "bank-a.crt"),
                                     path(dir, "bank-a.key"), RPC_CERT_SERVER, NULL, NULL, &d),
                     MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "is not a TLS server certificate"));
    assert_int_equal(rpc_certs_check(path(dir, "ca.crt"), path(dir, "coordinator.crt"),
                                     path(dir, "coordinator.key"), RPC_CERT_SERVER, NULL,
                                     "coord.example.org", &d),
                     MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "does not name the host 'coord.example.org'"));
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    static char buf[8192];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* 1 if rpc_certs_pem_identity says the PEM carries the operator OU (what the server asks). */
static int pem_is_operator(const char *pem, size_t len)
{
    int op = -1;
    uint8_t fpr[RPC_CERT_FPR_BYTES];
    rpc_certs_pem_identity(pem, len, &op, fpr);
    return op;
}

static void test_operator_certificates(void **state)
{
    (void)state;
    size_t n = 0;
    char *pem = slurp(path(dir, "op.crt"), &n);
    assert_int_equal(pem_is_operator(pem, n), 1);
    pem = slurp(path(dir, "bank-a.crt"), &n);
    assert_int_equal(pem_is_operator(pem, n), 0);
    assert_int_equal(pem_is_operator("junk", 4), 0);
    assert_int_equal(pem_is_operator(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_identities_pass),
        cmocka_unit_test(test_each_mistake_is_named),
        cmocka_unit_test(test_server_certificates),
        cmocka_unit_test(test_operator_certificates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
