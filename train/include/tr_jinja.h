/* tr_jinja.h - the subset of Jinja that Hugging Face chat templates use, rendered as
 * transformers' apply_chat_template renders them (trim_blocks and lstrip_blocks on, one
 * trailing newline of the template dropped) and as @huggingface/jinja does byte for byte.
 *
 * Supported: text, {{ }}, {# #}, {% if/elif/else %}, {% for x in ... %} with loop.index,
 * index0, first, last, length, revindex, revindex0; {% set x = ... %} and {% set ns.x = ... %}
 * with namespace(); {% generation %} (ignored); whitespace control with '-'; literals
 * (strings, integers, true/false/none, lists, dicts); + - * / // % ~, comparisons, and/or/not,
 * in / not in, x if c else y, attribute and index access, slices [a:b:c]; the tests defined,
 * undefined, none, string, number, integer, boolean, iterable, mapping, sequence, true, false,
 * odd, even; the filters trim, length, count, upper, lower, tojson (no arguments), string,
 * first, last;
 * string methods strip, lstrip, rstrip, startswith, endswith, split, upper, lower (ASCII
 * letters only), replace;
 * dict method get; the functions raise_exception, namespace. Anything else (macros,
 * call blocks, other filters or tags) is refused when the template is parsed, naming its
 * line and column. Not thread-safe per object; separate objects are independent.
 */
#ifndef TR_JINJA_H
#define TR_JINJA_H

#include <stddef.h>

#include "mu_err.h"

typedef struct tr_jinja tr_jinja;

/* One chat message: role and content, NUL-terminated UTF-8, owned by the caller. */
typedef struct {
    const char *role;
    const char *content;
} tr_chat_msg;

/* Parses a template of len bytes. On error, NULL is returned, *err (if not NULL) is
 * MU_ERR_FORMAT (bad or unsupported syntax: diag says "line L:C: ..." of the template) or
 * MU_ERR_NOMEM. */
tr_jinja *tr_jinja_parse(const char *src, size_t len, int *err, mu_diag *diag);
void tr_jinja_free(tr_jinja *t);

/* Renders the template with the variables transformers passes: messages (a list of
 * {role, content} dicts), add_generation_prompt, bos_token and eos_token (NULL: undefined).
 * On success *out is a NUL-terminated malloc'd string of *out_len bytes owned by the
 * caller. Returns 0, MU_ERR_FORMAT when rendering fails (raise_exception, a type error, an
 * output over 64 MiB, too many steps: diag says why, with the template's line:col), or
 * MU_ERR_NOMEM (out of memory, or the render's values over a 64 MiB budget); *out is NULL
 * on error. */
int tr_jinja_render_chat(const tr_jinja *t, const tr_chat_msg *msgs, size_t n,
                         int add_generation_prompt, const char *bos_token, const char *eos_token,
                         char **out, size_t *out_len, mu_diag *diag);

/* tr_jinja_render_chat, and *from_msgs (malloc'd, *out_len bytes, owned by the caller; NULL
 * on error) 1 at each output byte that came from a message's content, 0 at those the template
 * wrote itself (its text, string literals, bos_token / eos_token, numbers) and at the roles'
 * (templates build header tokens from them, '<|' + role + '|>'; the caller vets roles). The
 * contents are tainted and the taint follows their bytes through every operation
 * that keeps them: trim and the strip family, split, slices, indexing, first / last, upper /
 * lower, replace (the replacement's own taint for the replaced bytes), concatenation (+, ~)
 * and loops over a string; tojson of a value holding any tainted string taints all its
 * output; comparisons, tests, length and the like give untainted values. So a template that
 * rewrites content (Qwen3 splits it on "</think>" and strips newlines) still marks exactly the
 * bytes of the content it writes (tr_chat.h: special-token text in content). */
int tr_jinja_render_chat_mask(const tr_jinja *t, const tr_chat_msg *msgs, size_t n,
                              int add_generation_prompt, const char *bos_token,
                              const char *eos_token, char **out, size_t *out_len,
                              unsigned char **from_msgs, mu_diag *diag);

#endif
