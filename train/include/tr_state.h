/* tr_state.h - training state in HDF5, for stopping and resuming a LoRA run exactly.
 *
 * Layout of the file (format "mutual-train-state", version 1):
 *   root attributes: format, version, step, data_step, batch, seq, seed, forwards,
 *     base (string), family, lora_rank, lora_alpha, lora_rslora, lora_targets,
 *     lora_freeze_a, lora_dropout, optim_kind, lr, beta1, beta2, eps, weight_decay,
 *     momentum, grad_clip, optim_step; dp (optional: absent reads as 0)
 *   /lora/<PEFT name>  float32, the tensor's shape: every LoRA tensor (frozen A too)
 *   /optim/m1          float32 [n]: AdamW exp_avg / SGD momentum buffer
 *   /optim/m2          float32 [n]: AdamW exp_avg_sq (absent for SGD)
 *
 * Saving builds the file in memory (mu_h5.h), writes PATH.tmp, fsyncs it, renames it over
 * PATH and fsyncs the folder, so PATH is always either the previous state or the complete
 * new one, also when the disk is full (an ordinary MU_ERR_IO then). Errors name the file (and the
 * dataset or attribute); HDF5's own error printing is switched off meanwhile. HDF5 calls
 * hold train/'s HDF5 lock (see tr_data.h).
 */
#ifndef TR_STATE_H
#define TR_STATE_H

#include <stdint.h>

#include "mu_err.h"
#include "tr_model.h"

typedef struct {
    uint64_t step;      /* training steps completed */
    uint64_t data_step; /* the data-order step the next batch comes from */
    int batch, seq;     /* B and T of the run */
    uint64_t seed;      /* the seed LoRA was attached with */
    char base[1024];    /* the base model folder used */
    int dp;             /* 1: a DP-SGD run (tr_dp.h), attribute "dp"; absent in a file = 0 */
} tr_state_info;

/* Saves m's LoRA tensors and config, the forward counter, the optimizer's config, moments
 * and step, and *info. MU_ERR_STATE without LoRA; MU_ERR_INVALID if the optimizer's length
 * differs from the trainable count; MU_ERR_IO. */
int tr_state_save(const char *path, tr_model *m, tr_optim *o, const tr_state_info *info,
                  mu_diag *diag);

/* Reads only the run's configs and info, so a caller can build the model (same base),
 * attach LoRA with *lcfg and *seed, and create the optimizer with *ocfg before tr_state_load.
 * Any of the out pointers may be NULL. */
int tr_state_peek(const char *path, tr_family *family, tr_lora_config *lcfg, tr_optim_config *ocfg,
                  tr_state_info *info, mu_diag *diag);

/* Restores LoRA tensors, forward counter, optimizer moments and step into m and o (built
 * as tr_state_peek describes) and fills *info (may be NULL). MU_ERR_FORMAT naming the
 * dataset when a tensor is missing or has another shape, or the LoRA or optimizer config
 * differs from the saved one; MU_ERR_INVALID naming the tensor when a LoRA tensor or a
 * moment holds a NaN or infinity. On error m and o may be partly restored. */
int tr_state_load(const char *path, tr_model *m, tr_optim *o, tr_state_info *info, mu_diag *diag);

#endif
