/* chat_render CONFIG_JSON CONVERSATIONS_JSON: renders tokenizer_config.json's chat_template
 * with tr_jinja for every conversation (a JSON array of arrays of {role, content}), with
 * add_generation_prompt false then true, bos_token and eos_token from the config; one line
 * per render: the hex of its bytes, or "error" when the template refuses (raise_exception).
 * The lines chat_ref.mjs prints for @huggingface/jinja. Exit 1 when the template does not
 * parse (the message on stderr). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_jinja.h"

static const char *token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: chat_render CONFIG_JSON CONVERSATIONS_JSON\n");
        return 2;
    }
    json_error_t je;
    json_t *cfg = json_load_file(argv[1], JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg) {
        fprintf(stderr, "chat_render: %s:%d: %s\n", argv[1], je.line, je.text);
        return 1;
    }
    json_t *convs = json_load_file(argv[2], 0, &je);
    if (!convs) {
        fprintf(stderr, "chat_render: %s:%d: %s\n", argv[2], je.line, je.text);
        return 1;
    }
    json_t *tmpl = json_object_get(cfg, "chat_template");
    if (!json_is_string(tmpl) || !json_is_array(convs)) {
        fprintf(stderr, "chat_render: no chat_template string in %s, or bad %s\n", argv[1],
                argv[2]);
        json_decref(cfg);
        json_decref(convs);
        return 1;
    }
    mu_diag d = {{0}};
    int err;
    tr_jinja *t = tr_jinja_parse(json_string_value(tmpl), json_string_length(tmpl), &err, &d);
    if (!t) {
        fprintf(stderr, "chat_render: %s: %s\n", argv[1], d.msg);
        json_decref(cfg);
        json_decref(convs);
        return 1;
    }
    size_t i;
    json_t *conv;
    json_array_foreach(convs, i, conv)
    {
        size_t n = json_array_size(conv);
        tr_chat_msg *m = calloc(n + 1, sizeof(*m));
        for (size_t k = 0; k < n; k++) {
            m[k].role = json_string_value(json_object_get(json_array_get(conv, k), "role"));
            m[k].content = json_string_value(json_object_get(json_array_get(conv, k), "content"));
        }
        for (int gen = 0; gen < 2; gen++) {
            char *out;
            size_t len;
            if (tr_jinja_render_chat(t, m, n, gen, token(cfg, "bos_token"), token(cfg, "eos_token"),
                                     &out, &len, &d)) {
                printf("error\n");
                fprintf(stderr, "conversation %zu: %s\n", i, d.msg);
                continue;
            }
            for (size_t k = 0; k < len; k++)
                printf("%02x", (unsigned char)out[k]);
            printf("\n");
            free(out);
        }
        free(m);
    }
    tr_jinja_free(t);
    json_decref(cfg);
    json_decref(convs);
    return 0;
}
