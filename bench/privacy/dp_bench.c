/* dp_bench - speed of the exact discrete Gaussian sampler; prints one JSON object.
 *
 *   dp_bench [--d D] [--sigma2 S2 ...] [--reps R]
 *
 * For each σ² (default 100, 1e4 and 1e6: 1e4 is about the per-org σ of the distributed
 * discrete Gaussian at 16-bit quantisation): draws per second on one core, and the wall
 * time of D draws (default 10^6, one LoRA update) on 1 and on 2 threads, each thread
 * drawing its half from its own ChaCha20 stream; draws_per_cpu_s divides by the CPU time
 * used, which stays meaningful on a loaded machine. Best of R repetitions (default 3). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_sample.h"

typedef struct {
    uint64_t num, den, stream;
    int64_t *out;
    size_t n;
} job;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *run(void *p)
{
    job *j = p;
    static const uint8_t seed[DP_SEED_BYTES] = {1, 2, 3};
    dp_rng rng;
    dp_rng_init(&rng, seed, j->stream);
    if (dp_dgauss_sample(&rng, j->num, j->den, j->out, j->n))
        abort();
    dp_rng_deinit(&rng);
    return NULL;
}

/* Wall time of d draws split over `threads` threads; *cpu (may be NULL) gets the CPU time
 * they used, which a loaded machine does not inflate. */
static double timed(uint64_t num, uint64_t den, int64_t *out, size_t d, int threads, double *cpu)
{
    double c0 = cpu_now();
    pthread_t t[2];
    job j[2];
    size_t half = d / (size_t)threads;
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        j[i] = (job){num, den, (uint64_t)i, out + i * half, i == threads - 1 ? d - i * half : half};
        if (pthread_create(&t[i], NULL, run, &j[i]))
            abort();
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    if (cpu)
        *cpu = cpu_now() - c0;
    return now() - t0;
}

int main(int argc, char **argv)
{
    size_t d = 1000000;
    int reps = 3, ns = 0;
    double s2s[16];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--d") && i + 1 < argc)
            d = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sigma2") && i + 1 < argc && ns < 16)
            s2s[ns++] = strtod(argv[++i], NULL);
        else {
            fprintf(stderr, "usage: dp_bench [--d D] [--sigma2 S2 ...] [--reps R]\n");
            return 2;
        }
    }
    if (!ns) {
        s2s[ns++] = 100;
        s2s[ns++] = 1e4;
        s2s[ns++] = 1e6;
    }
    int64_t *out = malloc(sizeof(int64_t) * (d ? d : 1));
    if (!out || d < 2 || reps < 1)
        return 1;
    printf("{\"d\":%zu,\"reps\":%d,\"results\":[", d, reps);
    for (int s = 0; s < ns; s++) {
        uint64_t num, den;
        if (dp_sigma2_from_double(s2s[s], &num, &den)) {
            fprintf(stderr, "dp_bench: sigma2 %g is not a rational num/2^k\n", s2s[s]);
            return 2;
        }
        double best1 = 1e30, best2 = 1e30, cpu1 = 1e30;
        for (int r = 0; r < reps; r++) {
            double c, a = timed(num, den, out, d, 1, &c), b = timed(num, den, out, d, 2, NULL);
            best1 = a < best1 ? a : best1;
            best2 = b < best2 ? b : best2;
            cpu1 = c < cpu1 ? c : cpu1;
        }
        printf("%s{\"sigma2\":%g,\"draws_per_s_1thread\":%.0f,\"draws_per_cpu_s\":%.0f,"
               "\"ms_1thread\":%.3f,\"ms_2threads\":%.3f,\"meets_10ms_2threads\":%s}",
               s ? "," : "", s2s[s], (double)d / best1, (double)d / cpu1, best1 * 1e3, best2 * 1e3,
               best2 * 1e3 <= 10.0 ? "true" : "false");
    }
    printf("]}\n");
    free(out);
    return 0;
}
