/* fuzz_gv_decode.c - libFuzzer target: untrusted bytes into every governance decoder (each
 * checks its own magic, so one input reaches all), countersigned heads and leave notices included.
 * What decodes must encode back to the same bytes (one encoding per value: the charter's hash is
 * its identity), and a decoded log and chain go through verification and the witness check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gv_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_bytes(int rc, uint8_t *b, size_t n, const uint8_t *data, size_t size)
{
    if (rc != MU_OK || n != size || memcmp(b, data, size) != 0)
        abort(); /* decode and encode disagree */
    free(b);
}

static void fuzz_charter(const uint8_t *data, size_t size)
{
    static gv_charter c;
    static gv_signed s;
    uint8_t *b = NULL;
    size_t n = 0;
    if (gv_charter_decode(&c, data, size, NULL) == MU_OK) {
        int rc = gv_charter_encode(&c, &b, &n, NULL);
        same_bytes(rc, b, n, data, size);
    }
    if (gv_signed_decode(&s, data, size, NULL) == MU_OK) {
        {
            int rc = gv_signed_encode(&s, &b, &n, NULL);
            same_bytes(rc, b, n, data, size);
        }
        (void)gv_chain_verify(&s, 1, NULL, NULL);
    }
}

static void fuzz_log(const uint8_t *data, size_t size)
{
    static gv_entry e;
    uint8_t *b = NULL;
    size_t n = 0;
    if (gv_entry_decode(&e, data, size, NULL) == MU_OK) {
        int rc = gv_entry_encode(&e, &b, &n, NULL);
        same_bytes(rc, b, n, data, size);
    }
    gv_signed *chain = NULL;
    size_t n_chain = 0;
    if (gv_chain_decode(&chain, &n_chain, data, size, NULL) == MU_OK) {
        (void)gv_chain_verify(chain, n_chain, NULL, NULL);
        free(chain);
    }
    gv_witness w;
    if (gv_witness_decode(&w, data, size, NULL) == MU_OK) {
        uint8_t out[GV_WITNESS_BYTES];
        gv_witness_encode(&w, out);
        if (memcmp(out, data, size) != 0)
            abort();
    }
    gv_leave l;
    if (gv_leave_decode(&l, data, size, NULL) == MU_OK) {
        int rc = gv_leave_encode(&l, &b, &n, NULL);
        same_bytes(rc, b, n, data, size);
    }
    gv_log *log = NULL;
    if (gv_log_decode(&log, data, size, NULL) == MU_OK) {
        {
            int rc = gv_log_encode(log, &b, &n, NULL);
            same_bytes(rc, b, n, data, size);
        }
        memset(&w, 0, sizeof w);
        (void)gv_witness_check(&w, log, NULL);
        gv_log_free(log);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_charter(data, size);
    fuzz_log(data, size);
    return 0;
}
