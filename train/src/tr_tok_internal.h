/* tr_tok_internal.h - the tokenizer's tables, shared by tr_tok*.c (not installed). */
#ifndef TR_TOK_INTERNAL_H
#define TR_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tr_tok.h"

/* Which pre-tokenizer regex the file names (the patterns are in tr_tok_pre.c). */
typedef enum {
    TR_PRE_GPT2,      /* 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    TR_PRE_LLAMA3,    /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|... */
    TR_PRE_QWEN2,     /* the same with \p{N} one digit at a time */
    TR_PRE_NONE,      /* SentencePiece style: no pre-tokenizer, the section is one word */
    TR_PRE_METASPACE, /* Metaspace: ' ' -> replacement, prepended per prepend_scheme */
    TR_PRE_SPLIT_LIT, /* Split on a literal string, MergedWithPrevious */
} tr_pre_kind;

/* One normalizer step, applied in file order (SentencePiece-style files). */
typedef enum {
    TR_NORM_NFC,
    TR_NORM_PREPEND, /* a: the string put before a non-empty section */
    TR_NORM_REPLACE, /* every literal a becomes b */
} tr_norm_kind;

#define TR_NORM_MAX     4
#define TR_NORM_STR_MAX 16

typedef struct {
    tr_norm_kind kind;
    char a[TR_NORM_STR_MAX], b[TR_NORM_STR_MAX];
    uint8_t alen, blen;
} tr_norm_step;

/* Metaspace's prepend_scheme. */
typedef enum { TR_MS_ALWAYS, TR_MS_FIRST, TR_MS_NEVER } tr_ms_scheme;

enum {
    TR_TF_ASSIGNED = 1,  /* the id names a token */
    TR_TF_ADDED = 2,     /* an added token (matched in the text before pre-tokenizing) */
    TR_TF_SPECIAL = 4,   /* skipped by decode when skip_special */
    TR_TF_BYTELEVEL = 8, /* in the by-bytes lookup (byte-level text mapped back, or any
                          * SentencePiece-style vocab entry as written) */
    TR_TF_BYTEFB = 16,   /* a <0xNN> byte-fallback token (SentencePiece style) */
};

#define TR_NO_ID UINT32_MAX

/* Open-addressing hash slot for the merges: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key; /* ((left + 1) << 32) | (right + 1); 0 is an empty slot */
    uint32_t rank, id;
} tr_merge_slot;

/* An added token: its id and the bytes of its content in tr_tok.bytes. */
typedef struct {
    uint32_t id, off, len;
} tr_added;

/* A node of the added tokens' byte trie: its byte, first child, next sibling (0: none) and
 * the added token ending here (index in tr_tok.added + 1, 0: none). */
typedef struct {
    uint32_t child, sibling, token;
    uint8_t byte;
} tr_trie_node;

/* Cache of recent words: word bytes -> their ids. */
typedef struct {
    uint32_t hash, key_off, key_len, ids_off, ids_len; /* key_len 0: empty */
} tr_cache_slot;

#define TR_TOK_SPECIAL_MAX 4 /* ids a template puts before or after the text */

#define TR_TOK_CACHE_SLOTS    (1u << 16)
#define TR_TOK_CACHE_MAX_WORD 64

struct tr_tok {
    tr_pre_kind pre;
    int ignore_merges;
    int nfc; /* the normalizer is NFC (byte-level files) */
    int sp;  /* SentencePiece style: vocab strings as written, words split into
              * characters, byte fallback; else GPT-2 byte-level */
    int byte_fallback;
    int fuse_unk;
    uint32_t unk_id;                /* model.unk_token's id, or TR_NO_ID */
    tr_norm_step norm[TR_NORM_MAX]; /* SentencePiece style: the normalizer's steps */
    size_t nnorm;
    char ms_rep[TR_NORM_STR_MAX]; /* Metaspace replacement, or the Split literal */
    size_t ms_rep_len;
    tr_ms_scheme ms_scheme;
    int ms_split; /* Metaspace split: a new pre-token before each replacement */
    /* Decoder steps (SentencePiece style): replace dec_from by dec_to, <0xNN> to its byte,
     * then strip up to dec_strip_start leading and dec_strip_stop trailing dec_strip chars. */
    char dec_from[TR_NORM_STR_MAX], dec_to[TR_NORM_STR_MAX];
    uint8_t dec_from_len, dec_to_len, dec_bytefb, dec_strip;
    uint32_t dec_strip_start, dec_strip_stop;
    /* Code points X such that some merge yields a token holding X then U+2581: a word is
     * split before a U+2581 that follows a code point not in this list (and not U+2581),
     * where no merge can cross. Sorted. */
    uint32_t *sp_cross;
    size_t nsp_cross;
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
    uint32_t ascii_id[128]; /* SentencePiece style: each ASCII character's vocab id, or
                             * TR_NO_ID (a lookup without hashing) */
    uint32_t byte_id[256];  /* byte-level: the id of each byte's token; SentencePiece style:
                             * the <0xNN> token's, or TR_NO_ID */
    tr_added *added;        /* (nadded) added tokens, longest content first */
    size_t nadded;
    uint8_t added_first[256];                   /* 1 where some added token starts with that byte */
    uint32_t pre_ids[TR_TOK_SPECIAL_MAX], npre; /* add_special_tokens=True: before the text */
    uint32_t post_ids[TR_TOK_SPECIAL_MAX], npost; /* and after it */
    uint32_t bos_id, eos_id;                      /* tokenizer_config's, or TR_NO_ID */
    tr_trie_node *trie; /* the added tokens' contents; node 0 is the root */
    size_t ntrie, trie_cap;
    tr_cache_slot *cache; /* TR_TOK_CACHE_SLOTS, or NULL */
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

/* Reads what add_special_tokens=True adds (tr_tok_special.c) from tokenizer.json's root and
 * the tokenizer_config.json at cfg_path (may be NULL or absent). MU_OK, MU_ERR_FORMAT or
 * MU_ERR_UNSUPPORTED naming the field. */
int tr_tok_read_specials(tr_tok *tok, json_t *root, const char *cfg_path, mu_diag *diag,
                         const char *path);

/* Reads the SentencePiece-style features (tr_tok_spcfg.c) and sets tok->sp. MU_OK or
 * MU_ERR_UNSUPPORTED / MU_ERR_FORMAT naming the field. */
int tr_sp_read_features(tr_tok *tok, json_t *root, mu_diag *diag, const char *path);

/* Reads model.vocab and model.merges (and model.unk_token, SentencePiece style). */
int tr_tok_load_vocab(tr_tok *tok, json_t *model, mu_diag *diag, const char *path);
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

/* SentencePiece style: fills sp_cross from the merges (and, with ignore_merges, the whole
 * vocab); nsp_cross SIZE_MAX (never cut) when U+2581 is no token. MU_OK or MU_ERR_NOMEM. */
int tr_sp_cross_build(tr_tok *tok);

/* SentencePiece style (tr_tok_sp.c): the normalized section s[0..n) (at byte `at` of the
 * text) into a malloc'd *out of *out_len bytes, or *out NULL when it is s[0..n) itself.
 * MU_OK or MU_ERR_NOMEM. */
int tr_sp_normalize(const tr_tok *tok, const char *s, size_t n, size_t at, char **out,
                    size_t *out_len);

/* SentencePiece style: the byte end of the word starting at s[i] of the normalized section
 * s[0..n): the pre-tokenizer's cut, or an earlier cut where no merge can cross. > i. */
size_t tr_sp_word_next(const tr_tok *tok, const char *s, size_t n, size_t i);

/* SentencePiece style: a word's first symbols, one per character (its vocab id; else its
 * <0xNN> tokens; else unk, consecutive unks fused when fuse_unk; else dropped) into syms
 * (room for n). Returns how many. */
size_t tr_sp_symbols(const tr_tok *tok, const char *w, size_t n, uint32_t *syms);

/* Merges syms[0..n) by rank (the lowest first, the leftmost among equals) until none
 * applies; returns how many remain. A heap for long words (tr_tok_merge.c). -1 on no
 * memory. */
long tr_tok_merge_syms(const tr_tok *tok, uint32_t *syms, size_t n);

/* The byte end of the pre-token that starts at byte `i` of the valid UTF-8 s[0..n) (i < n),
 * per the regex of `kind`. Always > i. */
size_t tr_tok_pre_next(tr_pre_kind kind, const char *s, size_t n, size_t i);

/* Decodes the UTF-8 character at s[i] (valid UTF-8 assumed), its length in *len. */
uint32_t tr_utf8_at(const char *s, size_t n, size_t i, size_t *len);

/* NFC of the valid UTF-8 s[0..n): MU_OK with *out NULL when s is already NFC (a quick check
 * that may say no to NFC text), else a malloc'd buffer *out of *out_len bytes; or
 * MU_ERR_NOMEM. */
int tr_nfc(const char *s, size_t n, char **out, size_t *out_len);

/* tr_utf8_sanitize (tr_tok.h) carrying the byte marks m[0..n) (tr_tok_encode_text) along: *om
 * (malloc'd, *out_len bytes) when *out is set, the mark of each output byte (a U+FFFD marked
 * when any byte it replaces was); *om NULL when *out is. */
int tr_utf8_sanitize_mask(const char *s, size_t n, const uint8_t *m, char **out, size_t *out_len,
                          uint8_t **om);

#endif
