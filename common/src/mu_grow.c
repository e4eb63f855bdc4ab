/* mu_grow.c - see mu_grow.h. */
#include "mu_grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mu_err.h"

int mu_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return MU_OK;
    size_t c = *cap > SIZE_MAX / 2 ? need : 2 * *cap;
    if (c < first)
        c = first;
    if (c < need)
        c = need;
    if (elem && c > SIZE_MAX / elem)
        return MU_ERR_NOMEM;
    void *old; /* *pp is some T *: read and write it as bytes, not through a void ** */
    memcpy(&old, pp, sizeof old);
    size_t bytes = c * elem;
    void *q = realloc(old, bytes ? bytes : 1);
    if (!q)
        return MU_ERR_NOMEM;
    memcpy(pp, &q, sizeof q);
    *cap = c;
    return MU_OK;
}
