/* mu_base's byte and array helpers: little-endian loads and stores of each width at any
 * alignment, their exact byte order; mu_grow's doubling (n appends make O(log n) reallocs,
 * the quadratic "one more element" pattern it replaces made n), its first capacity, and a
 * failed or overflowing growth leaving the array as it was (realloc is wrapped at link). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "mu_bytes.h"
#include "mu_err.h"
#include "mu_grow.h"

void *__real_realloc(void *p, size_t n);
static int n_reallocs, fail_realloc;
void *__wrap_realloc(void *p, size_t n)
{
    if (fail_realloc)
        return NULL;
    n_reallocs++;
    return __real_realloc(p, n);
}

static void test_le_widths(void **state)
{
    (void)state;
    uint8_t buf[9 + 8];
    for (size_t at = 0; at < 9; at++) { /* every alignment */
        memset(buf, 0xee, sizeof buf);
        mu_put_le16(buf + at, 0x0102);
        assert_int_equal(buf[at], 0x02);
        assert_int_equal(buf[at + 1], 0x01);
        assert_int_equal(buf[at + 2], 0xee);
        assert_int_equal(mu_le16(buf + at), 0x0102);
        mu_put_le32(buf + at, 0xa1b2c3d4u);
        const uint8_t w32[4] = {0xd4, 0xc3, 0xb2, 0xa1};
        assert_memory_equal(buf + at, w32, 4);
        assert_int_equal(buf[at + 4], 0xee);
        assert_true(mu_le32(buf + at) == 0xa1b2c3d4u);
        mu_put_le64(buf + at, 0x8877665544332211ull);
        const uint8_t w64[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
        assert_memory_equal(buf + at, w64, 8);
        assert_true(mu_le64(buf + at) == 0x8877665544332211ull);
        assert_true(mu_le32(buf + at + 4) == 0x88776655u);
    }
    uint8_t top[8];
    mu_put_le64(top, UINT64_MAX);
    assert_true(mu_le64(top) == UINT64_MAX && mu_le16(top + 6) == 0xffff);
}

static void test_grow_amortised(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    size_t cap = 0, n = 100000;
    n_reallocs = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(MU_GROW(&a, &cap, i + 1, 16), MU_OK);
        assert_true(cap >= i + 1);
        a[i] = (uint32_t)i;
    }
    /* 16, 32, ..., 2^17: 14 reallocs for 10^5 appends */
    assert_int_equal(n_reallocs, 14);
    assert_int_equal(cap, 131072);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(a[i], i);
    /* need below the capacity: nothing happens */
    assert_int_equal(MU_GROW(&a, &cap, 5, 16), MU_OK);
    assert_int_equal(cap, 131072);
    assert_int_equal(n_reallocs, 14);
    /* a jump past twice the capacity takes the need */
    assert_int_equal(MU_GROW(&a, &cap, 1000000, 16), MU_OK);
    assert_int_equal(cap, 1000000);
    free(a);
}

static void test_grow_failure(void **state)
{
    (void)state;
    uint64_t *a = NULL;
    size_t cap = 0;
    assert_int_equal(MU_GROW(&a, &cap, 3, 4), MU_OK);
    assert_int_equal(cap, 4);
    a[0] = 7;
    uint64_t *before = a;
    fail_realloc = 1;
    assert_int_equal(MU_GROW(&a, &cap, 5, 4), MU_ERR_NOMEM);
    fail_realloc = 0;
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 4);
    assert_int_equal(a[0], 7);
    /* a size that overflows size_t is refused without calling realloc */
    n_reallocs = 0;
    assert_int_equal(MU_GROW(&a, &cap, SIZE_MAX / 4, 4), MU_ERR_NOMEM);
    assert_int_equal(n_reallocs, 0);
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 4);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_le_widths),
        cmocka_unit_test(test_grow_amortised),
        cmocka_unit_test(test_grow_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
