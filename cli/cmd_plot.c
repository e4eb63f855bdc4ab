/* cmd_plot.c - `mutual plot`: a PNG of a federation's round metrics, drawn by
 * scripts/plot-metrics.py (carried in the binary) with Debian's python3-matplotlib. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "mu_log.h"

#define CMD         "plot"
#define PLOT_PYTHON "/usr/bin/python3" /* Debian's, where scripts/bootstrap puts matplotlib */

extern const char cli_plot_script[];
extern char **environ;

static void help(FILE *out)
{
    fprintf(out, "usage: mutual plot METRICS.jsonl --out FILE.png [--org-metrics FILE] "
                 "[--title TEXT]\n\n"
                 "Draws the round metrics of `mutual sim --metrics` or `mutual serve` (one JSON\n"
                 "line per round) as a PNG: the training and held-out loss per training round\n"
                 "(aborted rounds marked; with --org-metrics, each org's own training loss from\n"
                 "`mutual sim --org-metrics`) and the bytes in and out of each round. No network;\n"
                 "needs " PLOT_PYTHON " with python3-matplotlib (scripts/bootstrap installs it;\n"
                 "MUTUAL_PYTHON names another interpreter).\n\n"
                 "Exit status: 0 written, 1 an unreadable or empty metrics file or no matplotlib,\n"
                 "2 usage error.\n");
}

int cli_plot(const char *metrics, const char *org_metrics, const char *out, const char *title)
{
    const char *py = getenv("MUTUAL_PYTHON");
    if (!py || !*py)
        py = PLOT_PYTHON;
    const char *argv[12];
    int n = 0;
    argv[n++] = py;
    argv[n++] = "-c";
    argv[n++] = cli_plot_script;
    argv[n++] = metrics;
    argv[n++] = "--out";
    argv[n++] = out;
    if (org_metrics) {
        argv[n++] = "--org-metrics";
        argv[n++] = org_metrics;
    }
    if (title) {
        argv[n++] = "--title";
        argv[n++] = title;
    }
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid;
    int err = posix_spawn(&pid, py, NULL, NULL, (char *const *)argv, environ);
    if (err) {
        mu_error(CMD ": cannot run %s: %s", py, strerror(err));
        return MU_EXIT_FAIL;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            mu_error(CMD ": waiting for %s: %s", py, strerror(errno));
            return MU_EXIT_FAIL;
        }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return MU_EXIT_OK;
    if (WIFEXITED(st) && WEXITSTATUS(st) == MU_EXIT_USAGE)
        return MU_EXIT_USAGE;
    return MU_EXIT_FAIL; /* the script said why on stderr */
}

int cmd_plot(int argc, char **argv)
{
    enum { O_OUT = 1000, O_ORG, O_TITLE };
    static const struct option longopts[] = {{"out", required_argument, NULL, O_OUT},
                                             {"org-metrics", required_argument, NULL, O_ORG},
                                             {"title", required_argument, NULL, O_TITLE},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    const char *out = NULL, *org = NULL, *title = NULL;
    int c;
    while ((c = cli_next_opt(argc, argv, MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return MU_EXIT_OK;
        if (c == O_OUT)
            out = optarg;
        else if (c == O_ORG)
            org = optarg;
        else if (c == O_TITLE)
            title = optarg;
        else
            return cli_usage_error(CMD, "unknown option or missing argument");
    }
    if (optind != argc - 1)
        return cli_usage_error(CMD, "give one metrics file (JSON lines)");
    if (!out)
        return cli_usage_error(CMD, "--out FILE.png is required");
    size_t l = strlen(out);
    if (l < 4 || strcmp(out + l - 4, ".png"))
        return cli_usage_error(CMD, "--out must name a .png file, not '%s'", out);
    return cli_plot(argv[optind], org, out, title);
}
