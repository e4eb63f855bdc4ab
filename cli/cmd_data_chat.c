/* cmd_data_chat.c - the conversation of one chat line of a JSONL file for
 * `mutual data import` (cmd_data.h). */
#include <stdlib.h>
#include <string.h>

#include "cmd_data.h"

int data_is_chat(json_t *o)
{
    return json_object_get(o, "messages") || json_object_get(o, "prompt") ||
           json_object_get(o, "response");
}

/* A string without NUL bytes (tr_chat_msg's strings are NUL-terminated). */
static const char *text_of(json_t *v)
{
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

static int is_role(const char *r)
{
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant");
}

static int one_message(json_t *m, size_t k, const char *where, tr_chat_msg *out, mu_diag *d)
{
    if (!json_is_object(m))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: messages[%zu] is not an object", where, k);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        if (strcmp(key, "role") && strcmp(key, "content"))
            return mu_diag_set(d, MU_ERR_FORMAT,
                               "%s: messages[%zu]: key \"%.64s\" is not supported (only role "
                               "and content reach the chat template)",
                               where, k, key);
    }
    const char *role = text_of(json_object_get(m, "role"));
    if (!role)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: messages[%zu] has no string \"role\"", where, k);
    if (!is_role(role))
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: messages[%zu]: role \"%.64s\" is not system, user or assistant",
                           where, k, role);
    const char *content = text_of(json_object_get(m, "content"));
    if (!content)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: messages[%zu] has no string \"content\" (or it holds a NUL)", where,
                           k);
    out->role = role;
    out->content = content;
    return MU_OK;
}

static int from_messages(json_t *list, const char *where, tr_chat_msg *m, mu_diag *d)
{
    size_t k;
    json_t *v;
    json_array_foreach(list, k, v)
    {
        int rc = one_message(v, k, where, &m[k], d);
        if (rc)
            return rc;
    }
    return MU_OK;
}

static int from_prompt(json_t *o, const char *where, tr_chat_msg *m, size_t *n, mu_diag *d)
{
    json_t *sys = json_object_get(o, "system");
    const char *p = text_of(json_object_get(o, "prompt"));
    const char *r = text_of(json_object_get(o, "response"));
    if (!p || !r)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: a prompt/response line needs both as strings (without NUL); "
                           "\"%s\" is missing or not one",
                           where, p ? "response" : "prompt");
    if (sys && !text_of(sys))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: \"system\" is not a string (without NUL)", where);
    *n = 0;
    if (sys)
        m[(*n)++] = (tr_chat_msg){"system", text_of(sys)};
    m[(*n)++] = (tr_chat_msg){"user", p};
    m[(*n)++] = (tr_chat_msg){"assistant", r};
    return MU_OK;
}

int data_chat_msgs(json_t *o, const char *where, tr_chat_msg **msgs, size_t *n, mu_diag *d)
{
    *msgs = NULL;
    json_t *list = json_object_get(o, "messages");
    int has_prompt = json_object_get(o, "prompt") || json_object_get(o, "response");
    if (list && has_prompt)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: both \"messages\" and \"prompt\"/\"response\"; give one", where);
    if (json_object_get(o, "text"))
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: both \"text\" and a conversation (\"messages\" or "
                           "\"prompt\"/\"response\"); give one per line",
                           where);
    if (list && (!json_is_array(list) || !json_array_size(list)))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s: \"messages\" is not a non-empty list", where);
    size_t cap = list ? json_array_size(list) : 3;
    tr_chat_msg *m = calloc(cap, sizeof *m);
    if (!m)
        return mu_diag_set(d, MU_ERR_NOMEM, "%s: out of memory", where);
    *n = cap;
    int rc = list ? from_messages(list, where, m, d) : from_prompt(o, where, m, n, d);
    if (rc) {
        free(m);
        return rc;
    }
    *msgs = m;
    return MU_OK;
}
