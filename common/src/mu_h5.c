/* mu_h5.c - in-memory HDF5 files written out with mu_write_file_atomic (see mu_h5.h). */
#include "mu_h5.h"

#include <stdint.h>
#include <stdlib.h>

#include "mu_bytes.h"
#include "mu_file.h"

#define MEM_INCREMENT (1u << 20) /* the core driver grows its buffer by this much */

#define ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

/* Bob Jenkins' lookup3 hashlittle with initval 0: the checksum of HDF5's metadata (the HDF5
 * file format specification, "Appendix A: Definitions", metadata checksum). */
static uint32_t lookup3(const uint8_t *k, size_t n)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)n;
    for (; n > 12; n -= 12, k += 12) {
        a += mu_le32(k), b += mu_le32(k + 4), c += mu_le32(k + 8);
        a -= c, a ^= ROT(c, 4), c += b;
        b -= a, b ^= ROT(a, 6), a += c;
        c -= b, c ^= ROT(b, 8), b += a;
        a -= c, a ^= ROT(c, 16), c += b;
        b -= a, b ^= ROT(a, 19), a += c;
        c -= b, c ^= ROT(b, 4), b += a;
    }
    if (n == 0)
        return c;
    uint8_t t[12] = {0};
    for (size_t i = 0; i < n; i++)
        t[i] = k[i];
    a += mu_le32(t), b += mu_le32(t + 4), c += mu_le32(t + 8);
    c ^= b, c -= ROT(b, 14);
    a ^= c, a -= ROT(c, 11);
    b ^= a, b -= ROT(a, 25);
    c ^= b, c -= ROT(b, 16);
    a ^= c, a -= ROT(c, 4);
    b ^= a, b -= ROT(a, 14);
    c ^= b, c -= ROT(b, 24);
    return c;
}

/* HDF5 1.10's H5Fget_file_image clears the superblock's file-consistency flags in the copy
 * (the file is "closed" there) but keeps the checksum of the flags it had while open, so a
 * version 2/3 superblock (the newest format) fails its checksum on open. Recompute it over
 * the bytes as they are: signature 8, version, size of offsets (o), size of lengths, flags,
 * four addresses of o bytes, checksum 4. Right whether or not HDF5 has the bug. */
static void fix_superblock_checksum(uint8_t *img, size_t n)
{
    if (n < 12 || img[8] < 2)
        return;
    size_t at = 12 + 4 * (size_t)img[9];
    if (at + 4 > n)
        return;
    uint32_t c = lookup3(img, at);
    mu_put_le32(img + at, c);
}

hid_t mu_h5_create_mem(const char *name, int latest)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
    hid_t f = -1;
    if (H5Pset_fapl_core(fapl, MEM_INCREMENT, 0) >= 0 &&
        (!latest || H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) >= 0))
        f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

int mu_h5_commit(hid_t f, const char *path, mu_diag *diag)
{
    ssize_t n = H5Fflush(f, H5F_SCOPE_LOCAL) >= 0 ? H5Fget_file_image(f, NULL, 0) : -1;
    void *img = n > 0 ? malloc((size_t)n) : NULL;
    int ok = img && H5Fget_file_image(f, img, (size_t)n) == n;
    if (ok)
        fix_superblock_checksum(img, (size_t)n);
    /* Closing an in-memory file does no I/O; a failure here is HDF5's bookkeeping only. */
    if (H5Fclose(f) < 0)
        ok = 0;
    int rc;
    if (!ok)
        rc = mu_diag_set(diag, n > 0 && !img ? MU_ERR_NOMEM : MU_ERR_IO,
                         "%s: cannot build the HDF5 image in memory", path);
    else
        rc = mu_write_file_atomic(path, img, (size_t)n, diag);
    free(img);
    return rc;
}
