/* wi_push.c - Ed25519ph signatures of pushed messages. */
#include "wi_push.h"

#include <sodium.h>
#include <string.h>

#include "wi_bytes.h"
#include "wi_stage.h"

_Static_assert(WI_PUSH_SIG_BYTES == crypto_sign_BYTES, "signature size");
_Static_assert(WI_PUSH_SK_BYTES == crypto_sign_SECRETKEYBYTES, "secret key size");
_Static_assert(WI_PUSH_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "public key size");

static void push_prefix(crypto_sign_state *st, uint64_t org_id, uint64_t round, uint32_t stage)
{
    static const char tag[] = "mutual.v1.push";
    uint8_t hdr[sizeof tag - 1 + 20];
    memcpy(hdr, tag, sizeof tag - 1);
    mu_put_le64(hdr + sizeof tag - 1, org_id);
    mu_put_le64(hdr + sizeof tag - 1 + 8, round);
    mu_put_le32(hdr + sizeof tag - 1 + 16, stage);
    crypto_sign_init(st);
    crypto_sign_update(st, hdr, sizeof hdr);
}

void wi_push_sign(uint8_t sig[WI_PUSH_SIG_BYTES], const uint8_t sk[WI_PUSH_SK_BYTES],
                  uint64_t org_id, uint64_t round, uint32_t stage, const uint8_t *payload,
                  size_t len)
{
    crypto_sign_state st;
    push_prefix(&st, org_id, round, stage);
    crypto_sign_update(&st, payload, len);
    crypto_sign_final_create(&st, sig, NULL, sk);
    sodium_memzero(&st, sizeof st);
}

int wi_push_verify(const uint8_t sig[WI_PUSH_SIG_BYTES], const uint8_t pk[WI_PUSH_PK_BYTES],
                   uint64_t org_id, uint64_t round, uint32_t stage, const uint8_t *payload,
                   size_t len)
{
    crypto_sign_state st;
    push_prefix(&st, org_id, round, stage);
    crypto_sign_update(&st, payload, len);
    return crypto_sign_final_verify(&st, (unsigned char *)sig, pk) == 0 ? MU_OK : MU_ERR_CRYPTO;
}

uint32_t wi_push_stage(const co_task *t)
{
    return t->kind == CO_TASK_SECAGG ? t->stage : WI_STAGE_REPORT;
}
