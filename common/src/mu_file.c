#include "mu_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mu_read_file(const char *path, size_t max_len, char **out, size_t *len, mu_diag *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mu_diag_set(diag, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                           strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = MU_OK;
    for (;;) {
        if (n == cap) {
            /* Grow geometrically, but never past max_len + 1 (one byte to see "too long"). */
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > max_len + 1)
                ncap = max_len + 1;
            if (ncap <= cap) {
                rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: larger than %zu bytes", path, max_len);
                break;
            }
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = mu_diag_set(diag, MU_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (rc == MU_OK && n > max_len)
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: larger than %zu bytes", path, max_len);
    if (rc) {
        free(buf);
        return rc;
    }
    if (!buf && !(buf = malloc(1)))
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return MU_OK;
}
