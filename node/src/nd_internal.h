/* nd_internal.h - what the files of the network driver share. */
#ifndef ND_INTERNAL_H
#define ND_INTERNAL_H

#include "nd.h"

/* A model with zeroed base weights (shapes from spec->base/config.json) and LoRA attached
 * as the spec says: the coordinator needs only the LoRA tensors (initial global, export).
 * *cfg_out (may be NULL) receives the validated config. NULL with diag on failure. */
tr_model *nd_model_skeleton(const nd_model_spec *spec, tr_config *cfg_out, mu_diag *diag);

#endif
