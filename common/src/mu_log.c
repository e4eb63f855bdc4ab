#include "mu_log.h"

#include <stdarg.h>
#include <stdio.h>

static volatile mu_log_level g_level = MU_LOG_INFO;

void mu_log_set_level(mu_log_level level)
{
    g_level = level;
}

mu_log_level mu_log_get_level(void)
{
    return g_level;
}

void mu_log(mu_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > g_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mutual: %s: %s\n", names[level], line);
}
