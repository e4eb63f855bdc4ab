/* mu_err.h - error codes shared by every mutual module.
 *
 * Functions return 0 on success or one of these negative codes. A constructor that fails
 * returns NULL and changes nothing. Library code never exits; only the CLI turns codes
 * into exit statuses (mu_exit_code).
 */
#ifndef MU_ERR_H
#define MU_ERR_H

enum {
    MU_OK = 0,
    MU_ERR_NOMEM = -1,       /* an allocation failed */
    MU_ERR_IO = -2,          /* a file or socket operation failed */
    MU_ERR_FORMAT = -3,      /* input bytes are malformed (file or message) */
    MU_ERR_INVALID = -4,     /* an argument or config value is out of range */
    MU_ERR_CRYPTO = -5,      /* a signature, MAC or key check failed */
    MU_ERR_PROTOCOL = -6,    /* a peer broke the protocol (wrong stage, replay, ...) */
    MU_ERR_ABORT = -7,       /* the protocol aborted safely (too few survivors, ...) */
    MU_ERR_TIMEOUT = -8,     /* a deadline passed */
    MU_ERR_UNSUPPORTED = -9, /* valid input that this version does not handle */
    MU_ERR_NOTFOUND = -10,   /* a named file, tensor or key does not exist */
    MU_ERR_STATE = -11,      /* call not allowed in the object's current state */
};

/* A static, human-readable description of an error code. Never NULL. */
const char *mu_strerror(int err);

/* Process exit statuses used by the CLI. */
enum { MU_EXIT_OK = 0, MU_EXIT_FAIL = 1, MU_EXIT_USAGE = 2 };

/* A message buffer that functions fill with "what went wrong" (naming files, lines,
 * tensors). Functions that take a `mu_diag *` may be passed NULL. */
typedef struct {
    char msg[512];
} mu_diag;

/* printf-style: set diag->msg if diag is not NULL. Returns `err` so callers can write
 * `return mu_diag_set(d, MU_ERR_FORMAT, "%s: bad header", path);`. */
int mu_diag_set(mu_diag *diag, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
