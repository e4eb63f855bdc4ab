/* mu_grow.h - the one growable-array step: room for `need` elements, capacity doubling, so n
 * appends cost O(n) copies in all (amortised O(1) each). Part of mu_base (no I/O). */
#ifndef MU_GROW_H
#define MU_GROW_H

#include <stddef.h>

/* `pp` is the address of the array's pointer (any T *, NULL for an empty array), *cap its
 * capacity in elements of `elem` bytes. If need > *cap, reallocates to the larger of need,
 * twice *cap and `first` (the capacity of a first allocation) and updates *pp and *cap.
 * MU_OK (also when need <= *cap: nothing changes), or MU_ERR_NOMEM (allocation failed or the
 * size overflows) with *pp, the elements and *cap unchanged. */
int mu_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first);

/* mu_grow for a typed pointer p (T *p): MU_GROW(&p, &cap, need, first). */
#define MU_GROW(pp, cap, need, first) mu_grow((pp), (cap), (need), sizeof **(pp), (first))

#endif
