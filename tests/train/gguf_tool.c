/* gguf_tool: the C half of gguf_llama.sh.
 *   gguf_tool make DIR TOKENIZER_DIR VOCAB SEED [llama|llama3|qwen2|qwen3|gpt2]
 *       a tiny random Llama (d 64, 2 layers, 4 heads, 2 KV heads, head_dim 16, MLP 96,
 *       untied head, rope_theta 10000), Llama 3 (the same with rope_scaling llama3: factor
 *       8, low 1, high 4, original context 64, so with head_dim 16 frequency 0 is kept, 1
 *       and 2 are blended and 3-7 divided by 8), Qwen2 (the same with q/k/v biases and a tied
 *       head), Qwen3 (q/k norms, head_dim 24, not d / heads; tied) or GPT-2 (d 64, 2
 *       layers, 4 heads, MLP 256, 128 positions, tied; biases std 0.1), as a Hugging Face
 *       folder DIR with TOKENIZER_DIR's
 *       tokenizer.json and tokenizer_config.json, and DIR/adapter, a PEFT LoRA adapter
 *       (r 4, alpha 8, every projection) with random nonzero A and B.
 *   gguf_tool logits DIR ADAPTER_DIR|- OUT.bin ID...
 *       mutual's next-token logits at every position of ID... (T x V float32, little-endian
 *       host order) with the adapter when one is given.
 * Weights are normal with std 0.3 (norm weights 1 + 0.1 noise), so attention is far from
 * uniform and a wrong RoPE pairing changes the logits visibly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mu_file.h"
#include "tr_hf.h"
#include "tr_safetensors.h"

static uint64_t rng = 1;

static double uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static float normal(void)
{
    return (float)(sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()));
}

static int copy_file(const char *from, const char *to)
{
    char *s;
    size_t n;
    mu_diag d = {{0}};
    if (mu_read_file(from, 1u << 30, &s, &n, &d) || mu_write_file_atomic(to, s, n, &d)) {
        fprintf(stderr, "gguf_tool: %s\n", d.msg);
        return 1;
    }
    free(s);
    return 0;
}

static int make(const char *dir, const char *tokdir, int V, uint64_t seed, const char *type)
{
    int qwen2 = !strcmp(type, "qwen2"), qwen3 = !strcmp(type, "qwen3");
    int llama3 = !strcmp(type, "llama3"), gpt2 = !strcmp(type, "gpt2");
    if (!qwen2 && !qwen3 && !llama3 && !gpt2 && strcmp(type, "llama"))
        return 2;
    rng = seed;
    tr_config c = {.family = TR_LLAMA,
                   .vocab_size = V,
                   .max_pos = 128,
                   .d_model = 64,
                   .n_layer = 2,
                   .n_head = 4,
                   .n_kv_head = 2,
                   .d_ff = 96,
                   .norm_eps = 1e-5f,
                   .rope_theta = 10000.0f,
                   .head_dim = qwen3 ? 24 : 0,
                   .qkv_bias = qwen2,
                   .qk_norm = qwen3,
                   .tied_head = qwen2 || qwen3};
    if (gpt2)
        c = (tr_config){.family = TR_GPT2,
                        .vocab_size = V,
                        .max_pos = 128,
                        .d_model = 64,
                        .n_layer = 2,
                        .n_head = 4,
                        .n_kv_head = 4,
                        .d_ff = 256,
                        .norm_eps = 1e-5f,
                        .tied_head = 1};
    mu_diag d = {{0}};
    char path[4096];
    mkdir(dir, 0755);
    tr_model *m = tr_model_new(&c, &d);
    if (!m)
        goto fail;
    int n = tr_model_base_count(m);
    tr_st_entry *e = calloc((size_t)n, sizeof *e);
    for (int i = 0; i < n; i++) {
        tr_tensor t;
        tr_model_base_tensor(m, i, &t);
        for (int64_t k = 0; k < t.numel; k++)
            t.data[k] = gpt2 && t.ndim == 1 && !strstr(t.name, "ln_") ? 0.1f * normal()
                        : t.ndim == 1                                 ? 1.0f + 0.1f * normal()
                                                                      : 0.3f * normal();
        e[i] = (tr_st_entry){.name = t.name, .ndim = t.ndim, .data = t.data};
        memcpy(e[i].shape, t.shape, sizeof t.shape);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tr_st_write(path, e, (size_t)n, NULL, &d))
        goto fail;
    free(e);
    FILE *f = fopen((snprintf(path, sizeof path, "%s/config.json", dir), path), "w");
    if (!f)
        return 1;
    if (gpt2)
        fprintf(f,
                "{\"model_type\": \"gpt2\", \"vocab_size\": %d, \"n_positions\": 128, "
                "\"n_embd\": 64, \"n_layer\": 2, \"n_head\": 4, \"n_inner\": 256, "
                "\"layer_norm_epsilon\": 1e-05, \"activation_function\": \"gelu_new\"}\n",
                V);
    else
        fprintf(f,
                "{\"model_type\": \"%s\", \"vocab_size\": %d, \"max_position_embeddings\": 128, "
                "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                "\"num_key_value_heads\": 2, \"head_dim\": %d, \"intermediate_size\": 96, "
                "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\", "
                "\"tie_word_embeddings\": %s%s}\n",
                llama3 ? "llama" : type, V, qwen3 ? 24 : 16, qwen2 || qwen3 ? "true" : "false",
                llama3 ? ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                         "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                         "\"original_max_position_embeddings\": 64}"
                       : "");
    if (fclose(f))
        return 1;
    const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char from[4096];
        snprintf(from, sizeof from, "%s/%s", tokdir, files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (copy_file(from, path))
            return 1;
    }
    tr_lora_config lc = {
        .rank = 4, .alpha = 8.0f, .targets = gpt2 ? TR_T_GPT2_ALL : TR_T_LLAMA_ALL};
    if (tr_lora_attach(m, &lc, seed, &d))
        goto fail;
    for (int i = 0; i < tr_lora_count(m); i++) {
        tr_tensor t;
        tr_lora_tensor(m, i, &t);
        for (int64_t k = 0; k < t.numel; k++)
            t.data[k] = 0.2f * normal();
    }
    snprintf(path, sizeof path, "%s/adapter", dir);
    if (tr_peft_save(m, path, dir, &d))
        goto fail;
    tr_model_free(m);
    return 0;
fail:
    fprintf(stderr, "gguf_tool make: %s\n", d.msg);
    tr_model_free(m);
    return 1;
}

static int logits(const char *dir, const char *adapter, const char *out, int T, char **ids)
{
    mu_diag d = {{0}};
    int rc;
    int32_t *in = calloc((size_t)T, sizeof *in);
    tr_model *m = tr_hf_model_load(dir, &rc, &d);
    if (!m || !in)
        goto fail;
    for (int i = 0; i < T; i++)
        in[i] = (int32_t)strtol(ids[i], NULL, 10);
    if (strcmp(adapter, "-") && tr_peft_attach(m, adapter, 0, 0, NULL, &d))
        goto fail;
    if (tr_model_eval(m, in, NULL, 1, T, NULL, &d))
        goto fail;
    size_t n = (size_t)T * (size_t)tr_model_config(m)->vocab_size;
    if (mu_write_file_atomic(out, tr_model_logits(m), n * sizeof(float), &d))
        goto fail;
    free(in);
    tr_model_free(m);
    return 0;
fail:
    fprintf(stderr, "gguf_tool logits: %s\n", d.msg);
    free(in);
    tr_model_free(m);
    return 1;
}

int main(int argc, char **argv)
{
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "make"))
        return make(argv[2], argv[3], atoi(argv[4]), strtoull(argv[5], NULL, 10),
                    argc == 7 ? argv[6] : "llama");
    if (argc >= 6 && !strcmp(argv[1], "logits"))
        return logits(argv[2], argv[3], argv[4], argc - 5, argv + 5);
    fprintf(stderr,
            "usage: gguf_tool make DIR TOKENIZER_DIR VOCAB SEED [llama|llama3|qwen2|qwen3|gpt2]\n"
            "       gguf_tool logits DIR ADAPTER_DIR|- OUT.bin ID...\n");
    return 2;
}
