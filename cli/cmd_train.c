/* cmd_train.c - `mutual train`: fine-tune LoRA adapters of a Hugging Face model on an HDF5
 * token dataset and write them as a PEFT folder. Options and help here; the run itself is
 * cmd_train_run.c. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_train.h"
#include "tr_dp.h"

#define CMD "train"

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: mutual train --base DIR --data FILE.h5 --out DIR [options]\n\n"
        "Fine-tunes LoRA adapters of a frozen Hugging Face model (config.json +\n"
        "model.safetensors; gpt2, llama, mistral, qwen2, qwen3) on the tokens of an HDF5\n"
        "dataset,\n"
        "then writes them as a PEFT folder (adapter_config.json + adapter_model.safetensors)\n"
        "and the training state (OUT/training_state.h5: adapter, optimizer moments, step,\n"
        "data position), which --resume continues from. OUT's files are written together:\n"
        "on any error (a full disk too) the previous ones stay as they were.\n\n"
        "Data order: in step s, batch row i reads the window at p = ((s*B + i)*T) mod (N - T);\n"
        "the loss is the mean cross-entropy over all B*T positions.\n\n"
        "Options:\n"
        "  --base DIR            Hugging Face model folder (required)\n"
        "  --data FILE.h5        dataset with /tokens and vocab_size (required)\n"
        "  --out DIR             PEFT folder to write (required; created if missing). One\n"
        "                        that holds an adapter is refused: use --resume or --force\n"
        "  --resume              continue the run saved in OUT/training_state.h5 up to\n"
        "                        --steps in total: LoRA weights, optimizer moments, step and\n"
        "                        data position as saved, so K steps then --resume to N give\n"
        "                        the N-step run bit for bit. Its rank, alpha, targets,\n"
        "                        optimizer, batch, seq and seed come from the state (giving\n"
        "                        them is an error); --lr overrides the saved one; --log-jsonl\n"
        "                        appends (default off)\n"
        "  --force               replace an adapter already in OUT (default off: refuse)\n"
        "  --adapter-init DIR    start from this PEFT folder; its r, alpha, targets and\n"
        "                        dropout win (default: A kaiming-uniform as PEFT, B zero)\n"
        "  --targets LIST        modules to adapt, comma-separated PEFT names (default:\n"
        "                        c_attn for gpt2, q_proj,v_proj for llama-family models)\n"
        "  --rank R              LoRA rank (default 8)\n"
        "  --alpha A             LoRA alpha; scaling alpha/r (default 16)\n"
        "  --freeze-a            keep A fixed as drawn from --seed, train only B (default off)\n"
        "  --steps N             training steps, N >= 1; with --resume the total (default\n"
        "                        100)\n"
        "  --batch B             sequences per step (default 8)\n"
        "  --seq T               tokens per sequence, at most the model's context (default\n"
        "                        128, or the model's context if shorter)\n"
        "  --lr LR               learning rate (default 0.001)\n"
        "  --optimizer NAME      adamw or sgd (default adamw; AdamW betas 0.9,0.999 eps 1e-8)\n"
        "  --weight-decay WD     weight decay (default 0)\n"
        "  --grad-clip C         clip the global gradient norm to C (default off)\n"
        "  --seed S              seed for LoRA init and dropout (default 0)\n"
        "  --log-jsonl FILE      one line per step: {\"step\": k, \"loss\": x,\n"
        "                        \"tokens_per_s\": y}; loss is the batch loss before the\n"
        "                        update (default none)\n"
        "  --threads N           threads for OpenMP and OpenBLAS (default: all cores)\n"
        "  --checkpointing       per-layer activation checkpointing: keep each layer's input\n"
        "                        only and recompute its activations in the backward; the\n"
        "                        same losses and adapter bit for bit, far less memory, one\n"
        "                        more forward a step (default off)\n"
        "  --bf16                keep the frozen base's matrices (linears, embeddings, LM\n"
        "                        head) in bfloat16, half their memory, and multiply with\n"
        "                        them in bf16 with fp32 sums (AVX-512 BF16 where the CPU has\n"
        "                        it); LoRA, gradients, norms, loss and optimizer stay fp32;\n"
        "                        losses differ from fp32 by bf16 rounding (default off)\n"
        "  --dp                  DP-SGD protecting each record, a window of --seq + 1 tokens\n"
        "                        (record k starts at token k*(seq+1)): per-record gradients\n"
        "                        clipped to --dp-clip, Gaussian noise of std --dp-noise x\n"
        "                        --dp-clip on their sum, divided by --batch (the expected\n"
        "                        batch); prints the epsilon spent at --dp-delta. Not with\n"
        "                        --resume (default off)\n"
        "  --dp-clip C           per-record L2 clip bound, C > 0 (default 1)\n"
        "  --dp-noise Z          noise multiplier, Z >= 0 (default 1; 0 gives no privacy)\n"
        "  --dp-sampling HOW     poisson: each record in a step with probability batch/N,\n"
        "                        the sampling the epsilon's amplification assumes; fixed:\n"
        "                        --batch distinct records, epsilon without amplification\n"
        "                        (default poisson)\n"
        "  --dp-seed S           seed of the noise and sampling streams, for reproducible\n"
        "                        runs; whoever knows it can subtract the noise (default:\n"
        "                        a random 32-byte key, used once)\n"
        "  --dp-delta D          delta of the reported epsilon, 0 < D < 1 (default 1/N, N\n"
        "                        the number of records)\n"
        "  -v, --verbose         more log output\n"
        "  -q, --quiet           errors only (no progress bar)\n"
        "  -h, --help            show this help\n\n"
        "Exit status: 0 success, 1 failure (bad model, data or adapter files, a NaN loss, a\n"
        "full disk), 2 usage (also: OUT holds an adapter, nothing to resume, --seq longer\n"
        "than the model's context).\n");
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
    O_THREADS,
    O_RESUME,
    O_FORCE,
    O_DP,
    O_DP_CLIP,
    O_DP_NOISE,
    O_DP_SAMPLING,
    O_DP_SEED,
    O_DP_DELTA,
    O_CKPT,
    O_BF16
};

static int parse_number(int c, const char *arg, train_opts *o)
{
    long v;
    double x;
    switch (c) {
    case O_RANK:
        o->given |= TRAIN_GIVEN_RANK;
        return cli_parse_long(CMD, "--rank", arg, 1, 4096, &o->rank);
    case O_STEPS:
        return cli_parse_long(CMD, "--steps", arg, 1, 1000000000L, &o->steps);
    case O_BATCH:
        o->given |= TRAIN_GIVEN_BATCH;
        return cli_parse_long(CMD, "--batch", arg, 1, 1 << 20, &o->batch);
    case O_SEQ:
        o->given |= TRAIN_GIVEN_SEQ;
        return cli_parse_long(CMD, "--seq", arg, 1, 1 << 20, &o->seq);
    case O_THREADS:
        return cli_parse_long(CMD, "--threads", arg, 1, 1024, &o->threads);
    case O_SEED:
        o->given |= TRAIN_GIVEN_SEED;
        if (cli_parse_long(CMD, "--seed", arg, 0, 0x7fffffffffffffffL, &v))
            return -1;
        o->seed = (unsigned long long)v;
        return 0;
    case O_ALPHA:
        o->given |= TRAIN_GIVEN_ALPHA;
        return cli_parse_double(CMD, "--alpha", arg, 1e-6, 1e6, &o->alpha);
    case O_LR:
        o->lr_set = 1;
        return cli_parse_double(CMD, "--lr", arg, 0, 10, &o->lr);
    case O_WD:
        o->given |= TRAIN_GIVEN_WD;
        return cli_parse_double(CMD, "--weight-decay", arg, 0, 10, &o->weight_decay);
    case O_DP_CLIP:
        o->dp_given |= 1;
        if (cli_parse_double(CMD, "--dp-clip", arg, 0, 1e30, &o->dp_clip))
            return -1;
        if (o->dp_clip <= 0) {
            cli_usage_error(CMD, "--dp-clip wants a positive number, got '%s'", arg);
            return -1;
        }
        return 0;
    case O_DP_NOISE:
        o->dp_given |= 2;
        return cli_parse_double(CMD, "--dp-noise", arg, 0, 1e6, &o->dp_noise);
    case O_DP_SEED:
        o->dp_given |= 4;
        o->dp_seed_set = 1;
        if (cli_parse_long(CMD, "--dp-seed", arg, 0, 0x7fffffffffffffffL, &v))
            return -1;
        o->dp_seed = (unsigned long long)v;
        return 0;
    case O_DP_DELTA:
        o->dp_given |= 8;
        if (cli_parse_double(CMD, "--dp-delta", arg, 0, 1, &o->dp_delta))
            return -1;
        if (o->dp_delta <= 0 || o->dp_delta >= 1) {
            cli_usage_error(CMD, "--dp-delta wants a number in (0, 1), got '%s'", arg);
            return -1;
        }
        return 0;
    case O_CLIP:
        o->given |= TRAIN_GIVEN_CLIP;
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
    static const struct option longopts[] = {
        {"base", required_argument, NULL, O_BASE},
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
        {"resume", no_argument, NULL, O_RESUME},
        {"force", no_argument, NULL, O_FORCE},
        {"checkpointing", no_argument, NULL, O_CKPT},
        {"bf16", no_argument, NULL, O_BF16},
        {"dp", no_argument, NULL, O_DP},
        {"dp-clip", required_argument, NULL, O_DP_CLIP},
        {"dp-noise", required_argument, NULL, O_DP_NOISE},
        {"dp-sampling", required_argument, NULL, O_DP_SAMPLING},
        {"dp-seed", required_argument, NULL, O_DP_SEED},
        {"dp-delta", required_argument, NULL, O_DP_DELTA},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    int c;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return MU_EXIT_OK;
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
            o->given |= TRAIN_GIVEN_INIT;
            break;
        case O_TARGETS:
            o->targets = optarg;
            o->given |= TRAIN_GIVEN_TARGETS;
            break;
        case O_LOG:
            o->log_jsonl = optarg;
            break;
        case O_FREEZE:
            o->freeze_a = 1;
            o->given |= TRAIN_GIVEN_FREEZE;
            break;
        case O_RESUME:
            o->resume = 1;
            break;
        case O_FORCE:
            o->force = 1;
            break;
        case O_CKPT:
            o->checkpointing = 1;
            break;
        case O_BF16:
            o->bf16 = 1;
            break;
        case O_DP:
            o->dp = 1;
            break;
        case O_DP_SAMPLING:
            o->dp_given |= 16;
            if (!strcmp(optarg, "poisson"))
                o->dp_sampling = TR_DP_POISSON;
            else if (!strcmp(optarg, "fixed"))
                o->dp_sampling = TR_DP_FIXED;
            else
                return cli_usage_error(CMD, "--dp-sampling wants poisson or fixed, got '%s'",
                                       optarg);
            break;
        case O_OPT:
            o->given |= TRAIN_GIVEN_OPT;
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
    if (o->dp_given && !o->dp)
        return cli_usage_error(CMD, "--dp-clip, --dp-noise, --dp-sampling, --dp-seed and "
                                    "--dp-delta need --dp");
    if (o->dp && o->resume)
        return cli_usage_error(CMD, "--dp cannot --resume: the saved state does not record "
                                    "the DP-SGD run (its sampling, noise and privacy spent)");
    if (o->resume && o->given)
        return cli_usage_error(CMD,
                               "--resume continues the run saved in %s/%s: its --adapter-init, "
                               "--targets, --rank, --alpha, --freeze-a, --optimizer, "
                               "--weight-decay, --grad-clip, --batch, --seq and --seed come "
                               "from there (only --steps, --lr, --log-jsonl, --threads, "
                               "--checkpointing and --bf16 may be given)",
                               o->out, TRAIN_STATE_FILE);
    return -1;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {.rank = 8,
                    .alpha = 16,
                    .steps = 100,
                    .batch = 8,
                    .lr = 1e-3,
                    .optimizer = TR_ADAMW,
                    .threads = 0,
                    .dp_clip = 1.0,
                    .dp_noise = 1.0,
                    .dp_sampling = TR_DP_POISSON};
    int st = parse_args(argc, argv, &o);
    if (st >= 0)
        return st;
    st = train_run_all(&o);
    if (st == MU_EXIT_OK)
        printf("%s: adapter written (%ld steps)\n", o.out, o.steps);
    return st;
}
