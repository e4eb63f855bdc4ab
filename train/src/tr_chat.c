/* tr_chat.c - chat templates from tokenizer_config.json applied as transformers does, and
 * the assistant-only loss mask found by prefix renderings (tr_chat.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_file.h"
#include "tr_chat.h"
#include "tr_tok_internal.h"

#define TR_CHAT_CONFIG_MAX (64u << 20) /* Gemma 3's tokenizer_config.json is 1.2 MB */

struct tr_chat {
    tr_jinja *tmpl;
    char *bos, *eos;         /* NULL: undefined in the template */
    tr_special_mode special; /* special-token text in the messages */
};

int tr_special_mode_parse(const char *s, tr_special_mode *m)
{
    static const char *const names[] = {"text", "refuse", "allow"};
    for (int k = 0; k < 3; k++)
        if (!strcmp(s, names[k])) {
            *m = (tr_special_mode)k;
            return 0;
        }
    return -1;
}

int tr_special_refusal(mu_diag *d, const tr_tok *tok, const char *who, uint32_t id, size_t at,
                       const char *tail)
{
    size_t len;
    const char *t = tr_tok_token_text(tok, id, &len);
    return mu_diag_set(d, MU_ERR_INVALID,
                       "%s holds the text of the special token \"%.*s\" (id %u) at byte %zu%s; "
                       "--special-tokens-in-content text encodes it as plain text, allow as the "
                       "token",
                       who, (int)(len < 64 ? len : 64), t, id, at, tail);
}

int tr_special_encode(tr_tok *tok, tr_special_mode m, const char *text, size_t len, uint32_t **ids,
                      size_t *n)
{
    return m == TR_SPECIAL_ALLOW ? tr_tok_encode_special(tok, text, len, ids, n)
                                 : tr_tok_encode_special_text(tok, text, len, ids, n);
}

void tr_chat_set_special(tr_chat *c, tr_special_mode m)
{
    c->special = m;
}

tr_chat *tr_chat_new(const char *tmpl, size_t len, const char *bos_token, const char *eos_token,
                     int *err, mu_diag *diag)
{
    int e = MU_ERR_NOMEM;
    tr_chat *c = calloc(1, sizeof *c);
    if (!c || (bos_token && !(c->bos = strdup(bos_token))) ||
        (eos_token && !(c->eos = strdup(eos_token)))) {
        mu_diag_set(diag, MU_ERR_NOMEM, "chat template: out of memory");
        goto out_free;
    }
    if (!(c->tmpl = tr_jinja_parse(tmpl, len, &e, diag)))
        goto out_free;
    return c;
out_free:
    tr_chat_free(c);
    if (err)
        *err = e;
    return NULL;
}

void tr_chat_free(tr_chat *c)
{
    if (!c)
        return;
    tr_jinja_free(c->tmpl);
    free(c->bos);
    free(c->eos);
    free(c);
}

/* bos_token / eos_token: a string or an AddedToken object {content: ...}. */
static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_object(v) ? json_string_value(json_object_get(v, "content"))
                             : json_string_value(v);
}

/* tr_chat_load and tr_chat_load_template: the template is tmpl_path's when it is not NULL. */
static tr_chat *load(const char *dir, const char *tmpl_path, int *err, mu_diag *diag)
{
    char path[4096], jpath[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    snprintf(jpath, sizeof jpath, "%s", tmpl_path ? tmpl_path : "");
    if (!tmpl_path)
        snprintf(jpath, sizeof jpath, "%s/chat_template.jinja", dir);
    char *text = NULL, *jtext = NULL;
    size_t len = 0, jlen = 0;
    tr_chat *c = NULL;
    json_t *cfg = NULL;
    mu_diag ignore = {{0}};
    int e = mu_read_file(path, TR_CHAT_CONFIG_MAX, &text, &len, tmpl_path ? &ignore : diag);
    if (e == MU_ERR_NOTFOUND && tmpl_path)
        e = 0, cfg = json_object(); /* a base model's folder may have no config: no tokens */
    else if (e) {
        if (tmpl_path)
            mu_diag_set(diag, e, "%s", ignore.msg);
        goto out;
    } else {
        json_error_t jerr;
        cfg = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &jerr); /* model_max_length: 1e30 */
        if (!json_is_object(cfg)) {
            e = mu_diag_set(diag, MU_ERR_FORMAT, "%s:%d: %s", path, jerr.line,
                            cfg ? "not a JSON object" : jerr.text);
            goto out;
        }
    }
    json_t *t = tmpl_path ? NULL : json_object_get(cfg, "chat_template");
    if (t && !json_is_null(t) && !json_is_string(t)) {
        e = mu_diag_set(diag, MU_ERR_FORMAT,
                        "%s: chat_template is not a string (named templates are not supported)",
                        path);
        goto out;
    }
    const char *src = json_string_value(t);
    size_t slen = json_string_length(t);
    if (!src) {
        e = mu_read_file(jpath, TR_CHAT_CONFIG_MAX, &jtext, &jlen, &ignore);
        if (e == MU_ERR_NOTFOUND && !tmpl_path) {
            e = mu_diag_set(diag, MU_ERR_NOTFOUND, "%s has no chat_template (and there is no %s)",
                            path, jpath);
            goto out;
        }
        if (e) {
            e = mu_diag_set(diag, e, "%s", ignore.msg);
            goto out;
        }
        src = jtext;
        slen = jlen;
    }
    c = tr_chat_new(src, slen, config_token(cfg, "bos_token"), config_token(cfg, "eos_token"), &e,
                    diag);
    if (!c && e == MU_ERR_FORMAT) {
        char msg[sizeof diag->msg];
        snprintf(msg, sizeof msg, "%s", diag ? diag->msg : "");
        mu_diag_set(diag, e, "%s: %s", jtext ? jpath : path, msg);
    }
out:
    json_decref(cfg);
    free(text);
    free(jtext);
    if (!c && err)
        *err = e;
    return c;
}

tr_chat *tr_chat_load(const char *dir, int *err, mu_diag *diag)
{
    return load(dir, NULL, err, diag);
}

tr_chat *tr_chat_load_template(const char *dir, const char *tmpl_path, int *err, mu_diag *diag)
{
    return load(dir, tmpl_path, err, diag);
}

int tr_chat_render(const tr_chat *c, const tr_chat_msg *msgs, size_t n, int add_generation_prompt,
                   char **out, size_t *out_len, mu_diag *diag)
{
    return tr_jinja_render_chat(c->tmpl, msgs, n, add_generation_prompt, c->bos, c->eos, out,
                                out_len, diag);
}

/* TR_SPECIAL_REFUSE: MU_ERR_INVALID naming the first message whose content holds the text of
 * a special token, the token and where. */
static int refuse_special(const tr_tok *tok, const tr_chat_msg *msgs, size_t n, mu_diag *diag)
{
    for (size_t k = 0; k < n; k++) {
        size_t at;
        uint32_t id;
        if (!tr_tok_find_special(tok, msgs[k].content, strlen(msgs[k].content), &at, &id))
            continue;
        char who[96];
        snprintf(who, sizeof who, "message %zu (role %.32s)", k + 1, msgs[k].role);
        return tr_special_refusal(diag, tok, who, id, at, " of its content");
    }
    return 0;
}

int tr_chat_encode(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t n,
                   int add_generation_prompt, uint32_t **ids, size_t *n_ids, mu_diag *diag)
{
    char *text;
    unsigned char *from = NULL;
    size_t len;
    *ids = NULL;
    *n_ids = 0;
    int rc = c->special == TR_SPECIAL_REFUSE ? refuse_special(tok, msgs, n, diag) : 0;
    if (rc)
        return rc;
    rc = tr_jinja_render_chat_mask(c->tmpl, msgs, n, add_generation_prompt, c->bos, c->eos, &text,
                                   &len, c->special == TR_SPECIAL_ALLOW ? NULL : &from, diag);
    if (rc)
        return rc;
    /* The messages' bytes are plain text: no special token where any byte of it is theirs. */
    rc = c->special == TR_SPECIAL_ALLOW ? tr_tok_encode(tok, text, len, ids, n_ids)
                                        : tr_tok_encode_text(tok, text, len, from, ids, n_ids);
    free(text);
    free(from);
    if (rc)
        return mu_diag_set(diag, rc, "chat: out of memory tokenizing");
    return 0;
}

/* Whether a[0..na) is a prefix of b[0..nb). */
static int is_prefix(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    return na <= nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* The end of reply k in q (its prompt p ends at np): one past its end-of-turn token, the first
 * special token after np but the unk token (SentencePiece style: <unk> is special, and text
 * the vocab cannot spell becomes it); nq (all of q) when there is none. */
static size_t reply_end(const tr_tok *tok, const uint32_t *q, size_t np, size_t nq)
{
    for (size_t j = np; j < nq; j++)
        if ((tok->flags[q[j]] & TR_TF_SPECIAL) && q[j] != tok->unk_id)
            return j + 1;
    return nq;
}

/* Reply k (msgs[k] is the assistant's) on its own: *q, *nq the ids of msgs[0..k] (Q), and the
 * reply is q[*np..*end): Q's tokens after those of msgs[0..k) with the generation prompt (P),
 * through the end of turn. P must be a prefix of Q. *q is malloc'd (NULL on error). */
static int reply_span(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t k,
                      uint32_t **q, size_t *nq, size_t *np, size_t *end, mu_diag *diag)
{
    uint32_t *p = NULL;
    int rc = tr_chat_encode(c, tok, msgs, k, 1, &p, np, diag);
    if (!rc)
        rc = tr_chat_encode(c, tok, msgs, k + 1, 0, q, nq, diag);
    if (!rc && !is_prefix(p, *np, *q, *nq))
        rc = mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                         "the tokens of the chat template's prompt for assistant message %zu "
                         "(messages 1..%zu with the generation prompt) are not a prefix of "
                         "those of messages 1..%zu (the template writes the prompt another "
                         "way, or one token spans the prompt's end and the reply's start)",
                         k + 1, k, k + 1);
    free(p);
    if (!rc) {
        *end = reply_end(tok, *q, *np, *nq);
        if (*end == *np)
            rc = mu_diag_set(diag, MU_ERR_INVALID,
                             "the chat template writes no tokens for assistant message %zu", k + 1);
    }
    if (rc) {
        free(*q);
        *q = NULL;
    }
    return rc;
}

/* Marks reply k in the whole conversation's ids: reply_span's Q up to the reply's end must be
 * a prefix of the whole, past the last reply. *done: where the last reply ended. */
static int mark_reply(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t k,
                      const uint32_t *all, size_t nall, uint8_t *mask, size_t *done, mu_diag *diag)
{
    uint32_t *q = NULL;
    size_t nq = 0, np = 0, end = 0;
    int rc = reply_span(c, tok, msgs, k, &q, &nq, &np, &end, diag);
    if (rc)
        return rc;
    if (np < *done || !is_prefix(q, end, all, nall))
        rc = mu_diag_set(diag, MU_ERR_UNSUPPORTED,
                         "the chat template renders messages 1..%zu differently once later "
                         "messages follow (it rewrites earlier turns), so the tokens of "
                         "assistant message %zu cannot be told apart",
                         k + 1, k + 1);
    else {
        memset(mask + np, 1, end - np);
        *done = end;
    }
    free(q);
    return rc;
}

int tr_chat_mask_reply(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t k,
                       uint32_t **ids, uint8_t **mask, size_t *n_ids, mu_diag *diag)
{
    *ids = NULL;
    *mask = NULL;
    *n_ids = 0;
    if (!msgs[k].role || strcmp(msgs[k].role, "assistant"))
        return mu_diag_set(diag, MU_ERR_INVALID, "message %zu is not the assistant's", k + 1);
    uint32_t *q = NULL;
    size_t nq = 0, np = 0, end = 0;
    int rc = reply_span(c, tok, msgs, k, &q, &nq, &np, &end, diag);
    if (rc)
        return rc;
    uint8_t *m = calloc(nq, 1); /* nq > np: the reply has tokens */
    if (!m) {
        free(q);
        return mu_diag_set(diag, MU_ERR_NOMEM, "chat: out of memory");
    }
    memset(m + np, 1, end - np);
    *ids = q;
    *mask = m;
    *n_ids = nq;
    return 0;
}

int tr_chat_mask(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t n, uint32_t **ids,
                 uint8_t **mask, size_t *n_ids, mu_diag *diag)
{
    *ids = NULL;
    *mask = NULL;
    *n_ids = 0;
    size_t replies = 0;
    for (size_t k = 0; k < n; k++)
        replies += msgs[k].role && !strcmp(msgs[k].role, "assistant");
    if (!replies)
        return mu_diag_set(diag, MU_ERR_INVALID,
                           "the conversation has no assistant message to train on");
    uint32_t *all = NULL;
    size_t nall = 0, done = 0;
    int rc = tr_chat_encode(c, tok, msgs, n, 0, &all, &nall, diag);
    uint8_t *m = rc ? NULL : calloc(nall ? nall : 1, 1);
    if (!rc && !m)
        rc = mu_diag_set(diag, MU_ERR_NOMEM, "chat: out of memory");
    for (size_t k = 0; !rc && k < n; k++)
        if (msgs[k].role && !strcmp(msgs[k].role, "assistant"))
            rc = mark_reply(c, tok, msgs, k, all, nall, m, &done, diag);
    if (rc) {
        free(all);
        free(m);
        return rc;
    }
    *ids = all;
    *mask = m;
    *n_ids = nall;
    return 0;
}
