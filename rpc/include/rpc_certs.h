/* rpc_certs.h - the federation's X.509 identities, made with OpenSSL's libcrypto.
 *
 * A federation has one CA (DIR/ca.key, DIR/ca.crt). Each org gets a key and a certificate
 * signed by it (DIR/NAME.key, DIR/NAME.crt) whose subject CN is the org's name: that name
 * is the org's identity on the wire (rpc_call_peer). The coordinator's certificate also
 * names the hosts orgs dial (subjectAltName), which TLS clients check.
 *
 * Keys are ECDSA P-256, written PEM (PKCS#8) with mode 0600 and never printed or logged.
 * Existing files are never overwritten. Not thread-safe with itself on one DIR.
 */
#ifndef MU_RPC_CERTS_H
#define MU_RPC_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"

/* Validity of new certificates when the caller passes days = 0. */
#define RPC_CERT_DEFAULT_DAYS 825

/* True if `name` can be an org name (it becomes a file name and a certificate CN): the one
 * rule of wi_org_name_valid (wire/include/wi_org.h), 1..63 of [A-Za-z0-9._-], not starting
 * with '.' or '-'. */
int rpc_certs_name_ok(const char *name);

/* Creates DIR (mode 0700, if missing) and the CA: DIR/ca.key and a self-signed DIR/ca.crt
 * with CN `ca_name` (NULL: "mutual federation CA"), valid `days` days.
 * Returns MU_OK; MU_ERR_STATE if DIR/ca.key or DIR/ca.crt exists; MU_ERR_IO or
 * MU_ERR_CRYPTO with diag set. On failure no file is left behind. */
int rpc_certs_init(const char *dir, const char *ca_name, int days, mu_diag *diag);

/* Issues DIR/NAME.key and DIR/NAME.crt signed by DIR's CA, with CN = org. When n_hosts >
 * 0 the certificate is also a server certificate for those hosts (each an IP address or
 * a DNS name, put in subjectAltName). Returns MU_OK; MU_ERR_INVALID for a bad name or
 * host; MU_ERR_NOTFOUND if DIR has no CA; MU_ERR_STATE if the org's files exist; MU_ERR_IO
 * or MU_ERR_CRYPTO with diag set. On failure no file is left behind. */
int rpc_certs_issue(const char *dir, const char *org, const char *const *hosts, size_t n_hosts,
                    int days, mu_diag *diag);

/* Issues an operator certificate DIR/NAME.key, DIR/NAME.crt: a TLS client certificate with
 * CN = name and OU = RPC_CERT_OPERATOR_OU. The coordinator answers Status to operators (as
 * well as to members); only the CA's holder can make one. Returns as rpc_certs_issue. */
int rpc_certs_issue_operator(const char *dir, const char *name, int days, mu_diag *diag);

/* Certificate requests: an org makes its key on its own machine and sends only a request
 * (DIR/NAME.csr, public) to the CA's holder, who signs it. The key never leaves the org. */
#define RPC_CSR_MAX      16384 /* bytes; a larger request file is refused unread */
#define RPC_CSR_NAME_CAP 64    /* an org name and its NUL */

/* Creates DIR (mode 0700, if missing), DIR/NAME.key (ECDSA P-256, mode 0600) and
 * DIR/NAME.csr, a PEM certificate request with subject O=mutual, CN=NAME signed by that key.
 * Returns MU_OK; MU_ERR_INVALID for a bad name; MU_ERR_STATE if either file exists;
 * MU_ERR_IO or MU_ERR_CRYPTO with diag set. On failure no file is left behind. */
int rpc_certs_request(const char *dir, const char *name, mu_diag *diag);

/* Signs the request in csr_path (untrusted: at most RPC_CSR_MAX bytes, one CN that is an
 * org name, an ECDSA P-256 key, a signature that verifies) with DIR's CA and writes
 * DIR/NAME.crt, an org (TLS client) certificate for NAME = the request's CN, valid `days`
 * days (0: RPC_CERT_DEFAULT_DAYS). Everything else in the request (other subject fields,
 * requested extensions) is ignored: the CA decides what the certificate says. On return
 * `name` holds the CN ("" if none could be read). Returns MU_OK; MU_ERR_NOTFOUND or
 * MU_ERR_IO (unreadable), MU_ERR_FORMAT (not such a request) or MU_ERR_CRYPTO (bad
 * signature), MU_ERR_NOTFOUND if DIR has no CA, MU_ERR_STATE if DIR/NAME.crt exists; diag
 * names the file. On failure no file is left behind. */
int rpc_certs_sign(const char *dir, const char *csr_path, int days, char name[RPC_CSR_NAME_CAP],
                   mu_diag *diag);

/* The subject OU that marks an operator certificate. */
#define RPC_CERT_OPERATOR_OU "mutual operator"

/* A certificate's fingerprint: SHA-256 of its DER encoding, what `openssl x509 -noout
 * -fingerprint -sha256` prints and a charter's tls_fingerprint holds. */
#define RPC_CERT_FPR_BYTES 32

/* Parses the first PEM certificate of pem (len bytes, untrusted, not NUL-terminated) once:
 * its fingerprint into fpr and, when is_operator is not NULL, whether it carries the operator
 * OU. MU_OK, or MU_ERR_FORMAT (no certificate; fpr zeroed, *is_operator 0). */
int rpc_certs_pem_identity(const char *pem, size_t len, int *is_operator,
                           uint8_t fpr[RPC_CERT_FPR_BYTES]);

/* The first n bytes of a fingerprint as openssl prints it ("AB:CD:..."), cut to cap. */
void rpc_certs_fpr_format(char *out, size_t cap, const uint8_t *fpr, size_t n);

typedef enum { RPC_CERT_CLIENT = 1, RPC_CERT_SERVER = 2 } rpc_cert_role;

/* Checks a TLS identity locally, before any connection, so that a mistake is one plain line
 * instead of a handshake that fails on the far side:
 *   - the three files are readable PEM (a CA certificate, a certificate, a private key);
 *   - key_path is the private key of cert_path;
 *   - the CA and the certificate are valid now (not expired, not yet valid);
 *   - cert_path is signed by the CA of ca_path and fit for `role` (TLS client or server);
 *   - its subject CN is `name` (NULL: any name);
 *   - for a server, it has a subjectAltName, and `host` (NULL or "": not checked) is in it.
 * Returns MU_OK; MU_ERR_INVALID (a path is empty), MU_ERR_IO (unreadable), MU_ERR_FORMAT
 * (not PEM) or MU_ERR_CRYPTO (the rest), with diag naming the file and the problem. */
int rpc_certs_check(const char *ca_path, const char *cert_path, const char *key_path,
                    rpc_cert_role role, const char *name, const char *host, mu_diag *diag);

#endif
