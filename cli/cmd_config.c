/* cmd_config.c - `mutual config check [--kind K] FILE...`: report the first error of each;
 * `mutual config keys [--markdown]`: the coordinator's keys, from the config table. */
#include <string.h>

#include "cli.h"
#include "co_config.h"
#include "mu_yaml.h"
#include "nd_check.h"
#include "sim.h"

static void help(FILE *out)
{
    fprintf(out, "usage: mutual config check [--kind coordinator|org|sim] FILE...\n"
                 "       mutual config keys [--markdown]\n\n"
                 "check: checks each YAML config file and reports the first problem as\n"
                 "FILE:LINE:COL: what is wrong.\n\n"
                 "Without --kind, checks that the file is well-formed YAML holding a mapping.\n"
                 "With --kind, also checks every key, type and range, and everything the command\n"
                 "that reads it would refuse at start: coordinator (mutual serve --config), org\n"
                 "(mutual join --config), sim (mutual sim --config): files that are missing or\n"
                 "unreadable (TLS files, the base model folder, data files, the identity key's\n"
                 "folder), insecure mode on a non-loopback address. Relative paths are relative\n"
                 "to the config file's folder, as every command reads them. Nothing is started\n"
                 "and no file is written. Exit status 0 if every file is valid, 2 otherwise.\n\n"
                 "keys: lists every coordinator key with its type, default, range and meaning\n"
                 "(--markdown: the table of docs/coordinator.md).\n");
}

static int check_kind(const char *kind, const char *path, mu_diag *d)
{
    if (!strcmp(kind, "coordinator"))
        return nd_check_serve_config(path, d);
    if (!strcmp(kind, "org"))
        return nd_check_join_config(path, d);
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

/* s with '|' escaped for a markdown table cell. */
static void md_cell(const char *s)
{
    for (; *s; s++)
        fputs(*s == '|' ? "\\|" : (char[2]){*s, 0}, stdout);
}

static int print_keys(int markdown)
{
    size_t n;
    const co_key *k = co_config_keys(&n);
    if (markdown)
        printf("| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        char path[96], def[CO_PATH_MAX], range[160];
        co_key_path(&k[i], path, sizeof path);
        co_key_default_text(&k[i], def, sizeof def);
        co_key_range_text(&k[i], range, sizeof range);
        if (!markdown) {
            printf("%-26s %-9s %-13s %-16s %s\n", path, co_key_type_name(&k[i]), def, range,
                   k[i].doc);
            continue;
        }
        printf("| `%s` | %s | `%s` | ", path, co_key_type_name(&k[i]), def);
        md_cell(range);
        printf(" | ");
        md_cell(k[i].doc);
        printf(" |\n");
    }
    return MU_EXIT_OK;
}

static int parse_kind(const char *arg, const char **kind)
{
    if (strcmp(arg, "coordinator") && strcmp(arg, "org") && strcmp(arg, "sim"))
        return cli_usage_error("config", "--kind wants coordinator, org or sim, got '%s'", arg);
    *kind = arg;
    return MU_EXIT_OK;
}

enum { O_MARKDOWN = 1000 };

/* Options up to the next non-option. -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, const char **kind, int *markdown)
{
    static const struct option longopts[] = {{"kind", required_argument, NULL, 'k'},
                                             {"markdown", no_argument, NULL, O_MARKDOWN},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+k:" MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        }
        if (c == 'k') {
            if (parse_kind(optarg, kind) != MU_EXIT_OK)
                return MU_EXIT_USAGE;
        } else if (c == O_MARKDOWN) {
            *markdown = 1;
        } else if (!cli_common_opt(c)) {
            return cli_usage_error("config", "unknown option");
        }
    }
    return -1;
}

int cmd_config(int argc, char **argv)
{
    const char *kind = NULL;
    int markdown = 0, st;
    if ((st = parse_opts(argc, argv, &kind, &markdown)) >= 0)
        return st;
    const char *sub = optind < argc ? argv[optind] : "";
    if (strcmp(sub, "check") && strcmp(sub, "keys"))
        return cli_usage_error("config", "expected 'check FILE...' or 'keys'");
    optind++; /* options may also follow the subcommand */
    if ((st = parse_opts(argc, argv, &kind, &markdown)) >= 0)
        return st;
    if (!strcmp(sub, "keys")) {
        if (optind < argc)
            return cli_usage_error("config", "'keys' takes no FILE");
        return print_keys(markdown);
    }
    if (optind >= argc)
        return cli_usage_error("config", "'check' needs at least one FILE");
    int status = MU_EXIT_OK;
    for (int i = optind; i < argc; i++)
        if (check_file(kind, argv[i]) != MU_EXIT_OK)
            status = MU_EXIT_USAGE;
    return status;
}
