/* tio_util.h - small file helpers for the train/ I/O tests (header-only, static). */
#ifndef TIO_UTIL_H
#define TIO_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TR_TEST_DATA_DIR
#error "TR_TEST_DATA_DIR must name tests/train"
#endif
#define TIO_REF TR_TEST_DATA_DIR "/ref"

/* A fresh folder under the test's working directory; removed by tio_rmdir. */
static inline void tio_mkdtemp(char *buf, size_t cap, const char *prefix)
{
    snprintf(buf, cap, "%s_XXXXXX", prefix);
    if (!mkdtemp(buf))
        abort();
}

static inline void tio_rmdir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd))
        abort();
}

static inline void tio_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f))
        abort();
}

/* The whole file (malloc'd) and its length; NULL and *len 0 when it cannot be opened. */
static inline unsigned char *tio_read(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static inline void tio_copy(const char *from, const char *to)
{
    size_t len;
    unsigned char *b = tio_read(from, &len);
    if (!b)
        abort();
    tio_write(to, b, len);
    free(b);
}

/* Writes dir/name with the text. */
static inline void tio_write_text(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tio_write(path, text, strlen(text));
}

/* Fails the test unless `msg` contains `want`. */
#define tio_assert_msg(msg, want)                                                                  \
    do {                                                                                           \
        if (!strstr((msg), (want)))                                                                \
            fail_msg("message '%s' does not contain '%s'", (msg), (want));                         \
    } while (0)

#endif
