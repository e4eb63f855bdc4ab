#include "mu_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* fsyncs the folder holding `path` (its entry for `path` made or removed). */
static int fsync_parent(const char *path, mu_diag *diag)
{
    char *copy = strdup(path);
    if (!copy)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
    const char *dir = dirname(copy);
    int rc = MU_OK;
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) < 0)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: fsync of the folder: %s", dir, strerror(errno));
    free(copy);
    return rc;
}

int mu_file_remove(const char *path, mu_diag *diag)
{
    if (unlink(path) < 0)
        return errno == ENOENT ? MU_OK
                               : mu_diag_set(diag, MU_ERR_IO, "%s: %s", path, strerror(errno));
    return fsync_parent(path, diag);
}

int mu_file_commit(const char *tmp, const char *path, mu_diag *diag)
{
    if (fsync_path(tmp, O_RDONLY) < 0) {
        int rc = mu_diag_set(diag, MU_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path) < 0) {
        int rc = mu_diag_set(diag, MU_ERR_IO, "%s: rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return fsync_parent(path, diag);
}

int mu_file_rename(const char *from, const char *to, mu_diag *diag)
{
    if (rename(from, to) < 0)
        return mu_diag_set(diag, MU_ERR_IO, "%s: rename to %s: %s", from, to, strerror(errno));
    return fsync_parent(to, diag);
}

int mu_write_file_atomic(const char *path, const void *buf, size_t len, mu_diag *diag)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + sizeof ".tmp");
    if (!tmp)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", sizeof ".tmp");
    int rc = MU_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out_free_tmp;
    }
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = mu_diag_set(diag, MU_ERR_IO, "%s: write: %s", tmp, strerror(errno));
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) && rc == MU_OK)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    if (rc) {
        unlink(tmp);
        goto out_free_tmp;
    }
    rc = mu_file_commit(tmp, path, diag);
out_free_tmp:
    free(tmp);
    return rc;
}
