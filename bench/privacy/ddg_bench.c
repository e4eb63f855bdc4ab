/* ddg_bench.c - one org's distributed discrete Gaussian encoding (dp_ddg_encode: rotation,
 * conditional rounding, noise) for a d-value update, as JSON: for 1 and for T threads in the
 * same run, the best wall ms of each part and of the whole and the best CPU ms over reps; the
 * outputs of the thread counts are compared (they must be equal).
 *   ddg_bench [--d D] [--noise Z] [--survivors K] [--reps R] [--threads T]
 * The scale makes l2·scale = 2^15 (l2 = 1), so σ per org = Z·Δ₂/√K in integer units. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dp_ddg.h"

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double mono_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double min_d(double a, double b)
{
    return a < b ? a : b;
}

int main(int argc, char **argv)
{
    uint32_t d = 1000000, k = 10;
    double z = 1.0;
    int reps = 3, tmax = 2;
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
            tmax = atoi(argv[++i]);
        else {
            fprintf(
                stderr,
                "usage: ddg_bench [--d D] [--noise Z] [--survivors K] [--reps R] [--threads T]\n");
            return 2;
        }
    }
    if (d < 1 || reps < 1 || tmax < 1)
        return 2;
    if (sodium_init() < 0) /* selects libsodium's SIMD ChaCha20, as mutual does */
        return 1;
    dp_ddg p = {.dim = d, .l2 = 1, .scale = 32768, .noise = z, .min_survivors = k};
    float *x = malloc(d * sizeof *x);
    int64_t *out = malloc(d * sizeof *out), *first = malloc(d * sizeof *first);
    if (!x || !out || !first)
        return 1;
    for (uint32_t i = 0; i < d; i++)
        x[i] = (float)((i % 7) - 3) / 2000.0f; /* norm about 1: clipped to l2 by encode */
    uint8_t seed[DP_SEED_BYTES] = {1, 2, 3};
    uint64_t num, den;
    dp_ddg_sigma2(&p, &num, &den);
    printf("{\"bench\":\"ddg_encode\",\"d\":%u,\"noise\":%g,\"survivors\":%u,\"sigma2\":%.6g,"
           "\"reps\":%d,\"runs\":[",
           d, z, k, (double)num / (double)den, reps);
    int same = 1;
    for (int th = 1; th <= tmax; th = th == 1 && tmax > 1 ? tmax : tmax + 1) {
        p.threads = th;
        double wall = 1e30, cpu = 1e30, part[3] = {1e30, 1e30, 1e30};
        unsigned tries = 0;
        for (int r = 0; r < reps; r++) {
            dp_rng rng;
            dp_rng_init(&rng, seed, 0); /* the same stream every time: outputs comparable */
            double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
            double ms[3];
            mu_diag diag;
            if (dp_ddg_encode_timed(out, x, &p, &rng, &tries, mono_s, ms, &diag) != MU_OK) {
                fprintf(stderr, "ddg_bench: %s\n", diag.msg);
                return 1;
            }
            wall = min_d(wall, clock_s(CLOCK_MONOTONIC) - t0);
            cpu = min_d(cpu, clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
            for (int j = 0; j < 3; j++)
                part[j] = min_d(part[j], ms[j]);
            dp_rng_deinit(&rng);
        }
        if (th == 1)
            memcpy(first, out, d * sizeof *out);
        else
            same &= !memcmp(first, out, d * sizeof *out);
        printf("%s\n {\"threads\":%d,\"tries_last\":%u,\"wall_ms\":%.1f,\"cpu_ms\":%.1f,"
               "\"rotate_ms\":%.1f,\"round_ms\":%.1f,\"noise_ms\":%.1f}",
               th == 1 ? "" : ",", th, tries, wall * 1e3, cpu * 1e3, part[0], part[1], part[2]);
    }
    printf("],\"same_output\":%s}\n", same ? "true" : "false");
    free(x);
    free(out);
    free(first);
    return same ? 0 : 1;
}
