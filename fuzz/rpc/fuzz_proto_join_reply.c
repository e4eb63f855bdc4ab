/* fuzz_proto_join_reply.c - mutual.v1.JoinReply from hostile bytes (an org decodes it from the
 * coordinator). */
#include "rpc_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_fuzz_decode(&mutual__v1__join_reply__descriptor, data, size);
    return 0;
}
