/* ho_coord.c - the coordinator side of the host layer: push authentication and the
 * after-round pipeline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co_checkpoint.h"
#include "ho_coord.h"
#include "mu_log.h"
#include "tr_hf.h"
#include "wi_metrics.h"
#include "wi_push.h"

#define HO_PATH_MAX 4096

int ho_coord_deliver(co_round *r, uint32_t id, uint64_t round, uint32_t stage, const uint8_t *msg,
                     size_t len, const uint8_t *sig, size_t sig_len, double now, mu_diag *diag)
{
    const co_org *org = co_round_org(r, id);
    if (!org)
        return mu_diag_set(diag, MU_ERR_NOTFOUND, "org id %u is not registered", id);
    if (!sig || sig_len != WI_PUSH_SIG_BYTES ||
        wi_push_verify(sig, org->pk, id, round, stage, msg, len) != MU_OK)
        return mu_diag_set(diag, MU_ERR_CRYPTO,
                           "bad signature (not made with org %s's registered key for round "
                           "%llu stage %u)",
                           org->name, (unsigned long long)round, stage);
    return co_round_on_message(r, id, msg, len, now, diag);
}

int ho_mkdirs(const char *path, mu_diag *diag)
{
    char p[HO_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return mu_diag_set(diag, MU_ERR_IO, "%.200s...: path too long", path);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = 0;
        if (mkdir(p, 0755) && errno != EEXIST)
            return mu_diag_set(diag, MU_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        *c = '/';
    }
    if (mkdir(p, 0755) && errno != EEXIST)
        return mu_diag_set(diag, MU_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    return MU_OK;
}

co_tensor *ho_lora_tensors(tr_model *m, size_t *n)
{
    int total = tr_lora_count(m);
    co_tensor *t = calloc((size_t)(total > 0 ? total : 1), sizeof *t);
    if (!t)
        return NULL;
    *n = 0;
    for (int i = 0; i < total; i++) {
        tr_tensor tt;
        if (tr_lora_tensor(m, i, &tt) || !tr_lora_tensor_grad(m, i))
            continue; /* frozen A: not part of the federated vector */
        co_tensor *c = &t[(*n)++];
        c->name = tt.name;
        c->ndim = tt.ndim;
        for (int k = 0; k < tt.ndim; k++)
            c->shape[k] = (uint64_t)tt.shape[k];
        c->data = tt.data;
    }
    return t;
}

int ho_peft_write(tr_model *model, const float *global, size_t dim, const char *dir,
                  const char *base_name, mu_diag *diag)
{
    int rc = tr_lora_set(model, global, (int64_t)dim);
    if (rc)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "export: the global has %zu values, the "
                           "adapter %lld",
                           dim, (long long)tr_lora_trainable_count(model));
    if ((rc = ho_mkdirs(dir, diag)) != MU_OK)
        return rc;
    return tr_peft_save(model, dir, base_name, diag);
}

/* EXPORT/latest -> NAME, atomically: a temporary symlink renamed over the old one. */
static int link_latest(const char *export_dir, const char *name, mu_diag *diag)
{
    char tmp[HO_PATH_MAX], latest[HO_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.latest.tmp", export_dir);
    snprintf(latest, sizeof latest, "%s/latest", export_dir);
    if (unlink(tmp) && errno != ENOENT)
        return mu_diag_set(diag, MU_ERR_IO, "%s: cannot remove: %s", tmp, strerror(errno));
    if (symlink(name, tmp))
        return mu_diag_set(diag, MU_ERR_IO, "%s: cannot create the link: %s", tmp, strerror(errno));
    if (rename(tmp, latest)) {
        int e = errno;
        unlink(tmp);
        return mu_diag_set(diag, MU_ERR_IO, "%s: cannot replace: %s", latest, strerror(e));
    }
    return MU_OK;
}

static int export_round(const ho_after *a, const co_round *r, uint64_t round, mu_diag *diag)
{
    char name[32], dir[HO_PATH_MAX];
    snprintf(name, sizeof name, "round-%06llu", (unsigned long long)round);
    if (snprintf(dir, sizeof dir, "%s/%s", a->export_dir, name) >= (int)sizeof dir)
        return mu_diag_set(diag, MU_ERR_IO, "%.200s...: path too long", a->export_dir);
    size_t dim;
    const float *g = co_round_global(r, &dim);
    int rc = ho_peft_write(a->model, g, dim, dir, a->base_name, diag);
    if (rc == MU_OK)
        rc = link_latest(a->export_dir, name, diag);
    return rc;
}

int ho_after_export(const ho_after *a, const co_round *r, uint64_t round, mu_diag *diag)
{
    return export_round(a, r, round, diag);
}

static int checkpoint(const ho_after *a, const co_round *r, mu_diag *diag)
{
    int rc = ho_mkdirs(a->checkpoint_dir, diag);
    if (rc != MU_OK)
        return rc;
    static const uint8_t zero[CO_HASH_BYTES];
    co_checkpoint ck;
    co_round_checkpoint_view(r, a->config_hash ? a->config_hash : zero, &ck);
    return co_checkpoint_write(a->checkpoint_dir, &ck, diag);
}

static void metrics_line(const ho_after *a, const co_event *ev)
{
    wi_str b;
    wi_str_init(&b);
    static const co_drop none[1];
    wi_metrics_open(&b, &ev->metrics, ev->reason, ev->dropped ? ev->dropped : none, ev->n_dropped);
    if (a->extra)
        wi_str_printf(&b, "%s", a->extra);
    if (wi_metrics_close(&b) == MU_OK)
        fwrite(b.s, 1, b.len, a->metrics);
    else
        mu_error("round %llu: out of memory writing the metrics line",
                 (unsigned long long)ev->metrics.round);
    fflush(a->metrics);
    wi_str_deinit(&b);
}

int ho_poll_event(co_round *r, co_event *ev)
{
    if (!co_round_poll_event(r, ev))
        return 0;
    char line[400];
    int warn = co_event_describe(ev, line, sizeof line);
    if (line[0])
        mu_log(warn ? MU_LOG_WARN : MU_LOG_INFO, "%s", line);
    return 1;
}

int ho_after_round(const ho_after *a, const co_round *r, const co_event *ev, mu_diag *diag)
{
    const co_metrics *m = &ev->metrics;
    int rc;
    if (a->checkpoint_dir && a->checkpoint_dir[0] && (rc = checkpoint(a, r, diag)) != MU_OK)
        return rc;
    mu_diag d = {{0}};
    if (m->outcome == CO_ROUND_COMPLETED && m->kind == CO_ROUND_TRAIN && a->export_dir &&
        a->export_dir[0] && a->model && export_round(a, r, m->round, &d) != MU_OK)
        mu_error("round %llu: PEFT export failed: %s", (unsigned long long)m->round, d.msg);
    if (a->metrics)
        metrics_line(a, ev);
    return MU_OK;
}
