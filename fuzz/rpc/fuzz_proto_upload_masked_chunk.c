/* fuzz_proto_upload_masked_chunk.c - mutual.v1.UploadMaskedChunk from hostile bytes (the
 * coordinator decodes it from an org). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__upload_masked_chunk__descriptor, data, size);
    return 0;
}
