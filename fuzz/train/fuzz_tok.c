/* fuzz_tok.c - tr_tok on arbitrary bytes. First byte even: the rest is text for two fixed
 * tokenizers (GPT-2-shaped byte-level, Llama-2-shaped SentencePiece with all 256 <0xNN>
 * tokens); every id must be in range and decoding must give the text back (byte-level: the
 * text after U+FFFD replacement; SentencePiece: the same, when it holds no U+2581 and no
 * added token). First
 * byte odd: the rest is a tokenizer.json, which must load or be refused without a crash,
 * and, loaded, encode and decode a sample. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tr_tok.h"

static char dir[64];
static tr_tok *bl, *sp;

/* The byte-level file: every byte its own id (GPT-2's bytes_to_unicode), merges h e, l l. */
static void write_byte_level(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(
        "{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true},"
        " \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {",
        f);
    for (int b = 0, extra = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        int cp = printable ? b : 256 + extra++;
        char u[4] = {0};
        if (cp < 0x80)
            u[0] = (char)cp;
        else {
            u[0] = (char)(0xc0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3f));
        }
        if (cp == '"' || cp == '\\')
            fprintf(f, "\"\\%s\": %d, ", u, b);
        else
            fprintf(f, "\"%s\": %d, ", u, b);
    }
    fputs("\"he\": 256, \"ll\": 257}, \"merges\": [\"h e\", \"l l\"]},"
          " \"added_tokens\": [{\"id\": 258, \"content\": \"<|x|>\", \"special\": true}]}",
          f);
    fclose(f);
}

/* The SentencePiece-style file: <unk> <s> </s>, the 256 byte tokens, U+2581, a, b, merges. */
static void write_sp(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs("{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\","
          " \"prepend\": \"\\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"},"
          " \"content\": \"\\u2581\"}]}, \"pre_tokenizer\": null, \"decoder\": {\"type\":"
          " \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\":"
          " \"\\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
          " {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
          " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"fuse_unk\": true,"
          " \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, ",
          f);
    for (int b = 0; b < 256; b++)
        fprintf(f, "\"<0x%02X>\": %d, ", b, 3 + b);
    fputs("\"\\u2581\": 259, \"a\": 260, \"b\": 261, \"\\u2581a\": 262, \"ab\": 263},"
          " \"merges\": [\"\\u2581 a\", \"a b\"]}, \"added_tokens\": [{\"id\": 1, \"content\":"
          " \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}]}",
          f);
    fclose(f);
}

static void cleanup(void)
{
    tr_tok_free(bl);
    tr_tok_free(sp);
    rmdir(dir);
}

static void init(void)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz_tok_XXXXXX");
    if (!mkdtemp(dir))
        abort();
    char p[128];
    snprintf(p, sizeof p, "%s/bl.json", dir);
    write_byte_level(p);
    if (!(bl = tr_tok_load(p, NULL, NULL)))
        abort();
    snprintf(p, sizeof p, "%s/sp.json", dir);
    write_sp(p);
    if (!(sp = tr_tok_load(p, NULL, NULL)))
        abort();
    unlink(p);
    snprintf(p, sizeof p, "%s/bl.json", dir);
    unlink(p);
    atexit(cleanup);
}

static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Any bytes as valid UTF-8, U+FFFD per invalid subpart: what decoding must give back. The
 * round trip of the byte-level tokenizer is the reference: its decode is lossless. */
static void check(tr_tok *tok, const uint8_t *data, size_t size, int sp_mode, char **bl_text,
                  size_t *bl_len)
{
    uint32_t *ids = NULL;
    size_t n = 0, len;
    char *out;
    if (tr_tok_encode(tok, (const char *)data, size, &ids, &n))
        return; /* out of memory */
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= tr_tok_vocab_size(tok))
            abort();
    if (tr_tok_decode(tok, ids, n, 0, &out, &len, NULL))
        abort();
    free(ids);
    if (!sp_mode) {
        *bl_text = out;
        *bl_len = len;
        return;
    }
    /* SentencePiece: the same text back, unless it held a U+2581 (decoded as a space) or an
     * added token (the text after one gets its own U+2581, as Hugging Face's does). */
    if (*bl_text && !contains(*bl_text, *bl_len, "\xe2\x96\x81") &&
        !contains(*bl_text, *bl_len, "<s>") && !contains(*bl_text, *bl_len, "</s>") &&
        (len != *bl_len || memcmp(out, *bl_text, len)))
        abort();
    free(out);
}

static void load_file(const uint8_t *data, size_t size)
{
    char p[128];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
    tr_tok *t = tr_tok_load(p, NULL, NULL);
    if (t) {
        static const char sample[] = "Hello  w\xc3\xb6rld\n\t<s>x\xff";
        uint32_t *ids = NULL;
        size_t n = 0, len;
        char *out;
        if (!tr_tok_encode_special(t, sample, sizeof sample - 1, &ids, &n)) {
            if (!tr_tok_decode(t, ids, n, 1, &out, &len, NULL))
                free(out);
            free(ids);
        }
        tr_tok_free(t);
    }
    unlink(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!bl)
        init();
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        load_file(data + 1, size - 1);
        return 0;
    }
    char *bl_text = NULL;
    size_t bl_len = 0;
    check(bl, data + 1, size - 1, 0, &bl_text, &bl_len);
    check(sp, data + 1, size - 1, 1, &bl_text, &bl_len);
    free(bl_text);
    return 0;
}
