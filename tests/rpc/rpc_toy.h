/* rpc_toy.h - a toy coordinator for the rpc tests: a handler for every method, run by an
 * rpc_server on its own thread.
 *
 * Join answers org_id 7 and puts the caller's identity (rpc_call_peer) in federation_name
 * (org "fingerprint": its certificate's rpc_call_peer_fingerprint in hex);
 * org "refused" gets PERMISSION_DENIED, org "bad-reply" a reply with org_id 0. PullTask holds the
 * call: org 1 is answered TRAIN_ROUND by the tick after hold_s; org 2 waits for toy_release_polls
 * (posted from another thread); org 3 is answered WAIT by the tick 0.3 s before the call's
 * deadline; any other org is never answered (until the client gives up). PushStage accepts a
 * non-empty payload. DownloadAdapter streams `blob`. UploadMasked checks the toy pattern
 * and a 64-byte signature; streams of org 13 are refused on their first chunk. Status
 * answers fixed values (see rpc_toy.c). */
#ifndef MU_RPC_TOY_H
#define MU_RPC_TOY_H

#include <pthread.h>
#include <stdatomic.h>

#include "rpc_server.h"

#define TOY_MAX_HELD 64

typedef struct {
    rpc_server *srv;
    pthread_t thread;
    double hold_s; /* how long org 1's poll is held */
    /* held polls, server thread only */
    rpc_call *held[TOY_MAX_HELD];
    uint64_t held_org[TOY_MAX_HELD];
    double held_since[TOY_MAX_HELD];
    /* the adapter DownloadAdapter streams */
    uint8_t *blob;
    size_t blob_len;
    uint8_t blob_sha[RPC_SHA256_BYTES];
    /* counters the tests read from their own thread */
    atomic_int ticks, cancelled, releases, uploads, joins;
} toy;

/* Byte i of the toy pattern (what uploads must carry). */
static inline uint8_t toy_byte(size_t i)
{
    return (uint8_t)(i * 131u + (i >> 12));
}

/* Fills a buffer with the toy pattern. */
void toy_fill(uint8_t *p, size_t n);

/* Starts the server of `cfg` with the toy handlers on a new thread. Returns 0 or fails the
 * test. blob_len: size of the adapter served. */
void toy_start(toy *t, const rpc_server_config *cfg, size_t blob_len);

/* Stops the server, joins its thread and frees everything. */
void toy_stop(toy *t);

/* From any thread: answers org 2's held polls (with a SECAGG_STAGE task), via
 * rpc_server_post. */
void toy_release_polls(toy *t);

/* Waits up to `seconds` for *counter >= want; returns the last value seen. */
int toy_wait_counter(atomic_int *counter, int want, double seconds);

#endif
