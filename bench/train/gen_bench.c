/* gen_bench: the mutual side of bench/gen_vs_torch (generation with the KV cache).
 *   gen_bench [--threads N] [--prompt P] [--decode D] [--seed S]
 * Qwen2.5-0.5B's shape (bench_models.h's qwen05: d 896, 24 layers, 14 heads, 2 KV heads,
 * MLP 4864, vocab 151,936, tied head, q/k/v biases, rope_theta 1e6, rms_norm_eps 1e-6) with
 * random weights, fp32, no adapter: tr_gen prefill of P random token ids (default 512), then
 * D greedy steps (default 128) each feeding the argmax back. Prints one JSON line: seconds
 * and tokens/s of the prefill and of the D decode forwards (argmax included), and peak RSS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tr_generate.h"
#include "tr_model.h"

#include "bench_models.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Base weights uniform in +-0.04 (std 0.023, GPT-2-like), norm weights 1. */
static void fill(tr_model *m, uint64_t seed)
{
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        int norm = strstr(t.name, "norm") != NULL;
        for (int64_t k = 0; k < t.numel; k++)
            t.data[k] =
                norm
                    ? 1.0f
                    : (float)((double)(bench_next(&seed) >> 11) / 9007199254740992.0 * 0.08 - 0.04);
    }
}

int main(int argc, char **argv)
{
    int threads = 2, P = 512, D = 128;
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompt"))
            P = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--decode"))
            D = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr,
                    "usage: gen_bench [--threads N] [--prompt P] [--decode D] [--seed S]\n");
            return 2;
        }
    }
    if (threads < 1 || P < 1 || D < 1) {
        fprintf(stderr, "gen_bench: bad --threads, --prompt or --decode\n");
        return 2;
    }
    tr_threads_set(threads);
    const bench_cfg *bc = bench_cfg_find("qwen05");
    tr_config c = bench_model_config(bc);
    if (P + D > c.max_pos) {
        fprintf(stderr, "gen_bench: --prompt + --decode above the model's %d positions\n",
                c.max_pos);
        return 2;
    }
    mu_diag d = {{0}};
    tr_model *m = tr_model_new(&c, &d);
    tr_gen *g = m ? (fill(m, seed), tr_gen_new(m, P + D, &d)) : NULL;
    float *logits = malloc(sizeof(float) * (size_t)c.vocab_size);
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)P);
    if (!g || !logits || !prompt) {
        fprintf(stderr, "gen_bench: %s\n", d.msg[0] ? d.msg : "out of memory");
        return 1;
    }
    for (int i = 0; i < P; i++)
        prompt[i] = (int32_t)(bench_next(&seed) % (uint64_t)c.vocab_size);
    double t0 = now_s();
    if (tr_gen_feed(g, prompt, P, logits, &d))
        goto fail;
    double prefill = now_s() - t0;
    t0 = now_s();
    uint64_t sum = 0;
    for (int s = 0; s < D; s++) {
        int32_t t = tr_argmax(logits, c.vocab_size);
        sum = sum * 31 + (uint64_t)t;
        if (tr_gen_feed(g, &t, 1, logits, &d))
            goto fail;
    }
    double decode = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"threads\": %d, \"prompt\": %d, \"decode\": %d, \"prefill_s\": %.3f, "
           "\"prefill_tokens_per_s\": %.2f, \"decode_s\": %.3f, \"decode_tokens_per_s\": %.3f, "
           "\"ids_hash\": %llu, \"peak_rss_mb\": %.0f}\n",
           threads, P, D, prefill, P / prefill, decode, D / decode, (unsigned long long)sum,
           (double)ru.ru_maxrss / 1024.0);
    tr_gen_free(g);
    tr_model_free(m);
    free(logits);
    free(prompt);
    return 0;
fail:
    fprintf(stderr, "gen_bench: %s\n", d.msg);
    return 1;
}
