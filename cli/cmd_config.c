/* cmd_config.c - `mutual config check FILE...`: parse configs and report the first error. */
#include <string.h>

#include "cli.h"
#include "mu_yaml.h"

static void help(FILE *out)
{
    fprintf(out, "usage: mutual config check FILE...\n\n"
                 "Parses each YAML config file and reports the first problem as\n"
                 "FILE:LINE:COL: what is wrong. Exit status 0 if every file is well formed,\n"
                 "2 otherwise. Each command also checks the keys and values it reads from its\n"
                 "own config when it starts.\n");
}

int cmd_config(int argc, char **argv)
{
    static const struct option longopts[] = {MU_CLI_COMMON_LONGOPTS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        }
        if (!cli_common_opt(c))
            return cli_usage_error("config", "unknown option");
    }
    if (optind >= argc || strcmp(argv[optind], "check") != 0)
        return cli_usage_error("config", "expected 'check FILE...'");
    if (optind + 1 >= argc)
        return cli_usage_error("config", "'check' needs at least one FILE");
    int status = MU_EXIT_OK;
    for (int i = optind + 1; i < argc; i++) {
        mu_diag d = {{0}};
        mu_yaml_doc *doc = mu_yaml_load(argv[i], &d);
        if (!doc) {
            fprintf(stderr, "%s\n", d.msg);
            status = MU_EXIT_USAGE;
            continue;
        }
        if (doc->root && doc->root->kind != MU_YAML_MAP) {
            mu_yaml_error(doc, doc->root, &d, "a config file must be a mapping of keys");
            fprintf(stderr, "%s\n", d.msg);
            status = MU_EXIT_USAGE;
        } else {
            printf("%s: ok\n", argv[i]);
        }
        mu_yaml_free(doc);
    }
    return status;
}
