#include "mu_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *mu_strerror(int err)
{
    switch (err) {
    case MU_OK:
        return "success";
    case MU_ERR_NOMEM:
        return "out of memory";
    case MU_ERR_IO:
        return "input/output error";
    case MU_ERR_FORMAT:
        return "malformed input";
    case MU_ERR_INVALID:
        return "invalid argument";
    case MU_ERR_CRYPTO:
        return "cryptographic check failed";
    case MU_ERR_PROTOCOL:
        return "protocol violation";
    case MU_ERR_ABORT:
        return "protocol aborted";
    case MU_ERR_TIMEOUT:
        return "deadline passed";
    case MU_ERR_UNSUPPORTED:
        return "unsupported";
    case MU_ERR_NOTFOUND:
        return "not found";
    case MU_ERR_STATE:
        return "not allowed in this state";
    default:
        return "unknown error";
    }
}

int mu_diag_set(mu_diag *diag, int err, const char *fmt, ...)
{
    if (diag) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag->msg, sizeof diag->msg, fmt, ap);
        va_end(ap);
    }
    return err;
}
