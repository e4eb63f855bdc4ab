/* tok_bytes.h - GPT-2's bytes_to_unicode for tests that write byte-level tokenizer.json
 * vocabularies by hand (header-only, static). */
#ifndef TOK_BYTES_H
#define TOK_BYTES_H

/* The code point that stands for byte b, as NUL-terminated UTF-8 at out (room for 3). */
static inline void tok_byte_char(int b, char *out)
{
    int cp = b, extra = 0;
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    if (!printable) {
        for (int k = 0; k < b; k++)
            extra += !((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174);
        cp = 256 + extra;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

#endif
