/* fuzz_nd_fedcfg.c - libFuzzer target: untrusted bytes into nd_fedcfg_decode (what an org reads
 * from JoinReply.federation_config). A config that decodes must encode and decode back to the
 * same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nd_fedcfg f, g;
    mu_diag d;
    if (nd_fedcfg_decode(data, size, &f, &d) != MU_OK)
        return 0;
    char *json = NULL;
    size_t len = 0;
    if (nd_fedcfg_encode(&f, &json, &len) != MU_OK)
        abort();
    if (nd_fedcfg_decode((const uint8_t *)json, len, &g, &d) != MU_OK ||
        memcmp(&f, &g, sizeof f) != 0)
        abort();
    free(json);
    return 0;
}
