/* fuzz_safetensors.c - the safetensors reader on arbitrary bytes: it must refuse or accept
 * without reading outside the buffer, and whatever it accepts must convert cleanly. */
#include <stdint.h>
#include <stdlib.h>

#include "tr_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mu_diag d;
    tr_st *st = tr_st_parse("fuzz", data, size, NULL, &d);
    if (!st)
        return 0;
    for (size_t i = 0; i < tr_st_count(st); i++) {
        const tr_st_info *t = tr_st_at(st, i);
        if (t->numel > (1u << 20))
            continue;
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (out)
            tr_st_read_f32(st, t, out, t->numel, &d);
        free(out);
    }
    tr_st_metadata(st, "format");
    tr_st_free(st);
    return 0;
}
