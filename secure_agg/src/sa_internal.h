/* sa_internal.h - building blocks shared by the client and server (not part of the API;
 * tests include it for known-answer checks). */
#ifndef SA_INTERNAL_H
#define SA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sa.h"
#include "sa_msg.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "secure_agg assumes a little-endian host (keystream words are read in place)"
#endif

/* ---- randomness ---- */
void sa_rng_fill(const sa_rng *rng, void *buf, size_t len);

/* The injected clock's time, or 0 without one (so differences, i.e. timings, are 0). */
static inline double sa_clock_now(const sa_clock *c)
{
    return c->now ? c->now(c->ctx) : 0.0;
}

/* ---- PRG masks ----
 * PRG(key)[i] is the little-endian uint32 at byte 4i of the AES-128-CTR keystream of the 16-byte
 * key with an all-zero initial counter block: keystream block j (values 4j..4j+3) is
 * AES-128_key(j as a 128-bit big-endian integer), i.e. OpenSSL's EVP_aes_128_ctr with a zero
 * IV. Every key is used for one vector only (keys are derived per session, pair and purpose;
 * at most SA_MAX_D / 4 = 2^28 blocks per key). docs/secure_agg.md "Cryptography" says why 128.
 * Three implementations give the same bits (tested against OpenSSL): VAES on 512-bit vectors,
 * AES-NI on 128-bit ones, and a portable constant-time one (no secret-indexed table: the S-box
 * is computed, GF(2^8) inversion as x^254 on eight bytes at a time); sa_init picks the fastest
 * the CPU runs (CPUID). */
#define SA_PRG_KEY_BYTES 16u
#define SA_PRG_ROUNDS    10u   /* AES-128 */
#define SA_PRG_CHUNK     2048u /* values per chunk: 8 KiB of the accumulator stays in L1 */
_Static_assert(SA_PRG_CHUNK % 4 == 0, "chunks start on keystream block boundaries");

typedef struct {
    uint8_t key[SA_PRG_KEY_BYTES];
    int sign; /* +1: add the mask, -1: subtract it */
    /* AES-128 round keys of key, filled by sa_prg_expand (or sa_prg_apply) */
    _Alignas(16) uint8_t rk[SA_PRG_ROUNDS + 1][16];
} sa_prg_term;

typedef enum { SA_PRG_PORTABLE = 0, SA_PRG_AESNI = 1, SA_PRG_VAES = 2 } sa_prg_path;

/* Picks the fastest path this CPU supports (called by sa_init; safe to call again). */
void sa_prg_select(void);
/* Test hook: use `path` from now on (process-wide). MU_ERR_UNSUPPORTED, nothing changed, if
 * this CPU (or build) cannot run it. */
int sa_prg_force(sa_prg_path path);
sa_prg_path sa_prg_current(void);
const char *sa_prg_path_name(sa_prg_path path); /* "portable", "aesni", "vaes" */

/* Fills terms[j].rk from terms[j].key for j < nterms. */
void sa_prg_expand(sa_prg_term *terms, size_t nterms);
/* acc[i] += sum_j sign_j * PRG(key_j)[off + i] for i < len, any off (terms expanded). */
void sa_prg_apply_range(uint32_t *acc, size_t off, size_t len, const sa_prg_term *terms,
                        size_t nterms);
/* Expands the terms, then the same over a whole vector of d values in SA_PRG_CHUNK chunks;
 * `threads` > 1 splits the chunks across OpenMP threads (each chunk owned by one thread:
 * bit-identical results). */
void sa_prg_apply(uint32_t *acc, size_t d, sa_prg_term *terms, size_t nterms, int threads);

/* One path's kernels (sa_prg.c dispatches; sa_prg_x86.c holds the vector ones). */
typedef struct {
    /* rk from a SA_PRG_KEY_BYTES-byte key */
    void (*expand)(uint8_t rk[SA_PRG_ROUNDS + 1][16], const uint8_t key[SA_PRG_KEY_BYTES]);
    /* acc[0 .. 4*nblocks) += (or -= when neg) keystream blocks blk .. blk+nblocks-1 */
    void (*add_blocks)(uint32_t *acc, uint64_t blk, size_t nblocks,
                       const uint8_t rk[SA_PRG_ROUNDS + 1][16], int neg);
} sa_prg_kernels;
/* NULL when the CPU (or the build) lacks the instructions. */
const sa_prg_kernels *sa_prg_kernels_aesni(void);
const sa_prg_kernels *sa_prg_kernels_vaes(void);

/* ---- Shamir over the ed25519 scalar field (order L ~ 2^252) ----
 * A 32-byte secret is two 16-byte limbs, each < 2^128 < L, shared with independent
 * polynomials of degree t-1; a share is the two evaluations (2 x 32 bytes, little-endian
 * canonical scalars). The x-coordinate of org id is id + 1 (never 0). */
void sa_scalar_from_u64(uint8_t s[SA_SCALAR_BYTES], uint64_t x);
/* y = sum_j coeffs[j] * x^j (Horner), coeffs is (t, 32). */
void sa_shamir_eval(uint8_t y[SA_SCALAR_BYTES], const uint8_t (*coeffs)[SA_SCALAR_BYTES],
                    uint32_t t, uint64_t x);
/* shares (m, 64) for the x-coordinates xs (m, distinct, nonzero). Random coefficients from
 * rng (drawn on the calling thread, so the shares do not depend on `threads`: > 1 evaluates on
 * that many OpenMP threads); MU_ERR_INVALID if t == 0 or t > m. Wipes its polynomials. */
int sa_shamir_split(uint8_t (*shares)[SA_SHARE_BYTES], const uint64_t *xs, size_t m, uint32_t t,
                    const uint8_t secret[SA_SECRET_BYTES], const sa_rng *rng, int threads);
/* Lagrange coefficients at 0 for the set xs (t, distinct, nonzero): lambda (t, 32).
 * MU_ERR_INVALID for a repeated or zero x. One field inversion per set. */
int sa_shamir_lagrange(uint8_t (*lambda)[SA_SCALAR_BYTES], const uint64_t *xs, size_t t);
/* secret = sum_i lambda_i * shares_i (per limb). MU_ERR_CRYPTO if a limb is >= 2^128 (a
 * corrupted share). shares is an array of t pointers to 64-byte shares. */
int sa_shamir_combine(uint8_t secret[SA_SECRET_BYTES], const uint8_t *const *shares,
                      const uint8_t (*lambda)[SA_SCALAR_BYTES], size_t t);

/* ---- hashes and derivations (all BLAKE2b-256, domain-separated) ---- */
int sa_config_hash(uint8_t out[SA_HASH_BYTES], const sa_config *cfg);
void sa_session_id(uint8_t out[SA_HASH_BYTES], const uint8_t cfg_hash[SA_HASH_BYTES],
                   const sa_key_entry *keys, size_t n);
/* The bytes an org signs to advertise its keys (len SA_ADV_SIGNED_BYTES). */
#define SA_ADV_SIGNED_BYTES (16u + SA_HASH_BYTES + 4u + 2u * SA_DH_PK_BYTES + SA_HASH_BYTES)
void sa_adv_signed_bytes(uint8_t out[SA_ADV_SIGNED_BYTES], const uint8_t cfg_hash[SA_HASH_BYTES],
                         const sa_key_entry *e);
/* The commitment to org id's self-mask seed b that its signed ADVERTISE carries; the server
 * checks a reconstructed b against it (a shifted share cannot change the sum silently). */
void sa_b_commit(uint8_t out[SA_HASH_BYTES], const uint8_t cfg_hash[SA_HASH_BYTES], uint32_t id,
                 const uint8_t b[SA_SECRET_BYTES]);
/* The digest an org signs in the consistency check: session id and the survivor set. */
void sa_survivors_digest(uint8_t out[SA_HASH_BYTES], const uint8_t session[SA_HASH_BYTES],
                         const uint32_t *ids, size_t n);
/* Key for the share ciphertext from sender to recipient; MU_ERR_CRYPTO on a bad public key. */
int sa_share_key(uint8_t key[32], const uint8_t session[SA_HASH_BYTES], const uint8_t my_c_sk[32],
                 const uint8_t their_c_pk[32], uint32_t sender, uint32_t recipient);
/* Both directions with one X25519: send = sa_share_key(.., self, peer), recv = sa_share_key(..,
 * peer, self). MU_ERR_CRYPTO on a bad key. */
int sa_share_keys(uint8_t send[32], uint8_t recv[32], const uint8_t session[SA_HASH_BYTES],
                  const uint8_t my_c_sk[32], const uint8_t their_c_pk[32], uint32_t self,
                  uint32_t peer);
#define SA_SHARE_AD_BYTES (SA_HASH_BYTES + 8u)
void sa_share_ad(uint8_t ad[SA_SHARE_AD_BYTES], const uint8_t session[SA_HASH_BYTES],
                 uint32_t sender, uint32_t recipient);
/* PRG key of the pairwise mask between ids a and b (symmetric). MU_ERR_CRYPTO on a bad key. */
int sa_pair_key(uint8_t key[SA_PRG_KEY_BYTES], const uint8_t session[SA_HASH_BYTES],
                const uint8_t my_s_sk[32], const uint8_t their_s_pk[32], uint32_t a, uint32_t b);
/* PRG key of org id's self mask from its seed b. */
void sa_self_key(uint8_t key[SA_PRG_KEY_BYTES], const uint8_t session[SA_HASH_BYTES],
                 const uint8_t b[SA_SECRET_BYTES], uint32_t id);

/* ---- neighbour graph over the advertisers U1 (ids ascending) ----
 * Complete when k >= m-1; else a Harary ring H(k, m) (k even) over positions ordered by
 * BLAKE2b(key, id). Both sides build it over the whole cohort with key = the config hash,
 * fixed before any key is advertised: fresh keys and left-out advertisers move no one. */
typedef struct {
    uint32_t m;     /* number of orgs */
    uint32_t k_eff; /* neighbours per org */
    uint32_t *pos;  /* (m) ring position of the org at sorted index i */
    uint32_t *at;   /* (m) sorted index of the org at ring position p */
} sa_graph;

int sa_graph_build(sa_graph *g, const uint8_t session[SA_HASH_BYTES], uint32_t m,
                   const uint32_t *ids, uint32_t k);
void sa_graph_deinit(sa_graph *g);
int sa_graph_adjacent(const sa_graph *g, uint32_t i, uint32_t j);
/* Neighbours of sorted index i as sorted indices, ascending; out has room for k_eff. */
uint32_t sa_graph_neighbours(const sa_graph *g, uint32_t i, uint32_t *out);

/* ---- id sets ---- */
/* Index of id in the ascending array ids (n), or -1. */
long sa_ids_find(const uint32_t *ids, size_t n, uint32_t id);
int sa_ids_ascending(const uint32_t *ids, size_t n);

/* ---- client introspection (tests only) ---- */
/* Which round secrets client c still holds (any byte nonzero): bit 0 c_sk, bit 1 s_sk, bit 2 b,
 * bit 3 the keys of its neighbours' share ciphertexts (derived at SHARE, used at DELIVERY).
 * After its masked upload a client holds none of them. */
unsigned sa_client_secrets_held(const sa_client *c);

/* ---- outbox ---- */
int sa_outbox_push(sa_outbox *ob, uint32_t to, uint8_t *bytes, size_t len);
int sa_outbox_push_msg(sa_outbox *ob, uint32_t to, const sa_msg *m);

#endif
