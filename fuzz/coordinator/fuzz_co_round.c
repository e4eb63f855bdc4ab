/* co_fuzz_round.c - libFuzzer target: untrusted messages into a live round.
 *
 * Each input builds a 3-org coordinator and brings it to the training phase or (input byte 0
 * odd) to the first secure-aggregation stage; byte 1 picks the sender (ids 0..4, so
 * unregistered ones too) and the rest is one message. The coordinator must accept or reject
 * it without crashing, and then still answer pulls and end the round cleanly. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "co_round.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static float a[4] = {1, 2, 3, 4};
    co_tensor t = {.name = "w", .ndim = 1, .shape = {4}, .data = a};
    co_config cfg;
    co_config_default(&cfg);
    cfg.min_orgs = 3;
    cfg.wait_s = 0;
    mu_diag d;
    co_round *r = co_round_new(&cfg, &t, 1, &d);
    if (!r)
        abort();
    uint32_t ids[3];
    for (int i = 0; i < 3; i++) {
        uint8_t pk[32], sk[64], seed[32] = {(uint8_t)(i + 1)};
        crypto_sign_seed_keypair(pk, sk, seed);
        char name[8] = {'o', (char)('a' + i), 0};
        if (co_round_register(r, name, pk, &ids[i], &d) != MU_OK)
            abort();
        co_task task;
        co_round_next_task(r, ids[i], 0, &task);
    }
    co_round_tick(r, 0);
    if (data[0] & 1) {
        for (int i = 0; i < 3; i++) {
            co_report rep = {CO_REPORT_READY, 1};
            uint8_t b[CO_REPORT_BYTES];
            co_report_encode(&rep, b);
            if (co_round_on_message(r, ids[i], b, sizeof b, 0, &d) != MU_OK)
                abort();
        }
    }
    co_round_on_message(r, data[1] % 5, data + 2, size - 2, 1, &d);
    co_task task;
    for (uint32_t id = 1; id <= 3; id++)
        if (co_round_next_task(r, id, 1, &task) != MU_OK)
            abort();
    co_status st;
    co_round_status(r, 1, &st);
    co_round_tick(r, 1e9); /* every deadline passes: the round ends cleanly */
    co_event ev;
    while (co_round_poll_event(r, &ev))
        ;
    co_round_free(r);
    return 0;
}
