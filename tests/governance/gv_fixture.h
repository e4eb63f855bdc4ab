/* gv_fixture.h - a three-member federation (alpha, beta, gamma: voting members) with
 * deterministic keys, for the governance tests. */
#ifndef GV_FIXTURE_H
#define GV_FIXTURE_H

#include "gv_log.h"

enum { FX_MEMBERS = 3, FX_KEYS = 6 };

/* Keys 0..2: alpha, beta, gamma; 3: the coordinator; 4: a newcomer (omega, or delta in the log
 * tests); 5: an outsider. */
extern uint8_t fx_pk[FX_KEYS][GV_PK_BYTES];
extern uint8_t fx_sk[FX_KEYS][GV_SK_BYTES];

void fx_keys(void);
/* Genesis: alpha, beta, gamma; admit 2-of-3, change_config majority, release 2-of-3,
 * change_coordinator 3-of-3; min cohort 2; training hash 0x11... */
void fx_genesis(gv_charter *c);
/* The next version of parent (version + 1, parent hash set), otherwise the same. */
void fx_next(gv_charter *next, const gv_charter *parent);
/* Signs s->charter with the keys whose indices are in `who` (terminated by -1). */
void fx_sign(gv_signed *s, const int *who);

#endif
