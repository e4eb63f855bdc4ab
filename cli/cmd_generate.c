/* cmd_generate.c - `mutual generate`: a Hugging Face model (with a PEFT adapter) answers a
 * prompt, token by token through the KV cache of tr_generate.h, streamed to stdout. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_generate.h"
#include "mu_file.h"
#include "mu_log.h"
#include "tr_chat.h"
#include "tr_hf.h"
#include "wi_json.h"

#define CMD            "generate"
#define GEN_PROMPT_MAX (64u << 20)

typedef struct {
    const char *base, *adapter, *prompt, *prompt_file, *system, *special_arg;
    tr_special_mode special; /* --special-tokens-in-content */
    const char *stops[GEN_MAX_STOP];
    int n_stop, chat, greedy, json;
    long max_tokens, top_k, threads;
    double temperature, top_p;
    int has_temperature, has_top_p, has_top_k;
    unsigned long long seed;
} gen_opts;

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual generate --base DIR [--adapter DIR] [--prompt TEXT | --prompt-file F]\n"
            "                       [--chat [--system TEXT]] [--max-tokens N] [--greedy]\n"
            "                       [--temperature T] [--top-p P] [--top-k K] [--seed S]\n"
            "                       [--stop STR]... [--threads N] [--json]\n"
            "                       [--special-tokens-in-content text|refuse|allow]\n\n"
            "Continues a prompt with a Hugging Face model (config.json, model.safetensors,\n"
            "tokenizer.json), with a PEFT LoRA adapter if given, and writes the text to stdout\n"
            "as it is generated. The prompt is --prompt, the file --prompt-file, or stdin.\n"
            "Without --chat the prompt is encoded as it is (with the BOS token a Llama or Gemma\n"
            "tokenizer adds). With --chat it is the user message of a conversation ([--system,]\n"
            "user) rendered through the tokenizer's chat template (tokenizer_config.json\n"
            "chat_template, or chat_template.jinja) with add_generation_prompt, as\n"
            "transformers' apply_chat_template does: use it with instruction-tuned models.\n"
            "Special-token text in the prompt (\"<|im_end|>\", \"<|eot_id|>\") is plain text by\n"
            "default, in both modes, as in 'mutual data import': only the template writes turn\n"
            "markup, so the model is prompted as it was trained. A prompt formatted by hand\n"
            "with the model's own markup (no --chat) needs --special-tokens-in-content allow\n"
            "(transformers' behaviour); refuse makes such text an error.\n\n"
            "Generation stops at an end-of-sequence token (every eos_token_id of config.json\n"
            "and generation_config.json, and tokenizer_config.json's eos_token), after\n"
            "--max-tokens, or when the text contains a --stop string (cut before it).\n"
            "Special tokens are left out of the text. Bytes that are not UTF-8 (byte tokens in\n"
            "an order that forms no character) are written as U+FFFD, as Python's\n"
            "decode(errors=\"replace\") does; the text is always UTF-8.\n\n"
            "Sampling: --greedy takes the most likely token. Given any of --temperature,\n"
            "--top-p, --top-k, tokens are drawn (in Hugging Face's order: temperature, top-k,\n"
            "top-p); the others come from generation_config.json, else 1, 1 and 50\n"
            "(transformers' defaults). With none of them, generation_config.json decides: its\n"
            "do_sample true samples with its values, else greedy. --temperature 0 is greedy.\n"
            "repetition_penalty is not applied (a warning says so when the file sets it).\n\n"
            "Options:\n"
            "  --base DIR          Hugging Face model folder with tokenizer.json (required)\n"
            "  --adapter DIR       PEFT LoRA adapter folder (its rank, targets and shapes must\n"
            "                      match the model)\n"
            "  --prompt TEXT       the prompt (not empty)\n"
            "  --prompt-file F     read the prompt from F ('-': stdin)\n"
            "  --chat              apply the chat template (see above)\n"
            "  --system TEXT       a system message first (needs --chat)\n"
            "  --special-tokens-in-content text|refuse|allow\n"
            "                      special-token text in the prompt (and --system): plain\n"
            "                      text (default), an error, or the special token (see above)\n"
            "  --max-tokens N      most tokens to generate (default 256); prompt + N must fit\n"
            "                      the model's context (max_position_embeddings)\n"
            "  --greedy            always the most likely token\n"
            "  --temperature T     divide the logits by T >= 0 (0: greedy)\n"
            "  --top-p P           keep the most likely tokens up to probability P in (0, 1]\n"
            "  --top-k K           keep the K most likely tokens (0: all)\n"
            "  --seed S            seed of the sampler (default 0): the same seed, model,\n"
            "                      prompt and options give the same text\n"
            "  --stop STR          stop when the text contains STR (UTF-8; up to %d times)\n"
            "  --threads N         threads (default: every core)\n"
            "  --json              print one JSON object at the end instead of streaming:\n"
            "                      text, prompt_ids, ids (generated, with the stopping EOS),\n"
            "                      prompt_tokens, generated_tokens, stop (eos, max_tokens or\n"
            "                      stop), prefill_s, decode_s, prefill_tokens_per_s,\n"
            "                      decode_tokens_per_s\n"
            "  -v, --verbose       more log output\n"
            "  -q, --quiet         errors only (no statistics line)\n"
            "  -h, --help          show this help\n\n"
            "At the end, stderr gets the prompt and generated token counts and the prefill\n"
            "and decode speeds (tokens/s).\n"
            "Exit status: 0 success, 1 failure (missing or bad model, tokenizer or adapter\n"
            "files), 2 usage (also: an empty prompt, a prompt + --max-tokens past the model's\n"
            "context).\n",
            GEN_MAX_STOP);
}

enum {
    O_BASE = 1000,
    O_ADAPTER,
    O_PROMPT,
    O_PROMPT_FILE,
    O_CHAT,
    O_SYSTEM,
    O_MAX_TOKENS,
    O_GREEDY,
    O_TEMPERATURE,
    O_TOP_P,
    O_TOP_K,
    O_SEED,
    O_STOP,
    O_THREADS,
    O_JSON,
    O_SPECIAL
};

static int check_args(const gen_opts *o)
{
    if (!o->base)
        return cli_usage_error(CMD, "--base is required");
    if (o->prompt && o->prompt_file)
        return cli_usage_error(CMD, "give --prompt or --prompt-file, not both");
    if (o->system && !o->chat)
        return cli_usage_error(CMD, "--system needs --chat");
    if (o->greedy && (o->has_temperature || o->has_top_p || o->has_top_k))
        return cli_usage_error(CMD, "--greedy cannot go with --temperature, --top-p or --top-k");
    if (o->prompt && !o->prompt[0])
        return cli_usage_error(CMD, "the prompt is empty");
    return -1;
}

/* A stop string matches the text, which is valid UTF-8, only if it is too. */
static int utf8_valid(const char *s)
{
    char *fixed = NULL;
    size_t n;
    int bad = tr_utf8_sanitize(s, strlen(s), &fixed, &n) || fixed;
    free(fixed);
    return !bad;
}

static int parse_value(int c, gen_opts *o)
{
    switch (c) {
    case O_MAX_TOKENS:
        return cli_parse_long(CMD, "--max-tokens", optarg, 1, 1 << 24, &o->max_tokens);
    case O_TEMPERATURE:
        o->has_temperature = 1;
        return cli_parse_double(CMD, "--temperature", optarg, 0, 1e6, &o->temperature);
    case O_TOP_P:
        o->has_top_p = 1;
        if (cli_parse_double(CMD, "--top-p", optarg, 0, 1, &o->top_p))
            return -1;
        return o->top_p > 0 ? 0 : (cli_usage_error(CMD, "--top-p must be above 0"), -1);
    case O_TOP_K:
        o->has_top_k = 1;
        return cli_parse_long(CMD, "--top-k", optarg, 0, 1L << 30, &o->top_k);
    case O_THREADS:
        return cli_parse_long(CMD, "--threads", optarg, 1, 1024, &o->threads);
    case O_SEED: {
        char *end;
        o->seed = strtoull(optarg, &end, 10);
        if (end == optarg || *end || optarg[0] == '-')
            return cli_usage_error(CMD, "--seed wants a whole number, got '%s'", optarg), -1;
        return 0;
    }
    case O_STOP:
        if (!optarg[0])
            return cli_usage_error(CMD, "--stop wants a string that is not empty"), -1;
        if (o->n_stop == GEN_MAX_STOP)
            return cli_usage_error(CMD, "at most %d --stop strings", GEN_MAX_STOP), -1;
        if (!utf8_valid(optarg))
            return cli_usage_error(CMD, "--stop wants UTF-8 text (the text is UTF-8)"), -1;
        o->stops[o->n_stop++] = optarg;
        return 0;
    }
    return cli_usage_error(CMD, "unknown option or missing argument"), -1;
}

static int parse_args(int argc, char **argv, gen_opts *o)
{
    static const struct option longopts[] = {
        {"base", required_argument, NULL, O_BASE},
        {"adapter", required_argument, NULL, O_ADAPTER},
        {"prompt", required_argument, NULL, O_PROMPT},
        {"prompt-file", required_argument, NULL, O_PROMPT_FILE},
        {"chat", no_argument, NULL, O_CHAT},
        {"system", required_argument, NULL, O_SYSTEM},
        {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
        {"greedy", no_argument, NULL, O_GREEDY},
        {"temperature", required_argument, NULL, O_TEMPERATURE},
        {"top-p", required_argument, NULL, O_TOP_P},
        {"top-k", required_argument, NULL, O_TOP_K},
        {"seed", required_argument, NULL, O_SEED},
        {"stop", required_argument, NULL, O_STOP},
        {"threads", required_argument, NULL, O_THREADS},
        {"json", no_argument, NULL, O_JSON},
        {"special-tokens-in-content", required_argument, NULL, O_SPECIAL},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    int c;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        switch (c) {
        case CLI_OPT_HELP:
            return MU_EXIT_OK;
        case O_BASE:
            o->base = optarg;
            break;
        case O_ADAPTER:
            o->adapter = optarg;
            break;
        case O_PROMPT:
            o->prompt = optarg;
            break;
        case O_PROMPT_FILE:
            o->prompt_file = optarg;
            break;
        case O_CHAT:
            o->chat = 1;
            break;
        case O_SYSTEM:
            o->system = optarg;
            break;
        case O_GREEDY:
            o->greedy = 1;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_SPECIAL:
            o->special_arg = optarg;
            break;
        default:
            if (parse_value(c, o))
                return MU_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (o->special_arg && tr_special_mode_parse(o->special_arg, &o->special))
        return cli_usage_error(
            CMD, "--special-tokens-in-content is text, refuse or allow, not '%s'", o->special_arg);
    return check_args(o);
}

/* The sampler config: the command line, else generation_config.json, else greedy (see
 * --help). *sampling = 0 for greedy. */
static tr_sample_config sample_config(const gen_opts *o, const gen_model_info *mi, int *sampling)
{
    tr_sample_config c = {.temperature = 1.0f, .top_k = 50, .top_p = 1.0f};
    int given = o->has_temperature || o->has_top_p || o->has_top_k;
    *sampling = !o->greedy && (given || mi->do_sample);
    if (mi->has_temperature)
        c.temperature = mi->sample.temperature;
    if (mi->has_top_p)
        c.top_p = mi->sample.top_p;
    if (mi->has_top_k)
        c.top_k = mi->sample.top_k;
    if (o->has_temperature)
        c.temperature = (float)o->temperature;
    if (o->has_top_p)
        c.top_p = (float)o->top_p;
    if (o->has_top_k)
        c.top_k = (int)o->top_k;
    if (!*sampling || c.temperature == 0.0f)
        c = (tr_sample_config){.temperature = 0, .top_k = 0, .top_p = 1.0f};
    *sampling = c.temperature > 0;
    return c;
}

/* The prompt text (malloc'd): --prompt, --prompt-file or stdin. */
static int read_prompt(const gen_opts *o, char **text, size_t *len, mu_diag *d)
{
    if (o->prompt) {
        *len = strlen(o->prompt);
        *text = strdup(o->prompt);
        return *text ? MU_OK : mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    }
    const char *path =
        o->prompt_file && strcmp(o->prompt_file, "-") ? o->prompt_file : "/dev/stdin";
    if (!o->prompt_file && isatty(0))
        mu_info("generate: reading the prompt from stdin (end it with Ctrl-D)");
    return mu_read_file(path, GEN_PROMPT_MAX, text, len, d);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* What a run produced, for the statistics and --json. */
typedef struct {
    uint32_t *prompt;
    size_t n_prompt;
    int32_t *ids;     /* (max_tokens) generated */
    int n_ids, n_fed; /* n_fed: decode forwards (the first token comes from the prefill) */
    const char *stop;
    double prefill_s, decode_s;
} gen_result;

typedef struct {
    tr_model *m;
    tr_tok *tok;
    gen_model_info mi;
    tr_gen *g;
    tr_sampler *s;
    float *logits;
    gen_stream st;
} gen_state;

static int is_eos(const gen_model_info *mi, int32_t t)
{
    for (int i = 0; i < mi->n_eos; i++)
        if ((int32_t)mi->eos[i] == t)
            return 1;
    return 0;
}

/* Prefill, then one token at a time until EOS, --max-tokens or a stop string. */
static int generate(gen_state *gs, const gen_opts *o, gen_result *r, mu_diag *d)
{
    int V = tr_model_config(gs->m)->vocab_size, rc;
    int32_t *p = malloc(r->n_prompt * sizeof *p);
    if (!p)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_prompt; i++)
        p[i] = (int32_t)r->prompt[i];
    double t0 = now_s();
    rc = tr_gen_feed(gs->g, p, (int)r->n_prompt, gs->logits, d);
    free(p);
    r->prefill_s = now_s() - t0;
    r->stop = "max_tokens";
    t0 = now_s();
    while (!rc && r->n_ids < o->max_tokens) {
        int32_t t = tr_sampler_pick(gs->s, gs->logits, V);
        r->ids[r->n_ids++] = t;
        if (is_eos(&gs->mi, t)) {
            r->stop = "eos";
            break;
        }
        if ((rc = gen_stream_push(&gs->st, (uint32_t)t, d)))
            break;
        if (gs->st.stopped) {
            r->stop = "stop";
            break;
        }
        if (r->n_ids < o->max_tokens && !(rc = tr_gen_feed(gs->g, &t, 1, gs->logits, d)))
            r->n_fed++;
    }
    r->decode_s = now_s() - t0;
    return rc ? rc : gen_stream_finish(&gs->st, d);
}

/* s->text as a JSON string: wi_str_json_string stops at a NUL, so NUL bytes are written as
 * \u0000 between the pieces around them. */
static void json_text(wi_str *j, const char *t, size_t n)
{
    wi_str_printf(j, "\"");
    for (size_t i = 0; i <= n;) {
        size_t k = strnlen(t + i, n - i);
        wi_str piece;
        wi_str_init(&piece);
        char *seg = strndup(t + i, k);
        wi_str_json_string(&piece, seg ? seg : "");
        free(seg);
        if (wi_str_ok(&piece) == MU_OK && piece.len >= 2)
            wi_str_printf(j, "%.*s", (int)(piece.len - 2), piece.s + 1);
        wi_str_deinit(&piece);
        i += k + 1;
        if (i <= n)
            wi_str_printf(j, "\\u0000");
    }
    wi_str_printf(j, "\"");
}

static double rate(double n, double s)
{
    return s > 0 ? n / s : 0;
}

static int print_json(const gen_state *gs, const gen_result *r, mu_diag *d)
{
    wi_str j;
    wi_str_init(&j);
    wi_str_printf(&j, "{\"text\": ");
    json_text(&j, gs->st.text ? gs->st.text : "", gs->st.len);
    wi_str_printf(&j, ", \"prompt_ids\": [");
    for (size_t i = 0; i < r->n_prompt; i++)
        wi_str_printf(&j, "%s%u", i ? ", " : "", r->prompt[i]);
    wi_str_printf(&j, "], \"ids\": [");
    for (int i = 0; i < r->n_ids; i++)
        wi_str_printf(&j, "%s%d", i ? ", " : "", r->ids[i]);
    wi_str_printf(&j,
                  "], \"prompt_tokens\": %zu, \"generated_tokens\": %d, \"stop\": \"%s\", "
                  "\"prefill_s\": %.6f, \"decode_s\": %.6f, \"prefill_tokens_per_s\": %.3f, "
                  "\"decode_tokens_per_s\": %.3f}\n",
                  r->n_prompt, r->n_ids, r->stop, r->prefill_s, r->decode_s,
                  rate((double)r->n_prompt, r->prefill_s), rate(r->n_fed, r->decode_s));
    int rc = wi_str_ok(&j);
    if (!rc && (fwrite(j.s, 1, j.len, stdout) != j.len || fflush(stdout)))
        rc = mu_diag_set(d, MU_ERR_IO, "writing the JSON failed");
    wi_str_deinit(&j);
    return rc ? rc : MU_OK;
}

static void print_stats(const gen_result *r, int streamed)
{
    if (mu_log_get_level() < MU_LOG_INFO)
        return;
    fprintf(stderr,
            "%sgenerate: %zu prompt tokens, %d generated (stop: %s); prefill %.1f tokens/s, "
            "decode %.1f tokens/s\n",
            streamed ? "\n" : "", r->n_prompt, r->n_ids, r->stop,
            rate((double)r->n_prompt, r->prefill_s), rate(r->n_fed, r->decode_s));
}

/* The prompt's ids: the chat template's text without added specials (the template writes
 * them), or the raw text as AutoTokenizer encodes it (add_special_tokens). */
static int encode_prompt(const gen_opts *o, tr_tok *tok, gen_result *r, int *usage, mu_diag *d)
{
    char *text = NULL;
    size_t len, at;
    uint32_t id;
    int rc = read_prompt(o, &text, &len, d);
    if (rc)
        return rc;
    if (!len) {
        *usage = 1;
        rc = mu_diag_set(d, MU_ERR_INVALID, "the prompt is empty");
    } else if (o->chat) {
        tr_chat *ct = tr_chat_load(o->base, &rc, d);
        tr_chat_msg msgs[2];
        size_t n = 0;
        if (o->system)
            msgs[n++] = (tr_chat_msg){"system", o->system};
        msgs[n++] = (tr_chat_msg){"user", text};
        if (ct) {
            tr_chat_set_special(ct, o->special);
            rc = tr_chat_encode(ct, tok, msgs, n, 1, &r->prompt, &r->n_prompt, d);
        }
        tr_chat_free(ct);
    } else if (o->special == TR_SPECIAL_REFUSE && tr_tok_find_special(tok, text, len, &at, &id)) {
        rc = tr_special_refusal(d, tok, "the prompt", id, at, "");
    } else {
        rc = tr_special_encode(tok, o->special, text, len, &r->prompt, &r->n_prompt);
    }
    if (rc == MU_ERR_NOMEM)
        mu_diag_set(d, rc, "out of memory encoding the prompt");
    else if (!rc && !r->n_prompt) {
        *usage = 1;
        rc = mu_diag_set(d, MU_ERR_INVALID, "the prompt encodes to no tokens");
    }
    free(text);
    return rc;
}

/* Model, adapter, tokenizer, prompt and stop ids; the cache sized prompt + max_tokens. */
static int setup(gen_state *gs, const gen_opts *o, gen_result *r, int *usage, mu_diag *d)
{
    int rc;
    if (!(gs->m = tr_hf_model_load(o->base, &rc, d)))
        return rc;
    const tr_config *c = tr_model_config(gs->m);
    if (o->adapter && (rc = tr_peft_attach(gs->m, o->adapter, 0, 0, NULL, d)))
        return rc;
    if (!(gs->tok = tr_tok_load(o->base, &rc, d))) {
        char why[sizeof d->msg];
        snprintf(why, sizeof why, "%s", d->msg);
        return rc == MU_ERR_NOTFOUND
                   ? mu_diag_set(d, rc, "generate needs the model's tokenizer: %s", why)
                   : rc;
    }
    if (tr_tok_vocab_size(gs->tok) > (uint32_t)c->vocab_size)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: the tokenizer has %u ids, more than the model's vocab_size %d",
                           o->base, tr_tok_vocab_size(gs->tok), c->vocab_size);
    if ((rc = gen_model_info_load(o->base, gs->tok, c->vocab_size, &gs->mi, d)))
        return rc;
    if ((rc = encode_prompt(o, gs->tok, r, usage, d)))
        return rc;
    if ((long)r->n_prompt + o->max_tokens > c->max_pos) {
        *usage = 1;
        return mu_diag_set(d, MU_ERR_INVALID,
                           "the prompt (%zu tokens) and --max-tokens %ld need %ld positions, more "
                           "than the model's context of %d (config.json max_position_embeddings)",
                           r->n_prompt, o->max_tokens, (long)r->n_prompt + o->max_tokens,
                           c->max_pos);
    }
    if (!(gs->g = tr_gen_new(gs->m, (int)(r->n_prompt + (size_t)o->max_tokens), d)))
        return MU_ERR_NOMEM;
    int sampling;
    tr_sample_config sc = sample_config(o, &gs->mi, &sampling);
    if (sampling && gs->mi.repetition_penalty != 1.0)
        mu_warn("generate: generation_config.json repetition_penalty %g is not applied",
                gs->mi.repetition_penalty);
    if (!(gs->s = tr_sampler_new(&sc, o->seed, c->vocab_size, d)))
        return MU_ERR_INVALID;
    gs->logits = malloc((size_t)c->vocab_size * sizeof *gs->logits);
    r->ids = malloc((size_t)o->max_tokens * sizeof *r->ids);
    if (!gs->logits || !r->ids ||
        gen_stream_init(&gs->st, gs->tok, o->json ? NULL : stdout, o->stops, o->n_stop,
                        (size_t)o->max_tokens))
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    mu_debug("generate: %zu prompt tokens, %d stop ids, %s", r->n_prompt, gs->mi.n_eos,
             sampling ? "sampling" : "greedy");
    return MU_OK;
}

static int run_generate(const gen_opts *o, int *usage, mu_diag *d)
{
    gen_state gs = {0};
    gen_result r = {0};
    if (o->threads)
        tr_threads_set((int)o->threads);
    int rc = setup(&gs, o, &r, usage, d);
    if (!rc)
        rc = generate(&gs, o, &r, d);
    if (!rc && o->json)
        rc = print_json(&gs, &r, d);
    if (!rc)
        print_stats(&r, !o->json);
    gen_stream_deinit(&gs.st);
    free(r.ids);
    free(r.prompt);
    free(gs.logits);
    tr_sampler_free(gs.s);
    tr_gen_free(gs.g);
    tr_tok_free(gs.tok);
    tr_model_free(gs.m);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o = {.max_tokens = 256};
    int st = parse_args(argc, argv, &o);
    if (st >= 0)
        return st;
    mu_diag d = {{0}};
    int usage = 0;
    int rc = run_generate(&o, &usage, &d);
    if (rc) {
        fflush(stdout);
        fprintf(stderr, "mutual generate: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return usage ? MU_EXIT_USAGE : MU_EXIT_FAIL;
    }
    return MU_EXIT_OK;
}
