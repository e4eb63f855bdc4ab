/* mu_file.h - small whole-file reads for configs, JSON headers and the like. */
#ifndef MU_FILE_H
#define MU_FILE_H

#include <stddef.h>

#include "mu_err.h"

/* Reads the whole file at `path` (at most max_len bytes) into a NUL-terminated buffer that
 * the caller frees with free(); *len (may be NULL) receives its length without the NUL.
 * Returns MU_OK, MU_ERR_NOTFOUND (no such file), MU_ERR_IO (cannot open or read),
 * MU_ERR_FORMAT (larger than max_len) or MU_ERR_NOMEM, with "PATH: what" in diag; on error
 * *out is untouched and nothing is allocated. */
int mu_read_file(const char *path, size_t max_len, char **out, size_t *len, mu_diag *diag);

#endif
