/* The coordinator config: the example file, defaults, and bad values with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>
#include <unistd.h>

#include "co_config_yaml.h"
#include "mu_file.h"

static void test_example_file(void **state)
{
    (void)state;
    co_config c;
    mu_diag d = {{0}};
    int rc = co_config_load(CO_EXAMPLE_CONFIG, &c, &d);
    if (rc != MU_OK)
        fail_msg("%s", d.msg);
    assert_string_equal(c.name, "credit-union-pilot");
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.eval_every, 2);
    assert_int_equal(c.min_orgs, 5); /* orgs refuse cohorts below 5 (cl CL_MIN_COHORT) */
    assert_int_equal(c.strategy.kind, CO_STRATEGY_FEDADAM);
    assert_true(c.strategy.eta == 0.01);
    assert_true(c.fedprox_mu == 0.01);
    assert_int_equal(c.weight, CO_WEIGHT_EXAMPLES);
    assert_int_equal(c.n_orgs, 5);
    assert_string_equal(c.orgs[4].name, "health-coop");
    /* no pinned key: the example's cu-north is configs/org.yaml, whose key nobody has yet */
    for (size_t i = 0; i < c.n_orgs; i++)
        assert_int_equal(c.orgs[i].has_pk, 0);
    /* relative paths are resolved against the config file's folder */
    char want[CO_PATH_MAX];
    snprintf(want, sizeof want, "%.*s/certs/ca.crt",
             (int)(strrchr(CO_EXAMPLE_CONFIG, '/') - CO_EXAMPLE_CONFIG), CO_EXAMPLE_CONFIG);
    assert_string_equal(c.tls_ca, want);
    co_config_deinit(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    co_config c;
    mu_diag d = {{0}};
    assert_int_equal(co_config_parse("empty.yaml", "", 0, &c, &d), MU_OK);
    assert_int_equal(c.min_orgs, 2);
    assert_int_equal(c.bits, 32);
    assert_int_equal(c.strategy.kind, CO_STRATEGY_FEDAVG);
    assert_true(c.strategy.eta == 1.0);
    assert_null(c.orgs);
    co_config_deinit(&c);
    const char *t = "strategy:\n  name: fedyogi\n";
    assert_int_equal(co_config_parse("y.yaml", t, strlen(t), &c, &d), MU_OK);
    assert_true(c.strategy.eta == 0.01 && c.strategy.tau == 1e-3);
    co_config_deinit(&c);
}

static void test_pinned_key(void **state)
{
    (void)state;
    co_config c;
    mu_diag d = {{0}};
    const char *t =
        "orgs:\n  - name: a\n    public_key: "
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\n  - name: b\n";
    assert_int_equal(co_config_parse("p.yaml", t, strlen(t), &c, &d), MU_OK);
    assert_int_equal(c.n_orgs, 2);
    assert_int_equal(c.orgs[0].has_pk, 1);
    assert_int_equal(c.orgs[0].pk[0], 0x3d);
    assert_int_equal(c.orgs[0].pk[31], 0x0c);
    assert_int_equal(c.orgs[1].has_pk, 0);
    co_config_deinit(&c);
}

static void expect_error(const char *text, const char *want)
{
    co_config c;
    mu_diag d = {{0}};
    assert_int_not_equal(co_config_parse("bad.yaml", text, strlen(text), &c, &d), MU_OK);
    if (!strstr(d.msg, want))
        fail_msg("error '%s' does not contain '%s'", d.msg, want);
    assert_null(c.orgs);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("cohort:\n  min_orgs: 1\n", "bad.yaml:2:");
    expect_error("cohort:\n  mni_orgs: 3\n", "unknown key 'mni_orgs'");
    /* cross-field errors point at the key at fault too */
    expect_error("cohort:\n  min_orgs: 5\n  max_orgs: 3\n",
                 "bad.yaml:3:13: cohort.max_orgs (3) is below cohort.min_orgs (5)");
    expect_error("cohort:\n  min_orgs: 200\n", "bad.yaml:2:3: cohort.max_orgs (100) is below");
    expect_error("train:\n  batch: 65536\n  seq: 65536\n", "bad.yaml:3:8: train.batch x train.seq");
    expect_error("strategy:\n  name: fedsgd\n", "bad.yaml:2:9: unknown strategy 'fedsgd'");
    expect_error("strategy:\n  beta2: 1.5\n", "bad.yaml:2:");
    expect_error("train:\n  weight: tokens\n", "train.weight");
    expect_error("secure_agg:\n  bits: 64\n", "bad.yaml:2:");
    expect_error("orgs:\n  - name: a\n    public_key: abcd\n", "bad.yaml:3:");
    expect_error("orgs:\n  - name: a\n  - name: a\n", "bad.yaml:2:3: orgs: 'a' is listed twice");
    /* allowlist names follow the one org-name rule (a certificate CN could never match) */
    expect_error("orgs:\n  - name: \"cu north\"\n", "bad.yaml:2:11: org name 'cu north' is not");
    expect_error("orgs:\n  - name: -x\n", "bad.yaml:2:11: org name '-x' is not");
    expect_error("orgs:\n  - public_key: ab\n", "name");
    expect_error("deadlines:\n  masked_s: 0\n", "bad.yaml:2:");
    expect_error("- 1\n- 2\n", "mapping");
}

static void test_listen_port(void **state)
{
    (void)state;
    expect_error("server:\n  listen: 127.0.0.1:99999\n",
                 "bad.yaml:2:11: server.listen '127.0.0.1:99999' has a port above 65535");
    expect_error("server:\n  listen: 127.0.0.1\n",
                 "bad.yaml:2:11: server.listen '127.0.0.1' has no port");
    expect_error("server:\n  listen: 127.0.0.1:0\n",
                 "bad.yaml:2:11: server.listen '127.0.0.1:0' has port 0");
    expect_error("server:\n  listen: \"host:x\"\n",
                 "bad.yaml:2:11: server.listen 'host:x' has a port that is not a number");
    co_config c;
    mu_diag d = {{0}};
    const char *t = "server:\n  listen: 127.0.0.1:65535\n";
    assert_int_equal(co_config_parse("ok.yaml", t, strlen(t), &c, &d), MU_OK);
    co_config_deinit(&c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 200,000 allowed orgs are checked in well under a second (the old pairwise check took a
 * minute), and a duplicate among them is still found. */
static void test_large_allowlist(void **state)
{
    (void)state;
    enum { N = 200000 };
    co_config c;
    co_config_default(&c);
    c.orgs = calloc(N, sizeof *c.orgs);
    assert_non_null(c.orgs);
    c.n_orgs = N;
    for (size_t i = 0; i < N; i++)
        snprintf(c.orgs[i].name, sizeof c.orgs[i].name, "org-%zu", (i * 7919) % N);
    mu_diag d = {{0}};
    double t0 = now_s();
    int rc = co_config_check(&c, &d);
    double dt = now_s() - t0;
    if (rc != MU_OK)
        fail_msg("%s", d.msg);
    if (dt > 5.0)
        fail_msg("checking %d orgs took %.1f s", N, dt);
    snprintf(c.orgs[N - 1].name, sizeof c.orgs[N - 1].name, "%s", c.orgs[12345].name);
    assert_int_equal(co_config_check(&c, &d), MU_ERR_INVALID);
    char want[128];
    snprintf(want, sizeof want, "orgs: '%s' is listed twice", c.orgs[12345].name);
    assert_string_equal(d.msg, want);
    co_config_deinit(&c);
}

static size_t type_size(co_key_type t)
{
    switch (t) {
    case CO_KEY_U32:
        return sizeof(uint32_t);
    case CO_KEY_U64:
        return sizeof(uint64_t);
    case CO_KEY_DOUBLE:
        return sizeof(double);
    case CO_KEY_BOOL:
    case CO_KEY_ENUM:
    case CO_KEY_STRATEGY:
        return sizeof(int);
    case CO_KEY_ORGS:
        return sizeof(co_allowed_org *);
    default:
        return 0; /* strings: any capacity */
    }
}

/* Every row points at a field of its type inside co_config, keys are unique, and the table's
 * strategy defaults are the strategy module's own for fedavg. */
static void test_table_rows(void **state)
{
    (void)state;
    size_t n;
    const co_key *k = co_config_keys(&n);
    assert_true(n > 40);
    for (size_t i = 0; i < n; i++) {
        char a[96], b[96];
        if (type_size(k[i].type) && k[i].size != type_size(k[i].type))
            fail_msg("%s: field of %zu bytes for its type", co_key_path(&k[i], a, sizeof a),
                     k[i].size);
        assert_true(k[i].offset + k[i].size <= sizeof(co_config));
        assert_non_null(k[i].doc);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(co_key_path(&k[i], a, sizeof a), co_key_path(&k[j], b, sizeof b)))
                fail_msg("%s is in the table twice", a);
    }
    co_config c;
    co_config_default(&c);
    co_strategy_params p;
    co_strategy_params_default(&p, CO_STRATEGY_FEDAVG);
    assert_memory_equal(&c.strategy, &p, sizeof p);
    mu_diag d = {{0}};
    assert_int_equal(co_config_check(&c, &d), MU_OK);
}

/* Each key of the table is read from YAML: its default written as text loads back to the
 * default, and a number outside its range is refused at its position, naming the key. */
static void test_every_key_loads(void **state)
{
    (void)state;
    size_t n;
    const co_key *k = co_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        if (!k[i].section)
            continue;
        char def[256], text[512], path[96];
        co_key_path(&k[i], path, sizeof path);
        co_key_default_text(&k[i], def, sizeof def);
        snprintf(text, sizeof text, "%s:\n  %s: %s\n", k[i].section, k[i].name, def);
        if (!strcmp(k[i].name, "max_orgs")) /* the default 100 needs min_orgs below it */
            snprintf(text, sizeof text, "cohort:\n  max_orgs: 100\n");
        co_config c, ref;
        mu_diag d = {{0}};
        if (co_config_parse("k.yaml", text, strlen(text), &c, &d) != MU_OK)
            fail_msg("%s: '%s' does not load: %s", path, def, d.msg);
        co_config_default(&ref);
        if (memcmp((char *)&c + k[i].offset, (char *)&ref + k[i].offset, k[i].size))
            fail_msg("%s: '%s' loads to another value", path, def);
        co_config_deinit(&c);
        if (k[i].type != CO_KEY_U32 && k[i].type != CO_KEY_U64 && k[i].type != CO_KEY_DOUBLE)
            continue;
        if (k[i].max < CO_KEY_I64_MAX) {
            snprintf(text, sizeof text, "%s:\n  %s: %.17g\n", k[i].section, k[i].name,
                     k[i].type == CO_KEY_DOUBLE ? k[i].max * 2 + 1 : k[i].max + 1);
            assert_int_equal(co_config_parse("k.yaml", text, strlen(text), &c, &d), MU_ERR_INVALID);
            char want[256];
            snprintf(want, sizeof want, "k.yaml:2:%zu: %s must be", strlen(k[i].name) + 5, path);
            if (strncmp(d.msg, want, strlen(want)))
                fail_msg("%s: '%s' does not start with '%s'", path, d.msg, want);
        }
    }
}

/* configs/coordinator.yaml shows every key of the table, set or commented out ("# key:"), so
 * a new row without an example fails here. */
static void test_example_mentions_every_key(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char *text;
    size_t len;
    assert_int_equal(mu_read_file(CO_EXAMPLE_CONFIG, 1 << 20, &text, &len, &d), MU_OK);
    mu_yaml_doc *doc = mu_yaml_parse("coordinator.yaml", text, len, &d);
    assert_non_null(doc);
    size_t n;
    const co_key *k = co_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const mu_yaml_node *sec = k[i].section ? mu_yaml_get(doc->root, k[i].section) : doc->root;
        char commented[96], path[96];
        snprintf(commented, sizeof commented, "# %s:", k[i].name);
        if (!mu_yaml_get(sec, k[i].name) && !strstr(text, commented))
            fail_msg("configs/coordinator.yaml does not mention %s",
                     co_key_path(&k[i], path, sizeof path));
    }
    mu_yaml_free(doc);
    free(text);
}

static void test_relative_paths(void **state)
{
    (void)state;
    co_config c;
    mu_diag d = {{0}};
    const char *t = "federation:\n  checkpoint_dir: ck\n  export_dir: /abs/out\n"
                    "server:\n  tls_ca: ../ca.crt\n";
    assert_int_equal(co_config_parse("dir/sub/x.yaml", t, strlen(t), &c, &d), MU_OK);
    assert_string_equal(c.checkpoint_dir, "dir/sub/ck");
    assert_string_equal(c.export_dir, "/abs/out");
    assert_string_equal(c.tls_ca, "dir/sub/../ca.crt");
    co_config_deinit(&c);
    assert_int_equal(co_config_parse("x.yaml", t, strlen(t), &c, &d), MU_OK);
    assert_string_equal(c.checkpoint_dir, "ck");
    co_config_deinit(&c);
    assert_int_equal(co_config_parse("/x.yaml", t, strlen(t), &c, &d), MU_OK);
    assert_string_equal(c.checkpoint_dir, "/ck");
    co_config_deinit(&c);
}

static int check_paths(const char *name, const char *text, mu_diag *d)
{
    mu_yaml_doc *doc = mu_yaml_parse(name, text, strlen(text), d);
    assert_non_null(doc);
    co_config c;
    int rc = co_config_from_yaml(doc, doc->root, CO_CONFIG_CHECK_PATHS, &c, d);
    if (rc == MU_OK)
        co_config_deinit(&c);
    mu_yaml_free(doc);
    return rc;
}

/* With CO_CONFIG_CHECK_PATHS the loader refuses what serve would refuse at start. */
static void test_check_paths(void **state)
{
    (void)state;
    mkdir("cfgpaths", 0700);
    FILE *f = fopen("cfgpaths/ca.crt", "w");
    assert_non_null(f);
    fclose(f);
    f = fopen("cfgpaths/ck", "w");
    assert_non_null(f);
    fclose(f);
    mu_diag d = {{0}};
    assert_int_equal(check_paths("cfgpaths/s.yaml", "federation: {name: x}\n", &d), MU_ERR_INVALID);
    assert_string_equal(d.msg, "cfgpaths/s.yaml:1:1: server.tls_ca is required (or "
                               "server.insecure: true for a local experiment)");
    const char *t = "server:\n  tls_ca: ca.crt\n  tls_cert: nope.crt\n  tls_key: ca.crt\n";
    assert_int_equal(check_paths("cfgpaths/s.yaml", t, &d), MU_ERR_INVALID);
    assert_string_equal(d.msg, "cfgpaths/s.yaml:3:13: server.tls_cert 'cfgpaths/nope.crt': "
                               "No such file or directory");
    t = "server:\n  tls_ca: ca.crt\n  tls_cert: ca.crt\n  tls_key: ca.crt\n";
    assert_int_equal(check_paths("cfgpaths/s.yaml", t, &d), MU_OK);
    assert_int_equal(check_paths("cfgpaths/s.yaml", "server: {insecure: true}\n", &d), MU_OK);
    t = "server: {insecure: true}\nfederation:\n  checkpoint_dir: ck\n";
    assert_int_equal(check_paths("cfgpaths/s.yaml", t, &d), MU_ERR_INVALID);
    assert_string_equal(d.msg, "cfgpaths/s.yaml:3:19: federation.checkpoint_dir 'cfgpaths/ck' "
                               "exists and is not a folder");
    /* without the flag, only types and ranges are checked (sim, tests) */
    co_config c;
    assert_int_equal(co_config_parse("cfgpaths/s.yaml", t, strlen(t), &c, &d), MU_OK);
    co_config_deinit(&c);
}

/* The round config the coordinator sends carries these keys: at the table's maximum an org
 * accepts it (co_round_config_check, the wire's ranges), just above it the loader refuses it.
 * So the table and the wire cannot drift apart. */
static void test_task_ranges_match_wire(void **state)
{
    (void)state;
    static const char *const task_keys[] = {"train.steps",
                                            "train.batch",
                                            "train.seq",
                                            "train.lr",
                                            "train.fedprox_mu",
                                            "secure_agg.bits",
                                            "secure_agg.clip",
                                            "secure_agg.scale",
                                            "secure_agg.weight_max",
                                            "secure_agg.neighbours",
                                            "secure_agg.threshold",
                                            NULL};
    size_t n;
    const co_key *k = co_config_keys(&n);
    for (const char *const *t = task_keys; *t; t++) {
        const co_key *row = NULL;
        char path[96];
        for (size_t i = 0; i < n; i++)
            if (!strcmp(co_key_path(&k[i], path, sizeof path), *t))
                row = &k[i];
        assert_non_null(row);
        co_config c;
        co_config_default(&c);
        if (row->type == CO_KEY_DOUBLE)
            *(double *)((char *)&c + row->offset) = row->max;
        else
            *(uint32_t *)((char *)&c + row->offset) = (uint32_t)row->max;
        if (!strcmp(row->name, "batch"))
            c.seq = 1;
        co_round_config rc = {.kind = CO_ROUND_TRAIN,
                              .weight = (uint8_t)c.weight,
                              .steps = c.steps,
                              .batch = c.batch,
                              .seq = c.seq,
                              .lr = c.lr,
                              .fedprox_mu = c.fedprox_mu,
                              .dim = 10,
                              .bits = c.bits,
                              .k = c.neighbours,
                              .t = c.threshold,
                              .clip = c.clip,
                              .scale = c.scale,
                              .weight_max = c.weight_max};
        mu_diag d = {{0}};
        if (co_round_config_check(&rc, &d) != MU_OK)
            fail_msg("%s at its maximum %g: the org refuses: %s", *t, row->max, d.msg);
        char why[256];
        double above = row->type == CO_KEY_DOUBLE ? row->max * 1.5 : row->max + 1;
        assert_int_equal(co_key_check_number(row, above, why, sizeof why), MU_ERR_INVALID);
    }
    /* batch and seq each in range, but together more tokens than an org takes */
    co_config c;
    co_config_default(&c);
    c.batch = CO_TASK_MAX_BATCH;
    c.seq = CO_TASK_MAX_SEQ;
    mu_diag d = {{0}};
    assert_int_equal(co_config_check(&c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "train.batch x train.seq"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_pinned_key),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_listen_port),
        cmocka_unit_test(test_large_allowlist),
        cmocka_unit_test(test_table_rows),
        cmocka_unit_test(test_every_key_loads),
        cmocka_unit_test(test_example_mentions_every_key),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_check_paths),
        cmocka_unit_test(test_task_ranges_match_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
