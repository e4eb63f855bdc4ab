/* ddg_bench.c - one org's distributed discrete Gaussian encoding (dp_ddg_encode: rotation,
 * conditional rounding, noise) for a d-value update, as JSON: best wall and CPU ms over reps,
 * and the rotation alone.
 *   ddg_bench [--d D] [--noise Z] [--survivors K] [--reps R] [--threads T]
 * The scale makes l2·scale = 2^15 (l2 = 1), so σ per org = Z·Δ₂/√K in integer units. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_ddg.h"

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    uint32_t d = 1000000, k = 10;
    double z = 1.0;
    int reps = 3, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--d") && i + 1 < argc)
            d = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--noise") && i + 1 < argc)
            z = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--survivors") && i + 1 < argc)
            k = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(
                stderr,
                "usage: ddg_bench [--d D] [--noise Z] [--survivors K] [--reps R] [--threads T]\n");
            return 2;
        }
    }
    dp_ddg p = {
        .dim = d, .l2 = 1, .scale = 32768, .noise = z, .min_survivors = k, .threads = threads};
    float *x = malloc(d * sizeof *x);
    int64_t *out = malloc(d * sizeof *out);
    double *v = malloc(d * sizeof *v);
    if (!x || !out || !v)
        return 1;
    for (uint32_t i = 0; i < d; i++)
        x[i] = (float)((i % 7) - 3) / 2000.0f; /* norm about 1: clipped to l2 by encode */
    uint8_t seed[DP_SEED_BYTES] = {1, 2, 3};
    double wall = 1e30, cpu = 1e30, rot = 1e30;
    unsigned tries = 0;
    for (int r = 0; r < reps; r++) {
        dp_rng rng;
        dp_rng_init(&rng, seed, (uint64_t)r);
        double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
        mu_diag diag;
        if (dp_ddg_encode(out, x, &p, &rng, &tries, &diag) != MU_OK) {
            fprintf(stderr, "ddg_bench: %s\n", diag.msg);
            return 1;
        }
        double w = clock_s(CLOCK_MONOTONIC) - t0, c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        wall = w < wall ? w : wall;
        cpu = c < cpu ? c : cpu;
        dp_rng_deinit(&rng);
        for (uint32_t i = 0; i < d; i++)
            v[i] = x[i];
        t0 = clock_s(CLOCK_MONOTONIC);
        dp_ddg_rotate(v, &p, 0);
        w = clock_s(CLOCK_MONOTONIC) - t0;
        rot = w < rot ? w : rot;
    }
    uint64_t num, den;
    dp_ddg_sigma2(&p, &num, &den);
    printf(
        "{\"bench\":\"ddg_encode\",\"d\":%u,\"noise\":%g,\"survivors\":%u,\"sigma2\":%.6g,"
        "\"tries_last\":%u,\"wall_ms\":%.1f,\"cpu_ms\":%.1f,\"rotate_ms\":%.1f,\"threads\":%d}\n",
        d, z, k, (double)num / (double)den, tries, wall * 1e3, cpu * 1e3, rot * 1e3, threads);
    free(x);
    free(out);
    free(v);
    return 0;
}
