/* cmd_eval.c - `mutual eval`: mean loss and perplexity of a model (with an optional PEFT
 * adapter) over the windows of the documented data order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "tr_data.h"
#include "tr_hf.h"

#define CMD "eval"

typedef struct {
    const char *base, *adapter, *data;
    long batch, seq, batches;
    int json;
} eval_opts;

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual eval --base DIR [--adapter DIR] --data FILE.h5 --batch B --seq T\n"
            "                   [--batches N] [--json]\n\n"
            "Mean cross-entropy loss and perplexity (exp of the loss) of a Hugging Face model,\n"
            "with a PEFT LoRA adapter if given, over batches 0..N-1 of the data order used by\n"
            "'mutual train': batch s, row i reads the window at p = ((s*B + i)*T) mod (N - T).\n\n"
            "Options:\n"
            "  --base DIR        Hugging Face model folder (required)\n"
            "  --adapter DIR     PEFT adapter folder to apply (default: the base model alone)\n"
            "  --data FILE.h5    dataset with /tokens and vocab_size (required)\n"
            "  --batch B         sequences per batch (required)\n"
            "  --seq T           tokens per sequence, at most the model's context (required)\n"
            "  --batches N       batches to evaluate (default: enough to cover the tokens once,\n"
            "                    (N_tokens - T) / (B*T), at least 1)\n"
            "  --json            print {\"loss\": x, \"perplexity\": y, \"batches\": n,\n"
            "                    \"tokens\": k} instead of text (default text)\n"
            "  -v, --verbose     more log output\n"
            "  -q, --quiet       errors only (no progress bar)\n"
            "  -h, --help        show this help\n\n"
            "Exit status: 0 success, 1 failure (bad model, data or adapter files), 2 usage\n"
            "(also: --seq longer than the model's context).\n");
}

enum { O_BASE = 1000, O_ADAPTER, O_DATA, O_BATCH, O_SEQ, O_BATCHES, O_JSON };

static int parse_args(int argc, char **argv, eval_opts *o)
{
    static const struct option longopts[] = {{"base", required_argument, NULL, O_BASE},
                                             {"adapter", required_argument, NULL, O_ADAPTER},
                                             {"data", required_argument, NULL, O_DATA},
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"seq", required_argument, NULL, O_SEQ},
                                             {"batches", required_argument, NULL, O_BATCHES},
                                             {"json", no_argument, NULL, O_JSON},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    int c;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return MU_EXIT_OK;
        int bad = 0;
        switch (c) {
        case O_BASE:
            o->base = optarg;
            break;
        case O_ADAPTER:
            o->adapter = optarg;
            break;
        case O_DATA:
            o->data = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_BATCH:
            bad = cli_parse_long(CMD, "--batch", optarg, 1, 1 << 20, &o->batch);
            break;
        case O_SEQ:
            bad = cli_parse_long(CMD, "--seq", optarg, 1, 1 << 20, &o->seq);
            break;
        case O_BATCHES:
            bad = cli_parse_long(CMD, "--batches", optarg, 1, 1000000000L, &o->batches);
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
        if (bad)
            return MU_EXIT_USAGE;
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->base || !o->data || !o->batch || !o->seq)
        return cli_usage_error(CMD, "--base, --data, --batch and --seq are required");
    return -1;
}

/* Mean of the batch losses (every batch has B*T positions, so this is the mean over all). */
static int evaluate(tr_model *m, const tr_data *data, const eval_opts *o, long nb, double *mean,
                    mu_diag *d)
{
    int B = (int)o->batch, T = (int)o->seq;
    size_t n = (size_t)B * (size_t)T;
    int32_t *in = malloc(n * sizeof *in), *tg = malloc(n * sizeof *tg);
    int rc = in && tg ? 0 : mu_diag_set(d, MU_ERR_NOMEM, "eval: out of memory");
    mu_progress bar;
    mu_progress_init(&bar, "eval", nb);
    double sum = 0;
    for (long s = 0; !rc && s < nb; s++) {
        float loss = 0;
        rc = tr_data_batch(data, (uint64_t)s, B, T, in, tg, d);
        if (!rc)
            rc = tr_model_eval(m, in, tg, B, T, &loss, d);
        sum += loss;
        mu_progress_update(&bar, s + 1, NULL);
    }
    if (!rc)
        mu_progress_finish(&bar, NULL);
    *mean = sum / (double)nb;
    free(in);
    free(tg);
    return rc;
}

/* *usage is set when the error is the command line's (exit 2). */
static int run_eval(const eval_opts *o, int *usage, mu_diag *d)
{
    int rc;
    tr_model *m = tr_hf_model_load(o->base, &rc, d);
    tr_data *data = m ? tr_data_open(o->data, &rc, d) : NULL;
    if (!data)
        goto out;
    if (o->seq > tr_model_config(m)->max_pos) {
        *usage = 1;
        rc = mu_diag_set(d, MU_ERR_INVALID,
                         "--seq %ld is longer than the context of the model in %s: %d positions "
                         "(config.json max_position_embeddings or n_positions)",
                         o->seq, o->base, tr_model_config(m)->max_pos);
        goto out;
    }
    if ((rc = tr_data_check_model(data, o->base, tr_model_config(m)->vocab_size, d)))
        goto out;
    if (o->adapter && (rc = tr_peft_attach(m, o->adapter, 0, 0, NULL, d)))
        goto out;
    long nb = o->batches;
    if (!nb) {
        int64_t span = tr_data_len(data) - o->seq;
        nb = span > 0 ? (long)(span / (o->batch * o->seq)) : 0;
        nb = nb < 1 ? 1 : nb;
    }
    double loss;
    if ((rc = evaluate(m, data, o, nb, &loss, d)))
        goto out;
    long long tokens = (long long)nb * o->batch * o->seq;
    if (o->json)
        printf("{\"loss\": %.9g, \"perplexity\": %.9g, \"batches\": %ld, \"tokens\": %lld}\n", loss,
               exp(loss), nb, tokens);
    else
        printf("loss %.6f  perplexity %.4f  (%ld batches x %ld x %ld = %lld tokens)\n", loss,
               exp(loss), nb, o->batch, o->seq, tokens);
out:
    tr_data_free(data);
    tr_model_free(m);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o = {0};
    int st = parse_args(argc, argv, &o);
    if (st >= 0)
        return st;
    mu_diag d = {{0}};
    int usage = 0;
    int rc = run_eval(&o, &usage, &d);
    if (rc) {
        fprintf(stderr, "mutual eval: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return usage ? MU_EXIT_USAGE : MU_EXIT_FAIL;
    }
    return MU_EXIT_OK;
}
