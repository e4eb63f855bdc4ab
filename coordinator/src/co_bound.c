/* co_bound.c - the bounds an aggregate of honest inputs stays within (co_bound.h). */
#include <math.h>

#include "co_bound.h"

int co_aggregate_check(const float *mean, size_t dim, const uint32_t *sum, const sa_quant *q,
                       size_t n_inputs, mu_diag *diag)
{
    double n = (double)n_inputs;
    double w = (double)sa_quant_signed(sum[dim], q->bits);
    double w_top = n * ceil(q->w_max * q->scale);
    if (!(w > 0) || w > w_top)
        return mu_diag_set(diag, MU_ERR_PROTOCOL,
                           "refusing the aggregate: its weight sum %.0f is outside (0, %.0f] "
                           "(%zu inputs, weight_max %g, scale %g): an org sent an out-of-range "
                           "input",
                           w, w_top, n_inputs, q->w_max, q->scale);
    double norm2 = 0;
    for (size_t i = 0; i < dim; i++)
        norm2 += (double)mean[i] * (double)mean[i];
    double norm = sqrt(norm2);
    double bound = ((w + n) * q->clip_norm + n * sqrt((double)dim)) / w;
    bound *= 1 + 1e-5; /* the float rounding of mean */
    if (!(norm <= bound))
        return mu_diag_set(diag, MU_ERR_PROTOCOL,
                           "refusing the aggregate: its mean update has norm %g, above the clip "
                           "bound %g (clip %g with the quantisation slack of %zu inputs): an org "
                           "sent an out-of-range input",
                           norm, bound, q->clip_norm, n_inputs);
    return MU_OK;
}
