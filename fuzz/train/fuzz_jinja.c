/* fuzz_jinja.c - tr_jinja on arbitrary bytes as a chat template: it must parse or be refused
 * with a message, and a parsed template must render a fixed conversation (with and without
 * the generation prompt) or be refused, without a crash, a leak or an unbounded render. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tr_jinja.h"

static const tr_chat_msg CONV[] = {
    {"system", "Be brief."},
    {"user", "  Hi <think>x</think> \xf0\x9f\x99\x82 "},
    {"assistant", "\n<think>\nplan\n</think>\n\nHello."},
    {"user", ""},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mu_diag d = {{0}};
    int err = 0;
    tr_jinja *t = tr_jinja_parse((const char *)data, size, &err, &d);
    if (!t) {
        if (err != MU_ERR_FORMAT && err != MU_ERR_NOMEM)
            abort();
        if (!d.msg[0])
            abort();
        return 0;
    }
    for (int gen = 0; gen < 2; gen++) {
        char *out = NULL;
        size_t n = 0;
        unsigned char *from = NULL; /* gen 1: with the content marks, every byte set 0/1 */
        int rc =
            gen ? tr_jinja_render_chat_mask(t, CONV, 4, gen, "<s>", "</s>", &out, &n, &from, &d)
                : tr_jinja_render_chat(t, CONV, 4, gen, "<s>", "</s>", &out, &n, &d);
        if (rc == 0 && (!out || strlen(out) > n || (gen && !from)))
            abort();
        if (rc != 0 && (out || from || !d.msg[0]))
            abort();
        for (size_t i = 0; from && i < n; i++)
            if (from[i] > 1)
                abort();
        free(out);
        free(from);
    }
    tr_jinja_free(t);
    return 0;
}
