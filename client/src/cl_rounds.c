/* cl_rounds.c - the durable once-per-round record of an org's masked inputs (cl_rounds.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_rounds.h"
#include "mu_grow.h"

struct cl_round_log {
    uint8_t fed[CL_FEDERATION_BYTES];
    char fed_hex[2 * CL_FEDERATION_BYTES + 1];
    uint64_t *rounds; /* (n) of this federation */
    size_t n, cap;
    int fd; /* -1: memory only */
    char *path;
};

/* Room for one more round. */
static int reserve(cl_round_log *l)
{
    return MU_GROW(&l->rounds, &l->cap, l->n + 1, 16);
}

static int remember(cl_round_log *l, uint64_t round)
{
    if (reserve(l) != MU_OK)
        return MU_ERR_NOMEM;
    l->rounds[l->n++] = round;
    return MU_OK;
}

/* Reads every line of the open file; keeps this federation's rounds. */
static int load(cl_round_log *l, mu_diag *diag)
{
    FILE *f = fdopen(dup(l->fd), "r");
    if (!f)
        return mu_diag_set(diag, MU_ERR_IO, "%s: %s", l->path, strerror(errno));
    char line[128];
    int rc = MU_OK;
    for (unsigned no = 1; rc == MU_OK && fgets(line, sizeof line, f); no++) {
        char hex[2 * CL_FEDERATION_BYTES + 1];
        uint64_t round;
        char end;
        if (sscanf(line, "%64[0-9a-f] %" SCNu64 "%c", hex, &round, &end) != 3 || end != '\n' ||
            strlen(hex) != 2 * CL_FEDERATION_BYTES)
            rc =
                mu_diag_set(diag, MU_ERR_FORMAT,
                            "%s:%u: not a round record ('<64 hex> <round>' expected)", l->path, no);
        else if (strcmp(hex, l->fed_hex) == 0 && remember(l, round) != MU_OK)
            rc = mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    }
    if (rc == MU_OK && ferror(f))
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: %s", l->path, strerror(errno));
    fclose(f);
    return rc;
}

cl_round_log *cl_round_log_open(const char *path, const uint8_t federation[CL_FEDERATION_BYTES],
                                mu_diag *diag)
{
    cl_round_log *l = calloc(1, sizeof *l);
    if (!l || (path && !(l->path = strdup(path)))) {
        free(l);
        mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(l->fed, federation, CL_FEDERATION_BYTES);
    sodium_bin2hex(l->fed_hex, sizeof l->fed_hex, l->fed, CL_FEDERATION_BYTES);
    l->fd = -1;
    if (!path)
        return l;
    l->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (l->fd < 0) {
        mu_diag_set(diag, MU_ERR_IO, "%s: cannot open the round record: %s", path, strerror(errno));
        cl_round_log_free(l);
        return NULL;
    }
    if (load(l, diag) != MU_OK) {
        cl_round_log_free(l);
        return NULL;
    }
    return l;
}

void cl_round_log_free(cl_round_log *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->rounds);
    free(l->path);
    free(l);
}

int cl_round_log_has(const cl_round_log *l, uint64_t round)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->rounds[i] == round)
            return 1;
    return 0;
}

int cl_round_log_add(cl_round_log *l, uint64_t round, mu_diag *diag)
{
    if (reserve(l) != MU_OK) /* first, so that the file never holds what memory does not */
        return mu_diag_set(diag, MU_ERR_NOMEM, "out of memory");
    if (l->fd >= 0) {
        char line[128];
        int len = snprintf(line, sizeof line, "%s %" PRIu64 "\n", l->fed_hex, round);
        if (write(l->fd, line, (size_t)len) != len || fsync(l->fd) != 0)
            return mu_diag_set(diag, MU_ERR_IO, "%s: cannot record round %" PRIu64 ": %s", l->path,
                               round, strerror(errno));
    }
    l->rounds[l->n++] = round;
    return MU_OK;
}
