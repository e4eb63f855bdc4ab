/* nd_model.c - the federation's model spec, its JSON form for JoinReply, and the Ed25519ph
 * signatures of pushed messages. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd_internal.h"
#include "mu_file.h"
#include "mu_yaml.h"
#include "rpc.h"
#include "tr_hf.h"
#include "tr_spec.h"
#include "wi_bytes.h"

static int spec_from_doc(const mu_yaml_doc *doc, nd_model_spec *s, mu_diag *d)
{
    const mu_yaml_node *m = mu_yaml_get(doc->root, "model");
    if (!m)
        return mu_diag_set(d, MU_ERR_NOTFOUND,
                           "%s: no 'model:' section (the base model and "
                           "LoRA shape the federation fine-tunes)",
                           doc->path);
    return tr_model_spec_parse(doc, m, NULL, 0, s, d);
}

int nd_model_spec_load(const char *path, nd_model_spec *spec, mu_diag *diag)
{
    memset(spec, 0, sizeof *spec);
    mu_yaml_doc *doc = mu_yaml_load(path, diag);
    if (!doc)
        return MU_ERR_INVALID;
    int rc = doc->root ? spec_from_doc(doc, spec, diag)
                       : mu_diag_set(diag, MU_ERR_NOTFOUND, "%s: empty config", path);
    mu_yaml_free(doc);
    return rc;
}

int nd_model_config_hash(const char *dir, uint8_t out[32], mu_diag *diag)
{
    char path[ND_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, TR_HF_CONFIG);
    char *text = NULL;
    size_t len = 0;
    int rc = mu_read_file(path, 16u << 20, &text, &len, diag);
    if (rc)
        return rc;
    rpc_sha256((const uint8_t *)text, len, out);
    free(text);
    return MU_OK;
}

tr_model *nd_model_skeleton(const nd_model_spec *s, tr_config *cfg_out, mu_diag *d)
{
    tr_config cfg;
    if (tr_hf_config_load(s->base, &cfg, d))
        return NULL;
    tr_model *m = tr_model_new(&cfg, d);
    if (!m)
        return NULL;
    if (tr_lora_attach(m, &s->lora, s->seed, d)) {
        tr_model_free(m);
        return NULL;
    }
    if (cfg_out)
        *cfg_out = *tr_model_config(m);
    return m;
}

/* ---- federation_config JSON -------------------------------------------------------------- */

int nd_fedcfg_encode(const nd_fedcfg *f, char **out, size_t *len)
{
    char h[65], seed[32], inst[17];
    wi_hex_encode(h, sizeof h, f->config_sha256, 32);
    wi_hex_encode(inst, sizeof inst, f->instance, 8);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)f->seed);
    json_t *j = json_pack("{s:i,s:s,s:s,s:i,s:f,s:i,s:b,s:b,s:f,s:s,s:I,s:s}", "format", 1,
                          "model_type", f->model_type, "config_sha256", h, "rank", f->lora.rank,
                          "alpha", (double)f->lora.alpha, "targets", (int)f->lora.targets, "rslora",
                          f->lora.use_rslora, "freeze_a", f->lora.freeze_a, "dropout",
                          (double)f->lora.dropout, "seed", seed, "dim", (json_int_t)f->dim,
                          "instance", inst);
    if (!j)
        return MU_ERR_NOMEM;
    if (f->has_training_hash) {
        char th[65];
        wi_hex_encode(th, sizeof th, f->training_hash, 32);
        if (json_object_set_new(j, "training_hash", json_string(th))) {
            json_decref(j);
            return MU_ERR_NOMEM;
        }
    }
    *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (!*out)
        return MU_ERR_NOMEM;
    *len = strlen(*out);
    return MU_OK;
}

int nd_fedcfg_decode(const uint8_t *buf, size_t len, nd_fedcfg *f, mu_diag *diag)
{
    memset(f, 0, sizeof *f);
    json_error_t e;
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        return mu_diag_set(diag, MU_ERR_FORMAT, "federation_config is not JSON: %s", e.text);
    int format = 0, rank = 0, targets = 0, rslora = 0, freeze = 0;
    double alpha = 0, dropout = 0;
    const char *mt = NULL, *h = NULL, *seed = NULL, *inst = NULL, *th = NULL;
    json_int_t dim = 0;
    int rc = json_unpack_ex(
        j, &e, JSON_STRICT, "{s:i,s:s,s:s,s:i,s:F,s:i,s:b,s:b,s:F,s:s,s:I,s:s,s?s}", "format",
        &format, "model_type", &mt, "config_sha256", &h, "rank", &rank, "alpha", &alpha, "targets",
        &targets, "rslora", &rslora, "freeze_a", &freeze, "dropout", &dropout, "seed", &seed, "dim",
        &dim, "instance", &inst, "training_hash", &th);
    if (!rc && th && wi_hex_decode(f->training_hash, 32, th) != MU_OK)
        rc = -1, snprintf(e.text, sizeof e.text, "bad training_hash");
    f->has_training_hash = th != NULL;
    if (rc || format != 1 || strlen(h) != 64 || strlen(inst) != 16 || rank > 4096 ||
        !(alpha > 0 && alpha <= 1e6) || !(dropout >= 0 && dropout < 1) ||
        strlen(mt) >= sizeof f->model_type || rank < 1 || dim < 1 || targets <= 0) {
        mu_diag_set(diag, MU_ERR_FORMAT, "federation_config: %s", rc ? e.text : "bad values");
        json_decref(j);
        return MU_ERR_FORMAT;
    }
    snprintf(f->model_type, sizeof f->model_type, "%s", mt);
    if (wi_hex_decode(f->config_sha256, 32, h) != MU_OK) {
        json_decref(j);
        return mu_diag_set(diag, MU_ERR_FORMAT, "federation_config: bad config_sha256");
    }
    if (wi_hex_decode(f->instance, 8, inst) != MU_OK) {
        json_decref(j);
        return mu_diag_set(diag, MU_ERR_FORMAT, "federation_config: bad instance");
    }
    char *end = NULL;
    f->seed = strtoull(seed, &end, 10);
    if (!end || *end) {
        json_decref(j);
        return mu_diag_set(diag, MU_ERR_FORMAT, "federation_config: bad seed");
    }
    f->lora.rank = rank;
    f->lora.alpha = (float)alpha;
    f->lora.targets = (unsigned)targets;
    f->lora.use_rslora = rslora;
    f->lora.freeze_a = freeze;
    f->lora.dropout = (float)dropout;
    f->dim = (uint64_t)dim;
    json_decref(j);
    return MU_OK;
}
