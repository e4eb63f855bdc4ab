/* cmd_export.c - `mutual export --format gguf`: a Hugging Face base model, merged with a PEFT
 * adapter or beside it as a GGUF LoRA file, for llama.cpp (and what is built on it). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mu_log.h"
#include "tr_gguf.h"
#include "tr_hf.h"

#define CMD "export"

typedef struct {
    const char *format, *base, *adapter, *out, *adapter_out, *name, *type;
    int merge;
} export_opts;

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual export --format gguf --base DIR [--adapter DIR [--merge]]\n"
            "                     --out FILE.gguf [--adapter-out FILE.gguf] [--type f32|f16]\n"
            "                     [--name NAME]\n\n"
            "Writes a Hugging Face model folder as a GGUF v3 file that llama.cpp loads\n"
            "(architecture llama, qwen2, qwen3 or gpt2; the tokenizer from DIR/tokenizer.json).\n"
            "With --adapter and --merge, the PEFT LoRA adapter is merged into the weights\n"
            "(W + scaling * B A).\n"
            "With --adapter alone, the base goes to --out and the adapter to --adapter-out as a\n"
            "GGUF LoRA file (llama.cpp --lora FILE).\n\n"
            "Exported: GPT-2 and Llama-family models (llama, qwen2, qwen3 in\n"
            "config.json) without attention_bias, with no rope_scaling or (llama) Llama 3.x's\n"
            "llama3, with a byte-level BPE tokenizer.json (GPT-2, Llama 3, Qwen2 style) or a\n"
            "SentencePiece-style one (Llama 2 style). Refused: attention_bias, linear and\n"
            "dynamic rope_scaling, SentencePiece normalizers or pre-tokenizers llama.cpp\n"
            "does not have, Gemma 2 and Gemma 3 models.\n\n"
            "Options:\n"
            "  --format gguf        output format (required; gguf is the only one)\n"
            "  --base DIR           Hugging Face model folder with tokenizer.json (required)\n"
            "  --adapter DIR        PEFT LoRA adapter folder\n"
            "  --merge              merge the adapter into the base (needs --adapter)\n"
            "  --out FILE           the model's GGUF file (required)\n"
            "  --adapter-out FILE   the adapter's GGUF file (default: FILE with .gguf\n"
            "                       replaced by -lora.gguf); only with --adapter, no --merge\n"
            "  --type f32|f16       type of the 2-D weights (default f32; norms stay f32)\n"
            "  --name NAME          general.name (default: the base folder's name)\n"
            "  -v, --verbose        more log output\n"
            "  -q, --quiet          errors only\n"
            "  -h, --help           show this help\n\n"
            "Each file is written to FILE.tmp and renamed when complete.\n"
            "Exit status: 0 success, 1 failure (bad or unsupported files), 2 usage.\n");
}

enum { O_FORMAT = 1000, O_BASE, O_ADAPTER, O_MERGE, O_OUT, O_ADAPTER_OUT, O_TYPE, O_NAME };

static int check_args(export_opts *o)
{
    if (!o->format || !o->base || !o->out)
        return cli_usage_error(CMD, "--format, --base and --out are required");
    if (strcmp(o->format, "gguf"))
        return cli_usage_error(CMD, "--format '%s' is not supported (gguf)", o->format);
    if (o->type && strcmp(o->type, "f32") && strcmp(o->type, "f16"))
        return cli_usage_error(CMD, "--type must be f32 or f16, not '%s'", o->type);
    if (o->merge && !o->adapter)
        return cli_usage_error(CMD, "--merge needs --adapter");
    if (o->adapter_out && (!o->adapter || o->merge))
        return cli_usage_error(CMD, "--adapter-out needs --adapter without --merge");
    return -1;
}

static int parse_args(int argc, char **argv, export_opts *o)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, O_FORMAT},
        {"base", required_argument, NULL, O_BASE},
        {"adapter", required_argument, NULL, O_ADAPTER},
        {"merge", no_argument, NULL, O_MERGE},
        {"out", required_argument, NULL, O_OUT},
        {"adapter-out", required_argument, NULL, O_ADAPTER_OUT},
        {"type", required_argument, NULL, O_TYPE},
        {"name", required_argument, NULL, O_NAME},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    int c;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        switch (c) {
        case CLI_OPT_HELP:
            return MU_EXIT_OK;
        case O_FORMAT:
            o->format = optarg;
            break;
        case O_BASE:
            o->base = optarg;
            break;
        case O_ADAPTER:
            o->adapter = optarg;
            break;
        case O_MERGE:
            o->merge = 1;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_ADAPTER_OUT:
            o->adapter_out = optarg;
            break;
        case O_TYPE:
            o->type = optarg;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    return check_args(o);
}

/* FILE.gguf -> FILE-lora.gguf; anything else -> FILE.lora.gguf. malloc'd. */
static char *default_adapter_out(const char *out)
{
    size_t n = strlen(out);
    int ext = n > 5 && !strcmp(out + n - 5, ".gguf");
    char *s = malloc(n + 16);
    if (s)
        snprintf(s, n + 16, "%.*s%s", (int)(ext ? n - 5 : n), out,
                 ext ? "-lora.gguf" : ".lora.gguf");
    return s;
}

/* The last path component of dir, without trailing slashes, into buf. */
static const char *base_name(const char *dir, char *buf, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t s = n;
    while (s > 0 && dir[s - 1] != '/')
        s--;
    snprintf(buf, cap, "%.*s", (int)(n - s), dir + s);
    return buf;
}

static int run_export(const export_opts *o, mu_diag *d)
{
    int rc;
    char namebuf[256];
    tr_gguf_opts g = {.type = o->type && !strcmp(o->type, "f16") ? TR_GGUF_F16 : TR_GGUF_F32,
                      .merge = o->merge,
                      .name = o->name ? o->name : base_name(o->base, namebuf, sizeof namebuf)};
    tr_model *m = tr_hf_model_load(o->base, &rc, d);
    if (!m)
        return rc;
    char *aout = NULL;
    if ((rc = tr_gguf_check(m, d)))
        goto out;
    if (o->adapter && (rc = tr_peft_attach(m, o->adapter, 0, 0, NULL, d)))
        goto out;
    if ((rc = tr_gguf_write_model(m, o->base, &g, o->out, d)))
        goto out;
    mu_info("wrote %s", o->out);
    if (o->adapter && !o->merge) {
        aout = o->adapter_out ? strdup(o->adapter_out) : default_adapter_out(o->out);
        if (!aout) {
            rc = mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
            goto out;
        }
        if ((rc = tr_gguf_write_lora(m, g.name, aout, d)))
            goto out;
        mu_info("wrote %s", aout);
    }
out:
    free(aout);
    tr_model_free(m);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    export_opts o = {0};
    int st = parse_args(argc, argv, &o);
    if (st >= 0)
        return st;
    mu_diag d = {{0}};
    int rc = run_export(&o, &d);
    if (rc) {
        fprintf(stderr, "mutual export: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return MU_EXIT_FAIL;
    }
    return MU_EXIT_OK;
}
