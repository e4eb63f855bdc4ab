/* cmd_train.h - what cmd_train.c (options, help) hands to cmd_train_run.c (model, data,
 * resume, the loop, the outputs) for `mutual train`. Private to the CLI. */
#ifndef MU_CMD_TRAIN_H
#define MU_CMD_TRAIN_H

#include "mu_err.h"
#include "tr_model.h"

#define TRAIN_STATE_FILE "training_state.h5"

/* Options that define a run: --resume takes them from the saved state instead. */
enum {
    TRAIN_GIVEN_INIT = 1u << 0,
    TRAIN_GIVEN_TARGETS = 1u << 1,
    TRAIN_GIVEN_RANK = 1u << 2,
    TRAIN_GIVEN_ALPHA = 1u << 3,
    TRAIN_GIVEN_FREEZE = 1u << 4,
    TRAIN_GIVEN_BATCH = 1u << 5,
    TRAIN_GIVEN_SEQ = 1u << 6,
    TRAIN_GIVEN_OPT = 1u << 7,
    TRAIN_GIVEN_WD = 1u << 8,
    TRAIN_GIVEN_CLIP = 1u << 9,
    TRAIN_GIVEN_SEED = 1u << 10,
};

typedef struct {
    const char *base, *data, *out, *adapter_init, *targets, *log_jsonl;
    long rank, steps, batch, seq, threads;
    double alpha, lr, weight_decay, grad_clip;
    int freeze_a, lr_set, resume, force, checkpointing, bf16;
    unsigned given; /* TRAIN_GIVEN_* bits of the options on the command line */
    tr_optim_kind optimizer;
    unsigned long long seed;
    /* DP-SGD (tr_dp.h): dp != 0 turns it on; dp_given says which --dp-* were given. */
    int dp, dp_sampling, dp_seed_set;
    unsigned dp_given;
    double dp_clip, dp_noise, dp_delta; /* dp_delta 0: 1 / records */
    unsigned long long dp_seed;
} train_opts;

/* Runs the training `o` describes and writes OUT. Returns MU_EXIT_OK, MU_EXIT_FAIL or
 * MU_EXIT_USAGE, having printed "mutual train: ..." for either error. */
int train_run_all(const train_opts *o);

#endif
