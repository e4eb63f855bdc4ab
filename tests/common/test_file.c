/* Tests of mu_read_file: sizes at and around the limit, empty and missing files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_file.h"

static void write_bytes(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static void test_sizes(void **state)
{
    (void)state;
    /* across the first growth step (4096) and at the limit */
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 10000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        write_bytes("mu_file.bin", sizes[k]);
        char *buf = NULL;
        size_t len = 99;
        mu_diag d = {{0}};
        assert_int_equal(mu_read_file("mu_file.bin", 10000, &buf, &len, &d), MU_OK);
        assert_int_equal(len, sizes[k]);
        assert_int_equal(buf[len], 0);
        if (len)
            assert_int_equal(buf[len - 1], 'a' + (int)((len - 1) % 26));
        free(buf);
    }
}

static void test_too_large(void **state)
{
    (void)state;
    write_bytes("mu_file.bin", 10001);
    char *buf = (char *)"untouched";
    mu_diag d = {{0}};
    assert_int_equal(mu_read_file("mu_file.bin", 10000, &buf, NULL, &d), MU_ERR_FORMAT);
    assert_string_equal(buf, "untouched");
    assert_string_equal(d.msg, "mu_file.bin: larger than 10000 bytes");
    write_bytes("mu_file.bin", 1);
    assert_int_equal(mu_read_file("mu_file.bin", 0, &buf, NULL, &d), MU_ERR_FORMAT);
}

static void test_missing(void **state)
{
    (void)state;
    char *buf = NULL;
    mu_diag d = {{0}};
    assert_int_equal(mu_read_file("no/such/file", 100, &buf, NULL, &d), MU_ERR_NOTFOUND);
    assert_null(buf);
    assert_non_null(strstr(d.msg, "no/such/file: No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
