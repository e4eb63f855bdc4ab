/* nd_bad_client.c - a misbehaving org against a real `mutual serve` (started by
 * nd_bad_input.sh): every bad message gets its gRPC status and changes nothing.
 *
 * usage: nd_bad_client HOST:PORT FED_DIR
 * Uses FED_DIR/{ca,org-1,org-2}.{crt,key}. Exits 0 only if every expectation held.
 *
 * usage: nd_bad_client --as HOST:PORT CA CERT KEY ORG_ID SIGNING_KEY ROUND UPLOAD_MIB
 * (nd_certs.sh) Speaks for the registered org ORG_ID with CERT/KEY, a CA-valid certificate
 * that is not the one the roster names, holding that org's real SIGNING_KEY: PullTask, a
 * signed PushStage report for ROUND, a signed UploadMasked stream of UPLOAD_MIB MiB and
 * DownloadAdapter must each be refused PERMISSION_DENIED. Prints how long the upload took. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "co_wire.h"
#include "gv_store.h"
#include "mu_progress.h"
#include "nd.h"
#include "rpc_client.h"
#include "wi_push.h"
#include "wi_stage.h"

static int failures;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok   ");                                                                       \
        } else {                                                                                   \
            printf("FAIL ");                                                                       \
            failures++;                                                                            \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

static rpc_client *client_for(const char *addr, const char *dir, const char *org)
{
    static char ca[4][512], crt[4][512], key[4][512];
    static int n;
    int i = n++ % 4;
    snprintf(ca[i], sizeof ca[i], "%s/ca.crt", dir);
    snprintf(crt[i], sizeof crt[i], "%s/%s.crt", dir, org);
    snprintf(key[i], sizeof key[i], "%s/%s.key", dir, org);
    rpc_client_config cc = {
        .target = addr, .ca_path = ca[i], .cert_path = crt[i], .key_path = key[i]};
    mu_diag d = {{0}};
    rpc_client *c = rpc_client_new(&cc, &d);
    if (!c) {
        fprintf(stderr, "rpc_client_new: %s\n", d.msg);
        exit(2);
    }
    return c;
}

static grpc_status_code join(rpc_client *c, const char *name, const uint8_t pk[32], uint64_t *id)
{
    Mutual__V1__JoinRequest req = MUTUAL__V1__JOIN_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_name = (char *)name;
    req.signing_public_key.data = (uint8_t *)pk;
    req.signing_public_key.len = 32;
    req.software_version = "bad-client";
    ProtobufCMessage *r = NULL;
    rpc_status st = {0};
    rpc_client_unary(c, RPC_JOIN, &req.base, 10, &r, &st);
    if (r) {
        *id = ((Mutual__V1__JoinReply *)r)->org_id;
        protobuf_c_message_free_unpacked(r, NULL);
    }
    return st.code;
}

static grpc_status_code push(rpc_client *c, uint64_t id, uint64_t round, uint32_t stage,
                             const uint8_t *msg, size_t len, const uint8_t *sk, char *why)
{
    uint8_t sig[64] = {0};
    if (sk)
        wi_push_sign(sig, sk, id, round, stage, msg, len);
    Mutual__V1__PushStageRequest req = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    req.org_id = id;
    req.round = round;
    req.stage = stage;
    req.payload.data = (uint8_t *)msg;
    req.payload.len = len;
    req.signature.data = sig;
    req.signature.len = 64;
    ProtobufCMessage *r = NULL;
    rpc_status st = {0};
    rpc_client_unary(c, RPC_PUSH_STAGE, &req.base, 10, &r, &st);
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    snprintf(why, 256, "%s", st.message);
    return st.code;
}

/* --as: every authenticated call with another CA-valid certificate for the org's name. */
static int wrong_cert(char **a)
{
    rpc_client_config cc = {.target = a[0], .ca_path = a[1], .cert_path = a[2], .key_path = a[3]};
    uint64_t id = strtoull(a[4], NULL, 10), round = strtoull(a[6], NULL, 10);
    size_t mib = strtoull(a[7], NULL, 10);
    mu_diag d = {{0}};
    uint8_t sk[GV_SK_BYTES];
    rpc_client *c = rpc_client_new(&cc, &d);
    if (!c || gv_signing_key_load(a[5], sk, &d) != MU_OK) {
        fprintf(stderr, "nd_bad_client: %s\n", d.msg);
        rpc_client_free(c);
        return 2;
    }
    rpc_status st = {0};
    ProtobufCMessage *reply = NULL;
    Mutual__V1__PullTaskRequest pr = MUTUAL__V1__PULL_TASK_REQUEST__INIT;
    pr.api_version = RPC_API_VERSION;
    pr.org_id = id;
    rpc_client_unary(c, RPC_PULL_TASK, &pr.base, 10, &reply, &st);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    EXPECT(st.code == GRPC_STATUS_PERMISSION_DENIED, "PullTask as org %llu: %s (%s)",
           (unsigned long long)id, rpc_status_name(st.code), st.message);

    char why[256];
    uint8_t rep[CO_REPORT_BYTES];
    co_report r = {CO_REPORT_READY, 1};
    co_report_encode(&r, rep);
    grpc_status_code s = push(c, id, round, WI_STAGE_REPORT, rep, sizeof rep, sk, why);
    EXPECT(s == GRPC_STATUS_PERMISSION_DENIED, "PushStage (a report signed with its key): %s (%s)",
           rpc_status_name(s), why);

    size_t len = mib << 20;
    uint8_t *big = calloc(len ? len : 1, 1), sig[64];
    if (!big) {
        rpc_client_free(c);
        return 2;
    }
    wi_push_sign(sig, sk, id, round, 3, big, len);
    rpc_upload_meta meta = {id, round, 3, sig, sizeof sig};
    Mutual__V1__UploadMaskedReply *ur = NULL;
    double t0 = mu_now();
    rpc_client_upload(c, &meta, big, len, 1u << 20, 60, &ur, &st);
    double took = mu_now() - t0;
    if (ur)
        protobuf_c_message_free_unpacked(&ur->base, NULL);
    free(big);
    EXPECT(st.code == GRPC_STATUS_PERMISSION_DENIED, "UploadMasked (%zu MiB, signed): %s (%s)", mib,
           rpc_status_name(st.code), st.message);
    printf("upload refused after %.3f s\n", took);

    Mutual__V1__DownloadAdapterRequest dr = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    dr.api_version = RPC_API_VERSION;
    dr.org_id = id;
    rpc_blob b = {0};
    rpc_client_download(c, &dr, 10, 1u << 24, &b, &st);
    EXPECT(st.code == GRPC_STATUS_PERMISSION_DENIED && !b.data, "DownloadAdapter: %s (%s)",
           rpc_status_name(st.code), st.message);
    free(b.data);
    sodium_memzero(sk, sizeof sk);
    rpc_client_free(c);
    printf("%s\n", failures ? "FAILED" : "every call refused");
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 10 && !strcmp(argv[1], "--as") && sodium_init() >= 0)
        return wrong_cert(argv + 2);
    if (argc != 3 || sodium_init() < 0) {
        fprintf(stderr, "usage: nd_bad_client HOST:PORT FED_DIR\n");
        return 2;
    }
    const char *addr = argv[1], *dir = argv[2];
    rpc_client *c1 = client_for(addr, dir, "org-1"), *c2 = client_for(addr, dir, "org-2");
    uint8_t pk1[32], sk1[64], pk2[32], sk2[64], pk3[32], sk3[64];
    crypto_sign_keypair(pk1, sk1);
    crypto_sign_keypair(pk2, sk2);
    crypto_sign_keypair(pk3, sk3);
    uint64_t id1 = 0, id2 = 0, id;
    char why[256];

    EXPECT(join(c1, "org-1", pk1, &id1) == GRPC_STATUS_OK && id1, "org-1 joins as %llu",
           (unsigned long long)id1);
    EXPECT(join(c2, "org-2", pk2, &id2) == GRPC_STATUS_OK && id2 && id2 != id1, "org-2 joins");
    EXPECT(join(c1, "org-1", pk1, &id) == GRPC_STATUS_OK && id == id1,
           "joining again with the same key gives the same id");
    EXPECT(join(c1, "org-1", pk3, &id) == GRPC_STATUS_PERMISSION_DENIED,
           "joining again with another key: PERMISSION_DENIED");
    EXPECT(join(c2, "org-1", pk2, &id) == GRPC_STATUS_PERMISSION_DENIED,
           "org-2's certificate joining as org-1: PERMISSION_DENIED");

    uint8_t rep[CO_REPORT_BYTES];
    co_report r = {CO_REPORT_READY, 1};
    co_report_encode(&r, rep);
    grpc_status_code s = push(c1, id1, 1, WI_STAGE_REPORT, rep, sizeof rep, sk1, why);
    EXPECT(s == GRPC_STATUS_FAILED_PRECONDITION,
           "a report while no round runs (out of order): %s (%s)", rpc_status_name(s), why);
    s = push(c1, id1, 1, WI_STAGE_REPORT, rep, sizeof rep, NULL, why);
    EXPECT(s == GRPC_STATUS_UNAUTHENTICATED, "an unsigned push: %s (%s)", rpc_status_name(s), why);
    s = push(c1, id1, 1, WI_STAGE_REPORT, rep, sizeof rep, sk3, why);
    EXPECT(s == GRPC_STATUS_UNAUTHENTICATED, "a push signed with another key: %s",
           rpc_status_name(s));
    s = push(c1, 999, 1, WI_STAGE_REPORT, rep, sizeof rep, sk1, why);
    EXPECT(s == GRPC_STATUS_NOT_FOUND, "a push for an unregistered org id: %s", rpc_status_name(s));
    s = push(c1, id2, 1, WI_STAGE_REPORT, rep, sizeof rep, sk2, why);
    EXPECT(s == GRPC_STATUS_PERMISSION_DENIED,
           "org-1's certificate pushing as org-2 (even with org-2's key): %s", rpc_status_name(s));
    uint8_t junk[64];
    randombytes_buf(junk, sizeof junk);
    s = push(c1, id1, 1, 2, junk, sizeof junk, sk1, why);
    EXPECT(s == GRPC_STATUS_INVALID_ARGUMENT, "a signed but malformed stage message: %s (%s)",
           rpc_status_name(s), why);
    rep[3] = 9; /* no such report type */
    s = push(c1, id1, 1, WI_STAGE_REPORT, rep, sizeof rep, sk1, why);
    EXPECT(s == GRPC_STATUS_INVALID_ARGUMENT, "a report of an unknown type: %s",
           rpc_status_name(s));
    rpc_status st = {0};
    rpc_client_raw_unary(c1, "/mutual.v1.Coordinator/PushStage", junk, sizeof junk, 10, &st);
    EXPECT(st.code == GRPC_STATUS_INVALID_ARGUMENT, "malformed protobuf: %s",
           rpc_status_name(st.code));

    Mutual__V1__PullTaskRequest pr = MUTUAL__V1__PULL_TASK_REQUEST__INIT;
    pr.api_version = RPC_API_VERSION;
    pr.org_id = 999;
    ProtobufCMessage *reply = NULL;
    rpc_client_unary(c1, RPC_PULL_TASK, &pr.base, 10, &reply, &st);
    EXPECT(st.code == GRPC_STATUS_NOT_FOUND, "a pull for an unregistered org: %s",
           rpc_status_name(st.code));

    uint8_t big[100000], sig[64];
    randombytes_buf(big, sizeof big);
    memset(sig, 0, sizeof sig);
    rpc_upload_meta meta = {id1, 1, 3, sig, sizeof sig};
    Mutual__V1__UploadMaskedReply *ur = NULL;
    rpc_client_upload(c1, &meta, big, sizeof big, 16384, 10, &ur, &st);
    if (ur)
        protobuf_c_message_free_unpacked(&ur->base, NULL);
    EXPECT(st.code == GRPC_STATUS_UNAUTHENTICATED, "an unsigned upload: %s",
           rpc_status_name(st.code));
    wi_push_sign(sig, sk1, id1, 1, 3, big, sizeof big);
    rpc_client_upload(c1, &meta, big, sizeof big, 16384, 10, &ur, &st);
    if (ur)
        protobuf_c_message_free_unpacked(&ur->base, NULL);
    EXPECT(st.code == GRPC_STATUS_INVALID_ARGUMENT, "a signed upload of junk: %s",
           rpc_status_name(st.code));

    Mutual__V1__DownloadAdapterRequest dr = MUTUAL__V1__DOWNLOAD_ADAPTER_REQUEST__INIT;
    dr.api_version = RPC_API_VERSION;
    dr.org_id = id1;
    rpc_blob b = {0};
    int rc = rpc_client_download(c1, &dr, 10, 1u << 24, &b, &st);
    EXPECT(rc == MU_OK && b.len > 0 && b.len % 4 == 0,
           "the global adapter downloads with a matching SHA-256 (%zu bytes)", b.len);
    free(b.data);
    dr.offset = 1u << 30;
    rc = rpc_client_download(c1, &dr, 10, 1u << 31, &b, &st);
    EXPECT(rc != MU_OK && st.code == GRPC_STATUS_OUT_OF_RANGE, "a download past the end: %s",
           rpc_status_name(st.code));

    rpc_client_free(c1);
    rpc_client_free(c2);
    printf("%s\n", failures ? "FAILED" : "all bad input refused");
    return failures ? 1 : 0;
}
