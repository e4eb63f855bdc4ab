/* wi_json.h - a growable string and the JSON pieces written into it (strings escaped, numbers
 * that JSON can hold). No jansson, no I/O: the caller writes the bytes where it wants.
 *
 * Errors are sticky: after an allocation fails every later append does nothing and returns
 * MU_ERR_NOMEM, so a caller may append many pieces and check once (wi_str_ok). */
#ifndef WI_JSON_H
#define WI_JSON_H

#include <stddef.h>

#include "mu_err.h"

typedef struct {
    char *s;    /* NUL-terminated once anything was appended; NULL before */
    size_t len; /* bytes before the NUL */
    size_t cap;
    int err; /* MU_OK or the first error */
} wi_str;

void wi_str_init(wi_str *b);
void wi_str_deinit(wi_str *b); /* frees; NULL-safe */
void wi_str_clear(wi_str *b);  /* empties it and forgets an error, keeps the memory */
/* The status of every append so far: MU_OK or MU_ERR_NOMEM. */
int wi_str_ok(const wi_str *b);

/* printf-style append. */
int wi_str_printf(wi_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s as a JSON string: quoted; '"', '\\' and control characters escaped; bytes that
 * are not valid UTF-8 become U+FFFD, so the output is always valid JSON. s NULL: `null`. */
int wi_str_json_string(wi_str *b, const char *s);

/* Appends v with 9 significant digits, or `null` when it is NaN or infinite. */
int wi_str_json_number(wi_str *b, double v);

#endif
