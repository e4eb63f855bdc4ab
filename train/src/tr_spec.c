/* tr_spec.c - the `model:` section of serve's and sim's configs (tr_spec.h). */
#include "tr_spec.h"

#include <stdio.h>
#include <string.h>

#include "tr_hf.h"

static const char *const spec_keys[] = {"base",   "name",     "rank",    "alpha", "targets",
                                        "rslora", "freeze_a", "dropout", "seed",  NULL};

const char *tr_lora_targets_default(tr_family family)
{
    return family == TR_GPT2 ? "c_attn" : "q_proj,v_proj";
}

void tr_model_spec_default(tr_model_spec *s)
{
    memset(s, 0, sizeof *s);
    s->lora = (tr_lora_config){.rank = 8, .alpha = 16, .freeze_a = 1};
}

static int check_keys(const mu_yaml_doc *doc, const mu_yaml_node *m, const char *const *extra,
                      mu_diag *d)
{
    const char *all[32];
    size_t n = 0;
    for (const char *const *k = spec_keys; *k; k++)
        all[n++] = *k;
    for (const char *const *k = extra; k && *k && n < 31; k++)
        all[n++] = *k;
    all[n] = NULL;
    return mu_yaml_check_keys(doc, m, all, d);
}

static int read_base(const mu_yaml_doc *doc, const mu_yaml_node *m, tr_model_spec *s, mu_diag *d)
{
    const mu_yaml_node *n = mu_yaml_get(m, "base");
    const char *written = NULL;
    int rc;
    if ((rc = mu_yaml_as_str(doc, n, &written, d)))
        return rc;
    if (!written[0])
        return mu_yaml_error(doc, n, d, "'base' is empty");
    if ((rc = mu_yaml_as_path(doc, n, s->base, sizeof s->base, d)))
        return rc;
    snprintf(s->name, sizeof s->name, "%s", written);
    tr_config mc;
    mu_diag inner = {{0}};
    if (tr_hf_config_load(s->base, &mc, &inner) != MU_OK)
        return mu_yaml_error(doc, n, d, "%s", inner.msg);
    s->family = mc.family;
    return MU_OK;
}

int tr_model_spec_parse(const mu_yaml_doc *doc, const mu_yaml_node *m,
                        const char *const *extra_keys, unsigned flags, tr_model_spec *s, mu_diag *d)
{
    tr_model_spec_default(s);
    int rc = check_keys(doc, m, extra_keys, d);
    if (rc)
        return rc;
    if (!(flags & TR_SPEC_BASE_OPTIONAL) && (rc = mu_yaml_require(doc, m, "base", d)))
        return rc;
    if (mu_yaml_get(m, "base") && (rc = read_base(doc, m, s, d)))
        return rc;
    const char *name = NULL, *targets = NULL;
    long long rank = s->lora.rank, seed = 0;
    double alpha = s->lora.alpha, dropout = 0;
    if ((rc = mu_yaml_get_str(doc, m, "name", &name, d)) ||
        (rc = mu_yaml_get_int(doc, m, "rank", 1, 4096, &rank, d)) ||
        (rc = mu_yaml_get_double(doc, m, "alpha", 1e-6, 1e6, &alpha, d)) ||
        (rc = mu_yaml_get_str(doc, m, "targets", &targets, d)) ||
        (rc = mu_yaml_get_bool(doc, m, "rslora", &s->lora.use_rslora, d)) ||
        (rc = mu_yaml_get_bool(doc, m, "freeze_a", &s->lora.freeze_a, d)) ||
        (rc = mu_yaml_get_double(doc, m, "dropout", 0, 0.99, &dropout, d)) ||
        (rc = mu_yaml_get_int(doc, m, "seed", 0, INT64_MAX, &seed, d)))
        return rc;
    if (name)
        snprintf(s->name, sizeof s->name, "%s", name);
    s->lora.rank = (int)rank;
    s->lora.alpha = (float)alpha;
    s->lora.dropout = (float)dropout;
    s->seed = (uint64_t)seed;
    if (!s->base[0])
        return MU_OK;
    mu_diag inner = {{0}};
    if (tr_lora_targets_parse(s->family, targets ? targets : tr_lora_targets_default(s->family),
                              &s->lora.targets, &inner) != MU_OK)
        return mu_yaml_error(doc, mu_yaml_get(m, "targets"), d, "%s", inner.msg);
    return MU_OK;
}
