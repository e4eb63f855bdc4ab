/* main.c - `mutual <command> [options]`: global options, then dispatch to a command. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mu_log.h"

#ifndef MUTUAL_VERSION
#define MUTUAL_VERSION "unknown"
#endif

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
#define MU_COMMAND(name, summary, fn) {#name, summary, fn},
#include "commands.def"
#undef MU_COMMAND
};

static void usage(FILE *out)
{
    fprintf(out, "usage: mutual [-v|-q] <command> [options]\n\n"
                 "Federated LoRA fine-tuning with secure aggregation.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nGlobal options:\n"
                 "  -h, --help     show this help; 'mutual <command> --help' for a command\n"
                 "      --version  print the version\n"
                 "  -v, --verbose  more log output (repeat for debug)\n"
                 "  -q, --quiet    errors only\n\n"
                 "Logs go to stderr, data to stdout. Exit status: 0 success, 1 failure,\n"
                 "2 usage or config error.\n");
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return MU_EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("mutual %s\n", MUTUAL_VERSION);
            return MU_EXIT_OK;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            cli_common_opt('v');
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cli_common_opt('q');
        } else {
            fprintf(stderr, "mutual: unknown option '%s'\n\n", a);
            usage(stderr);
            return MU_EXIT_USAGE;
        }
    }
    if (i == argc) {
        usage(stderr);
        return MU_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (!strcmp(name, "help")) {
        if (i + 1 < argc) {
            char *help_argv[] = {argv[i + 1], "--help", NULL};
            for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
                if (!strcmp(commands[k].name, argv[i + 1]))
                    return commands[k].run(2, help_argv);
        }
        usage(stdout);
        return i + 1 < argc ? MU_EXIT_USAGE : MU_EXIT_OK;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (!strcmp(commands[k].name, name))
            return commands[k].run(argc - i, argv + i);
    fprintf(stderr, "mutual: unknown command '%s'\n\n", name);
    usage(stderr);
    return MU_EXIT_USAGE;
}
