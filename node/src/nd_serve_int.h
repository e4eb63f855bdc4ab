/* nd_serve_int.h - the state of `mutual serve`, shared by its files. One thread (the rpc
 * server loop's) owns all of it. */
#ifndef ND_SERVE_INT_H
#define ND_SERVE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "co_config.h"
#include "co_round.h"
#include "ho_gov.h"
#include "nd.h"
#include "rpc_server.h"

typedef struct { /* the global adapter as streamed to orgs: float32 LE, refcounted */
    int refs;
    uint8_t *data; /* (len) */
    size_t len;
    uint8_t sha[RPC_SHA256_BYTES];
} blob;

typedef struct {
    rpc_call *call;
    uint32_t org;
    uint64_t version;
    double checked; /* when its task was last asked for (also marks the org connected) */
    double since;   /* when the poll arrived: answered WAIT after poll_s */
} held;

typedef struct { /* protobuf message bytes of one org in the round in flight */
    uint64_t in, out;
} traffic;

typedef struct {
    nd_serve_opts o;
    co_config cfg;
    nd_model_spec spec;
    uint8_t cfg_hash[CO_HASH_BYTES];
    uint8_t ckpt_state[CO_HASH_BYTES]; /* co_checkpoint_state_hash of the checkpoint resumed */
    int resumed_ckpt;                  /* ckpt_state is set */
    tr_model *model; /* zero base + LoRA: the shape of the global, and the PEFT export */
    co_round *r;
    rpc_server *srv;
    int insecure;
    char *fedcfg;
    size_t fedcfg_len;
    blob *cur;
    blob *bundle; /* --charter: the release bundle of the last released round; NULL: none yet */
    held *held;
    size_t n_held, cap_held;
    traffic *traffic;                        /* (n_traffic) indexed by org id - 1 */
    size_t n_traffic, cap_traffic, cap_told; /* ids seen; room in traffic, told_done */
    uint8_t *told_done;                      /* (n_traffic) the org was given TASK_KIND_SHUTDOWN */
    ho_gov *gov;        /* --charter: the audit log and the charter's checks; NULL: none */
    uint64_t gov_round; /* the round whose TRAIN/EVAL tasks `tasked` records */
    uint32_t *tasked;   /* (n_tasked) org ids handed a task of gov_round: its cohort */
    size_t n_tasked, cap_tasked;
    int done;
    double done_at;
    int fatal;
    mu_diag fatal_diag;

    double chain_polled; /* --charter: when the chain file was last looked at (adoption) */
    char chain_seen[96]; /* its inode, size and mtime then */
} server;

/* nd_serve_rounds.c */
/* The traffic counters of org id (grown as needed), or NULL (id 0, out of memory). */
traffic *nd_srv_traffic_of(server *s, uint32_t id);
/* Adds protobuf bytes org id sent (in) and was sent (out) in the round in flight. */
void nd_srv_count(server *s, uint32_t id, size_t in, size_t out);
/* Drops a reference to a blob (rpc_call_stream_blob's release callback). */
void nd_srv_blob_release(void *ctx);
/* Makes the current blob from the global as it is now. MU_OK or MU_ERR_NOMEM. */
int nd_srv_blob_refresh(server *s);
/* Writes the current blob as DUMP/global-RRRRRR.f32 (test mode). */
int nd_srv_dump_global(server *s, uint64_t round, mu_diag *d);
/* A ROUND event: new blob, checkpoint (a failure stops the server), PEFT export, dump, the
 * round's JSON line on stdout. */
void nd_srv_on_round(server *s, const co_event *ev);

/* nd_serve_gov.c */
/* Opens the governance of --charter (ho_gov_open) once the checkpoint is resumed; MU_OK
 * without --charter. */
int nd_srv_gov_open(server *s, const uint8_t instance[8], mu_diag *d);
/* --resume-bundle: verifies the bundle against --charter's chain and writes its checkpoint and
 * audit log into the (checkpoint-less) checkpoint folder. MU_OK or a code with diag. */
int nd_srv_bundle_unpack(server *s, mu_diag *d);
/* With --charter, a checkpoint written under another training config (ckpt_hash) is resumed
 * when the members approved the change: a version of --charter's verified chain names
 * ckpt_hash and the head names this config (each version was signed by its parent's quorum for
 * the kinds it changes, change_config included). MU_OK, else MU_ERR_INVALID with diag unless
 * --accept-config-change (then a warning). */
int nd_srv_gov_ckpt_config(server *s, const uint8_t ckpt_hash[CO_HASH_BYTES], mu_diag *d);
/* Notes that org `t->org_id` was handed task t (its cohort, for the round's entry). */
void nd_srv_gov_tasked(server *s, const co_task *t);
/* The governance fields of a push (witness, release signature): a countersigned head is
 * kept; a release that completes the charter's quorum is logged and the round exported. */
void nd_srv_gov_push(server *s, const char *name, const Mutual__V1__PushStageRequest *req);
/* --charter: MU_OK when member `name` may make this call: under TLS its certificate is the
 * roster's (ho_gov_cert_check), and it has not left (ho_gov_has_left); else answers the call
 * PERMISSION_DENIED, logs why and returns the code. MU_OK without --charter. */
int nd_srv_gov_check(server *s, rpc_call *call, const char *name, const char *what);
/* A governance push carrying org's leave notice: ho_gov_leave (logged now, or once the round
 * in flight ends); the member's held polls are ended and it is disconnected. Answers the
 * call: accepted, or the refusal (UNAUTHENTICATED for a forged notice). */
void nd_srv_gov_leave(server *s, const co_org *org, rpc_call *call, const uint8_t *b, size_t n);
/* About once a second: a chain file that changed is adopted (ho_gov_adopt); a version that
 * replaces this coordinator or its config stops it. */
void nd_srv_gov_tick(server *s, double now);
/* 1 unless the federation is governed and its last logged round is not released yet. */
int nd_srv_gov_settled(server *s);
/* The round's audit entry (ho_gov_on_round), before its checkpoint. MU_OK without --charter. */
int nd_srv_gov_round(server *s, const co_event *ev, mu_diag *d);

#endif
