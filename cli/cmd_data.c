/* cmd_data.c - `mutual data import`: make an HDF5 token dataset from text files, folders or
 * stdin with the byte-level tokenizer (every byte is one token, vocabulary 256). */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mu_grow.h"
#include "tr_data.h"

#define CMD "data"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual data import --text PATH [--text PATH ...] --out FILE.h5\n\n"
            "Makes a token dataset for 'mutual train' and 'mutual eval' from text with a\n"
            "byte-level tokenizer: each byte of the input is one token id (0-255), so\n"
            "vocab_size is 256. It suits byte-vocabulary models only; a model with a BPE\n"
            "vocabulary needs its own tokenizer. The output holds /tokens (uint16) with a\n"
            "vocab_size attribute and is replaced atomically; nothing is written when any\n"
            "input cannot be read.\n\n"
            "Each --text is a file, a folder or '-' (standard input); the tokens of all inputs\n"
            "are concatenated in command-line order. A folder is read recursively, its files\n"
            "sorted by path so the result is reproducible; hidden entries (names starting\n"
            "with '.') and anything not a regular file (symlinks, devices) are skipped.\n"
            "The list of files read is kept in a 'sources' string attribute on /tokens, one\n"
            "line per file: SHA-256 (hex), size in bytes, path.\n\n"
            "Options:\n"
            "  --text PATH     file, folder or '-' to read (required, may be repeated)\n"
            "  --out FILE.h5   dataset file to write (required)\n"
            "  -v, --verbose   more log output\n"
            "  -q, --quiet     errors only\n"
            "  -h, --help      show this help\n\n"
            "Exit status: 0 success, 1 failure, 2 usage.\n");
}

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static int strlist_add(strlist *l, const char *s)
{
    if (MU_GROW(&l->v, &l->cap, l->n + 1, 16) != MU_OK)
        return -1;
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the regular, non-hidden files under dir (recursively) to l, unsorted. */
static int walk_dir(const char *dir, strlist *l, mu_diag *d)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return mu_diag_set(d, MU_ERR_IO, "%s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (!rc && (e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue; /* ".", ".." and hidden entries */
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) {
            rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        snprintf(p, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat st;
        if (lstat(p, &st))
            rc = mu_diag_set(d, MU_ERR_IO, "%s: %s", p, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = walk_dir(p, l, d);
        else if (S_ISREG(st.st_mode) && strlist_add(l, p))
            rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", p);
        free(p);
        errno = 0;
    }
    if (!rc && errno)
        rc = mu_diag_set(d, MU_ERR_IO, "%s: %s", dir, strerror(errno));
    closedir(dp);
    return rc;
}

/* The files one --text names: itself, "-", or a folder's files sorted by path. */
static int expand(const char *path, strlist *l, mu_diag *d)
{
    if (!strcmp(path, "-"))
        return strlist_add(l, path) ? mu_diag_set(d, MU_ERR_NOMEM, "out of memory") : 0;
    struct stat st;
    if (stat(path, &st))
        return mu_diag_set(d, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                           strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        size_t first = l->n;
        int rc = walk_dir(path, l, d);
        if (rc)
            return rc;
        if (l->n == first)
            return mu_diag_set(d, MU_ERR_INVALID, "%s: folder holds no regular files", path);
        qsort(l->v + first, l->n - first, sizeof *l->v, cmp_str);
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return mu_diag_set(d, MU_ERR_INVALID, "%s: not a regular file or folder", path);
    return strlist_add(l, path) ? mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", path) : 0;
}

typedef struct {
    int32_t *tok;
    size_t len, cap;
} tokbuf;

/* Appends one file's bytes (path "-" = stdin) as tokens; *size and hash = its bytes. */
static int read_bytes(const char *path, tokbuf *b, unsigned char hash[crypto_hash_sha256_BYTES],
                      long long *size, mu_diag *d)
{
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return mu_diag_set(d, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                           strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[1 << 16];
    size_t got, start = b->len;
    int rc = 0;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (MU_GROW(&b->tok, &b->cap, b->len + got, 1u << 16) != MU_OK) {
            rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        crypto_hash_sha256_update(&st, buf, got);
        for (size_t i = 0; i < got; i++)
            b->tok[b->len++] = buf[i];
    }
    if (!rc && ferror(f))
        rc = mu_diag_set(d, MU_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (!is_stdin)
        fclose(f);
    if (rc)
        return rc;
    crypto_hash_sha256_final(&st, hash);
    *size = (long long)(b->len - start);
    return 0;
}

/* Appends "HEX SIZE PATH\n" to the sources text. */
static int add_source(char **src, size_t *len, size_t *cap, const unsigned char *hash,
                      long long size, const char *path)
{
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, hash, crypto_hash_sha256_BYTES);
    size_t add = strlen(hex) + strlen(path) + 32;
    if (MU_GROW(src, cap, *len + add, 4096) != MU_OK)
        return -1;
    *len += (size_t)snprintf(*src + *len, add, "%s %lld %s\n", hex, size, path);
    return 0;
}

static int import(char **texts, int ntexts, const char *out)
{
    mu_diag d = {{0}};
    strlist files = {0};
    tokbuf b = {0};
    char *src = NULL;
    size_t srclen = 0, srccap = 0;
    int rc = sodium_init() < 0 ? mu_diag_set(&d, MU_ERR_CRYPTO, "libsodium init failed") : 0;
    for (int i = 0; !rc && i < ntexts; i++)
        rc = expand(texts[i], &files, &d);
    for (size_t i = 0; !rc && i < files.n; i++) {
        unsigned char hash[crypto_hash_sha256_BYTES];
        long long size = 0;
        rc = read_bytes(files.v[i], &b, hash, &size, &d);
        if (!rc && add_source(&src, &srclen, &srccap, hash, size, files.v[i]))
            rc = mu_diag_set(&d, MU_ERR_NOMEM, "out of memory");
    }
    int64_t n = (int64_t)b.len;
    if (!rc && n < 2)
        rc = mu_diag_set(&d, MU_ERR_INVALID,
                         "%lld bytes in %zu file(s); a dataset needs at least 2 tokens",
                         (long long)n, files.n);
    if (!rc)
        rc = tr_data_write_sources(out, b.tok, n, 256, src, &d);
    free(b.tok);
    free(src);
    size_t nfiles = files.n;
    strlist_free(&files);
    if (rc) {
        fprintf(stderr, "mutual data: %s\n", d.msg);
        return MU_EXIT_FAIL;
    }
    printf("%s: %lld tokens (byte-level, vocab_size 256) from %zu file%s\n", out, (long long)n,
           nfiles, nfiles == 1 ? "" : "s");
    return MU_EXIT_OK;
}

int cmd_data(int argc, char **argv)
{
    enum { O_TEXT = 1000, O_OUT };
    static const struct option longopts[] = {{"text", required_argument, NULL, O_TEXT},
                                             {"out", required_argument, NULL, O_OUT},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    const char *out = NULL;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    int ntexts = 0, c;
    if (!texts) {
        fprintf(stderr, "mutual data: out of memory\n");
        return MU_EXIT_FAIL;
    }
    /* options may come before or after the 'import' word */
    while ((c = cli_next_opt(argc, argv, MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return free(texts), MU_EXIT_OK;
        if (c == O_TEXT)
            texts[ntexts++] = optarg;
        else if (c == O_OUT)
            out = optarg;
        else
            return free(texts), cli_usage_error(CMD, "unknown option or missing argument");
    }
    int rc;
    if (optind >= argc || strcmp(argv[optind], "import"))
        rc = cli_usage_error(CMD, "expected 'import --text PATH [--text PATH ...] --out FILE.h5'");
    else if (optind + 1 < argc)
        rc = cli_usage_error(CMD, "unexpected argument '%s'", argv[optind + 1]);
    else if (!ntexts || !out)
        rc = cli_usage_error(CMD, "--text and --out are required");
    else
        rc = import(texts, ntexts, out);
    free(texts);
    return rc;
}
