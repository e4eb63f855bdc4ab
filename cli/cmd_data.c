/* cmd_data.c - `mutual data import`: make an HDF5 token dataset from a text file with the
 * byte-level tokenizer (every byte is one token, vocabulary 256). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tr_data.h"

#define CMD "data"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual data import --text FILE --out FILE.h5\n\n"
            "Makes a token dataset for 'mutual train' and 'mutual eval' from a text file with\n"
            "a byte-level tokenizer: each byte of the file is one token id (0-255), so\n"
            "vocab_size is 256. It suits byte-vocabulary models only; a model with a BPE\n"
            "vocabulary needs its own tokenizer. The output holds /tokens (uint16) with a\n"
            "vocab_size attribute and is replaced atomically.\n\n"
            "Options:\n"
            "  --text FILE     text file to read (required)\n"
            "  --out FILE.h5   dataset file to write (required)\n"
            "  -v, --verbose   more log output\n"
            "  -q, --quiet     errors only\n"
            "  -h, --help      show this help\n\n"
            "Exit status: 0 success, 1 failure, 2 usage.\n");
}

/* The whole file as byte tokens. */
static int read_bytes(const char *path, int32_t **out, int64_t *n, mu_diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mu_diag_set(d, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                           strerror(errno));
    size_t cap = 1 << 16, len = 0;
    int32_t *tok = malloc(cap * sizeof *tok);
    unsigned char buf[1 << 16];
    size_t got;
    int rc = 0;
    while (tok && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            int32_t *t = realloc(tok, cap * sizeof *tok);
            if (!t) {
                free(tok);
                tok = NULL;
                break;
            }
            tok = t;
        }
        for (size_t i = 0; i < got; i++)
            tok[len++] = buf[i];
    }
    if (!tok)
        rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", path);
    else if (ferror(f))
        rc = mu_diag_set(d, MU_ERR_IO, "%s: read error", path);
    fclose(f);
    if (rc) {
        free(tok);
        return rc;
    }
    *out = tok;
    *n = (int64_t)len;
    return 0;
}

static int import(const char *text, const char *out)
{
    mu_diag d = {{0}};
    int32_t *tok = NULL;
    int64_t n = 0;
    int rc = read_bytes(text, &tok, &n, &d);
    if (!rc && n < 2)
        rc = mu_diag_set(&d, MU_ERR_INVALID, "%s: %lld bytes; a dataset needs at least 2 tokens",
                         text, (long long)n);
    if (!rc)
        rc = tr_data_write(out, tok, n, 256, &d);
    free(tok);
    if (rc) {
        fprintf(stderr, "mutual data: %s\n", d.msg);
        return MU_EXIT_FAIL;
    }
    printf("%s: %lld tokens (byte-level, vocab_size 256)\n", out, (long long)n);
    return MU_EXIT_OK;
}

int cmd_data(int argc, char **argv)
{
    enum { O_TEXT = 1000, O_OUT };
    static const struct option longopts[] = {{"text", required_argument, NULL, O_TEXT},
                                             {"out", required_argument, NULL, O_OUT},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    const char *text = NULL, *out = NULL;
    int c;
    /* options may come before or after the 'import' word */
    while ((c = getopt_long(argc, argv, MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        }
        if (cli_common_opt(c))
            continue;
        if (c == O_TEXT)
            text = optarg;
        else if (c == O_OUT)
            out = optarg;
        else
            return cli_usage_error(CMD, "unknown option or missing argument");
    }
    if (optind >= argc || strcmp(argv[optind], "import"))
        return cli_usage_error(CMD, "expected 'import --text FILE --out FILE.h5'");
    if (optind + 1 < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind + 1]);
    if (!text || !out)
        return cli_usage_error(CMD, "--text and --out are required");
    return import(text, out);
}
