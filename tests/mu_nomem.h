/* mu_nomem.h - allocation-failure injection (and counting) for a test program linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc. Include it in exactly one source file of the
 * program: it defines the wrappers.
 *
 * Only allocations made while `nomem_on` is set (around calls into the library under test)
 * are counted; the one numbered `nomem_fail_at` (0-based) returns NULL, once. Calls from shared
 * libraries (libsodium, OpenBLAS, libc itself) are not wrapped. Single-threaded use only.
 *
 *   for (long k = 0;; k++) {
 *       nomem_arm(k);
 *       ...the scenario, each library call as NOMEM(rc = call(...))...
 *       if (!nomem_failed)
 *           break; (the scenario ran with no failure: every allocation was tried)
 *   }
 */
#ifndef MU_NOMEM_H
#define MU_NOMEM_H

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static int nomem_on;            /* count (and maybe fail) allocations now */
static long nomem_count;        /* allocations counted since nomem_arm */
static long nomem_fail_at = -1; /* the counted allocation that fails; -1: none */
static int nomem_failed;        /* that failure has happened */

/* Starts a run in which counted allocation `fail_at` fails (-1: only count). */
static inline void nomem_arm(long fail_at)
{
    nomem_count = 0;
    nomem_fail_at = fail_at;
    nomem_failed = 0;
}

static inline int nomem_fail_now(void)
{
    if (!nomem_on || nomem_count++ != nomem_fail_at)
        return 0;
    nomem_failed = 1;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return nomem_fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return nomem_fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return nomem_fail_now() ? NULL : __real_realloc(p, n);
}

/* Runs a statement with injection on: NOMEM(rc = lib_call(...)); */
#define NOMEM(stmt)                                                                                \
    do {                                                                                           \
        nomem_on = 1;                                                                              \
        stmt;                                                                                      \
        nomem_on = 0;                                                                              \
    } while (0)

#endif
