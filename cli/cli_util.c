#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "cli.h"
#include "mu_log.h"

int cli_common_opt(int c)
{
    mu_log_level l = mu_log_get_level();
    if (c == 'v') {
        mu_log_set_level(l < MU_LOG_DEBUG ? l + 1 : l);
        return 1;
    }
    if (c == 'q') {
        mu_log_set_level(MU_LOG_QUIET);
        return 1;
    }
    return 0;
}

int cli_next_opt(int argc, char **argv, const char *optstring, const struct option *longopts,
                 void (*help)(FILE *))
{
    int c;
    while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1 && cli_common_opt(c))
        ;
    if (c == 'h') {
        help(stdout);
        return CLI_OPT_HELP;
    }
    return c;
}

int cli_exit_check(const char *cmd, int rc, const mu_diag *d)
{
    if (rc == MU_OK)
        return 0;
    fprintf(stderr, "mutual %s: %s\n", cmd, d->msg[0] ? d->msg : mu_strerror(rc));
    return MU_EXIT_USAGE;
}

int cli_exit_run(const char *cmd, int rc, const mu_diag *d)
{
    if (rc == MU_OK)
        return MU_EXIT_OK;
    mu_error("mutual %s: %s", cmd, d->msg[0] ? d->msg : mu_strerror(rc));
    return MU_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mutual %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'mutual %s --help'.\n", cmd);
    return MU_EXIT_USAGE;
}

int cli_parse_long(const char *cmd, const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max) {
        cli_usage_error(cmd, "%s wants a whole number from %ld to %ld, got '%s'", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < min || v > max) {
        cli_usage_error(cmd, "%s wants a number from %g to %g, got '%s'", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}
