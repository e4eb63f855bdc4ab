/* tr_prof.c - the phase timers of tr_prof.h. */
#include <omp.h>
#include <string.h>

#include "mu_progress.h"
#include "tr_prof.h"

static int g_on;
static double g_sec[TR_PROF_COUNT];

void tr_prof_enable(int on)
{
    g_on = on != 0;
    if (g_on)
        memset(g_sec, 0, sizeof g_sec);
}

void tr_prof_read(double seconds[TR_PROF_COUNT])
{
    memcpy(seconds, g_sec, sizeof g_sec);
}

const char *tr_prof_name(tr_prof_phase p)
{
    static const char *const names[TR_PROF_COUNT] = {"gemm", "lora", "attention", "head",
                                                     "ce",   "norm", "optimizer"};
    return (unsigned)p < TR_PROF_COUNT ? names[p] : "?";
}

double tr_prof_start(void)
{
    return g_on ? mu_now() : 0.0;
}

void tr_prof_stop(tr_prof_phase p, double t0)
{
    if (t0 != 0.0)
        g_sec[p] += mu_now() - t0;
}

double tr_prof_start0(void)
{
    return g_on && omp_get_thread_num() == 0 ? mu_now() : 0.0;
}

void tr_prof_move0(tr_prof_phase from, tr_prof_phase to, double t0)
{
    if (t0 == 0.0)
        return;
    double dt = mu_now() - t0;
    g_sec[from] -= dt;
    g_sec[to] += dt;
}
