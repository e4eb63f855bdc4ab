/* fuzz_ho_bundle.c - libFuzzer target: untrusted bytes into the release bundle's framing
 * decoder (a member downloads bundles from the coordinator). A bundle that decodes must encode
 * back to the same bytes, and its sections must lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ho_bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ho_bundle b;
    mu_diag d;
    if (ho_bundle_decode(&b, data, size, &d) != MU_OK)
        return 0;
    const uint8_t *end = data + size;
    if ((b.ckpt_len && (b.ckpt < data || b.ckpt + b.ckpt_len > end)) ||
        (b.log_len && (b.log < data || b.log + b.log_len > end)) ||
        (b.chain_len && (b.chain < data || b.chain + b.chain_len > end)))
        abort(); /* a section outside the input */
    uint8_t *again = NULL;
    size_t len = 0;
    if (ho_bundle_encode(b.round, b.ckpt, b.ckpt_len, b.log, b.log_len, b.chain, b.chain_len,
                         &again, &len, &d) != MU_OK)
        abort();
    if (len != size || memcmp(again, data, size) != 0)
        abort(); /* decode and encode disagree */
    free(again);
    return 0;
}
