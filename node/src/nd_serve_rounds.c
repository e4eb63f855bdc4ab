/* nd_serve_rounds.c - what `mutual serve` does around finished rounds: the adapter blob that
 * DownloadAdapter streams, traffic counters, the round's JSON line; the checkpoint and the PEFT
 * export are the host layer's (ho_after_round). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ho_coord.h"
#include "mu_file.h"
#include "mu_grow.h"
#include "mu_log.h"
#include "nd_serve_int.h"
#include "wi_blob.h"
#include "wi_json.h"

traffic *nd_srv_traffic_of(server *s, uint32_t id)
{
    if (id == 0)
        return NULL;
    if (id > s->n_traffic) {
        if (MU_GROW(&s->traffic, &s->cap_traffic, id, 64) != MU_OK ||
            MU_GROW(&s->told_done, &s->cap_told, id, 64) != MU_OK)
            return NULL;
        memset(s->traffic + s->n_traffic, 0, (id - s->n_traffic) * sizeof *s->traffic);
        memset(s->told_done + s->n_traffic, 0, id - s->n_traffic);
        s->n_traffic = id;
    }
    return &s->traffic[id - 1];
}

void nd_srv_count(server *s, uint32_t id, size_t in, size_t out)
{
    traffic *t = nd_srv_traffic_of(s, id);
    if (t) {
        t->in += in;
        t->out += out;
    }
}

/* ---- the adapter blob ---------------------------------------------------------------------- */

void nd_srv_blob_release(void *ctx)
{
    blob *b = ctx;
    if (b && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

/* Replaces the current blob by the global as it is now. Streams in flight keep theirs. */
int nd_srv_blob_refresh(server *s)
{
    size_t dim;
    const float *g = co_round_global(s->r, &dim);
    blob *b = calloc(1, sizeof *b);
    if (!b)
        return MU_ERR_NOMEM;
    b->len = wi_blob_len(dim);
    b->data = malloc(b->len);
    if (!b->data) {
        free(b);
        return MU_ERR_NOMEM;
    }
    wi_blob_encode(b->data, b->len, g, dim);
    rpc_sha256(b->data, b->len, b->sha);
    b->refs = 1;
    nd_srv_blob_release(s->cur);
    s->cur = b;
    return MU_OK;
}

/* ---- rounds finished: checkpoint, export, summary ----------------------------------------- */

int nd_srv_dump_global(server *s, uint64_t round, mu_diag *d)
{
    char path[ND_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/global-%06llu.f32", s->o.dump_dir, (unsigned long long)round);
    return mu_write_file_atomic(path, s->cur->data, s->cur->len, d); /* whole or absent */
}

/* This driver's fields of the round's metrics line (ho_after_round writes it on stdout):
 * adapter_bytes, the gRPC bytes in and out (wire_bytes_in/out), how many orgs used the wire
 * and per_org {name: [in, out]}. Then the counters start over for the next round. */
static void traffic_fields(server *s, wi_str *b)
{
    uint64_t in = 0, out = 0;
    uint32_t active = 0;
    for (size_t i = 0; i < s->n_traffic; i++) {
        in += s->traffic[i].in;
        out += s->traffic[i].out;
        active += s->traffic[i].in + s->traffic[i].out > 0;
    }
    size_t dim;
    co_round_global(s->r, &dim);
    wi_str_printf(b,
                  ",\"adapter_bytes\":%zu,\"wire_bytes_in\":%llu,\"wire_bytes_out\":%llu,"
                  "\"orgs_on_wire\":%u,\"per_org\":{",
                  wi_blob_len(dim), (unsigned long long)in, (unsigned long long)out, active);
    int first = 1;
    for (size_t i = 0; i < s->n_traffic; i++) {
        const co_org *org = co_round_org(s->r, (uint32_t)i + 1);
        if (!org || s->traffic[i].in + s->traffic[i].out == 0)
            continue;
        wi_str_printf(b, "%s", first ? "" : ",");
        wi_str_json_string(b, org->name);
        wi_str_printf(b, ":[%llu,%llu]", (unsigned long long)s->traffic[i].in,
                      (unsigned long long)s->traffic[i].out);
        first = 0;
    }
    wi_str_printf(b, "}");
    memset(s->traffic, 0, s->n_traffic * sizeof *s->traffic);
}

void nd_srv_on_round(server *s, const co_event *ev)
{
    const co_metrics *m = &ev->metrics;
    mu_diag d = {{0}};
    int rc = nd_srv_blob_refresh(s);
    if (rc == MU_OK && s->o.dump_dir && nd_srv_dump_global(s, m->round, &d) != MU_OK)
        mu_error("serve: %s", d.msg);
    if (rc == MU_OK) /* logged before the checkpoint: see ho_gov.h */
        rc = nd_srv_gov_round(s, ev, &d);
    const char *export_dir = s->cfg.export_dir;
    mu_diag why = {{0}};
    if (s->gov && export_dir && export_dir[0] && m->outcome == CO_ROUND_COMPLETED &&
        !ho_gov_may_release(s->gov, m->round, &why)) {
        mu_warn("serve: round %llu not exported to %s: %s", (unsigned long long)m->round,
                export_dir, why.msg);
        export_dir = NULL;
    }
    wi_str extra;
    wi_str_init(&extra);
    traffic_fields(s, &extra);
    ho_after a = {.checkpoint_dir = s->cfg.checkpoint_dir,
                  .config_hash = s->cfg_hash,
                  .export_dir = export_dir,
                  .model = s->model,
                  .base_name = s->spec.name,
                  .metrics = stdout,
                  .extra = wi_str_ok(&extra) == MU_OK ? extra.s : NULL};
    if (rc == MU_OK)
        rc = ho_after_round(&a, s->r, ev, &d);
    wi_str_deinit(&extra);
    if (rc != MU_OK) { /* without a checkpoint a crash would lose rounds silently: stop */
        s->fatal = rc;
        mu_diag_set(&s->fatal_diag, rc, "round %llu: checkpoint or audit log: %.400s",
                    (unsigned long long)m->round, d.msg);
        rpc_server_stop(s->srv);
        return;
    }
    char dropped[256];
    co_drops_describe(ev->dropped, ev->n_dropped, dropped, sizeof dropped);
    mu_info("serve: round %llu %s %s: %u/%u orgs, loss %.4f, %.2f s%s%s%s%s",
            (unsigned long long)m->round, m->kind == CO_ROUND_EVAL ? "(eval)" : "(train)",
            m->outcome == CO_ROUND_COMPLETED ? "completed" : "ABORTED", m->orgs_completed,
            m->orgs_selected, m->loss, m->t_end - m->t_start, ev->reason[0] ? ": " : "", ev->reason,
            dropped[0] ? "; dropped: " : "", dropped);
}
