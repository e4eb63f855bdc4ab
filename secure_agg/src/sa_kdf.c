/* sa_kdf.c - hashes, signed byte strings and key derivations, each domain-separated. */
#include <sodium.h>
#include <string.h>

#include "mu_bytes.h"
#include "sa_internal.h"

static void put32(crypto_generichash_state *st, uint32_t v)
{
    uint8_t b[4];
    mu_put_le32(b, v);
    crypto_generichash_update(st, b, 4);
}

static void put64(crypto_generichash_state *st, uint64_t v)
{
    uint8_t b[8];
    mu_put_le64(b, v);
    crypto_generichash_update(st, b, 8);
}

static void tag(crypto_generichash_state *st, const char *label)
{
    uint8_t t[16] = {0};
    memcpy(t, label, strlen(label) < 16 ? strlen(label) : 16);
    crypto_generichash_update(st, t, sizeof t);
}

int sa_config_hash(uint8_t out[SA_HASH_BYTES], const sa_config *cfg)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SA_HASH_BYTES);
    tag(&st, "mu-sa-config-v2");
    put64(&st, cfg->round_id);
    put32(&st, cfg->n);
    put32(&st, cfg->d);
    put32(&st, cfg->bits);
    put32(&st, cfg->k);
    put32(&st, cfg->t);
    crypto_generichash_update(&st, cfg->instance_nonce, SA_INSTANCE_NONCE_BYTES);
    for (uint32_t i = 0; i < cfg->n; i++) {
        put32(&st, cfg->org_ids[i]);
        crypto_generichash_update(&st, cfg->sign_pks[i], SA_SIGN_PK_BYTES);
    }
    crypto_generichash_final(&st, out, SA_HASH_BYTES);
    return MU_OK;
}

void sa_session_id(uint8_t out[SA_HASH_BYTES], const uint8_t cfg_hash[SA_HASH_BYTES],
                   const sa_key_entry *keys, size_t n)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SA_HASH_BYTES);
    tag(&st, "mu-sa-session-v2");
    crypto_generichash_update(&st, cfg_hash, SA_HASH_BYTES);
    put32(&st, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        put32(&st, keys[i].id);
        crypto_generichash_update(&st, keys[i].c_pk, SA_DH_PK_BYTES);
        crypto_generichash_update(&st, keys[i].s_pk, SA_DH_PK_BYTES);
        crypto_generichash_update(&st, keys[i].b_commit, SA_HASH_BYTES);
    }
    crypto_generichash_final(&st, out, SA_HASH_BYTES);
}

void sa_adv_signed_bytes(uint8_t out[SA_ADV_SIGNED_BYTES], const uint8_t cfg_hash[SA_HASH_BYTES],
                         const sa_key_entry *e)
{
    uint8_t *p = out;
    memset(p, 0, 16);
    memcpy(p, "mu-sa-adv-v2", 12);
    p += 16;
    memcpy(p, cfg_hash, SA_HASH_BYTES);
    p += SA_HASH_BYTES;
    memcpy(p, &e->id, 4);
    p += 4;
    memcpy(p, e->c_pk, SA_DH_PK_BYTES);
    p += SA_DH_PK_BYTES;
    memcpy(p, e->s_pk, SA_DH_PK_BYTES);
    p += SA_DH_PK_BYTES;
    memcpy(p, e->b_commit, SA_HASH_BYTES);
}

void sa_b_commit(uint8_t out[SA_HASH_BYTES], const uint8_t cfg_hash[SA_HASH_BYTES], uint32_t id,
                 const uint8_t b[SA_SECRET_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, cfg_hash, SA_HASH_BYTES, SA_HASH_BYTES);
    tag(&st, "mu-sa-bcommit-v1");
    put32(&st, id);
    crypto_generichash_update(&st, b, SA_SECRET_BYTES);
    crypto_generichash_final(&st, out, SA_HASH_BYTES);
}

void sa_survivors_digest(uint8_t out[SA_HASH_BYTES], const uint8_t session[SA_HASH_BYTES],
                         const uint32_t *ids, size_t n)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SA_HASH_BYTES);
    tag(&st, "mu-sa-survive-v1");
    crypto_generichash_update(&st, session, SA_HASH_BYTES);
    put32(&st, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put32(&st, ids[i]);
    crypto_generichash_final(&st, out, SA_HASH_BYTES);
}

/* BLAKE2b (outlen-byte output) keyed by the session id over label || DH output || context. */
static void derive(uint8_t *key, size_t outlen, const char *label,
                   const uint8_t session[SA_HASH_BYTES], const uint8_t dh[crypto_scalarmult_BYTES],
                   uint32_t a, uint32_t b)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, session, SA_HASH_BYTES, outlen);
    tag(&st, label);
    crypto_generichash_update(&st, dh, crypto_scalarmult_BYTES);
    put32(&st, a);
    put32(&st, b);
    crypto_generichash_final(&st, key, outlen);
    sodium_memzero(&st, sizeof st);
}

static int dh_derive(uint8_t *key, size_t outlen, const char *label,
                     const uint8_t session[SA_HASH_BYTES], const uint8_t sk[32],
                     const uint8_t pk[32], uint32_t a, uint32_t b)
{
    uint8_t dh[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(dh, sk, pk) != 0)
        return MU_ERR_CRYPTO;
    derive(key, outlen, label, session, dh, a, b);
    sodium_memzero(dh, sizeof dh);
    return MU_OK;
}

int sa_share_keys(uint8_t send[32], uint8_t recv[32], const uint8_t session[SA_HASH_BYTES],
                  const uint8_t my_c_sk[32], const uint8_t their_c_pk[32], uint32_t self,
                  uint32_t peer)
{
    uint8_t dh[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(dh, my_c_sk, their_c_pk) != 0)
        return MU_ERR_CRYPTO;
    derive(send, 32, "mu-sa-share-v1", session, dh, self, peer);
    derive(recv, 32, "mu-sa-share-v1", session, dh, peer, self);
    sodium_memzero(dh, sizeof dh);
    return MU_OK;
}

int sa_share_key(uint8_t key[32], const uint8_t session[SA_HASH_BYTES], const uint8_t my_c_sk[32],
                 const uint8_t their_c_pk[32], uint32_t sender, uint32_t recipient)
{
    return dh_derive(key, 32, "mu-sa-share-v1", session, my_c_sk, their_c_pk, sender, recipient);
}

void sa_share_ad(uint8_t ad[SA_SHARE_AD_BYTES], const uint8_t session[SA_HASH_BYTES],
                 uint32_t sender, uint32_t recipient)
{
    memcpy(ad, session, SA_HASH_BYTES);
    memcpy(ad + SA_HASH_BYTES, &sender, 4);
    memcpy(ad + SA_HASH_BYTES + 4, &recipient, 4);
}

int sa_pair_key(uint8_t key[SA_PRG_KEY_BYTES], const uint8_t session[SA_HASH_BYTES],
                const uint8_t my_s_sk[32], const uint8_t their_s_pk[32], uint32_t a, uint32_t b)
{
    uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
    /* v3: a 16-byte AES-128 key (BLAKE2b's output length is in its parameter block, so this
     * is not a prefix of the v2 32-byte key) */
    _Static_assert(SA_PRG_KEY_BYTES >= crypto_generichash_BYTES_MIN, "BLAKE2b output length");
    return dh_derive(key, SA_PRG_KEY_BYTES, "mu-sa-pair-v3", session, my_s_sk, their_s_pk, lo, hi);
}

void sa_self_key(uint8_t key[SA_PRG_KEY_BYTES], const uint8_t session[SA_HASH_BYTES],
                 const uint8_t b[SA_SECRET_BYTES], uint32_t id)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, session, SA_HASH_BYTES, SA_PRG_KEY_BYTES);
    tag(&st, "mu-sa-self-v3");
    crypto_generichash_update(&st, b, SA_SECRET_BYTES);
    put32(&st, id);
    crypto_generichash_final(&st, key, SA_PRG_KEY_BYTES);
    sodium_memzero(&st, sizeof st);
}
