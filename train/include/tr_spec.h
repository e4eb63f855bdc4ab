/* tr_spec.h - the `model:` section of a config file: which base model a federation
 * fine-tunes and the LoRA shape, read by one function for `mutual serve` and `mutual sim`.
 *
 *   base      path    (required unless TR_SPEC_BASE_OPTIONAL) Hugging Face folder, resolved
 *                     against the config file's folder; its config.json is read here
 *   name      string  = base as written   base_model_name_or_path of exported adapters
 *   rank      int     8      [1, 4096]
 *   alpha     number  16     [1e-6, 1e6]; scaling alpha / rank (alpha / sqrt(rank) with rslora)
 *   targets   string  tr_lora_targets_default(family): PEFT module names
 *   rslora    bool    false
 *   freeze_a  bool    true   A drawn from `seed` and fixed; only B is trained and federated
 *   dropout   number  0      [0, 0.99]
 *   seed      int     0      seed of A's init (shared by every org)
 * Errors are "FILE:LINE:COL: ..." in the diag (a bad base folder points at `base`).
 */
#ifndef TR_SPEC_H
#define TR_SPEC_H

#include <stdint.h>

#include "mu_yaml.h"
#include "tr_model.h"

#define TR_SPEC_PATH_MAX 1024

typedef struct {
    char base[TR_SPEC_PATH_MAX]; /* resolved; "" when absent (TR_SPEC_BASE_OPTIONAL) */
    char name[512];
    tr_lora_config lora; /* targets resolved for the base's family; 0 without a base */
    uint64_t seed;
    tr_family family; /* from base/config.json; 0 without a base */
} tr_model_spec;

#define TR_SPEC_BASE_OPTIONAL 1u /* `base` may be absent (sim's synthetic mode) */

/* The PEFT module names adapted when `targets` is not given: "c_attn" for GPT-2,
 * "q_proj,v_proj" for the Llama family. The one place this default lives. */
const char *tr_lora_targets_default(tr_family family);

/* The defaults above, no base. */
void tr_model_spec_default(tr_model_spec *spec);

/* Reads the mapping `model` of doc over the defaults. `extra_keys` (NULL-terminated, may be
 * NULL) are further keys the caller reads itself; any other key is an error. MU_OK or
 * MU_ERR_INVALID with FILE:LINE:COL. */
int tr_model_spec_parse(const mu_yaml_doc *doc, const mu_yaml_node *model,
                        const char *const *extra_keys, unsigned flags, tr_model_spec *spec,
                        mu_diag *diag);

#endif
