/* Tests of mu_read_file: sizes at and around the limit, empty and missing files; of the
 * crash-safe writes and of mu_file_remove. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void test_atomic_write(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    assert_int_equal(mu_write_file_atomic("mu_atomic.txt", "old", 3, &d), MU_OK);
    assert_int_equal(mu_write_file_atomic("mu_atomic.txt", "new!", 4, &d), MU_OK);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(mu_read_file("mu_atomic.txt", 100, &buf, &len, &d), MU_OK);
    assert_int_equal(len, 4);
    assert_string_equal(buf, "new!");
    free(buf);
    FILE *tmp = fopen("mu_atomic.txt.tmp", "rb");
    assert_null(tmp); /* renamed away, nothing left behind */
    assert_int_equal(mu_write_file_atomic("no/such/dir/x", "a", 1, &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "no/such/dir/x.tmp: No such file"));
}

static void test_commit_failure_removes_tmp(void **state)
{
    (void)state;
    write_bytes("mu_commit.tmp", 10);
    mu_diag d = {{0}};
    /* renaming into a folder that does not exist fails; the temp file must not linger */
    assert_int_equal(mu_file_commit("mu_commit.tmp", "no/such/dir/final", &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "rename to no/such/dir/final"));
    FILE *f = fopen("mu_commit.tmp", "rb");
    assert_null(f);
    write_bytes("mu_commit.tmp", 10);
    assert_int_equal(mu_file_commit("mu_commit.tmp", "mu_commit.final", &d), MU_OK);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(mu_read_file("mu_commit.final", 100, &buf, &len, &d), MU_OK);
    assert_int_equal(len, 10);
    free(buf);
}

/* A failed rename leaves the source where it was (unlike mu_file_commit's temp file). */
static void test_rename(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    write_bytes("mu_rename.a", 4);
    assert_int_equal(mu_file_rename("mu_rename.a", "no/such/dir/b", &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "mu_rename.a: rename to no/such/dir/b"));
    FILE *f = fopen("mu_rename.a", "rb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mu_file_rename("mu_rename.a", "mu_rename.b", &d), MU_OK);
    assert_null(fopen("mu_rename.a", "rb"));
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(mu_read_file("mu_rename.b", 100, &buf, &len, &d), MU_OK);
    assert_int_equal(len, 4);
    free(buf);
    unlink("mu_rename.b");
}

static void test_remove(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    write_bytes("mu_remove.txt", 3);
    assert_int_equal(mu_file_remove("mu_remove.txt", &d), MU_OK);
    FILE *f = fopen("mu_remove.txt", "rb");
    assert_null(f);
    assert_int_equal(mu_file_remove("mu_remove.txt", &d), MU_OK); /* gone already: fine */
    assert_int_equal(mkdir("mu_remove.dir", 0700) == 0 || errno == EEXIST, 1);
    assert_int_equal(mu_file_remove("mu_remove.dir", &d), MU_ERR_IO); /* not a file */
    assert_non_null(strstr(d.msg, "mu_remove.dir: "));
    rmdir("mu_remove.dir");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_commit_failure_removes_tmp),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
