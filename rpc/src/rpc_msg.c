/* rpc_msg.c - decoding and validating mutual.v1 messages.
 *
 * protobuf-c checks the wire format only; the rules here are what a message must also
 * satisfy before protocol code sees it: api_version set, names and strings bounded and
 * valid UTF-8, keys and hashes of their exact size, chunk offsets inside their total. */
#include <stdlib.h>
#include <string.h>

#include "mu_log.h"
#include "rpc.h"
#include "rpc_certs.h"
#include "wi_org.h"

/* Returns nonzero if s[0..n) is well-formed UTF-8 without NUL or overlong forms. */
static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            k = 1, min = 0x80, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0)
            k = 2, min = 0x800, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0)
            k = 3, min = 0x10000, c &= 0x07;
        else
            return 0;
        if (k >= n - i)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (p[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int check_str(const char *s, size_t max, const char *field, mu_diag *d)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s is %zu bytes, at most %zu allowed", field, n, max);
    if (!utf8_ok(s ? s : "", n))
        return mu_diag_set(d, MU_ERR_FORMAT, "%s is not valid UTF-8", field);
    return MU_OK;
}

static int check_version(uint32_t v, mu_diag *d)
{
    if (v == 0)
        return mu_diag_set(d, MU_ERR_FORMAT, "api_version is not set");
    if (v != RPC_API_VERSION)
        return mu_diag_set(d, MU_ERR_FORMAT, "api_version %u is not supported (this is %d)", v,
                           RPC_API_VERSION);
    return MU_OK;
}

static int check_len(size_t n, size_t want, const char *field, mu_diag *d)
{
    if (n != want)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s is %zu bytes, want %zu", field, n, want);
    return MU_OK;
}

/* A signature field: empty or exactly RPC_ED25519_SIG_BYTES. */
static int check_sig(size_t n, int required, const char *field, mu_diag *d)
{
    if (n == 0 && !required)
        return MU_OK;
    return check_len(n, RPC_ED25519_SIG_BYTES, field, d);
}

/* data of `n` bytes at `offset` inside `total`; empty only at the end. */
static int check_chunk(uint64_t offset, uint64_t total, size_t n, mu_diag *d)
{
    if (offset > total || n > total - offset)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "chunk [%llu, +%zu) lies outside the total of %llu bytes",
                           (unsigned long long)offset, n, (unsigned long long)total);
    if (n == 0 && offset != total)
        return mu_diag_set(d, MU_ERR_FORMAT, "empty chunk before the end of the data");
    return MU_OK;
}

static int nonzero(uint64_t v, const char *field, mu_diag *d)
{
    if (v == 0)
        return mu_diag_set(d, MU_ERR_FORMAT, "%s must be set (nonzero)", field);
    return MU_OK;
}

/* Unknown fields are kept for forward compatibility, but field number 0 does not exist:
 * protobuf-c accepts it when the tag is encoded in more bytes than needed, and would then
 * send on a message that no parser (its own included) accepts. */
static int check_unknown(const ProtobufCMessage *msg, mu_diag *d)
{
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag == 0)
            return mu_diag_set(d, MU_ERR_FORMAT, "%s has a field number 0", msg->descriptor->name);
    return MU_OK;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
    } while (0)

static int validate_join_request(const Mutual__V1__JoinRequest *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    if (!rpc_certs_name_ok(m->org_name))
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "org_name must be 1-%d of [A-Za-z0-9._-], not starting with . or -",
                           CO_ORG_NAME_MAX - 1);
    TRY(check_len(m->signing_public_key.len, RPC_ED25519_PK_BYTES, "signing_public_key", d));
    return check_str(m->software_version, RPC_VERSION_STR_MAX, "software_version", d);
}

static int validate_join_reply(const Mutual__V1__JoinReply *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    TRY(nonzero(m->org_id, "org_id", d));
    return check_str(m->federation_name, RPC_NAME_MAX, "federation_name", d);
}

static int validate_task(const Mutual__V1__Task *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    if (m->kind < MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT ||
        m->kind > MUTUAL__V1__TASK_KIND__TASK_KIND_SHUTDOWN)
        return mu_diag_set(d, MU_ERR_FORMAT, "task kind %d is not known", (int)m->kind);
    if (m->kind == MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE && m->stage == 0)
        return mu_diag_set(d, MU_ERR_FORMAT, "a secure-agg stage task needs stage >= 1");
    if ((m->kind == MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND ||
         m->kind == MUTUAL__V1__TASK_KIND__TASK_KIND_EVAL_ROUND ||
         m->kind == MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE) &&
        m->round == 0)
        return mu_diag_set(d, MU_ERR_FORMAT, "a round task needs round >= 1");
    return MU_OK;
}

static int validate_push(const Mutual__V1__PushStageRequest *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    TRY(nonzero(m->org_id, "org_id", d));
    TRY(nonzero(m->round, "round", d));
    TRY(nonzero(m->stage, "stage", d));
    return check_sig(m->signature.len, 1, "signature", d);
}

static int validate_adapter_chunk(const Mutual__V1__AdapterChunk *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    TRY(check_len(m->sha256.len, RPC_SHA256_BYTES, "sha256", d));
    return check_chunk(m->offset, m->total, m->data.len, d);
}

static int validate_upload_chunk(const Mutual__V1__UploadMaskedChunk *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    TRY(nonzero(m->org_id, "org_id", d));
    TRY(nonzero(m->round, "round", d));
    TRY(nonzero(m->stage, "stage", d));
    TRY(check_len(m->sha256.len, RPC_SHA256_BYTES, "sha256", d));
    TRY(check_sig(m->signature.len, 0, "signature", d));
    return check_chunk(m->offset, m->total, m->data.len, d);
}

static int validate_status_reply(const Mutual__V1__StatusReply *m, mu_diag *d)
{
    TRY(check_version(m->api_version, d));
    if (m->last_round)
        TRY(check_unknown(&m->last_round->base, d));
    TRY(check_str(m->software_version, RPC_VERSION_STR_MAX, "software_version", d));
    TRY(check_str(m->stage, RPC_REASON_MAX, "stage", d));
    return check_str(m->federation_name, RPC_NAME_MAX, "federation_name", d);
}

int rpc_msg_validate(const ProtobufCMessage *msg, mu_diag *d)
{
    const ProtobufCMessageDescriptor *t = msg->descriptor;
    TRY(check_unknown(msg, d));
    if (t == &mutual__v1__join_request__descriptor)
        return validate_join_request((const void *)msg, d);
    if (t == &mutual__v1__join_reply__descriptor)
        return validate_join_reply((const void *)msg, d);
    if (t == &mutual__v1__pull_task_request__descriptor) {
        const Mutual__V1__PullTaskRequest *m = (const void *)msg;
        TRY(check_version(m->api_version, d));
        return nonzero(m->org_id, "org_id", d);
    }
    if (t == &mutual__v1__task__descriptor)
        return validate_task((const void *)msg, d);
    if (t == &mutual__v1__push_stage_request__descriptor)
        return validate_push((const void *)msg, d);
    if (t == &mutual__v1__push_stage_reply__descriptor) {
        const Mutual__V1__PushStageReply *m = (const void *)msg;
        TRY(check_version(m->api_version, d));
        return check_str(m->reason, RPC_REASON_MAX, "reason", d);
    }
    if (t == &mutual__v1__download_adapter_request__descriptor) {
        const Mutual__V1__DownloadAdapterRequest *m = (const void *)msg;
        TRY(check_version(m->api_version, d));
        return nonzero(m->org_id, "org_id", d);
    }
    if (t == &mutual__v1__adapter_chunk__descriptor)
        return validate_adapter_chunk((const void *)msg, d);
    if (t == &mutual__v1__upload_masked_chunk__descriptor)
        return validate_upload_chunk((const void *)msg, d);
    if (t == &mutual__v1__upload_masked_reply__descriptor) {
        const Mutual__V1__UploadMaskedReply *m = (const void *)msg;
        TRY(check_version(m->api_version, d));
        return check_str(m->reason, RPC_REASON_MAX, "reason", d);
    }
    if (t == &mutual__v1__status_request__descriptor)
        return check_version(((const Mutual__V1__StatusRequest *)msg)->api_version, d);
    if (t == &mutual__v1__status_reply__descriptor)
        return validate_status_reply((const void *)msg, d);
    return mu_diag_set(d, MU_ERR_UNSUPPORTED, "%s is not a top-level mutual.v1 message", t->name);
}

ProtobufCMessage *rpc_msg_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                 size_t len, mu_diag *diag)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!m) {
        mu_diag_set(diag, MU_ERR_FORMAT, "%zu bytes are not a well-formed %s", len, desc->name);
        return NULL;
    }
    mu_diag local;
    if (rpc_msg_validate(m, diag ? diag : &local) != MU_OK) {
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

int rpc_msg_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return MU_ERR_NOMEM;
    *len = protobuf_c_message_pack(msg, buf);
    *out = buf;
    return MU_OK;
}
