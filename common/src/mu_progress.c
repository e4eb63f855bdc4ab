#include "mu_progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mu_log.h"

double mu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mu_progress_init(mu_progress *p, const char *label, long total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total > 0 ? total : 1;
    p->enabled = isatty(STDERR_FILENO) && mu_log_get_level() >= MU_LOG_INFO;
    p->t0 = mu_now();
}

static void draw(mu_progress *p, long done, const char *extra, int final)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    if (done > p->total)
        done = p->total;
    int fill = (int)((double)done / (double)p->total * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    double el = mu_now() - p->t0;
    double eta = done > 0 ? el / (double)done * (double)(p->total - done) : 0;
    fprintf(stderr, "\r%-12s [%s] %ld/%ld %5.1fs eta %5.1fs %s\033[K%s", p->label, bar, done,
            p->total, el, eta, extra ? extra : "", final ? "\n" : "");
    fflush(stderr);
}

void mu_progress_update(mu_progress *p, long done, const char *extra)
{
    if (!p->enabled)
        return;
    double t = mu_now();
    if (t - p->last_draw < 0.1 && done < p->total)
        return;
    p->last_draw = t;
    draw(p, done, extra, 0);
}

void mu_progress_finish(mu_progress *p, const char *extra)
{
    if (p->enabled)
        draw(p, p->total, extra, 1);
}
