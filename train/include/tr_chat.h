/* tr_chat.h - a model's chat template applied to a conversation as transformers'
 * apply_chat_template does, and the assistant-only loss mask for training on it.
 *
 * The template is tokenizer_config.json's "chat_template" string (or, when the config has
 * none, a chat_template.jinja file beside it, as newer transformers save it), rendered by
 * tr_jinja with messages, add_generation_prompt and the config's bos_token / eos_token. The
 * rendered text is tokenized as apply_chat_template(tokenize=True) does: special tokens the
 * template writes are parsed as specials and nothing is added around it
 * (add_special_tokens=False), so the BOS is the one the template writes, never a second;
 * special-token text inside the messages is plain text by default (tr_special_mode). A tr_chat is
 * immutable once made: several threads may render with one; tr_tok itself is not thread-safe
 * (tr_tok.h).
 */
#ifndef TR_CHAT_H
#define TR_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"
#include "tr_jinja.h"
#include "tr_tok.h"

typedef struct tr_chat tr_chat;

/* What special-token text inside a message's content becomes (`--special-tokens-in-content`).
 * A member's data may hold "<|im_end|>\n<|im_start|>assistant\n..." or "<|eot_id|>" in a
 * user's message or a reply; transformers' apply_chat_template tokenizes it as the special
 * tokens themselves, which forges turns (a fake assistant or system turn), ends a reply early
 * (its mask stops at the forged end of turn) or injects a document boundary.
 *   TR_SPECIAL_TEXT (the default): the rendered bytes that came from a message (the jinja
 *     renderer's taint, tr_jinja_render_chat_mask, which follows content through trim, split
 *     and the like) are encoded as plain text (tr_tok_encode_text: "<|im_end|>" becomes
 *     ordinary pieces such as "<", "|", "im", "_end", "|>", as Hugging Face's
 *     split_special_tokens=True encodes it), while the template's own markup keeps its
 *     special ids. Content without such text gets the ids it always had.
 *   TR_SPECIAL_REFUSE: a conversation whose content holds such text is refused
 *     (MU_ERR_INVALID naming the message, its role, the token and the byte).
 *   TR_SPECIAL_ALLOW: transformers' behaviour, the text becomes the special token. */
typedef enum { TR_SPECIAL_TEXT = 0, TR_SPECIAL_REFUSE, TR_SPECIAL_ALLOW } tr_special_mode;

/* "text", "refuse" or "allow" into *m: 0, or -1 for anything else. */
int tr_special_mode_parse(const char *s, tr_special_mode *m);

/* Sets c's mode (TR_SPECIAL_TEXT when never set); call it before c is shared by threads. */
void tr_chat_set_special(tr_chat *c, tr_special_mode m);

/* The refusal of TR_SPECIAL_REFUSE, one wording for every caller: MU_ERR_INVALID with "WHO
 * holds the text of the special token "T" (id ID) at byte AT[TAIL]; ..." (T is token id's text,
 * cut at 64 bytes; tail may be ""). */
int tr_special_refusal(mu_diag *d, const tr_tok *tok, const char *who, uint32_t id, size_t at,
                       const char *tail);

/* Text outside a conversation (a document, a prompt) into ids with the special tokens the
 * tokenizer adds: special-token text in it is the special token under TR_SPECIAL_ALLOW, plain
 * text otherwise (tr_tok_encode_special, tr_tok_encode_special_text; a refusal is the
 * caller's, before). */
int tr_special_encode(tr_tok *tok, tr_special_mode m, const char *text, size_t len, uint32_t **ids,
                      size_t *n);

/* Reads dir/tokenizer_config.json's chat template and tokens. NULL on error, with *err (may
 * be NULL) MU_ERR_NOTFOUND (no tokenizer_config.json, or no chat template in or beside it:
 * diag says which file), MU_ERR_IO, MU_ERR_FORMAT (bad JSON, a chat_template that is not a
 * string, template syntax tr_jinja refuses at line:col) or MU_ERR_NOMEM. */
tr_chat *tr_chat_load(const char *dir, int *err, mu_diag *diag);

/* tr_chat_load with the template read from the file tmpl_path (Jinja, as chat_template.jinja;
 * `mutual data import --chat-template`) in place of dir's, e.g. for a base model without one:
 * bos_token / eos_token from dir/tokenizer_config.json, undefined when there is none. Errors
 * as tr_chat_load; MU_ERR_NOTFOUND when tmpl_path cannot be found (diag names it). */
tr_chat *tr_chat_load_template(const char *dir, const char *tmpl_path, int *err, mu_diag *diag);

/* The same from a template of len bytes and the bos/eos strings (NULL: undefined). */
tr_chat *tr_chat_new(const char *tmpl, size_t len, const char *bos_token, const char *eos_token,
                     int *err, mu_diag *diag);

void tr_chat_free(tr_chat *c); /* NULL is a no-op */

/* Renders msgs[0..n) (tr_jinja_render_chat with the template's tokens): *out is malloc'd,
 * NUL-terminated, *out_len bytes, owned by the caller. 0, MU_ERR_FORMAT (the template
 * refused: raise_exception and the like, diag says why) or MU_ERR_NOMEM; *out NULL on error. */
int tr_chat_render(const tr_chat *c, const tr_chat_msg *msgs, size_t n, int add_generation_prompt,
                   char **out, size_t *out_len, mu_diag *diag);

/* tr_chat_render then the text's ids (tr_tok_encode_text with the messages' bytes plain, or
 * per c's tr_special_mode): what a model is prompted with (generation:
 * add_generation_prompt 1). *ids malloc'd (NULL when *n_ids is 0), owned by the caller.
 * Errors as tr_chat_render, and MU_ERR_INVALID under TR_SPECIAL_REFUSE. */
int tr_chat_encode(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t n,
                   int add_generation_prompt, uint32_t **ids, size_t *n_ids, mu_diag *diag);

/* Training: the ids of the whole conversation (tr_chat_encode, add_generation_prompt 0) and
 * *mask (n_ids), 1 exactly on the tokens of the assistant's replies, each through the
 * end-of-turn token that closes it, 0 elsewhere (system, user, the template's headers, and
 * what the template writes after the end-of-turn token, such as Qwen's "\n").
 *
 * Reply k's tokens are found by rendering msgs[0..k) with the generation prompt (P) and
 * msgs[0..k] without it (Q): the reply is Q's tokens after P's, through the first special
 * token among them (its end of turn: <|eot_id|>, <|im_end|>, <end_of_turn>, </s>; never the
 * unk token; all of them when none is special). Under TR_SPECIAL_TEXT no special token comes
 * from content, so that token is the template's. This holds only when P's ids are a prefix of Q's
 * and Q's, up to that token, a prefix of the whole conversation's; otherwise (a template that
 * rewrites earlier turns, as Qwen3's drops the <think> part of replies before the last question; or
 * a token that spans the prompt's end and the reply's start) MU_ERR_UNSUPPORTED, with diag
 * naming the message, and nothing is guessed (tr_chat_mask_reply trains on such a
 * conversation one reply at a time). MU_ERR_INVALID when no message has role
 * "assistant" or a reply has no tokens. Roles are not checked here (the template may refuse
 * them: MU_ERR_FORMAT). *ids and *mask are malloc'd and owned by the caller (NULL on error). */
int tr_chat_mask(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t n, uint32_t **ids,
                 uint8_t **mask, size_t *n_ids, mu_diag *diag);

/* Training on a conversation tr_chat_mask refuses as not prefix-consistent: the example for
 * assistant message k (msgs[k].role "assistant") alone, as the model sees the conversation
 * at that point. *ids are those of msgs[0..k] (tr_chat_encode, add_generation_prompt 0, so a
 * template such as Qwen3's writes reply k as a last reply, with its <think> part), *mask 1
 * exactly on reply k through its end-of-turn token, found as tr_chat_mask finds it (the
 * tokens after msgs[0..k) with the generation prompt). MU_ERR_UNSUPPORTED when those prompt
 * tokens are not a prefix of msgs[0..k]'s, MU_ERR_INVALID when msgs[k] is not the
 * assistant's or reply k has no tokens, MU_ERR_FORMAT when the template refuses. Splitting a
 * conversation of R replies this way costs about R times its prompt tokens (each example
 * repeats the conversation before its reply). *ids and *mask malloc'd, owned by the caller
 * (NULL on error). */
int tr_chat_mask_reply(const tr_chat *c, tr_tok *tok, const tr_chat_msg *msgs, size_t k,
                       uint32_t **ids, uint8_t **mask, size_t *n_ids, mu_diag *diag);

#endif
