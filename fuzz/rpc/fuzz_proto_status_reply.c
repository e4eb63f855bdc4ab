/* fuzz_proto_status_reply.c - mutual.v1.StatusReply from hostile bytes (an org decodes it from the
 * coordinator). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__status_reply__descriptor, data, size);
    return 0;
}
