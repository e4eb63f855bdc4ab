/* Tests of PEFT adapter folders: reading the reference adapters, round trips, bad folders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "tio_util.h"
#include "tr_hf.h"
#include "tr_safetensors.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "peft");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

static tr_model *load_base(const char *name)
{
    char path[256];
    mu_diag d = {{0}};
    snprintf(path, sizeof path, TIO_REF "/%s", name);
    tr_model *m = tr_hf_model_load(path, NULL, &d);
    if (!m)
        fail_msg("%s", d.msg);
    return m;
}

/* Every LoRA tensor of m equals the one of that name in the adapter folder. */
static void assert_lora_equal(tr_model *m, const char *adapter_dir)
{
    char path[256];
    mu_diag d = {{0}};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", adapter_dir);
    tr_st *st = tr_st_open(path, NULL, &d);
    assert_non_null(st);
    assert_int_equal((int)tr_st_count(st), tr_lora_count(m));
    for (int i = 0; i < tr_lora_count(m); i++) {
        tr_tensor t;
        assert_int_equal(tr_lora_tensor(m, i, &t), 0);
        float *want = malloc((size_t)t.numel * sizeof *want);
        assert_int_equal(tr_st_load(st, t.name, t.ndim, t.shape, want, &d), 0);
        assert_memory_equal(want, t.data, (size_t)t.numel * sizeof *want);
        free(want);
    }
    tr_st_free(st);
}

static void test_read_reference_adapters(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_peft_info info;
    tr_model *m = load_base("gpt2");
    assert_int_equal(tr_peft_attach(m, TIO_REF "/gpt2_adapter", 0, 7, &info, &d), 0);
    assert_int_equal(info.lora.rank, 4);
    assert_true(info.lora.alpha == 8.0f);
    assert_int_equal(info.lora.targets, TR_T_GPT2_ALL);
    assert_string_equal(info.base_model, "gpt2");
    assert_int_equal(tr_lora_count(m), 2 * 2 * 4);
    assert_lora_equal(m, TIO_REF "/gpt2_adapter");
    tr_model_free(m);

    m = load_base("llama");
    assert_int_equal(tr_peft_attach(m, TIO_REF "/llama_adapter", 1, 7, &info, &d), 0);
    assert_int_equal(info.lora.targets, TR_T_LLAMA_ALL);
    assert_int_equal(tr_lora_get_config(m)->freeze_a, 1);
    assert_int_equal(tr_lora_count(m), 2 * 2 * 7);
    assert_lora_equal(m, TIO_REF "/llama_adapter");
    tr_model_free(m);
}

static json_t *load_json(const char *dir_path, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir_path, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static void round_trip(const char *model, const char *adapter, int gpt2)
{
    mu_diag d = {{0}};
    char out[128], from[128];
    snprintf(out, sizeof out, "%s/%s_out", dir, model);
    snprintf(from, sizeof from, TIO_REF "/%s", adapter);
    tr_model *m = load_base(model);
    assert_int_equal(tr_peft_attach(m, from, 0, 1, NULL, &d), 0);
    assert_int_equal(tr_peft_save(m, out, "base/folder", &d), 0);
    tr_model_free(m);

    json_t *j = load_json(out, "adapter_config.json");
    assert_string_equal(json_string_value(json_object_get(j, "peft_type")), "LORA");
    assert_string_equal(json_string_value(json_object_get(j, "task_type")), "CAUSAL_LM");
    assert_string_equal(json_string_value(json_object_get(j, "bias")), "none");
    assert_string_equal(json_string_value(json_object_get(j, "base_model_name_or_path")),
                        "base/folder");
    assert_int_equal(json_integer_value(json_object_get(j, "r")), 4);
    assert_true(json_number_value(json_object_get(j, "lora_alpha")) == 8.0);
    assert_true(json_is_false(json_object_get(j, "use_rslora")));
    assert_true(json_number_value(json_object_get(j, "lora_dropout")) == 0.0);
    assert_int_equal(json_is_true(json_object_get(j, "fan_in_fan_out")), gpt2);
    json_t *tm = json_object_get(j, "target_modules");
    assert_int_equal(json_array_size(tm), gpt2 ? 3 : 7);
    json_decref(j);

    /* byte-identical weights after a second load */
    m = load_base(model);
    assert_int_equal(tr_peft_attach(m, out, 0, 99, NULL, &d), 0);
    assert_lora_equal(m, from);
    tr_model_free(m);
}

static void test_round_trips(void **state)
{
    (void)state;
    round_trip("gpt2", "gpt2_adapter", 1);
    round_trip("llama", "llama_adapter", 0);
}

/* A copy of the reference GPT-2 adapter with the given adapter_config.json. */
static void make_adapter(const char *sub, const char *config_json)
{
    char path[256];
    mkdir(sub, 0755);
    tio_write_text(sub, "adapter_config.json", config_json);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", sub);
    tio_copy(TIO_REF "/gpt2_adapter/adapter_model.safetensors", path);
}

static void expect_attach_error(const char *sub, int want_err, const char *want)
{
    mu_diag d = {{0}};
    tr_model *m = load_base("gpt2");
    int rc = tr_peft_attach(m, sub, 0, 1, NULL, &d);
    tr_model_free(m);
    assert_int_equal(rc, want_err);
    tio_assert_msg(d.msg, want);
}

static void test_bad_adapters(void **state)
{
    (void)state;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/bad", dir);
    expect_attach_error(sub, MU_ERR_NOTFOUND, "bad/adapter_config.json: No such file");
    make_adapter(sub, "{\"peft_type\": \"PREFIX_TUNING\"}");
    expect_attach_error(sub, MU_ERR_UNSUPPORTED, "peft_type must be \"LORA\"");
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                      "\"target_modules\": \".*attn.*\"}");
    expect_attach_error(sub, MU_ERR_UNSUPPORTED, "regular expression");
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                      "\"target_modules\": [\"c_attn\"], \"bias\": \"all\"}");
    expect_attach_error(sub, MU_ERR_UNSUPPORTED, "bias 'all' is not supported");
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                      "\"target_modules\": [\"c_attn\"], \"use_dora\": true}");
    expect_attach_error(sub, MU_ERR_UNSUPPORTED, "DoRA");
    make_adapter(sub,
                 "{\"peft_type\": \"LORA\", \"lora_alpha\": 8, \"target_modules\": [\"c_attn\"]}");
    expect_attach_error(sub, MU_ERR_FORMAT, "adapter_config.json: 'r' is missing");
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                      "\"target_modules\": [\"q_proj\"]}");
    expect_attach_error(sub, MU_ERR_INVALID, "adapter_config.json: target_modules:");
    /* rank in the config differs from the file's tensors: names the tensor */
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, "
                      "\"target_modules\": [\"c_attn\", \"c_proj\", \"c_fc\"]}");
    expect_attach_error(sub, MU_ERR_FORMAT,
                        "adapter_model.safetensors: tensor "
                        "'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight' has shape "
                        "[4, 32], expected [8, 32]");
    /* fewer targets than the file holds: the extra tensors are an error, not dropped */
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                      "\"target_modules\": [\"c_attn\"]}");
    expect_attach_error(sub, MU_ERR_FORMAT,
                        "is not an adapter of the modules in adapter_config.json");
    /* a missing weights file */
    make_adapter(sub, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                      "\"target_modules\": [\"c_attn\", \"c_proj\", \"c_fc\"]}");
    char path[256];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", sub);
    remove(path);
    expect_attach_error(sub, MU_ERR_NOTFOUND, "bad/adapter_model.safetensors: No such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_reference_adapters),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_bad_adapters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
