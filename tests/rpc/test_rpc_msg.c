/* test_rpc_msg.c - the validation rules of every mutual.v1 message, each shown to fail,
 * and the mappings between gRPC status codes and mu_err. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc.h"

static uint8_t k32[32], k64[64], k63[63];

/* Packs m, decodes it as its own type and returns the mu_err of the decode. */
static int roundtrip(const ProtobufCMessage *m, mu_diag *d)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(rpc_msg_pack(m, &buf, &len), MU_OK);
    ProtobufCMessage *back = rpc_msg_decode(m->descriptor, buf, len, d);
    free(buf);
    if (!back)
        return MU_ERR_FORMAT;
    protobuf_c_message_free_unpacked(back, NULL);
    return MU_OK;
}

static void test_join_request_rules(void **state)
{
    mu_diag d;
    Mutual__V1__JoinRequest m = MUTUAL__V1__JOIN_REQUEST__INIT;
    m.api_version = 1;
    m.org_name = "bank-a";
    m.signing_public_key = (ProtobufCBinaryData){32, k32};
    m.software_version = "0.1.0";
    assert_int_equal(roundtrip(&m.base, &d), MU_OK);
    m.api_version = 0;
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "api_version is not set"));
    m.api_version = 2;
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "not supported"));
    m.api_version = 1;
    const char *bad_names[] = {"",
                               "-x",
                               ".x",
                               "a/b",
                               "a b",
                               "bänk",
                               "0123456789012345678901234567890123456789012345678901234567890123X"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        m.org_name = (char *)bad_names[i];
        assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    }
    m.org_name = "bank-a";
    m.signing_public_key.len = 31;
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "signing_public_key"));
    m.signing_public_key.len = 32;
    m.software_version = "\xff\xfe";
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "UTF-8"));
    m.software_version = "\xc0\x80"; /* overlong NUL */
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    m.software_version = "\xed\xa0\x80"; /* a surrogate */
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
    m.software_version = "caf\xc3\xa9 \xf0\x9f\x98\x80"; /* fine UTF-8 */
    assert_int_equal(roundtrip(&m.base, &d), MU_OK);
    m.software_version = "caf\xc3"; /* cut in the middle of a character */
    assert_int_equal(roundtrip(&m.base, &d), MU_ERR_FORMAT);
}

static void test_task_and_push_rules(void **state)
{
    mu_diag d;
    Mutual__V1__Task t = MUTUAL__V1__TASK__INIT;
    t.api_version = 1;
    t.kind = MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT;
    assert_int_equal(roundtrip(&t.base, &d), MU_OK);
    t.kind = MUTUAL__V1__TASK_KIND__TASK_KIND_UNSPECIFIED;
    assert_int_equal(roundtrip(&t.base, &d), MU_ERR_FORMAT);
    t.kind = (Mutual__V1__TaskKind)77;
    assert_int_equal(roundtrip(&t.base, &d), MU_ERR_FORMAT);
    t.kind = MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE;
    t.round = 2;
    assert_int_equal(roundtrip(&t.base, &d), MU_ERR_FORMAT); /* stage 0 */
    t.stage = 1;
    assert_int_equal(roundtrip(&t.base, &d), MU_OK);
    t.kind = MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND;
    t.round = 0;
    assert_int_equal(roundtrip(&t.base, &d), MU_ERR_FORMAT);

    Mutual__V1__PushStageRequest p = MUTUAL__V1__PUSH_STAGE_REQUEST__INIT;
    p.api_version = 1;
    p.org_id = 3;
    p.round = 1;
    p.stage = 2;
    p.signature = (ProtobufCBinaryData){64, k64};
    assert_int_equal(roundtrip(&p.base, &d), MU_OK);
    p.signature = (ProtobufCBinaryData){63, k63};
    assert_int_equal(roundtrip(&p.base, &d), MU_ERR_FORMAT);
    p.signature = (ProtobufCBinaryData){0, NULL}; /* stage messages must be signed */
    assert_int_equal(roundtrip(&p.base, &d), MU_ERR_FORMAT);
    p.signature = (ProtobufCBinaryData){64, k64};
    p.org_id = 0;
    assert_int_equal(roundtrip(&p.base, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "org_id"));
}

static void test_chunk_rules(void **state)
{
    mu_diag d;
    uint8_t data[10] = {0};
    Mutual__V1__AdapterChunk a = MUTUAL__V1__ADAPTER_CHUNK__INIT;
    a.api_version = 1;
    a.total = 10;
    a.offset = 4;
    a.data = (ProtobufCBinaryData){6, data};
    a.sha256 = (ProtobufCBinaryData){32, k32};
    assert_int_equal(roundtrip(&a.base, &d), MU_OK);
    a.data.len = 7; /* past total */
    assert_int_equal(roundtrip(&a.base, &d), MU_ERR_FORMAT);
    a.offset = 11;
    a.data.len = 0;
    assert_int_equal(roundtrip(&a.base, &d), MU_ERR_FORMAT);
    a.offset = 3; /* empty before the end */
    assert_int_equal(roundtrip(&a.base, &d), MU_ERR_FORMAT);
    a.offset = 10; /* empty at the end: fine (a resumed download at its end) */
    assert_int_equal(roundtrip(&a.base, &d), MU_OK);
    a.sha256.len = 31;
    assert_int_equal(roundtrip(&a.base, &d), MU_ERR_FORMAT);

    Mutual__V1__UploadMaskedChunk u = MUTUAL__V1__UPLOAD_MASKED_CHUNK__INIT;
    u.api_version = 1;
    u.org_id = 1;
    u.round = 1;
    u.stage = 3;
    u.total = UINT64_MAX;
    u.offset = UINT64_MAX - 2;
    u.data = (ProtobufCBinaryData){3, data}; /* offset + len would wrap */
    u.sha256 = (ProtobufCBinaryData){32, k32};
    assert_int_equal(roundtrip(&u.base, &d), MU_ERR_FORMAT);
    u.data.len = 2;
    assert_int_equal(roundtrip(&u.base, &d), MU_OK);
    u.signature = (ProtobufCBinaryData){63, k63};
    assert_int_equal(roundtrip(&u.base, &d), MU_ERR_FORMAT);
}

static void test_status_reply_and_bytes(void **state)
{
    mu_diag d;
    Mutual__V1__RoundMetrics rm = MUTUAL__V1__ROUND_METRICS__INIT;
    Mutual__V1__StatusReply s = MUTUAL__V1__STATUS_REPLY__INIT;
    s.api_version = 1;
    s.last_round = &rm;
    s.stage = "masked-input";
    assert_int_equal(roundtrip(&s.base, &d), MU_OK);
    char long_stage[300];
    memset(long_stage, 'x', sizeof long_stage - 1);
    long_stage[sizeof long_stage - 1] = 0;
    s.stage = long_stage;
    assert_int_equal(roundtrip(&s.base, &d), MU_ERR_FORMAT);

    /* raw bytes: malformed, truncated, field number 0 in an over-long tag */
    const uint8_t bad1[] = {0xff};
    const uint8_t bad2[] = {0x08, 0x01, 0x2a, 0x05, 'a'};
    const uint8_t bad3[] = {0x08, 0x01, 0x80, 0x00, 0x04};
    const uint8_t ok[] = {0x08, 0x01, 0xf8, 0x01, 0x05}; /* unknown field 31: tolerated */
    assert_null(rpc_msg_decode(&mutual__v1__status_request__descriptor, bad1, 1, &d));
    assert_null(rpc_msg_decode(&mutual__v1__status_reply__descriptor, bad2, 5, &d));
    assert_null(rpc_msg_decode(&mutual__v1__status_request__descriptor, bad3, 5, &d));
    assert_non_null(strstr(d.msg, "field number 0"));
    ProtobufCMessage *m = rpc_msg_decode(&mutual__v1__status_request__descriptor, ok, 5, &d);
    assert_non_null(m);
    protobuf_c_message_free_unpacked(m, NULL);
    /* a nested message is not a top-level message of the service */
    assert_int_equal(rpc_msg_validate(&rm.base, &d), MU_ERR_UNSUPPORTED);
}

static void test_method_table_and_codes(void **state)
{
    for (int i = 0; i < RPC_METHOD_COUNT; i++) {
        const rpc_method_info *mi = rpc_method_get(i);
        assert_int_equal(rpc_method_find(mi->path, strlen(mi->path)), i);
        /* the table agrees with protoc-c's service descriptor */
        const ProtobufCMethodDescriptor *md = &mutual__v1__coordinator__descriptor.methods[i];
        assert_non_null(strstr(mi->path, md->name));
        assert_ptr_equal(mi->request, md->input);
        assert_ptr_equal(mi->reply, md->output);
    }
    assert_int_equal(mutual__v1__coordinator__descriptor.n_methods, RPC_METHOD_COUNT);
    assert_int_equal(rpc_method_get(RPC_DOWNLOAD_ADAPTER)->kind, RPC_SERVER_STREAMING);
    assert_int_equal(rpc_method_get(RPC_UPLOAD_MASKED)->kind, RPC_CLIENT_STREAMING);
    assert_int_equal(rpc_method_find("/mutual.v1.Coordinator/Joi", 26), -1);
    /* every mu_err a handler may return maps to a status that maps back to a close code */
    const int errs[] = {MU_ERR_IO,    MU_ERR_FORMAT,  MU_ERR_CRYPTO,      MU_ERR_STATE,
                        MU_ERR_ABORT, MU_ERR_TIMEOUT, MU_ERR_UNSUPPORTED, MU_ERR_NOTFOUND};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        assert_int_equal(rpc_err_from_status(rpc_status_from_err(errs[i])), errs[i]);
    assert_int_equal(rpc_status_from_err(MU_OK), GRPC_STATUS_OK);
    assert_int_equal(rpc_err_from_status(GRPC_STATUS_OK), MU_OK);
    assert_string_equal(rpc_status_name(GRPC_STATUS_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(rpc_status_name((grpc_status_code)99), "UNKNOWN_STATUS");
    uint8_t h[32];
    rpc_sha256((const uint8_t *)"abc", 3, h); /* FIPS 180-2 test vector */
    assert_int_equal(h[0], 0xba);
    assert_int_equal(h[31], 0xad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_request_rules),
        cmocka_unit_test(test_task_and_push_rules),
        cmocka_unit_test(test_chunk_rules),
        cmocka_unit_test(test_status_reply_and_bytes),
        cmocka_unit_test(test_method_table_and_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
