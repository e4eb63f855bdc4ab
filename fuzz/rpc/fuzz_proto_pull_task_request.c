/* fuzz_proto_pull_task_request.c - mutual.v1.PullTaskRequest from hostile bytes (the coordinator
 * decodes it from an org). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__pull_task_request__descriptor, data, size);
    return 0;
}
