/* co_fuzz_wire.c - libFuzzer target: untrusted bytes into the task and report decoders.
 * A task that decodes must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "co_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    co_task t;
    mu_diag d;
    if (co_task_decode(&t, data, size, &d) == MU_OK) {
        size_t len = co_task_encoded_len(&t), written = 0;
        uint8_t *buf = malloc(len ? len : 1);
        if (buf && (len != size || co_task_encode(&t, buf, len, &written) != MU_OK ||
                    written != size || memcmp(buf, data, size) != 0))
            abort(); /* decode and encode disagree */
        free(buf);
        co_task_deinit(&t);
    }
    co_report r;
    if (co_report_decode(&r, data, size) == MU_OK) {
        uint8_t b[CO_REPORT_BYTES];
        co_report_encode(&r, b);
        if (memcmp(b, data, CO_REPORT_BYTES) != 0)
            abort();
    }
    return 0;
}
