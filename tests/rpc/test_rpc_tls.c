/* test_rpc_tls.c - federation certificates and mutual TLS on loopback: a member's
 * certificate is accepted and names the caller; no certificate, another CA's certificate,
 * plaintext, or a coordinator the org cannot verify are all refused (UNAVAILABLE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "mu_log.h"
#include "rpc_certs.h"
#include "rpc_client.h"
#include "rpc_toy.h"

static char dir[64], other[64];
static toy T;

static const char *path(const char *d, const char *file)
{
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d, file);
    return buf[k];
}

static void rm_dir(const char *d)
{
    const char *files[] = {"ca.key",     "ca.crt",     "coordinator.key", "coordinator.crt",
                           "bank-a.key", "bank-a.crt", "bank-evil.key",   "bank-evil.crt",
                           "bank-b.key", "bank-b.crt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(path(d, files[i]));
    rmdir(d);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/rpc_tls_XXXXXX");
    snprintf(other, sizeof other, "/tmp/rpc_tls_other_XXXXXX");
    if (!mkdtemp(dir) || !mkdtemp(other))
        return -1;
    rmdir(dir); /* rpc_certs_init creates it */
    mu_diag d = {{0}};
    const char *hosts[] = {"localhost", "127.0.0.1"};
    if (rpc_certs_init(dir, NULL, 0, &d) || rpc_certs_issue(dir, "coordinator", hosts, 2, 0, &d) ||
        rpc_certs_issue(dir, "bank-a", NULL, 0, 0, &d) ||
        rpc_certs_init(other, "another CA", 0, &d) ||
        rpc_certs_issue(other, "bank-evil", NULL, 0, 0, &d)) {
        fprintf(stderr, "setup: %s\n", d.msg);
        return -1;
    }
    rpc_server_config cfg = {0};
    cfg.address = "127.0.0.1:0";
    cfg.ca_path = path(dir, "ca.crt");
    cfg.cert_path = path(dir, "coordinator.crt");
    cfg.key_path = path(dir, "coordinator.key");
    toy_start(&T, &cfg, 3u << 20);
    return 0;
}

static int teardown(void **state)
{
    toy_stop(&T);
    rm_dir(dir);
    rm_dir(other);
    return 0;
}

static void test_certs_files_and_errors(void **state)
{
    struct stat st;
    assert_int_equal(stat(path(dir, "ca.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(path(dir, "bank-a.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    mu_diag d = {{0}};
    assert_int_equal(rpc_certs_init(dir, NULL, 0, &d), MU_ERR_STATE);
    assert_int_equal(rpc_certs_issue(dir, "bank-a", NULL, 0, 0, &d), MU_ERR_STATE);
    assert_int_equal(rpc_certs_issue(dir, "../x", NULL, 0, 0, &d), MU_ERR_INVALID);
    assert_int_equal(rpc_certs_issue(dir, "", NULL, 0, 0, &d), MU_ERR_INVALID);
    const char *bad_host[] = {"a.example,DNS:evil"};
    assert_int_equal(rpc_certs_issue(dir, "srv2", bad_host, 1, 0, &d), MU_ERR_INVALID);
    assert_int_equal(access(path(dir, "srv2.key"), F_OK), -1); /* nothing left behind */
    assert_int_equal(rpc_certs_issue("/tmp/rpc_tls_no_such_dir", "x", NULL, 0, 0, &d),
                     MU_ERR_NOTFOUND);
}

static rpc_client *client(const char *target_host, const char *ca_dir, const char *ca,
                          const char *org_dir, const char *org)
{
    char target[64], crt[64], key[64];
    snprintf(target, sizeof target, "%s:%d", target_host, rpc_server_port(T.srv));
    snprintf(crt, sizeof crt, "%s.crt", org);
    snprintf(key, sizeof key, "%s.key", org);
    rpc_client_config cc = {0};
    cc.target = target;
    cc.ca_path = path(ca_dir, ca);
    cc.cert_path = path(org_dir, crt);
    cc.key_path = path(org_dir, key);
    mu_diag d = {{0}};
    rpc_client *c = rpc_client_new(&cc, &d);
    if (!c)
        fprintf(stderr, "client: %s\n", d.msg);
    assert_non_null(c);
    return c;
}

/* Calls Join as org `as`; returns the mu_err code, the status in *st and what the server
 * answered in federation_name (the peer it saw; for "fingerprint" its certificate's). */
static int join_as(rpc_client *c, const char *as, rpc_status *st, char *peer, size_t cap)
{
    uint8_t pk[32] = {9};
    Mutual__V1__JoinRequest rq = MUTUAL__V1__JOIN_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    rq.org_name = (char *)as;
    rq.signing_public_key.data = pk;
    rq.signing_public_key.len = sizeof pk;
    ProtobufCMessage *rep = NULL;
    int rc = rpc_client_unary(c, RPC_JOIN, &rq.base, 5, &rep, st);
    if (rep) {
        snprintf(peer, cap, "%s", ((Mutual__V1__JoinReply *)rep)->federation_name);
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return rc;
}

static int join(rpc_client *c, rpc_status *st, char *peer, size_t cap)
{
    return join_as(c, "bank-a", st, peer, cap);
}

/* The SHA-256 of the certificate file's DER, in hex. */
static void file_fpr(const char *crt, char hex[2 * RPC_CERT_FPR_BYTES + 1])
{
    FILE *f = fopen(crt, "rb");
    assert_non_null(f);
    char pem[8192];
    size_t n = fread(pem, 1, sizeof pem, f);
    fclose(f);
    uint8_t fpr[RPC_CERT_FPR_BYTES];
    assert_int_equal(rpc_certs_pem_identity(pem, n, NULL, fpr), MU_OK);
    for (size_t i = 0; i < RPC_CERT_FPR_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", fpr[i]);
}

/* The server remembers each certificate's identity (rpc_server_call.c, peer_identity): calls
 * from three connections, interleaved, with two certificates of one name (bank-a, issued
 * twice by the same CA) and another (bank-b), each see their own certificate's
 * fingerprint, every time. */
static void test_peer_fingerprint_per_certificate(void **state)
{
    char second[64];
    snprintf(second, sizeof second, "/tmp/rpc_tls_second_XXXXXX");
    assert_non_null(mkdtemp(second));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cp %s/ca.crt %s/ca.key %s/", dir, dir, second);
    assert_int_equal(system(cmd), 0);
    mu_diag d = {{0}};
    assert_int_equal(rpc_certs_issue(second, "bank-a", NULL, 0, 0, &d), MU_OK);
    if (access(path(dir, "bank-b.crt"), R_OK))
        assert_int_equal(rpc_certs_issue(dir, "bank-b", NULL, 0, 0, &d), MU_OK);
    const char *dirs[3] = {dir, second, dir}, *orgs[3] = {"bank-a", "bank-a", "bank-b"};
    rpc_client *c[3];
    char want[3][2 * RPC_CERT_FPR_BYTES + 1], crt[160];
    for (int k = 0; k < 3; k++) {
        c[k] = client("127.0.0.1", dir, "ca.crt", dirs[k], orgs[k]);
        snprintf(crt, sizeof crt, "%s/%s.crt", dirs[k], orgs[k]);
        file_fpr(crt, want[k]);
    }
    assert_string_not_equal(want[0], want[1]);
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 3; k++) {
            rpc_status st;
            char got[160] = "";
            assert_int_equal(join_as(c[k], "fingerprint", &st, got, sizeof got), MU_OK);
            if (strcmp(got, want[k]))
                fail_msg("call %d of %s (%s): fingerprint %s, want %s", round, orgs[k], dirs[k],
                         got, want[k]);
        }
    for (int k = 0; k < 3; k++)
        rpc_client_free(c[k]);
    rm_dir(second);
}

static void test_member_accepted_and_named(void **state)
{
    rpc_status st;
    char peer[160] = "";
    rpc_client *c = client("127.0.0.1", dir, "ca.crt", dir, "bank-a");
    assert_int_equal(join(c, &st, peer, sizeof peer), MU_OK);
    assert_string_equal(peer, "bank-a"); /* the CN of its certificate */
    rpc_client_free(c);
    c = client("localhost", dir, "ca.crt", dir, "bank-a"); /* the DNS name in the SAN */
    assert_int_equal(join(c, &st, peer, sizeof peer), MU_OK);
    assert_string_equal(peer, "bank-a");
    /* streams work over TLS too */
    Mutual__V1__DownloadAdapterRequest rq = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    rq.api_version = RPC_API_VERSION;
    rq.org_id = 7;
    rpc_blob b;
    assert_int_equal(rpc_client_download(c, &rq, 10, 8u << 20, &b, &st), MU_OK);
    assert_int_equal(b.len, T.blob_len);
    assert_memory_equal(b.data, T.blob, b.len);
    free(b.data);
    rpc_client_free(c);
}

static void test_other_ca_refused(void **state)
{
    rpc_status st;
    char peer[160] = "";
    int joins = atomic_load(&T.joins);
    rpc_client *c = client("127.0.0.1", dir, "ca.crt", other, "bank-evil");
    assert_int_equal(join(c, &st, peer, sizeof peer), MU_ERR_IO);
    assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
    rpc_client_free(c);
    assert_int_equal(atomic_load(&T.joins), joins);
}

static void test_untrusted_coordinator_refused(void **state)
{
    rpc_status st;
    char peer[160] = "";
    /* the org trusts another CA than the one that signed the coordinator */
    rpc_client *c = client("127.0.0.1", other, "ca.crt", dir, "bank-a");
    assert_int_equal(join(c, &st, peer, sizeof peer), MU_ERR_IO);
    assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
    rpc_client_free(c);
}

static void test_no_certificate_and_plaintext_refused(void **state)
{
    grpc_init();
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(T.srv));
    FILE *f = fopen(path(dir, "ca.crt"), "r");
    assert_non_null(f);
    char ca[8192];
    size_t n = fread(ca, 1, sizeof ca - 1, f);
    fclose(f);
    ca[n] = 0;
    grpc_channel_credentials *creds[2] = {
        grpc_ssl_credentials_create(ca, NULL, NULL, NULL), /* TLS, no client certificate */
        grpc_insecure_credentials_create(),                /* plaintext */
    };
    int joins = atomic_load(&T.joins);
    for (int i = 0; i < 2; i++) {
        grpc_channel *ch = grpc_channel_create(target, creds[i], NULL);
        grpc_channel_credentials_release(creds[i]);
        grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
        grpc_call *call = grpc_channel_create_call(
            ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
            grpc_slice_from_static_string("/mutual.v1.Coordinator/Status"), NULL,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN)),
            NULL);
        grpc_slice s = grpc_slice_from_static_string("\x08\x01");
        grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&s, 1);
        grpc_metadata_array md;
        grpc_metadata_array_init(&md);
        grpc_status_code code = GRPC_STATUS_OK;
        grpc_slice details;
        grpc_op ops[4];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = req;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[3].data.recv_status_on_client.status = &code;
        ops[3].data.recv_status_on_client.status_details = &details;
        ops[3].data.recv_status_on_client.trailing_metadata = &md;
        assert_int_equal(grpc_call_start_batch(call, ops, 4, ops, NULL), GRPC_CALL_OK);
        grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        assert_int_equal(code, GRPC_STATUS_UNAVAILABLE); /* 14 */
        grpc_slice_unref(details);
        grpc_byte_buffer_destroy(req);
        grpc_metadata_array_destroy(&md);
        grpc_call_unref(call);
        grpc_completion_queue_shutdown(cq);
        grpc_completion_queue_destroy(cq);
        grpc_channel_destroy(ch);
    }
    assert_int_equal(atomic_load(&T.joins), joins);
    grpc_shutdown();
}

static void test_wrong_server_name_refused(void **state)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(T.srv));
    rpc_client_config cc = {0};
    cc.target = target;
    cc.ca_path = path(dir, "ca.crt");
    cc.cert_path = path(dir, "bank-a.crt");
    cc.key_path = path(dir, "bank-a.key");
    cc.server_name = "coordinator.elsewhere.example"; /* not in the certificate's SAN */
    rpc_client *c = rpc_client_new(&cc, NULL);
    assert_non_null(c);
    rpc_status st;
    char peer[160];
    assert_int_equal(join(c, &st, peer, sizeof peer), MU_ERR_IO);
    assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
    rpc_client_free(c);
}

static void test_missing_files_reported(void **state)
{
    rpc_server_config cfg = {0};
    cfg.address = "127.0.0.1:0";
    cfg.ca_path = path(dir, "ca.crt");
    cfg.cert_path = path(dir, "nobody.crt");
    cfg.key_path = path(dir, "nobody.key");
    rpc_handlers h = {0};
    mu_diag d = {{0}};
    assert_null(rpc_server_new(&cfg, &h, &d));
    assert_non_null(strstr(d.msg, "nobody.crt"));
    rpc_client_config cc = {0};
    cc.target = "127.0.0.1:1";
    cc.ca_path = path(dir, "ca.crt");
    assert_null(rpc_client_new(&cc, &d));
    assert_non_null(strstr(d.msg, "missing"));
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certs_files_and_errors),
        cmocka_unit_test(test_member_accepted_and_named),
        cmocka_unit_test(test_peer_fingerprint_per_certificate),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_untrusted_coordinator_refused),
        cmocka_unit_test(test_no_certificate_and_plaintext_refused),
        cmocka_unit_test(test_wrong_server_name_refused),
        cmocka_unit_test(test_missing_files_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
