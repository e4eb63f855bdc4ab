/* bf16_gemm_bench - GFLOP/s of the base products of a training step of a bench_models.h row
 * (--config; qwen05 by default: d 896, q/k/v 1152, MLP 2 x 4864, vocab 151,936; batch 4 x 512
 * = 2048 rows, the LM head one 208-row chunk), three ways in one run:
 *   bf16:     tr_bf16_gemm, the AVX-512 BF16 kernel (or the portable one without it),
 *   portable: tr_bf16_gemm forced to its portable path (bf16 W widened, sgemm),
 *   fp32:     cblas_sgemm on fp32 weights (the engine's fp32 path).
 * Rows are split over the OpenMP team in blocks of 16, as the engine splits them.
 *
 *   bf16_gemm_bench [--threads N] [--reps R] [--only NAME] [--config NAME]
 *
 * One JSON line per product: name, M, N, K, trans_w, and ms / GFLOP/s (median of R) per way.
 * bf16_gemm_torch.py times torch's bf16 and fp32 matmul on the same shapes. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_models.h"
#include "tr_bf16.h"

typedef struct {
    const char *name;
    int M, N, K, trans_w; /* C (M, N) = A (M, K) . op(W); trans_w: W (N, K) */
} shape;

#define N_PRODUCTS 10

/* The base products of one training step of a Llama-family row of bench_models.h (the
 * fused q/k/v, o, fused gate/up, down, forward and backward) at its B x T rows, and the LM
 * head's at the rows of one cross-entropy chunk (tr_ce_rows, the engine's default). */
static void products(const bench_cfg *b, shape out[N_PRODUCTS])
{
    int N = b->B * b->T, C = b->C, qkv = C + 2 * b->KV * (C / b->H), F = b->F, V = b->V;
    int hr = tr_ce_rows(0, N, V);
    const shape s[N_PRODUCTS] = {
        {"qkv_fwd", N, qkv, C, 1},       {"o_fwd", N, C, C, 1},     {"gate_up_fwd", N, 2 * F, C, 1},
        {"down_fwd", N, C, F, 1},        {"qkv_bwd", N, C, qkv, 0}, {"o_bwd", N, C, C, 0},
        {"gate_up_bwd", N, C, 2 * F, 0}, {"down_bwd", N, F, C, 0},  {"head_fwd", hr, V, C, 1},
        {"head_bwd", hr, C, V, 0},
    };
    memcpy(out, s, sizeof s);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* way 0 bf16, 1 portable, 2 fp32: one product with rows split over nt threads. */
static void run(const shape *s, int way, int nt, const float *A, const uint16_t *W, const float *Wf,
                float *C)
{
    int blocks = (s->M + 15) / 16;
#pragma omp parallel num_threads(nt)
    {
        int p = omp_get_thread_num(), np = omp_get_num_threads();
        int m0 = blocks * p / np * 16, m1 = blocks * (p + 1) / np * 16;
        m0 = m0 < s->M ? m0 : s->M;
        m1 = m1 < s->M ? m1 : s->M;
        int ldw = s->trans_w ? s->K : s->N;
        if (m1 > m0) {
            if (way < 2)
                tr_bf16_gemm(m1 - m0, s->N, s->K, A + (int64_t)m0 * s->K, s->K, W, ldw, s->trans_w,
                             0.0f, C + (int64_t)m0 * s->N, s->N);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, s->trans_w ? CblasTrans : CblasNoTrans,
                            m1 - m0, s->N, s->K, 1.0f, A + (int64_t)m0 * s->K, s->K, Wf, ldw, 0.0f,
                            C + (int64_t)m0 * s->N, s->N);
        }
    }
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3;
    const char *only = NULL, *config = "qwen05";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else {
            fprintf(stderr, "usage: bf16_gemm_bench [--threads N] [--reps R] [--only NAME]\n"
                            "                       [--config NAME]\n"
                            "GFLOP/s of the bf16 kernel, its portable path and fp32 sgemm at the\n"
                            "product shapes of a training step of a Llama-family model of\n"
                            "bench_models.h (qwen05, the default; smollm135 is an org's round of\n"
                            "org_bf16.sh); one JSON line per shape.\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (threads < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "bf16_gemm_bench: --threads >= 1, --reps in [1, 100]\n");
        return 2;
    }
    const bench_cfg *bc = bench_cfg_find(config);
    if (!bc || !bc->llama) {
        fprintf(stderr,
                "bf16_gemm_bench: --config names a Llama-family row of bench_models.h, "
                "not '%s'\n",
                config);
        return 2;
    }
    shape table[N_PRODUCTS];
    products(bc, table);
    omp_set_num_threads(threads);
    for (size_t si = 0; si < N_PRODUCTS; si++) {
        const shape *s = &table[si];
        if (only && strcmp(only, s->name) != 0)
            continue;
        int64_t na = (int64_t)s->M * s->K, nw = (int64_t)s->N * s->K, nc = (int64_t)s->M * s->N;
        float *A = malloc(sizeof(float) * (size_t)na), *Wf = malloc(sizeof(float) * (size_t)nw);
        float *C = malloc(sizeof(float) * (size_t)nc);
        uint16_t *W = malloc(sizeof(uint16_t) * (size_t)nw);
        if (!A || !Wf || !C || !W) {
            fprintf(stderr, "bf16_gemm_bench: out of memory for %s\n", s->name);
            return 1;
        }
        uint64_t z = 1;
        for (int64_t i = 0; i < na; i++)
            A[i] = (float)((z = z * 6364136223846793005ull + 1442695040888963407ull) >> 40) /
                       (1 << 23) -
                   1.0f;
        for (int64_t i = 0; i < nw; i++)
            Wf[i] = (float)((z = z * 6364136223846793005ull + 1442695040888963407ull) >> 40) /
                        (1 << 23) * 0.05f -
                    0.05f;
        tr_bf16_round(W, Wf, nw);
        tr_bf16_widen(Wf, W, nw); /* fp32 sees the same weights */
        double flop = 2.0 * s->M * s->N * s->K, ms[3];
        for (int way = 0; way < 3; way++) {
            tr_bf16_set_portable(way == 1);
            double t[100];
            run(s, way, threads, A, W, Wf, C); /* warm-up */
            for (int r = 0; r < reps; r++) {
                double t0 = now_ms();
                run(s, way, threads, A, W, Wf, C);
                t[r] = now_ms() - t0;
            }
            qsort(t, (size_t)reps, sizeof(double), cmp_double);
            ms[way] = t[reps / 2];
        }
        tr_bf16_set_portable(0);
        printf("{\"config\":\"%s\",\"name\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"trans_w\":%d,"
               "\"threads\":%d,"
               "\"native\":%d,\"bf16_ms\":%.2f,\"bf16_gflops\":%.1f,\"portable_ms\":%.2f,"
               "\"portable_gflops\":%.1f,\"fp32_ms\":%.2f,\"fp32_gflops\":%.1f}\n",
               config, s->name, s->M, s->N, s->K, s->trans_w, threads, tr_bf16_native(), ms[0],
               flop / ms[0] / 1e6, ms[1], flop / ms[1] / 1e6, ms[2], flop / ms[2] / 1e6);
        fflush(stdout);
        free(A), free(Wf), free(C), free(W);
    }
    return 0;
}
