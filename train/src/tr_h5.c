/* tr_h5.c - HDF5 error silencing and crash-safe replacement of HDF5 files. */
#include "tr_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tr_safetensors.h"

/* Serial HDF5 is not thread-safe: every HDF5 section of train/ holds this lock. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

void tr_h5_quiet_begin(tr_h5_quiet *q)
{
    pthread_mutex_lock(&h5_lock);
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void tr_h5_quiet_end(const tr_h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
    pthread_mutex_unlock(&h5_lock);
}

void tr_h5_tmp_path(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "%s.tmp", path);
}

int tr_h5_commit(const char *tmp, const char *path, mu_diag *diag)
{
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd)) {
        int rc = mu_diag_set(diag, MU_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return rc;
    }
    close(fd);
    if (rename(tmp, path)) {
        int rc = mu_diag_set(diag, MU_ERR_IO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    char *copy = strdup(path);
    if (!copy)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", path);
    int rc = tr_fsync_dir(dirname(copy), diag);
    free(copy);
    return rc;
}
