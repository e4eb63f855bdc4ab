/* wi_blob.h - the adapter blob: the flat adapter vector (dim floats) as little-endian IEEE
 * float32, 4·dim bytes, nothing else. What DownloadAdapter streams and what `mutual sim`
 * writes to global.f32, on any host byte order. */
#ifndef WI_BLOB_H
#define WI_BLOB_H

#include <stddef.h>

#include "mu_err.h"

/* Bytes of the blob of dim floats. */
static inline size_t wi_blob_len(size_t dim)
{
    return 4 * dim;
}

/* Writes v[0..dim) into out (out_len must be wi_blob_len(dim), else MU_ERR_INVALID). */
int wi_blob_encode(unsigned char *out, size_t out_len, const float *v, size_t dim);

/* Reads untrusted bytes into out[0..dim). MU_OK, or MU_ERR_FORMAT when len is not
 * wi_blob_len(dim) or a value is NaN or infinite (the index in diag); out is then
 * unspecified. */
int wi_blob_decode(float *out, size_t dim, const unsigned char *buf, size_t len, mu_diag *diag);

#endif
