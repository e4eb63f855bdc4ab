/* co_wire_seeds.c - the seed corpora of fuzz_co_wire and fuzz_co_round, made by the encoders.
 *
 * usage: co_wire_seeds write|check WIRE_DIR ROUND_DIR
 *   write  (re)writes every seed file
 *   check  exits 1, naming the file, if a seed file is missing or differs from what today's
 *          encoders produce (a ctest runs this, so a wire version bump that leaves the seeds
 *          behind fails: stale seeds stop at the version byte and fuzz nothing behind it)
 *
 * Every seed is decoded again here before it is written or compared, so a seed is always a
 * message the current decoders accept. fuzz_co_round's seeds are its input layout: byte 0
 * (odd = bring the round to the first SecAgg stage), byte 1 the sender, then one report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "co_wire.h"

typedef struct {
    const char *name;
    uint8_t *bytes;
    size_t len;
} seed;

#define MAX_SEEDS 16
static seed seeds[2][MAX_SEEDS];
static int nseeds[2];

static void die(const char *what, const char *name)
{
    fprintf(stderr, "co_wire_seeds: %s: %s\n", name, what);
    exit(1);
}

static void add(int corpus, const char *name, const uint8_t *b, size_t len)
{
    if (nseeds[corpus] == MAX_SEEDS)
        die("too many seeds", name);
    seed *s = &seeds[corpus][nseeds[corpus]++];
    s->name = name;
    s->bytes = malloc(len);
    if (!s->bytes)
        die("out of memory", name);
    memcpy(s->bytes, b, len);
    s->len = len;
}

static void add_task(const char *name, const co_task *t)
{
    size_t cap = co_task_encoded_len(t), len = 0;
    uint8_t *buf = malloc(cap);
    mu_diag d = {{0}};
    co_task back;
    if (!buf || co_task_encode(t, buf, cap, &len) != MU_OK || len != cap)
        die("does not encode", name);
    if (co_task_decode(&back, buf, len, &d) != MU_OK)
        die(d.msg, name);
    co_task_deinit(&back);
    add(0, name, buf, len);
    free(buf);
}

static void add_report(const char *name, co_report_type type)
{
    co_report r = {type, 42}, back;
    uint8_t b[2 + CO_REPORT_BYTES];
    co_report_encode(&r, b + 2);
    if (co_report_decode(&back, b + 2, CO_REPORT_BYTES) != MU_OK)
        die("does not decode", name);
    add(0, name, b + 2, CO_REPORT_BYTES);
    /* fuzz_co_round: round 1 of its 3-org coordinator, sender org 1; an even byte 0 leaves
     * the round in training, where READY and EVAL reports are read. */
    r.round = 1;
    co_report_encode(&r, b + 2);
    b[0] = 0;
    b[1] = 1;
    add(1, name, b, sizeof b);
}

static void make(void)
{
    static uint32_t ids[3] = {1, 4, 9};
    static uint8_t pks[3][CO_ORG_PK_BYTES];
    static uint8_t sa[40];
    for (int i = 0; i < 3; i++)
        memset(pks[i], 0x10 + i, CO_ORG_PK_BYTES);
    for (int i = 0; i < 40; i++)
        sa[i] = (uint8_t)(i * 7);
    co_round_config cfg = {.round = 42,
                           .kind = CO_ROUND_TRAIN,
                           .weight = CO_WEIGHT_EXAMPLES,
                           .seed = 0x0123456789abcdefull,
                           .steps = 20,
                           .batch = 8,
                           .seq = 128,
                           .lr = 1e-4,
                           .fedprox_mu = 0.01,
                           .dim = 1000,
                           .bits = 32,
                           .quant_n = 3,
                           .clip = 1.0,
                           .scale = 2048,
                           .weight_max = 1e4};
    co_task t = {.kind = CO_TASK_WAIT, .org_id = 5};
    add_task("wait_task", &t);
    t.kind = CO_TASK_DONE;
    add_task("done_task", &t);
    t.kind = CO_TASK_TRAIN;
    t.deadline = 123.5;
    t.cfg = cfg;
    add_task("train_task", &t);
    t.cfg.round = (1ull << 31) + 7;
    t.cfg.dp_clip = 0.5, t.cfg.dp_noise = 1.1, t.cfg.dp_sampling = 1;
    add_task("train_task_dp_round_2_31", &t);
    t.kind = CO_TASK_EVAL;
    t.cfg = cfg;
    t.cfg.kind = CO_ROUND_EVAL;
    add_task("eval_task", &t);
    t.kind = CO_TASK_SECAGG;
    t.cfg = cfg;
    t.cfg.k = 2, t.cfg.t = 2;
    for (unsigned i = 0; i < CO_SA_NONCE_BYTES; i++)
        t.cfg.sa_nonce[i] = (uint8_t)(0xA5 ^ i);
    t.stage = 1;
    t.n_cohort = 3;
    t.cohort_ids = ids;
    t.cohort_pks = pks;
    add_task("advertise_task", &t);
    t.stage = 2;
    t.sa_msg = sa;
    t.sa_len = sizeof sa;
    add_task("secagg_stage2_task", &t);
    add_report("ready_report", CO_REPORT_READY);
    add_report("eval_report", CO_REPORT_EVAL);
    add_report("leave_report", CO_REPORT_LEAVE);
}

static int check(const char *dir, const seed *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "co_wire_seeds: %s is missing\n", path);
        return 1;
    }
    uint8_t *buf = malloc(s->len + 1);
    size_t n = buf ? fread(buf, 1, s->len + 1, f) : 0;
    fclose(f);
    int bad = !buf || n != s->len || memcmp(buf, s->bytes, s->len) != 0;
    free(buf);
    if (bad)
        fprintf(stderr,
                "co_wire_seeds: %s differs from what today's encoder writes (stale after a wire "
                "change?): run `co_wire_seeds write fuzz/wire/fuzz_co_wire_corpus "
                "fuzz/coordinator/fuzz_co_round_corpus` from the source root\n",
                path);
    return bad;
}

static int write_seed(const char *dir, const seed *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(s->bytes, 1, s->len, f) != s->len;
    if (f && fclose(f) != 0)
        bad = 1;
    if (bad)
        fprintf(stderr, "co_wire_seeds: cannot write %s\n", path);
    return bad;
}

int main(int argc, char **argv)
{
    int w = argc == 4 && strcmp(argv[1], "write") == 0;
    if (argc != 4 || (!w && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: co_wire_seeds write|check WIRE_CORPUS_DIR ROUND_CORPUS_DIR\n");
        return 2;
    }
    make();
    int bad = 0;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < nseeds[c]; i++) {
            bad |= w ? write_seed(argv[2 + c], &seeds[c][i]) : check(argv[2 + c], &seeds[c][i]);
            free(seeds[c][i].bytes);
        }
    return bad;
}
