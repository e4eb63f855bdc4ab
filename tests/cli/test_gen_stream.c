/* Where `mutual generate`'s streamed writes break (cli/cmd_generate_out.c, the code
 * cmd_generate.c runs): chosen id sequences through gen_stream_push / gen_stream_finish on two
 * hand-made tokenizers, a GPT-2-shaped byte-level one whose pieces end and start inside
 * characters (an emoji, CJK) and a Llama-2-shaped SentencePiece one with <0xNN> byte-fallback
 * tokens. Every write must be whole UTF-8 (checked by a validator written here), the writes
 * together must be the decode of all ids with invalid bytes as U+FFFD, and the bytes written
 * after each id must be exactly what is final by then (so holding everything to the end
 * fails too). Invalid UTF-8 from the model: one U+FFFD per maximal invalid subpart, written
 * as soon as a later byte shows it invalid; a character the text ends inside becomes one
 * U+FFFD at the finish. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_generate.h"
#include "train/tok_bytes.h"

#define SP   "\xe2\x96\x81" /* U+2581 */
#define FFFD "\xef\xbf\xbd"

static char dir[64];

/* What the FILE passed on received: the bytes and where each write ended. */
typedef struct {
    char buf[4096];
    size_t len;
    size_t ends[256];
    int n_writes;
    int fail; /* the write callback fails */
} sink;

static ssize_t sink_write(void *c, const char *b, size_t n)
{
    sink *k = c;
    if (k->fail)
        return -1;
    assert_true(k->len + n <= sizeof k->buf && k->n_writes < 256);
    memcpy(k->buf + k->len, b, n);
    k->len += n;
    k->ends[k->n_writes++] = k->len;
    return (ssize_t)n;
}

/* A FILE whose every fflush is one sink_write (a buffer larger than anything written). */
static FILE *sink_open(sink *k, char *fbuf, size_t cap)
{
    memset(k, 0, sizeof *k);
    FILE *f = fopencookie(k, "w", (cookie_io_functions_t){.write = sink_write});
    assert_non_null(f);
    assert_int_equal(setvbuf(f, fbuf, _IOFBF, cap), 0);
    return f;
}

/* Strict UTF-8 (RFC 3629: no overlongs, surrogates or code points above U+10FFFF), written
 * from the table, not from the code under test. */
static int valid_utf8(const unsigned char *u, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        else
            return 0;
        if (i + need >= n)
            return 0;
        if (u[i + 1] < lo || u[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* Byte-level pieces past the 256 bytes: each cuts a character (bytes as a C string). */
static const char *const PIECES[] = {
    "a\xf0\x9f", /* 256: 'a' and the first half of U+1F600 (F0 9F 98 80) */
    "\x98\x80"
    "b",            /* 257: its second half and 'b' */
    "\xe4\xb8",     /* 258: U+4E2D (E4 B8 AD) but its last byte */
    "\xad\xe6\x96", /* 259: that byte, and U+6587 (E6 96 87) but its last */
};
#define BL_END 260 /* <|end|>, special */

static tr_tok *load(json_t *root)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(json_dump_file(root, path, 0), 0);
    json_decref(root);
    int err = 0;
    mu_diag d = {{0}};
    tr_tok *tok = tr_tok_load(dir, &err, &d);
    if (!tok)
        fail_msg("tokenizer: %s", d.msg);
    return tok;
}

static tr_tok *byte_level(void)
{
    json_t *vocab = json_object();
    char c[32];
    for (int b = 0; b < 256; b++) {
        c[0] = 0;
        tok_byte_char(b, c);
        json_object_set_new(vocab, c, json_integer(b));
    }
    for (int k = 0; k < 4; k++) {
        c[0] = 0;
        for (const unsigned char *p = (const unsigned char *)PIECES[k]; *p; p++)
            tok_byte_char(*p, c + strlen(c));
        json_object_set_new(vocab, c, json_integer(256 + k));
    }
    return load(json_pack("{s:n, s:{s:s, s:b}, s:{s:s, s:o, s:[]}, s:{s:s}, s:[{s:i, s:s, s:b}]}",
                          "normalizer", "pre_tokenizer", "type", "ByteLevel", "use_regex", 1,
                          "model", "type", "BPE", "vocab", vocab, "merges", "decoder", "type",
                          "ByteLevel", "added_tokens", "id", BL_END, "content", "<|end|>",
                          "special", 1));
}

/* Llama 2's shape (normalizer Prepend + Replace, byte fallback, and its decoder: Replace,
 * ByteFallback, Fuse, Strip one leading space). */
static const char *const SP_VOCAB[] = {"<unk>",  "<s>",    "</s>",   SP "a",   "b",
                                       "<0xE4>", "<0xB8>", "<0xAD>", "<0xF0>", "<0x9F>",
                                       "<0x98>", "<0x80>", "<0xC3>", "<0xFF>", SP};
enum { S_BOS = 1, S_A = 3, S_B, S_E4, S_B8, S_AD, S_F0, S_9F, S_98, S_80, S_C3, S_FF, S_SP };

static tr_tok *sentencepiece(void)
{
    json_t *vocab = json_object();
    for (int k = 0; k < (int)(sizeof SP_VOCAB / sizeof *SP_VOCAB); k++)
        json_object_set_new(vocab, SP_VOCAB[k], json_integer(k));
    return load(json_pack(
        "{s:{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}, s:n,"
        " s:{s:s, s:o, s:[], s:s, s:b, s:b},"
        " s:{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]},"
        " s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}, {s:i, s:s, s:b}]}",
        "normalizer", "type", "Sequence", "normalizers", "type", "Prepend", "prepend", SP, "type",
        "Replace", "pattern", "String", " ", "content", SP, "pre_tokenizer", "model", "type", "BPE",
        "vocab", vocab, "merges", "unk_token", "<unk>", "byte_fallback", 1, "fuse_unk", 1,
        "decoder", "type", "Sequence", "decoders", "type", "Replace", "pattern", "String", SP,
        "content", " ", "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ",
        "start", 1, "stop", 0, "added_tokens", "id", 0, "content", "<unk>", "special", 1, "id", 1,
        "content", "<s>", "special", 1, "id", 2, "content", "</s>", "special", 1));
}

/* Streams ids[0..n) with the stop strings; after id i exactly after[i] bytes of want must
 * have been written, at the end all of want (NUL-terminated). stopped_at: the index of the
 * id that completes a stop string (pushing ends there), or -1. */
static void stream(const tr_tok *tok, const uint32_t *ids, int n, const char *const *stops,
                   int n_stop, const size_t *after, int stopped_at, const char *want)
{
    sink k;
    char fbuf[1 << 14];
    FILE *f = sink_open(&k, fbuf, sizeof fbuf);
    gen_stream s;
    mu_diag d = {{0}};
    assert_int_equal(gen_stream_init(&s, tok, f, stops, n_stop, (size_t)n), MU_OK);
    int i = 0;
    for (; i < n; i++) {
        assert_int_equal(gen_stream_push(&s, ids[i], &d), MU_OK);
        if (k.len != after[i] || memcmp(k.buf, want, k.len))
            fail_msg("after id %d (%u): %zu bytes written '%.*s', want %zu of '%s'", i, ids[i],
                     k.len, (int)k.len, k.buf, after[i], want);
        if (s.stopped)
            break;
    }
    assert_int_equal(s.stopped ? i : -1, stopped_at);
    assert_int_equal(gen_stream_finish(&s, &d), MU_OK);
    if (k.len != strlen(want) || memcmp(k.buf, want, k.len))
        fail_msg("written '%.*s', want '%s'", (int)k.len, k.buf, want);
    /* --json's text is the same bytes. */
    assert_int_equal(s.len, k.len);
    assert_memory_equal(s.text, want, k.len);
    for (int w = 0; w < k.n_writes; w++) {
        size_t from = w ? k.ends[w - 1] : 0;
        if (!valid_utf8((const unsigned char *)k.buf + from, k.ends[w] - from))
            fail_msg("write %d (bytes %zu..%zu of '%s') is not whole UTF-8", w, from, k.ends[w],
                     want);
    }
    gen_stream_deinit(&s);
    fclose(f);
}

#define N(a) ((int)(sizeof(a) / sizeof *(a)))

static void test_byte_level_pieces(void **state)
{
    (void)state;
    tr_tok *tok = byte_level();
    /* An emoji across two pieces, each with an ASCII letter outside it. */
    stream(tok, (uint32_t[]){256, 257}, 2, NULL, 0, (size_t[]){1, 6}, -1,
           "a\xf0\x9f\x98\x80"
           "b");
    /* CJK: a piece ends one byte short, the next ends it and starts another character. */
    stream(tok, (uint32_t[]){258, 259, 0x87}, 3, NULL, 0, (size_t[]){0, 3, 6}, -1,
           "\xe4\xb8\xad\xe6\x96\x87");
    /* Byte by byte, and a special token (skipped) between two halves of a character. */
    stream(tok, (uint32_t[]){0xf0, 0x9f, 0x98, 0x80}, 4, NULL, 0, (size_t[]){0, 0, 0, 4}, -1,
           "\xf0\x9f\x98\x80");
    stream(tok, (uint32_t[]){0xf0, 0x9f, BL_END, 0x98, 0x80}, 5, NULL, 0, (size_t[]){0, 0, 0, 0, 4},
           -1, "\xf0\x9f\x98\x80");
    tr_tok_free(tok);
}

static void test_byte_level_invalid(void **state)
{
    (void)state;
    tr_tok *tok = byte_level();
    /* A character cut off by a letter: one U+FFFD for F0 9F (its maximal subpart), at once. */
    stream(tok, (uint32_t[]){0xf0, 0x9f, 'A'}, 3, NULL, 0, (size_t[]){0, 0, 4}, -1, FFFD "A");
    /* A byte that starts nothing; an overlong lead (E0 80); a surrogate (ED A0 80). */
    stream(tok, (uint32_t[]){0xff, 'x'}, 2, NULL, 0, (size_t[]){3, 4}, -1, FFFD "x");
    stream(tok, (uint32_t[]){0xe0, 0x80}, 2, NULL, 0, (size_t[]){0, 6}, -1, FFFD FFFD);
    stream(tok, (uint32_t[]){0xed, 0xa0, 0x80}, 3, NULL, 0, (size_t[]){0, 6, 9}, -1,
           FFFD FFFD FFFD);
    /* The text ends inside a character: one U+FFFD, the final write. */
    stream(tok, (uint32_t[]){'a', 0xe4, 0xb8}, 3, NULL, 0, (size_t[]){1, 1, 1}, -1, "a" FFFD);
    stream(tok, (uint32_t[]){256}, 1, NULL, 0, (size_t[]){1}, -1, "a" FFFD);
    tr_tok_free(tok);
}

static void test_byte_level_stops(void **state)
{
    (void)state;
    tr_tok *tok = byte_level();
    /* The stop string right after the emoji: the emoji is written, nothing after it. */
    stream(tok, (uint32_t[]){256, 257, 'z'}, 3, (const char *[]){"b"}, 1, (size_t[]){1, 5}, 1,
           "a\xf0\x9f\x98\x80");
    /* A stop string that starts with the emoji holds it until 'x' shows it is not one. */
    stream(tok, (uint32_t[]){0xf0, 0x9f, 0x98, 0x80, 'x'}, 5, (const char *[]){"\xf0\x9f\x98\x80!"},
           1, (size_t[]){0, 0, 0, 0, 5}, -1, "\xf0\x9f\x98\x80x");
    /* A stop string inside CJK pieces: cut before it, the character before it whole. */
    stream(tok, (uint32_t[]){258, 259, 0x87}, 3, (const char *[]){"\xe6\x96\x87"}, 1,
           (size_t[]){0, 3, 3}, 2, "\xe4\xb8\xad");
    tr_tok_free(tok);
}

static void test_sentencepiece_byte_fallback(void **state)
{
    (void)state;
    tr_tok *tok = sentencepiece();
    /* BOS (special), "▁a" (its space stripped: the text's first), U+4E2D as three byte
     * tokens, then "b". */
    stream(tok, (uint32_t[]){S_BOS, S_A, S_E4, S_B8, S_AD, S_B}, 6, NULL, 0,
           (size_t[]){0, 1, 1, 1, 4, 5}, -1,
           "a\xe4\xb8\xad"
           "b");
    stream(tok, (uint32_t[]){S_F0, S_9F, S_98, S_80, S_A}, 5, NULL, 0, (size_t[]){0, 0, 0, 4, 6},
           -1, "\xf0\x9f\x98\x80 a");
    /* A lone space first: stripped while it is the whole text, kept once more follows. */
    stream(tok, (uint32_t[]){S_SP, S_SP, S_E4, S_B8, S_AD}, 5, NULL, 0, (size_t[]){0, 1, 1, 1, 4},
           -1, " \xe4\xb8\xad");
    /* Byte tokens that form no character. */
    stream(tok, (uint32_t[]){S_C3, S_A}, 2, NULL, 0, (size_t[]){0, 5}, -1, FFFD " a");
    stream(tok, (uint32_t[]){S_FF, S_B}, 2, NULL, 0, (size_t[]){3, 4}, -1, FFFD "b");
    stream(tok, (uint32_t[]){S_A, S_F0, S_9F, S_98}, 4, NULL, 0, (size_t[]){1, 1, 1, 1}, -1,
           "a" FFFD);
    tr_tok_free(tok);
}

/* A failed write is MU_ERR_IO, not a silent loss. */
static void test_write_fails(void **state)
{
    (void)state;
    tr_tok *tok = byte_level();
    sink k;
    char fbuf[256];
    FILE *f = sink_open(&k, fbuf, sizeof fbuf);
    k.fail = 1;
    gen_stream s;
    mu_diag d = {{0}};
    assert_int_equal(gen_stream_init(&s, tok, f, NULL, 0, 2), MU_OK);
    assert_int_equal(gen_stream_push(&s, 0xf0, &d), MU_OK); /* nothing final yet */
    assert_int_equal(gen_stream_push(&s, 'x', &d), MU_ERR_IO);
    gen_stream_deinit(&s);
    fclose(f);
    tr_tok_free(tok);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "genstream_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_level_pieces),
        cmocka_unit_test(test_byte_level_invalid),
        cmocka_unit_test(test_byte_level_stops),
        cmocka_unit_test(test_sentencepiece_byte_fallback),
        cmocka_unit_test(test_write_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
