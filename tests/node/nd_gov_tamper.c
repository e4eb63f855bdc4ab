/* nd_gov_tamper.c - tampered copies of the audit log a real `mutual serve --charter` wrote, for
 * nd_governance.sh: what someone holding the file, or a coordinator rewriting history, could
 * do to it.
 *
 * usage: nd_gov_tamper LOG COORD_KEY MEMBER_KEY_1 MEMBER_KEY_2 OUTDIR
 * writes OUTDIR/edited.log (the first round entry's metrics changed, its signature kept),
 * dropped.log (that round entry removed), resigned.log (that entry re-signed with a key that
 * is not the coordinator's), noquorum.log (the log up to its last round entry, then a
 * release of that round, signed by the coordinator, carrying only member 1's signature) and
 * released.log (the same release with
 * both members' signatures: it must verify) and prefix.log (the entries before that round: a
 * coordinator that starts over from there writes a history without it, a fork); prints "round=I
 * release=J", the index of that round entry and of the release. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gv_store.h"

static gv_entry e;

static void check(int rc, const mu_diag *d)
{
    if (rc) {
        fprintf(stderr, "nd_gov_tamper: %s\n", d->msg);
        exit(1);
    }
}

static size_t keep = SIZE_MAX; /* entries of the log copied (the rest left out) */

/* A copy of log (its first `keep` entries) with entry i replaced by `with` (NULL: dropped),
 * saved as dir/name; when `extra` is given it is appended (signed with sk). */
static void save(const gv_log *log, size_t i, const gv_entry *with, gv_entry *extra,
                 const uint8_t *sk, const char *dir, const char *name)
{
    gv_log *out = gv_log_new();
    mu_diag d = {{0}};
    for (size_t j = 0; j < gv_log_len(log) && j < keep; j++) {
        const uint8_t *b = NULL;
        size_t n = 0;
        uint8_t *eb = NULL;
        if (j == i && !with)
            continue;
        if (j == i)
            check(gv_entry_encode(with, &eb, &n, &d), &d);
        else
            gv_log_raw(log, j, &b, &n);
        check(gv_log_append_raw(out, eb ? eb : b, n, &d), &d);
        free(eb);
    }
    if (extra)
        check(gv_log_append(out, extra, sk, &d), &d);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    check(gv_log_save(path, out, &d), &d);
    gv_log_free(out);
}

int main(int argc, char **argv)
{
    mu_diag d = {{0}};
    if (argc != 6 || sodium_init() < 0) {
        fprintf(stderr, "usage: nd_gov_tamper LOG COORD_KEY MEMBER_KEY_1 MEMBER_KEY_2 OUTDIR\n");
        return 2;
    }
    static uint8_t coord[GV_SK_BYTES], m1[GV_SK_BYTES], m2[GV_SK_BYTES], other[GV_SK_BYTES];
    gv_log *log = NULL;
    check(gv_log_load(argv[1], &log, &d), &d);
    check(gv_signing_key_load(argv[2], coord, &d), &d);
    check(gv_signing_key_load(argv[3], m1, &d), &d);
    check(gv_signing_key_load(argv[4], m2, &d), &d);
    const char *dir = argv[5];
    uint8_t log_id[GV_HASH_BYTES], global[GV_HASH_BYTES];
    size_t first = SIZE_MAX, last = 0, n = gv_log_len(log);
    uint64_t last_round = 0;
    for (size_t i = 0; i < n; i++) {
        gv_log_entry(log, i, &e);
        if (i == 0)
            memcpy(log_id, e.charter_hash, GV_HASH_BYTES);
        if (e.kind == GV_ENTRY_ROUND) {
            if (first == SIZE_MAX)
                first = i;
            last_round = e.round;
            last = i;
            memcpy(global, e.global_hash, GV_HASH_BYTES);
        }
    }
    if (first == SIZE_MAX) {
        fprintf(stderr, "nd_gov_tamper: %s logs no round\n", argv[1]);
        return 1;
    }
    gv_log_entry(log, first, &e);
    snprintf(e.metrics, sizeof e.metrics, "{\"kind\":\"train\",\"loss\":0.001}");
    save(log, first, &e, NULL, NULL, dir, "edited.log");
    save(log, first, NULL, NULL, NULL, dir, "dropped.log");
    uint8_t pk[GV_PK_BYTES];
    crypto_sign_keypair(pk, other);
    gv_log_entry(log, first, &e);
    check(gv_entry_sign(&e, other, &d), &d);
    save(log, first, &e, NULL, NULL, dir, "resigned.log");
    gv_entry rel;
    memset(&rel, 0, sizeof rel);
    rel.kind = GV_ENTRY_RELEASE;
    rel.round = last_round;
    rel.time = 1800000000;
    memcpy(rel.global_hash, global, GV_HASH_BYTES);
    gv_release_sign(&rel.sigs[rel.n_sigs++], log_id, last_round, global, m1);
    gv_entry one = rel;
    keep = last + 1; /* the releases go right after the last round (any release the run */
    n = keep;        /* logged after it is left out) */
    save(log, SIZE_MAX, NULL, &one, coord, dir, "noquorum.log");
    gv_release_sign(&rel.sigs[rel.n_sigs++], log_id, last_round, global, m2);
    save(log, SIZE_MAX, NULL, &rel, coord, dir, "released.log");
    gv_log *prefix = gv_log_new();
    for (size_t j = 0; prefix && j < first; j++) {
        const uint8_t *b = NULL;
        size_t len = 0;
        gv_log_raw(log, j, &b, &len);
        check(gv_log_append_raw(prefix, b, len, &d), &d);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/prefix.log", dir);
    check(prefix ? gv_log_save(path, prefix, &d) : MU_ERR_NOMEM, &d);
    gv_log_free(prefix);
    printf("round=%zu release=%zu\n", first, n);
    gv_log_free(log);
    sodium_memzero(coord, sizeof coord);
    sodium_memzero(m1, sizeof m1);
    sodium_memzero(m2, sizeof m2);
    sodium_memzero(other, sizeof other);
    return 0;
}
