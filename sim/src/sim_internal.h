/* sim_internal.h - helpers shared inside sim/. */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

#include <inttypes.h>

#include "sim.h"

/* SplitMix64's mixing function, and a uniform double in [0, 1) from a counter state. */
uint64_t sim_mix64(uint64_t x);
double sim_uniform(uint64_t *state);

#endif
