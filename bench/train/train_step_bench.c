/* train_step_bench - times one LoRA training step of mutual, the mutual half of
 * bench/train_vs_torch.
 *
 *   train_step_bench [--config NAME] [--threads N] [--steps S] [--warmup W] [--gemm-split 0|1]
 *                    [--dp] [--checkpointing] [--breakdown] [--bf16]
 *
 * small, gpt2s: GPT-2 family, random base weights (frozen), LoRA r=8 alpha=16 on c_attn
 * (q, k, v) and attn.c_proj (the attention output), AdamW on LoRA only, fp32. qwen05,
 * smollm360, llama1b: the shapes of Qwen2.5-0.5B, SmolLM2-360M and Llama-3.2-1B (Llama
 * family, tied heads), LoRA r=16 alpha=32 on q,k,v,o; tinyllama: a small Llama-family model
 * whose loss torch_step.py checks with the same weights; bigvocab: batch x seq x vocab above
 * 2^31 (see CONFIGS in bench_models.h). A step is zero_grad + forward + backward + optimizer update
 * (tr_train_step) on a fixed random batch.
 * Prints one JSON line: median step time over S steps after W warm-up steps, tokens/s at
 * that median, peak RSS, the first and last step's loss.
 * --checkpointing turns on per-layer activation checkpointing (tr_model_set_checkpointing).
 * --bf16 keeps the base's matrices in bf16 (tr_model_set_bf16, set before the weights are
 * written, so the fp32 copy never exists and peak RSS is that of the bf16 model); the line
 * then has "bf16": 1 and "bf16_kernel" ("avx512bf16" or "portable").
 * --breakdown adds "breakdown_ms": the mean time per timed step in each phase of tr_prof.h
 * (base GEMMs, LoRA, attention, LM head, cross-entropy, norms/element-wise, optimizer) and
 * "other" (the step's mean minus their sum).
 *
 * --dp also times the DP-SGD step (tr_dp_step: per-record gradients, clip 1, noise 1, fixed
 * batch B of the config) on a second model, alternating with the plain step in the same run
 * so both see the same machine load, and adds dp_ms, dp_min_ms and dp_ratio (dp / plain
 * medians) to the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mu_progress.h"
#include "tr_bf16.h"
#include "tr_dp.h"
#include "tr_kernels.h"
#include "tr_model.h"
#include "tr_prof.h"

#include "bench_models.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
}

/* The bench model: random frozen base (norm weights 1), LoRA r=8 on c_attn and attn.c_proj,
 * AdamW. Returns 0, or 1 having printed why. */
static int make_model(const bench_cfg *bc, int bf16, tr_model **mp, tr_optim **op)
{
    tr_config cfg = bench_model_config(bc);
    cfg.max_pos = bc->T;
    cfg.norm_eps = 1e-5f; /* every config, as torch_step.py (not Qwen2.5's 1e-6) */
    mu_diag d = {{0}};
    tr_model *m = tr_model_new(&cfg, &d);
    if (!m) {
        fprintf(stderr, "train_step_bench: %s\n", d.msg);
        return 1;
    }
    if (bf16 && tr_model_set_bf16(m, 1) < 0) {
        fprintf(stderr, "train_step_bench: out of memory for the bf16 base\n");
        tr_model_free(m);
        return 1;
    }
    uint64_t s = 1;
    for (int i = 0; i < tr_model_base_count(m); i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        int is_norm_w =
            (strstr(t.name, "ln_") || strstr(t.name, "norm")) && strstr(t.name, "weight");
        for (int64_t j = 0; j < t.numel; j++) {
            float x = is_norm_w
                          ? 1.0f
                          : bc->amp * ((float)(bench_next(&s) >> 40) / 16777216.0f * 2.0f - 1.0f);
            if (t.bf16)
                t.bf16[j] = tr_bf16_from_f32(x);
            else
                t.data[j] = x;
        }
    }
    tr_lora_config lc = {.rank = 8, .alpha = 16.0f, .targets = TR_T_C_ATTN | TR_T_ATTN_C_PROJ};
    if (bc->llama)
        lc = (tr_lora_config){.rank = 16,
                              .alpha = 32.0f,
                              .targets = TR_T_Q_PROJ | TR_T_K_PROJ | TR_T_V_PROJ | TR_T_O_PROJ};
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-4);
    tr_optim *o = NULL;
    if (tr_lora_attach(m, &lc, 1234, &d) < 0 ||
        !(o = tr_optim_new(&oc, tr_lora_trainable_count(m), &d))) {
        fprintf(stderr, "train_step_bench: %s\n", d.msg);
        tr_model_free(m);
        return 1;
    }
    *mp = m;
    *op = o;
    return 0;
}

/* ", \"breakdown_ms\": {...}": each tr_prof phase's mean per timed step, and "other", the
 * mean step (total_s / steps) minus their sum. */
static void print_breakdown(double total_s, int steps)
{
    double sec[TR_PROF_COUNT], sum = 0.0;
    tr_prof_read(sec);
    printf(", \"breakdown_ms\": {");
    for (int p = 0; p < TR_PROF_COUNT; p++) {
        printf("%s\"%s\": %.1f", p ? ", " : "", tr_prof_name((tr_prof_phase)p),
               sec[p] * 1e3 / steps);
        sum += sec[p];
    }
    printf(", \"other\": %.1f}", (total_s - sum) * 1e3 / steps);
}

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--config NAME] [--threads N] [--steps S] [--warmup W] [--gemm-split 0|1]\n"
            "          [--dp] [--checkpointing] [--breakdown] [--bf16]\n"
            "configs:",
            argv0);
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        fprintf(f, " %s", CONFIGS[i].name);
    fprintf(f, "\n--breakdown: mean time per timed step in each phase (tr_prof.h) in the JSON "
               "line; not with --dp\n"
               "--bf16: the base's matrices in bf16 (tr_model_set_bf16), products on the bf16 "
               "kernel\n");
}

int main(int argc, char **argv)
{
    const char *which = "small";
    int threads = 2, steps = 20, warmup = 3, split = 1, dp_on = 0, ckpt = 0, prof = 0, bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            which = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gemm-split") && i + 1 < argc)
            split = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dp"))
            dp_on = 1;
        else if (!strcmp(argv[i], "--checkpointing"))
            ckpt = 1;
        else if (!strcmp(argv[i], "--bf16"))
            bf16 = 1;
        else if (!strcmp(argv[i], "--breakdown"))
            prof = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout, argv[0]);
            return 0;
        } else {
            usage(stderr, argv[0]);
            return 2;
        }
    }
    const bench_cfg *bc = bench_cfg_find(which);
    if (!bc || steps < 1 || warmup < 0) {
        fprintf(stderr, "train_step_bench: unknown config '%s' or bad counts\n", which);
        return 2;
    }
    if (prof && dp_on) {
        fprintf(stderr, "train_step_bench: --breakdown times the plain step only: not with --dp\n");
        return 2;
    }
    tr_threads_set(threads);
    tr_gemm_split_set(split);
    tr_model *m = NULL, *pm = NULL;
    tr_optim *o = NULL, *po = NULL;
    tr_dp *dp = NULL;
    mu_diag d = {{0}};
    if (make_model(bc, bf16, &m, &o) || (dp_on && make_model(bc, bf16, &pm, &po)))
        return 1;
    tr_model_set_checkpointing(m, ckpt);
    if (pm)
        tr_model_set_checkpointing(pm, ckpt);
    tr_dp_config dc = {.clip = 1.0,
                       .noise = 1.0,
                       .sampling = TR_DP_FIXED,
                       .n_records = bc->B,
                       .batch = bc->B,
                       .seed = 7};
    if (dp_on && !(dp = tr_dp_new(&dc, pm, &d))) {
        fprintf(stderr, "train_step_bench: %s\n", d.msg);
        return 1;
    }
    int N = bc->B * bc->T;
    uint64_t s = 99;
    int32_t *in = malloc(sizeof(int32_t) * (size_t)N), *tg = malloc(sizeof(int32_t) * (size_t)N);
    double *ms = malloc(sizeof(double) * (size_t)steps),
           *dms = malloc(sizeof(double) * (size_t)steps);
    if (!in || !tg || !ms || !dms)
        return 1;
    for (int i = 0; i < N; i++) {
        in[i] = (int32_t)(bench_next(&s) % (uint64_t)bc->V);
        tg[i] = (int32_t)(bench_next(&s) % (uint64_t)bc->V);
    }
    float loss = 0.0f, loss0 = 0.0f, dloss = 0.0f;
    double timed_s = 0.0;
    for (int i = 0; i < warmup + steps; i++) {
        if (prof && i == warmup)
            tr_prof_enable(1);
        double t0 = mu_now();
        if (tr_train_step(m, o, in, tg, bc->B, bc->T, &loss, &d) < 0) {
            fprintf(stderr, "train_step_bench: %s\n", d.msg);
            return 1;
        }
        double t1 = mu_now();
        if (i == 0)
            loss0 = loss;
        if (dp && tr_dp_step(dp, po, in, tg, bc->B, bc->T, (uint64_t)i, &dloss, &d) < 0) {
            fprintf(stderr, "train_step_bench: %s\n", d.msg);
            return 1;
        }
        if (i >= warmup) {
            ms[i - warmup] = (t1 - t0) * 1e3;
            dms[i - warmup] = (mu_now() - t1) * 1e3;
            timed_s += t1 - t0;
        }
    }
    double median = median_of(ms, steps);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"config\": \"%s\", \"threads\": %d, \"steps\": %d, \"warmup\": %d, "
           "\"gemm_split\": %d, \"mutual_ms\": %.3f, \"mutual_min_ms\": %.3f, "
           "\"checkpointing\": %d, \"tokens_per_s\": %.1f, \"peak_rss_mb\": %.1f, "
           "\"loss0\": %.6f, \"loss\": %.6f",
           bc->name, threads, steps, warmup, split, median, ms[0], ckpt, N / (median * 1e-3),
           ru.ru_maxrss / 1024.0, loss0, loss);
    if (bf16)
        printf(", \"bf16\": 1, \"bf16_kernel\": \"%s\"",
               tr_bf16_native() ? "avx512bf16" : "portable");
    if (prof)
        print_breakdown(timed_s, steps);
    if (dp) {
        double dmed = median_of(dms, steps);
        printf(", \"dp_ms\": %.3f, \"dp_min_ms\": %.3f, \"dp_ratio\": %.3f, \"dp_loss\": %.6f",
               dmed, dms[0], dmed / median, dloss);
    }
    printf("}\n");
    free(in);
    free(tg);
    free(ms);
    free(dms);
    tr_dp_free(dp);
    tr_optim_free(po);
    tr_model_free(pm);
    tr_optim_free(o);
    tr_model_free(m);
    return 0;
}
