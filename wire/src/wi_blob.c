/* wi_blob.c - flat float vector <-> little-endian f32 bytes. */
#include "wi_blob.h"

#include <math.h>
#include <string.h>

#include "wi_bytes.h"

_Static_assert(sizeof(float) == 4, "the blob is IEEE float32");

int wi_blob_encode(unsigned char *out, size_t out_len, const float *v, size_t dim)
{
    if (dim > SIZE_MAX / 4 || out_len != wi_blob_len(dim))
        return MU_ERR_INVALID;
    for (size_t i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        mu_put_le32(out + 4 * i, u);
    }
    return MU_OK;
}

int wi_blob_decode(float *out, size_t dim, const unsigned char *buf, size_t len, mu_diag *diag)
{
    if (dim > SIZE_MAX / 4 || len != wi_blob_len(dim))
        return mu_diag_set(diag, MU_ERR_FORMAT,
                           "adapter blob: %zu bytes, expected %zu for %zu floats", len, 4 * dim,
                           dim);
    for (size_t i = 0; i < dim; i++) {
        uint32_t u = mu_le32(buf + 4 * i);
        memcpy(&out[i], &u, 4);
        if (!isfinite(out[i]))
            return mu_diag_set(diag, MU_ERR_FORMAT, "adapter blob: value %zu is NaN or infinite",
                               i);
    }
    return MU_OK;
}
