/* nd_serve_gov.c - `mutual serve --charter`: what the serve driver hands the host layer's
 * governance (ho_gov.h): its options, each task handed out (a round's cohort), each round. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "co_checkpoint.h"
#include "gv_store.h"
#include "ho_bundle.h"
#include "ho_coord.h"
#include "mu_file.h"
#include "mu_log.h"
#include "mu_progress.h"
#include "nd_serve_int.h"

#define BUNDLE_FILE "release.bundle" /* in the checkpoint folder: the last released round's */

int nd_srv_bundle_unpack(server *s, mu_diag *d)
{
    char path[ND_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", s->cfg.checkpoint_dir, CO_CHECKPOINT_FILE);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        return mu_diag_set(d, MU_ERR_INVALID,
                           "--resume-bundle: %s already holds a checkpoint; resume from it, or "
                           "give an empty checkpoint folder",
                           s->cfg.checkpoint_dir);
    }
    char *b = NULL;
    size_t len = 0;
    gv_signed *chain = NULL;
    size_t n = 0;
    uint64_t round = 0;
    mu_diag vd = {{0}};
    int rc = mu_read_file(s->o.resume_bundle, HO_BUNDLE_MAX, &b, &len, d);
    if (rc == MU_OK) /* the verifier's temporary folder goes there */
        rc = ho_mkdirs(s->cfg.checkpoint_dir, d);
    if (rc == MU_OK)
        rc = gv_chain_load(s->o.charter_path, &chain, &n, d);
    if (rc == MU_OK && (rc = ho_bundle_verify((const uint8_t *)b, len, chain, n,
                                              s->cfg.checkpoint_dir, &round, &vd)) != MU_OK)
        mu_diag_set(d, rc, "%s: the release bundle does not verify: %.400s", s->o.resume_bundle,
                    vd.msg);
    if (rc == MU_OK)
        rc = ho_bundle_unpack((const uint8_t *)b, len, s->cfg.checkpoint_dir, d);
    if (rc == MU_OK)
        mu_info("serve: the release bundle %s verifies (round %llu released by the members); "
                "starting from it",
                s->o.resume_bundle, (unsigned long long)round);
    free(b);
    free(chain);
    return rc;
}

int nd_srv_gov_ckpt_config(server *s, const uint8_t ckpt_hash[CO_HASH_BYTES], mu_diag *d)
{
    if (!memcmp(ckpt_hash, s->cfg_hash, CO_HASH_BYTES))
        return MU_OK;
    gv_signed *chain = NULL;
    size_t n = 0, from = SIZE_MAX;
    mu_diag why = {{0}};
    int rc = gv_chain_load(s->o.charter_path, &chain, &n, d);
    if (rc == MU_OK && (rc = gv_chain_verify(chain, n, NULL, &why)) != MU_OK)
        mu_diag_set(d, rc, "%s: %s", s->o.charter_path, why.msg);
    for (size_t i = 0; rc == MU_OK && i + 1 < n && from == SIZE_MAX; i++)
        if (!memcmp(chain[i].charter.training_hash, ckpt_hash, CO_HASH_BYTES))
            from = i;
    int head_ok =
        rc == MU_OK && !memcmp(chain[n - 1].charter.training_hash, s->cfg_hash, CO_HASH_BYTES);
    free(chain);
    if (rc != MU_OK)
        return rc;
    char have[2 * CO_HASH_BYTES + 1], want[2 * CO_HASH_BYTES + 1];
    co_hash_hex(ckpt_hash, 8, have);
    co_hash_hex(s->cfg_hash, 8, want);
    if (from != SIZE_MAX && head_ok) {
        mu_info("serve: the checkpoint was written under training config %s... (charter version "
                "%zu); the members' chain changed it to this config %s... (version %zu)",
                have, from + 1, want, n);
        return MU_OK;
    }
    if (s->o.accept_config_change) {
        mu_warn("serve: the checkpoint was written under training config %s..., which no earlier "
                "charter version names; resuming under %s... anyway as asked",
                have, want);
        return MU_OK;
    }
    return mu_diag_set(d, MU_ERR_INVALID,
                       "%s/%s: written under training config %s..., which no earlier version of "
                       "%s names: refusing to resume under %s... (a config change needs the "
                       "members' change_config quorum; --accept-config-change overrides)",
                       s->cfg.checkpoint_dir, CO_CHECKPOINT_FILE, have, s->o.charter_path, want);
}

static void set_bundle(server *s, uint8_t *bytes, size_t len)
{
    blob *b = calloc(1, sizeof *b);
    if (!b) {
        free(bytes);
        return;
    }
    b->refs = 1;
    b->data = bytes;
    b->len = len;
    crypto_hash_sha256(b->sha, bytes, len);
    nd_srv_blob_release(s->bundle);
    s->bundle = b;
}

/* The members released `round`: its bundle (checkpoint, log, chain), checked as a member
 * would check it, saved as CHECKPOINT_DIR/release.bundle and offered for download. */
static void make_bundle(server *s, uint64_t round)
{
    mu_diag d = {{0}};
    const uint8_t *log = NULL;
    size_t log_len = 0, len = 0, n = 0;
    uint8_t *b = NULL;
    gv_signed *chain = NULL;
    char path[ND_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", s->cfg.checkpoint_dir, BUNDLE_FILE);
    int rc = ho_gov_log_bytes(s->gov, &log, &log_len, &d);
    if (rc == MU_OK)
        rc = ho_bundle_make(s->cfg.checkpoint_dir, s->o.charter_path, round, log, log_len, &b, &len,
                            &d);
    if (rc == MU_OK)
        rc = gv_chain_load(s->o.charter_path, &chain, &n, &d);
    if (rc == MU_OK)
        rc = ho_bundle_verify(b, len, chain, n, s->cfg.checkpoint_dir, NULL, &d);
    if (rc == MU_OK)
        rc = mu_write_file_atomic(path, b, len, &d);
    free(chain);
    if (rc != MU_OK) {
        mu_error("serve: no release bundle for round %llu: %s", (unsigned long long)round, d.msg);
        free(b);
        return;
    }
    mu_info("serve: release bundle of round %llu (%zu bytes) saved as %s and offered to members",
            (unsigned long long)round, len, path);
    set_bundle(s, b, len);
}

/* A restart: the bundle saved before, if any (ours, not re-verified). */
static void load_bundle(server *s)
{
    char path[ND_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", s->cfg.checkpoint_dir, BUNDLE_FILE);
    char *b = NULL;
    size_t len = 0;
    mu_diag d = {{0}};
    if (mu_read_file(path, HO_BUNDLE_MAX, &b, &len, &d) == MU_OK)
        set_bundle(s, (uint8_t *)b, len);
}

/* The chain file's inode, size and mtime as text; "" when it cannot be seen. */
static void chain_stamp(const server *s, char out[96])
{
    struct stat st;
    out[0] = 0;
    if (stat(s->o.charter_path, &st) == 0)
        snprintf(out, 96, "%llu %lld %lld.%09ld", (unsigned long long)st.st_ino,
                 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

int nd_srv_gov_open(server *s, const uint8_t instance[8], mu_diag *d)
{
    if (!s->o.charter_path)
        return MU_OK;
    size_t nh = 0;
    const co_metrics *hist = co_round_history(s->r, &nh);
    ho_gov_opts go = {.chain_path = s->o.charter_path,
                      .key_path = s->o.coordinator_key,
                      .dir = s->cfg.checkpoint_dir,
                      .config_hash = s->cfg_hash,
                      .resumed = nh > 0,
                      .resumed_round = nh ? hist[nh - 1].round : 0,
                      .resumed_state = s->resumed_ckpt ? s->ckpt_state : NULL,
                      .now = (uint64_t)time(NULL),
                      .round = s->r,
                      .skip = s->o.cheat};
    for (int i = 0; i < 8; i++)
        go.instance = go.instance << 8 | instance[i];
    if (s->o.cheat)
        mu_warn("serve: *** TEST MODE: skipping the coordinator's own charter checks (%s%s%s) ***",
                s->o.cheat & HO_GOV_SKIP_CONFIG ? "config " : "",
                s->o.cheat & HO_GOV_SKIP_ADMIT ? "admission " : "",
                s->o.cheat & HO_GOV_SKIP_LEAVE ? "leave" : "");
    chain_stamp(s, s->chain_seen); /* before it is read: a change after that is seen */
    s->gov = ho_gov_open(&go, d);
    if (!s->gov)
        return MU_ERR_INVALID;
    if (!s->o.resume_bundle)
        load_bundle(s);
    const gv_charter *c = ho_gov_charter(s->gov);
    mu_info("serve: governed by charter '%s' version %llu (%u members); audit log %s/%s",
            c->federation, (unsigned long long)c->version, c->n_members, s->cfg.checkpoint_dir,
            HO_GOV_LOG_FILE);
    return MU_OK;
}

void nd_srv_gov_tasked(server *s, const co_task *t)
{
    const co_org *o = s->gov ? co_round_org(s->r, t->org_id) : NULL;
    if (o)
        ho_gov_note_task(s->gov, t, o->name);
}

int nd_srv_gov_round(server *s, const co_event *ev, mu_diag *d)
{
    if (!s->gov)
        return MU_OK;
    int rc = ho_gov_on_round(s->gov, s->r, ev, (uint64_t)time(NULL), d);
    return rc ? rc : ho_gov_leave_flush(s->gov, (uint64_t)time(NULL), d); /* after its round */
}

void nd_srv_gov_push(server *s, const char *name, const Mutual__V1__PushStageRequest *req)
{
    mu_diag d = {{0}};
    if (req->witness.len) {
        if (ho_gov_witness(s->gov, name, req->witness.data, req->witness.len, &d))
            mu_warn("serve: a countersigned head from '%s' refused: %s", name, d.msg);
        else
            mu_debug("serve: '%s' countersigned the audit log head", name);
    }
    if (!req->release_signature.len)
        return;
    int rc = ho_gov_release_offer(s->gov, name, req->release_round, req->release_signature.data,
                                  req->release_signature.len, (uint64_t)time(NULL), &d);
    if (rc < 0) {
        mu_warn("serve: a release signature from '%s' refused: %s", name, d.msg);
        return;
    }
    mu_info("serve: '%s' signed the release of round %llu%s", name,
            (unsigned long long)req->release_round,
            rc == 1 ? ": the charter's release quorum is met, release logged" : "");
    if (rc == 1)
        make_bundle(s, req->release_round);
    if (rc != 1 || !s->cfg.export_dir[0])
        return;
    ho_after a = {.export_dir = s->cfg.export_dir, .model = s->model, .base_name = s->spec.name};
    if (ho_after_export(&a, s->r, req->release_round, &d) != MU_OK)
        mu_error("serve: exporting released round %llu: %s", (unsigned long long)req->release_round,
                 d.msg);
    else
        mu_info("serve: released round %llu exported to %s/round-%06llu",
                (unsigned long long)req->release_round, s->cfg.export_dir,
                (unsigned long long)req->release_round);
}

int nd_srv_gov_check(server *s, rpc_call *call, const char *name, const char *what)
{
    if (!s->gov)
        return MU_OK;
    uint8_t fpr[GV_FPR_BYTES];
    mu_diag d = {{0}};
    int has = rpc_call_peer_fingerprint(call, fpr), rc = MU_OK;
    if (!s->insecure)
        rc = ho_gov_cert_check(s->gov, name, has ? fpr : NULL, &d);
    if (rc == MU_OK && ho_gov_has_left(s->gov, name))
        rc = mu_diag_set(&d, MU_ERR_STATE,
                         "'%s' left the federation by its own notice (in the audit log): it takes "
                         "no further part",
                         name);
    if (rc == MU_OK)
        return MU_OK;
    mu_warn("serve: %s from '%s' refused: %s", what, name, d.msg);
    rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "%s", d.msg);
    return rc;
}

void nd_srv_gov_tick(server *s, double now)
{
    if (!s->gov || now - s->chain_polled < 1.0)
        return;
    s->chain_polled = now;
    char seen[sizeof s->chain_seen];
    chain_stamp(s, seen);
    if (!seen[0] || !strcmp(seen, s->chain_seen))
        return; /* unchanged, or being replaced: the chain in force stays */
    snprintf(s->chain_seen, sizeof s->chain_seen, "%s", seen);
    mu_diag d = {{0}};
    int rc = ho_gov_adopt(s->gov, s->o.charter_path, (uint64_t)time(NULL), &d);
    if (rc == 1) {
        mu_info("serve: adopted charter version %llu from %s (logged); its roster and "
                "certificates apply from now on",
                (unsigned long long)ho_gov_charter(s->gov)->version, s->o.charter_path);
    } else if (rc == MU_ERR_STATE || rc == MU_ERR_IO || rc == MU_ERR_NOMEM) {
        s->fatal = rc;
        mu_diag_set(&s->fatal_diag, rc, "the members' charter changed: %.400s", d.msg);
        mu_error("serve: stopping: %s", s->fatal_diag.msg);
        rpc_server_stop(s->srv);
    } else if (rc < 0) {
        mu_warn("serve: the charter chain changed: %s", d.msg);
    }
}

void nd_srv_gov_leave(server *s, const co_org *org, rpc_call *call, const uint8_t *b, size_t n)
{
    if (!s->gov) {
        rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
                      "this federation is not governed by a charter: nobody to leave");
        return;
    }
    co_status st;
    co_round_status(s->r, mu_now(), &st);
    int in_flight =
        st.phase == CO_PHASE_TRAIN || st.phase == CO_PHASE_SECAGG || st.phase == CO_PHASE_EVAL;
    mu_diag d = {{0}};
    int rc = ho_gov_leave(s->gov, org->name, b, n, in_flight, (uint64_t)time(NULL), &d);
    if (rc < 0) {
        mu_warn("serve: a leave notice from '%s' refused: %s", org->name, d.msg);
        rpc_call_fail(call,
                      rc == MU_ERR_CRYPTO  ? GRPC_STATUS_UNAUTHENTICATED
                      : rc == MU_ERR_STATE ? GRPC_STATUS_FAILED_PRECONDITION
                      : rc == MU_ERR_IO    ? GRPC_STATUS_INTERNAL
                      : rc == MU_ERR_NOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                           : GRPC_STATUS_INVALID_ARGUMENT,
                      "%s", d.msg);
        return;
    }
    char when[96] = " (logged)";
    if (rc == 0)
        snprintf(when, sizeof when, " (logged once round %llu ends)", (unsigned long long)st.round);
    mu_info("serve: '%s' leaves the federation by its own notice%s", org->name, when);
    if (ho_gov_has_left(s->gov, org->name)) { /* in no later cohort: its polls end here */
        for (size_t i = 0; i < s->n_held;) {
            rpc_call *c = s->held[i].call;
            if (s->held[i].org != org->id) {
                i++;
                continue;
            }
            s->held[i] = s->held[--s->n_held];
            rpc_call_fail(c, GRPC_STATUS_PERMISSION_DENIED, "'%s' left the federation", org->name);
        }
        co_round_disconnect(s->r, org->id);
    }
    Mutual__V1__PushStageReply r = MUTUAL__V1__PUSH_STAGE_REPLY__INIT;
    r.api_version = RPC_API_VERSION;
    r.accepted = 1;
    r.reason = rc == 1 ? "" : "logged once the round in flight ends";
    rpc_call_reply(call, &r.base);
}

int nd_srv_gov_settled(server *s)
{
    uint8_t id[GV_HASH_BYTES], global[GV_HASH_BYTES];
    uint64_t round = 0;
    if (!s->gov || ho_gov_release_subject(s->gov, id, &round, global) != MU_OK)
        return 1;
    return ho_gov_may_release(s->gov, round, NULL);
}
