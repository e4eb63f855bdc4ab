/* fuzz_proto_push_stage_request.c - mutual.v1.PushStageRequest from hostile bytes (the coordinator
 * decodes it from an org). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__push_stage_request__descriptor, data, size);
    return 0;
}
