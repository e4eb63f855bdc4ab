/* fault_write.c - a full disk on demand, for tests: while MU_FAULT_ENOSPC is set to a
 * non-empty string, write(), pwrite() and pwrite64() on a file whose path contains that
 * string fail with ENOSPC when they would put bytes past offset MU_FAULT_ENOSPC_AT of the
 * file (default 0: every such write fails; e.g. 4096 lets a file grow to 4 KiB, as on a
 * nearly full disk). Everything else passes through to the next definition (libc, or the
 * sanitizer's interceptor).
 *
 * Two uses: linked into a test program (its definitions win over libc's for the program and
 * every library it loads, HDF5 included), or built as a module and loaded with LD_PRELOAD
 * into `mutual` (with ASan add verify_asan_link_order=0 to ASAN_OPTIONS). The variable is
 * read on every call, so a test can switch the fault on and off with setenv/unsetenv. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);

/* 1 when writing n bytes at offset off (-1: the current one) of fd must fail. */
static int full(int fd, size_t n, off_t off)
{
    const char *pat = getenv("MU_FAULT_ENOSPC");
    if (!pat || !*pat)
        return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len < 0)
        return 0;
    path[len] = 0;
    if (!strstr(path, pat))
        return 0;
    const char *at = getenv("MU_FAULT_ENOSPC_AT");
    long long limit = at ? atoll(at) : 0;
    if (off < 0 && (off = lseek(fd, 0, SEEK_CUR)) < 0)
        off = 0;
    return (long long)off + (long long)n > limit;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

/* The definition this file hides: libc's, or the sanitizer's interceptor. */
static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort(); /* the test cannot run without it */
    return f;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static write_fn real;
    if (!real)
        *(void **)&real = next("write");
    if (full(fd, n, -1)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, n);
}

/* pwrite and pwrite64 (the same call on 64-bit glibc, two symbols): real is the one hidden. */
static ssize_t faulty_pwrite(pwrite_fn *real, const char *name, int fd, const void *buf, size_t n,
                             off_t off)
{
    if (!*real)
        *(void **)real = next(name);
    if (full(fd, n, off)) {
        errno = ENOSPC;
        return -1;
    }
    return (*real)(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static pwrite_fn real;
    return faulty_pwrite(&real, "pwrite", fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    static pwrite_fn real;
    return faulty_pwrite(&real, "pwrite64", fd, buf, n, off);
}
