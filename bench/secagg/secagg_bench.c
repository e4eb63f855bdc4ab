/* secagg_bench - one full SecAgg+ round in process, timed; prints one JSON object.
 *
 *   secagg_bench --n N --d D --drop F --when before|after [--k K] [--t T] [--bits B]
 *                [--server-threads S] [--client-threads C] [--seed X] --json
 *
 * --drop F drops round(F*n) orgs: `before` = they never upload their masked input (the
 * server must reconstruct their mask keys and remove their pair masks), `after` = they
 * upload but do not answer the unmask request. Inputs are generated per org just before
 * its masked upload, so memory stays O(d) apart from the clients' small state. The sum is
 * checked against the plain sum ("correct"). */
#include <sodium.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "mu_progress.h"
#include "sa.h"
#include "sa_msg.h"

typedef struct {
    uint32_t n, d, bits, k, t;
    double drop;
    int after;
    int server_threads, client_threads;
    uint64_t seed;
} args;

static int parse(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->n = 100, a->d = 1000000, a->bits = 32, a->server_threads = 2, a->client_threads = 1;
    a->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--json"))
            continue;
        if (!v)
            return -1;
        if (!strcmp(o, "--n"))
            a->n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--d"))
            a->d = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--drop"))
            a->drop = strtod(v, NULL);
        else if (!strcmp(o, "--when"))
            a->after = !strcmp(v, "after") ? 1 : (!strcmp(v, "before") ? 0 : -1);
        else if (!strcmp(o, "--k"))
            a->k = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--t"))
            a->t = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--bits"))
            a->bits = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--server-threads"))
            a->server_threads = atoi(v);
        else if (!strcmp(o, "--client-threads"))
            a->client_threads = atoi(v);
        else if (!strcmp(o, "--seed"))
            a->seed = strtoull(v, NULL, 10);
        else
            return -1;
        i++;
    }
    if (a->after < 0 || a->n < 2 || a->drop < 0 || a->drop >= 1 || a->bits < 1 || a->bits > 32)
        return -1;
    return 0;
}

/* Process CPU seconds: on a shared machine, wall time mostly measures the neighbours. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The wall clock secure_agg's timing fields read (injected: the library reads no clock). */
static double wall_now(void *ctx)
{
    (void)ctx;
    return mu_now();
}

static uint64_t xs64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct {
    args a;
    sa_config cfg;
    uint32_t *ids;
    uint8_t (*pks)[32], (*sks)[64];
    sa_client **cl;
    sa_rng_seeded *rngs;
    int *drop_at; /* 3: before upload, 5: after upload */
    sa_server *srv;
    uint32_t *input, *expect;
    double server_s;          /* all server calls, wall */
    double server_cpu_unmask; /* CPU seconds closing the unmask stage (all threads) */
    double server_cpu_sum;    /* CPU seconds adding masked inputs */
    double (*cpu)[6];         /* (n) CPU seconds per org per stage */
    size_t upload_bytes, client_bytes_total;
    int errors;
} bench;

static int idx_of(const bench *b, uint32_t id)
{
    return (id >= 1 && id <= b->a.n) ? (int)id - 1 : -1;
}

static int stage_of(sa_msg_type t)
{
    return t == SA_MSG_ADVERTISE     ? 1
           : t == SA_MSG_SHARES      ? 2
           : t == SA_MSG_MASKED      ? 3
           : t == SA_MSG_CONSIST_SIG ? 4
                                     : 5;
}

static void to_server(bench *b, int i, sa_outbox *ob)
{
    for (size_t e = 0; e < ob->count; e++) {
        sa_msg_type type;
        uint32_t org;
        if (sa_msg_peek(ob->items[e].bytes, ob->items[e].len, &type, &org))
            continue;
        if (b->drop_at[i] && b->drop_at[i] <= stage_of(type))
            continue;
        b->client_bytes_total += ob->items[e].len;
        if (type == SA_MSG_MASKED) {
            b->upload_bytes = ob->items[e].len;
            /* the plain sum of what reached the server */
            uint32_t mask = b->a.bits == 32 ? 0xFFFFFFFFu : (1u << b->a.bits) - 1;
            uint64_t s = b->a.seed * 1000003 + (uint64_t)i + 1;
            for (uint32_t j = 0; j < b->a.d; j++)
                b->expect[j] += (uint32_t)xs64(&s) & mask;
        }
        double t0 = mu_now(), c0 = cpu_now();
        mu_diag diag = {{0}};
        int rc =
            sa_server_handle(b->srv, b->ids[i], ob->items[e].bytes, ob->items[e].len, NULL, &diag);
        b->server_s += mu_now() - t0;
        if (type == SA_MSG_MASKED)
            b->server_cpu_sum += cpu_now() - c0;
        if (rc) {
            fprintf(stderr, "server refused a message: %s\n", diag.msg);
            b->errors++;
        }
    }
    sa_outbox_clear(ob);
}

static void deliver(bench *b, uint32_t to, const uint8_t *bytes, size_t len, sa_outbox *reply)
{
    int i = idx_of(b, to);
    if (i < 0)
        return;
    sa_msg_type type;
    uint32_t org;
    if (sa_msg_peek(bytes, len, &type, &org) == MU_OK && type == SA_MSG_DELIVERY) {
        /* the org's update is ready just before its upload */
        uint32_t mask = b->a.bits == 32 ? 0xFFFFFFFFu : (1u << b->a.bits) - 1;
        uint64_t s = b->a.seed * 1000003 + (uint64_t)i + 1;
        for (uint32_t j = 0; j < b->a.d; j++)
            b->input[j] = (uint32_t)xs64(&s) & mask;
        if (sa_client_set_input(b->cl[i], b->input, b->a.d))
            b->errors++;
    }
    mu_diag diag = {{0}};
    sa_stage st = sa_client_stage(b->cl[i]);
    double c0 = cpu_now();
    int rc = sa_client_handle(b->cl[i], bytes, len, reply, &diag);
    if (st >= SA_STAGE_SHARE && st <= SA_STAGE_UNMASK)
        b->cpu[i][st] += cpu_now() - c0;
    if (rc) {
        fprintf(stderr, "org %u: %s\n", to, diag.msg);
        b->errors++;
    }
    to_server(b, i, reply);
}

static int step(bench *b, sa_stage st)
{
    sa_outbox ob, reply;
    sa_outbox_init(&ob);
    sa_outbox_init(&reply);
    mu_diag diag = {{0}};
    double t0 = mu_now(), c0 = cpu_now();
    int rc = sa_server_close_stage(b->srv, st, &ob, &diag);
    b->server_s += mu_now() - t0;
    if (st == SA_STAGE_UNMASK)
        b->server_cpu_unmask += cpu_now() - c0;
    if (rc)
        fprintf(stderr, "close stage %d: %s\n", (int)st, diag.msg);
    uint32_t *rcpt = malloc(b->a.n * sizeof *rcpt);
    size_t nr = sa_server_recipients(b->srv, rcpt, b->a.n);
    for (size_t e = 0; e < ob.count; e++) {
        if (ob.items[e].to == SA_TO_ALL)
            for (size_t r = 0; r < nr; r++)
                deliver(b, rcpt[r], ob.items[e].bytes, ob.items[e].len, &reply);
        else
            deliver(b, ob.items[e].to, ob.items[e].bytes, ob.items[e].len, &reply);
    }
    free(rcpt);
    sa_outbox_deinit(&ob);
    sa_outbox_deinit(&reply);
    return rc;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Raw single-thread ChaCha20 keystream rate right now (GB/s): the machine is shared, so
 * every result carries the rate it was measured against. */
static double chacha_gbps(void)
{
    size_t len = 16u << 20;
    uint8_t *buf = calloc(len, 1), key[32] = {1}, nonce[12] = {0};
    if (!buf)
        return 0;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = mu_now();
        crypto_stream_chacha20_ietf_xor_ic(buf, buf, len, nonce, 0, key);
        double dt = mu_now() - t0;
        if (len / dt / 1e9 > best)
            best = len / dt / 1e9;
    }
    free(buf);
    return best;
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    if (parse(argc, argv, &b.a)) {
        fprintf(stderr, "usage: secagg_bench --n N --d D --drop F --when before|after [--k K] "
                        "[--t T] [--bits B] [--server-threads S] [--client-threads C] --json\n");
        return 2;
    }
    if (sa_init())
        return 1;
    args *a = &b.a;
    if (a->k == 0) {
        sa_graph_params p = sa_graph_params_default();
        sa_graph_choose(a->n, &p, &a->k, &a->t);
    }
    uint32_t k_eff = a->k < a->n - 1 ? a->k : a->n - 1;
    if (a->t == 0)
        a->t = sa_min_threshold(a->n, k_eff);
    b.ids = malloc(a->n * sizeof *b.ids);
    b.pks = malloc(a->n * 32ul);
    b.sks = malloc(a->n * 64ul);
    b.cl = calloc(a->n, sizeof *b.cl);
    b.rngs = calloc(a->n, sizeof *b.rngs);
    b.drop_at = calloc(a->n, sizeof *b.drop_at);
    b.input = malloc((a->d ? a->d : 1) * sizeof *b.input);
    b.expect = calloc(a->d ? a->d : 1, sizeof *b.expect);
    b.cpu = calloc(a->n, sizeof *b.cpu);
    for (uint32_t i = 0; i < a->n; i++) {
        uint8_t seed[32] = {0};
        memcpy(seed, &i, 4);
        memcpy(seed + 4, &a->seed, 8);
        b.ids[i] = i + 1;
        crypto_sign_seed_keypair(b.pks[i], b.sks[i], seed);
        seed[31] = 1;
        sa_rng_seeded_init(&b.rngs[i], seed);
    }
    uint32_t ndrop = (uint32_t)(a->drop * a->n + 0.5);
    uint64_t s = a->seed * 7919 + 17;
    for (uint32_t j = 0; j < ndrop; j++) {
        uint32_t i = (uint32_t)(xs64(&s) % a->n);
        while (b.drop_at[i])
            i = (i + 1) % a->n;
        b.drop_at[i] = a->after ? 5 : 3;
    }
    b.cfg = (sa_config){.round_id = 1,
                        .n = a->n,
                        .org_ids = b.ids,
                        .sign_pks = (const uint8_t(*)[32])b.pks,
                        .d = a->d,
                        .bits = a->bits,
                        .k = a->k,
                        .t = a->t,
                        .clock = {.now = wall_now}};
    mu_diag diag = {{0}};
    b.srv = sa_server_new(&b.cfg, &diag);
    if (!b.srv) {
        fprintf(stderr, "%s\n", diag.msg);
        return 1;
    }
    sa_server_set_threads(b.srv, a->server_threads);
    sa_outbox ob;
    sa_outbox_init(&ob);
    for (uint32_t i = 0; i < a->n; i++) {
        sa_rng r = sa_rng_from_seeded(&b.rngs[i]);
        b.cl[i] = sa_client_new(&b.cfg, b.ids[i], b.sks[i], &r, &diag);
        if (!b.cl[i]) {
            fprintf(stderr, "%s\n", diag.msg);
            return 1;
        }
        sa_client_set_threads(b.cl[i], a->client_threads);
        double c0 = cpu_now();
        sa_client_start(b.cl[i], &ob, &diag);
        b.cpu[i][1] += cpu_now() - c0;
        to_server(&b, (int)i, &ob);
    }
    sa_outbox_deinit(&ob);
    double gbps_before = chacha_gbps();
    double t_round = mu_now();
    int rc = MU_OK;
    for (int st = SA_STAGE_ADVERTISE; st <= SA_STAGE_UNMASK && rc == MU_OK; st++)
        rc = step(&b, (sa_stage)st);
    t_round = mu_now() - t_round;
    double gbps = (gbps_before + chacha_gbps()) / 2;

    const uint32_t *sum = NULL;
    size_t d = 0;
    int correct = rc == MU_OK && sa_server_result(b.srv, &sum, &d) == MU_OK;
    if (correct && a->bits < 32)
        for (uint32_t j = 0; j < a->d; j++)
            b.expect[j] &= (1u << a->bits) - 1;
    if (correct && a->d)
        correct = memcmp(sum, b.expect, a->d * sizeof *sum) == 0;

    /* one org's cost: the median over orgs that took part in all five stages */
    double *tot = calloc(a->n, sizeof *tot), st_sum[6] = {0};
    double *ctot = calloc(a->n, sizeof *ctot), cst_sum[6] = {0};
    uint32_t m = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        if (b.drop_at[i])
            continue;
        double t[6];
        sa_client_times(b.cl[i], t);
        tot[m++] = (t[1] + t[2] + t[3] + t[4] + t[5]) * 1e3;
        ctot[m - 1] = 0;
        for (int k = 1; k <= 5; k++) {
            st_sum[k] += t[k] * 1e3;
            cst_sum[k] += b.cpu[i][k] * 1e3;
            ctot[m - 1] += b.cpu[i][k] * 1e3;
        }
    }
    qsort(tot, m, sizeof *tot, cmp_double);
    qsort(ctot, m, sizeof *ctot, cmp_double);
    double sum_s, unmask_s;
    sa_server_times(b.srv, &sum_s, &unmask_s);
    printf("{\"n\": %u, \"d\": %u, \"bits\": %u, \"k\": %u, \"t\": %u, \"drop\": %.3f, "
           "\"dropped\": %u, \"when\": \"%s\", \"server_threads\": %d, \"client_threads\": %d, "
           "\"client_ms\": %.3f, \"client_ms_min\": %.3f, \"client_ms_max\": %.3f, "
           "\"client_stage_ms\": {\"advertise\": %.3f, \"share\": %.3f, \"masked\": %.3f, "
           "\"consistency\": %.3f, \"unmask\": %.3f}, "
           "\"client_cpu_ms\": %.3f, \"client_cpu_stage_ms\": {\"advertise\": %.3f, "
           "\"share\": %.3f, \"masked\": %.3f, \"consistency\": %.3f, \"unmask\": %.3f}, "
           "\"server_cpu_unmask_ms\": %.3f, \"server_cpu_sum_ms\": %.3f, "
           "\"server_ms\": %.3f, \"server_unmask_ms\": %.3f, \"server_sum_ms\": %.3f, "
           "\"server_all_calls_ms\": %.3f, \"round_wall_ms\": %.3f, "
           "\"upload_bytes_per_client\": %zu, \"upload_bytes_per_value\": %.4f, "
           "\"client_bytes_sent_total\": %zu, \"chacha20_gbps_1core\": %.2f, \"correct\": %s, "
           "\"errors\": %d}\n",
           a->n, a->d, a->bits, a->k, a->t, a->drop, ndrop, a->after ? "after" : "before",
           a->server_threads, a->client_threads, m ? tot[m / 2] : 0.0, m ? tot[0] : 0.0,
           m ? tot[m - 1] : 0.0, m ? st_sum[1] / m : 0, m ? st_sum[2] / m : 0,
           m ? st_sum[3] / m : 0, m ? st_sum[4] / m : 0, m ? st_sum[5] / m : 0,
           m ? ctot[m / 2] : 0.0, m ? cst_sum[1] / m : 0, m ? cst_sum[2] / m : 0,
           m ? cst_sum[3] / m : 0, m ? cst_sum[4] / m : 0, m ? cst_sum[5] / m : 0,
           b.server_cpu_unmask * 1e3, b.server_cpu_sum * 1e3, (sum_s + unmask_s) * 1e3,
           unmask_s * 1e3, sum_s * 1e3, b.server_s * 1e3, t_round * 1e3, b.upload_bytes,
           a->d ? (double)b.upload_bytes / a->d : 0.0, b.client_bytes_total, gbps,
           correct ? "true" : "false", b.errors);
    for (uint32_t i = 0; i < a->n; i++)
        sa_client_free(b.cl[i]);
    sa_server_free(b.srv);
    free(tot);
    free(ctot);
    free(b.cpu);
    free(b.ids);
    free(b.pks);
    sodium_memzero(b.sks, a->n * 64ul);
    free(b.sks);
    free(b.cl);
    free(b.rngs);
    free(b.drop_at);
    free(b.input);
    free(b.expect);
    return correct ? 0 : 1;
}
