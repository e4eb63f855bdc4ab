/* fuzz_proto_adapter_chunk.c - mutual.v1.AdapterChunk from hostile bytes (an org decodes it from
 * the coordinator). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__adapter_chunk__descriptor, data, size);
    return 0;
}
