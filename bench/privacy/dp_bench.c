/* dp_bench - speed of the exact discrete Gaussian samplers; prints one JSON object.
 *
 *   dp_bench [--d D] [--sigma2 S2 ...] [--reps R] [--no-ref]
 *
 * For each σ² (default 1e2, 1e4, 1e6, 1e8; 1e4 is about the per-org σ of the distributed
 * discrete Gaussian at 16-bit quantisation), D draws (default 10^6, one LoRA update):
 * - "fast": dp_dgauss_fill (the ziggurat, the default form) on 1 and on 2 OpenMP threads;
 * - "cks": the same fill with the CKS fast form (dp_dgauss_sample_cks per block), the previous
 *   default, in the same run;
 * - "ref": dp_dgauss_sample_ref (the bitwise CKS reference) on 1 and on 2 pthreads, each
 *   drawing its half from its own stream (skipped with --no-ref).
 * Wall time and process CPU time of each, best of R repetitions (default 3); CPU time stays
 * meaningful on a loaded machine. speedup_cpu is ref CPU time over fast CPU time (1 thread),
 * cks_over_fast_cpu the CKS form's over the ziggurat's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dp_sample.h"
#include "dp_sample_internal.h" /* dp_dgauss_fill_by */

static const uint8_t seed[DP_SEED_BYTES] = {1, 2, 3};

typedef struct {
    uint64_t num, den, stream;
    int64_t *out;
    size_t n;
} job;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *run_ref(void *p)
{
    job *j = p;
    dp_rng rng;
    dp_rng_init(&rng, seed, j->stream);
    if (dp_dgauss_sample_ref(&rng, j->num, j->den, j->out, j->n))
        abort();
    dp_rng_deinit(&rng);
    return NULL;
}

/* The reference on d draws split over `threads` pthreads; wall seconds, *cpu the CPU time. */
static double timed_ref(uint64_t num, uint64_t den, int64_t *out, size_t d, int threads,
                        double *cpu)
{
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
    pthread_t t[2];
    job j[2];
    size_t half = d / (size_t)threads;
    for (int i = 0; i < threads; i++) {
        j[i] = (job){num, den, (uint64_t)i, out + i * half, i == threads - 1 ? d - i * half : half};
        if (pthread_create(&t[i], NULL, run_ref, &j[i]))
            abort();
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    *cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    return clock_s(CLOCK_MONOTONIC) - t0;
}

static double timed_fill(uint64_t num, uint64_t den, int64_t *out, size_t d, int threads,
                         double *cpu, int cks)
{
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
    if (dp_dgauss_fill_by(seed, 0, num, den, out, d, threads, cks))
        abort();
    *cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    return clock_s(CLOCK_MONOTONIC) - t0;
}

static double timed_fast(uint64_t num, uint64_t den, int64_t *out, size_t d, int threads,
                         double *cpu)
{
    return timed_fill(num, den, out, d, threads, cpu, 0);
}

static double timed_cks(uint64_t num, uint64_t den, int64_t *out, size_t d, int threads,
                        double *cpu)
{
    return timed_fill(num, den, out, d, threads, cpu, 1);
}

typedef double (*timer)(uint64_t, uint64_t, int64_t *, size_t, int, double *);

/* Best wall and best CPU time over reps runs. */
static void best(timer f, uint64_t num, uint64_t den, int64_t *out, size_t d, int threads, int reps,
                 double *wall, double *cpu)
{
    *wall = *cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double c, w = f(num, den, out, d, threads, &c);
        *wall = w < *wall ? w : *wall;
        *cpu = c < *cpu ? c : *cpu;
    }
}

int main(int argc, char **argv)
{
    size_t d = 1000000;
    int reps = 3, ns = 0, ref = 1;
    double s2s[16];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--d") && i + 1 < argc)
            d = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sigma2") && i + 1 < argc && ns < 16)
            s2s[ns++] = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--no-ref"))
            ref = 0;
        else {
            fprintf(stderr, "usage: dp_bench [--d D] [--sigma2 S2 ...] [--reps R] [--no-ref]\n");
            return 2;
        }
    }
    if (!ns) {
        s2s[ns++] = 1e2;
        s2s[ns++] = 1e4;
        s2s[ns++] = 1e6;
        s2s[ns++] = 1e8;
    }
    int64_t *out = malloc(sizeof(int64_t) * (d ? d : 1));
    if (!out || d < 2 || reps < 1 || sodium_init() < 0) /* sodium_init picks the SIMD ChaCha20 */
        return 1;
    printf("{\"d\":%zu,\"reps\":%d,\"results\":[", d, reps);
    for (int s = 0; s < ns; s++) {
        uint64_t num, den;
        if (dp_sigma2_from_double(s2s[s], &num, &den)) {
            fprintf(stderr, "dp_bench: sigma2 %g is not a rational num/2^k\n", s2s[s]);
            return 2;
        }
        double fw1, fc1, fw2, fc2, cw1, cc1, cw2, cc2, rw1 = 0, rc1 = 0, rw2 = 0, rc2 = 0;
        best(timed_fast, num, den, out, d, 1, reps, &fw1, &fc1);
        best(timed_fast, num, den, out, d, 2, reps, &fw2, &fc2);
        best(timed_cks, num, den, out, d, 1, reps, &cw1, &cc1);
        best(timed_cks, num, den, out, d, 2, reps, &cw2, &cc2);
        if (ref) {
            best(timed_ref, num, den, out, d, 1, reps, &rw1, &rc1);
            best(timed_ref, num, den, out, d, 2, reps, &rw2, &rc2);
        }
        printf("%s\n {\"sigma2\":%g,\"fast\":{\"ms_1thread\":%.2f,\"cpu_ms_1thread\":%.2f,"
               "\"ms_2threads\":%.2f,\"cpu_ms_2threads\":%.2f,\"ns_per_draw_cpu\":%.1f,"
               "\"meets_10ms_2threads\":%s}",
               s ? "," : "", s2s[s], fw1 * 1e3, fc1 * 1e3, fw2 * 1e3, fc2 * 1e3, fc1 / d * 1e9,
               fw2 * 1e3 <= 10.0 ? "true" : "false");
        printf(",\"cks\":{\"ms_1thread\":%.2f,\"cpu_ms_1thread\":%.2f,\"ms_2threads\":%.2f,"
               "\"cpu_ms_2threads\":%.2f,\"ns_per_draw_cpu\":%.1f},\"cks_over_fast_cpu\":%.2f",
               cw1 * 1e3, cc1 * 1e3, cw2 * 1e3, cc2 * 1e3, cc1 / d * 1e9, cc1 / fc1);
        if (ref)
            printf(",\"ref\":{\"ms_1thread\":%.2f,\"cpu_ms_1thread\":%.2f,\"ms_2threads\":%.2f,"
                   "\"cpu_ms_2threads\":%.2f,\"ns_per_draw_cpu\":%.1f},\"speedup_cpu\":%.2f",
                   rw1 * 1e3, rc1 * 1e3, rw2 * 1e3, rc2 * 1e3, rc1 / d * 1e9, rc1 / fc1);
        printf("}");
    }
    printf("]}\n");
    free(out);
    return 0;
}
