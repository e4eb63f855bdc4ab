/* cmd_config.c - `mutual config check [--kind K] FILE...`: report the first error of each. */
#include <string.h>

#include "cli.h"
#include "co_config.h"
#include "mu_yaml.h"
#include "nd.h"
#include "nd_orgcfg.h"
#include "sim.h"

static void help(FILE *out)
{
    fprintf(out, "usage: mutual config check [--kind coordinator|org|sim] FILE...\n\n"
                 "Checks each YAML config file and reports the first problem as\n"
                 "FILE:LINE:COL: what is wrong.\n\n"
                 "Without --kind, checks that the file is well-formed YAML holding a mapping.\n"
                 "With --kind, also checks every key, type and range as the command that reads\n"
                 "it would: coordinator (mutual serve --config), org (mutual join --config),\n"
                 "sim (mutual sim --config). Nothing is started and no file is written.\n\n"
                 "Exit status 0 if every file is valid, 2 otherwise.\n");
}

static int check_kind(const char *kind, const char *path, mu_diag *d)
{
    if (!strcmp(kind, "coordinator")) {
        co_config co;
        int rc = co_config_load(path, &co, d);
        if (rc)
            return rc;
        co_config_deinit(&co);
        nd_model_spec spec;
        return nd_model_spec_load(path, &spec, d);
    }
    if (!strcmp(kind, "org")) {
        nd_orgcfg org;
        return nd_orgcfg_load(path, &org, d);
    }
    sim_config sim;
    int rc = sim_config_load(path, &sim, d);
    if (!rc)
        sim_config_deinit(&sim);
    return rc;
}

static int check_file(const char *kind, const char *path)
{
    mu_diag d = {{0}};
    mu_yaml_doc *doc = mu_yaml_load(path, &d);
    if (!doc) {
        fprintf(stderr, "%s\n", d.msg);
        return MU_EXIT_USAGE;
    }
    int bad = doc->root && doc->root->kind != MU_YAML_MAP;
    if (bad) {
        mu_yaml_error(doc, doc->root, &d, "a config file must be a mapping of keys");
        fprintf(stderr, "%s\n", d.msg);
    }
    mu_yaml_free(doc);
    if (bad)
        return MU_EXIT_USAGE;
    if (kind && check_kind(kind, path, &d)) {
        fprintf(stderr, "%s\n", d.msg);
        return MU_EXIT_USAGE;
    }
    printf("%s: ok\n", path);
    return MU_EXIT_OK;
}

int cmd_config(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'}, MU_CLI_COMMON_LONGOPTS, {0, 0, 0, 0}};
    const char *kind = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "+k:" MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        }
        if (c == 'k') {
            kind = optarg;
            if (strcmp(kind, "coordinator") && strcmp(kind, "org") && strcmp(kind, "sim"))
                return cli_usage_error("config", "--kind wants coordinator, org or sim, got '%s'",
                                       kind);
            continue;
        }
        if (!cli_common_opt(c))
            return cli_usage_error("config", "unknown option");
    }
    if (optind >= argc || strcmp(argv[optind], "check") != 0)
        return cli_usage_error("config", "expected 'check FILE...'");
    /* Options may also follow 'check'. */
    optind++;
    while ((c = getopt_long(argc, argv, "+k:" MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'k') {
            kind = optarg;
            if (strcmp(kind, "coordinator") && strcmp(kind, "org") && strcmp(kind, "sim"))
                return cli_usage_error("config", "--kind wants coordinator, org or sim, got '%s'",
                                       kind);
        } else if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        } else if (!cli_common_opt(c)) {
            return cli_usage_error("config", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("config", "'check' needs at least one FILE");
    int status = MU_EXIT_OK;
    for (int i = optind; i < argc; i++)
        if (check_file(kind, argv[i]) != MU_EXIT_OK)
            status = MU_EXIT_USAGE;
    return status;
}
