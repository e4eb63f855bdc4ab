/* mu_file.h - small whole-file reads, and crash-safe replacement of files. */
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

/* Makes a finished temporary file the file at `path`, crash-safely: fsyncs `tmp`, renames it
 * over `path`, fsyncs the folder holding `path`. After a crash at any moment, `path` holds
 * either its old or its new content. On failure `tmp` is removed. MU_OK, MU_ERR_IO or
 * MU_ERR_NOMEM, with the file and reason in diag. */
int mu_file_commit(const char *tmp, const char *path, mu_diag *diag);

/* Renames `from` to `to` crash-safely (rename, then fsync of the folder holding `to`); on
 * failure `from` is left as it was. MU_OK, MU_ERR_IO or MU_ERR_NOMEM with the reason in
 * diag. */
int mu_file_rename(const char *from, const char *to, mu_diag *diag);

/* Removes the file at `path` crash-safely (unlink, then fsync of its folder); no such file is
 * MU_OK. MU_OK, MU_ERR_IO or MU_ERR_NOMEM with the reason in diag. */
int mu_file_remove(const char *path, mu_diag *diag);

/* Writes `len` bytes to `path` the same way: PATH.tmp, then mu_file_commit. */
int mu_write_file_atomic(const char *path, const void *buf, size_t len, mu_diag *diag);

#endif
