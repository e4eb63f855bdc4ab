/* tr_peft.c - PEFT LoRA adapter folders: adapter_config.json + adapter_model.safetensors. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mu_file.h"
#include "tr_hf.h"
#include "tr_hf_json.h"
#include "tr_safetensors.h"

/* Joins a JSON list of module names into "a,b,c" for tr_lora_targets_parse. */
static int targets_list(const tr_json *j, char *buf, size_t cap)
{
    json_t *v = json_object_get(j->root, "target_modules");
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "all-linear"))
            return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED,
                               "%s: target_modules as a regular expression ('%s') is not "
                               "supported; list the module names",
                               j->path, json_string_value(v));
        snprintf(buf, cap, "all-linear");
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return mu_diag_set(j->diag, MU_ERR_FORMAT,
                           "%s: 'target_modules' must be a non-empty list of names", j->path);
    size_t o = 0, i;
    json_t *it;
    buf[0] = 0;
    json_array_foreach(v, i, it)
    {
        const char *s = json_string_value(it);
        if (!s || o + strlen(s) + 2 > cap)
            return mu_diag_set(j->diag, MU_ERR_FORMAT, "%s: 'target_modules' entry %zu is bad",
                               j->path, i);
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", s);
    }
    return 0;
}

/* PEFT options that change what the adapter computes and that this engine lacks. */
static int refuse_extras(const tr_json *j)
{
    static const char *const absent[] = {"layers_to_transform", "modules_to_save",
                                         "layer_replication", NULL};
    static const char *const empty[] = {"rank_pattern", "alpha_pattern", NULL};
    for (int i = 0; absent[i]; i++) {
        json_t *v = json_object_get(j->root, absent[i]);
        if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
            return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED, "%s: '%s' is not supported", j->path,
                               absent[i]);
    }
    for (int i = 0; empty[i]; i++) {
        json_t *v = json_object_get(j->root, empty[i]);
        if (v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0))
            return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED, "%s: '%s' is not supported", j->path,
                               empty[i]);
    }
    int dora = 0, rc = tr_json_bool(j, "use_dora", &dora);
    if (rc || dora)
        return rc ? rc
                  : mu_diag_set(j->diag, MU_ERR_UNSUPPORTED, "%s: DoRA is not supported", j->path);
    const char *bias = tr_json_str(j, "bias");
    if (bias && strcmp(bias, "none"))
        return mu_diag_set(j->diag, MU_ERR_UNSUPPORTED,
                           "%s: bias '%s' is not supported (only \"none\")", j->path, bias);
    return 0;
}

int tr_peft_config_load(const char *dir, tr_family family, tr_peft_info *info, mu_diag *diag)
{
    tr_json j;
    memset(info, 0, sizeof *info);
    int rc = tr_json_load(&j, dir, TR_PEFT_CONFIG, diag);
    if (rc)
        return rc;
    const char *type = tr_json_str(&j, "peft_type");
    tr_lora_config *l = &info->lora;
    char targets[1024];
    if (!type || strcmp(type, "LORA")) {
        rc = mu_diag_set(diag, type ? MU_ERR_UNSUPPORTED : MU_ERR_FORMAT,
                         "%s: peft_type must be \"LORA\"", j.path);
        goto out;
    }
    if ((rc = tr_json_int(&j, "r", 1, 1, 65536, &l->rank)) ||
        (rc = tr_json_num(&j, "lora_alpha", 1, 1e-30, 1e30, &l->alpha)) ||
        (rc = tr_json_num(&j, "lora_dropout", 0, 0, 0.999999, &l->dropout)) ||
        (rc = tr_json_bool(&j, "use_rslora", &l->use_rslora)) || (rc = refuse_extras(&j)) ||
        (rc = targets_list(&j, targets, sizeof targets)))
        goto out;
    if ((rc = tr_lora_targets_parse(family, targets, &l->targets, diag))) {
        char msg[sizeof diag->msg];
        snprintf(msg, sizeof msg, "%s", diag ? diag->msg : "");
        rc = mu_diag_set(diag, rc, "%s: target_modules: %s", j.path, msg);
        goto out;
    }
    const char *base = tr_json_str(&j, "base_model_name_or_path");
    snprintf(info->base_model, sizeof info->base_model, "%s", base ? base : "");
out:
    tr_json_free(&j);
    return rc;
}

int tr_peft_load_weights(tr_model *m, const char *dir, mu_diag *diag)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TR_PEFT_WEIGHTS);
    int n = tr_lora_count(m), rc;
    if (n <= 0)
        return mu_diag_set(diag, MU_ERR_STATE, "%s: the model has no LoRA attached", path);
    tr_st *st = tr_st_open(path, &rc, diag);
    if (!st)
        return rc;
    for (int i = 0; i < n && !rc; i++) {
        tr_tensor t;
        rc = tr_lora_tensor(m, i, &t);
        if (!rc)
            rc = tr_st_load(st, t.name, t.ndim, t.shape, t.data, diag);
        if (rc == MU_ERR_FORMAT && diag && strlen(diag->msg) < sizeof diag->msg - 24)
            strcat(diag->msg, " (adapter_config.json)");
    }
    for (size_t k = 0; k < tr_st_count(st) && !rc; k++) {
        const char *name = tr_st_at(st, k)->name;
        if (tr_lora_find(m, name) < 0)
            rc = mu_diag_set(diag, MU_ERR_FORMAT,
                             "%s: tensor '%s' is not an adapter of the modules in "
                             "adapter_config.json",
                             path, name);
    }
    tr_st_free(st);
    if (!rc)
        rc = tr_model_check_finite(m, 1, path, diag);
    return rc;
}

int tr_peft_attach(tr_model *m, const char *dir, int freeze_a, uint64_t seed, tr_peft_info *info,
                   mu_diag *diag)
{
    tr_peft_info local;
    tr_peft_info *pi = info ? info : &local;
    int rc = tr_peft_config_load(dir, tr_model_config(m)->family, pi, diag);
    if (rc)
        return rc;
    pi->lora.freeze_a = freeze_a;
    if ((rc = tr_lora_attach(m, &pi->lora, seed, diag)))
        return rc;
    return tr_peft_load_weights(m, dir, diag);
}

static int write_config(const tr_model *m, const char *dir, const char *base, mu_diag *diag)
{
    const tr_lora_config *l = tr_lora_get_config(m);
    tr_family fam = tr_model_config(m)->family;
    const char *names[16];
    int nn = tr_lora_targets_names(fam, l->targets, names, 16);
    if (nn < 0)
        return mu_diag_set(diag, nn, "%s: cannot name the target modules", dir);
    json_t *tm = json_array();
    for (int i = 0; i < nn; i++)
        json_array_append_new(tm, json_string(names[i]));
    json_t *root =
        json_pack("{s:s, s:s, s:i, s:f, s:o, s:f, s:s, s:s, s:b, s:b, s:b}", "peft_type", "LORA",
                  "task_type", "CAUSAL_LM", "r", l->rank, "lora_alpha", (double)l->alpha,
                  "target_modules", tm, "lora_dropout", (double)l->dropout, "bias", "none",
                  "base_model_name_or_path", base ? base : "", "fan_in_fan_out", fam == TR_GPT2,
                  "use_rslora", l->use_rslora, "inference_mode", 0);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!text)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", dir);
    size_t len = strlen(text);
    char *buf = realloc(text, len + 2);
    int rc;
    if (!buf) {
        free(text);
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", dir);
    }
    buf[len] = '\n';
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TR_PEFT_CONFIG);
    rc = mu_write_file_atomic(path, buf, len + 1, diag);
    free(buf);
    return rc;
}

int tr_peft_save(tr_model *m, const char *dir, const char *base_model, mu_diag *diag)
{
    int n = tr_lora_count(m);
    if (n <= 0 || !tr_lora_get_config(m))
        return mu_diag_set(diag, MU_ERR_STATE, "%s: the model has no LoRA attached", dir);
    if (mkdir(dir, 0755) && errno != EEXIST)
        return mu_diag_set(diag, MU_ERR_IO, "%s: %s", dir, strerror(errno));
    tr_st_entry *e = calloc((size_t)n, sizeof *e);
    if (!e)
        return mu_diag_set(diag, MU_ERR_NOMEM, "%s: out of memory", dir);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        tr_tensor t;
        rc = tr_lora_tensor(m, i, &t);
        e[i].name = t.name;
        e[i].ndim = t.ndim;
        for (int k = 0; k < t.ndim; k++)
            e[i].shape[k] = t.shape[k];
        e[i].data = t.data;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TR_PEFT_WEIGHTS);
    static const char *const meta[] = {"format", "pt", NULL};
    if (!rc)
        rc = tr_st_write(path, e, (size_t)n, meta, diag);
    free(e);
    return rc ? rc : write_config(m, dir, base_model, diag);
}
