/* tr_tok.h - Hugging Face BPE tokenizers read from tokenizer.json.
 *
 * Encodes text to the ids Hugging Face's `tokenizers` (and transformers.js) give, and decodes
 * ids back to bytes. Handled: byte-level BPE (the ByteLevel byte-to-unicode mapping, the
 * pre-tokenizer regexes of GPT-2 (ByteLevel use_regex) and of Llama 3 / Qwen2 (Split,
 * Isolated, then ByteLevel), each implemented by hand over Unicode's L and N categories
 * (tr_unicat.h, generated at build time from Python's unicodedata), the NFC normalizer);
 * SentencePiece-style BPE (Llama 2, Mistral, Gemma: Prepend / Replace / NFC normalizers,
 * no pre-tokenizer, Metaspace or a literal Split, characters with <0xNN> byte fallback and
 * unk, the Replace / ByteFallback / Fuse / Strip / Metaspace decoders); merges by rank
 * (ignore_merges too); added and special tokens (matched in the text before normalizing,
 * leftmost then longest). Anything else in the file (another normalizer or regex,
 * lstrip/rstrip/single_word added tokens, ...) is refused with MU_ERR_UNSUPPORTED naming the
 * field, never approximated (docs/tokenizers.md).
 *
 * Text is bytes: invalid UTF-8 is read as U+FFFD per maximal subpart (WHATWG), as a
 * JavaScript TextDecoder or Python's errors="replace" would before tokenizing. Encoding adds
 * no BOS/EOS: the ids are those of the text alone (add_special_tokens=False).
 */
#ifndef TR_TOK_H
#define TR_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"

typedef struct tr_tok tr_tok;

/* Loads `path`, a tokenizer.json file or a folder holding one (and the tokenizer_config.json
 * beside it, when there is one: tr_tok_encode_special). Returns the tokenizer (free
 * with tr_tok_free) or NULL with *err (may be NULL) set to MU_ERR_NOTFOUND, MU_ERR_IO,
 * MU_ERR_FORMAT (bad JSON, a merge naming a token not in the vocab, a duplicate id...),
 * MU_ERR_UNSUPPORTED (a feature listed above as refused) or MU_ERR_NOMEM, and the file and
 * field at fault in diag. */
tr_tok *tr_tok_load(const char *path, int *err, mu_diag *diag);

/* Frees everything; NULL is a no-op. */
void tr_tok_free(tr_tok *tok);

/* One more than the largest id (model vocab and added tokens). */
uint32_t tr_tok_vocab_size(const tr_tok *tok);

/* Encodes `len` bytes of `text` (any bytes, see above). On MU_OK *ids is a malloc'd array of
 * *n ids (NULL when *n is 0) that the caller frees. MU_ERR_NOMEM leaves *ids and *n
 * untouched. Not thread-safe: encoding fills the tokenizer's cache of recent words; use
 * one tokenizer per thread. */
int tr_tok_encode(tr_tok *tok, const char *text, size_t len, uint32_t **ids, size_t *n);

/* Encodes as transformers' AutoTokenizer does with add_special_tokens=True, for training:
 * the ids of tr_tok_encode with the special tokens around them that tokenizer_config.json
 * (next to tokenizer.json) asks for when its tokenizer_class is Llama's, CodeLlama's or
 * Gemma's (add_bos_token, default true; add_eos_token, default false), else that the
 * tokenizer.json's post_processor TemplateProcessing names (none for ByteLevel). Returns
 * and owns as tr_tok_encode. */
int tr_tok_encode_special(tr_tok *tok, const char *text, size_t len, uint32_t **ids, size_t *n);

/* Special-token text as text. tr_tok_encode matches the text of every added token, special
 * or not, as that token: "<|im_end|>" in a document becomes the end-of-turn id, as Hugging
 * Face's encode does by default. tr_tok_encode_text does not take a special token (an added
 * token with "special": true) where any of its bytes is plain: plain[i] nonzero marks byte i
 * of text as plain, plain NULL marks all of them. Such text is encoded as any other text
 * (normalized, pre-tokenized, BPE): the ids Hugging Face gives with split_special_tokens=True
 * (encode_special_tokens in `tokenizers`); non-special added tokens are still matched, as
 * there. tr_chat marks a rendered conversation's content plain, so a member's data cannot
 * write a turn boundary (tr_chat.h). Returns and owns as tr_tok_encode. */
int tr_tok_encode_text(tr_tok *tok, const char *text, size_t len, const uint8_t *plain,
                       uint32_t **ids, size_t *n);

/* tr_tok_encode_special with the text encoded by tr_tok_encode_text (all of it plain): the
 * BOS/EOS the tokenizer adds stay the only special tokens (mutual data import's documents). */
int tr_tok_encode_special_text(tr_tok *tok, const char *text, size_t len, uint32_t **ids,
                               size_t *n);

/* Whether text[0..len) holds a special token's text (what tr_tok_encode would turn into an
 * added token with "special": true): 1 with the first one's byte offset in *at and its id in
 * *id, else 0. */
int tr_tok_find_special(const tr_tok *tok, const char *text, size_t len, size_t *at, uint32_t *id);

/* The bytes of token id (an added token's content; a byte-level token's bytes), *len of them,
 * not NUL-terminated; NULL when id is not a token. */
const char *tr_tok_token_text(const tr_tok *tok, uint32_t id, size_t *len);

/* tokenizer_config.json's bos_token / eos_token id, or UINT32_MAX when it names none (or
 * there is no tokenizer_config.json). */
uint32_t tr_tok_bos_id(const tr_tok *tok);
uint32_t tr_tok_eos_id(const tr_tok *tok);

/* Decodes `n` ids to the bytes they stand for (byte-level tokens back to their bytes, added
 * tokens as their content), skipping special tokens when skip_special is set. On MU_OK *out
 * is a malloc'd NUL-terminated buffer of *out_len bytes (the NUL not counted) that the caller
 * frees; the bytes are not checked for UTF-8 (a cut can split a character; Hugging Face would
 * show U+FFFD there). MU_ERR_INVALID (an id >= tr_tok_vocab_size or not assigned, named in
 * diag) or MU_ERR_NOMEM, with *out untouched. Thread-safe on one tokenizer. */
int tr_tok_decode(const tr_tok *tok, const uint32_t *ids, size_t n, int skip_special, char **out,
                  size_t *out_len, mu_diag *diag);

/* Rewrites any bytes as valid UTF-8 into a malloc'd NUL-terminated buffer *out of *out_len
 * bytes, or sets *out NULL (and *out_len n) when s[0..n) is valid UTF-8 already (use s). Each
 * maximal invalid subpart (Unicode's "substitution of maximal subparts", as Python's
 * decode(errors="replace") and Rust's from_utf8_lossy: a lead byte and the continuation bytes
 * that may follow it, else one byte) becomes one U+FFFD. A prefix s[0..k) with
 * tr_utf8_pending(s, k) == 0 is rewritten as the start of s[0..n)'s rewriting. MU_OK or
 * MU_ERR_NOMEM. */
int tr_utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len);

/* How many bytes at the end of s[0..n) (0..3) are a proper prefix of a valid UTF-8 sequence:
 * bytes that more bytes may still make a character, so neither a character nor invalid yet. */
size_t tr_utf8_pending(const char *s, size_t n);

#endif
