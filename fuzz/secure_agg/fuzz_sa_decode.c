/* fuzz_sa_decode - the secure_agg wire decoder and the state machines' front doors on
 * untrusted bytes. Checks: no crash or sanitizer report; a decoded message re-encodes to the
 * same bytes; a client and a server refuse what they cannot use without changing stage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sa.h"
#include "sa_msg.h"

#include <sodium.h>

static uint32_t ids[3] = {1, 2, 3};
static uint8_t pks[3][32], sks[3][64];
static sa_config cfg;
static uint8_t *keys_msg; /* a genuine KEYS for the deterministic clients below */
static size_t keys_len;

/* Client i with a fixed seed: the same key pairs on every run. */
static sa_client *make_client(int i, sa_rng_seeded *st)
{
    uint8_t seed[32] = {(uint8_t)(0x40 + i)};
    sa_rng_seeded_init(st, seed);
    sa_rng r = sa_rng_from_seeded(st);
    return sa_client_new(&cfg, ids[i], sks[i], &r, NULL);
}

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    if (sa_init())
        abort();
    for (int i = 0; i < 3; i++) {
        uint8_t seed[32] = {(uint8_t)(i + 1)};
        crypto_sign_seed_keypair(pks[i], sks[i], seed);
    }
    cfg = (sa_config){.round_id = 7,
                      .n = 3,
                      .org_ids = ids,
                      .sign_pks = (const uint8_t(*)[32])pks,
                      .d = 5,
                      .bits = 12,
                      .k = 2,
                      .t = 2};
    /* one genuine stage 1, to mutate its KEYS */
    sa_server *s = sa_server_new(&cfg, NULL);
    sa_outbox ob;
    sa_outbox_init(&ob);
    for (int i = 0; i < 3; i++) {
        sa_rng_seeded st;
        sa_client *c = make_client(i, &st);
        if (!s || !c || sa_client_start(c, &ob, NULL) ||
            sa_server_handle(s, ids[i], ob.items[0].bytes, ob.items[0].len, NULL, NULL))
            abort();
        sa_outbox_clear(&ob);
        sa_client_free(c);
    }
    if (sa_server_close_stage(s, SA_STAGE_ADVERTISE, &ob, NULL) || ob.count != 1)
        abort();
    keys_len = ob.items[0].len;
    keys_msg = malloc(keys_len);
    memcpy(keys_msg, ob.items[0].bytes, keys_len);
    sa_outbox_deinit(&ob);
    sa_server_free(s);
}

/* Input starting with 'K': XOR the rest into a genuine KEYS (truncated or extended to the
 * input's length) and hand it to client 1, whose own keys are in it. */
static void fuzz_keys(const uint8_t *data, size_t size)
{
    size_t len = size - 1 > keys_len ? size - 1 : keys_len;
    if (size - 1 > 0 && data[1] == 'T')
        len = (size - 1) % (keys_len + 1); /* truncations */
    uint8_t *buf = calloc(len ? len : 1, 1);
    memcpy(buf, keys_msg, len < keys_len ? len : keys_len);
    for (size_t i = 1; i < size && i - 1 < len; i++)
        buf[i - 1] ^= data[i];
    sa_rng_seeded st;
    sa_client *c = make_client(0, &st);
    sa_outbox ob;
    sa_outbox_init(&ob);
    if (!c || sa_client_start(c, &ob, NULL))
        abort();
    sa_outbox_clear(&ob);
    int rc = sa_client_handle(c, buf, len, &ob, NULL);
    if (size == 1 && rc != MU_OK) /* the unmodified KEYS must be accepted */
        abort();
    if (rc == MU_OK && (sa_client_stage(c) != SA_STAGE_MASKED || ob.count != 1))
        abort();
    if (rc != MU_OK && ob.count != 0)
        abort();
    sa_outbox_deinit(&ob);
    sa_client_free(c);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size >= 1 && data[0] == 'K') {
        fuzz_keys(data, size);
        return 0;
    }
    sa_msg m;
    if (sa_msg_decode(&m, data, size, NULL) == MU_OK) {
        uint8_t *again;
        size_t len;
        if (sa_msg_encode_alloc(&m, &again, &len) != MU_OK || len != size ||
            memcmp(again, data, size) != 0)
            abort();
        free(again);
        sa_msg_deinit(&m);
    }
    sa_msg_type type;
    uint32_t org;
    (void)sa_msg_peek(data, size, &type, &org);

    /* a server in stage 1 and a started client waiting for KEYS */
    sa_server *s = sa_server_new(&cfg, NULL);
    sa_client *c = sa_client_new(&cfg, 1, sks[0], NULL, NULL);
    sa_outbox ob;
    sa_outbox_init(&ob);
    if (!s || !c || sa_client_start(c, &ob, NULL) != MU_OK)
        abort();
    sa_outbox_clear(&ob);
    (void)sa_server_handle(s, 1, data, size, &ob, NULL);
    if (sa_server_stage(s) != SA_STAGE_ADVERTISE)
        abort();
    int rc = sa_client_handle(c, data, size, &ob, NULL);
    /* only a KEYS carrying valid signatures from this cohort could move the client on */
    if (rc == MU_OK && sa_client_stage(c) != SA_STAGE_MASKED)
        abort();
    sa_outbox_deinit(&ob);
    sa_client_free(c);
    sa_server_free(s);
    return 0;
}
