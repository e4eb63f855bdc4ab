/* co_strategy.h - server-side strategies applied to the aggregated update.
 *
 * Input every round: the flat global vector x (d floats) and Δ, the weighted mean of the
 * orgs' deltas (local - global), already averaged (the secure aggregation sum divided by the
 * sum of weights). A strategy turns Δ into the new x.
 *
 *   FedAvg      x += η·Δ                                   (η = server lr, default 1)
 *   FedAvgM     m = μ·m + Δ;  x += η·m                     (Hsu et al. 2019; μ default 0.9)
 *   FedAdam     m = β1·m + (1-β1)·Δ;  v = β2·v + (1-β2)·Δ²
 *   FedYogi     m as Adam;  v = v - (1-β2)·Δ²·sign(v - Δ²)
 *   FedAdagrad  m as Adam;  v = v + Δ²
 *               then (all three) x += η_t·m / (√v + τ)
 *
 * The three adaptive rules are Algorithm 2 of Reddi et al. 2021, "Adaptive Federated
 * Optimization": m and v start at 0, and η_t = η (no bias correction) unless
 * `bias_correction` is set, in which case η_t = η·√(1-β2^t)/(1-β1^t) with t the 1-based
 * step (Kingma & Ba). Defaults for the adaptive ones: η = 1e-2, β1 = 0.9, β2 = 0.99,
 * τ = 1e-3 (the paper's grid centre; τ controls adaptivity).
 *
 * Differences from Flower's (1.x) strategies, checked against its source: Flower's FedAdam
 * always applies a bias correction, with exponent server_round + 1 (so its first step is
 * already corrected as if t = 2); ours is off by default and uses t = 1, 2, ... . Flower's
 * FedAvgM keeps the momentum on the pseudo-gradient -Δ and subtracts it, which is the same
 * update as ours. Flower defaults to η = 0.1 and τ = 1e-9 (FedAdam, FedAdagrad) and
 * η = 1e-2, τ = 1e-3 (FedYogi); ours are uniform and stated above.
 *
 * FedProx is not a server strategy: its proximal term μ/2·‖w − w_global‖² is added by each
 * org to its local loss; the coordinator only sends μ in the round config (co_round.h).
 *
 * Arithmetic per coordinate is in double, stored as float. Not thread-safe per object.
 */
#ifndef CO_STRATEGY_H
#define CO_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CO_STRATEGY_FEDAVG = 0,
    CO_STRATEGY_FEDAVGM = 1,
    CO_STRATEGY_FEDADAM = 2,
    CO_STRATEGY_FEDYOGI = 3,
    CO_STRATEGY_FEDADAGRAD = 4,
} co_strategy_kind;

typedef struct {
    co_strategy_kind kind;
    double eta;          /* server learning rate η, > 0 */
    double momentum;     /* FedAvgM μ in [0, 1) */
    double beta1, beta2; /* adaptive: in [0, 1) */
    double tau;          /* adaptive: > 0 */
    int bias_correction; /* adaptive: Adam-style η_t (default 0) */
} co_strategy_params;

/* Fills *p with the defaults for `kind` (see the table above). */
void co_strategy_params_default(co_strategy_params *p, co_strategy_kind kind);

/* MU_OK, or MU_ERR_INVALID with a message naming the bad field. */
int co_strategy_params_check(const co_strategy_params *p, char *msg, size_t msg_len);

/* "fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"; "?" for an unknown kind. */
const char *co_strategy_name(co_strategy_kind kind);
/* MU_OK and *kind set, or MU_ERR_INVALID for an unknown name (case-sensitive). */
int co_strategy_parse(const char *name, co_strategy_kind *kind);

typedef struct co_strategy co_strategy;

/* A strategy for vectors of `d` floats with zeroed optimizer state. NULL on allocation
 * failure or invalid params (check them first with co_strategy_params_check). */
co_strategy *co_strategy_new(const co_strategy_params *p, size_t d);
void co_strategy_free(co_strategy *s); /* NULL is a no-op */

/* One server step: updates x (d) in place from delta (d). MU_ERR_INVALID if d differs from
 * the strategy's, or if delta holds NaN or Inf (x and the state are then unchanged). */
int co_strategy_apply(co_strategy *s, float *x, const float *delta, size_t d);

/* Optimizer state, for checkpoints. n_state is 0 (FedAvg), 1 (FedAvgM: m) or 2 (m, v).
 * The pointers are owned by s and live until co_strategy_free; NULL when not used. */
const co_strategy_params *co_strategy_get_params(const co_strategy *s);
size_t co_strategy_dim(const co_strategy *s);
int co_strategy_n_state(const co_strategy *s);
uint64_t co_strategy_step(const co_strategy *s); /* server steps taken so far */
const float *co_strategy_m(const co_strategy *s);
const float *co_strategy_v(const co_strategy *s);

/* Restores the state saved from a strategy of the same kind and d. m and v may be NULL
 * exactly when the kind does not use them. MU_ERR_INVALID on a mismatch. */
int co_strategy_set_state(co_strategy *s, uint64_t step, const float *m, const float *v, size_t d);

#endif
