/* cli.h - what every subcommand shares: its entry point and option helpers. */
#ifndef MU_CLI_H
#define MU_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "mu_err.h"

#define MU_COMMAND(name, summary, fn) int fn(int argc, char **argv);
#include "commands.def"
#undef MU_COMMAND

/* Long options every command accepts; append to a command's own table with
 * MU_CLI_COMMON_LONGOPTS and put MU_CLI_COMMON_SHORTOPTS in its optstring. */
#define MU_CLI_COMMON_SHORTOPTS "hvq"
#define MU_CLI_COMMON_LONGOPTS                                                                     \
    {"help", no_argument, NULL, 'h'}, {"verbose", no_argument, NULL, 'v'},                         \
    {                                                                                              \
        "quiet", no_argument, NULL, 'q'                                                            \
    }

/* Handles -v/-q (returns 1) or leaves the option to the caller (returns 0). */
int cli_common_opt(int c);

/* The next option, as getopt_long(argc, argv, optstring, longopts, NULL) (optstring includes
 * MU_CLI_COMMON_SHORTOPTS): -v and -q are applied and skipped (cli_common_opt); -h prints
 * help(stdout) and returns CLI_OPT_HELP (the command then exits 0); -1 after the last option.
 * The one option loop of every command. */
#define CLI_OPT_HELP (-2)
int cli_next_opt(int argc, char **argv, const char *optstring, const struct option *longopts,
                 void (*help)(FILE *));

/* Exit status of a command's start-up check (serve's, join's): 0 for MU_OK (go on), else
 * "mutual CMD: why" on stderr and MU_EXIT_USAGE (a config or certificate error, found before
 * anything starts). */
int cli_exit_check(const char *cmd, int rc, const mu_diag *d);

/* Exit status of a command's run: MU_EXIT_OK for MU_OK, else "mutual CMD: why" logged as an
 * error and MU_EXIT_FAIL. */
int cli_exit_run(const char *cmd, int rc, const mu_diag *d);

/* Prints "mutual CMD: message" and a hint to stderr; returns MU_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole number / a finite double for option `opt`; on error prints a usage error
 * and returns -1. */
int cli_parse_long(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                     double *out);

/* Draws METRICS (JSON lines, one per round) and optionally an --org-metrics file as the PNG
 * `out` (title NULL: the file's name) through scripts/plot-metrics.py, carried in the binary
 * and run by /usr/bin/python3 ($MUTUAL_PYTHON). Returns an exit status: MU_EXIT_OK,
 * MU_EXIT_FAIL (the script or interpreter said why on stderr), MU_EXIT_USAGE. */
int cli_plot(const char *metrics, const char *org_metrics, const char *out, const char *title);

#endif
