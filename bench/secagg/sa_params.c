/* sa_params - prints the (k, t) / threat-model table of docs/secure_agg.md from the code that
 * chooses the parameters. usage: sa_params [N ...]   (no N: the doc's rows) */
#include <stdio.h>
#include <stdlib.h>

#include "sa_table.h"

int main(int argc, char **argv)
{
    char row[256];
    fputs(SA_TABLE_HEADER, stdout);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            long n = strtol(argv[i], NULL, 10);
            if (n < 2 || n > (long)SA_MAX_ORGS ||
                sa_table_row(row, sizeof row, (uint32_t)n, 0, 0) < 0) {
                fprintf(stderr, "sa_params: n must be 2..%u, got '%s'\n", SA_MAX_ORGS, argv[i]);
                return 2;
            }
            puts(row);
        }
        return 0;
    }
    for (int i = 0; i < SA_TABLE_ROWS; i++) {
        uint32_t n, k, t;
        sa_table_params(i, &n, &k, &t);
        if (sa_table_row(row, sizeof row, n, k, t) < 0)
            return 1;
        puts(row);
    }
    return 0;
}
