/* cmd_generate_out.c - the generated text as it streams (cmd_generate.h): the ids so far are
 * decoded together (a byte-level piece or a <0xNN> byte token may hold part of a character; a
 * SentencePiece decoder strips one leading space of the whole text), and only what can no
 * longer change is written: the text up to the bytes that may still become a character, with
 * invalid UTF-8 as U+FFFD (tr_utf8_sanitize), less any tail that may be the start of a stop
 * string. */
#include <stdlib.h>
#include <string.h>

#include "cmd_generate.h"
#include "mu_log.h"

int gen_stream_init(gen_stream *s, const tr_tok *tok, FILE *out, const char *const *stops,
                    int n_stop, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->out = out;
    s->stops = stops;
    s->n_stop = n_stop;
    s->cap = cap ? cap : 1;
    s->text_ids = malloc(s->cap * sizeof *s->text_ids);
    return s->text_ids ? MU_OK : MU_ERR_NOMEM;
}

void gen_stream_deinit(gen_stream *s)
{
    free(s->text_ids);
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* The longest tail of t[0..n) that is a proper prefix of a stop string: it must wait. */
static size_t stop_prefix_tail(const gen_stream *s, const char *t, size_t n)
{
    size_t best = 0;
    for (int i = 0; i < s->n_stop; i++) {
        size_t k = strlen(s->stops[i]);
        for (size_t m = (k - 1 < n ? k - 1 : n); m > best; m--)
            if (!memcmp(t + n - m, s->stops[i], m)) {
                best = m;
                break;
            }
    }
    return best;
}

/* Cuts s->text before the first stop string in it, if any. */
static void find_stop(gen_stream *s)
{
    size_t cut = s->len;
    for (int i = 0; i < s->n_stop; i++) {
        size_t k = strlen(s->stops[i]);
        for (size_t p = 0; p + k <= s->len && p < cut; p++)
            if (!memcmp(s->text + p, s->stops[i], k)) {
                cut = p;
                break;
            }
    }
    if (cut < s->len) {
        s->len = cut;
        s->text[cut] = '\0';
        s->stopped = 1;
    }
}

static int emit(gen_stream *s, size_t upto, mu_diag *d)
{
    if (upto <= s->printed)
        return MU_OK;
    if (s->out &&
        (fwrite(s->text + s->printed, 1, upto - s->printed, s->out) != upto - s->printed ||
         fflush(s->out)))
        return mu_diag_set(d, MU_ERR_IO, "writing the generated text failed");
    s->printed = upto;
    return MU_OK;
}

/* s->text becomes t[0..n) as valid UTF-8 (t is taken over). */
static int set_text(gen_stream *s, char *t, size_t n, mu_diag *d)
{
    char *fixed;
    size_t len;
    if (tr_utf8_sanitize(t, n, &fixed, &len)) {
        free(t);
        return mu_diag_set(d, MU_ERR_NOMEM, "generate: out of memory");
    }
    if (fixed) {
        free(t);
        t = fixed;
    }
    t[len] = '\0';
    free(s->text);
    s->text = t;
    s->len = len;
    return MU_OK;
}

int gen_stream_push(gen_stream *s, uint32_t id, mu_diag *d)
{
    char *one;
    size_t n1;
    if (tr_tok_decode(s->tok, &id, 1, 1, &one, &n1, NULL)) {
        if (!s->warned_gaps)
            mu_warn("generate: token %u has no text in tokenizer.json; left out of the text", id);
        s->warned_gaps = 1;
        return MU_OK;
    }
    free(one);
    if (s->n_text == s->cap)
        return mu_diag_set(d, MU_ERR_NOMEM, "generate: more tokens than planned");
    s->text_ids[s->n_text++] = id;
    char *t;
    size_t n;
    int rc = tr_tok_decode(s->tok, s->text_ids, s->n_text, 1, &t, &n, d);
    if (rc)
        return rc;
    /* A cut character waits for the bytes that complete it (or show it invalid). */
    s->pending = tr_utf8_pending(t, n);
    if ((rc = set_text(s, t, n - s->pending, d)))
        return rc;
    find_stop(s);
    if (s->stopped)
        return emit(s, s->len, d);
    return emit(s, s->len - stop_prefix_tail(s, s->text, s->len), d);
}

int gen_stream_finish(gen_stream *s, mu_diag *d)
{
    if (s->pending && !s->stopped) {
        /* Cut for good: the one maximal invalid subpart tr_utf8_sanitize would replace. */
        char *t = realloc(s->text, s->len + 4);
        if (!t)
            return mu_diag_set(d, MU_ERR_NOMEM, "generate: out of memory");
        memcpy(t + s->len, "\xef\xbf\xbd", 4);
        s->text = t;
        s->len += 3;
        s->pending = 0;
        find_stop(s);
    }
    return emit(s, s->len, d);
}
