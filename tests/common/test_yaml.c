/* Tests of mu_yaml: values, positions and every kind of bad config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_yaml.h"

/* Linked with -Wl,--wrap=realloc: counts the reallocations made while `counting` is set. */
void *__real_realloc(void *p, size_t n);
static int counting, n_reallocs;
void *__wrap_realloc(void *p, size_t n)
{
    n_reallocs += counting;
    return __real_realloc(p, n);
}

static mu_yaml_doc *parse(const char *text, mu_diag *d)
{
    return mu_yaml_parse("cfg.yaml", text, strlen(text), d);
}

static void expect_error(const char *text, const char *want)
{
    mu_diag d = {{0}};
    mu_yaml_doc *doc = parse(text, &d);
    assert_null(doc);
    if (!strstr(d.msg, want))
        fail_msg("error '%s' does not contain '%s'", d.msg, want);
}

static void test_values(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    mu_yaml_doc *doc = parse("name: coop\nport: 7443\nrate: 0.5\nflag: true\n"
                             "orgs:\n  - a\n  - b\nnested:\n  k: v\n",
                             &d);
    assert_non_null(doc);
    const mu_yaml_node *root = doc->root;
    const char *name = NULL;
    long long port = 0;
    double rate = 0;
    int flag = 0;
    assert_int_equal(mu_yaml_get_str(doc, root, "name", &name, &d), 0);
    assert_string_equal(name, "coop");
    assert_int_equal(mu_yaml_get_int(doc, root, "port", 1, 65535, &port, &d), 0);
    assert_int_equal(port, 7443);
    assert_int_equal(mu_yaml_get_double(doc, root, "rate", 0, 1, &rate, &d), 0);
    assert_true(rate == 0.5);
    assert_int_equal(mu_yaml_get_bool(doc, root, "flag", &flag, &d), 0);
    assert_int_equal(flag, 1);
    const mu_yaml_node *orgs = mu_yaml_get(root, "orgs");
    assert_non_null(orgs);
    assert_int_equal(orgs->kind, MU_YAML_SEQ);
    assert_int_equal(orgs->n_items, 2);
    assert_string_equal(orgs->items[1]->scalar, "b");
    assert_int_equal(orgs->items[1]->line, 7);
    long long absent = 42;
    assert_int_equal(mu_yaml_get_int(doc, root, "absent", 0, 100, &absent, &d), 0);
    assert_int_equal(absent, 42);
    mu_yaml_free(doc);
}

static void test_type_and_range_errors(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    mu_yaml_doc *doc = parse("port: 99999\nrate: fast\nlist: [1]\nq: \"7\"\n", &d);
    assert_non_null(doc);
    long long port = 0;
    double rate = 0;
    assert_int_equal(mu_yaml_get_int(doc, doc->root, "port", 1, 65535, &port, &d), MU_ERR_INVALID);
    assert_string_equal(d.msg, "cfg.yaml:1:7: port must be between 1 and 65535, got 99999");
    assert_int_equal(mu_yaml_get_double(doc, doc->root, "rate", 0, 1, &rate, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "cfg.yaml:2:7: rate must be a finite number"));
    assert_int_equal(mu_yaml_get_int(doc, doc->root, "list", 0, 9, &port, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "cfg.yaml:3:7: list must be an integer, not a list"));
    assert_int_equal(mu_yaml_get_int(doc, doc->root, "q", 0, 9, &port, &d), MU_ERR_INVALID);
    static const char *const allowed[] = {"port", "rate", NULL};
    assert_int_equal(mu_yaml_check_keys(doc, doc->root, allowed, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "cfg.yaml:3:1: unknown key 'list'"));
    assert_int_equal(mu_yaml_require(doc, doc->root, "missing", &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "missing required key 'missing'"));
    mu_yaml_free(doc);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("a: [1, 2\n", "cfg.yaml:");
    expect_error("a: b\n  c: d\n", "cfg.yaml:2:");
    expect_error("a: 1\na: 2\n", "cfg.yaml:2:1: duplicate key 'a'");
    expect_error("a: &x 1\nb: *x\n", "anchors are not supported");
    expect_error("? [1]\n: x\n", "mapping keys must be plain scalars");
    expect_error("a: 1\n---\nb: 2\n", "one YAML document");
    expect_error("\t- x\n", "cfg.yaml:1:");
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char buf[400];
    memset(buf, '[', 200);
    buf[200] = 0;
    expect_error(buf, "nesting is too deep");
}

/* A sequence of n items grows its item array by doubling: O(log n) reallocations, not one per
 * item (the loader did n, each copying the array: quadratic). */
static void test_long_sequence(void **state)
{
    (void)state;
    enum { N = 20000 };
    char *text = malloc(N * 8 + 16), *p = text;
    assert_non_null(text);
    p += sprintf(p, "xs:\n");
    for (int i = 0; i < N; i++)
        p += sprintf(p, "- %d\n", i % 10);
    mu_diag d = {{0}};
    counting = 1;
    n_reallocs = 0;
    mu_yaml_doc *doc = parse(text, &d);
    counting = 0;
    assert_non_null(doc);
    assert_true(n_reallocs <= 40);
    mu_yaml_free(doc);
    free(text);
}

static void test_missing_file(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    assert_null(mu_yaml_load("/nonexistent/cfg.yaml", &d));
    assert_non_null(strstr(d.msg, "/nonexistent/cfg.yaml: No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),        cmocka_unit_test(test_type_and_range_errors),
        cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_missing_file),  cmocka_unit_test(test_long_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
