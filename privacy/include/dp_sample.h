/* dp_sample.h - exact sampling of the discrete Gaussian from a CSPRNG stream.
 *
 * The algorithms of Canonne, Kamath, Steinke 2020 ("The Discrete Gaussian for Differential
 * Privacy", Algorithms 1-3): Bernoulli(exp(-γ)) for a rational γ by rejection, the discrete
 * Laplace by rejection, then the discrete Gaussian by rejection from the discrete Laplace.
 * No floating-point Gaussian is rounded: the reference uses only integer arithmetic; the fast
 * form uses doubles only to take decisions their proven error bounds make certain, and exact
 * multi-limb integer arithmetic otherwise (docs/privacy.md, "Why the fast sampler is exact"). σ² is
 * a rational NUM/DEN (dp_sigma2_from_double gives one only when a double is exactly such a
 * rational).
 *
 * Exactness: outputs are distributed exactly as N_Z(0, σ²), P(x) ∝ exp(-x²/(2σ²)), except
 * that a candidate of magnitude 2^31 or more is rejected outright: its true acceptance
 * probability is below exp(-2^29), and it occurs with probability below exp(-2^14) per draw
 * for the largest σ accepted.
 *
 * The stream is ChaCha20 (libsodium crypto_stream_chacha20) keyed by a 32-byte seed, one
 * stream per 64-bit stream id: give each thread its own id. A dp_rng is owned by one thread.
 */
#ifndef DP_SAMPLE_H
#define DP_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"

#define DP_SEED_BYTES     32
#define DP_RNG_BUF_BYTES  4096
#define DP_SIGMA2_NUM_MAX 0xFFFFFFFFu /* σ² numerator at most 2^32 - 1 */
#define DP_SIGMA2_DEN_MAX 65536u      /* σ² denominator at most 2^16 */

/* A caller-owned CSPRNG stream; the fields are private. */
typedef struct {
    uint8_t key[DP_SEED_BYTES];
    uint8_t nonce[8];
    uint64_t block;
    size_t pos;
    uint64_t bits; /* unused random bits, nbits of them */
    unsigned nbits;
    uint8_t buf[DP_RNG_BUF_BYTES];
} dp_rng;

/* Starts stream `stream` of the generator keyed by `seed` (copied). The same seed and stream
 * give the same draws on every machine. */
void dp_rng_init(dp_rng *rng, const uint8_t seed[DP_SEED_BYTES], uint64_t stream);

/* Wipes the key and buffered output (sodium_memzero). */
void dp_rng_deinit(dp_rng *rng);

/* A uniform integer in [0, bound), bound >= 1, by rejection (no modulo bias). */
uint64_t dp_rng_below(dp_rng *rng, uint64_t bound);

/* σ² = num/den exactly from a double: MU_OK if `sigma2` is num/den with den a power of two
 * <= DP_SIGMA2_DEN_MAX and 1 <= num <= DP_SIGMA2_NUM_MAX (e.g. 4, 2.25, 1e4), else
 * MU_ERR_INVALID (e.g. 0.1, which no such rational equals). */
int dp_sigma2_from_double(double sigma2, uint64_t *num, uint64_t *den);

/* Fills out[0..n) with independent draws of N_Z(0, num/den). MU_OK, or MU_ERR_INVALID when
 * num or den is 0 or above its maximum. The ziggurat form (docs/privacy.md, "The ziggurat"):
 * 128 strips of height 1/128 over magnitudes 0..M (M about 4.1σ) chosen by an exact integer
 * alias table, a cell under the curve accepted with no comparison (about 97% of proposals), the
 * others by the exact comparison [y < exp(-γ)] below, and the tail beyond M by coupling from
 * the past (a chain that shifts by M + 1 with probability exp(-rational)), so no tail mass is
 * ever computed. About 48 stream bits per draw. The same deviations as the CKS forms:
 * a magnitude reaching 2^31 is rejected, a comparison undecided at 16384 bits is taken as U >=
 * exp(-γ) (and a strip boundary undecided there is set on the safe side). */
int dp_dgauss_sample(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n);

/* The same law by the CKS algorithm's fast form: each Bernoulli(exp(-γ)) of the CKS
 * algorithm is [U < exp(-γ)] for a uniform U, decided from 32 bits of U and a double estimate
 * of exp(-γ) with a proven error bound, and exactly in multi-limb fixed point when U falls
 * within that bound (58 of 2.6 million comparisons at σ² = 1e8, none at 1e4). A comparison still
 * undecided at 16384 bits of U and of exp(-γ) (probability below 2^-16000) is taken as U >=
 * exp(-γ): the one deviation besides the 2^31 cut. Other draws than dp_dgauss_sample for the same
 * stream; about 4 times slower (kept to compare and as a second implementation). */
int dp_dgauss_sample_cks(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n);

/* The same law by the bitwise reference (Bernoulli(n/d) one random bit at a time, about 5
 * times slower than dp_dgauss_sample_cks): other draws for the same stream. Arguments and returns
 * as dp_dgauss_sample. */
int dp_dgauss_sample_ref(dp_rng *rng, uint64_t num, uint64_t den, int64_t *out, size_t n);

#define DP_FILL_BLOCK 65536u       /* outputs per block of dp_dgauss_fill */
#define DP_FILL_MAX   (1ull << 48) /* at most 2^32 blocks */

/* Fills out[0..n) with draws of N_Z(0, num/den) on `threads` OpenMP threads: output block b
 * (outputs b·DP_FILL_BLOCK onward) is dp_dgauss_sample on stream `stream` of `seed` read from
 * ChaCha20 block b·2^32 on (a block would need 256 GiB of keystream to reach the next), so the
 * result depends on seed, stream, num, den and n only, not on the thread count. MU_OK, or
 * MU_ERR_INVALID for num/den as dp_dgauss_sample, threads < 1 or n > DP_FILL_MAX. */
int dp_dgauss_fill(const uint8_t seed[DP_SEED_BYTES], uint64_t stream, uint64_t num, uint64_t den,
                   int64_t *out, size_t n, int threads);

#endif
