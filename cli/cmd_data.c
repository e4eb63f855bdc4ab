/* cmd_data.c - `mutual data import`: make an HDF5 token dataset from text files, folders,
 * JSONL or stdin, with a model's tokenizer (--tokenizer DIR: documents packed one after
 * another, a loss mask at their boundaries; JSONL conversations rendered with the chat
 * template, only the assistant's replies in the loss) or the byte-level one (every byte is one
 * token, vocabulary 256). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cmd_data.h"
#include "mu_grow.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "tr_chat.h"
#include "tr_data.h"
#include "tr_tok.h"

#define CMD "data"

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: mutual data import [--tokenizer MODEL_DIR [--chat-template FILE]\n"
        "                           [--special-tokens-in-content text|refuse|allow]]\n"
        "                          --text PATH [--text PATH ...] --out FILE.h5\n\n"
        "Makes a token dataset for 'mutual train' and 'mutual eval' from text.\n\n"
        "With --tokenizer, each file is one document (a file whose name ends in .jsonl\n"
        "holds one document per line; blank lines are skipped), encoded with MODEL_DIR's\n"
        "tokenizer.json and the special tokens its tokenizer_config.json adds (a Llama's\n"
        "or Gemma's BOS, as transformers does with add_special_tokens=True). Documents\n"
        "are packed one after another; the dataset's /mask leaves out of the loss each\n"
        "document's first token (its prediction would come from the previous document).\n"
        "vocab_size is the tokenizer's, and the tokenizer.json's SHA-256 is recorded:\n"
        "training refuses a model with another one.\n\n"
        "A JSONL line is a JSON object with one of:\n"
        "  \"text\": \"...\"                      plain text, in the loss (bar the first token)\n"
        "  \"messages\": [{\"role\": ..., \"content\": ...}, ...]\n"
        "                                      a conversation; roles system, user,\n"
        "                                      assistant (as far as the template allows)\n"
        "  \"prompt\": ..., \"response\": ...      one user and one assistant turn, after\n"
        "                                      an optional \"system\": ...\n"
        "Text and conversation lines may be mixed in one file; other keys of the line\n"
        "are ignored. A conversation is rendered with MODEL_DIR's chat template\n"
        "(tokenizer_config.json's chat_template, or chat_template.jinja) as transformers'\n"
        "apply_chat_template renders and tokenizes it (the special tokens the template\n"
        "writes parsed as such, no BOS but the template's), and only the assistant's\n"
        "replies are in the loss: each reply's tokens through the end-of-turn token that closes "
        "it\n"
        "(the first special token after its text), not what the template writes after\n"
        "it. The replies are found by rendering the conversation up to each one. When\n"
        "the template renders earlier turns differently once later ones follow (Qwen3's\n"
        "drops their <think> part), such a conversation becomes one example per reply:\n"
        "the conversation through that reply, as the model sees it then, with only that\n"
        "reply in the loss. A note on stderr gives how many were split and their tokens\n"
        "against the unsplit ones (each example repeats the turns before its reply).\n"
        "--chat-template FILE (a Jinja file, as chat_template.jinja) replaces MODEL_DIR's\n"
        "template, e.g. for a base model that has none; bos_token and eos_token still\n"
        "come from MODEL_DIR's tokenizer_config.json (undefined without one).\n\n"
        "Special-token text in the data (\"<|im_end|>\", \"<|eot_id|>\", \"<|endoftext|>\" in a\n"
        "message's content or a document) is plain text by default: it is encoded as the\n"
        "ordinary pieces of its characters (Hugging Face's split_special_tokens), so data\n"
        "cannot forge a turn, end a reply early or mark a document boundary; the only\n"
        "special tokens are those the chat template writes around the content and the\n"
        "BOS/EOS the tokenizer adds to a document. The template's own markup is told apart\n"
        "from content by following the content's bytes through the template (trim,\n"
        "split, concatenation...), not by searching the text. --special-tokens-in-content\n"
        "refuse stops at the first such text instead (naming FILE:LINE, the message's role\n"
        "and the token; nothing is written); allow encodes it as the special token, as\n"
        "transformers does.\n\n"
        "Ids are stored as uint16 up to 65,536 tokens, else uint32.\n\n"
        "Without --tokenizer, a byte-level tokenizer: each byte of the input is one token\n"
        "id (0-255), vocab_size 256, for byte-vocabulary models only.\n\n"
        "The output is replaced atomically; nothing is written when any input cannot be\n"
        "read or a JSONL line is bad: not JSON, none of the keys above, a bad role, a\n"
        "conversation without an assistant reply, special-token text under refuse, no\n"
        "chat template (neither MODEL_DIR's nor --chat-template), a template that refuses the "
        "conversation or whose prompt\n"
        "for a reply is not a prefix of the reply's rendering (the error names FILE:LINE). A "
        "progress bar shows on a\n"
        "terminal.\n\n"
        "Each --text is a file, a folder or '-' (standard input); the tokens of all inputs\n"
        "are concatenated in command-line order. A folder is read recursively, its files\n"
        "sorted by path so the result is reproducible; hidden entries (names starting\n"
        "with '.') and anything not a regular file (symlinks, devices) are skipped.\n"
        "The list of files read is kept in a 'sources' string attribute on /tokens, one\n"
        "line per file: SHA-256 (hex), size in bytes, path.\n\n"
        "Options:\n"
        "  --tokenizer DIR the model folder whose tokenizer.json to use (default: none,\n"
        "                  byte-level)\n"
        "  --chat-template FILE\n"
        "                  Jinja chat template for the conversations (default: MODEL_DIR's)\n"
        "  --special-tokens-in-content text|refuse|allow\n"
        "                  special-token text in content and documents: plain text\n"
        "                  (default), an error, or the special token (see above)\n"
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

/* A whole file (path "-" = stdin) into a malloc'd *text of *size bytes, its SHA-256. */
static int read_text(const char *path, char **text, unsigned char hash[crypto_hash_sha256_BYTES],
                     long long *size, mu_diag *d)
{
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return mu_diag_set(d, errno == ENOENT ? MU_ERR_NOTFOUND : MU_ERR_IO, "%s: %s", path,
                           strerror(errno));
    char *t = NULL;
    size_t len = 0, cap = 0, got;
    int rc = 0;
    do {
        if (MU_GROW(&t, &cap, len + (1u << 16) + 1, 1u << 16) != MU_OK) {
            rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        len += got = fread(t + len, 1, 1u << 16, f);
    } while (got > 0);
    if (!rc && ferror(f))
        rc = mu_diag_set(d, MU_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (!is_stdin)
        fclose(f);
    if (rc) {
        free(t);
        return rc;
    }
    crypto_hash_sha256(hash, (const unsigned char *)t, len);
    *text = t;
    *size = (long long)len;
    return 0;
}

/* Appends one file's bytes (path "-" = stdin) as tokens; *size and hash = its bytes. */
static int read_bytes(const char *path, tokbuf *b, unsigned char hash[crypto_hash_sha256_BYTES],
                      long long *size, mu_diag *d)
{
    char *text = NULL;
    int rc = read_text(path, &text, hash, size, d);
    if (rc)
        return rc;
    size_t n = (size_t)*size;
    if (MU_GROW(&b->tok, &b->cap, b->len + n, 1u << 16) != MU_OK)
        rc = mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; !rc && i < n; i++)
        b->tok[b->len++] = (unsigned char)text[i];
    free(text);
    return rc;
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

/* The tokenized documents: ids and the loss mask, and the progress over the input bytes. */
typedef struct {
    tr_tok *tok;
    const char *tokdir, *tmpl; /* tmpl: --chat-template FILE or NULL */
    tr_chat *chat;             /* the chat template, loaded at the first chat line */
    tr_special_mode special;   /* --special-tokens-in-content */
    int32_t *ids;
    uint8_t *mask;
    size_t n, cap, mcap, docs;
    size_t chats, trained; /* conversations, and their tokens with mask 1 */
    size_t split_convs, split_examples, split_tokens, split_whole; /* add_split's */
    char split_first[4200];                                        /* its first FILE:LINE */
    long done, total;                                              /* input bytes, for the bar */
    mu_progress bar;
} docbuf;

/* Room for m more ids and mask bytes. */
static int reserve(docbuf *b, size_t m, const char *where, mu_diag *d)
{
    if (MU_GROW(&b->ids, &b->cap, b->n + m, 1u << 16) ||
        MU_GROW(&b->mask, &b->mcap, b->n + m, 1u << 16))
        return mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", where);
    return MU_OK;
}

/* Appends one document: its ids with the special tokens, its first token masked out. Special
 * token text in it is text unless --special-tokens-in-content says otherwise; a refusal names
 * where (FILE:LINE for a JSONL line; a whole file (whole_file): FILE and the line in it). */
static int add_doc(docbuf *b, const char *text, size_t len, const char *where, int whole_file,
                   mu_diag *d)
{
    uint32_t *ids = NULL;
    size_t m = 0, at;
    uint32_t id;
    if (b->special == TR_SPECIAL_REFUSE && tr_tok_find_special(b->tok, text, len, &at, &id)) {
        long line = 1;
        for (size_t i = 0; i < at; i++)
            line += text[i] == '\n';
        char who[1100];
        if (whole_file)
            snprintf(who, sizeof who, "%.1000s:%ld: the document", where, line);
        else
            snprintf(who, sizeof who, "%.1000s: the document", where);
        return tr_special_refusal(d, b->tok, who, id, at, "");
    }
    int rc = tr_special_encode(b->tok, b->special, text, len, &ids, &m);
    if (rc)
        return mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory tokenizing", where);
    if (reserve(b, m, where, d)) {
        free(ids);
        return MU_ERR_NOMEM;
    }
    for (size_t i = 0; i < m; i++) {
        b->ids[b->n + i] = (int32_t)ids[i];
        b->mask[b->n + i] = i > 0; /* predicting a document's first token crosses a boundary */
    }
    b->n += m;
    b->docs += m > 0;
    free(ids);
    return MU_OK;
}

/* The chat template: --chat-template's, else MODEL_DIR's. */
static tr_chat *load_chat(const docbuf *b, int *err, mu_diag *d)
{
    tr_chat *c = b->tmpl ? tr_chat_load_template(b->tokdir, b->tmpl, err, d)
                         : tr_chat_load(b->tokdir, err, d);
    if (!c && !b->tmpl && *err == MU_ERR_NOTFOUND) {
        char msg[sizeof d->msg];
        snprintf(msg, sizeof msg, "%s", d->msg);
        mu_diag_set(d, *err, "%s; give one with --chat-template FILE", msg);
    }
    if (c)
        tr_chat_set_special(c, b->special);
    return c;
}

/* Appends one example of a conversation (ids and mask, freed here); the first token stays
 * out of the loss as for any document. */
static int add_example(docbuf *b, uint32_t *ids, uint8_t *mask, size_t m, const char *where,
                       mu_diag *d)
{
    int rc = MU_OK;
    if (m && !(rc = reserve(b, m, where, d))) {
        mask[0] = 0; /* predicting a document's first token crosses a boundary */
        for (size_t i = 0; i < m; i++) {
            b->ids[b->n + i] = (int32_t)ids[i];
            b->mask[b->n + i] = mask[i];
            b->trained += mask[i];
        }
        b->n += m;
        b->docs++;
    }
    free(ids);
    free(mask);
    return rc;
}

/* A conversation the template does not render prefix-consistently, one example per assistant
 * reply (tr_chat_mask_reply); counted for the note import_tok prints. */
static int add_split(docbuf *b, const tr_chat_msg *msgs, size_t nmsg, const char *where, mu_diag *d)
{
    uint32_t *ids = NULL;
    uint8_t *mask = NULL;
    size_t m = 0, n0 = b->n;
    mu_diag cd = {{0}};
    int rc = tr_chat_encode(b->chat, b->tok, msgs, nmsg, 0, &ids, &m, &cd);
    free(ids);
    if (rc)
        return mu_diag_set(d, rc, "%s: %s", where, cd.msg);
    size_t whole = m;
    for (size_t k = 0; !rc && k < nmsg; k++) {
        if (strcmp(msgs[k].role, "assistant"))
            continue;
        rc = tr_chat_mask_reply(b->chat, b->tok, msgs, k, &ids, &mask, &m, &cd);
        if (rc)
            return mu_diag_set(d, rc, "%s: %s", where, cd.msg);
        rc = add_example(b, ids, mask, m, where, d);
        b->split_examples++;
    }
    if (!b->split_convs++)
        snprintf(b->split_first, sizeof b->split_first, "%s", where);
    b->split_tokens += b->n - n0;
    b->split_whole += whole;
    return rc;
}

/* Appends one conversation: the ids its chat template renders, mask 1 on the assistant's
 * replies only (tr_chat_mask), or one example per reply when the template rewrites earlier
 * turns (add_split). */
static int add_chat(docbuf *b, json_t *o, const char *where, mu_diag *d)
{
    tr_chat_msg *msgs;
    size_t nmsg, m = 0;
    int rc = data_chat_msgs(o, where, &msgs, &nmsg, d);
    if (rc)
        return rc;
    mu_diag cd = {{0}};
    if (!b->chat && !(b->chat = load_chat(b, &rc, &cd))) {
        free(msgs);
        return mu_diag_set(d, rc, "%s: a conversation needs the model's chat template: %s", where,
                           cd.msg);
    }
    uint32_t *ids = NULL;
    uint8_t *mask = NULL;
    rc = tr_chat_mask(b->chat, b->tok, msgs, nmsg, &ids, &mask, &m, &cd);
    if (rc == MU_ERR_UNSUPPORTED)
        rc = add_split(b, msgs, nmsg, where, d);
    else if (rc)
        rc = mu_diag_set(d, rc, "%s: %s", where, cd.msg);
    else
        rc = add_example(b, ids, mask, m, where, d);
    free(msgs);
    b->chats += !rc;
    return rc;
}

/* One JSONL line: an object with a string "text", or a conversation (cmd_data.h). */
static int add_jsonl_line(docbuf *b, const char *line, size_t len, const char *path, long lineno,
                          mu_diag *d)
{
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
        k++;
    if (k == len)
        return MU_OK; /* blank */
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    json_t *t = json_is_object(o) ? json_object_get(o, "text") : NULL;
    int rc;
    if (!o)
        rc = mu_diag_set(d, MU_ERR_FORMAT, "%s:%ld: not JSON: %s", path, lineno, je.text);
    else if (!json_is_object(o))
        rc = mu_diag_set(d, MU_ERR_FORMAT, "%s:%ld: not a JSON object", path, lineno);
    else {
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        if (data_is_chat(o))
            rc = add_chat(b, o, where, d);
        else if (json_is_string(t))
            rc = add_doc(b, json_string_value(t), json_string_length(t), where, 0, d);
        else
            rc = mu_diag_set(d, MU_ERR_FORMAT,
                             "%s: no string \"text\", no \"messages\" and no "
                             "\"prompt\"/\"response\"",
                             where);
    }
    json_decref(o);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* One input file (or stdin): a document, or a JSONL file's documents. */
static int add_file(docbuf *b, const char *path, unsigned char hash[crypto_hash_sha256_BYTES],
                    long long *size, mu_diag *d)
{
    char *text = NULL;
    int rc = read_text(path, &text, hash, size, d);
    if (rc)
        return rc;
    size_t len = (size_t)*size;
    if (!ends_with(path, ".jsonl")) {
        rc = add_doc(b, text, len, path, 1, d);
    } else {
        long lineno = 1;
        for (size_t i = 0; !rc && i < len; lineno++) {
            const char *nl = memchr(text + i, '\n', len - i);
            size_t end = nl ? (size_t)(nl - text) : len;
            rc = add_jsonl_line(b, text + i, end - i, path, lineno, d);
            i = end + 1;
            mu_progress_update(&b->bar, b->done + (long)i, NULL);
        }
    }
    free(text);
    b->done += (long)*size;
    mu_progress_update(&b->bar, b->done, NULL);
    return rc;
}

/* Sum of the regular files' sizes (stdin unknown: 0), the bar's total. */
static long total_bytes(const strlist *files)
{
    long t = 0;
    struct stat st;
    for (size_t i = 0; i < files->n; i++)
        if (strcmp(files->v[i], "-") && !stat(files->v[i], &st))
            t += (long)st.st_size;
    return t > 0 ? t : 1;
}

static int import_tok(char **texts, int ntexts, const char *tokdir, const char *tmpl,
                      tr_special_mode special, const char *out)
{
    mu_diag d = {{0}};
    strlist files = {0};
    char *src = NULL, sha[TR_DATA_SHA_HEX];
    size_t srclen = 0, srccap = 0;
    int rc = sodium_init() < 0 ? mu_diag_set(&d, MU_ERR_CRYPTO, "libsodium init failed") : 0;
    docbuf b = {.tokdir = tokdir, .tmpl = tmpl, .special = special};
    if (!rc)
        b.tok = tr_tok_load(tokdir, &rc, &d);
    if (!rc)
        rc = tr_data_tokenizer_hash(tokdir, sha, &d);
    for (int i = 0; !rc && i < ntexts; i++)
        rc = expand(texts[i], &files, &d);
    mu_progress_init(&b.bar, "import", total_bytes(&files));
    for (size_t i = 0; !rc && i < files.n; i++) {
        unsigned char hash[crypto_hash_sha256_BYTES];
        long long size = 0;
        rc = add_file(&b, files.v[i], hash, &size, &d);
        if (!rc && add_source(&src, &srclen, &srccap, hash, size, files.v[i]))
            rc = mu_diag_set(&d, MU_ERR_NOMEM, "out of memory");
    }
    if (!rc)
        mu_progress_finish(&b.bar, NULL);
    if (!rc && b.n < 2)
        rc = mu_diag_set(&d, MU_ERR_INVALID,
                         "%zu tokens in %zu file(s); a dataset needs at least 2 tokens", b.n,
                         files.n);
    uint32_t vocab = b.tok ? tr_tok_vocab_size(b.tok) : 0;
    tr_data_out o = {.tokens = b.ids,
                     .mask = b.mask,
                     .n = (int64_t)b.n,
                     .vocab_size = (int)vocab,
                     .sources = src,
                     .tokenizer_sha256 = sha};
    if (!rc)
        rc = tr_data_write_out(out, &o, &d);
    tr_tok_free(b.tok);
    tr_chat_free(b.chat);
    free(b.ids);
    free(b.mask);
    free(src);
    size_t nfiles = files.n;
    strlist_free(&files);
    if (rc) {
        fprintf(stderr, "mutual data: %s\n", d.msg);
        return MU_EXIT_FAIL;
    }
    printf("%s: %zu tokens in %zu document%s (tokenizer %s, vocab_size %u) from %zu file%s", out,
           b.n, b.docs, b.docs == 1 ? "" : "s", tokdir, vocab, nfiles, nfiles == 1 ? "" : "s");
    if (b.chats)
        printf("; %zu conversation%s, %zu assistant tokens in the loss", b.chats,
               b.chats == 1 ? "" : "s", b.trained);
    printf("\n");
    if (b.split_convs)
        mu_warn("data: %zu conversation%s (the first at %s) split into %zu "
                "examples, one per assistant reply, as the chat template renders earlier turns "
                "differently once later ones follow; they take %zu tokens where %zu would hold "
                "them whole",
                b.split_convs, b.split_convs == 1 ? "" : "s", b.split_first, b.split_examples,
                b.split_tokens, b.split_whole);
    return MU_EXIT_OK;
}

int cmd_data(int argc, char **argv)
{
    enum { O_TEXT = 1000, O_OUT, O_TOK, O_TMPL, O_SPECIAL };
    static const struct option longopts[] = {
        {"text", required_argument, NULL, O_TEXT},
        {"out", required_argument, NULL, O_OUT},
        {"tokenizer", required_argument, NULL, O_TOK},
        {"chat-template", required_argument, NULL, O_TMPL},
        {"special-tokens-in-content", required_argument, NULL, O_SPECIAL},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    const char *out = NULL, *tokdir = NULL, *tmpl = NULL, *special_arg = NULL;
    tr_special_mode special = TR_SPECIAL_TEXT;
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
        else if (c == O_TOK)
            tokdir = optarg;
        else if (c == O_TMPL)
            tmpl = optarg;
        else if (c == O_SPECIAL)
            special_arg = optarg;
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
    else if (tmpl && !tokdir)
        rc = cli_usage_error(CMD, "--chat-template needs --tokenizer MODEL_DIR");
    else if (special_arg && !tokdir)
        rc = cli_usage_error(CMD, "--special-tokens-in-content needs --tokenizer MODEL_DIR");
    else if (special_arg && tr_special_mode_parse(special_arg, &special))
        rc = cli_usage_error(CMD, "--special-tokens-in-content is text, refuse or allow, not '%s'",
                             special_arg);
    else if (tokdir)
        rc = import_tok(texts, ntexts, tokdir, tmpl, special, out);
    else
        rc = import(texts, ntexts, out);
    free(texts);
    return rc;
}
