/* The wire helpers: stage names, the signed-push envelope (a fixed vector from the format's
 * first implementation, and every field bound), the adapter blob codec, the metrics line (one
 * schema, escaped strings, null loss), hex through libsodium and the org-name rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <string.h>

#include "wi_blob.h"
#include "wi_bytes.h"
#include "wi_json.h"
#include "wi_metrics.h"
#include "wi_org.h"
#include "wi_push.h"
#include "wi_stage.h"

static void test_stage(void **state)
{
    (void)state;
    const char *org[WI_ORG_STAGES] = {"train",       "advertise", "share", "masked",
                                      "consistency", "unmask",    "eval"};
    for (int i = 0; i < WI_ORG_STAGES; i++) {
        assert_string_equal(wi_stage_name(i), org[i]);
        assert_int_equal(wi_stage_from_name(org[i]), i);
    }
    assert_string_equal(wi_stage_name(WI_STAGE_IDLE), "idle");
    assert_string_equal(wi_stage_name(WI_STAGE_DONE), "done");
    assert_string_equal(wi_stage_name(WI_STAGE_REPORT), "report");
    assert_int_equal(wi_stage_from_name("report"), WI_STAGE_REPORT);
    assert_string_equal(wi_stage_name(-1), "?");
    assert_string_equal(wi_stage_name(9), "?");
    assert_int_equal(wi_stage_from_name("nope"), -1);
    assert_int_equal(wi_stage_from_name(NULL), -1);
    for (int s = -1; s <= WI_STAGE_REPORT; s++)
        assert_int_equal(wi_stage_is_secagg(s), s >= 1 && s <= 5);
    co_task t = {.kind = CO_TASK_SECAGG, .stage = WI_STAGE_MASKED};
    assert_int_equal(wi_task_stage(&t), WI_STAGE_MASKED);
    assert_int_equal(wi_push_stage(&t), WI_STAGE_MASKED);
    t.kind = CO_TASK_TRAIN;
    assert_int_equal(wi_task_stage(&t), WI_STAGE_TRAIN);
    assert_int_equal(wi_push_stage(&t), WI_STAGE_REPORT);
    t.kind = CO_TASK_EVAL;
    assert_int_equal(wi_task_stage(&t), WI_STAGE_EVAL);
    assert_int_equal(wi_push_stage(&t), WI_STAGE_REPORT);
    t.kind = CO_TASK_WAIT;
    assert_int_equal(wi_task_stage(&t), WI_STAGE_IDLE);
    t.kind = CO_TASK_DONE;
    assert_int_equal(wi_task_stage(&t), WI_STAGE_DONE);
}

/* Made by the first implementation (node/src/nd_model.c nd_sign_push): key from the seed
 * 0, 1, .., 31; org 0x0102030405060708, round 42, stage 100, the message below. */
static const char push_vector[] =
    "056482c22e8a071190f3d2ed81475b61ca030b03eea3cae2e0c7e027d4d2da4f"
    "459d42bac3b463349385e03dc81b595e29d22e6df897bcecc5c88fa23e56f604";

static void test_push(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], sig[64], want[64];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    crypto_sign_seed_keypair(pk, sk, seed);
    const uint8_t *msg = (const uint8_t *)"mutual push test vector";
    size_t len = strlen((const char *)msg);
    wi_push_sign(sig, sk, 0x0102030405060708ull, 42, WI_STAGE_REPORT, msg, len);
    assert_int_equal(wi_hex_decode(want, sizeof want, push_vector), MU_OK);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(wi_push_verify(sig, pk, 0x0102030405060708ull, 42, 100, msg, len), MU_OK);
    /* every field is bound */
    assert_int_equal(wi_push_verify(sig, pk, 0x0102030405060709ull, 42, 100, msg, len),
                     MU_ERR_CRYPTO);
    assert_int_equal(wi_push_verify(sig, pk, 0x0102030405060708ull, 43, 100, msg, len),
                     MU_ERR_CRYPTO);
    assert_int_equal(wi_push_verify(sig, pk, 0x0102030405060708ull, 42, 3, msg, len),
                     MU_ERR_CRYPTO);
    assert_int_equal(wi_push_verify(sig, pk, 0x0102030405060708ull, 42, 100, msg, len - 1),
                     MU_ERR_CRYPTO);
    uint8_t other_pk[32], other_sk[64];
    crypto_sign_keypair(other_pk, other_sk);
    assert_int_equal(wi_push_verify(sig, other_pk, 0x0102030405060708ull, 42, 100, msg, len),
                     MU_ERR_CRYPTO);
    sig[10] ^= 1;
    assert_int_equal(wi_push_verify(sig, pk, 0x0102030405060708ull, 42, 100, msg, len),
                     MU_ERR_CRYPTO);
}

static void test_blob(void **state)
{
    (void)state;
    float v[3] = {1.0f, -2.5f, 0x1p-149f}, w[3];
    unsigned char b[12];
    assert_int_equal(wi_blob_len(3), 12);
    assert_int_equal(wi_blob_encode(b, sizeof b, v, 3), MU_OK);
    /* little-endian IEEE float32 whatever the host: 1.0 = 0x3f800000 */
    static const unsigned char one[4] = {0x00, 0x00, 0x80, 0x3f};
    static const unsigned char m25[4] = {0x00, 0x00, 0x20, 0xc0};
    static const unsigned char tiny[4] = {0x01, 0x00, 0x00, 0x00};
    assert_memory_equal(b, one, 4);
    assert_memory_equal(b + 4, m25, 4);
    assert_memory_equal(b + 8, tiny, 4);
    assert_int_equal(wi_blob_encode(b, 11, v, 3), MU_ERR_INVALID);
    mu_diag d = {{0}};
    assert_int_equal(wi_blob_decode(w, 3, b, sizeof b, &d), MU_OK);
    assert_memory_equal(v, w, sizeof v);
    assert_int_equal(wi_blob_decode(w, 3, b, 11, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "11 bytes, expected 12"));
    assert_int_equal(wi_blob_decode(w, 2, b, sizeof b, &d), MU_ERR_FORMAT);
    static const unsigned char nan_bits[4] = {0x00, 0x00, 0xc0, 0x7f};
    static const unsigned char inf_bits[4] = {0x00, 0x00, 0x80, 0xff};
    memcpy(b + 4, nan_bits, 4);
    assert_int_equal(wi_blob_decode(w, 3, b, sizeof b, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "value 1"));
    memcpy(b + 4, m25, 4);
    memcpy(b + 8, inf_bits, 4);
    assert_int_equal(wi_blob_decode(w, 3, b, sizeof b, &d), MU_ERR_FORMAT);
    assert_int_equal(wi_blob_decode(w, 0, b, 0, &d), MU_OK);
}

static void test_json_string(void **state)
{
    (void)state;
    wi_str b;
    wi_str_init(&b);
    wi_str_json_string(&b, "a\"b\\c\n\x01\x7f");
    assert_string_equal(b.s, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\"");
    wi_str_clear(&b);
    /* valid UTF-8 passes; a lone continuation byte, a truncated sequence, an overlong form
     * and a surrogate become U+FFFD */
    wi_str_json_string(&b, "\xc3\xa9|\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80");
    assert_string_equal(b.s, "\"\xc3\xa9|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd|"
                             "\\ufffd\\ufffd\\ufffd\"");
    wi_str_clear(&b);
    wi_str_json_string(&b, NULL);
    wi_str_json_number(&b, NAN);
    wi_str_json_number(&b, -INFINITY);
    wi_str_json_number(&b, 0.125);
    assert_string_equal(b.s, "nullnullnull0.125");
    /* growth: many appends, one buffer */
    wi_str_clear(&b);
    for (int i = 0; i < 10000; i++)
        wi_str_printf(&b, "%d,", i % 10);
    assert_int_equal(wi_str_ok(&b), MU_OK);
    assert_int_equal(b.len, 20000);
    assert_int_equal(b.s[19998], '9');
    wi_str_deinit(&b);
    wi_str_deinit(NULL);
}

static void test_metrics(void **state)
{
    (void)state;
    co_metrics m = {.round = 3,
                    .kind = CO_ROUND_TRAIN,
                    .outcome = CO_ROUND_ABORTED,
                    .loss = NAN,
                    .tokens = 0,
                    .orgs_selected = 3,
                    .orgs_completed = 0,
                    .orgs_dropped = 3,
                    .bytes_in = 10,
                    .bytes_out = 20,
                    .t_start = 1.5,
                    .t_end = 4};
    wi_str b;
    wi_str_init(&b);
    const co_drop dropped[] = {{1, WI_STAGE_TRAIN, "org-1"}, {2, WI_STAGE_SHARE, "bank\"a"}};
    assert_int_equal(wi_metrics_open(&b, &m, "too few: \"x\"\n", dropped, 2), MU_OK);
    wi_str_printf(&b, ",\"extra\":1");
    assert_int_equal(wi_metrics_close(&b), MU_OK);
    assert_string_equal(b.s,
                        "{\"round\":3,\"kind\":\"train\",\"outcome\":\"aborted\",\"loss\":null,"
                        "\"tokens\":0,\"orgs_selected\":3,\"orgs_completed\":0,"
                        "\"orgs_dropped\":3,\"bytes_in\":10,\"bytes_out\":20,\"t_start\":1.5,"
                        "\"t_end\":4,\"duration_s\":2.5,"
                        "\"reason\":\"too few: \\\"x\\\"\\u000a\","
                        "\"dropped\":[{\"org\":\"org-1\",\"stage\":\"train\"},"
                        "{\"org\":\"bank\\\"a\",\"stage\":\"share\"}],\"extra\":1}\n");
    wi_str_clear(&b);
    m.kind = CO_ROUND_EVAL;
    m.outcome = CO_ROUND_COMPLETED;
    m.loss = 2.25;
    m.tokens = 96;
    wi_metrics_open(&b, &m, NULL, NULL, 0);
    wi_metrics_close(&b);
    assert_non_null(strstr(b.s, "\"kind\":\"eval\",\"outcome\":\"completed\",\"loss\":2.25,"
                                "\"tokens\":96,"));
    assert_non_null(strstr(b.s, "\"reason\":\"\",\"dropped\":null}\n"));
    wi_str_deinit(&b);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t b[3] = {0x00, 0xab, 0xff}, o[3];
    char h[7];
    assert_int_equal(wi_hex_encode(h, sizeof h, b, 3), MU_OK);
    assert_string_equal(h, "00abff");
    assert_int_equal(wi_hex_encode(h, 6, b, 3), MU_ERR_INVALID);
    assert_int_equal(wi_hex_decode(o, 3, "00ABff"), MU_OK);
    assert_memory_equal(o, b, 3);
    const char *bad[] = {"00abf", "00abfff", "00abfg", "00 abf", "0xabff", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(o, 0x55, 3);
        assert_int_equal(wi_hex_decode(o, 3, bad[i]), MU_ERR_FORMAT);
        assert_true(o[0] == 0 && o[1] == 0 && o[2] == 0);
    }
    uint8_t le[8];
    mu_put_le64(le, 0x0102030405060708ull);
    assert_int_equal(le[0], 8);
    assert_int_equal(le[7], 1);
    assert_true(mu_le64(le) == 0x0102030405060708ull);
    assert_int_equal(mu_le32(le + 4), 0x01020304);
}

static void test_org_name(void **state)
{
    (void)state;
    const char *good[] = {"org-1", "bank_a.eu", "A", "0rg"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(wi_org_name_valid(good[i]));
    char max[CO_ORG_NAME_MAX + 1];
    memset(max, 'a', sizeof max);
    max[CO_ORG_NAME_MAX - 1] = 0; /* 63 bytes */
    assert_true(wi_org_name_valid(max));
    max[CO_ORG_NAME_MAX - 1] = 'a';
    max[CO_ORG_NAME_MAX] = 0; /* 64 bytes */
    assert_false(wi_org_name_valid(max));
    const char *bad[] = {"", "a\"b", "a b", "-a", ".a", "a/b", "a\\b", "é", "a\n", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(wi_org_name_valid(bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage),    cmocka_unit_test(test_push),
        cmocka_unit_test(test_blob),     cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_metrics),  cmocka_unit_test(test_hex),
        cmocka_unit_test(test_org_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
