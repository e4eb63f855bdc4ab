/* co_metric.c - a training round's loss and token count as extra coordinates of the secure sum
 * (co_wire.h "Metrics inside the secure sum"). */
#include <math.h>
#include <stdio.h>

#include "co_wire.h"

uint32_t co_metric_limb_bits(uint32_t bits, uint32_t n)
{
    if (bits < 1 || bits > 32 || n < 1)
        return 0;
    uint64_t top = (1ull << bits) - 1; /* the largest sum read without a wrap */
    uint32_t l = 0;
    while (l < bits && (uint64_t)n * ((1ull << (l + 1)) - 1) <= top)
        l++;
    return l;
}

uint32_t co_secagg_dim(const co_round_config *c)
{
    uint32_t m = co_metric_coords(c->bits, c->quant_n);
    return c->kind == CO_ROUND_EVAL ? m : c->dim + 1 + m;
}

static uint32_t limbs(uint32_t value_bits, uint32_t l)
{
    return (value_bits + l - 1) / l;
}

uint32_t co_metric_coords(uint32_t bits, uint32_t n)
{
    uint32_t l = co_metric_limb_bits(bits, n);
    return l ? limbs(CO_METRIC_LOSS_BITS, l) + limbs(CO_METRIC_TOKEN_BITS, l) : 0;
}

/* Splits v into `count` base-2^l digits, least significant first. */
static void split(uint32_t *out, uint32_t count, uint64_t v, uint32_t l)
{
    for (uint32_t i = 0; i < count; i++, v >>= l)
        out[i] = (uint32_t)(v & ((1ull << l) - 1));
}

int co_metric_encode(uint32_t *out, size_t m, double loss_sum, double tokens, uint32_t bits,
                     uint32_t n, mu_diag *diag)
{
    uint32_t l = co_metric_limb_bits(bits, n);
    if (!l || m != co_metric_coords(bits, n))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "metrics: %zu coordinates do not fit %u orgs at %u bits", m, n, bits);
    if (!isfinite(loss_sum) || !isfinite(tokens))
        return mu_diag_set(diag, MU_ERR_INVALID, "metrics: loss or token count is not finite");
    double tk = tokens > 0 ? floor(tokens + 0.5) : 0;
    if (tk > CO_METRIC_MAX_TOKENS)
        tk = CO_METRIC_MAX_TOKENS;
    double ls = loss_sum > 0 ? loss_sum : 0;
    if (ls > CO_METRIC_MAX_LOSS * tk)
        ls = CO_METRIC_MAX_LOSS * tk;
    uint32_t nl = limbs(CO_METRIC_LOSS_BITS, l);
    split(out, nl, (uint64_t)floor(ls * CO_METRIC_LOSS_SCALE + 0.5), l);
    split(out + nl, (uint32_t)m - nl, (uint64_t)tk, l);
    return MU_OK;
}

/* Σ digit_i·2^(l·i) of a summed digit run; MU_ERR_PROTOCOL if a digit sum is above what n
 * honest inputs can reach (an org sent digits out of range). */
static int join(double *v, const uint32_t *sum, uint32_t count, uint32_t l, uint32_t n,
                const char *what, mu_diag *diag)
{
    uint64_t top = (uint64_t)n * ((1ull << l) - 1);
    *v = 0;
    for (uint32_t i = count; i-- > 0;) {
        if (sum[i] > top)
            return mu_diag_set(diag, MU_ERR_PROTOCOL,
                               "refusing the aggregate: its %s digit %u sums to %u, above %llu "
                               "(%u inputs): an org sent an out-of-range input",
                               what, i, sum[i], (unsigned long long)top, n);
        *v = *v * (double)(1ull << l) + (double)sum[i];
    }
    return MU_OK;
}

int co_metric_decode(double *loss_sum, double *tokens, const uint32_t *sum, size_t m, uint32_t bits,
                     uint32_t n_quant, uint32_t n_inputs, mu_diag *diag)
{
    uint32_t l = co_metric_limb_bits(bits, n_quant);
    if (!l || m != co_metric_coords(bits, n_quant) || n_inputs > n_quant)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "metrics: %zu coordinates do not fit %u orgs at %u bits", m, n_quant,
                           bits);
    uint32_t nl = limbs(CO_METRIC_LOSS_BITS, l);
    double q;
    int rc = join(&q, sum, nl, l, n_inputs, "loss", diag);
    if (rc == MU_OK)
        rc = join(tokens, sum + nl, (uint32_t)m - nl, l, n_inputs, "token", diag);
    *loss_sum = rc == MU_OK ? q / CO_METRIC_LOSS_SCALE : 0;
    if (rc != MU_OK)
        *tokens = 0;
    return rc;
}
