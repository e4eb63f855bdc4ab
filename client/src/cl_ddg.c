/* cl_ddg.c - an org's masked input under the distributed discrete Gaussian (cl_internal.h). */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>

#include "cl_internal.h"

int cl_ddg_encode(uint32_t *q, const float *x, size_t dim, double w, const co_round_config *c,
                  const uint8_t key[DP_SEED_BYTES], const sa_rng *rng_w, int threads, mu_diag *diag)
{
    dp_ddg p;
    co_round_config_ddg(c, &p);
    p.threads = threads;
    int rc = dp_ddg_check(&p, diag);
    if (rc != MU_OK)
        return rc;
    double wrap = dp_ddg_wrap(&p, c->quant_n, c->bits);
    if (!(wrap <= CO_DDG_MAX_WRAP))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "ddg: the sum of %u noised inputs wraps mod 2^%u with probability up "
                           "to %.3g (above %g): refusing the round config",
                           c->quant_n, c->bits, wrap, CO_DDG_MAX_WRAP);
    /* the weight coordinate stays exact (SR(w·scale), no noise): sa_quant with no values */
    sa_quant sw = {.clip_norm = 1,
                   .scale = c->scale,
                   .w_max = c->weight_max,
                   .bits = c->bits,
                   .n = c->quant_n};
    if ((rc = sa_quant_encode(q + dim, 1, x, 0, w, &sw, rng_w, diag)) != MU_OK)
        return rc;
    float *xw = malloc((dim ? dim : 1) * sizeof *xw);
    int64_t *o = malloc((dim ? dim : 1) * sizeof *o);
    rc = MU_ERR_NOMEM;
    if (!xw || !o) {
        mu_diag_set(diag, rc, "out of memory");
        goto out_free;
    }
    double n2 = 0;
    for (size_t i = 0; i < dim; i++)
        n2 += (double)x[i] * x[i];
    double n = sqrt(n2), f = w * (n > c->clip ? c->clip / n : 1.0);
    for (size_t i = 0; i < dim; i++)
        xw[i] = (float)(x[i] * f);
    dp_rng rng;
    dp_rng_init(&rng, key, 0);
    rc = dp_ddg_encode(o, xw, &p, &rng, NULL, diag);
    dp_rng_deinit(&rng);
    uint32_t mask = c->bits >= 32 ? 0xFFFFFFFFu : (1u << c->bits) - 1;
    for (size_t i = 0; rc == MU_OK && i < dim; i++)
        q[i] = (uint32_t)(uint64_t)o[i] & mask;
out_free:
    if (xw)
        sodium_memzero(xw, dim * sizeof *xw);
    if (o)
        sodium_memzero(o, dim * sizeof *o);
    free(xw);
    free(o);
    return rc;
}
