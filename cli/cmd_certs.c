/* cmd_certs.c - `mutual certs init|issue|request|sign|identity`: the federation CA, org and
 * operator certificates, certificate requests, and an org's identity key. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "mu_log.h"
#include "nd_orgcfg.h"
#include "rpc_certs.h"
#include "wi_bytes.h"

#define MAX_HOSTS 32

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual certs init --dir DIR [--name CA_NAME] [--days N]\n"
            "       mutual certs issue --dir DIR --org NAME [--server HOST]... [--operator]\n"
            "                          [--days N]\n"
            "       mutual certs request --dir DIR --org NAME\n"
            "       mutual certs sign --dir DIR --csr FILE [--days N]\n"
            "       mutual certs identity --key FILE\n\n"
            "init   creates the federation CA: DIR/ca.key (mode 0600) and a self-signed\n"
            "       DIR/ca.crt. Give ca.crt to every org and to the coordinator; keep ca.key\n"
            "       offline.\n"
            "issue  creates DIR/NAME.key (mode 0600) and DIR/NAME.crt, signed by the CA, with\n"
            "       CN = NAME: the org's identity on the wire. With --server (repeat it for\n"
            "       each DNS name or IP address orgs dial, e.g. --server localhost --server\n"
            "       127.0.0.1) the certificate is also a TLS server certificate: issue the\n"
            "       coordinator's this way. With --operator it is an operator certificate\n"
            "       (OU \"" RPC_CERT_OPERATOR_OU "\"): the coordinator answers `mutual status` to\n"
            "       operators and to members only.\n"
            "request  (on the org's machine) creates DIR/NAME.key (mode 0600) and DIR/NAME.csr, a\n"
            "       certificate request with CN = NAME: send only the .csr to the operator.\n"
            "sign   (on the CA's machine) checks the request FILE and writes DIR/NAME.crt, an\n"
            "       org certificate signed by DIR's CA for the request's CN (nothing else in\n"
            "       the request is used). Send it back with DIR/ca.crt.\n"
            "identity  prints the public key (64 hex digits) of an org's Ed25519 identity key\n"
            "       FILE (org.identity_key), creating FILE (mode 0600) if it does not exist: what\n"
            "       the operator pins in the coordinator's orgs list (public_key), e.g. after the\n"
            "       org lost its old key (docs/federation.md, key rotation).\n\n"
            "Options:\n"
            "  --dir DIR        where the CA lives (created by init, mode 0700)\n"
            "  --org NAME       1-64 of [A-Za-z0-9._-]\n"
            "  --server HOST    a subjectAltName for a server certificate (repeatable)\n"
            "  --operator       issue an operator certificate (for mutual status)\n"
            "  --key FILE       the identity key file (identity)\n"
            "  --csr FILE       the certificate request to sign (sign)\n"
            "  --name CA_NAME   the CA's CN (default \"mutual federation CA\")\n"
            "  --days N         validity in days (default %d)\n\n"
            "Keys are ECDSA P-256 and are never printed. Existing files are never\n"
            "overwritten. Exit status 0 on success, 1 on failure, 2 on a usage error.\n",
            RPC_CERT_DEFAULT_DAYS);
}

/* `certs identity --key FILE`: the public half of an org's identity key, on stdout. */
static int identity(const char *path, int other_opts)
{
    if (!path)
        return cli_usage_error("certs", "'identity' needs --key FILE");
    if (other_opts)
        return cli_usage_error("certs", "'identity' takes only --key FILE");
    if (sodium_init() < 0) {
        fprintf(stderr, "mutual certs: libsodium failed to initialise\n");
        return MU_EXIT_FAIL;
    }
    uint8_t pk[32], sk[64];
    mu_diag d = {{0}};
    int rc = nd_identity_load(path, pk, sk, &d);
    sodium_memzero(sk, sizeof sk);
    if (rc != MU_OK) {
        fprintf(stderr, "mutual certs: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return MU_EXIT_FAIL;
    }
    char hex[2 * sizeof pk + 1];
    wi_hex_encode(hex, sizeof hex, pk, sizeof pk);
    printf("%s\n", hex);
    return MU_EXIT_OK;
}

/* `certs request --dir DIR --org NAME` (org side) and `certs sign --dir DIR --csr FILE`
 * (CA side). */
static int request_or_sign(const char *sub, const char *dir, const char *org, const char *csr,
                           int days, int other_opts)
{
    mu_diag d = {{0}};
    int rc;
    if (other_opts)
        return cli_usage_error("certs", "--name, --server and --operator do not go with '%s'", sub);
    if (sub[0] == 'r') {
        if (!org)
            return cli_usage_error("certs", "'request' needs --org NAME");
        if (days)
            return cli_usage_error("certs", "--days belongs to the signer ('sign')");
        if (!rpc_certs_name_ok(org) || !strcmp(org, "ca"))
            return cli_usage_error("certs", "--org '%s' must be 1-63 of [A-Za-z0-9._-]", org);
        rc = rpc_certs_request(dir, org, &d);
        if (rc == MU_OK)
            printf("wrote %s/%s.csr (key %s/%s.key, mode 0600): send the .csr to the "
                   "federation's operator\n",
                   dir, org, dir, org);
    } else {
        if (!csr)
            return cli_usage_error("certs", "'sign' needs --csr FILE");
        if (org)
            return cli_usage_error("certs", "'sign' takes the name from the request, not --org");
        char cn[RPC_CSR_NAME_CAP];
        rc = rpc_certs_sign(dir, csr, days, cn, &d);
        if (rc == MU_OK)
            printf("issued %s/%s.crt (CN=%s) from %s: send it and %s/ca.crt to the org\n", dir, cn,
                   cn, csr, dir);
    }
    if (rc != MU_OK) {
        fprintf(stderr, "mutual certs: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return MU_EXIT_FAIL;
    }
    return MU_EXIT_OK;
}

int cmd_certs(int argc, char **argv)
{
    enum { OPT_DIR = 256, OPT_ORG, OPT_SERVER, OPT_NAME, OPT_DAYS, OPT_OPERATOR, OPT_KEY, OPT_CSR };
    static const struct option longopts[] = {{"dir", required_argument, NULL, OPT_DIR},
                                             {"org", required_argument, NULL, OPT_ORG},
                                             {"server", required_argument, NULL, OPT_SERVER},
                                             {"name", required_argument, NULL, OPT_NAME},
                                             {"days", required_argument, NULL, OPT_DAYS},
                                             {"operator", no_argument, NULL, OPT_OPERATOR},
                                             {"key", required_argument, NULL, OPT_KEY},
                                             {"csr", required_argument, NULL, OPT_CSR},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    const char *dir = NULL, *org = NULL, *name = NULL, *key = NULL, *csr = NULL;
    int is_op = 0;
    const char *hosts[MAX_HOSTS];
    size_t n_hosts = 0;
    long days = 0;
    int c;
    while ((c = getopt_long(argc, argv, MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            help(stdout);
            return MU_EXIT_OK;
        case OPT_DIR:
            dir = optarg;
            break;
        case OPT_ORG:
            org = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_SERVER:
            if (n_hosts == MAX_HOSTS)
                return cli_usage_error("certs", "at most %d --server hosts", MAX_HOSTS);
            hosts[n_hosts++] = optarg;
            break;
        case OPT_OPERATOR:
            is_op = 1;
            break;
        case OPT_KEY:
            key = optarg;
            break;
        case OPT_CSR:
            csr = optarg;
            break;
        case OPT_DAYS:
            if (cli_parse_long("certs", "--days", optarg, 1, 36500, &days))
                return MU_EXIT_USAGE;
            break;
        default:
            if (!cli_common_opt(c))
                return cli_usage_error("certs", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("certs", "expected 'init' or 'issue'");
    if (optind + 1 < argc)
        return cli_usage_error("certs", "unexpected argument '%s'", argv[optind + 1]);
    const char *sub = argv[optind];
    if (!strcmp(sub, "identity"))
        return identity(key, dir || org || name || n_hosts || is_op || days || csr);
    if (key)
        return cli_usage_error("certs", "--key belongs to 'identity'");
    if (!dir)
        return cli_usage_error("certs", "--dir DIR is required");
    if (csr && strcmp(sub, "sign"))
        return cli_usage_error("certs", "--csr belongs to 'sign'");
    mu_diag d = {{0}};
    int rc;
    if (!strcmp(sub, "init")) {
        if (org || n_hosts || is_op)
            return cli_usage_error("certs", "--org, --server and --operator belong to 'issue'");
        rc = rpc_certs_init(dir, name, (int)days, &d);
        if (rc == MU_OK)
            printf("created the federation CA: %s/ca.crt (key %s/ca.key, mode 0600)\n", dir, dir);
    } else if (!strcmp(sub, "issue")) {
        if (!org)
            return cli_usage_error("certs", "'issue' needs --org NAME");
        if (name)
            return cli_usage_error("certs", "--name belongs to 'init'");
        if (!rpc_certs_name_ok(org))
            return cli_usage_error("certs", "--org '%s' must be 1-63 of [A-Za-z0-9._-]", org);
        if (is_op && n_hosts)
            return cli_usage_error("certs", "an operator certificate is not a server's");
        rc = is_op ? rpc_certs_issue_operator(dir, org, (int)days, &d)
                   : rpc_certs_issue(dir, org, hosts, n_hosts, (int)days, &d);
        if (rc == MU_OK)
            printf("issued %s/%s.crt (CN=%s%s; key %s/%s.key, mode 0600)\n", dir, org, org,
                   is_op     ? ", operator certificate"
                   : n_hosts ? ", server certificate"
                             : "",
                   dir, org);
    } else if (!strcmp(sub, "request") || !strcmp(sub, "sign")) {
        return request_or_sign(sub, dir, org, csr, (int)days, name || n_hosts || is_op);
    } else {
        return cli_usage_error(
            "certs", "unknown subcommand '%s' (init, issue, request, sign or identity)", sub);
    }
    if (rc != MU_OK) {
        fprintf(stderr, "mutual certs: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return rc == MU_ERR_INVALID ? MU_EXIT_USAGE : MU_EXIT_FAIL;
    }
    return MU_EXIT_OK;
}
