/* sa_test_util.h - an in-process round driver for tests and the benchmark: n virtual orgs,
 * one server, messages passed as bytes, dropouts and a tamper hook on server->client
 * messages. */
#ifndef SA_TEST_UTIL_H
#define SA_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "sa.h"
#include "sa_msg.h"

typedef struct sa_world sa_world;

/* Called for each server->client message before delivery; may edit the bytes and length in place
 * (or replace the buffer with one from malloc) or return 0 to drop it. */
typedef int (*sa_tamper_fn)(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes,
                            size_t *len);

/* Sees every client->server message that is about to reach the server. */
typedef void (*sa_spy_fn)(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len);

/* A cheating org: may edit its own client->server message (bytes from malloc, may be replaced)
 * before the spy and the server see it. */
typedef void (*sa_upstream_fn)(sa_world *w, uint32_t from, sa_msg_type type, uint8_t **bytes,
                               size_t *len);

struct sa_world {
    uint32_t n, d, bits, k, t;
    uint32_t *ids;      /* (n) */
    uint8_t (*pks)[32]; /* (n) */
    uint8_t (*sks)[64]; /* (n) */
    sa_config cfg;
    sa_client **clients; /* (n) */
    sa_rng_seeded *rngs; /* (n) */
    sa_server *server;
    uint32_t **inputs;  /* (n, d) quantised inputs */
    int *drop_at;       /* (n) 0 = never; s = sends nothing from stage s on */
    int *late_at;       /* (n) 0 = never; s = its stage-s message arrives after close */
    int *client_rc;     /* (n) first error a client returned */
    int server_rejects; /* messages the server refused */
    int late_rc;        /* what the server said to the last late message */
    sa_tamper_fn tamper;
    void *tamper_ctx;
    sa_spy_fn spy;
    sa_upstream_fn upstream;
    int parallel; /* >1: clients handle a stage's messages on this many threads at once
                   * (no tamper hook then); the server still gets the replies in order */
    int client_threads, server_threads;
    sa_outbox held; /* late messages */
    uint32_t *held_from;
};

/* Ids are 1000 + 7*i (not contiguous, to catch index/id mix-ups). Inputs are random values
 * in [0, 2^bits) from `seed`. Returns MU_OK or the config error. */
int sa_world_init(sa_world *w, uint32_t n, uint32_t d, uint32_t bits, uint32_t k, uint32_t t,
                  uint64_t seed, mu_diag *diag);
void sa_world_free(sa_world *w);
/* Creates the clients (call after adjusting w->cfg if a test wants a bad config). */
int sa_world_make_clients(sa_world *w, mu_diag *diag);
/* Starts the clients (stage 1 messages to the server). */
int sa_world_start(sa_world *w);
/* Closes server stage `stage`, delivers its messages and the replies. Returns the close code. */
int sa_world_step(sa_world *w, sa_stage stage, mu_diag *diag);
/* make_clients + start + the five steps. Returns the first error. */
int sa_world_run(sa_world *w, mu_diag *diag);
/* The expected sum mod 2^bits over the server's survivors. */
void sa_world_expected(const sa_world *w, uint32_t *out);
/* Index of org id, or -1. */
int sa_world_index(const sa_world *w, uint32_t id);

#endif
