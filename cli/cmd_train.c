/* cmd_train.c - `mutual train`: fine-tune LoRA adapters of a Hugging Face model on an HDF5
 * token dataset and write them as a PEFT folder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "tr_data.h"
#include "tr_hf.h"
#include "tr_spec.h"
#include "tr_state.h"

#define CMD "train"

typedef struct {
    const char *base, *data, *out, *adapter_init, *targets, *log_jsonl;
    long rank, steps, batch, seq, threads;
    double alpha, lr, weight_decay, grad_clip;
    int freeze_a, rank_set, alpha_set;
    tr_optim_kind optimizer;
    unsigned long long seed;
} train_opts;

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: mutual train --base DIR --data FILE.h5 --out DIR [options]\n\n"
        "Fine-tunes LoRA adapters of a frozen Hugging Face model (config.json +\n"
        "model.safetensors; gpt2, llama, mistral, qwen2) on the tokens of an HDF5 dataset,\n"
        "then writes them as a PEFT folder (adapter_config.json + adapter_model.safetensors)\n"
        "and the training state (OUT/training_state.h5: adapter, optimizer moments, step).\n\n"
        "Data order: in step s, batch row i reads the window at p = ((s*B + i)*T) mod (N - T);\n"
        "the loss is the mean cross-entropy over all B*T positions.\n\n"
        "Options:\n"
        "  --base DIR            Hugging Face model folder (required)\n"
        "  --data FILE.h5        dataset with /tokens and vocab_size (required)\n"
        "  --out DIR             PEFT folder to write (required; created if missing)\n"
        "  --adapter-init DIR    start from this PEFT folder; its r, alpha, targets and\n"
        "                        dropout win (default: A kaiming-uniform as PEFT, B zero)\n"
        "  --targets LIST        modules to adapt, comma-separated PEFT names (default:\n"
        "                        c_attn for gpt2, q_proj,v_proj for llama-family models)\n"
        "  --rank R              LoRA rank (default 8)\n"
        "  --alpha A             LoRA alpha; scaling alpha/r (default 16)\n"
        "  --freeze-a            keep A fixed as drawn from --seed, train only B (default off)\n"
        "  --steps N             training steps (default 100)\n"
        "  --batch B             sequences per step (default 8)\n"
        "  --seq T               tokens per sequence (default 128, or the model's context if\n"
        "                        shorter)\n"
        "  --lr LR               learning rate (default 0.001)\n"
        "  --optimizer NAME      adamw or sgd (default adamw; AdamW betas 0.9,0.999 eps 1e-8)\n"
        "  --weight-decay WD     weight decay (default 0)\n"
        "  --grad-clip C         clip the global gradient norm to C (default off)\n"
        "  --seed S              seed for LoRA init and dropout (default 0)\n"
        "  --log-jsonl FILE      one line per step: {\"step\": k, \"loss\": x,\n"
        "                        \"tokens_per_s\": y}; loss is the batch loss before the\n"
        "                        update (default none)\n"
        "  --threads N           threads for OpenMP and OpenBLAS (default: all cores)\n"
        "  -v, --verbose         more log output\n"
        "  -q, --quiet           errors only (no progress bar)\n"
        "  -h, --help            show this help\n\n"
        "Exit status: 0 success, 1 failure (bad model, data or adapter files), 2 usage.\n");
}

enum {
    O_BASE = 1000,
    O_DATA,
    O_OUT,
    O_INIT,
    O_TARGETS,
    O_RANK,
    O_ALPHA,
    O_FREEZE,
    O_STEPS,
    O_BATCH,
    O_SEQ,
    O_LR,
    O_OPT,
    O_WD,
    O_CLIP,
    O_SEED,
    O_LOG,
    O_THREADS
};

static int parse_number(int c, const char *arg, train_opts *o)
{
    long v;
    double x;
    switch (c) {
    case O_RANK:
        o->rank_set = 1;
        return cli_parse_long(CMD, "--rank", arg, 1, 4096, &o->rank);
    case O_STEPS:
        return cli_parse_long(CMD, "--steps", arg, 0, 1000000000L, &o->steps);
    case O_BATCH:
        return cli_parse_long(CMD, "--batch", arg, 1, 1 << 20, &o->batch);
    case O_SEQ:
        return cli_parse_long(CMD, "--seq", arg, 1, 1 << 20, &o->seq);
    case O_THREADS:
        return cli_parse_long(CMD, "--threads", arg, 1, 1024, &o->threads);
    case O_SEED:
        if (cli_parse_long(CMD, "--seed", arg, 0, 0x7fffffffffffffffL, &v))
            return -1;
        o->seed = (unsigned long long)v;
        return 0;
    case O_ALPHA:
        o->alpha_set = 1;
        return cli_parse_double(CMD, "--alpha", arg, 1e-6, 1e6, &o->alpha);
    case O_LR:
        return cli_parse_double(CMD, "--lr", arg, 0, 10, &o->lr);
    case O_WD:
        return cli_parse_double(CMD, "--weight-decay", arg, 0, 10, &o->weight_decay);
    case O_CLIP:
        if (cli_parse_double(CMD, "--grad-clip", arg, 0, 1e30, &x))
            return -1;
        if (x <= 0) {
            cli_usage_error(CMD, "--grad-clip wants a positive number, got '%s'", arg);
            return -1;
        }
        o->grad_clip = x;
        return 0;
    }
    return -1;
}

/* Returns -1 to continue, else an exit status. */
static int parse_args(int argc, char **argv, train_opts *o)
{
    static const struct option longopts[] = {{"base", required_argument, NULL, O_BASE},
                                             {"data", required_argument, NULL, O_DATA},
                                             {"out", required_argument, NULL, O_OUT},
                                             {"adapter-init", required_argument, NULL, O_INIT},
                                             {"targets", required_argument, NULL, O_TARGETS},
                                             {"rank", required_argument, NULL, O_RANK},
                                             {"alpha", required_argument, NULL, O_ALPHA},
                                             {"freeze-a", no_argument, NULL, O_FREEZE},
                                             {"steps", required_argument, NULL, O_STEPS},
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"seq", required_argument, NULL, O_SEQ},
                                             {"lr", required_argument, NULL, O_LR},
                                             {"optimizer", required_argument, NULL, O_OPT},
                                             {"weight-decay", required_argument, NULL, O_WD},
                                             {"grad-clip", required_argument, NULL, O_CLIP},
                                             {"seed", required_argument, NULL, O_SEED},
                                             {"log-jsonl", required_argument, NULL, O_LOG},
                                             {"threads", required_argument, NULL, O_THREADS},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        }
        if (cli_common_opt(c))
            continue;
        switch (c) {
        case O_BASE:
            o->base = optarg;
            break;
        case O_DATA:
            o->data = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_INIT:
            o->adapter_init = optarg;
            break;
        case O_TARGETS:
            o->targets = optarg;
            break;
        case O_LOG:
            o->log_jsonl = optarg;
            break;
        case O_FREEZE:
            o->freeze_a = 1;
            break;
        case O_OPT:
            if (!strcmp(optarg, "adamw"))
                o->optimizer = TR_ADAMW;
            else if (!strcmp(optarg, "sgd"))
                o->optimizer = TR_SGD;
            else
                return cli_usage_error(CMD, "--optimizer wants adamw or sgd, got '%s'", optarg);
            break;
        case '?':
            return cli_usage_error(CMD, "unknown option or missing argument");
        default:
            if (parse_number(c, optarg, o))
                return MU_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->base || !o->data || !o->out)
        return cli_usage_error(CMD, "--base, --data and --out are required");
    return -1;
}

/* Attaches LoRA from --adapter-init or from the command line. */
static int attach_lora(tr_model *m, const train_opts *o, mu_diag *d)
{
    tr_family fam = tr_model_config(m)->family;
    if (o->adapter_init) {
        tr_peft_info info;
        int rc = tr_peft_attach(m, o->adapter_init, o->freeze_a, o->seed, &info, d);
        if (!rc && (o->rank_set || o->alpha_set || o->targets))
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

typedef struct {
    tr_model *m;
    tr_optim *opt;
    tr_data *data;
    FILE *log;
} train_run;

static int train_loop(train_run *r, const train_opts *o, int T, mu_diag *d)
{
    int B = (int)o->batch;
    size_t n = (size_t)B * (size_t)T;
    int32_t *in = malloc(n * sizeof *in), *tg = malloc(n * sizeof *tg);
    int rc = in && tg ? 0 : mu_diag_set(d, MU_ERR_NOMEM, "train: out of memory");
    mu_progress bar;
    mu_progress_init(&bar, "train", o->steps);
    float loss = NAN;
    for (long s = 0; !rc && s < o->steps; s++) {
        double t0 = mu_now();
        rc = tr_data_batch(r->data, (uint64_t)s, B, T, in, tg, d);
        if (!rc)
            rc = tr_train_step(r->m, r->opt, in, tg, B, T, &loss, d);
        if (!rc && !isfinite(loss))
            rc = mu_diag_set(d, MU_ERR_INVALID, "train: loss is %g at step %ld; lower --lr",
                             (double)loss, s);
        if (rc)
            break;
        double tps = (double)n / fmax(mu_now() - t0, 1e-9);
        if (r->log && (fprintf(r->log, "{\"step\": %ld, \"loss\": %.9g, \"tokens_per_s\": %.1f}\n",
                               s, (double)loss, tps) < 0 ||
                       fflush(r->log)))
            rc = mu_diag_set(d, MU_ERR_IO, "%s: write failed", o->log_jsonl);
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", (double)loss, tps);
        mu_progress_update(&bar, s + 1, extra);
    }
    if (!rc) {
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", (double)loss);
        mu_progress_finish(&bar, extra);
        mu_info("train: %ld steps, last loss %.6f", o->steps, (double)loss);
    }
    free(in);
    free(tg);
    return rc;
}

static int save_outputs(train_run *r, const train_opts *o, int T, mu_diag *d)
{
    int rc = tr_peft_save(r->m, o->out, o->base, d);
    if (rc)
        return rc;
    tr_state_info info = {.step = (uint64_t)o->steps,
                          .data_step = (uint64_t)o->steps,
                          .batch = (int)o->batch,
                          .seq = T,
                          .seed = o->seed};
    snprintf(info.base, sizeof info.base, "%s", o->base);
    char path[4096];
    snprintf(path, sizeof path, "%s/training_state.h5", o->out);
    return tr_state_save(path, r->m, r->opt, &info, d);
}

static int run_training(const train_opts *o, mu_diag *d)
{
    train_run r = {0};
    int rc;
    tr_threads_set(o->threads);
    if (!(r.m = tr_hf_model_load(o->base, &rc, d)) || !(r.data = tr_data_open(o->data, &rc, d)))
        goto out;
    const tr_config *cfg = tr_model_config(r.m);
    int T = o->seq ? (int)o->seq : (cfg->max_pos < 128 ? cfg->max_pos : 128);
    if (tr_data_vocab(r.data) > cfg->vocab_size) {
        rc = mu_diag_set(d, MU_ERR_INVALID,
                         "%s: vocab_size %d exceeds the model's %d (%s/config.json): token ids "
                         "would be out of range",
                         o->data, tr_data_vocab(r.data), cfg->vocab_size, o->base);
        goto out;
    }
    if ((rc = attach_lora(r.m, o, d)))
        goto out;
    tr_optim_config oc = tr_optim_defaults(o->optimizer, o->lr);
    oc.weight_decay = o->weight_decay;
    oc.grad_clip = o->grad_clip;
    if (!(r.opt = tr_optim_new(&oc, tr_lora_trainable_count(r.m), d))) {
        rc = MU_ERR_INVALID;
        goto out;
    }
    if (o->log_jsonl && !(r.log = fopen(o->log_jsonl, "w"))) {
        rc = mu_diag_set(d, MU_ERR_IO, "%s: cannot open for writing", o->log_jsonl);
        goto out;
    }
    if (!(rc = train_loop(&r, o, T, d)))
        rc = save_outputs(&r, o, T, d);
out:
    if (r.log && fclose(r.log) && !rc)
        rc = mu_diag_set(d, MU_ERR_IO, "%s: write failed", o->log_jsonl);
    tr_optim_free(r.opt);
    tr_data_free(r.data);
    tr_model_free(r.m);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {.rank = 8,
                    .alpha = 16,
                    .steps = 100,
                    .batch = 8,
                    .lr = 1e-3,
                    .optimizer = TR_ADAMW,
                    .threads = 0};
    int st = parse_args(argc, argv, &o);
    if (st >= 0)
        return st;
    mu_diag d = {{0}};
    int rc = run_training(&o, &d);
    if (rc) {
        fprintf(stderr, "mutual train: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return MU_EXIT_FAIL;
    }
    printf("%s: adapter written (%ld steps)\n", o.out, o.steps);
    return MU_EXIT_OK;
}
