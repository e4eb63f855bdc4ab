/* mu_log.h - leveled logging to stderr.
 *
 * Logs go to stderr, data to stdout. Never log a key, a share, a seed or a member's data.
 * Thread-safe: each call writes one line with a single fprintf.
 */
#ifndef MU_LOG_H
#define MU_LOG_H

typedef enum {
    MU_LOG_QUIET = 0, /* errors only */
    MU_LOG_ERROR = 0,
    MU_LOG_WARN = 1,
    MU_LOG_INFO = 2,
    MU_LOG_DEBUG = 3,
} mu_log_level;

/* Sets the process-wide level (default MU_LOG_INFO); messages above
 * it are dropped. */
void mu_log_set_level(mu_log_level level);
mu_log_level mu_log_get_level(void);

void mu_log(mu_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mu_error(...) mu_log(MU_LOG_ERROR, __VA_ARGS__)
#define mu_warn(...)  mu_log(MU_LOG_WARN, __VA_ARGS__)
#define mu_info(...)  mu_log(MU_LOG_INFO, __VA_ARGS__)
#define mu_debug(...) mu_log(MU_LOG_DEBUG, __VA_ARGS__)

#endif
