/* ho_bundle.c - the release bundle: framing, making, verifying, unpacking (ho_bundle.h). */
#include "ho_bundle.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "co_checkpoint.h"
#include "gv_log.h"
#include "gv_store.h"
#include "ho_gov.h"
#include "mu_file.h"
#include "wi_blob.h"

#define HDR_BYTES (4 + 2 + 8)

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int ho_bundle_encode(uint64_t round, const uint8_t *ckpt, size_t ckpt_len, const uint8_t *log,
                     size_t log_len, const uint8_t *chain, size_t chain_len, uint8_t **out,
                     size_t *len, mu_diag *d)
{
    size_t n = HDR_BYTES + 3 * 8 + ckpt_len + log_len + chain_len;
    uint8_t *b = malloc(n), *p = b;
    if (!b)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    memcpy(p, "MUBN", 4);
    p[4] = HO_BUNDLE_VERSION & 0xff;
    p[5] = HO_BUNDLE_VERSION >> 8;
    put64(p + 6, round);
    p += HDR_BYTES;
    const uint8_t *part[3] = {ckpt, log, chain};
    size_t plen[3] = {ckpt_len, log_len, chain_len};
    for (int i = 0; i < 3; i++) {
        put64(p, plen[i]);
        if (plen[i])
            memcpy(p + 8, part[i], plen[i]);
        p += 8 + plen[i];
    }
    *out = b;
    *len = n;
    return MU_OK;
}

int ho_bundle_decode(ho_bundle *b, const uint8_t *bytes, size_t len, mu_diag *d)
{
    memset(b, 0, sizeof *b);
    if (len < HDR_BYTES || memcmp(bytes, "MUBN", 4))
        return mu_diag_set(d, MU_ERR_FORMAT, "not a release bundle");
    unsigned version = bytes[4] | (unsigned)bytes[5] << 8;
    if (version != HO_BUNDLE_VERSION)
        return mu_diag_set(d, MU_ERR_FORMAT, "release bundle version %u (this build reads %u)",
                           version, HO_BUNDLE_VERSION);
    b->round = get64(bytes + 6);
    size_t at = HDR_BYTES;
    const uint8_t **part[3] = {&b->ckpt, &b->log, &b->chain};
    size_t *plen[3] = {&b->ckpt_len, &b->log_len, &b->chain_len};
    static const char *const what[3] = {"checkpoint", "audit log", "charter chain"};
    for (int i = 0; i < 3; i++) {
        if (len - at < 8)
            return mu_diag_set(d, MU_ERR_FORMAT, "release bundle: truncated before its %s",
                               what[i]);
        uint64_t n = get64(bytes + at);
        at += 8;
        if (n > len - at)
            return mu_diag_set(d, MU_ERR_FORMAT,
                               "release bundle: its %s claims %llu bytes, %zu are left", what[i],
                               (unsigned long long)n, len - at);
        *part[i] = bytes + at;
        *plen[i] = (size_t)n;
        at += (size_t)n;
    }
    if (at != len)
        return mu_diag_set(d, MU_ERR_FORMAT, "release bundle: %zu bytes after its last section",
                           len - at);
    return MU_OK;
}

int ho_bundle_make(const char *ckpt_dir, const char *chain_path, uint64_t round, const uint8_t *log,
                   size_t log_len, uint8_t **out, size_t *len, mu_diag *d)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", ckpt_dir, CO_CHECKPOINT_FILE) >= (int)sizeof path)
        return mu_diag_set(d, MU_ERR_INVALID, "checkpoint folder path too long");
    char *ck = NULL, *chain = NULL;
    size_t ck_len = 0, chain_len = 0;
    int rc = mu_read_file(path, HO_BUNDLE_MAX, &ck, &ck_len, d);
    if (rc == MU_OK)
        rc = mu_read_file(chain_path, GV_FILE_MAX, &chain, &chain_len, d);
    if (rc == MU_OK)
        rc = ho_bundle_encode(round, (const uint8_t *)ck, ck_len, log, log_len,
                              (const uint8_t *)chain, chain_len, out, len, d);
    free(ck);
    free(chain);
    return rc;
}

/* What the log names for the bundle's round: its last ROUND entry's global and state hashes
 * (has_state = 0 for a format-1 entry, which names none). */
typedef struct {
    uint8_t global[GV_HASH_BYTES], state[GV_HASH_BYTES];
    int has_state;
} named_state;

/* The release entry of `round` in log, and its ROUND entry's hashes. */
static int find_release(const gv_log *log, uint64_t round, named_state *ns, mu_diag *d)
{
    gv_entry *e = malloc(sizeof *e);
    if (!e)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    int have_round = 0, released = 0;
    uint8_t named[GV_HASH_BYTES] = {0};
    for (size_t i = 0; i < gv_log_len(log); i++) {
        if (gv_log_entry(log, i, e) != MU_OK || e->round != round)
            continue;
        if (e->kind == GV_ENTRY_ROUND) { /* the last run of the round counts (restarts) */
            have_round = 1;
            released = 0;
            memcpy(ns->global, e->global_hash, GV_HASH_BYTES);
            memcpy(ns->state, e->state_hash, GV_HASH_BYTES);
            ns->has_state = e->format >= GV_ENTRY_FORMAT;
        } else if (e->kind == GV_ENTRY_RELEASE && have_round) {
            released = 1;
            memcpy(named, e->global_hash, GV_HASH_BYTES);
        }
    }
    free(e);
    if (!have_round)
        return mu_diag_set(d, MU_ERR_PROTOCOL, "the audit log has no entry of round %llu",
                           (unsigned long long)round);
    if (!released || memcmp(named, ns->global, GV_HASH_BYTES))
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "round %llu is not released in the audit log (no release entry "
                           "with the members' quorum names its global)",
                           (unsigned long long)round);
    return MU_OK;
}

/* SHA-256 of the checkpoint's global adapter as float32 LE (what the log's global hash is). */
static int ckpt_global_hash(const co_checkpoint *ck, uint8_t out[GV_HASH_BYTES], mu_diag *d)
{
    size_t dim = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        size_t n = 1;
        for (int k = 0; k < ck->tensors[i].ndim; k++)
            n *= (size_t)ck->tensors[i].shape[k];
        dim += n;
    }
    uint8_t *b = malloc(wi_blob_len(dim) ? wi_blob_len(dim) : 1);
    if (!b)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < ck->n_tensors; i++) {
        size_t n = 1;
        for (int k = 0; k < ck->tensors[i].ndim; k++)
            n *= (size_t)ck->tensors[i].shape[k];
        wi_blob_encode(b, wi_blob_len(n), ck->tensors[i].data, n);
        crypto_hash_sha256_update(&st, b, wi_blob_len(n));
    }
    crypto_hash_sha256_final(&st, out);
    free(b);
    return MU_OK;
}

/* The rest of the checkpoint's state (optimizer m, v and step, round counter, metrics, orgs)
 * against the state hash the log names for the round. */
static int check_state(const co_checkpoint *ck, const named_state *ns, uint64_t round, mu_diag *d)
{
    if (!ns->has_state)
        return mu_diag_set(d, MU_ERR_PROTOCOL,
                           "the audit log's entry of round %llu is format 1 and names no state "
                           "hash: the bundle's optimizer state is not bound to the log",
                           (unsigned long long)round);
    uint8_t h[GV_HASH_BYTES];
    co_checkpoint_state_hash(ck, h);
    if (sodium_memcmp(h, ns->state, GV_HASH_BYTES) == 0)
        return MU_OK;
    char have[2 * GV_HASH_BYTES + 1], want[2 * GV_HASH_BYTES + 1];
    co_hash_hex(h, GV_HASH_BYTES, have);
    co_hash_hex(ns->state, GV_HASH_BYTES, want);
    return mu_diag_set(d, MU_ERR_CRYPTO,
                       "the bundle's federation state (optimizer state, round counter, metrics, "
                       "orgs) hashes to %.16s..., the state hash the audit log names for round "
                       "%llu is %.16s...: not the state the members' log records",
                       have, (unsigned long long)round, want);
}

static int check_ckpt(const ho_bundle *b, const char *tmp_dir, const named_state *ns, mu_diag *d)
{
    char dir[4096], path[4200];
    if (snprintf(dir, sizeof dir, "%s/mubundle.XXXXXX", tmp_dir) >= (int)sizeof dir)
        return mu_diag_set(d, MU_ERR_INVALID, "temporary folder path too long");
    if (!mkdtemp(dir))
        return mu_diag_set(d, MU_ERR_IO, "%s: cannot make a temporary folder", tmp_dir);
    snprintf(path, sizeof path, "%s/%s", dir, CO_CHECKPOINT_FILE);
    mu_diag wd = {{0}};
    int rc = mu_write_file_atomic(path, b->ckpt, b->ckpt_len, &wd);
    co_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    if (rc != MU_OK) {
        rc = mu_diag_set(d, rc, "%.400s", wd.msg);
    } else if ((rc = co_checkpoint_load(dir, NULL, 0, &ck, &wd)) != MU_OK) {
        rc = mu_diag_set(d, rc == MU_ERR_NOMEM ? rc : MU_ERR_FORMAT,
                         "the bundle's checkpoint does not load: %.400s", wd.msg);
    } else if (ck.round != b->round) {
        rc = mu_diag_set(d, MU_ERR_PROTOCOL, "the bundle's checkpoint is at round %llu, not %llu",
                         (unsigned long long)ck.round, (unsigned long long)b->round);
    } else {
        uint8_t h[GV_HASH_BYTES];
        rc = ckpt_global_hash(&ck, h, d);
        if (rc == MU_OK && memcmp(h, ns->global, GV_HASH_BYTES))
            rc = mu_diag_set(d, MU_ERR_CRYPTO,
                             "the bundle's global adapter is not the one the audit log names "
                             "for round %llu (SHA-256 differs)",
                             (unsigned long long)b->round);
        if (rc == MU_OK)
            rc = check_state(&ck, ns, b->round, d);
    }
    co_checkpoint_deinit(&ck);
    unlink(path);
    rmdir(dir);
    return rc;
}

/* The bundle's chain verifies and is a prefix of the trusted one. */
static int check_chain(const ho_bundle *b, const gv_signed *chain, size_t n_chain, mu_diag *d)
{
    gv_signed *bc = NULL;
    size_t nb = 0, bad = 0;
    mu_diag cd = {{0}};
    int rc = gv_chain_decode(&bc, &nb, b->chain, b->chain_len, &cd);
    if (rc == MU_OK)
        rc = gv_chain_verify(bc, nb, &bad, &cd);
    if (rc != MU_OK) {
        free(bc);
        return mu_diag_set(d, rc, "the bundle's charter chain: %.400s", cd.msg);
    }
    if (nb > n_chain)
        rc = mu_diag_set(d, MU_ERR_PROTOCOL,
                         "the bundle's charter chain has %zu versions, ours %zu: update ours", nb,
                         n_chain);
    for (size_t i = 0; i < nb && rc == MU_OK; i++) {
        uint8_t h1[GV_HASH_BYTES], h2[GV_HASH_BYTES];
        if ((rc = gv_charter_hash(&bc[i].charter, h1, d)) ||
            (rc = gv_charter_hash(&chain[i].charter, h2, d)))
            break;
        if (memcmp(h1, h2, GV_HASH_BYTES))
            rc = mu_diag_set(d, MU_ERR_PROTOCOL,
                             "the bundle's charter version %zu is not ours: another federation "
                             "or a forked chain",
                             i + 1);
    }
    free(bc);
    return rc;
}

int ho_bundle_verify(const uint8_t *bytes, size_t len, const gv_signed *chain, size_t n_chain,
                     const char *tmp_dir, uint64_t *round, mu_diag *d)
{
    ho_bundle b;
    int rc = ho_bundle_decode(&b, bytes, len, d);
    if (rc != MU_OK)
        return rc;
    if ((rc = check_chain(&b, chain, n_chain, d)) != MU_OK)
        return rc;
    gv_log *log = NULL;
    mu_diag ld = {{0}};
    size_t bad = 0;
    rc = gv_log_decode(&log, b.log, b.log_len, &ld);
    if (rc == MU_OK)
        rc = gv_log_verify(log, chain, n_chain, &bad, &ld);
    if (rc != MU_OK) {
        gv_log_free(log);
        return mu_diag_set(d, rc, "the bundle's audit log: %.400s", ld.msg);
    }
    named_state ns;
    memset(&ns, 0, sizeof ns);
    rc = find_release(log, b.round, &ns, d);
    gv_log_free(log);
    if (rc == MU_OK)
        rc = check_ckpt(&b, tmp_dir, &ns, d);
    if (rc == MU_OK && round)
        *round = b.round;
    return rc;
}

int ho_bundle_unpack(const uint8_t *bytes, size_t len, const char *dir, mu_diag *d)
{
    ho_bundle b;
    int rc = ho_bundle_decode(&b, bytes, len, d);
    char path[4200];
    if (rc == MU_OK) {
        snprintf(path, sizeof path, "%s/%s", dir, HO_GOV_LOG_FILE);
        rc = mu_write_file_atomic(path, b.log, b.log_len, d);
    }
    if (rc == MU_OK) {
        snprintf(path, sizeof path, "%s/%s", dir, CO_CHECKPOINT_FILE);
        rc = mu_write_file_atomic(path, b.ckpt, b.ckpt_len, d);
    }
    return rc;
}
