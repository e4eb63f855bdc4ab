/* nd_bundle_tamper.c - tampered copies of a release bundle a real run made (an org's
 * IDENTITY_KEY.release-RRRRRR.bundle), each re-framed so the framing is valid and only one
 * thing is wrong, for nd_handover.sh: what `mutual release verify`, `serve --resume-bundle`
 * and join's bundle check must each refuse, naming the check.
 *
 * usage: nd_bundle_tamper BUNDLE COORD_KEY OUTDIR
 * writes OUTDIR/adapter.bundle (one bit of the global adapter's first value flipped, the
 * checkpoint rewritten as a valid HDF5 file), optstate.bundle (the same for the server
 * optimizer's first moment m: one byte of the optimizer state changed; that checkpoint alone
 * as optstate.h5), dropped.bundle (the
 * audit log without its first round entry), noquorum.bundle (the log's release of the
 * bundle's round replaced by one the coordinator signed with only its first member
 * signature). COORD_KEY is the key of the coordinator that signed that release. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co_checkpoint.h"
#include "gv_store.h"
#include "ho_bundle.h"
#include "mu_file.h"

static gv_entry e;

static void check(int rc, const mu_diag *d)
{
    if (rc) {
        fprintf(stderr, "nd_bundle_tamper: %s\n", d->msg);
        exit(1);
    }
}

static void flip(float *x)
{
    uint32_t bits;
    memcpy(&bits, x, sizeof bits);
    bits ^= 1;
    memcpy(x, &bits, sizeof bits);
}

/* Frames a copy of b with the given checkpoint and log bytes as dir/name. */
static void save(const ho_bundle *b, const uint8_t *ck, size_t ck_len, const uint8_t *log,
                 size_t log_len, const char *dir, const char *name)
{
    mu_diag d = {{0}};
    uint8_t *out = NULL;
    size_t len = 0;
    check(ho_bundle_encode(b->round, ck, ck_len, log, log_len, b->chain, b->chain_len, &out, &len,
                           &d),
          &d);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    check(mu_write_file_atomic(path, out, len, &d), &d);
    free(out);
}

/* The bundle's checkpoint with one bit flipped in the adapter (what = 0) or in the optimizer's
 * m (what = 1), written back as a valid checkpoint; saved as dir/name. */
static void edit_ckpt(const ho_bundle *b, int what, const char *dir, const char *name)
{
    mu_diag d = {{0}};
    char tmp[4096], path[4200];
    snprintf(tmp, sizeof tmp, "%s/tamper.XXXXXX", dir);
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "nd_bundle_tamper: mkdtemp %s failed\n", tmp);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s", tmp, CO_CHECKPOINT_FILE);
    check(mu_write_file_atomic(path, b->ckpt, b->ckpt_len, &d), &d);
    co_checkpoint ck;
    check(co_checkpoint_load(tmp, NULL, 0, &ck, &d), &d);
    if (what == 1 && !ck.opt_m) {
        fprintf(stderr, "nd_bundle_tamper: the checkpoint holds no optimizer state (FedAvg?)\n");
        exit(1);
    }
    flip(what == 0 ? &ck.tensors[0].data[0] : &ck.opt_m[0]);
    check(co_checkpoint_write(tmp, &ck, &d), &d);
    co_checkpoint_deinit(&ck);
    char *bytes = NULL;
    size_t len = 0;
    check(mu_read_file(path, HO_BUNDLE_MAX, &bytes, &len, &d), &d);
    save(b, (const uint8_t *)bytes, len, b->log, b->log_len, dir, name);
    if (what == 1) { /* the checkpoint alone too, for a checkpoint folder next to the log */
        char alone[4200];
        snprintf(alone, sizeof alone, "%s/optstate.h5", dir);
        check(mu_write_file_atomic(alone, bytes, len, &d), &d);
    }
    free(bytes);
    unlink(path);
    rmdir(tmp);
}

/* A log of the first `keep` entries of log without entry `skip`, then `extra` (signed with
 * sk) when given; framed into dir/name. */
static void edit_log(const ho_bundle *b, const gv_log *log, size_t keep, size_t skip,
                     gv_entry *extra, const uint8_t *sk, const char *dir, const char *name)
{
    mu_diag d = {{0}};
    gv_log *out = gv_log_new();
    if (!out)
        exit(1);
    for (size_t j = 0; j < keep && j < gv_log_len(log); j++) {
        const uint8_t *raw = NULL;
        size_t n = 0;
        if (j == skip)
            continue;
        gv_log_raw(log, j, &raw, &n);
        check(gv_log_append_raw(out, raw, n, &d), &d);
    }
    if (extra)
        check(gv_log_append(out, extra, sk, &d), &d);
    uint8_t *enc = NULL;
    size_t len = 0;
    check(gv_log_encode(out, &enc, &len, &d), &d);
    save(b, b->ckpt, b->ckpt_len, enc, len, dir, name);
    free(enc);
    gv_log_free(out);
}

int main(int argc, char **argv)
{
    mu_diag d = {{0}};
    if (argc != 4 || sodium_init() < 0) {
        fprintf(stderr, "usage: nd_bundle_tamper BUNDLE COORD_KEY OUTDIR\n");
        return 2;
    }
    static uint8_t coord[GV_SK_BYTES];
    char *bytes = NULL;
    size_t len = 0;
    check(mu_read_file(argv[1], HO_BUNDLE_MAX, &bytes, &len, &d), &d);
    check(gv_signing_key_load(argv[2], coord, &d), &d);
    const char *dir = argv[3];
    ho_bundle b;
    check(ho_bundle_decode(&b, (const uint8_t *)bytes, len, &d), &d);
    gv_log *log = NULL;
    check(gv_log_decode(&log, b.log, b.log_len, &d), &d);
    size_t first = SIZE_MAX, release = SIZE_MAX;
    for (size_t i = 0; i < gv_log_len(log); i++) {
        gv_log_entry(log, i, &e);
        if (e.kind == GV_ENTRY_ROUND && first == SIZE_MAX)
            first = i;
        if (e.kind == GV_ENTRY_RELEASE && e.round == b.round)
            release = i;
    }
    if (first == SIZE_MAX || release == SIZE_MAX) {
        fprintf(stderr, "nd_bundle_tamper: the bundle's log has no round or no release\n");
        return 1;
    }
    edit_ckpt(&b, 0, dir, "adapter.bundle");
    edit_ckpt(&b, 1, dir, "optstate.bundle");
    edit_log(&b, log, SIZE_MAX, first, NULL, NULL, dir, "dropped.bundle");
    gv_log_entry(log, release, &e);
    e.n_sigs = 1;
    edit_log(&b, log, release, SIZE_MAX, &e, coord, dir, "noquorum.bundle");
    gv_log_free(log);
    free(bytes);
    sodium_memzero(coord, sizeof coord);
    return 0;
}
