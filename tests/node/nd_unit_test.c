/* Unit tests of the network driver's own pieces: the example org config, org-config errors
 * with FILE:LINE:COL, the identity key file (created 0600, read back the same, refused when
 * malformed) and the federation_config JSON (round trip, refusals). Push signatures are tested
 * in tests/wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nd.h"
#include "nd_orgcfg.h"
#include "nd_task.h"

#define ND_HEX64_A "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
#define ND_HEX64_B "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"

/* The smallest valid org config: later sections are appended to it. */
#define ND_OK_BASE                                                                                 \
    "org: {name: x, identity_key: k}\ncoordinator: {address: a:1}\n"                               \
    "model: {base: m}\ndata: {train: t.h5}\ntls: {insecure: true}\n"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* configs/org.yaml, copied as it is next to a roster (its cohort.members names a file). */
static void test_example_org_config(void **state)
{
    (void)state;
    FILE *in = fopen(ND_EXAMPLE_ORG_CONFIG, "r");
    assert_non_null(in);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, in);
    fclose(in);
    text[n] = 0;
    mkdir("nd_example", 0755);
    write_file("nd_example/org.yaml", text);
    write_file("nd_example/members.yaml",
               "- {name: cu-north, pk: " ND_HEX64_A "}\n- {name: cu-south, pk: " ND_HEX64_B "}\n");
    nd_orgcfg c;
    mu_diag d = {{0}};
    int rc = nd_orgcfg_load("nd_example/org.yaml", &c, &d);
    if (rc)
        fail_msg("%s", d.msg);
    assert_string_equal(c.name, "cu-north");
    assert_string_equal(c.address, "coordinator.example.org:7443");
    /* paths are relative to the config file's folder */
    assert_string_equal(c.cert, "nd_example/certs/cu-north.crt");
    assert_string_equal(c.eval, "nd_example/data/cu-north-heldout.h5");
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.checkpointing, 0);
    assert_int_equal(c.bf16, 0);
    assert_int_equal(c.insecure, 0);
    assert_true(c.backoff_initial_s == 0.5 && c.backoff_max_s == 30 && c.give_up_s == 0);
    /* the roster file, relative to the config too */
    assert_int_equal(c.n_members, 2);
    assert_string_equal(c.members[1].name, "cu-south");
    assert_int_equal(c.min_cohort, 5);
    /* without the roster the example is refused at its members: line */
    unlink("nd_example/members.yaml");
    assert_int_not_equal(nd_orgcfg_load("nd_example/org.yaml", &c, &d), MU_OK);
    if (!strstr(d.msg, "org.yaml:") || !strstr(d.msg, "cohort.members: ") ||
        !strstr(d.msg, "members.yaml"))
        fail_msg("got '%s'", d.msg);
}

static void expect_error(const char *text, const char *want)
{
    write_file("nd_bad.yaml", text);
    nd_orgcfg c;
    mu_diag d = {{0}};
    assert_int_not_equal(nd_orgcfg_load("nd_bad.yaml", &c, &d), MU_OK);
    if (!strstr(d.msg, want))
        fail_msg("got '%s', want '%s'", d.msg, want);
}

static void test_org_config_errors(void **state)
{
    (void)state;
    const char *ok_rest = "coordinator: {address: a:1}\nmodel: {base: m}\ndata: {train: t.h5}\n";
    char buf[512];
    snprintf(buf, sizeof buf, "org: {name: x, identity_key: k}\n%sbogus: 1\n", ok_rest);
    expect_error(buf, "nd_bad.yaml:5:1: unknown key 'bogus'");
    snprintf(buf, sizeof buf, "org: {name: x}\n%s", ok_rest);
    expect_error(buf, "identity_key");
    snprintf(buf, sizeof buf, "org: {name: x, identity_key: k}\n%sthreads: -1\n", ok_rest);
    expect_error(buf, "nd_bad.yaml:5:10");
    snprintf(buf, sizeof buf, "org: {name: x, identity_key: k}\n%s", ok_rest);
    expect_error(buf, "tls.ca, tls.cert and tls.key are required");
    snprintf(buf, sizeof buf, "org: {name: \"a/b\", identity_key: k}\n%s", ok_rest);
    expect_error(buf, "nd_bad.yaml:1:13: org.name 'a/b' is not a valid org name");
    snprintf(buf, sizeof buf, "org: {name: x, identity_key: k}\n%stls: {insecure: true}\n",
             ok_rest);
    write_file("nd_ok.yaml", buf);
    nd_orgcfg c;
    mu_diag d = {{0}};
    assert_int_equal(nd_orgcfg_load("nd_ok.yaml", &c, &d), MU_OK);
    assert_int_equal(c.insecure, 1);
    assert_int_equal(c.checkpointing, 0);
}

/* training.checkpointing and training.bf16: the org's own memory choices, booleans (off
 * unless said), nothing else in training. */
static void test_org_config_training(void **state)
{
    (void)state;
    static const struct {
        const char *section;
        int checkpointing, bf16;
    } ok[] = {
        {"training:\n  checkpointing: true\n", 1, 0},
        {"training: {checkpointing: false}\n", 0, 0},
        {"training:\n  bf16: true\n", 0, 1},
        {"training: {bf16: false, checkpointing: true}\n", 1, 0},
    };
    const char *base = ND_OK_BASE;
    char buf[512];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", base, ok[i].section);
        write_file("nd_ok.yaml", buf);
        nd_orgcfg c;
        mu_diag d = {{0}};
        if (nd_orgcfg_load("nd_ok.yaml", &c, &d) != MU_OK)
            fail_msg("%s: %s", ok[i].section, d.msg);
        assert_int_equal(c.checkpointing, ok[i].checkpointing);
        assert_int_equal(c.bf16, ok[i].bf16);
    }
    snprintf(buf, sizeof buf, "%straining:\n  checkpointing: sometimes\n", base);
    expect_error(buf, "nd_bad.yaml:7:18");
    snprintf(buf, sizeof buf, "%straining:\n  checkpointing: true\n  bf16: 16\n", base);
    expect_error(buf, "nd_bad.yaml:8:9");
    snprintf(buf, sizeof buf, "%straining: {lr: 0.1}\n", base);
    expect_error(buf, "nd_bad.yaml:6:12: unknown key 'lr'");
}

/* cohort: the pinned members and the minimum cohort size, which only testing can lower. */
static void test_org_config_cohort(void **state)
{
    (void)state;
    const char *base = ND_OK_BASE;
    char pk1[65], pk2[65], buf[1024];
    memset(pk1, 'a', 64);
    memset(pk2, 'b', 64);
    pk1[64] = pk2[64] = 0;
    snprintf(buf, sizeof buf,
             "%scohort:\n  min_size: 7\n  members:\n    - {name: a, pk: %s}\n"
             "    - {name: b, pk: %s}\n",
             base, pk1, pk2);
    write_file("nd_ok.yaml", buf);
    nd_orgcfg c;
    mu_diag d = {{0}};
    if (nd_orgcfg_load("nd_ok.yaml", &c, &d) != MU_OK)
        fail_msg("%s", d.msg);
    assert_int_equal(c.n_members, 2);
    assert_int_equal(c.min_cohort, 7);
    assert_int_equal(c.small_cohort, 0);
    assert_string_equal(c.members[1].name, "b");
    assert_int_equal(c.members[1].pk[31], 0xbb);
    write_file("nd_ok.yaml", base); /* no cohort section: the default minimum, nobody pinned */
    assert_int_equal(nd_orgcfg_load("nd_ok.yaml", &c, &d), MU_OK);
    assert_int_equal(c.min_cohort, CL_MIN_COHORT);
    assert_int_equal(c.n_members, 0);
    snprintf(buf, sizeof buf, "%scohort: {min_size: 4}\n", base);
    expect_error(buf, "nd_bad.yaml:6:");
    snprintf(buf, sizeof buf, "%scohort: {members: [{name: a, pk: %s}, {name: b, pk: %s}]}\n", base,
             pk1, pk1);
    expect_error(buf, "cohort members a and b have the same pk");
    snprintf(buf, sizeof buf, "%scohort: {members: [{name: a, pk: abc}]}\n", base);
    expect_error(buf, "pk must be 64 hex digits");
    snprintf(buf, sizeof buf, "%scohort: {members: {name: a}}\n", base);
    expect_error(buf, "cohort.members must be a list");
    snprintf(buf, sizeof buf, "%stesting: {min_cohort: 2}\n", base);
    write_file("nd_ok.yaml", buf);
    assert_int_equal(nd_orgcfg_load("nd_ok.yaml", &c, &d), MU_OK);
    assert_int_equal(c.min_cohort, 2);
    assert_int_equal(c.small_cohort, 1);
}

/* privacy: the org's noise pin (issue 13): good values read, no section is no pin, and each bad
 * value refused naming its file, line and column. */
static void test_org_config_privacy(void **state)
{
    (void)state;
    const char *base = ND_OK_BASE;
    char buf[1024];
    nd_orgcfg c;
    mu_diag d = {{0}};
    snprintf(buf, sizeof buf, "%sprivacy:\n  min_ddg_noise: 1.5\n  require_ddg: true\n", base);
    write_file("nd_ok.yaml", buf);
    if (nd_orgcfg_load("nd_ok.yaml", &c, &d) != MU_OK)
        fail_msg("%s", d.msg);
    assert_true(c.min_ddg_noise == 1.5 && c.require_ddg == 1);
    snprintf(buf, sizeof buf, "%sprivacy: {min_ddg_noise: 0, require_ddg: false}\n", base);
    write_file("nd_ok.yaml", buf);
    assert_int_equal(nd_orgcfg_load("nd_ok.yaml", &c, &d), MU_OK);
    assert_true(c.min_ddg_noise == 0 && c.require_ddg == 0);
    write_file("nd_ok.yaml", base); /* no section: no pin */
    assert_int_equal(nd_orgcfg_load("nd_ok.yaml", &c, &d), MU_OK);
    assert_true(c.min_ddg_noise == 0 && c.require_ddg == 0);
    static const struct {
        const char *block, *want;
    } bad[] = {
        {"privacy:\n  min_ddg_noise: -1\n",
         "nd_bad.yaml:7:18: min_ddg_noise must be between 0 and 1e+06, got -1"},
        {"privacy:\n  min_ddg_noise: 2e6\n", "nd_bad.yaml:7:18: min_ddg_noise must be between"},
        {"privacy:\n  min_ddg_noise: lots\n", "nd_bad.yaml:7:18: min_ddg_noise"},
        {"privacy:\n  min_ddg_noise: .nan\n", "nd_bad.yaml:7:18: min_ddg_noise"},
        {"privacy:\n  require_ddg: maybe\n", "nd_bad.yaml:7:16: require_ddg must be true or false"},
        {"privacy:\n  require_ddg: 1\n  min_ddg_noise: 1\n", "nd_bad.yaml:7:16: require_ddg"},
        {"privacy:\n  min_noise: 1\n", "nd_bad.yaml:7:3: unknown key 'min_noise'"},
        {"privacy: 2\n", "nd_bad.yaml:6:10: privacy must be a mapping"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", base, bad[i].block);
        expect_error(buf, bad[i].want);
    }
}

static void test_identity_key(void **state)
{
    (void)state;
    const char *path = "nd_identity.key";
    unlink(path);
    uint8_t pk1[32], sk1[64], pk2[32], sk2[64];
    mu_diag d = {{0}};
    assert_int_equal(nd_identity_load(path, pk1, sk1, &d), MU_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(nd_identity_load(path, pk2, sk2, &d), MU_OK);
    assert_memory_equal(pk1, pk2, 32);
    assert_memory_equal(sk1, sk2, 64);
    write_file(path, "not a key\n");
    assert_int_equal(nd_identity_load(path, pk2, sk2, &d), MU_ERR_FORMAT);
    unlink(path);
    /* a missing keys/ folder is made (0700), as the example config expects; not two levels */
    unlink("nd_keys/org.key");
    rmdir("nd_keys");
    assert_int_equal(nd_identity_load("nd_keys/org.key", pk1, sk1, &d), MU_OK);
    assert_int_equal(stat("nd_keys", &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(nd_identity_load("nd_none/deeper/org.key", pk1, sk1, &d), MU_ERR_IO);
    unlink("nd_keys/org.key");
    rmdir("nd_keys");
}

static void test_fedcfg(void **state)
{
    (void)state;
    nd_fedcfg f = {0}, g;
    snprintf(f.model_type, sizeof f.model_type, "gpt2");
    for (int i = 0; i < 32; i++)
        f.config_sha256[i] = (uint8_t)(i * 7);
    f.lora = (tr_lora_config){.rank = 4, .alpha = 8, .targets = TR_T_C_ATTN, .freeze_a = 1};
    f.seed = UINT64_MAX - 1; /* survives the trip through JSON exactly */
    f.dim = 768;
    memcpy(f.instance, "\x01\x02\xfe\xff\x00\x10\x20\x30", 8);
    char *json;
    size_t len;
    assert_int_equal(nd_fedcfg_encode(&f, &json, &len), MU_OK);
    mu_diag d = {{0}};
    assert_int_equal(nd_fedcfg_decode((const uint8_t *)json, len, &g, &d), MU_OK);
    assert_memory_equal(&f, &g, sizeof f);
    free(json);
    /* what the fuzz corpus holds as its valid seed */
    const char *lit = "{\"alpha\":8.0,\"config_sha256\":\"2b7f6a0cd2d0c1a0e5b8c3b1e0a1d2c3b4a59687"
                      "78695a4b3c2d1e0f1a2b3c4d\",\"dim\":768,\"dropout\":0.0,\"format\":1,"
                      "\"freeze_a\":true,\"instance\":\"0102fefd00102030\",\"model_type\":"
                      "\"gpt2\",\"rank\":4,\"rslora\":false,\"seed\":\"7\",\"targets\":1}";
    assert_int_equal(nd_fedcfg_decode((const uint8_t *)lit, strlen(lit), &g, &d), MU_OK);
    assert_int_equal(g.lora.rank, 4);
    assert_int_equal(g.dim, 768);
    assert_int_equal(g.seed, 7);
    assert_int_equal(g.instance[2], 0xfe);
    const char *bad[] = {"", "[]", "{\"format\":1}", "{\"format\":2,\"model_type\":\"gpt2\"}",
                         "{\"format\": 1, \"x\": }",
                         /* alpha out of range */
                         "{\"alpha\":1e300,\"config_sha256\":\"2b7f6a0cd2d0c1a0e5b8c3b1e0a1d2c3b4a"
                         "5968778695a4b3c2d1e0f1a2b3c4d\",\"dim\":768,\"dropout\":0.0,"
                         "\"format\":1,\"freeze_a\":true,\"instance\":\"0102fefd00102030\","
                         "\"model_type\":\"gpt2\",\"rank\":4,\"rslora\":false,\"seed\":\"7\","
                         "\"targets\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(nd_fedcfg_decode((const uint8_t *)bad[i], strlen(bad[i]), &g, &d),
                         MU_ERR_FORMAT);
}

/* Task.kind/round/stage mirror the payload's co_task: what serve sets passes join's check, and
 * each field that disagrees is refused naming it. */
static void test_task_mirror(void **state)
{
    (void)state;
    co_task kinds[] = {{.kind = CO_TASK_WAIT},
                       {.kind = CO_TASK_TRAIN, .cfg = {.round = 4}},
                       {.kind = CO_TASK_EVAL, .cfg = {.round = 5}},
                       {.kind = CO_TASK_SECAGG, .stage = 3, .cfg = {.round = 4}},
                       {.kind = CO_TASK_DONE, .cfg = {.round = 9}}};
    mu_diag d = {{0}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        Mutual__V1__Task m = MUTUAL__V1__TASK__INIT;
        nd_task_mirror_set(&m, &kinds[i]);
        assert_int_equal(nd_task_mirror_check(&m, &kinds[i], &d), MU_OK);
        Mutual__V1__Task bad = m;
        bad.kind = bad.kind == MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT
                       ? MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND
                       : MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT;
        assert_int_equal(nd_task_mirror_check(&bad, &kinds[i], &d), MU_ERR_PROTOCOL);
        assert_non_null(strstr(d.msg, "Task.kind"));
        bad = m;
        bad.round++;
        assert_int_equal(nd_task_mirror_check(&bad, &kinds[i], &d), MU_ERR_PROTOCOL);
        assert_non_null(strstr(d.msg, "Task.round"));
        bad = m;
        bad.stage++;
        assert_int_equal(nd_task_mirror_check(&bad, &kinds[i], &d), MU_ERR_PROTOCOL);
        assert_non_null(strstr(d.msg, "Task.stage"));
    }
    /* what serve sends for each kind */
    Mutual__V1__Task m = MUTUAL__V1__TASK__INIT;
    nd_task_mirror_set(&m, &kinds[3]);
    assert_int_equal(m.kind, MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE);
    assert_true(m.round == 4 && m.stage == 3);
    nd_task_mirror_set(&m, &kinds[4]);
    assert_int_equal(m.kind, MUTUAL__V1__TASK_KIND__TASK_KIND_SHUTDOWN);
    assert_true(m.round == 0 && m.stage == 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_org_config), cmocka_unit_test(test_org_config_errors),
        cmocka_unit_test(test_org_config_cohort),  cmocka_unit_test(test_org_config_privacy),
        cmocka_unit_test(test_identity_key),       cmocka_unit_test(test_fedcfg),
        cmocka_unit_test(test_task_mirror),        cmocka_unit_test(test_org_config_training),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
