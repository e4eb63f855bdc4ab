/* co_checkpoint.c - HDF5 checkpoint write (built in memory, then temp file, fsync, rename,
 * dir fsync: see mu_h5.h) and load. */
#include "co_checkpoint.h"

#include "mu_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sodium.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mu_log.h"
#include "wi_bytes.h"

#define CHUNK_ELEMS (1u << 18) /* elements per chunk, at most */

static void quiet_hdf5(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- writing ---------------------------------------------------------------------------- */

static int write_attr(hid_t loc, const char *name, hid_t type, hsize_t n, const void *data)
{
    hid_t space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    if (space < 0)
        return -1;
    hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, type, data) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc;
}

static int write_str_attr(hid_t loc, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    int rc = H5Tset_size(t, strlen(s) + 1) >= 0 ? write_attr(loc, name, t, 0, s) : -1;
    H5Tclose(t);
    return rc;
}

/* A dataset of `rank` dims; chunked with Fletcher-32 when it holds any element. */
static int write_ds(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                    const hsize_t *dims, const void *data)
{
    hsize_t chunk[CO_TENSOR_MAX_DIMS];
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        n *= dims[i];
        chunk[i] = dims[i];
    }
    hid_t space = H5Screate_simple(rank, dims, NULL);
    if (space < 0)
        return -1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int rc = -1;
    if (dcpl < 0)
        goto out_close_space;
    if (n > 0) {
        uint64_t c = n;
        for (int i = 0; i < rank && c > CHUNK_ELEMS; i++) {
            while (chunk[i] > 1 && c > CHUNK_ELEMS) {
                c = c / chunk[i] * ((chunk[i] + 1) / 2);
                chunk[i] = (chunk[i] + 1) / 2;
            }
        }
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0)
            goto out_close_dcpl;
    }
    hid_t ds = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0)
        goto out_close_dcpl;
    rc = (n == 0 || H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : -1;
    H5Dclose(ds);
out_close_dcpl:
    H5Pclose(dcpl);
out_close_space:
    H5Sclose(space);
    return rc;
}

static int write_col(hid_t g, const char *name, hid_t ftype, hid_t mtype, size_t n,
                     const void *data)
{
    hsize_t dims[1] = {n};
    return write_ds(g, name, ftype, mtype, 1, dims, data);
}

static int write_adapter(hid_t file, const co_checkpoint *ck, mu_diag *diag)
{
    hid_t g = H5Gcreate2(file, "adapter", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return MU_ERR_IO;
    int rc = MU_OK;
    for (size_t i = 0; i < ck->n_tensors && rc == MU_OK; i++) {
        const co_tensor *t = &ck->tensors[i];
        if (!t->name || !t->name[0] || strlen(t->name) >= CO_TENSOR_NAME_MAX || t->ndim < 1 ||
            t->ndim > CO_TENSOR_MAX_DIMS || (!t->data && co_tensor_numel(t) > 0)) {
            rc = mu_diag_set(diag, MU_ERR_INVALID, "checkpoint: tensor %zu has a bad name or shape",
                             i);
            break;
        }
        char ds_name[32];
        snprintf(ds_name, sizeof ds_name, "t%05zu", i);
        hsize_t dims[CO_TENSOR_MAX_DIMS];
        for (int k = 0; k < t->ndim; k++)
            dims[k] = t->shape[k];
        if (write_ds(g, ds_name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims, t->data) < 0) {
            rc = MU_ERR_IO;
            break;
        }
        hid_t ds = H5Dopen2(g, ds_name, H5P_DEFAULT);
        if (ds < 0 || write_str_attr(ds, "name", t->name) < 0)
            rc = MU_ERR_IO;
        if (ds >= 0)
            H5Dclose(ds);
    }
    H5Gclose(g);
    return rc;
}

static int write_metrics(hid_t file, const co_checkpoint *ck)
{
    size_t n = ck->n_metrics;
    hid_t g = H5Gcreate2(file, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    uint64_t *u64 = calloc(n ? n : 1, sizeof(uint64_t));
    double *f64 = calloc(n ? n : 1, sizeof(double));
    int rc = (u64 && f64) ? 0 : -1;
#define COL_U(field, ftype, mtype, ctype)                                                          \
    if (rc == 0) {                                                                                 \
        ctype *col = (ctype *)u64;                                                                 \
        for (size_t i = 0; i < n; i++)                                                             \
            col[i] = ck->metrics[i].field;                                                         \
        rc = write_col(g, #field, ftype, mtype, n, col);                                           \
    }
#define COL_D(field)                                                                               \
    if (rc == 0) {                                                                                 \
        for (size_t i = 0; i < n; i++)                                                             \
            f64[i] = ck->metrics[i].field;                                                         \
        rc = write_col(g, #field, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, f64);                      \
    }
    COL_U(round, H5T_STD_U64LE, H5T_NATIVE_UINT64, uint64_t)
    COL_U(kind, H5T_STD_U8LE, H5T_NATIVE_UINT8, uint8_t)
    COL_U(outcome, H5T_STD_U8LE, H5T_NATIVE_UINT8, uint8_t)
    COL_D(loss)
    COL_D(tokens)
    COL_U(orgs_selected, H5T_STD_U32LE, H5T_NATIVE_UINT32, uint32_t)
    COL_U(orgs_completed, H5T_STD_U32LE, H5T_NATIVE_UINT32, uint32_t)
    COL_U(orgs_dropped, H5T_STD_U32LE, H5T_NATIVE_UINT32, uint32_t)
    COL_U(bytes_in, H5T_STD_U64LE, H5T_NATIVE_UINT64, uint64_t)
    COL_U(bytes_out, H5T_STD_U64LE, H5T_NATIVE_UINT64, uint64_t)
    COL_D(t_start)
    COL_D(t_end)
    COL_U(released, H5T_STD_U8LE, H5T_NATIVE_UINT8, uint8_t)
    COL_D(epsilon)
    COL_D(record_epsilon)
    free(u64);
    free(f64);
    H5Gclose(g);
    return rc;
}

static int write_orgs(hid_t file, const co_checkpoint *ck)
{
    size_t n = ck->n_orgs;
    hid_t g = H5Gcreate2(file, "orgs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    uint32_t *ids = calloc(n ? n : 1, sizeof *ids);
    uint8_t *names = calloc(n ? n : 1, CO_ORG_NAME_MAX);
    uint8_t *pks = calloc(n ? n : 1, CO_ORG_PK_BYTES);
    int rc = -1;
    if (ids && names && pks) {
        for (size_t i = 0; i < n; i++) {
            ids[i] = ck->orgs[i].id;
            memcpy(names + i * CO_ORG_NAME_MAX, ck->orgs[i].name, CO_ORG_NAME_MAX);
            names[i * CO_ORG_NAME_MAX + CO_ORG_NAME_MAX - 1] = 0;
            memcpy(pks + i * CO_ORG_PK_BYTES, ck->orgs[i].pk, CO_ORG_PK_BYTES);
        }
        hsize_t dn[2] = {n, CO_ORG_NAME_MAX}, dp[2] = {n, CO_ORG_PK_BYTES};
        rc = write_col(g, "id", H5T_STD_U32LE, H5T_NATIVE_UINT32, n, ids);
        if (rc == 0)
            rc = write_ds(g, "name", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dn, names);
        if (rc == 0)
            rc = write_ds(g, "public_key", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dp, pks);
    }
    free(ids);
    free(names);
    free(pks);
    H5Gclose(g);
    return rc;
}

/* Builds the checkpoint in memory and writes it to `path` (see mu_h5.h for why in memory). */
static int write_file(const char *path, const co_checkpoint *ck, mu_diag *diag)
{
    hid_t f = mu_h5_create_mem(path, 1);
    if (f < 0)
        return mu_diag_set(diag, MU_ERR_IO, "%s: cannot create the HDF5 file in memory", path);
    int version = CO_CHECKPOINT_VERSION, strategy = ck->strategy;
    int rc = MU_OK;
    if (write_attr(f, "format_version", H5T_NATIVE_INT, 0, &version) < 0 ||
        write_attr(f, "round", H5T_NATIVE_UINT64, 0, &ck->round) < 0 ||
        write_attr(f, "config_hash", H5T_NATIVE_UINT8, CO_HASH_BYTES, ck->config_hash) < 0 ||
        write_attr(f, "strategy", H5T_NATIVE_INT, 0, &strategy) < 0 ||
        write_attr(f, "opt_step", H5T_NATIVE_UINT64, 0, &ck->opt_step) < 0)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: cannot write attributes", path);
    if (rc == MU_OK) {
        rc = write_adapter(f, ck, diag);
        if (rc == MU_ERR_IO)
            mu_diag_set(diag, rc, "%s: cannot write the adapter tensors", path);
    }
    if (rc == MU_OK) {
        hid_t g = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0 ||
            (ck->opt_m &&
             write_col(g, "m", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ck->opt_d, ck->opt_m) < 0) ||
            (ck->opt_v &&
             write_col(g, "v", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ck->opt_d, ck->opt_v) < 0))
            rc = mu_diag_set(diag, MU_ERR_IO, "%s: cannot write the optimizer state", path);
        if (g >= 0)
            H5Gclose(g);
    }
    if (rc == MU_OK && write_metrics(f, ck) < 0)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: cannot write the round metrics", path);
    if (rc == MU_OK && write_orgs(f, ck) < 0)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: cannot write the registered orgs", path);
    if (rc != MU_OK) {
        H5Fclose(f); /* in memory: nothing reached the disk */
        return rc;
    }
    return mu_h5_commit(f, path, diag);
}

int co_checkpoint_write(const char *dir, const co_checkpoint *ck, mu_diag *diag)
{
    quiet_hdf5();
    char final[4096];
    /* room for the ".tmp" that mu_write_file_atomic appends */
    if (snprintf(final, sizeof final - 4, "%s/%s", dir, CO_CHECKPOINT_FILE) >=
        (int)sizeof final - 4)
        return mu_diag_set(diag, MU_ERR_INVALID, "%s: checkpoint directory name too long", dir);
    if ((ck->opt_m || ck->opt_v) && ck->opt_d == 0)
        return mu_diag_set(diag, MU_ERR_INVALID, "checkpoint: optimizer state without a length");
    return write_file(final, ck, diag);
}

/* ---- reading ---------------------------------------------------------------------------- */

static int read_attr(hid_t loc, const char *name, hid_t mem_type, hssize_t want_n, void *out)
{
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t space = H5Aget_space(a);
    int rc = -1;
    if (space >= 0 && H5Sget_simple_extent_npoints(space) == want_n &&
        H5Aread(a, mem_type, out) >= 0)
        rc = 0;
    if (space >= 0)
        H5Sclose(space);
    H5Aclose(a);
    return rc;
}

/* Reads a dataset whose class is `cls`, of rank `rank`; allocates *out (numel elements of
 * `elem` bytes, at least 1 allocated) and fills dims. */
static int read_ds(hid_t loc, const char *name, H5T_class_t cls, hid_t mem_type, size_t elem,
                   int rank, hsize_t *dims, void **out)
{
    *out = NULL;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return -1;
    int rc = -1;
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    if (space < 0 || type < 0 || H5Tget_class(type) != cls ||
        H5Sget_simple_extent_ndims(space) != rank ||
        H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        goto out_close;
    uint64_t n = 1, max = SIZE_MAX / elem / 2;
    for (int i = 0; i < rank; i++) {
        if (dims[i] && n > max / dims[i])
            goto out_close; /* a size no file of ours has: refuse before it wraps */
        n *= dims[i];
    }
    *out = calloc(n ? n : 1, elem);
    if (!*out)
        goto out_close;
    if (n == 0 || H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0)
        rc = 0;
    else {
        free(*out);
        *out = NULL;
    }
out_close:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

static char *read_name_attr(hid_t ds)
{
    hid_t a = H5Aopen(ds, "name", H5P_DEFAULT);
    if (a < 0)
        return NULL;
    char *s = NULL;
    hid_t ft = H5Aget_type(a);
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t len = H5Tget_size(ft);
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (len > 0 && len <= CO_TENSOR_NAME_MAX && mt >= 0 && H5Tset_size(mt, len) >= 0) {
            s = calloc(len + 1, 1);
            if (s && H5Aread(a, mt, s) < 0) {
                free(s);
                s = NULL;
            }
        }
        if (mt >= 0)
            H5Tclose(mt);
    }
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return s;
}

static int load_adapter(hid_t f, co_checkpoint *ck)
{
    hid_t g = H5Gopen2(f, "adapter", H5P_DEFAULT);
    if (g < 0)
        return -1;
    H5G_info_t info;
    int rc = -1;
    if (H5Gget_info(g, &info) < 0 || info.nlinks > 1000000)
        goto out_close;
    ck->tensors = calloc(info.nlinks ? info.nlinks : 1, sizeof *ck->tensors);
    if (!ck->tensors)
        goto out_close;
    for (size_t i = 0; i < info.nlinks; i++) {
        char ds_name[32];
        snprintf(ds_name, sizeof ds_name, "t%05zu", i);
        hid_t ds = H5Dopen2(g, ds_name, H5P_DEFAULT);
        if (ds < 0)
            goto out_close;
        hid_t space = H5Dget_space(ds);
        int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
        char *name = read_name_attr(ds);
        if (space >= 0)
            H5Sclose(space);
        H5Dclose(ds);
        co_tensor *t = &ck->tensors[ck->n_tensors];
        t->name = name;
        ck->n_tensors++;
        hsize_t dims[CO_TENSOR_MAX_DIMS];
        if (!name || ndim < 1 || ndim > CO_TENSOR_MAX_DIMS ||
            read_ds(g, ds_name, H5T_FLOAT, H5T_NATIVE_FLOAT, sizeof(float), ndim, dims,
                    (void **)&t->data) < 0)
            goto out_close;
        t->ndim = ndim;
        for (int k = 0; k < ndim; k++)
            t->shape[k] = dims[k];
    }
    rc = 0;
out_close:
    H5Gclose(g);
    return rc;
}

static int load_optimizer(hid_t f, co_checkpoint *ck)
{
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    if (g < 0)
        return -1;
    int rc = 0;
    hsize_t dm = 0, dv = 0;
    if (H5Lexists(g, "m", H5P_DEFAULT) > 0 &&
        read_ds(g, "m", H5T_FLOAT, H5T_NATIVE_FLOAT, sizeof(float), 1, &dm, (void **)&ck->opt_m) <
            0)
        rc = -1;
    if (rc == 0 && H5Lexists(g, "v", H5P_DEFAULT) > 0 &&
        read_ds(g, "v", H5T_FLOAT, H5T_NATIVE_FLOAT, sizeof(float), 1, &dv, (void **)&ck->opt_v) <
            0)
        rc = -1;
    if (rc == 0 && ck->opt_m && ck->opt_v && dm != dv)
        rc = -1;
    if (rc == 0 && !ck->opt_m && ck->opt_v)
        rc = -1;
    ck->opt_d = ck->opt_m ? dm : 0;
    H5Gclose(g);
    return rc;
}

static int load_metrics(hid_t f, co_checkpoint *ck)
{
    hid_t g = H5Gopen2(f, "metrics", H5P_DEFAULT);
    if (g < 0)
        return -1;
    int rc = 0;
    hsize_t n = 0, m;
    void *col;
    if (read_ds(g, "round", H5T_INTEGER, H5T_NATIVE_UINT64, 8, 1, &n, &col) < 0) {
        H5Gclose(g);
        return -1;
    }
    ck->metrics = calloc(n ? n : 1, sizeof *ck->metrics);
    if (!ck->metrics) {
        free(col);
        H5Gclose(g);
        return -1;
    }
    ck->n_metrics = n;
    for (size_t i = 0; i < n; i++)
        ck->metrics[i].round = ((uint64_t *)col)[i];
    free(col);
#define LOAD_COL(field, cls, mtype, ctype)                                                         \
    if (rc == 0) {                                                                                 \
        if (read_ds(g, #field, cls, mtype, sizeof(ctype), 1, &m, &col) < 0 || m != n)              \
            rc = -1;                                                                               \
        for (size_t i = 0; rc == 0 && i < n; i++)                                                  \
            ck->metrics[i].field = ((ctype *)col)[i];                                              \
        free(col);                                                                                 \
    }
    LOAD_COL(kind, H5T_INTEGER, H5T_NATIVE_UINT8, uint8_t)
    LOAD_COL(outcome, H5T_INTEGER, H5T_NATIVE_UINT8, uint8_t)
    LOAD_COL(loss, H5T_FLOAT, H5T_NATIVE_DOUBLE, double)
    LOAD_COL(tokens, H5T_FLOAT, H5T_NATIVE_DOUBLE, double)
    LOAD_COL(orgs_selected, H5T_INTEGER, H5T_NATIVE_UINT32, uint32_t)
    LOAD_COL(orgs_completed, H5T_INTEGER, H5T_NATIVE_UINT32, uint32_t)
    LOAD_COL(orgs_dropped, H5T_INTEGER, H5T_NATIVE_UINT32, uint32_t)
    LOAD_COL(bytes_in, H5T_INTEGER, H5T_NATIVE_UINT64, uint64_t)
    LOAD_COL(bytes_out, H5T_INTEGER, H5T_NATIVE_UINT64, uint64_t)
    LOAD_COL(t_start, H5T_FLOAT, H5T_NATIVE_DOUBLE, double)
    LOAD_COL(t_end, H5T_FLOAT, H5T_NATIVE_DOUBLE, double)
    /* privacy columns, absent from checkpoints written before them: no noise was added then,
     * a completed training round still counts as released */
    if (rc == 0 && H5Lexists(g, "released", H5P_DEFAULT) > 0) {
        LOAD_COL(released, H5T_INTEGER, H5T_NATIVE_UINT8, uint8_t)
        LOAD_COL(epsilon, H5T_FLOAT, H5T_NATIVE_DOUBLE, double)
        LOAD_COL(record_epsilon, H5T_FLOAT, H5T_NATIVE_DOUBLE, double)
        for (size_t i = 0; rc == 0 && i < n; i++)
            ck->metrics[i].dp_tracked = (uint8_t)((isnan(ck->metrics[i].epsilon) ? 0 : 1) |
                                                  (isnan(ck->metrics[i].record_epsilon) ? 0 : 2));
    } else {
        for (size_t i = 0; i < n; i++) {
            ck->metrics[i].released = ck->metrics[i].kind == CO_ROUND_TRAIN &&
                                      ck->metrics[i].outcome == CO_ROUND_COMPLETED;
            ck->metrics[i].epsilon = ck->metrics[i].record_epsilon = NAN;
        }
    }
    H5Gclose(g);
    return rc;
}

static int load_orgs(hid_t f, co_checkpoint *ck)
{
    hid_t g = H5Gopen2(f, "orgs", H5P_DEFAULT);
    if (g < 0)
        return -1;
    hsize_t n = 0, dn[2] = {0, 0}, dp[2] = {0, 0};
    uint32_t *ids = NULL;
    uint8_t *names = NULL, *pks = NULL;
    int rc = -1;
    if (read_ds(g, "id", H5T_INTEGER, H5T_NATIVE_UINT32, 4, 1, &n, (void **)&ids) < 0 ||
        read_ds(g, "name", H5T_INTEGER, H5T_NATIVE_UINT8, 1, 2, dn, (void **)&names) < 0 ||
        read_ds(g, "public_key", H5T_INTEGER, H5T_NATIVE_UINT8, 1, 2, dp, (void **)&pks) < 0)
        goto out_free;
    if (dn[0] != n || dp[0] != n || dn[1] != CO_ORG_NAME_MAX || dp[1] != CO_ORG_PK_BYTES)
        goto out_free;
    ck->orgs = calloc(n ? n : 1, sizeof *ck->orgs);
    if (!ck->orgs)
        goto out_free;
    ck->n_orgs = n;
    for (size_t i = 0; i < n; i++) {
        ck->orgs[i].id = ids[i];
        memcpy(ck->orgs[i].name, names + i * CO_ORG_NAME_MAX, CO_ORG_NAME_MAX);
        ck->orgs[i].name[CO_ORG_NAME_MAX - 1] = 0;
        memcpy(ck->orgs[i].pk, pks + i * CO_ORG_PK_BYTES, CO_ORG_PK_BYTES);
    }
    rc = 0;
out_free:
    free(ids);
    free(names);
    free(pks);
    H5Gclose(g);
    return rc;
}

void co_checkpoint_deinit(co_checkpoint *ck)
{
    if (!ck)
        return;
    for (size_t i = 0; ck->tensors && i < ck->n_tensors; i++) {
        free((char *)ck->tensors[i].name);
        free(ck->tensors[i].data);
    }
    free(ck->tensors);
    free(ck->opt_m);
    free(ck->opt_v);
    free(ck->metrics);
    free(ck->orgs);
    memset(ck, 0, sizeof *ck);
}

int co_checkpoint_load(const char *dir, const uint8_t *expected_hash, int override_hash,
                       co_checkpoint *out, mu_diag *diag)
{
    quiet_hdf5();
    memset(out, 0, sizeof *out);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, CO_CHECKPOINT_FILE) >= (int)sizeof path)
        return mu_diag_set(diag, MU_ERR_INVALID, "%s: checkpoint directory name too long", dir);
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return mu_diag_set(diag, MU_ERR_NOTFOUND, "%s: no checkpoint yet", path);
        return mu_diag_set(diag, MU_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (H5Fis_hdf5(path) <= 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: not an HDF5 file (truncated or corrupted?)",
                           path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: cannot open (truncated or corrupted?)", path);
    int version = 0, strategy = 0, rc = MU_OK;
    const char *what = NULL;
    if (read_attr(f, "format_version", H5T_NATIVE_INT, 1, &version) < 0 ||
        version != CO_CHECKPOINT_VERSION)
        what = "format_version (not a mutual checkpoint, or a newer one)";
    else if (read_attr(f, "round", H5T_NATIVE_UINT64, 1, &out->round) < 0 ||
             read_attr(f, "config_hash", H5T_NATIVE_UINT8, CO_HASH_BYTES, out->config_hash) < 0 ||
             read_attr(f, "strategy", H5T_NATIVE_INT, 1, &strategy) < 0 ||
             read_attr(f, "opt_step", H5T_NATIVE_UINT64, 1, &out->opt_step) < 0)
        what = "root attributes";
    else if (load_adapter(f, out) < 0)
        what = "/adapter";
    else if (load_optimizer(f, out) < 0)
        what = "/optimizer";
    else if (load_metrics(f, out) < 0)
        what = "/metrics";
    else if (load_orgs(f, out) < 0)
        what = "/orgs";
    out->strategy = strategy;
    if (H5Fclose(f) < 0 && !what)
        what = "file close";
    if (what) {
        co_checkpoint_deinit(out);
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: unreadable %s (truncated or corrupted?)", path,
                           what);
    }
    if (expected_hash && sodium_memcmp(expected_hash, out->config_hash, CO_HASH_BYTES) != 0) {
        char have[2 * CO_HASH_BYTES + 1], want[2 * CO_HASH_BYTES + 1];
        co_hash_hex(out->config_hash, 8, have);
        co_hash_hex(expected_hash, 8, want);
        if (!override_hash) {
            co_checkpoint_deinit(out);
            return mu_diag_set(diag, MU_ERR_INVALID,
                               "%s: written for another config (hash %s..., this config %s...); "
                               "refusing to resume (override to use it anyway)",
                               path, have, want);
        }
        mu_warn("%s: written for another config (hash %s..., this config %s...); resuming "
                "anyway as asked",
                path, have, want);
    }
    return rc;
}

int co_hash_file(const char *path, uint8_t out[CO_HASH_BYTES], mu_diag *diag)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return mu_diag_set(diag, MU_ERR_IO, "%s: %s", path, strerror(errno));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, CO_HASH_BYTES);
    unsigned char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        crypto_generichash_update(&st, buf, n);
    int err = ferror(fp);
    fclose(fp);
    if (err)
        return mu_diag_set(diag, MU_ERR_IO, "%s: read error", path);
    crypto_generichash_final(&st, out, CO_HASH_BYTES);
    return MU_OK;
}

char *co_hash_hex(const uint8_t *hash, size_t n, char *buf)
{
    wi_hex_encode(buf, 2 * n + 1, hash, n); /* the header's contract: buf holds 2n + 1 */
    return buf;
}
