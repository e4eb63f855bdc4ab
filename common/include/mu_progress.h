/* mu_progress.h - a one-line progress bar on stderr, drawn only when stderr is a terminal
 * and the log level is info or more verbose. Not thread-safe: one thread owns a bar. */
#ifndef MU_PROGRESS_H
#define MU_PROGRESS_H

typedef struct {
    char label[32];
    long total;
    int enabled;
    double t0;        /* seconds, monotonic */
    double last_draw; /* seconds, monotonic */
} mu_progress;

void mu_progress_init(mu_progress *p, const char *label, long total);
/* Redraws at most 10 times a second; `extra` (may be NULL) is shown after the bar. */
void mu_progress_update(mu_progress *p, long done, const char *extra);
/* Draws the final state and ends the line. */
void mu_progress_finish(mu_progress *p, const char *extra);

/* Monotonic seconds, for timing. */
double mu_now(void);

#endif
