/* cmd_generate_model.c - what a model folder says about generating (cmd_generate.h): the
 * end-of-sequence ids of config.json, generation_config.json and tokenizer_config.json, the
 * sampling fields of generation_config.json, and its chat template. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd_generate.h"
#include "mu_file.h"

/* dir/name parsed, or NULL: *absent = 1 when the file does not exist (not an error). */
static json_t *load_json(const char *dir, const char *name, int *absent, mu_diag *d)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *absent = stat(path, &st) != 0;
    if (*absent)
        return NULL;
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        mu_diag_set(d, MU_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    else if (!json_is_object(j)) {
        mu_diag_set(d, MU_ERR_FORMAT, "%s: not a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int add_eos(gen_model_info *info, double v, int V, const char *file, mu_diag *d)
{
    if (!(v >= 0 && v < V && v == (double)(int64_t)v))
        return mu_diag_set(d, MU_ERR_INVALID, "%s: eos_token_id %g is not a token id in [0, %d)",
                           file, v, V);
    for (int i = 0; i < info->n_eos; i++)
        if (info->eos[i] == (uint32_t)v)
            return MU_OK;
    if (info->n_eos == GEN_MAX_EOS)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: more than %d eos_token_id values", file,
                           GEN_MAX_EOS);
    info->eos[info->n_eos++] = (uint32_t)v;
    return MU_OK;
}

/* eos_token_id: absent, null, a number or a list of numbers. */
static int read_eos(gen_model_info *info, json_t *j, int V, const char *file, mu_diag *d)
{
    json_t *e = json_object_get(j, "eos_token_id");
    if (!e || json_is_null(e))
        return MU_OK;
    if (json_is_number(e))
        return add_eos(info, json_number_value(e), V, file, d);
    if (!json_is_array(e))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: eos_token_id is not an integer or a list", file);
    size_t i;
    json_t *x;
    json_array_foreach(e, i, x)
    {
        if (!json_is_number(x))
            return mu_diag_set(d, MU_ERR_FORMAT, "%s: eos_token_id[%zu] is not an integer", file,
                               i);
        int rc = add_eos(info, json_number_value(x), V, file, d);
        if (rc)
            return rc;
    }
    return MU_OK;
}

/* A number field of generation_config.json: *has = 0 when absent or null. */
static int read_num(json_t *j, const char *key, int *has, double *v, mu_diag *d)
{
    json_t *x = json_object_get(j, key);
    *has = x && !json_is_null(x);
    if (!*has)
        return MU_OK;
    if (!json_is_number(x))
        return mu_diag_set(d, MU_ERR_FORMAT, "generation_config.json: %s is not a number", key);
    *v = json_number_value(x);
    return MU_OK;
}

static int read_sampling(gen_model_info *info, json_t *g, mu_diag *d)
{
    json_t *ds = json_object_get(g, "do_sample");
    if (ds && !json_is_boolean(ds) && !json_is_null(ds))
        return mu_diag_set(d, MU_ERR_FORMAT, "generation_config.json: do_sample is not a boolean");
    info->do_sample = json_is_true(ds);
    double t = 0, p = 0, k = 0, rp = 1;
    int has_rp, rc;
    if ((rc = read_num(g, "temperature", &info->has_temperature, &t, d)) ||
        (rc = read_num(g, "top_p", &info->has_top_p, &p, d)) ||
        (rc = read_num(g, "top_k", &info->has_top_k, &k, d)) ||
        (rc = read_num(g, "repetition_penalty", &has_rp, &rp, d)))
        return rc;
    if (info->has_top_k && !(k >= 0 && k <= 1e9 && k == (double)(int64_t)k))
        return mu_diag_set(d, MU_ERR_FORMAT, "generation_config.json: top_k %g is not a count", k);
    info->sample.temperature = (float)t;
    info->sample.top_p = (float)p;
    info->sample.top_k = (int)k;
    info->repetition_penalty = has_rp ? rp : 1.0;
    return MU_OK;
}

int gen_model_info_load(const char *dir, const tr_tok *tok, int V, gen_model_info *info, mu_diag *d)
{
    memset(info, 0, sizeof *info);
    info->repetition_penalty = 1.0;
    int absent, rc = MU_OK;
    json_t *c = load_json(dir, "config.json", &absent, d);
    if (!c && !absent)
        return MU_ERR_FORMAT;
    if (c)
        rc = read_eos(info, c, V, "config.json", d);
    json_decref(c);
    json_t *g = rc ? NULL : load_json(dir, "generation_config.json", &absent, d);
    if (!rc && !g && !absent)
        rc = MU_ERR_FORMAT;
    if (!rc && g && !(rc = read_eos(info, g, V, "generation_config.json", d)))
        rc = read_sampling(info, g, d);
    json_decref(g);
    uint32_t e = tr_tok_eos_id(tok);
    if (!rc && e != UINT32_MAX)
        rc = add_eos(info, (double)e, V, "tokenizer_config.json eos_token", d);
    return rc;
}
