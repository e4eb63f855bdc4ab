/* gv_mklog.c - writes audit logs for the CLI test (gv_cli.sh), as a coordinator would, until
 * serve writes its own: every charter of CHAIN adopted, every member of the head admitted,
 * round 1 (the whole roster, config = the head's training hash), its release signed by the
 * member keys given, a restart, round 2. Then one tampered copy of each kind.
 *
 * usage: gv_mklog CHAIN COORD_KEY OUTDIR MEMBER_KEY...
 * writes OUTDIR/good.log, edited.log (round 1's metrics changed, old signature), dropped.log
 * (the release removed), resigned.log (round 1 signed by another key), noquorum.log (a release
 * the coordinator signed carrying only the first member's signature); prints the index of
 * round 1 and of the release. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gv_store.h"

static gv_signed *chain;
static size_t n_chain;
static uint8_t coord_sk[GV_SK_BYTES], member_sk[8][GV_SK_BYTES], log_id[GV_HASH_BYTES];
static int n_keys;
static gv_entry e;

static void check(int rc, const mu_diag *d)
{
    if (rc) {
        fprintf(stderr, "gv_mklog: %s\n", d->msg);
        exit(1);
    }
}

static void add(gv_log *log)
{
    mu_diag d = {{0}};
    e.time = 1800000000 + gv_log_len(log);
    check(gv_log_append(log, &e, coord_sk, &d), &d);
}

static void round_entry(const gv_charter *head, uint64_t round)
{
    memset(&e, 0, sizeof e);
    e.kind = GV_ENTRY_ROUND;
    e.round = round;
    memcpy(e.config_hash, head->training_hash, GV_HASH_BYTES);
    memset(e.aggregate_hash, (int)round, GV_HASH_BYTES);
    memset(e.global_hash, 0x80 + (int)round, GV_HASH_BYTES);
    for (uint32_t i = 0; i < head->n_members; i++)
        strcpy(e.cohort[e.n_cohort++], head->members[i].name);
    snprintf(e.metrics, sizeof e.metrics, "{\"round\":%llu,\"train_loss\":2.5}",
             (unsigned long long)round);
}

/* The good log, or with the release signed by only `release_sigs` members. */
static gv_log *build(int release_sigs, size_t *round1, size_t *release)
{
    const gv_charter *head = &chain[n_chain - 1].charter;
    gv_log *log = gv_log_new();
    for (size_t v = 0; v < n_chain; v++) {
        memset(&e, 0, sizeof e);
        e.kind = GV_ENTRY_CHARTER;
        e.charter_version = v + 1;
        gv_charter_hash(&chain[v].charter, e.charter_hash, NULL);
        add(log);
    }
    for (uint32_t i = 0; i < head->n_members; i++) {
        memset(&e, 0, sizeof e);
        e.kind = GV_ENTRY_ADMISSION;
        strcpy(e.member, head->members[i].name);
        memcpy(e.member_pk, head->members[i].sign_pk, GV_PK_BYTES);
        add(log);
    }
    *round1 = gv_log_len(log);
    round_entry(head, 1);
    add(log);
    uint8_t global[GV_HASH_BYTES];
    memcpy(global, e.global_hash, GV_HASH_BYTES);
    *release = gv_log_len(log);
    memset(&e, 0, sizeof e);
    e.kind = GV_ENTRY_RELEASE;
    e.round = 1;
    memcpy(e.global_hash, global, GV_HASH_BYTES);
    for (int i = 0; i < release_sigs; i++)
        gv_release_sign(&e.sigs[e.n_sigs++], log_id, 1, global, member_sk[i]);
    add(log);
    memset(&e, 0, sizeof e);
    e.kind = GV_ENTRY_RESTART;
    e.round = 1;
    e.instance = 7;
    add(log);
    round_entry(head, 2);
    add(log);
    return log;
}

/* A copy of log with entry i replaced by e (NULL: dropped), saved as dir/name. */
static void save_variant(const gv_log *log, size_t i, const gv_entry *with, const char *dir,
                         const char *name)
{
    gv_log *out = gv_log_new();
    mu_diag d = {{0}};
    for (size_t j = 0; j < gv_log_len(log); j++) {
        const uint8_t *b;
        size_t n;
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
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    check(gv_log_save(path, out, &d), &d);
    gv_log_free(out);
}

int main(int argc, char **argv)
{
    mu_diag d = {{0}};
    if (argc < 5 || argc - 4 > 8 || sodium_init() < 0) {
        fprintf(stderr, "usage: gv_mklog CHAIN COORD_KEY OUTDIR MEMBER_KEY...\n");
        return 2;
    }
    check(gv_chain_load(argv[1], &chain, &n_chain, &d), &d);
    check(gv_signing_key_load(argv[2], coord_sk, &d), &d);
    for (int i = 4; i < argc; i++)
        check(gv_signing_key_load(argv[i], member_sk[n_keys++], &d), &d);
    gv_charter_hash(&chain[0].charter, log_id, NULL);
    size_t round1, release;
    gv_log *good = build(n_keys, &round1, &release);
    char path[4096];
    snprintf(path, sizeof path, "%s/good.log", argv[3]);
    check(gv_log_save(path, good, &d), &d);
    gv_log_entry(good, round1, &e);
    strcpy(e.metrics, "{\"round\":1,\"train_loss\":0.1}");
    save_variant(good, round1, &e, argv[3], "edited.log");
    save_variant(good, release, NULL, argv[3], "dropped.log");
    uint8_t pk[GV_PK_BYTES], other[GV_SK_BYTES];
    crypto_sign_keypair(pk, other);
    gv_log_entry(good, round1, &e);
    check(gv_entry_sign(&e, other, &d), &d);
    save_variant(good, round1, &e, argv[3], "resigned.log");
    gv_log *weak = build(1, &round1, &release);
    snprintf(path, sizeof path, "%s/noquorum.log", argv[3]);
    check(gv_log_save(path, weak, &d), &d);
    printf("round1=%zu release=%zu\n", round1, release);
    gv_log_free(good);
    gv_log_free(weak);
    free(chain);
    sodium_memzero(coord_sk, sizeof coord_sk);
    sodium_memzero(member_sk, sizeof member_sk);
    return 0;
}
