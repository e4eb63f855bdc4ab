/* Tests of mu_addr_parse: good HOST:PORT forms and every kind of bad port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mu_addr.h"

static void test_good(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(mu_addr_parse("127.0.0.1:7443", host, sizeof host, &port, NULL), MU_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7443);
    assert_int_equal(mu_addr_parse("[::1]:65535", host, sizeof host, &port, NULL), MU_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
    assert_int_equal(mu_addr_parse("a:1", NULL, 0, NULL, NULL), MU_OK);
}

static void bad(const char *addr, const char *want)
{
    const char *why = NULL;
    int port = -1;
    assert_int_equal(mu_addr_parse(addr, NULL, 0, &port, &why), MU_ERR_INVALID);
    assert_int_equal(port, -1);
    assert_non_null(why);
    if (!strstr(why, want))
        fail_msg("'%s': reason '%s' does not contain '%s'", addr, why, want);
}

static void test_bad(void **state)
{
    (void)state;
    bad("127.0.0.1:99999", "above 65535");
    bad("127.0.0.1:65536", "above 65535");
    bad("127.0.0.1:99999999999999999999", "above 65535");
    bad("127.0.0.1", "no port");
    bad("127.0.0.1:", "no port");
    bad("127.0.0.1:0", "port 0");
    bad("127.0.0.1:00", "port 0");
    bad("127.0.0.1:http", "not a number");
    bad("127.0.0.1:-1", "not a number");
    bad("127.0.0.1: 80", "not a number");
    bad("[::1]", "no port");
    bad("[::1", "']'");
    bad("::1:80", "brackets");
    bad(":80", "no host");
    bad("", "empty");
    char host[4];
    const char *why = NULL;
    assert_int_equal(mu_addr_parse("longhost:1", host, sizeof host, NULL, &why), MU_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_good), cmocka_unit_test(test_bad)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
