/* wi_push.h - the signed-push envelope: what an org signs over each message it pushes.
 *
 * Ed25519ph (crypto_sign_init/update/final) over
 *   "mutual.v1.push" | org_id (u64) | round (u64) | stage (u32) | payload      little-endian
 * so a signature cannot be replayed for another org, round or stage. `stage` is the
 * secure-aggregation stage of a SECAGG message or WI_STAGE_REPORT for a READY/EVAL report
 * (wi_push_stage). The transport carries the 64-byte signature beside the payload.
 */
#ifndef WI_PUSH_H
#define WI_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "co_wire.h"

#define WI_PUSH_SIG_BYTES 64u /* crypto_sign_BYTES */
#define WI_PUSH_SK_BYTES  64u /* Ed25519 secret key, libsodium layout */
#define WI_PUSH_PK_BYTES  32u /* Ed25519 public key */

/* Signs; sk is read only. Never fails. */
void wi_push_sign(uint8_t sig[WI_PUSH_SIG_BYTES], const uint8_t sk[WI_PUSH_SK_BYTES],
                  uint64_t org_id, uint64_t round, uint32_t stage, const uint8_t *payload,
                  size_t len);

/* MU_OK if sig is pk's signature over exactly these fields, else MU_ERR_CRYPTO. */
int wi_push_verify(const uint8_t sig[WI_PUSH_SIG_BYTES], const uint8_t pk[WI_PUSH_PK_BYTES],
                   uint64_t org_id, uint64_t round, uint32_t stage, const uint8_t *payload,
                   size_t len);

/* The stage an org's answer to t is pushed under: t's stage for SECAGG, else
 * WI_STAGE_REPORT. */
uint32_t wi_push_stage(const co_task *t);

#endif
