/* co_types.h - plain data the coordinator's modules share: orgs, tensors, round metrics. */
#ifndef CO_TYPES_H
#define CO_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define CO_ORG_NAME_MAX    64 /* bytes, including the terminating NUL */
#define CO_ORG_PK_BYTES    32 /* Ed25519 public key (crypto_sign_PUBLICKEYBYTES) */
#define CO_HASH_BYTES      32 /* BLAKE2b-256 (crypto_generichash) */
#define CO_TENSOR_MAX_DIMS 4
#define CO_TENSOR_NAME_MAX 256 /* bytes, including the terminating NUL */

/* A registered organisation. `id` is the coordinator's handle for it (1, 2, ...; 0 is never
 * a valid id); `name` is its certificate name; `pk` its long-term Ed25519 identity key. */
typedef struct {
    uint32_t id;
    char name[CO_ORG_NAME_MAX];
    uint8_t pk[CO_ORG_PK_BYTES];
} co_org;

/* A named float tensor, row-major; `data` holds co_tensor_numel() floats. Who owns `name` and
 * `data` is said by the function that hands one out. */
typedef struct {
    const char *name;
    int ndim; /* 1 .. CO_TENSOR_MAX_DIMS */
    uint64_t shape[CO_TENSOR_MAX_DIMS];
    float *data;
} co_tensor;

static inline uint64_t co_tensor_numel(const co_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

typedef enum { CO_ROUND_TRAIN = 0, CO_ROUND_EVAL = 1 } co_round_kind;
typedef enum { CO_ROUND_COMPLETED = 0, CO_ROUND_ABORTED = 1 } co_round_outcome;

/* What one finished (or aborted) round did. `loss` is Σ loss·tokens / Σ tokens over the orgs
 * whose input made it into the sum (NaN when tokens is 0). Byte counts are the payload bytes
 * the round machine saw in and handed out; the driver adds its framing if it wants to. */
typedef struct {
    uint64_t round;
    uint8_t kind;    /* co_round_kind */
    uint8_t outcome; /* co_round_outcome */
    double loss;
    double tokens;
    uint32_t orgs_selected;
    uint32_t orgs_completed; /* whose input is in the sum */
    uint32_t orgs_dropped;   /* selected but dropped at some stage */
    uint64_t bytes_in;
    uint64_t bytes_out;
    double t_start, t_end; /* driver time, seconds */
    /* privacy (coordinator/include/co_privacy.h): the ε spent after this round at
     * privacy.delta, org level and record level, meaningful only where dp_tracked has bit 1
     * (org level) or 2 (record level; 0 = no DP); released: this round's sum was unmasked,
     * so it counts */
    double epsilon, record_epsilon;
    uint8_t dp_tracked;
    uint8_t released;
} co_metrics;

/* A selected org that stopped answering in a round: which, and the first stage it did not
 * answer (a wi_stage: TRAIN, ADVERTISE..UNMASK or EVAL), by its own LEAVE or by silence. */
typedef struct {
    uint32_t org_id;
    uint8_t stage;
    char name[CO_ORG_NAME_MAX];
} co_drop;

#endif
