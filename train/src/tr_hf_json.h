/* tr_hf_json.h - private: typed reads of a small JSON config file (config.json,
 * adapter_config.json) with errors naming the file and key. */
#ifndef TR_HF_JSON_H
#define TR_HF_JSON_H

#include <jansson.h>

#include "mu_err.h"

typedef struct {
    char path[4096];
    json_t *root; /* an object */
    mu_diag *diag;
} tr_json;

/* Loads DIR/FILE (at most 1 MiB, duplicate keys refused). */
int tr_json_load(tr_json *j, const char *dir, const char *file, mu_diag *diag);
void tr_json_free(tr_json *j);

/* Absent or null keys: error if required, else 0 with *out untouched. */
int tr_json_int(const tr_json *j, const char *key, int required, long min, long max, int *out);
int tr_json_num(const tr_json *j, const char *key, int required, double min, double max,
                float *out);
int tr_json_bool(const tr_json *j, const char *key, int *out);
/* The string value of key, or NULL if absent or not a string. */
const char *tr_json_str(const tr_json *j, const char *key);

#endif
