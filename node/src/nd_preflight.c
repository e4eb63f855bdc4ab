/* nd_preflight.c - what `serve` and `join` check before they bind or dial: the config, the
 * insecure-mode rule and the TLS identity (rpc_certs_check). A certificate mistake is then
 * one plain line and a usage error at start instead of handshakes failing on the far side. */
#include <string.h>

#include "co_config.h"
#include "co_round.h"
#include "mu_addr.h"
#include "mu_log.h"
#include "nd_internal.h"
#include "nd_orgcfg.h"
#include "rpc_certs.h"

/* A listen host that binds every interface names no host a certificate could carry. */
static int wildcard_host(const char *host)
{
    return !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
}

int nd_tls_check_server(const co_config *cfg, int warn_host, mu_diag *d)
{
    int rc =
        rpc_certs_check(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, RPC_CERT_SERVER, NULL, NULL, d);
    if (rc)
        return rc;
    char host[256];
    if (!warn_host || mu_addr_parse(cfg->listen, host, sizeof host, NULL, NULL) != MU_OK ||
        wildcard_host(host))
        return MU_OK;
    mu_diag why = {{0}};
    if (rpc_certs_check(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, RPC_CERT_SERVER, NULL, host,
                        &why) != MU_OK) /* orgs may dial another name (NAT, DNS): a warning */
        mu_warn("serve: %s", why.msg);
    return MU_OK;
}

int nd_tls_check_org(const nd_orgcfg *cfg, mu_diag *d)
{
    return rpc_certs_check(cfg->ca, cfg->cert, cfg->key, RPC_CERT_CLIENT, cfg->name, NULL, d);
}

int nd_serve_check(const nd_serve_opts *o, mu_diag *d)
{
    co_config cfg;
    nd_model_spec spec;
    int rc = co_config_load(o->config_path, &cfg, d);
    if (rc)
        return rc;
    mu_diag q = {{0}}; /* a quantisation that could overflow (co_round_new would refuse it) */
    if ((rc = co_round_check_config(&cfg, &q)) != MU_OK)
        mu_diag_set(d, rc, "%s: secure_agg: %s", o->config_path, q.msg);
    if (!rc)
        rc = nd_model_spec_load(o->config_path, &spec, d);
    if (!rc && (o->insecure || cfg.insecure))
        rc = nd_insecure_check("listen address", cfg.listen, d);
    else if (!rc)
        rc = nd_tls_check_server(&cfg, 0, d); /* serve's setup warns about the host */
    co_config_deinit(&cfg);
    return rc;
}

int nd_join_check(const nd_join_opts *o, mu_diag *d)
{
    nd_orgcfg cfg;
    int rc = nd_orgcfg_load(o->config_path, &cfg, d);
    if (rc)
        return rc;
    if (o->insecure || cfg.insecure)
        return nd_insecure_check("coordinator address", cfg.address, d);
    return nd_tls_check_org(&cfg, d);
}
