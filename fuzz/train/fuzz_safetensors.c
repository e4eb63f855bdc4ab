/* fuzz_safetensors.c - the safetensors reader on arbitrary bytes: it must refuse or accept
 * without reading outside the buffer; whatever it accepts must convert cleanly, and an
 * accepted all-F32 file must survive a write and re-read with the same names and values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tr_safetensors.h"

#define MAX_ELEMS (1u << 20)

/* Re-serializes st (all F32 tensors, given their values) and checks the copy. */
static void round_trip(const tr_st *st, float **vals)
{
    size_t n = tr_st_count(st);
    tr_st_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        return;
    for (size_t i = 0; i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        e[i].name = t->name;
        e[i].ndim = t->ndim;
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
        e[i].data = vals[i];
    }
    uint8_t *img;
    size_t len;
    mu_diag d;
    if (tr_st_serialize(e, n, NULL, &img, &len, &d) == 0) {
        tr_st *again = tr_st_parse("again", img, len, NULL, &d);
        if (!again || tr_st_count(again) != n)
            abort();
        for (size_t i = 0; i < n; i++) {
            const tr_st_info *t = tr_st_find(again, e[i].name);
            float *v = t ? malloc((t->numel ? t->numel : 1) * sizeof *v) : NULL;
            if (!t || !v || tr_st_read_f32(again, t, v, t->numel, &d) ||
                memcmp(v, vals[i], t->numel * sizeof *v))
                abort();
            free(v);
        }
        tr_st_free(again);
        free(img);
    }
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mu_diag d;
    tr_st *st = tr_st_parse("fuzz", data, size, NULL, &d);
    if (!st)
        return 0;
    size_t n = tr_st_count(st);
    float **vals = calloc(n ? n : 1, sizeof *vals);
    int all_f32 = vals != NULL;
    for (size_t i = 0; vals && i < n; i++) {
        const tr_st_info *t = tr_st_at(st, i);
        all_f32 = all_f32 && t->dtype == TR_ST_F32 && t->numel <= MAX_ELEMS;
        if (t->numel > MAX_ELEMS)
            continue;
        vals[i] = malloc((t->numel ? t->numel : 1) * sizeof(float));
        if (vals[i] && tr_st_read_f32(st, t, vals[i], t->numel, &d))
            all_f32 = 0;
    }
    if (all_f32)
        round_trip(st, vals);
    for (size_t i = 0; vals && i < n; i++)
        free(vals[i]);
    free(vals);
    tr_st_metadata(st, "format");
    tr_st_free(st);
    return 0;
}
