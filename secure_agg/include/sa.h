/* sa.h - dropout-tolerant secure aggregation (SecAgg / SecAgg+), sans-IO.
 *
 * Bonawitz et al. 2017 double masking on the neighbour graph of Bell et al. 2020. The
 * coordinator (server) learns only the sum mod 2^bits of the survivors' quantised vectors.
 * Nothing here opens a socket, reads a clock, logs or starts a thread: a driver (the gRPC
 * layer or the in-process simulator) carries the opaque message bytes and tells the server
 * when a stage's deadline has passed. The timing fields for benchmarks read a clock only if
 * the driver injects one (sa_config.clock).
 *
 * One round, as the driver sees it (every arrow is one opaque byte string):
 *
 *   stage 1 ADVERTISE   each client: sa_client_start()      -> ADVERTISE   -> server
 *                       close_stage(SA_STAGE_ADVERTISE)       -> KEYS        -> each advertiser
 *   stage 2 SHARE       client handles KEYS                   -> SHARES      -> server
 *                       close_stage(SA_STAGE_SHARE)           -> DELIVERY    -> each sharer
 *   stage 3 MASKED      client handles DELIVERY (input set)   -> MASKED      -> server
 *                       close_stage(SA_STAGE_MASKED)          -> SURVIVORS   -> each uploader
 *   stage 4 CONSISTENCY client handles SURVIVORS              -> CONSIST_SIG -> server
 *                       close_stage(SA_STAGE_CONSISTENCY)     -> UNMASK_REQ  -> each signer
 *   stage 5 UNMASK      client handles UNMASK_REQ             -> UNMASK      -> server
 *                       close_stage(SA_STAGE_UNMASK)          -> sum ready (sa_server_result)
 *
 * The driver may close a stage when its deadline passes or as soon as
 * sa_server_pending() == 0 (everyone expected has answered). A message that arrives for a
 * closed stage is refused with MU_ERR_TIMEOUT and has no effect: its sender counts as dropped.
 *
 * Thread-safety: one sa_client or sa_server is owned by one thread at a time; distinct
 * objects may be used concurrently from any threads (no shared mutable state after
 * sa_init(); sa_init itself picks the mask PRG's implementation by CPUID). By default nothing
 * starts a thread; a driver may opt in to OpenMP for a client's per-neighbour work and mask
 * expansion and the server's unmasking (sa_client_set_threads, sa_server_set_threads), and
 * results are bit-identical for any thread count.
 *
 * Secrets (key pairs, seeds, shares) live only inside the objects, are wiped with
 * sodium_memzero when no longer needed and by the _free functions, and are never logged.
 */
#ifndef SA_H
#define SA_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"

/* ---- sizes ------------------------------------------------------------------------- */

#define SA_HASH_BYTES           32u /* config hash, session id */
#define SA_SIGN_PK_BYTES        32u /* Ed25519 public key */
#define SA_SIGN_SK_BYTES        64u /* Ed25519 secret key (libsodium layout) */
#define SA_SIG_BYTES            64u /* Ed25519 signature */
#define SA_DH_PK_BYTES          32u /* X25519 public key */
#define SA_SECRET_BYTES         32u /* self-mask seed b, mask secret key s_sk */
#define SA_SCALAR_BYTES         32u /* one ed25519 scalar field element */
#define SA_LIMB_BYTES           16u /* a secret is split into 2 limbs of 16 bytes (< 2^128 < L) */
#define SA_SHARE_BYTES          64u /* a Shamir share of one secret: 2 field elements */
#define SA_NONCE_BYTES          24u /* XChaCha20-Poly1305 nonce */
#define SA_MAC_BYTES            16u
#define SA_SHARE_PT_BYTES       (2u * SA_SHARE_BYTES) /* share of b, share of s_sk */
#define SA_SHARE_CT_BYTES       (SA_NONCE_BYTES + SA_SHARE_PT_BYTES + SA_MAC_BYTES)
#define SA_INSTANCE_NONCE_BYTES 16u         /* sa_config.instance_nonce */
#define SA_MAX_ORGS             65536u      /* cohort size limit */
#define SA_MAX_D                (1u << 30)  /* values per vector limit */
#define SA_TO_SERVER            0xFFFFFFFFu /* sa_envelope.to for client->server; not an org id */
#define SA_TO_ALL               0xFFFFFFFEu /* sa_envelope.to: a copy to each of sa_server_recipients */
#define SA_WIRE_VERSION         4u /* 2: b commitment in ADVERTISE, KEYS; 3: AES-256, 4: AES-128 masks */

_Static_assert(SA_SECRET_BYTES == 2 * SA_LIMB_BYTES, "a secret is two limbs");
_Static_assert(SA_SHARE_BYTES == 2 * SA_SCALAR_BYTES, "a share is one scalar per limb");
_Static_assert(SA_SHARE_CT_BYTES == 168, "share ciphertext layout");

/* Calls sodium_init(). Call once before anything else; safe to call again. Returns MU_OK or
 * MU_ERR_CRYPTO when libsodium cannot initialise. */
int sa_init(void);

/* A static description of `err` with this module's wording; falls back to mu_strerror. */
const char *sa_strerror(int err);

/* ---- randomness -------------------------------------------------------------------- */

/* Injectable randomness: fill(ctx, buf, len) must write len unpredictable bytes. A NULL
 * `fill` (or a NULL sa_rng pointer) means libsodium's randombytes_buf. */
typedef struct {
    void (*fill)(void *ctx, void *buf, size_t len);
    void *ctx;
} sa_rng;

/* A deterministic generator for tests and simulations (ChaCha20 keystream of `seed`).
 * NOT for production secrets unless the seed itself is secret and used once. */
typedef struct {
    uint8_t key[32];
    uint64_t counter; /* 64-byte blocks used so far */
} sa_rng_seeded;

void sa_rng_seeded_init(sa_rng_seeded *st, const uint8_t seed[32]);
/* An sa_rng that draws from `st` (which must outlive it). */
sa_rng sa_rng_from_seeded(sa_rng_seeded *st);

/* ---- round configuration ----------------------------------------------------------- */

/* Injectable clock for the timing fields (sa_client_times, sa_server_times): now(ctx) gives
 * seconds from any fixed origin. A NULL `now` means no timing: the fields stay 0. */
typedef struct {
    double (*now)(void *ctx);
    void *ctx;
} sa_clock;

/* Everything the cohort agrees on before stage 1. All arrays are borrowed: sa_client_new and
 * sa_server_new copy what they need. */
typedef struct {
    uint64_t round_id;
    uint32_t n;                                  /* cohort size, 2..SA_MAX_ORGS */
    const uint32_t *org_ids;                     /* (n) distinct, all < SA_TO_ALL */
    const uint8_t (*sign_pks)[SA_SIGN_PK_BYTES]; /* (n) Ed25519 identity keys, same order */
    uint32_t d;                                  /* values per vector, 0..SA_MAX_D */
    uint32_t bits;                               /* 1..32: arithmetic is mod 2^bits */
    uint32_t k; /* neighbours per org; >= n-1 means the complete graph; else even */
    uint32_t t; /* Shamir threshold among an org's neighbours */
    /* Fresh per coordinator instance (all zero = none), hashed into the config hash that every
     * ADVERTISE signs: a restarted coordinator that draws a new one refuses advertisements
     * recorded before its restart (they no longer verify). Must reach the orgs with the task. */
    uint8_t instance_nonce[SA_INSTANCE_NONCE_BYTES];
    /* A client's own extra minimum of survivors, 0..n (0 = none; not hashed, not agreed): it
     * refuses a survivor set smaller than max(sa_min_survivors(n, t), min_survivors) and
     * reveals nothing. An org whose input carries distributed noise scaled for m survivors
     * sets m here, so the sum of fewer inputs is never unmasked. The server ignores it. */
    uint32_t min_survivors;
    sa_clock clock; /* optional, not part of the agreed config: times this side's work */
} sa_config;

/* Each org's secrets are shared among its k_eff = min(k, n-1) neighbours and itself, so
 * k_eff+1 holders. Minimums that both sides enforce (docs/secure_agg.md), every client for
 * itself whatever the task says:
 *   degree    k >= sa_min_degree(n) = min(n-1, max(4, ceil(log2 n)))
 *   threshold t >= sa_min_threshold(n, k_eff) = floor((k_eff+1+c)/2)+1, i.e. 2t > k_eff+1+c,
 *             with c = sa_max_colluders(n, k_eff): a coordinator that shows different survivor
 *             sets to different holders, joined by c colluding holders, never collects t shares
 *             of both b and s_sk of one org (each honest holder reveals one kind only)
 * and t <= k_eff+1. c is the most colluding neighbours any of the n orgs has except with
 * probability 2^-sigma under the default parameters (gamma 0.05, sigma 40), capped at
 * floor(k_eff/3) (for small cohorts the claim is that deterministic count). */
uint32_t sa_min_degree(uint32_t n);
uint32_t sa_min_threshold(uint32_t n, uint32_t k_eff);
uint32_t sa_max_colluders(uint32_t n, uint32_t k_eff);
/* The most neighbours an org lets drop (not share with it, or not upload) before it aborts:
 * the default dropout assumption (delta 0.1) bound at 2^-eta (eta 20) over the n orgs. More
 * dropped neighbours than this is a coordinator carving a small neighbourhood, not chance. */
uint32_t sa_max_dropped(uint32_t n, uint32_t k_eff);
/* The fewest survivors (masked inputs in the sum) an org accepts: t, and n minus the dropouts
 * the default assumption allows over the whole cohort (delta at 2^-eta). Fewer is a
 * coordinator carving out a small sum, and every org aborts before revealing anything. */
uint32_t sa_min_survivors(uint32_t n, uint32_t t);

/* Checks ranges, distinct ids, k even (or complete), and the minimums above. Returns MU_OK
 * or MU_ERR_INVALID with the reason in diag. */
int sa_config_check(const sa_config *cfg, mu_diag *diag);

/* The stated parameters from which the recommended (k, t) are chosen. */
typedef struct {
    double corrupt_frac; /* gamma: fraction of orgs that may collude with the coordinator */
    double drop_frac;    /* delta: fraction of orgs that may drop out during the round */
    double sigma_bits;   /* security: P[some honest org has >= t corrupt neighbours] <= 2^-sigma */
    double eta_bits;     /* correctness: P[some org keeps < t live neighbours] <= 2^-eta */
} sa_graph_params;

/* The defaults used by `mutual`: gamma 0.05, delta 0.1, sigma 40, eta 20 (numbers for
 * n = 10, 100, 1000, 10000 in docs/secure_agg.md). */
sa_graph_params sa_graph_params_default(void);

/* Chooses the smallest even k (or the complete graph) and a threshold t for a cohort of n
 * (binomial tails with a union bound over the n orgs): c = the colluding neighbours bound at
 * 2^-sigma must be at most k/3, t >= floor((k+1+c)/2)+1, and P[some org keeps < t live
 * holders] <= 2^-eta. When no ring qualifies: the complete graph with t =
 * sa_min_threshold(n, n-1). Returns MU_OK, or MU_ERR_INVALID for out-of-range parameters. */
int sa_graph_choose(uint32_t n, const sa_graph_params *p, uint32_t *k, uint32_t *t);

/* What a (n, k, t) promises under p (the threat-model table in docs/secure_agg.md). */
typedef struct {
    uint32_t k_eff, t;
    uint32_t c;           /* colluders the minimum threshold is built for (sa_max_colluders) */
    uint32_t c_sigma;     /* colluding neighbours bound at 2^-sigma, uncapped */
    int32_t c_holds;      /* largest c with 2t > k_eff+1+c (-1: not even the coordinator alone) */
    uint32_t max_dropped; /* sa_max_dropped */
    uint32_t dropped_ok;  /* neighbours that may drop with the round still completing */
    double sec_log2;      /* log2 P[some org has > c_holds colluding neighbours] (<= 0) */
    double cor_log2;      /* log2 P[some org loses > dropped_ok neighbours by chance] (<= 0) */
} sa_graph_claim;

int sa_graph_claim_of(uint32_t n, uint32_t k, uint32_t t, const sa_graph_params *p,
                      sa_graph_claim *out);

/* ---- stages and outgoing messages -------------------------------------------------- */

typedef enum {
    SA_STAGE_ADVERTISE = 1,
    SA_STAGE_SHARE = 2,
    SA_STAGE_MASKED = 3,
    SA_STAGE_CONSISTENCY = 4,
    SA_STAGE_UNMASK = 5,
    SA_STAGE_DONE = 6,
    SA_STAGE_ABORTED = 7,
} sa_stage;

/* "advertise", "share", "masked", "consistency", "unmask", "done", "aborted" (for logs). */
const char *sa_stage_name(sa_stage stage);

/* One encoded message and where it goes: an org id, SA_TO_SERVER, or SA_TO_ALL. */
typedef struct {
    uint32_t to;
    uint8_t *bytes; /* owned by the outbox */
    size_t len;
} sa_envelope;

/* Messages produced by one call. Calls append; the driver delivers and then clears. */
typedef struct {
    sa_envelope *items; /* (count) */
    size_t count, cap;
} sa_outbox;

void sa_outbox_init(sa_outbox *ob);
void sa_outbox_clear(sa_outbox *ob);  /* frees every message, keeps the array */
void sa_outbox_deinit(sa_outbox *ob); /* frees everything; ob may then be init'ed again */

/* ---- client (one org) ---------------------------------------------------------------- */

typedef struct sa_client sa_client;

/* A client for org `self_id` in `cfg`, signing with its long-term Ed25519 secret key (copied
 * and wiped on free). `rng` may be NULL (system randomness); it is copied (its ctx must
 * outlive the client). Refuses (NULL, MU_ERR_INVALID reason in diag) a config failing
 * sa_config_check, or an id not in the cohort, or a key not matching cfg's public key.
 * The caller owns the result. */
sa_client *sa_client_new(const sa_config *cfg, uint32_t self_id,
                         const uint8_t sign_sk[SA_SIGN_SK_BYTES], const sa_rng *rng, mu_diag *diag);
void sa_client_free(sa_client *c); /* wipes secrets; NULL is a no-op */

/* Sets the quantised input: d values in [0, 2^bits) (see sa_quant_encode), copied into a
 * buffer the client holds only until its masked upload (so a simulator with many clients
 * can set each input just before DELIVERY). Must be called before DELIVERY arrives. MU_ERR_INVALID
 * if len != cfg.d or a value has bits set at or above `bits`; MU_ERR_STATE once the masked input
 * has been sent. */
int sa_client_set_input(sa_client *c, const uint32_t *q, size_t len);

/* Stage 1: makes the two X25519 key pairs and appends the signed ADVERTISE. MU_ERR_STATE if
 * called twice. */
int sa_client_start(sa_client *c, sa_outbox *out, mu_diag *diag);

/* Handles one message from the server and appends the reply (if any) to `out`.
 * Returns MU_OK, or:
 *   MU_ERR_FORMAT   bytes malformed, or from another round/session: ignored, nothing changed
 *   MU_ERR_STATE    a message for another stage (duplicate, replay), or DELIVERY before
 *                   sa_client_set_input: ignored, nothing changed (deliver it again later)
 *   MU_ERR_CRYPTO   a signature or MAC failed (substituted key, edited/moved ciphertext)
 *   MU_ERR_PROTOCOL the server broke the protocol (inconsistent survivor sets, unknown ids,
 *                   a second unmask request, i.e. asking for both shares of someone)
 *   MU_ERR_ABORT    too few neighbours/survivors left to continue safely
 *   MU_ERR_NOMEM
 * After CRYPTO, PROTOCOL or ABORT the client is in SA_STAGE_ABORTED with its secrets wiped
 * and answers nothing more; exception: a refused second unmask request leaves a client that
 * has already answered in SA_STAGE_DONE. */
int sa_client_handle(sa_client *c, const uint8_t *msg, size_t len, sa_outbox *out, mu_diag *diag);

/* The stage of the client's next reply: SA_STAGE_ADVERTISE before sa_client_start,
 * SA_STAGE_SHARE while it waits for KEYS, SA_STAGE_MASKED for DELIVERY, SA_STAGE_CONSISTENCY
 * for SURVIVORS, SA_STAGE_UNMASK for UNMASK_REQ, then SA_STAGE_DONE (or SA_STAGE_ABORTED). */
sa_stage sa_client_stage(const sa_client *c);

/* OpenMP threads for this client's per-neighbour work (signature checks, key agreements, share
 * encryption, Shamir evaluations) and mask expansion (default 1; 0 = OpenMP's default). Every
 * message is identical for any value. */
void sa_client_set_threads(sa_client *c, int threads);

/* Timing of the client's own work per stage, seconds (for benchmarks): index 1..5; all 0
 * without a clock in its sa_config. */
void sa_client_times(const sa_client *c, double times[6]);

/* ---- server (the coordinator's SecAgg part) ---------------------------------------- */

typedef struct sa_server sa_server;

/* A server for one round. Refuses (NULL, MU_ERR_INVALID in diag) a config failing
 * sa_config_check, e.g. a threshold or degree below the minimum. Memory grows with d, not
 * n*d: masked inputs are added into one running sum as they arrive. */
sa_server *sa_server_new(const sa_config *cfg, mu_diag *diag);
void sa_server_free(sa_server *s); /* NULL is a no-op */

/* Handles one client message. `from` is the sender's org id as authenticated by the
 * transport (mutual TLS); it must match the id inside the message. Appends nothing except
 * in error-free stage closings (messages are only produced by close_stage). Returns MU_OK or:
 *   MU_ERR_FORMAT    malformed, other round/session, or `from` mismatch: no effect
 *   MU_ERR_TIMEOUT   the message's stage is closed (late): no effect
 *   MU_ERR_STATE     the message's stage is not open yet: no effect
 *   MU_ERR_PROTOCOL  duplicate, sender not expected in this stage, wrong shape: no effect
 *   MU_ERR_CRYPTO    a signature check failed: no effect
 *   MU_ERR_NOMEM */
int sa_server_handle(sa_server *s, uint32_t from, const uint8_t *msg, size_t len, sa_outbox *out,
                     mu_diag *diag);

/* The deadline event: closes `stage` (which must be the open one, else MU_ERR_STATE, so a
 * stale timer cannot close the wrong stage), appends the messages for each recipient, and
 * opens the next stage. Closing SA_STAGE_UNMASK reconstructs the secrets and computes the sum.
 * Returns MU_OK, or MU_ERR_ABORT (server now SA_STAGE_ABORTED, reason in diag) when too few
 * orgs remain (fewer than t+1 advertisers or sharers, fewer than t survivors, too few shares
 * to unmask someone), or MU_ERR_NOMEM. */
int sa_server_close_stage(sa_server *s, sa_stage stage, sa_outbox *out, mu_diag *diag);

/* OpenMP threads for unmasking: pair-key agreements and mask expansion (default 1: no threads;
 * 0 = OpenMP's default). The sum is identical for any value. */
void sa_server_set_threads(sa_server *s, int threads);

/* Seconds spent in sa_server_handle for MASKED messages (summing) and in closing the unmask
 * stage (reconstruction and mask removal), for benchmarks; 0 without a clock in its
 * sa_config. */
void sa_server_times(const sa_server *s, double *sum_seconds, double *unmask_seconds);

/* The open stage (SA_STAGE_DONE when the sum is ready). */
sa_stage sa_server_stage(const sa_server *s);

/* How many orgs the open stage still waits for (0: the driver may close it now). */
size_t sa_server_pending(const sa_server *s);

/* The sum mod 2^bits of the survivors' inputs: d values, each in [0, 2^bits). Borrowed, valid
 * until sa_server_free. MU_ERR_STATE unless the stage is SA_STAGE_DONE. */
int sa_server_result(const sa_server *s, const uint32_t **sum, size_t *d);

/* The orgs that an SA_TO_ALL envelope from the last close_stage goes to, ascending; returns
 * how many (may exceed cap; writes at most cap). */
size_t sa_server_recipients(const sa_server *s, uint32_t *ids, size_t cap);

/* The org ids whose inputs are in the sum (U3), ascending; returns how many (may exceed cap;
 * writes at most cap). 0 before stage 3 closes. */
size_t sa_server_survivors(const sa_server *s, uint32_t *ids, size_t cap);

/* The orgs found sending a share that does not reconstruct to its owner's commitment (b's
 * hash in the signed ADVERTISE, or s_pk), ascending; returns how many (may exceed cap; writes
 * at most cap). The round completes without their shares when the spare holders allow it
 * (one wrong share per owner among the first t+1); otherwise close_stage says which owner
 * could not be unmasked. */
size_t sa_server_cheaters(const sa_server *s, uint32_t *ids, size_t cap);

/* ---- quantisation ------------------------------------------------------------------ */

/* Fixed-point encoding of a float vector plus its weight:
 *   q[i] = SR(w * clip(x)[i] * scale) for i < dim,  q[dim] = SR(w * scale)
 * where clip scales x to L2 norm <= clip_norm, SR is unbiased stochastic rounding, and values
 * are stored mod 2^bits (two's complement). The sum of n such vectors cannot wrap when
 *   n * (ceil(w_max * max(clip_norm, 1) * scale) + 1) <= 2^(bits-1) - 1,
 * which sa_quant_check enforces. */
typedef struct {
    double clip_norm; /* > 0 */
    double scale;     /* > 0, fixed-point multiplier */
    double w_max;     /* > 0, largest weight an org may use */
    uint32_t bits;    /* 1..32, must equal the round's bits */
    uint32_t n;       /* cohort size */
} sa_quant;

/* MU_OK, or MU_ERR_INVALID with "the sum of n inputs can reach X >= 2^(bits-1)" etc. */
int sa_quant_check(const sa_quant *q, mu_diag *diag);

/* Encodes x (dim floats) and weight w into out (dim+1 values). MU_ERR_INVALID on a NaN/Inf,
 * w outside [0, w_max], out_len != dim+1, or a config failing sa_quant_check. */
int sa_quant_encode(uint32_t *out, size_t out_len, const float *x, size_t dim, double w,
                    const sa_quant *q, const sa_rng *rng, mu_diag *diag);

/* The signed value of a sum coordinate held mod 2^bits. */
int64_t sa_quant_signed(uint32_t v, uint32_t bits);

/* Weighted mean from a sum of sa_quant_encode vectors: out[i] = sum[i] / sum[dim] for
 * i < dim (sum has dim+1 values). MU_ERR_INVALID if the weight sum is not positive. */
int sa_quant_mean(float *out, size_t dim, const uint32_t *sum, size_t sum_len, const sa_quant *q,
                  mu_diag *diag);

/* ---- bit packing (the MASKED payload) ---------------------------------------------- */

/* Bytes needed for d values at b bits: ceil(d*b/8). */
size_t sa_pack_len(size_t d, uint32_t bits);
/* Packs the low `bits` bits of each value, LSB first. out_len must be sa_pack_len(d,bits). */
int sa_pack(uint8_t *out, size_t out_len, const uint32_t *v, size_t d, uint32_t bits);
/* acc[i] += unpacked[i] (mod 2^32), fused so that no unpacked copy is made. */
int sa_unpack_add(uint32_t *acc, size_t d, const uint8_t *in, size_t in_len, uint32_t bits);

#endif
