/* fuzz_proto_download_adapter_request.c - mutual.v1.DownloadAdapterRequest from hostile bytes (the
 * coordinator decodes it from an org). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__download_adapter_request__descriptor, data, size);
    return 0;
}
