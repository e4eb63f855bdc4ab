/* tr_tok_internal.h - the tokenizer's tables, shared by tr_tok*.c (not installed). */
#ifndef TR_TOK_INTERNAL_H
#define TR_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tr_tok.h"

/* Which pre-tokenizer regex the file names (the patterns are in tr_tok_pre.c). */
typedef enum {
    TR_PRE_GPT2,   /* 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    TR_PRE_LLAMA3, /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|... */
    TR_PRE_QWEN2,  /* the same with \p{N} one digit at a time */
} tr_pre_kind;

enum {
    TR_TF_ASSIGNED = 1,  /* the id names a token */
    TR_TF_ADDED = 2,     /* an added token (matched in the text before pre-tokenizing) */
    TR_TF_SPECIAL = 4,   /* skipped by decode when skip_special */
    TR_TF_BYTELEVEL = 8, /* written in byte-level text: in the by-bytes lookup */
};

/* Open-addressing hash slot for the merges: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key; /* ((left + 1) << 32) | (right + 1); 0 is an empty slot */
    uint32_t rank, id;
} tr_merge_slot;

/* An added token: its id and the bytes of its content in tr_tok.bytes. */
typedef struct {
    uint32_t id, off, len;
} tr_added;

/* Cache of recent words: word bytes -> their ids. */
typedef struct {
    uint32_t hash, key_off, key_len, ids_off, ids_len; /* key_len 0: empty */
} tr_cache_slot;

#define TR_TOK_CACHE_SLOTS    (1u << 16)
#define TR_TOK_CACHE_MAX_WORD 64

struct tr_tok {
    tr_pre_kind pre;
    int ignore_merges;
    int nfc;         /* the normalizer is NFC */
    uint32_t nvocab; /* one more than the largest id */
    size_t idcap;    /* room in tok_off, tok_len, flags */
    char *bytes;     /* arena of every token's bytes */
    size_t bytes_len, bytes_cap;
    uint32_t *tok_off; /* (nvocab) offset of the id's bytes in `bytes` */
    uint32_t *tok_len; /* (nvocab) their length */
    uint8_t *flags;    /* (nvocab) TR_TF_* */
    uint32_t *vslots;  /* model vocab by bytes: id + 1, 0 empty; vmask + 1 slots */
    size_t vmask;
    tr_merge_slot *mslots; /* mmask + 1 slots */
    size_t mmask;
    uint32_t byte_id[256]; /* the id of each single byte's token */
    tr_added *added;       /* (nadded) added tokens, longest content first */
    size_t nadded;
    uint8_t added_first[256]; /* 1 where some added token starts with that byte */
    tr_cache_slot *cache;     /* TR_TOK_CACHE_SLOTS, or NULL */
    size_t cache_used;
    char *ckeys;
    size_t ckeys_len, ckeys_cap;
    uint32_t *cids;
    size_t cids_len, cids_cap;
};

/* Appends n bytes to tok->bytes; their offset in *off. MU_OK or MU_ERR_NOMEM. */
int tr_tok_bytes_add(tr_tok *tok, const char *b, size_t n, uint32_t *off);

/* Stores token `id` (< 2^24) with bytes b[0..n) and flags TR_TF_*. MU_OK, MU_ERR_FORMAT (the
 * id is too large or given twice, in diag) or MU_ERR_NOMEM. */
int tr_tok_set(tr_tok *tok, uint32_t id, const char *b, size_t n, uint8_t flags, mu_diag *diag,
               const char *path);

/* Reads model.vocab and model.merges. */
int tr_tok_load_vocab(tr_tok *tok, json_t *vocab, mu_diag *diag, const char *path);
int tr_tok_load_merges(tr_tok *tok, json_t *merges, mu_diag *diag, const char *path);

/* Maps byte-level text s[0..n) to bytes into out (room for n bytes). Returns the length, or
 * -1 when a code point is outside bytes_to_unicode. */
long tr_tok_from_byte_level(const char *s, size_t n, char *out);

/* FNV-1a over bytes. */
uint32_t tr_tok_hash(const char *s, size_t n);

/* The model-vocab id whose bytes are s[0..n), or -1. */
int64_t tr_tok_vocab_find(const tr_tok *tok, const char *s, size_t n);

/* Merge of (a, b): its rank and merged id in *rank, *id, or 0 when no such merge. */
int tr_tok_merge_find(const tr_tok *tok, uint32_t a, uint32_t b, uint32_t *rank, uint32_t *id);

/* The byte end of the pre-token that starts at byte `i` of the valid UTF-8 s[0..n) (i < n),
 * per the regex of `kind`. Always > i. */
size_t tr_tok_pre_next(tr_pre_kind kind, const char *s, size_t n, size_t i);

/* Decodes the UTF-8 character at s[i] (valid UTF-8 assumed), its length in *len. */
uint32_t tr_utf8_at(const char *s, size_t n, size_t i, size_t *len);

/* NFC of the valid UTF-8 s[0..n): MU_OK with *out NULL when s is already NFC (a quick check
 * that may say no to NFC text), else a malloc'd buffer *out of *out_len bytes; or
 * MU_ERR_NOMEM. */
int tr_nfc(const char *s, size_t n, char **out, size_t *out_len);

/* Rewrites any bytes as valid UTF-8 (U+FFFD per maximal invalid subpart) into a malloc'd
 * buffer *out of *out_len bytes. MU_OK or MU_ERR_NOMEM. */
int tr_utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len);

#endif
