/* tr_state.c - training state save/resume in HDF5 (see tr_state.h for the layout). */
#include "tr_state.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mu_h5.h"
#include "tr_h5.h"

#define STATE_FORMAT  "mutual-train-state"
#define STATE_VERSION 1

static int set_ll(hid_t obj, const char *name, long long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static int set_d(hid_t obj, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static int set_str(hid_t obj, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, s) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok ? 0 : -1;
}

static int get_num(hid_t obj, const char *name, hid_t mtype, void *out)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, mtype, out) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0 : -1;
}

static int get_str(hid_t obj, const char *name, char *buf, size_t cap)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    int ok = 0;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t sz = H5Tget_size(ft);
        char *tmp = calloc(1, sz + 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        ok = tmp && H5Aread(a, mt, tmp) >= 0;
        if (ok)
            snprintf(buf, cap, "%s", tmp);
        H5Tclose(mt);
        free(tmp);
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0 : -1;
}

static int write_f32(hid_t loc, const char *name, int ndim, const int64_t *shape, const float *d)
{
    hsize_t dims[4];
    for (int i = 0; i < ndim; i++)
        dims[i] = (hsize_t)shape[i];
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d) >= 0;
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

/* Reads dataset `name` into d after checking its shape. */
static int read_f32(hid_t loc, const char *path, const char *name, int ndim, const int64_t *shape,
                    float *d, mu_diag *diag)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: dataset '%s' is missing", path, name);
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hsize_t dims[8];
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == ndim;
    if (ok) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < ndim; i++)
            ok = ok && dims[i] == (hsize_t)shape[i];
    }
    int rc = ok ? 0
                : mu_diag_set(diag, MU_ERR_FORMAT,
                              "%s: dataset '%s' does not have the model's shape", path, name);
    if (!rc && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d) < 0)
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: reading '%s' failed", path, name);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    return rc;
}

static int write_attrs(hid_t f, const tr_model *m, const tr_optim *o, const tr_state_info *info)
{
    const tr_lora_config *l = tr_lora_get_config(m);
    const tr_optim_config *c = tr_optim_get_config(o);
    int bad = set_str(f, "format", STATE_FORMAT) | set_ll(f, "version", STATE_VERSION) |
              set_ll(f, "step", (long long)info->step) |
              set_ll(f, "data_step", (long long)info->data_step) | set_ll(f, "batch", info->batch) |
              set_ll(f, "seq", info->seq) | set_ll(f, "seed", (long long)info->seed) |
              set_ll(f, "forwards", (long long)tr_model_get_forwards(m)) |
              set_str(f, "base", info->base) | set_ll(f, "family", tr_model_config(m)->family) |
              set_ll(f, "lora_rank", l->rank) | set_d(f, "lora_alpha", l->alpha) |
              set_ll(f, "lora_rslora", l->use_rslora) | set_ll(f, "lora_targets", l->targets) |
              set_ll(f, "lora_freeze_a", l->freeze_a) | set_d(f, "lora_dropout", l->dropout);
    bad |= set_ll(f, "optim_kind", c->kind) | set_d(f, "lr", c->lr) | set_d(f, "beta1", c->beta1) |
           set_d(f, "beta2", c->beta2) | set_d(f, "eps", c->eps) |
           set_d(f, "weight_decay", c->weight_decay) | set_d(f, "momentum", c->momentum) |
           set_d(f, "grad_clip", c->grad_clip) | set_ll(f, "optim_step", tr_optim_get_step(o)) |
           set_ll(f, "dp", info->dp);
    return bad ? -1 : 0;
}

static int write_state(hid_t f, tr_model *m, tr_optim *o, const tr_state_info *info)
{
    if (write_attrs(f, m, o, info))
        return -1;
    hid_t g = H5Gcreate2(f, "lora", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = g < 0;
    for (int i = 0; !bad && i < tr_lora_count(m); i++) {
        tr_tensor t;
        bad = tr_lora_tensor(m, i, &t) || write_f32(g, t.name, t.ndim, t.shape, t.data);
    }
    if (g >= 0)
        H5Gclose(g);
    g = bad ? -1 : H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int64_t n = tr_optim_state_len(o);
    bad = g < 0 || write_f32(g, "m1", 1, &n, tr_optim_m1(o)) ||
          (tr_optim_m2(o) && write_f32(g, "m2", 1, &n, tr_optim_m2(o)));
    if (g >= 0)
        H5Gclose(g);
    return bad ? -1 : 0;
}

int tr_state_save(const char *path, tr_model *m, tr_optim *o, const tr_state_info *info,
                  mu_diag *diag)
{
    if (!tr_lora_get_config(m) || tr_lora_count(m) <= 0)
        return mu_diag_set(diag, MU_ERR_STATE, "%s: the model has no LoRA attached", path);
    if (tr_optim_state_len(o) != tr_lora_trainable_count(m))
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "%s: optimizer has %lld values, the model %lld trainable", path,
                           (long long)tr_optim_state_len(o), (long long)tr_lora_trainable_count(m));
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t f = mu_h5_create_mem(path, 0);
    int rc = MU_OK;
    if (f < 0 || write_state(f, m, o, info)) {
        if (f >= 0)
            H5Fclose(f); /* in memory: nothing reached the disk */
        rc = mu_diag_set(diag, MU_ERR_IO, "%s: building the training state failed", path);
    } else {
        rc = mu_h5_commit(f, path, diag);
    }
    tr_h5_quiet_end(&q);
    return rc;
}

static int read_header(hid_t f, const char *path, tr_family *family, tr_lora_config *l,
                       tr_optim_config *c, tr_state_info *info, mu_diag *diag)
{
    char fmt[64] = "";
    long long v[12];
    double d[9];
    static const char *const ln[] = {"version",     "step",         "data_step",     "batch",
                                     "seq",         "seed",         "family",        "lora_rank",
                                     "lora_rslora", "lora_targets", "lora_freeze_a", "optim_kind"};
    static const char *const dn[] = {"lora_alpha", "lora_dropout", "lr",       "beta1",    "beta2",
                                     "eps",        "weight_decay", "momentum", "grad_clip"};
    if (get_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, STATE_FORMAT))
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: not a mutual training state file", path);
    for (int i = 0; i < 12; i++)
        if (get_num(f, ln[i], H5T_NATIVE_LLONG, &v[i]))
            return mu_diag_set(diag, MU_ERR_FORMAT, "%s: attribute '%s' is missing or bad", path,
                               ln[i]);
    for (int i = 0; i < 9; i++)
        if (get_num(f, dn[i], H5T_NATIVE_DOUBLE, &d[i]))
            return mu_diag_set(diag, MU_ERR_FORMAT, "%s: attribute '%s' is missing or bad", path,
                               dn[i]);
    if (v[0] != STATE_VERSION)
        return mu_diag_set(diag, MU_ERR_UNSUPPORTED, "%s: state version %lld (expected %d)", path,
                           v[0], STATE_VERSION);
    if (info) {
        memset(info, 0, sizeof *info);
        info->step = (uint64_t)v[1];
        info->data_step = (uint64_t)v[2];
        info->batch = (int)v[3];
        info->seq = (int)v[4];
        info->seed = (uint64_t)v[5];
        get_str(f, "base", info->base, sizeof info->base);
        long long dp = 0;
        info->dp = get_num(f, "dp", H5T_NATIVE_LLONG, &dp) == 0 && dp != 0;
    }
    if (family)
        *family = (tr_family)v[6];
    if (l)
        *l = (tr_lora_config){.rank = (int)v[7],
                              .use_rslora = (int)v[8],
                              .targets = (unsigned)v[9],
                              .freeze_a = (int)v[10],
                              .alpha = (float)d[0],
                              .dropout = (float)d[1]};
    if (c)
        *c = (tr_optim_config){.kind = (tr_optim_kind)v[11],
                               .lr = d[2],
                               .beta1 = d[3],
                               .beta2 = d[4],
                               .eps = d[5],
                               .weight_decay = d[6],
                               .momentum = d[7],
                               .grad_clip = d[8]};
    return 0;
}

static hid_t open_state(const char *path, mu_diag *diag, int *rc)
{
    if (access(path, R_OK)) {
        *rc = mu_diag_set(diag, MU_ERR_NOTFOUND, "%s: no such training state file", path);
        return -1;
    }
    hid_t f = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    *rc = f < 0 ? mu_diag_set(diag, MU_ERR_FORMAT, "%s: not an HDF5 file", path) : 0;
    return f;
}

int tr_state_peek(const char *path, tr_family *family, tr_lora_config *lcfg, tr_optim_config *ocfg,
                  tr_state_info *info, mu_diag *diag)
{
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    int rc;
    hid_t f = open_state(path, diag, &rc);
    if (f >= 0) {
        rc = read_header(f, path, family, lcfg, ocfg, info, diag);
        H5Fclose(f);
    }
    tr_h5_quiet_end(&q);
    return rc;
}

static int same_run(const char *path, const tr_model *m, const tr_optim *o, const tr_lora_config *l,
                    const tr_optim_config *c, tr_family fam, mu_diag *diag)
{
    const tr_lora_config *ml = tr_lora_get_config(m);
    const tr_optim_config *oc = tr_optim_get_config(o);
    if (!ml || fam != tr_model_config(m)->family || ml->rank != l->rank ||
        ml->targets != l->targets || ml->freeze_a != l->freeze_a ||
        ml->use_rslora != l->use_rslora || ml->alpha != l->alpha)
        return mu_diag_set(diag, MU_ERR_FORMAT,
                           "%s: saved LoRA config (rank %d, alpha %g, targets 0x%x, freeze_a %d) "
                           "differs from the model's",
                           path, l->rank, (double)l->alpha, l->targets, l->freeze_a);
    if (oc->kind != c->kind)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: saved optimizer kind differs", path);
    return 0;
}

static int read_tensors(hid_t f, const char *path, tr_model *m, tr_optim *o, mu_diag *diag)
{
    hid_t g = H5Gopen2(f, "lora", H5P_DEFAULT);
    if (g < 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: group /lora is missing", path);
    int rc = 0;
    for (int i = 0; !rc && i < tr_lora_count(m); i++) {
        tr_tensor t;
        rc = tr_lora_tensor(m, i, &t);
        if (!rc)
            rc = read_f32(g, path, t.name, t.ndim, t.shape, t.data, diag);
    }
    H5Gclose(g);
    if (rc)
        return rc;
    g = H5Gopen2(f, "optim", H5P_DEFAULT);
    if (g < 0)
        return mu_diag_set(diag, MU_ERR_FORMAT, "%s: group /optim is missing", path);
    int64_t n = tr_optim_state_len(o);
    rc = read_f32(g, path, "m1", 1, &n, tr_optim_m1(o), diag);
    if (!rc && tr_optim_m2(o))
        rc = read_f32(g, path, "m2", 1, &n, tr_optim_m2(o), diag);
    H5Gclose(g);
    if (!rc)
        rc = tr_model_check_finite(m, 1, path, diag);
    if (!rc && (tr_first_nonfinite(tr_optim_m1(o), n) < n ||
                (tr_optim_m2(o) && tr_first_nonfinite(tr_optim_m2(o), n) < n)))
        rc = mu_diag_set(diag, MU_ERR_INVALID,
                         "%s: the optimizer moments (/optim) hold a non-finite value", path);
    return rc;
}

int tr_state_load(const char *path, tr_model *m, tr_optim *o, tr_state_info *info, mu_diag *diag)
{
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    int rc;
    tr_family fam;
    tr_lora_config l;
    tr_optim_config c;
    tr_state_info local;
    hid_t f = open_state(path, diag, &rc);
    if (f < 0)
        goto out;
    rc = read_header(f, path, &fam, &l, &c, info ? info : &local, diag);
    if (!rc)
        rc = same_run(path, m, o, &l, &c, fam, diag);
    if (!rc)
        rc = read_tensors(f, path, m, o, diag);
    long long fw = 0, ostep = 0;
    if (!rc && (get_num(f, "forwards", H5T_NATIVE_LLONG, &fw) ||
                get_num(f, "optim_step", H5T_NATIVE_LLONG, &ostep)))
        rc = mu_diag_set(diag, MU_ERR_FORMAT, "%s: attribute 'forwards' or 'optim_step' is bad",
                         path);
    if (!rc) {
        tr_model_set_forwards(m, (uint64_t)fw);
        tr_optim_set_step(o, ostep);
    }
    H5Fclose(f);
out:
    tr_h5_quiet_end(&q);
    return rc;
}
