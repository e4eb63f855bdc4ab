/* rpc_bench.c - loopback numbers for the wire (built with the tests, never run by ctest):
 * sequential unary latency and streaming throughput, plaintext against mutual TLS, and what
 * the server's per-call peer identity costs against that latency: rpc_certs_pem_identity on
 * the client's certificate (PEM parse, SHA-256 of the DER, operator OU), which set_peer in
 * rpc_server_call.c ran for every mTLS call and now runs once per certificate (peer_identity).
 *
 * usage: rpc_bench [UNARY_CALLS [STREAM_MIB]]   (default 2000 and 64)
 * Prints one JSON object per measurement on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mu_log.h"
#include "mu_progress.h"
#include "rpc_certs.h"
#include "rpc_client.h"
#include "rpc_toy.h"

#define MIB (1u << 20)

/* CPU seconds of the whole process (client and server threads), user + system. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Returns the unary microseconds per call. */
static double bench(const char *mode, const char *dir, int calls, size_t stream_mib)
{
    char ca[256], crt[256], key[256], ocrt[256], okey[256], target[64];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(crt, sizeof crt, "%s/coordinator.crt", dir);
    snprintf(key, sizeof key, "%s/coordinator.key", dir);
    snprintf(ocrt, sizeof ocrt, "%s/bank-a.crt", dir);
    snprintf(okey, sizeof okey, "%s/bank-a.key", dir);
    int tls = !strcmp(mode, "mtls");
    rpc_server_config cfg = {0};
    cfg.address = "127.0.0.1:0";
    cfg.insecure = !tls;
    cfg.ca_path = ca;
    cfg.cert_path = crt;
    cfg.key_path = key;
    cfg.max_message_bytes = 4 * MIB;
    cfg.max_upload_bytes = (stream_mib + 1) * MIB;
    toy t;
    toy_start(&t, &cfg, stream_mib * MIB);
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(t.srv));
    rpc_client_config cc = {0};
    cc.target = target;
    cc.insecure = !tls;
    cc.ca_path = ca;
    cc.cert_path = ocrt;
    cc.key_path = okey;
    cc.max_message_bytes = 4 * MIB;
    rpc_client *c = rpc_client_new(&cc, NULL);
    if (!c)
        abort();

    Mutual__V1__StatusRequest rq = MUTUAL__V1__STATUS_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    double t0 = 0, c0 = 0;
    for (int i = -50; i < calls; i++) { /* 50 warm-up calls (connect, handshake) */
        if (i == 0) {
            t0 = mu_now();
            c0 = cpu_now();
        }
        ProtobufCMessage *rep = NULL;
        if (rpc_client_unary(c, RPC_STATUS, &rq.base, 10, &rep, NULL) != MU_OK)
            abort();
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    double dt = mu_now() - t0, dc = cpu_now() - c0, us = dt / calls * 1e6;
    printf("{\"bench\":\"rpc_unary_status\",\"mode\":\"%s\",\"calls\":%d,\"us_per_call\":%.1f,"
           "\"cpu_us_per_call\":%.1f}\n",
           mode, calls, dt / calls * 1e6, dc / calls * 1e6);

    Mutual__V1__DownloadAdapterRequest dr = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    dr.api_version = RPC_API_VERSION;
    dr.org_id = 7;
    rpc_blob b;
    t0 = mu_now();
    c0 = cpu_now();
    if (rpc_client_download(c, &dr, 60, (stream_mib + 1) * MIB, &b, NULL) != MU_OK)
        abort();
    dt = mu_now() - t0;
    dc = cpu_now() - c0;
    printf("{\"bench\":\"rpc_download\",\"mode\":\"%s\",\"mib\":%zu,\"chunk_mib\":1,"
           "\"mib_per_s\":%.0f,\"mib_per_cpu_s\":%.0f,\"note\":\"includes SHA-256 check\"}\n",
           mode, stream_mib, stream_mib / dt, stream_mib / dc);

    uint8_t sig[RPC_ED25519_SIG_BYTES] = {0};
    rpc_upload_meta meta = {7, 1, 3, sig, sizeof sig};
    Mutual__V1__UploadMaskedReply *ur = NULL;
    t0 = mu_now();
    c0 = cpu_now();
    if (rpc_client_upload(c, &meta, b.data, b.len, MIB, 60, &ur, NULL) != MU_OK || !ur->accepted)
        abort();
    dt = mu_now() - t0;
    dc = cpu_now() - c0;
    printf("{\"bench\":\"rpc_upload\",\"mode\":\"%s\",\"mib\":%zu,\"chunk_mib\":1,"
           "\"mib_per_s\":%.0f,\"mib_per_cpu_s\":%.0f,"
           "\"note\":\"includes SHA-256 on both ends\"}\n",
           mode, stream_mib, stream_mib / dt, stream_mib / dc);
    fflush(stdout);
    protobuf_c_message_free_unpacked(&ur->base, NULL);
    free(b.data);
    rpc_client_free(c);
    toy_stop(&t);
    return us;
}

/* The peer identity of one call (rpc_certs_pem_identity on the PEM gRPC hands the server),
 * timed over n calls on the certificate `crt`; printed with its share of unary_us. */
static void bench_identity(const char *crt, int n, double unary_us)
{
    FILE *f = fopen(crt, "rb");
    char pem[8192];
    size_t len = f ? fread(pem, 1, sizeof pem, f) : 0;
    if (f)
        fclose(f);
    uint8_t fpr[RPC_CERT_FPR_BYTES];
    int op = 0;
    if (!len || rpc_certs_pem_identity(pem, len, &op, fpr) != MU_OK)
        abort();
    double t0 = mu_now(), c0 = cpu_now();
    for (int i = 0; i < n; i++)
        if (rpc_certs_pem_identity(pem, len, &op, fpr) != MU_OK)
            abort();
    double us = (mu_now() - t0) / n * 1e6, cpu = (cpu_now() - c0) / n * 1e6;
    printf("{\"bench\":\"rpc_peer_identity\",\"calls\":%d,\"pem_bytes\":%zu,\"us_per_call\":%.2f,"
           "\"cpu_us_per_call\":%.2f,\"parse_over_mtls_unary\":%.4f}\n",
           n, len, us, cpu, us / unary_us);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 2000;
    size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 64;
    if (calls <= 0 || mib == 0)
        return 2;
    mu_log_set_level(MU_LOG_ERROR);
    char dir[] = "/tmp/rpc_bench_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    mu_diag d = {{0}};
    const char *hosts[] = {"127.0.0.1"};
    char sub[64];
    snprintf(sub, sizeof sub, "%s/fed", dir);
    if (rpc_certs_init(sub, NULL, 0, &d) || rpc_certs_issue(sub, "coordinator", hosts, 1, 0, &d) ||
        rpc_certs_issue(sub, "bank-a", NULL, 0, 0, &d)) {
        fprintf(stderr, "rpc_bench: %s\n", d.msg);
        return 1;
    }
    bench("plaintext", sub, calls, mib);
    double mtls_us = bench("mtls", sub, calls, mib);
    char crt[128];
    snprintf(crt, sizeof crt, "%s/bank-a.crt", sub);
    bench_identity(crt, calls * 10, mtls_us);
    const char *files[] = {"ca.key",          "ca.crt",     "coordinator.key",
                           "coordinator.crt", "bank-a.key", "bank-a.crt"};
    for (size_t i = 0; i < 6; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", sub, files[i]);
        unlink(p);
    }
    rmdir(sub);
    rmdir(dir);
    return 0;
}
