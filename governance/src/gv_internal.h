/* gv_internal.h - checks shared by the governance sources. Private. The *_ok checks return 1
 * if the signature verifies under the named key, else 0. */
#ifndef GV_INTERNAL_H
#define GV_INTERNAL_H

#include "gv_log.h"
#include "wi_bytes.h"

/* "mutual audit v1" || e's encoding without the signature, in a new buffer. */
int gv_entry_signed_bytes(const gv_entry *e, uint8_t **out, size_t *len, mu_diag *diag);
/* 1 if e->sig verifies under pk, 0 if not, or a negative code (MU_ERR_NOMEM) when it could
 * not be checked. */
int gv_entry_sig_ok(const gv_entry *e, const uint8_t pk[GV_PK_BYTES]);
/* The previous-entry hash an encoded entry holds (the fixed header put_body writes). */
int gv_entry_prev(const uint8_t *b, size_t n, uint8_t prev[GV_HASH_BYTES]);
/* gv_signed_count for a charter whose hash the caller computed (allocates nothing). */
uint32_t gv_signed_count_hash(const gv_signed *s, const uint8_t hash[GV_HASH_BYTES],
                              const gv_charter *voters, int all_members);

int gv_leave_sig_ok(const uint8_t sig[GV_SIG_BYTES], const uint8_t log_id[GV_HASH_BYTES],
                    const char *name, const uint8_t pk[GV_PK_BYTES]);

#endif
