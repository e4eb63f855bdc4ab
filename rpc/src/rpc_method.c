/* rpc_method.c - the method table of mutual.v1.Coordinator and status-code mappings. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "rpc.h"

static const rpc_method_info methods[RPC_METHOD_COUNT] = {
    [RPC_JOIN] = {"/mutual.v1.Coordinator/Join", RPC_UNARY, &mutual__v1__join_request__descriptor,
                  &mutual__v1__join_reply__descriptor},
    [RPC_PULL_TASK] = {"/mutual.v1.Coordinator/PullTask", RPC_UNARY,
                       &mutual__v1__pull_task_request__descriptor, &mutual__v1__task__descriptor},
    [RPC_PUSH_STAGE] = {"/mutual.v1.Coordinator/PushStage", RPC_UNARY,
                        &mutual__v1__push_stage_request__descriptor,
                        &mutual__v1__push_stage_reply__descriptor},
    [RPC_DOWNLOAD_ADAPTER] = {"/mutual.v1.Coordinator/DownloadAdapter", RPC_SERVER_STREAMING,
                              &mutual__v1__download_adapter_request__descriptor,
                              &mutual__v1__adapter_chunk__descriptor},
    [RPC_UPLOAD_MASKED] = {"/mutual.v1.Coordinator/UploadMasked", RPC_CLIENT_STREAMING,
                           &mutual__v1__upload_masked_chunk__descriptor,
                           &mutual__v1__upload_masked_reply__descriptor},
    [RPC_STATUS] = {"/mutual.v1.Coordinator/Status", RPC_UNARY,
                    &mutual__v1__status_request__descriptor, &mutual__v1__status_reply__descriptor},
};

const rpc_method_info *rpc_method_get(rpc_method m)
{
    if ((unsigned)m >= RPC_METHOD_COUNT)
        abort(); /* a programming error, not a peer's */
    return &methods[m];
}

int rpc_method_find(const char *path, size_t len)
{
    for (int i = 0; i < RPC_METHOD_COUNT; i++)
        if (strlen(methods[i].path) == len && !memcmp(methods[i].path, path, len))
            return i;
    return -1;
}

int rpc_err_from_status(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return MU_OK;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return MU_ERR_TIMEOUT;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_CANCELLED:
        return MU_ERR_IO;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return MU_ERR_FORMAT;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return MU_ERR_INVALID;
    case GRPC_STATUS_UNIMPLEMENTED:
        return MU_ERR_UNSUPPORTED;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        return MU_ERR_CRYPTO;
    case GRPC_STATUS_FAILED_PRECONDITION:
        return MU_ERR_STATE;
    case GRPC_STATUS_NOT_FOUND:
        return MU_ERR_NOTFOUND;
    case GRPC_STATUS_ABORTED:
        return MU_ERR_ABORT;
    default:
        return MU_ERR_PROTOCOL;
    }
}

grpc_status_code rpc_status_from_err(int err)
{
    switch (err) {
    case MU_OK:
        return GRPC_STATUS_OK;
    case MU_ERR_NOMEM:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case MU_ERR_IO:
        return GRPC_STATUS_UNAVAILABLE;
    case MU_ERR_FORMAT:
    case MU_ERR_INVALID:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case MU_ERR_CRYPTO:
        return GRPC_STATUS_PERMISSION_DENIED;
    case MU_ERR_PROTOCOL:
    case MU_ERR_STATE:
        return GRPC_STATUS_FAILED_PRECONDITION;
    case MU_ERR_ABORT:
        return GRPC_STATUS_ABORTED;
    case MU_ERR_TIMEOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case MU_ERR_UNSUPPORTED:
        return GRPC_STATUS_UNIMPLEMENTED;
    case MU_ERR_NOTFOUND:
        return GRPC_STATUS_NOT_FOUND;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

const char *rpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((unsigned)code < sizeof names / sizeof names[0])
        return names[code];
    return "UNKNOWN_STATUS";
}

void rpc_sha256(const uint8_t *data, size_t len, uint8_t out[RPC_SHA256_BYTES])
{
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != RPC_SHA256_BYTES)
        abort(); /* SHA-256 of memory cannot fail short of a broken libcrypto */
}
