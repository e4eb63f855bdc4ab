/* RoPE frequency scaling (config.json rope_scaling: linear, dynamic, llama3):
 *
 *  - inv_freq from each case's config.json, read by tr_hf_config_load, against
 *    tests/train/ref/rope_ref.safetensors, written by make_reference.py with the torch
 *    operations of transformers' _compute_*_parameters (Llama 3.2 1B and 3.1 8B as released,
 *    a tiny case with every regime, factors fp32 cannot hold, linear, dynamic, none): bit
 *    for bit wherever our unscaled theta^x agrees with torch's (1 ulp allowed where pow
 *    itself differs: measured 0 ulp for every scaled case, 1 for theta 1e6 unscaled);
 *  - the fast kernel against its naive twin (double);
 *  - RoPE with llama3 scaling leaves the high-frequency dimensions bit for bit as the
 *    unscaled path rotates them and changes every other one;
 *  - whole-model logits: scaling that changes no frequency (dynamic, linear 1, llama3 with
 *    every frequency high) is bit for bit the unscaled model; real scaling is not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tio_util.h"
#include "tr_hf.h"
#include "tr_model.h"
#include "tr_safetensors.h"
#include "train/tr_testmodel.h"

#define REF TIO_REF "/rope_ref.safetensors"

static const char *const cases[] = {"llama32_1b", "llama31_8b", "tiny_llama3", "odd_llama3",
                                    "linear",     "linear_odd", "dynamic",     "default"};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "rope");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

static float *ref_tensor(tr_st *st, const char *prefix, const char *name, size_t *n)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    const tr_st_info *t = tr_st_find(st, key);
    if (!t)
        fail_msg("%s: no tensor '%s'", REF, key);
    float *out = tt_alloc((int64_t)t->numel);
    mu_diag d = {{0}};
    if (tr_st_read_f32(st, t, out, t->numel, &d) < 0)
        fail_msg("%s", d.msg);
    *n = t->numel;
    return out;
}

/* The case's config.json, as the reference wrote it, loaded through the HF reader. */
static tr_config case_config(tr_st *st, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "config.%s", name);
    const char *json = tr_st_metadata(st, key);
    if (!json)
        fail_msg("%s: no metadata '%s'", REF, key);
    tio_write_text(dir, "config.json", json);
    tr_config c;
    mu_diag d = {{0}};
    if (tr_hf_config_load(dir, &c, &d))
        fail_msg("%s: %s", name, d.msg);
    return c;
}

/* Distance in units in the last place between two positive floats. */
static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return llabs((long long)ia - ib);
}

static void test_inv_freq_vs_hf(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_st *st = tr_st_open(REF, NULL, &d);
    if (!st)
        fail_msg("%s", d.msg);
    for (int k = 0; k < N_CASES; k++) {
        tr_config c = case_config(st, cases[k]);
        size_t n;
        float *want = ref_tensor(st, "inv_freq", cases[k], &n);
        assert_int_equal(n, (size_t)c.head_dim / 2);
        float *want0 = ref_tensor(st, "inv_freq0", cases[k], &n);
        float got[512], got0[512], twin[512];
        tr_rope_inv_freq(got, c.head_dim, c.rope_theta, &c.rope_scaling);
        tr_rope_inv_freq(got0, c.head_dim, c.rope_theta, NULL);
        tr_rope_inv_freq_ref(twin, c.head_dim, c.rope_theta, &c.rope_scaling);
        int64_t worst = 0, worst_twin = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t u = ulps(got[i], want[i]), ut = ulps(twin[i], want[i]);
            worst = u > worst ? u : worst;
            worst_twin = ut > worst_twin ? ut : worst_twin;
            /* torch's pow (Sleef) and glibc's powf may round theta^x 1 ulp apart; where the
             * unscaled frequency agrees, the scaling arithmetic must give HF's bits. */
            int64_t allowed = got0[i] == want0[i] ? 0 : 1;
            if (u > allowed)
                fail_msg("%s: inv_freq[%zu] = %.9g, HF %.9g (%lld ulp; unscaled %s)", cases[k], i,
                         (double)got[i], (double)want[i], (long long)u,
                         allowed ? "differs by pow" : "equal");
            if (ut > 8)
                fail_msg("%s: naive twin inv_freq[%zu] = %.9g, HF %.9g (%lld ulp)", cases[k], i,
                         (double)twin[i], (double)want[i], (long long)ut);
        }
        print_message("%-12s type %d: %zu frequencies, worst %lld ulp (naive twin %lld)\n",
                      cases[k], (int)c.rope_scaling.type, n, (long long)worst,
                      (long long)worst_twin);
        free(want), free(want0);
    }
    tr_st_free(st);
}

/* Rotates random q/k heads at T positions with the case's scaled and unscaled frequencies:
 * every high-frequency dimension (regime 0) must match bit for bit, every other one must
 * differ at some position. */
static void check_high_freq_unchanged(tr_st *st, const char *name)
{
    tr_config c = case_config(st, name);
    size_t n;
    float *regime = ref_tensor(st, "regime", name, &n);
    int hd = c.head_dim, half = hd / 2, T = 64, H = 2, KV = 1, W = (H + 2 * KV) * hd;
    float *inv = tt_alloc(half), *inv0 = tt_alloc(half);
    float *cs = tt_alloc((int64_t)T * half), *sn = tt_alloc((int64_t)T * half);
    float *cs0 = tt_alloc((int64_t)T * half), *sn0 = tt_alloc((int64_t)T * half);
    tr_rope_inv_freq(inv, hd, c.rope_theta, &c.rope_scaling);
    tr_rope_inv_freq(inv0, hd, c.rope_theta, NULL);
    tr_rope_tables(cs, sn, T, hd, inv);
    tr_rope_tables(cs0, sn0, T, hd, inv0);
    float *x = tt_alloc((int64_t)T * W), *x0 = tt_alloc((int64_t)T * W);
    tt_fill(x, (int64_t)T * W, 31, 1.0f);
    memcpy(x0, x, sizeof(float) * (size_t)T * W);
    tr_rope_forward(x, cs, sn, 1, T, H, KV, hd);
    tr_rope_forward(x0, cs0, sn0, 1, T, H, KV, hd);
    int high = 0, other = 0;
    for (int i = 0; i < half; i++) {
        int differs = 0;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H + KV; h++)
                for (int j = i; j < hd; j += half) {
                    int64_t at = (int64_t)t * W + (int64_t)h * hd + j;
                    differs |= x[at] != x0[at];
                }
        if (regime[i] == 0.0f && differs)
            fail_msg("%s: high-frequency dimension %d changed by the scaling", name, i);
        if (regime[i] != 0.0f && !differs)
            fail_msg("%s: dimension %d (regime %g) is not scaled", name, i, (double)regime[i]);
        high += regime[i] == 0.0f;
        other += regime[i] != 0.0f;
    }
    assert_true(high > 0 && other > 0); /* both halves of the claim are exercised */
    print_message("%s: %d high-frequency dimensions unchanged, %d scaled\n", name, high, other);
    free(regime), free(inv), free(inv0), free(cs), free(sn), free(cs0), free(sn0), free(x);
    free(x0);
}

static void test_high_freq_unchanged(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_st *st = tr_st_open(REF, NULL, &d);
    if (!st)
        fail_msg("%s", d.msg);
    check_high_freq_unchanged(st, "tiny_llama3");
    check_high_freq_unchanged(st, "llama32_1b");
    check_high_freq_unchanged(st, "llama31_8b");
    check_high_freq_unchanged(st, "odd_llama3");
    tr_st_free(st);
}

enum { B = 2, T = 16 };

/* Logits of the tiny Llama (head_dim 8, theta 1000: frequencies in every llama3 regime for
 * orig 64) with the given scaling, same weights and tokens every time. */
static float *logits_with(tr_rope_scaling sc)
{
    tr_config cfg = tt_llama_config();
    cfg.head_dim = 8;
    cfg.max_pos = 32;
    cfg.rope_scaling = sc;
    mu_diag d = {{0}};
    tr_model *m = tr_model_new(&cfg, &d);
    if (!m)
        fail_msg("%s", d.msg);
    tt_fill_base(m, 77);
    int32_t in[B * T];
    tt_tokens(in, B * T, cfg.vocab_size, 5);
    if (tr_model_eval(m, in, NULL, B, T, NULL, &d))
        fail_msg("%s", d.msg);
    size_t n = (size_t)B * T * cfg.vocab_size;
    float *out = tt_alloc((int64_t)n);
    memcpy(out, tr_model_logits(m), n * sizeof *out);
    tr_model_free(m);
    return out;
}

static void test_model_logits(void **state)
{
    (void)state;
    size_t n = (size_t)B * T * tt_llama_config().vocab_size;
    float *base = logits_with((tr_rope_scaling){.type = TR_ROPE_DEFAULT});
    const struct {
        const char *what;
        tr_rope_scaling sc;
        int same;
    } runs[] = {
        {"dynamic factor 2", {.type = TR_ROPE_DYNAMIC, .factor = 2.0}, 1},
        {"linear factor 1", {.type = TR_ROPE_LINEAR, .factor = 1.0}, 1},
        {"llama3, every frequency high",
         {.type = TR_ROPE_LLAMA3,
          .factor = 8.0,
          .low_freq_factor = 1.0,
          .high_freq_factor = 4.0,
          .orig_max_pos = 1 << 20},
         1},
        {"linear factor 2", {.type = TR_ROPE_LINEAR, .factor = 2.0}, 0},
        {"llama3 orig 64",
         {.type = TR_ROPE_LLAMA3,
          .factor = 4.0,
          .low_freq_factor = 1.0,
          .high_freq_factor = 4.0,
          .orig_max_pos = 64},
         0},
    };
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        float *got = logits_with(runs[k].sc);
        int same = !memcmp(got, base, n * sizeof *got);
        if (same != runs[k].same)
            fail_msg("%s: logits %s the unscaled model's", runs[k].what,
                     same ? "equal" : "differ from");
        free(got);
    }
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inv_freq_vs_hf),
        cmocka_unit_test(test_high_freq_unchanged),
        cmocka_unit_test(test_model_logits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
