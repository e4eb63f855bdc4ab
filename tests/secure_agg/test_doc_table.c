/* test_doc_table.c - docs/secure_agg.md carries the (k, t) / threat-model rows that the
 * parameter code computes today (bench/secagg/sa_table.h), so the doc cannot drift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sa_table.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

static void test_doc_has_rows(void **state)
{
    (void)state;
    char *doc = slurp(MU_DOC_PATH);
    assert_non_null(doc);
    assert_non_null(strstr(doc, SA_TABLE_HEADER));
    char row[256];
    for (int i = 0; i < SA_TABLE_ROWS; i++) {
        uint32_t n, k, t;
        sa_table_params(i, &n, &k, &t);
        assert_true(sa_table_row(row, sizeof row, n, k, t) > 0);
        if (!strstr(doc, row))
            fail_msg("docs/secure_agg.md lacks the row (run bench/secagg/sa_params):\n%s", row);
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_doc_has_rows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
