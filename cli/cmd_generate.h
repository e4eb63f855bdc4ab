/* cmd_generate.h - what cmd_generate.c (options, the generation loop) takes from
 * cmd_generate_model.c (what the model folder says: stop ids, sampling defaults) and
 * cmd_generate_out.c (the text as it streams) for `mutual generate`. Private to the CLI. */
#ifndef MU_CMD_GENERATE_H
#define MU_CMD_GENERATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mu_err.h"
#include "tr_generate.h"
#include "tr_tok.h"

#define GEN_MAX_EOS  64
#define GEN_MAX_STOP 8

/* What DIR's config.json, generation_config.json and tokenizer_config.json say about
 * generating. */
typedef struct {
    uint32_t eos[GEN_MAX_EOS]; /* every end-of-sequence id, each once */
    int n_eos;
    int do_sample; /* generation_config.json do_sample (absent: 0) */
    int has_temperature, has_top_p, has_top_k;
    tr_sample_config sample;   /* its temperature, top_p, top_k where given */
    double repetition_penalty; /* 1 when absent */
} gen_model_info;

/* Reads the stop ids and sampling fields of the model folder `dir`: eos_token_id (an
 * integer or a list) of config.json and generation_config.json (each optional), plus the
 * tokenizer's eos_token (tr_tok_eos_id). MU_ERR_FORMAT naming the file and key for bad JSON
 * or a mistyped value, MU_ERR_INVALID for an id outside [0, V). */
int gen_model_info_load(const char *dir, const tr_tok *tok, int V, gen_model_info *info,
                        mu_diag *d);

/* The generated text as it streams: ids are appended one by one; the text of those with
 * text (decoded together, special tokens skipped) is written to `out` (NULL: nothing is
 * written) as far as it is final: never half a UTF-8 sequence, never the start of what may
 * become a stop string. Bytes that are not UTF-8 (a model may sample byte tokens in any
 * order) are written as U+FFFD, one per maximal invalid subpart (tr_utf8_sanitize), as soon
 * as a later byte shows them invalid; a character still cut when the text ends is one U+FFFD
 * at gen_stream_finish. So every write is whole UTF-8, and the writes together are the
 * sanitized decode of every pushed id (cut before a stop string). */
typedef struct {
    const tr_tok *tok;
    FILE *out;
    const char *const *stops; /* n_stop NUL-terminated strings, none empty */
    int n_stop;
    uint32_t *text_ids; /* (cap) the ids decoded for the text */
    size_t n_text, cap;
    char *text; /* the decoded text so far (len bytes, valid UTF-8), cut before a stop string */
    size_t len, printed;
    size_t pending;  /* bytes of a cut character at the decode's end, not in text yet */
    int stopped;     /* a stop string was found */
    int warned_gaps; /* an id without text was met (warned once) */
} gen_stream;

/* cap: the most ids that will be pushed. MU_ERR_NOMEM. */
int gen_stream_init(gen_stream *s, const tr_tok *tok, FILE *out, const char *const *stops,
                    int n_stop, size_t cap);
void gen_stream_deinit(gen_stream *s);
/* Appends id (its text, if it has any in the tokenizer) and writes what became final.
 * Sets s->stopped when the text now contains a stop string (the text is cut before it).
 * MU_ERR_NOMEM, MU_ERR_IO (a write failed). */
int gen_stream_push(gen_stream *s, uint32_t id, mu_diag *d);
/* Writes whatever is left: a stop prefix that never completed, and a character the text
 * ends inside as U+FFFD. */
int gen_stream_finish(gen_stream *s, mu_diag *d);

#endif
