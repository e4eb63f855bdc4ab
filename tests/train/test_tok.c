/* Tests of tr_tok on small hand-made tokenizer.json files: merges by rank, the pre-tokenizer
 * boundaries, added tokens (longest first), invalid UTF-8, decode, and every refused file.
 * The real files are compared with the JavaScript reference in tok_ref.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "tio_util.h"
#include "tok_bytes.h"
#include "tr_tok.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "tok");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

/* A GPT-2-shaped tokenizer: byte b is id b, then merges h+e (256), l+l (257), he+ll (258),
 * hell+o (259), space+space (260); added tokens <|x|> (261, special) and <|x|>y (262). */
static json_t *tiny(void)
{
    json_t *vocab = json_object();
    char c[4];
    for (int b = 0; b < 256; b++) {
        tok_byte_char(b, c);
        json_object_set_new(vocab, c, json_integer(b));
    }
    const char *merged[] = {"he", "ll", "hell", "hello", "ĠĠ"};
    for (int k = 0; k < 5; k++)
        json_object_set_new(vocab, merged[k], json_integer(256 + k));
    return json_pack("{s:n, s:{s:s, s:b}, s:{s:s, s:o, s:[s, s, s, s, s]}, s:{s:s},"
                     " s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}]}",
                     "normalizer", "pre_tokenizer", "type", "ByteLevel", "use_regex", 1, "model",
                     "type", "BPE", "vocab", vocab, "merges", "h e", "l l", "he ll", "hell o",
                     "Ġ Ġ", "decoder", "type", "ByteLevel", "added_tokens", "id", 261, "content",
                     "<|x|>", "special", 1, "id", 262, "content", "<|x|>y", "special", 0);
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
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    free(ids);
}

static void test_merges_and_boundaries(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    assert_int_equal(tr_tok_vocab_size(tok), 263);
    assert_ids(tok, "hello", (uint32_t[]){259}, 1);
    assert_ids(tok, "hell", (uint32_t[]){258}, 1);
    /* " hello" is one pre-token; "a  b" is "a", " ", " b": the two spaces never meet. */
    assert_ids(tok, " hello", (uint32_t[]){' ', 259}, 2);
    assert_ids(tok, "a  b", (uint32_t[]){'a', ' ', ' ', 'b'}, 4);
    /* Three spaces then the end: one pre-token, so the space pair merges. */
    assert_ids(tok, "   ", (uint32_t[]){260, ' '}, 2);
    assert_ids(tok, "it's", (uint32_t[]){'i', 't', '\'', 's'}, 4);
    tr_tok_free(tok);
}

static void test_added_tokens(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    assert_ids(tok, "a<|x|>yb", (uint32_t[]){'a', 262, 'b'}, 3); /* the longer one */
    assert_ids(tok, "<|x|>hello<|x|>", (uint32_t[]){261, 259, 261}, 3);
    assert_ids(tok, "<|x|", (uint32_t[]){'<', '|', 'x', '|'}, 4);
    tr_tok_free(tok);
}

static void assert_text_ids(tr_tok *tok, const char *text, const uint8_t *plain,
                            const uint32_t *want, size_t nwant)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(tr_tok_encode_text(tok, text, strlen(text), plain, &ids, &n), MU_OK);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i])
            fail_msg("'%s' id %zu: %u, want %u", text, i, ids[i], want[i]);
    free(ids);
}

/* tr_tok_encode_text: a special token's text where any of its bytes is plain is encoded as
 * text (split_special_tokens), a non-special added token is still matched, a token from
 * unmarked bytes next to plain ones stays the token, the marks follow the invalid-UTF-8
 * rewrite; tr_tok_find_special finds the first special text, not a non-special token's. */
static void test_special_as_text(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    const uint32_t split[] = {'a', '<', '|', 'x', '|', '>', 'b'};
    assert_text_ids(tok, "a<|x|>b", NULL, split, 7);
    assert_ids(tok, "a<|x|>b", (uint32_t[]){'a', 261, 'b'}, 3);
    assert_text_ids(tok, "a<|x|>yb", NULL, (uint32_t[]){'a', 262, 'b'}, 3);
    const uint8_t second[] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    assert_text_ids(tok, "<|x|><|x|>", second, (uint32_t[]){261, '<', '|', 'x', '|', '>'}, 6);
    const uint8_t last[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_text_ids(tok, "<|x|><|x|>", last, (uint32_t[]){261, '<', '|', 'x', '|', '>'}, 6);
    const uint8_t first[] = {1, 0, 0, 0, 0, 0};
    assert_text_ids(tok, "\xff<|x|>", first, (uint32_t[]){0xef, 0xbf, 0xbd, 261}, 4);
    const uint8_t bad[] = {0, 0, 0, 1, 0, 0, 0, 0};
    assert_text_ids(tok, "<|x\xff|>", bad, (uint32_t[]){'<', '|', 'x', 0xef, 0xbf, 0xbd, '|', '>'},
                    8);
    size_t at = 0;
    uint32_t id = 0;
    assert_int_equal(tr_tok_find_special(tok, "ab<|x|>", 7, &at, &id), 1);
    assert_int_equal(at, 2);
    assert_int_equal(id, 261);
    assert_int_equal(tr_tok_find_special(tok, "<|x|>y <|x|", 11, &at, &id), 0);
    size_t len = 0;
    const char *t = tr_tok_token_text(tok, 261, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(t, "<|x|>", 5);
    assert_null(tr_tok_token_text(tok, 263, &len));
    uint32_t *ids;
    size_t n;
    assert_int_equal(tr_tok_encode_special_text(tok, "a<|x|>b", 7, &ids, &n), MU_OK);
    assert_int_equal(n, 7); /* no post_processor here: nothing around */
    assert_memory_equal(ids, split, sizeof split);
    free(ids);
    tr_tok_free(tok);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    /* One U+FFFD per maximal invalid subpart: E4 B8 (cut), FF, then ED A0 80 (a surrogate:
     * three). */
    assert_ids(tok, "\xe4\xb8\xff", (uint32_t[]){0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd}, 6);
    assert_ids(tok, "\xed\xa0\x80",
               (uint32_t[]){0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd}, 9);
    tr_tok_free(tok);
}

static void test_decode(void **state)
{
    (void)state;
    tr_tok *tok = load(tiny(), NULL, NULL);
    assert_non_null(tok);
    const char *text = "hello <|x|>wörld\t\n  end<|x|>y";
    uint32_t *ids;
    size_t n, len;
    char *out;
    assert_int_equal(tr_tok_encode(tok, text, strlen(text), &ids, &n), MU_OK);
    assert_int_equal(tr_tok_decode(tok, ids, n, 0, &out, &len, NULL), MU_OK);
    assert_string_equal(out, text);
    free(out);
    assert_int_equal(tr_tok_decode(tok, ids, n, 1, &out, &len, NULL), MU_OK);
    assert_string_equal(out, "hello wörld\t\n  end<|x|>y"); /* only <|x|> is special */
    free(out);
    free(ids);
    mu_diag d = {{0}};
    uint32_t bad[] = {259, 263};
    out = NULL;
    assert_int_equal(tr_tok_decode(tok, bad, 2, 0, &out, &len, &d), MU_ERR_INVALID);
    assert_null(out);
    assert_non_null(strstr(d.msg, "id 263"));
    tr_tok_free(tok);
}

/* tiny() with one change made by `edit`, must be refused with `err` and `needle` in diag. */
static void assert_refused(void (*edit)(json_t *), int err, const char *needle)
{
    json_t *root = tiny();
    edit(root);
    mu_diag d = {{0}};
    int rc = 0;
    assert_null(load(root, &rc, &d));
    assert_int_equal(rc, err);
    if (!strstr(d.msg, needle))
        fail_msg("'%s' does not name '%s'", d.msg, needle);
}

static void bad_merge(json_t *r)
{
    json_array_append_new(json_object_get(json_object_get(r, "model"), "merges"),
                          json_string("o x"));
}
static void normalizer(json_t *r)
{
    json_object_set_new(r, "normalizer", json_pack("{s:s}", "type", "Lowercase"));
}
static void no_byte(json_t *r)
{
    json_object_del(json_object_get(json_object_get(r, "model"), "vocab"), "A");
}
static void regex(json_t *r)
{
    json_object_set_new(r, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s, s:b}]}", "type", "Sequence",
                                  "pretokenizers", "type", "Split", "pattern", "Regex", "\\w+",
                                  "behavior", "Isolated", "type", "ByteLevel", "use_regex", 0));
}
static void lstrip(json_t *r)
{
    json_object_set_new(json_array_get(json_object_get(r, "added_tokens"), 0), "lstrip",
                        json_true());
}
static void dup_id(json_t *r)
{
    json_object_set_new(json_object_get(json_object_get(r, "model"), "vocab"), "zz",
                        json_integer(5));
}
static void fallback(json_t *r)
{
    json_object_set_new(json_object_get(r, "model"), "byte_fallback", json_true());
}

static void nfc(json_t *r)
{
    json_object_set_new(r, "normalizer", json_pack("{s:s}", "type", "NFC"));
}

/* NFC before pre-tokenizing: composition, reordering by class, Hangul, a singleton and an
 * exclusion (each byte is its own id in tiny()). */
static void test_nfc(void **state)
{
    (void)state;
    json_t *root = tiny();
    nfc(root);
    tr_tok *tok = load(root, NULL, NULL);
    assert_non_null(tok);
    assert_ids(tok, "e\xcc\x81", (uint32_t[]){0xc3, 0xa9}, 2);                           /* é */
    assert_ids(tok, "a\xcc\x81\xcc\xa3", (uint32_t[]){0xe1, 0xba, 0xa1, 0xcc, 0x81}, 5); /* ạ + ́ */
    assert_ids(tok, "\xe1\x84\x80\xe1\x85\xa1", (uint32_t[]){0xea, 0xb0, 0x80}, 3);      /* 가 */
    assert_ids(tok, "\xe2\x84\xab", (uint32_t[]){0xc3, 0x85}, 2); /* U+212B -> U+00C5 */
    assert_ids(tok, "\xe0\xa5\x98", (uint32_t[]){0xe0, 0xa4, 0x95, 0xe0, 0xa4, 0xbc}, 6);
    assert_ids(tok, "hello", (uint32_t[]){259}, 1);
    /* Only the piece around the mark changes; what is before and after is kept. */
    assert_ids(tok, "xe\xcc\x81y", (uint32_t[]){'x', 0xc3, 0xa9, 'y'}, 4);
    tr_tok_free(tok);
}

static void test_refused(void **state)
{
    (void)state;
    assert_refused(bad_merge, MU_ERR_FORMAT, "model.merges[5]");
    assert_refused(normalizer, MU_ERR_UNSUPPORTED, "normalizer");
    assert_refused(no_byte, MU_ERR_UNSUPPORTED, "byte 0x41");
    assert_refused(regex, MU_ERR_UNSUPPORTED, "\\w+");
    assert_refused(lstrip, MU_ERR_UNSUPPORTED, "added_tokens[0]");
    assert_refused(dup_id, MU_ERR_FORMAT, "id 5");
    assert_refused(fallback, MU_ERR_UNSUPPORTED, "byte_fallback");
    mu_diag d = {{0}};
    int rc = 0;
    assert_null(tr_tok_load("no/such/tokenizer.json", &rc, &d));
    assert_int_equal(rc, MU_ERR_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merges_and_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_added_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_as_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nfc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
