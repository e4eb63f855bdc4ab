/* rpc_fuzz.h - what every mutual.v1 decoder's fuzz target checks.
 *
 * rpc_msg_decode (protobuf-c unpack + our validation) must never crash or leak on any
 * input; a message it accepts must pack again and decode again to the same bytes. */
#ifndef MU_RPC_FUZZ_H
#define MU_RPC_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

static inline void rpc_fuzz_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                   size_t size)
{
    mu_diag d;
    ProtobufCMessage *m = rpc_msg_decode(desc, data, size, &d);
    if (!m)
        return;
    uint8_t *buf, *buf2;
    size_t len, len2;
    if (rpc_msg_pack(m, &buf, &len) != MU_OK)
        abort();
    ProtobufCMessage *again = rpc_msg_decode(desc, buf, len, &d);
    if (!again)
        abort(); /* we accepted it once: its canonical form must be accepted too */
    if (rpc_msg_pack(again, &buf2, &len2) != MU_OK || len2 != len || memcmp(buf, buf2, len))
        abort();
    free(buf2);
    protobuf_c_message_free_unpacked(again, NULL);
    free(buf);
    protobuf_c_message_free_unpacked(m, NULL);
}

#endif
