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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
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
