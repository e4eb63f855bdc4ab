/* Tests of tr_tok's SentencePiece-style BPE (Llama 2, Mistral, Gemma) on a small hand-made
 * tokenizer.json: normalizer Prepend + Replace, merges by rank over characters, byte
 * fallback, unk (fused), a merge across U+2581, Metaspace (first / always / split), a literal
 * Split, the decoder's steps, long words against a naive BPE written here, refused files. The
 * real files are compared with the JavaScript reference in tok_ref.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tio_util.h"
#include "tr_tok.h"

#define SP "\xe2\x96\x81" /* U+2581 */

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "toksp");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

static const char *const VOCAB[] = {"<unk>", "<s>", "</s>", "<0x41>", "<0xC3>",  "<0xA9>",
                                    SP,      "a",   "b",    SP "a",   "ab",      SP "ab",
                                    SP SP,   "c",   "x",    "x" SP,   "x" SP "c"};
#define NVOCAB 17
/* In rank order; each names tokens of VOCAB. */
static const char *const MERGES[][2] = {{SP, "a"}, {"a", "b"}, {SP "a", "b"},
                                        {SP, SP},  {"x", SP},  {"x" SP, "c"}};
#define NMERGES 6

/* Llama 2's shape: Prepend U+2581 then every ' ' to U+2581, no pre-tokenizer, byte fallback,
 * fuse_unk, and its decoder (Replace, ByteFallback, Fuse, Strip one leading space). */
static json_t *tiny(void)
{
    json_t *vocab = json_object(), *merges = json_array();
    for (int k = 0; k < NVOCAB; k++)
        json_object_set_new(vocab, VOCAB[k], json_integer(k));
    for (int k = 0; k < NMERGES; k++)
        json_array_append_new(merges, json_pack("[s, s]", MERGES[k][0], MERGES[k][1]));
    return json_pack(
        "{s:{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}, s:n,"
        " s:{s:s, s:o, s:o, s:s, s:b, s:b},"
        " s:{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]},"
        " s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}, {s:i, s:s, s:b}]}",
        "normalizer", "type", "Sequence", "normalizers", "type", "Prepend", "prepend", SP, "type",
        "Replace", "pattern", "String", " ", "content", SP, "pre_tokenizer", "model", "type", "BPE",
        "vocab", vocab, "merges", merges, "unk_token", "<unk>", "byte_fallback", 1, "fuse_unk", 1,
        "decoder", "type", "Sequence", "decoders", "type", "Replace", "pattern", "String", SP,
        "content", " ", "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ",
        "start", 1, "stop", 0, "added_tokens", "id", 0, "content", "<unk>", "special", 1, "id", 1,
        "content", "<s>", "special", 1, "id", 2, "content", "</s>", "special", 1);
}

static tr_tok *load(json_t *root, int *err, mu_diag *d)
{
    assert_int_equal(json_dump_file(root, path, 0), 0);
    json_decref(root);
    return tr_tok_load(dir, err, d);
}

static void assert_ids(tr_tok *tok, const char *text, const uint32_t *want, size_t nwant)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(tr_tok_encode(tok, text, strlen(text), &ids, &n), MU_OK);
    if (n != nwant)
        fail_msg("'%s': %zu ids, want %zu", text, n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    free(ids);
}

static void test_merges_fallback_unk(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    assert_int_equal(tr_tok_vocab_size(tok), NVOCAB);
    assert_ids(tok, "ab", (uint32_t[]){11}, 1);            /* (_ a) first, then (_a b) */
    assert_ids(tok, "a  b", (uint32_t[]){9, 12, 8}, 3);    /* _a __ b */
    assert_ids(tok, "A", (uint32_t[]){6, 3}, 2);           /* <0x41> */
    assert_ids(tok, "\xc3\xa9", (uint32_t[]){6, 4, 5}, 3); /* é as <0xC3> <0xA9> */
    assert_ids(tok, "ZZ", (uint32_t[]){6, 0}, 2);          /* no <0x5A>: one fused unk */
    assert_ids(tok, "Z\xc3\xa9Z", (uint32_t[]){6, 0, 4, 5, 0}, 5);
    assert_ids(tok, "x c", (uint32_t[]){6, 16}, 2);          /* x_c: a merge across U+2581 */
    assert_ids(tok, "<s>ab</s>", (uint32_t[]){1, 11, 2}, 3); /* each section gets its U+2581 */
    assert_ids(tok, "", NULL, 0);
    tr_tok_free(tok);
}

static void assert_decodes(tr_tok *tok, const uint32_t *ids, size_t n, int skip, const char *want)
{
    char *out;
    size_t len;
    assert_int_equal(tr_tok_decode(tok, ids, n, skip, &out, &len, NULL), MU_OK);
    assert_int_equal(len, strlen(want));
    assert_string_equal(out, want);
    free(out);
}

static void test_decode(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    assert_decodes(tok, (uint32_t[]){11, 12, 8}, 3, 0, "ab  b"); /* leading space stripped */
    assert_decodes(tok, (uint32_t[]){6, 4, 5, 3}, 4, 0,
                   "\xc3\xa9"
                   "A");
    assert_decodes(tok, (uint32_t[]){1, 11}, 2, 0, "<s> ab");
    assert_decodes(tok, (uint32_t[]){1, 11}, 2, 1, "ab");
    const char *text = "ab x c\xc3\xa9 a  b";
    uint32_t *ids;
    size_t n;
    assert_int_equal(tr_tok_encode(tok, text, strlen(text), &ids, &n), MU_OK);
    assert_decodes(tok, ids, n, 0, text);
    free(ids);
    tr_tok_free(tok);
}

/* The BPE of word w (characters of VOCAB) by rescanning, with strings: the reference the
 * heap-based merging of long words must agree with. */
static size_t naive_bpe(const char *w, uint32_t *out)
{
    char *sym[4096];
    size_t n = 0, len;
    for (size_t i = 0; w[i]; i += len) {
        len = (w[i] & 0x80) ? 3 : 1; /* U+2581 or ASCII */
        sym[n++] = strndup(w + i, len);
    }
    for (;;) {
        size_t best = NMERGES, at = 0;
        for (size_t i = 0; i + 1 < n; i++)
            for (size_t r = 0; r < best; r++)
                if (!strcmp(sym[i], MERGES[r][0]) && !strcmp(sym[i + 1], MERGES[r][1])) {
                    best = r;
                    at = i;
                }
        if (best == NMERGES)
            break;
        char *m = malloc(strlen(sym[at]) + strlen(sym[at + 1]) + 1);
        strcat(strcpy(m, sym[at]), sym[at + 1]);
        free(sym[at]);
        free(sym[at + 1]);
        sym[at] = m;
        memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof *sym);
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < NVOCAB; k++)
            if (!strcmp(sym[i], VOCAB[k]))
                out[i] = k;
        free(sym[i]);
    }
    return n;
}

static void test_long_words(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    uint64_t rng = 12345;
    for (int round = 0; round < 40; round++) {
        char text[1200], norm[4096] = SP;
        size_t len = 64 + (size_t)(round * 23 % 900);
        for (size_t i = 0; i < len; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(rng >> 33) % 64;
            text[i] = "abxc "[r < 20 ? 0 : r < 38 ? 1 : r < 50 ? 2 : r < 62 ? 3 : 4];
        }
        text[len] = '\0';
        for (size_t i = 0; i < len; i++)
            strcat(norm, text[i] == ' ' ? SP : (char[]){text[i], 0});
        uint32_t want[4096];
        size_t nwant = naive_bpe(norm, want);
        assert_ids(tok, text, want, nwant);
    }
    tr_tok_free(tok);
}

static json_t *metaspace(const char *scheme, int split)
{
    json_t *r = tiny();
    json_object_set_new(r, "normalizer", json_null());
    json_object_set_new(r, "pre_tokenizer",
                        json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", SP,
                                  "prepend_scheme", scheme, "split", split));
    return r;
}

static void test_pre_tokenizers(void **state)
{
    (void)state;
    tr_tok *tok = load(metaspace("first", 0), NULL, NULL);
    assert_non_null(tok);
    assert_ids(tok, "ab", (uint32_t[]){11}, 1);
    assert_ids(tok, "<s>ab", (uint32_t[]){1, 10}, 2); /* not at the text's start: no U+2581 */
    assert_ids(tok, " ab", (uint32_t[]){11}, 1);      /* starts with one already */
    tr_tok_free(tok);
    tok = load(metaspace("always", 0), NULL, NULL);
    assert_ids(tok, "<s>ab", (uint32_t[]){1, 11}, 2);
    assert_ids(tok, "a  b", (uint32_t[]){9, 12, 8}, 3);
    tr_tok_free(tok);
    tok = load(metaspace("always", 1), NULL, NULL); /* split: _a | _ | _b */
    assert_ids(tok, "a  b", (uint32_t[]){9, 6, 6, 8}, 4);
    tr_tok_free(tok);
    json_t *r = tiny();
    json_object_set_new(r, "normalizer", json_null());
    json_object_set_new(r, "pre_tokenizer",
                        json_pack("{s:s, s:{s:s}, s:s}", "type", "Split", "pattern", "String", "a",
                                  "behavior", "MergedWithPrevious"));
    tok = load(r, NULL, NULL);
    assert_ids(tok, "abab", (uint32_t[]){7, 8, 7, 8}, 4); /* a | ba | b: no "ab" */
    tr_tok_free(tok);
}

/* tiny() with a post_processor that puts <s> first, and a tokenizer_config.json `cfg`. */
static tr_tok *load_with_config(const char *cfg, int *err, mu_diag *d)
{
    json_t *r = tiny();
    json_object_set_new(r, "post_processor",
                        json_pack("{s:s, s:[{s:{s:s}}, {s:{s:s}}], s:{s:{s:[i]}}}", "type",
                                  "TemplateProcessing", "single", "SpecialToken", "id", "<s>",
                                  "Sequence", "id", "A", "special_tokens", "<s>", "ids", 1));
    char cpath[160];
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(cpath, "w");
    assert_non_null(f);
    fputs(cfg, f);
    fclose(f);
    return load(r, err, d);
}

static void assert_special(tr_tok *tok, const char *text, const uint32_t *want, size_t nwant)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    assert_non_null(tok);
    assert_int_equal(tr_tok_encode_special(tok, text, strlen(text), &ids, &n), MU_OK);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    free(ids);
    tr_tok_free(tok);
}

/* Llama's and Gemma's classes follow add_bos_token / add_eos_token (transformers rebuilds
 * their template); other classes follow the post_processor. */
static void test_special_tokens(void **state)
{
    (void)state;
    const char *llama_eos = "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_eos_token\": true,"
                            " \"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"},"
                            " \"model_max_length\": 1000000000000000019884624838656}";
    assert_special(load_with_config(llama_eos, NULL, NULL), "ab", (uint32_t[]){1, 11, 2}, 3);
    const char *gemma_none = "{\"tokenizer_class\": \"GemmaTokenizerFast\", \"add_bos_token\": "
                             "false, \"bos_token\": \"<s>\"}";
    assert_special(load_with_config(gemma_none, NULL, NULL), "ab", (uint32_t[]){11}, 1);
    const char *other = "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"add_bos_token\": "
                        "false, \"add_eos_token\": true, \"eos_token\": \"</s>\"}";
    tr_tok *tok = load_with_config(other, NULL, NULL);
    assert_non_null(tok);
    assert_int_equal(tr_tok_eos_id(tok), 2);
    assert_int_equal(tr_tok_bos_id(tok), UINT32_MAX);
    assert_special(tok, "", (uint32_t[]){1}, 1); /* the template, even for no text */
    mu_diag d = {{0}};
    int rc = 0;
    const char *no_bos = "{\"tokenizer_class\": \"LlamaTokenizer\", \"bos_token\": \"<nope>\"}";
    assert_null(load_with_config(no_bos, &rc, &d));
    assert_int_equal(rc, MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "add_bos_token"));
}

/* A Metaspace decoder (U+2581 to a space, the first leading space stripped unless
 * prepend_scheme is never) and NFC inside a SentencePiece normalizer Sequence. */
static void test_metaspace_decoder_nfc(void **state)
{
    (void)state;
    json_t *r = tiny();
    json_object_set_new(r, "decoder",
                        json_pack("{s:s, s:s, s:s}", "type", "Metaspace", "replacement", SP,
                                  "prepend_scheme", "first"));
    tr_tok *tok = load(r, NULL, NULL);
    assert_non_null(tok);
    assert_decodes(tok, (uint32_t[]){11, 12, 8}, 3, 0, "ab  b");
    assert_decodes(tok, (uint32_t[]){6, 3}, 2, 0, "<0x41>"); /* no ByteFallback step */
    tr_tok_free(tok);
    r = tiny();
    json_object_set_new(r, "decoder",
                        json_pack("{s:s, s:s, s:s}", "type", "Metaspace", "replacement", SP,
                                  "prepend_scheme", "never"));
    tok = load(r, NULL, NULL);
    assert_decodes(tok, (uint32_t[]){11, 12, 8}, 3, 0, " ab  b");
    tr_tok_free(tok);
    /* e + U+0301: NFC makes it U+00E9, two byte tokens; without NFC 'e' and the mark have no
     * tokens, one fused unk. */
    r = tiny();
    json_object_set_new(r, "normalizer",
                        json_pack("{s:s, s:[{s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence",
                                  "normalizers", "type", "NFC", "type", "Replace", "pattern",
                                  "String", " ", "content", SP));
    tok = load(r, NULL, NULL);
    assert_ids(tok, "e\xcc\x81", (uint32_t[]){4, 5}, 2);
    tr_tok_free(tok);
    r = tiny();
    json_object_set_new(r, "normalizer",
                        json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String",
                                  " ", "content", SP));
    tok = load(r, NULL, NULL);
    assert_ids(tok, "e\xcc\x81", (uint32_t[]){0}, 1);
    tr_tok_free(tok);
}

static void assert_refused(json_t *root, int err, const char *needle)
{
    mu_diag d = {{0}};
    int rc = 0;
    assert_null(load(root, &rc, &d));
    assert_int_equal(rc, err);
    if (!strstr(d.msg, needle))
        fail_msg("'%s' does not name '%s'", d.msg, needle);
}

static void test_refused(void **state)
{
    (void)state;
    json_t *r = tiny();
    json_object_set_new(r, "normalizer", json_pack("{s:s}", "type", "Lowercase"));
    assert_refused(r, MU_ERR_UNSUPPORTED, "normalizer");
    r = tiny();
    json_object_set_new(r, "normalizer",
                        json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "Regex",
                                  " +", "content", SP));
    assert_refused(r, MU_ERR_UNSUPPORTED, "normalizer Replace");
    r = tiny();
    json_object_set_new(r, "pre_tokenizer",
                        json_pack("{s:s, s:{s:s}, s:s}", "type", "Split", "pattern", "Regex",
                                  "\\w+", "behavior", "Isolated"));
    assert_refused(r, MU_ERR_UNSUPPORTED, "pre_tokenizer Split");
    r = tiny();
    json_object_set_new(r, "decoder", json_pack("{s:s}", "type", "WordPiece"));
    assert_refused(r, MU_ERR_UNSUPPORTED, "decoder");
    r = tiny();
    json_object_set_new(json_object_get(r, "model"), "unk_token", json_string("<nope>"));
    assert_refused(r, MU_ERR_FORMAT, "unk_token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merges_fallback_unk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pre_tokenizers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metaspace_decoder_nfc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
