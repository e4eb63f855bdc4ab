/* cmd_train_run.c - the run behind `mutual train`: load the model and data, attach LoRA
 * (fresh, from --adapter-init, or from OUT/training_state.h5 with --resume), train, and
 * write OUT all at once. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_train.h"
#include "dp.h"
#include "mu_file.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "tr_data.h"
#include "tr_dp.h"
#include "tr_bf16.h"
#include "tr_hf.h"
#include "tr_spec.h"
#include "tr_state.h"

/* OUT's files, written into OUT/STAGE first and moved into OUT only when all are complete,
 * so a full disk never leaves a new adapter beside an old state (or half of either). */
#define STAGE ".partial"
static const char *const out_files[] = {TR_PEFT_WEIGHTS, TR_PEFT_CONFIG, TRAIN_STATE_FILE};
#define N_OUT_FILES (sizeof out_files / sizeof out_files[0])

typedef struct {
    tr_model *m;
    tr_optim *opt;
    tr_data *data;
    FILE *log;
    long start;          /* first step of this run: 0, or the saved step with --resume */
    uint64_t data_start; /* data position of step `start` */
    int B, T;
    unsigned long long seed;
    int usage; /* the error is the command line's: exit 2 */
    tr_dp *dp; /* --dp: the DP-SGD state, records and room for a step's sample */
    int64_t records, *idx;
} train_run;

/* Sets d's message and marks the error as a usage error; returns MU_ERR_INVALID. */
static int usage(train_run *r, mu_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int usage(train_run *r, mu_diag *d, const char *fmt, ...)
{
    r->usage = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return MU_ERR_INVALID;
}

/* The first file of an earlier run in OUT, or NULL. */
static const char *existing_output(const char *out)
{
    char path[4096];
    for (size_t i = 0; i < N_OUT_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", out, out_files[i]);
        if (access(path, F_OK) == 0)
            return out_files[i];
    }
    return NULL;
}

/* --resume: the saved run's LoRA and optimizer configs, batch, sequence, seed and step. */
static int peek_resume(train_run *r, const train_opts *o, tr_lora_config *l, tr_optim_config *c,
                       mu_diag *d)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->out, TRAIN_STATE_FILE);
    tr_state_info info;
    int rc = tr_state_peek(path, NULL, l, c, &info, d);
    if (rc == MU_ERR_NOTFOUND)
        return usage(r, d, "%s: no training state to resume (drop --resume to start a run)", path);
    if (rc)
        return rc;
    if (info.dp)
        return usage(r, d,
                     "%s: a --dp run, which cannot be resumed (the state does not record its "
                     "sampling, noise or privacy spent)",
                     path);
    if ((long long)info.step >= o->steps)
        return usage(r, d,
                     "%s: already trained %llu steps; --steps %ld adds none (--steps is the "
                     "total)",
                     path, (unsigned long long)info.step, o->steps);
    if (strcmp(info.base, o->base))
        mu_warn("train: %s was trained on --base %s; resuming with %s", path, info.base, o->base);
    r->start = (long)info.step;
    r->data_start = info.data_step;
    r->B = info.batch;
    r->T = info.seq;
    r->seed = info.seed;
    if (o->lr_set)
        c->lr = o->lr;
    return MU_OK;
}

/* Attaches LoRA from --adapter-init or from the command line. */
static int attach_lora(tr_model *m, const train_opts *o, mu_diag *d)
{
    tr_family fam = tr_model_config(m)->family;
    if (o->adapter_init) {
        tr_peft_info info;
        int rc = tr_peft_attach(m, o->adapter_init, o->freeze_a, o->seed, &info, d);
        if (!rc && (o->given & (TRAIN_GIVEN_RANK | TRAIN_GIVEN_ALPHA | TRAIN_GIVEN_TARGETS)))
            mu_warn("train: --rank, --alpha and --targets are ignored: %s/%s says r=%d "
                    "alpha=%g",
                    o->adapter_init, TR_PEFT_CONFIG, info.lora.rank, (double)info.lora.alpha);
        return rc;
    }
    tr_lora_config l = {
        .rank = (int)o->rank, .alpha = (float)o->alpha, .freeze_a = o->freeze_a, .dropout = 0};
    const char *targets = o->targets ? o->targets : tr_lora_targets_default(fam);
    int rc = tr_lora_targets_parse(fam, targets, &l.targets, d);
    if (!rc)
        rc = tr_lora_attach(m, &l, o->seed, d);
    return rc;
}

/* Why the loss of step s is not finite. Every weight this run starts from is finite (the
 * base, --adapter-init and --resume are refused at load otherwise), so at its first step the
 * model itself overflows on this data and a lower --lr cannot help; later, this run's
 * updates diverged. (tr_train_step has already applied step s's update, from non-finite
 * gradients, when the loss is seen: the weights now say nothing about the cause.) */
static const char *nan_name(float x)
{
    return isnan(x) ? "NaN" : x > 0 ? "+inf" : "-inf";
}

static int nan_loss(const train_run *r, const train_opts *o, long s, float loss, mu_diag *d)
{
    if (s == r->start)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "loss is %s at step %ld, the first of this run, although "
                           "every weight is finite: the model overflows on this data (check "
                           "the base model in %s%s)",
                           nan_name(loss), s, o->base,
                           o->adapter_init || o->resume ? " and the adapter it starts from" : "");
    return mu_diag_set(d, MU_ERR_INVALID,
                       "loss is %s at step %ld, after %ld updates from finite weights: "
                       "training diverged; lower --lr (now %g) or set --grad-clip",
                       nan_name(loss), s, s - r->start, tr_optim_get_config(r->opt)->lr);
}

/* Step s's batch into *in, *tg (grown to fit a Poisson sample): the fixed data order, or
 * with --dp the records tr_dp_sample draws. *B receives the batch size. */
static int next_batch(train_run *r, long s, int32_t **in, int32_t **tg, size_t *cap, int *B,
                      mu_diag *d)
{
    if (!r->dp) {
        *B = r->B;
        return tr_data_batch(r->data, r->data_start + (uint64_t)(s - r->start), r->B, r->T, *in,
                             *tg, d);
    }
    int64_t k = tr_dp_sample(r->dp, (uint64_t)s, r->idx);
    if (k > INT_MAX / r->T)
        return mu_diag_set(d, MU_ERR_INVALID, "train: a sample of %lld records is too large",
                           (long long)k);
    size_t need = (size_t)k * (size_t)r->T;
    if (need > *cap) {
        int32_t *a = realloc(*in, need * sizeof **in),
                *b = a ? realloc(*tg, need * sizeof **tg) : NULL;
        if (a)
            *in = a;
        if (b)
            *tg = b;
        if (!a || !b)
            return mu_diag_set(d, MU_ERR_NOMEM, "train: out of memory for %lld records",
                               (long long)k);
        *cap = need;
    }
    *B = (int)k;
    return tr_data_gather(r->data, r->idx, (int)k, r->T, *in, *tg, d);
}

static int log_step(train_run *r, const train_opts *o, long s, int B, float loss, double tps,
                    mu_diag *d)
{
    char lbuf[32] = "null"; /* an empty Poisson sample has no loss */
    if (B > 0)
        snprintf(lbuf, sizeof lbuf, "%.9g", (double)loss);
    int bad = r->dp ? fprintf(r->log,
                              "{\"step\": %ld, \"loss\": %s, \"batch\": %d, "
                              "\"tokens_per_s\": %.1f}\n",
                              s, lbuf, B, tps) < 0
                    : fprintf(r->log, "{\"step\": %ld, \"loss\": %s, \"tokens_per_s\": %.1f}\n", s,
                              lbuf, tps) < 0;
    if (bad || fflush(r->log))
        return mu_diag_set(d, MU_ERR_IO, "%s: write failed", o->log_jsonl);
    return MU_OK;
}

static int train_loop(train_run *r, const train_opts *o, mu_diag *d)
{
    int T = r->T, B = r->B;
    size_t cap = (size_t)B * (size_t)T;
    int32_t *in = malloc(cap * sizeof *in), *tg = malloc(cap * sizeof *tg);
    int rc = in && tg ? 0 : mu_diag_set(d, MU_ERR_NOMEM, "train: out of memory");
    mu_progress bar;
    mu_progress_init(&bar, "train", o->steps - r->start);
    float loss = NAN;
    for (long s = r->start; !rc && s < o->steps; s++) {
        double t0 = mu_now();
        rc = next_batch(r, s, &in, &tg, &cap, &B, d);
        if (!rc)
            rc = r->dp ? tr_dp_step(r->dp, r->opt, in, tg, B, T, (uint64_t)s, &loss, d)
                       : tr_train_step(r->m, r->opt, in, tg, B, T, &loss, d);
        if (!rc && B > 0 && !isfinite(loss))
            rc = nan_loss(r, o, s, loss, d);
        if (rc)
            break;
        double tps = (double)B * T / fmax(mu_now() - t0, 1e-9);
        if (r->log)
            rc = log_step(r, o, s, B, loss, tps, d);
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", (double)loss, tps);
        mu_progress_update(&bar, s + 1 - r->start, extra);
    }
    if (!rc) {
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", (double)loss);
        mu_progress_finish(&bar, extra);
        mu_info("train: steps %ld to %ld, last loss %.6f", r->start, o->steps, (double)loss);
    }
    free(in);
    free(tg);
    return rc;
}

/* --dp: records of the data, the DP-SGD state (a random 32-byte key unless --dp-seed). */
static int set_up_dp(train_run *r, const train_opts *o, mu_diag *d)
{
    r->records = tr_data_records(r->data, r->T);
    if (r->records < 1)
        return mu_diag_set(d, MU_ERR_INVALID,
                           "%s: %lld tokens, too few for one DP record of --seq %d + 1 tokens",
                           o->data, (long long)tr_data_len(r->data), r->T);
    if (r->B > r->records)
        return usage(r, d,
                     "--batch %d is more than the %lld records of %s (windows of --seq + 1 = "
                     "%d tokens)",
                     r->B, (long long)r->records, o->data, r->T + 1);
    uint8_t key[TR_DP_KEY_BYTES]; /* without --dp-seed: a key nobody else can know */
    if (!o->dp_seed_set) {
        if (sodium_init() < 0)
            return mu_diag_set(d, MU_ERR_CRYPTO, "train: libsodium init failed");
        randombytes_buf(key, sizeof key);
    }
    tr_dp_config dc = {.clip = o->dp_clip,
                       .noise = o->dp_noise,
                       .sampling = o->dp_sampling,
                       .n_records = r->records,
                       .batch = r->B,
                       .seed = o->dp_seed,
                       .key = o->dp_seed_set ? NULL : key};
    r->dp = tr_dp_new(&dc, r->m, d);
    sodium_memzero(key, sizeof key);
    if (!r->dp)
        return MU_ERR_INVALID;
    if (!(r->idx = malloc(sizeof *r->idx * (size_t)r->records)))
        return mu_diag_set(d, MU_ERR_NOMEM, "train: out of memory for %lld records",
                           (long long)r->records);
    return MU_OK;
}

/* --dp: the epsilon the run spent, from privacy/'s RDP accountant. Poisson sampling: the
 * sampled Gaussian at rate batch / N (add/remove one record: sensitivity C). Fixed-size
 * batches: no amplification claimed, and replacing one record moves the sum by up to 2C, so
 * each step is the Gaussian mechanism with noise multiplier z / 2. */
static void dp_report(const train_run *r, const train_opts *o)
{
    int fixed = o->dp_sampling == TR_DP_FIXED;
    double delta = o->dp_delta > 0 ? o->dp_delta : 1.0 / (double)r->records;
    dp_plan p = {.mech = DP_MECH_GAUSSIAN,
                 .noise = fixed ? o->dp_noise / 2 : o->dp_noise,
                 .rate = fixed ? 1.0 : (double)r->B / (double)r->records,
                 .steps = (uint64_t)o->steps,
                 .delta = delta,
                 .conv = DP_CONV_TIGHT};
    double eps = INFINITY, order = 0;
    int rc = o->dp_noise > 0 && delta < 1 ? dp_plan_epsilon(&p, &eps, &order) : 0;
    char how[64];
    if (fixed)
        snprintf(how, sizeof how, "fixed batches, no amplification");
    else
        snprintf(how, sizeof how, "Poisson rate %.6g", p.rate);
    if (rc)
        printf("dp-sgd: epsilon not computed: %s\n", mu_strerror(rc));
    else
        printf("dp-sgd: epsilon %.6g at delta %.3g after %ld steps (noise %g, clip %g, %s, "
               "%lld records; RDP order %g, tight conversion)\n",
               eps, delta, o->steps, o->dp_noise, o->dp_clip, how, (long long)r->records, order);
}

/* Writes every output into OUT/STAGE, then moves them into OUT (see STAGE). */
static int save_outputs(train_run *r, const train_opts *o, mu_diag *d)
{
    if (mkdir(o->out, 0755) && errno != EEXIST)
        return mu_diag_set(d, MU_ERR_IO, "%s: %s", o->out, strerror(errno));
    char stage[4096], from[4200], to[4200];
    snprintf(stage, sizeof stage, "%s/%s", o->out, STAGE);
    int rc = tr_peft_save(r->m, stage, o->base, d);
    tr_state_info info = {.step = (uint64_t)o->steps,
                          .data_step = r->data_start + (uint64_t)(o->steps - r->start),
                          .batch = r->B,
                          .seq = r->T,
                          .seed = r->seed,
                          .dp = r->dp != NULL};
    snprintf(info.base, sizeof info.base, "%s", o->base);
    snprintf(from, sizeof from, "%s/%s", stage, TRAIN_STATE_FILE);
    if (!rc)
        rc = tr_state_save(from, r->m, r->opt, &info, d);
    for (size_t i = 0; i < N_OUT_FILES; i++) {
        snprintf(from, sizeof from, "%s/%s", stage, out_files[i]);
        snprintf(to, sizeof to, "%s/%s", o->out, out_files[i]);
        if (rc)
            unlink(from);
        else
            rc = mu_file_commit(from, to, d);
    }
    rmdir(stage);
    return rc;
}

/* Model, data, LoRA and optimizer, as the options (or the state to resume) say. */
static int set_up(train_run *r, const train_opts *o, mu_diag *d)
{
    tr_lora_config l;
    tr_optim_config oc = tr_optim_defaults(o->optimizer, o->lr);
    oc.weight_decay = o->weight_decay;
    oc.grad_clip = o->grad_clip;
    int rc;
    if (o->resume && (rc = peek_resume(r, o, &l, &oc, d)))
        return rc;
    if (!(r->m = tr_hf_model_load_bf16(o->base, o->bf16, &rc, d)) ||
        !(r->data = tr_data_open(o->data, &rc, d)))
        return rc;
    if (tr_model_bf16(r->m))
        mu_info("train: bf16 base (%s)", tr_bf16_kernel_name());
    if ((rc = tr_model_set_checkpointing(r->m, o->checkpointing)))
        return rc;
    if (tr_model_checkpointing(r->m))
        mu_info("train: per-layer activation checkpointing on (%d layers)",
                tr_model_config(r->m)->n_layer);
    const tr_config *cfg = tr_model_config(r->m);
    if (!o->resume)
        r->T = o->seq ? (int)o->seq : (cfg->max_pos < 128 ? cfg->max_pos : 128);
    if (r->T > cfg->max_pos)
        return usage(r, d,
                     "--seq %d is longer than the context of the model in %s: %d positions "
                     "(config.json max_position_embeddings or n_positions)",
                     r->T, o->base, cfg->max_pos);
    if ((rc = tr_data_check_model(r->data, o->base, cfg->vocab_size, d)))
        return rc;
    rc = o->resume ? tr_lora_attach(r->m, &l, r->seed, d) : attach_lora(r->m, o, d);
    if (rc)
        return rc;
    if (!(r->opt = tr_optim_new(&oc, tr_lora_trainable_count(r->m), d)))
        return MU_ERR_INVALID;
    if (o->resume) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->out, TRAIN_STATE_FILE);
        rc = tr_state_load(path, r->m, r->opt, NULL, d);
    }
    return rc;
}

int train_run_all(const train_opts *o)
{
    train_run r = {.B = (int)o->batch, .seed = o->seed};
    mu_diag d = {{0}};
    const char *old = o->resume || o->force ? NULL : existing_output(o->out);
    int rc = old ? usage(&r, &d,
                         "%s already holds a trained adapter (%s): --resume continues its "
                         "training, --force starts over and replaces it",
                         o->out, old)
                 : 0;
    tr_threads_set(o->threads);
    if (!rc)
        rc = set_up(&r, o, &d);
    if (!rc && o->dp)
        rc = set_up_dp(&r, o, &d);
    if (!rc && o->log_jsonl && !(r.log = fopen(o->log_jsonl, o->resume ? "a" : "w")))
        rc = mu_diag_set(&d, MU_ERR_IO, "%s: cannot open for writing", o->log_jsonl);
    if (!rc && !(rc = train_loop(&r, o, &d)))
        rc = save_outputs(&r, o, &d);
    if (r.log && fclose(r.log) && !rc)
        rc = mu_diag_set(&d, MU_ERR_IO, "%s: write failed", o->log_jsonl);
    if (!rc && r.dp)
        dp_report(&r, o);
    tr_dp_free(r.dp);
    free(r.idx);
    tr_optim_free(r.opt);
    tr_data_free(r.data);
    tr_model_free(r.m);
    if (!rc)
        return MU_EXIT_OK;
    fprintf(stderr, "mutual train: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
    return r.usage ? MU_EXIT_USAGE : MU_EXIT_FAIL;
}
