/* tok_bench TOKENIZER TEXT [RUNS]: encodes TEXT (any file) with the tokenizer.json at
 * TOKENIZER, RUNS times (default 3), each with a freshly loaded tokenizer (so its word cache
 * starts empty, as for a new dataset), on this one thread, and prints one JSON object: bytes,
 * tokens, the best and median seconds of the encode alone (loading excluded, timed apart) and
 * MB/s (10^6 bytes) at the best run; also the best thread CPU time and MB per CPU second,
 * which a machine shared with other jobs disturbs less than the wall clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mu_file.h"
#include "tr_tok.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: tok_bench TOKENIZER TEXT [RUNS]\n");
        return 2;
    }
    int runs = argc == 4 ? atoi(argv[3]) : 3;
    if (runs < 1 || runs > 100) {
        fprintf(stderr, "tok_bench: RUNS must be 1..100\n");
        return 2;
    }
    mu_diag d = {{0}};
    char *text;
    size_t len;
    if (mu_read_file(argv[2], 1u << 30, &text, &len, &d)) {
        fprintf(stderr, "tok_bench: %s\n", d.msg);
        return 1;
    }
    double secs[100], cpu[100], load = 0;
    size_t ntok = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        tr_tok *tok = tr_tok_load(argv[1], NULL, &d);
        if (!tok) {
            fprintf(stderr, "tok_bench: %s\n", d.msg);
            free(text);
            return 1;
        }
        double t1 = now(), c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        uint32_t *ids = NULL;
        int rc = tr_tok_encode(tok, text, len, &ids, &ntok);
        secs[r] = now() - t1;
        cpu[r] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c1;
        load = t1 - t0;
        free(ids);
        tr_tok_free(tok);
        if (rc) {
            fprintf(stderr, "tok_bench: encode: %s\n", mu_strerror(rc));
            free(text);
            return 1;
        }
    }
    qsort(secs, (size_t)runs, sizeof *secs, cmp_double);
    qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
    printf(
        "{\"bench\": \"tok_encode\", \"tokenizer\": \"%s\", \"text\": \"%s\", \"bytes\": %zu, "
        "\"tokens\": %zu, \"runs\": %d, \"load_seconds\": %.3f, \"encode_seconds_best\": %.4f, "
        "\"encode_seconds_median\": %.4f, \"mb_per_s\": %.1f, \"encode_cpu_seconds_best\": %.4f, "
        "\"mb_per_cpu_s\": %.1f, \"threads\": 1}\n",
        argv[1], argv[2], len, ntok, runs, load, secs[0], secs[runs / 2],
        (double)len / 1e6 / secs[0], cpu[0], (double)len / 1e6 / cpu[0]);
    free(text);
    return 0;
}
