/* co_ddg.c - the coordinator's side of the distributed discrete Gaussian (co_ddg.h). */
#include <math.h>
#include <stdlib.h>

#include "co_ddg.h"

uint32_t co_ddg_min(const co_config *cfg)
{
    return cfg->min_survivors ? cfg->min_survivors : cfg->min_orgs;
}

/* What fails for scale s, or NULL: "weight", "sigma", "wrap". */
static const char *ddg_fails(const co_config *cfg, uint32_t dim, uint32_t n, double s, double *wrap)
{
    sa_quant w = {.clip_norm = 1, .scale = s, .w_max = cfg->weight_max, .bits = cfg->bits, .n = n};
    *wrap = 0;
    if (sa_quant_check(&w, NULL) != MU_OK)
        return "weight";
    if (dim == 0)
        return NULL;
    dp_ddg p = {.dim = dim,
                .l2 = cfg->weight_max * cfg->clip,
                .scale = s,
                .noise = cfg->ddg_noise,
                .min_survivors = co_ddg_min(cfg)};
    if (dp_ddg_check(&p, NULL) != MU_OK)
        return "sigma";
    *wrap = dp_ddg_wrap(&p, n, cfg->bits);
    return *wrap <= CO_DDG_MAX_WRAP ? NULL : "wrap";
}

int co_ddg_quant(const co_config *cfg, uint32_t dim, uint32_t n, sa_quant *q, mu_diag *d)
{
    *q = (sa_quant){.clip_norm = cfg->clip,
                    .scale = cfg->scale,
                    .w_max = cfg->weight_max,
                    .bits = cfg->bits,
                    .n = n};
    double wrap = 0;
    const char *why = NULL;
    if (q->scale > 0) {
        why = ddg_fails(cfg, dim, n, q->scale, &wrap);
    } else {
        double s = ldexp(1.0, 62);
        while (s >= 1 && (why = ddg_fails(cfg, dim, n, s, &wrap)) != NULL)
            s /= 2;
        q->scale = s;
    }
    if (!why && q->scale >= 1)
        return MU_OK;
    if (why && why[0] == 'w' && why[1] == 'r')
        return mu_diag_set(d, MU_ERR_INVALID,
                           "privacy.ddg_noise %g: the noised sum of %u orgs over %u values wraps "
                           "mod 2^%u with probability up to %.3g (above %g) at scale %g; raise "
                           "secure_agg.bits, lower cohort.max_orgs, ddg_noise or secure_agg.scale",
                           cfg->ddg_noise, n, dim, cfg->bits, wrap, CO_DDG_MAX_WRAP, q->scale);
    if (why && why[0] == 's')
        return mu_diag_set(d, MU_ERR_INVALID,
                           "privacy.ddg_noise %g: at scale %g the per-org noise standard deviation "
                           "(about ddg_noise x weight_max x clip x scale / sqrt(min_survivors)) is "
                           "beyond the exact sampler's 2^16; %s",
                           cfg->ddg_noise, q->scale,
                           cfg->scale > 0 ? "lower secure_agg.scale"
                                          : "lower secure_agg.weight_max (train.weight: uniform "
                                            "takes 1), secure_agg.clip or ddg_noise");
    return mu_diag_set(d, MU_ERR_INVALID,
                       "privacy.ddg_noise %g: no fixed-point scale >= 1 keeps the weight sum of %u "
                       "orgs (weight_max %g) within %u bits; raise secure_agg.bits or lower "
                       "weight_max or cohort.max_orgs",
                       cfg->ddg_noise, n, cfg->weight_max, cfg->bits);
}

int co_ddg_mean(float *mean, const uint32_t *sum, const co_round_config *c, uint32_t n_inputs,
                mu_diag *d)
{
    size_t dim = c->dim;
    int64_t w = sa_quant_signed(sum[dim], c->bits);
    double n = n_inputs, w_top = n * ceil(c->weight_max * c->scale);
    if (w <= 0)
        return mu_diag_set(d, MU_ERR_INVALID, "secure_agg: total weight is not positive");
    if ((double)w > w_top)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "refusing the aggregate: its weight sum %lld is above %.0f (%u inputs, "
                           "weight_max %g, scale %g): an org sent an out-of-range input",
                           (long long)w, w_top, n_inputs, c->weight_max, c->scale);
    dp_ddg p;
    co_round_config_ddg(c, &p);
    int64_t *s = malloc(dim * sizeof *s);
    double *out = malloc(dim * sizeof *out);
    int rc = MU_ERR_NOMEM;
    if (!s || !out) {
        mu_diag_set(d, rc, "out of memory");
        goto out_free;
    }
    double n2 = 0;
    for (size_t i = 0; i < dim; i++) {
        s[i] = sa_quant_signed(sum[i], c->bits);
        n2 += (double)s[i] * (double)s[i];
    }
    uint64_t num, den;
    if ((rc = dp_ddg_sigma2(&p, &num, &den)) != MU_OK ||
        (rc = dp_ddg_decode(out, s, &p, d)) != MU_OK)
        goto out_free;
    double sigma = sqrt((double)num / (double)den * n);
    double bound = n * dp_ddg_bound(&p) + sigma * (sqrt((double)dim) + 10);
    if (!(sqrt(n2) <= bound)) {
        rc = mu_diag_set(d, MU_ERR_PROTOCOL,
                         "refusing the aggregate: its noised sum has norm %g, above %g (%u "
                         "inputs each within %g, and their noise): an org sent an out-of-range "
                         "input",
                         sqrt(n2), bound, n_inputs, dp_ddg_bound(&p));
        goto out_free;
    }
    double f = c->scale / (double)w; /* Σ w·x / Σ w, Σ w = w / scale */
    for (size_t i = 0; i < dim; i++)
        mean[i] = (float)(out[i] * f);
out_free:
    free(s);
    free(out);
    return rc;
}
