/* tok_ids TOKENIZER CORPUS: the ids tr_tok gives each line of CORPUS (split after each LF,
 * the LF kept), one line of space-separated ids per corpus line, then one line for the whole
 * file, then per line "decode " and the hex of the bytes its ids decode to (special tokens
 * kept), then per line "special" and the ids of tr_tok_encode_special. tok_ref.mjs prints the same
 * from the JavaScript reference; tok_ref.sh compares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_file.h"
#include "tr_tok.h"

static int print_some(tr_tok *tok, const char *s, size_t n, int special)
{
    uint32_t *ids = NULL;
    size_t m = 0;
    if (special)
        printf("special ");
    if ((special ? tr_tok_encode_special : tr_tok_encode)(tok, s, n, &ids, &m) != MU_OK)
        return 1;
    for (size_t i = 0; i < m; i++)
        printf(i ? " %u" : "%u", ids[i]);
    printf("\n");
    free(ids);
    return 0;
}

static int print_ids(tr_tok *tok, const char *s, size_t n)
{
    return print_some(tok, s, n, 0);
}

static int print_special(tr_tok *tok, const char *s, size_t n)
{
    return print_some(tok, s, n, 1);
}

static int print_decoded(tr_tok *tok, const char *s, size_t n)
{
    uint32_t *ids = NULL;
    size_t m = 0, len;
    char *out;
    if (tr_tok_encode(tok, s, n, &ids, &m) != MU_OK)
        return 1;
    int rc = tr_tok_decode(tok, ids, m, 0, &out, &len, NULL);
    free(ids);
    if (rc != MU_OK)
        return 1;
    printf("decode ");
    for (size_t i = 0; i < len; i++)
        printf("%02x", (unsigned char)out[i]);
    printf("\n");
    free(out);
    return 0;
}

/* Calls f on each line of text[0..len) (split after each LF, the LF kept). */
static int each_line(tr_tok *tok, const char *text, size_t len,
                     int (*f)(tr_tok *, const char *, size_t))
{
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        rc = f(tok, text + i, end - i);
        i = end;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tok_ids TOKENIZER CORPUS\n");
        return 2;
    }
    mu_diag diag = {{0}};
    int err;
    tr_tok *tok = tr_tok_load(argv[1], &err, &diag);
    if (!tok) {
        fprintf(stderr, "tok_ids: %s\n", diag.msg);
        return 1;
    }
    char *text;
    size_t len;
    if (mu_read_file(argv[2], 64u << 20, &text, &len, &diag) != MU_OK) {
        fprintf(stderr, "tok_ids: %s\n", diag.msg);
        tr_tok_free(tok);
        return 1;
    }
    int rc = each_line(tok, text, len, print_ids);
    if (!rc)
        rc = print_ids(tok, text, len);
    if (!rc)
        rc = each_line(tok, text, len, print_decoded);
    if (!rc)
        rc = each_line(tok, text, len, print_special);
    free(text);
    tr_tok_free(tok);
    return rc;
}
