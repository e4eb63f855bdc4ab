/* cmd_data.h - what cmd_data_chat.c (chat lines of a JSONL file) hands to cmd_data.c
 * (`mutual data import`). Private to the CLI. */
#ifndef MU_CMD_DATA_H
#define MU_CMD_DATA_H

#include <jansson.h>
#include <stddef.h>

#include "mu_err.h"
#include "tr_jinja.h"

/* Whether the JSONL object o is a chat line: it has "messages", "prompt" or "response". */
int data_is_chat(json_t *o);

/* The conversation of chat line o: "messages", a non-empty list of {"role", "content"}
 * (roles system, user, assistant; content a string without NUL bytes; no other keys), or
 * "prompt" and "response" strings (one user and one assistant turn) after an optional
 * "system" string. On MU_OK *msgs is malloc'd (*n entries) and points into o's strings: free
 * it, and keep o, while it is used. MU_ERR_FORMAT with "WHERE: what is wrong" in d, or
 * MU_ERR_NOMEM; *msgs NULL on error. */
int data_chat_msgs(json_t *o, const char *where, tr_chat_msg **msgs, size_t *n, mu_diag *d);

#endif
