/* Tests of training state save/resume: a resumed run continues bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "tio_util.h"
#include "tr_data.h"
#include "tr_hf.h"
#include "tr_state.h"

enum { B = 2, T = 16 };

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "state");
    tr_threads_set(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

typedef struct {
    tr_model *m;
    tr_optim *o;
    tr_data *data;
} run;

static void run_open(run *r, const tr_lora_config *l, const tr_optim_config *oc, uint64_t seed)
{
    mu_diag d = {{0}};
    r->m = tr_hf_model_load(TIO_REF "/gpt2", NULL, &d);
    assert_non_null(r->m);
    if (tr_lora_attach(r->m, l, seed, &d))
        fail_msg("%s", d.msg);
    r->o = tr_optim_new(oc, tr_lora_trainable_count(r->m), &d);
    assert_non_null(r->o);
    r->data = tr_data_open(TIO_REF "/gpt2_data.h5", NULL, &d);
    assert_non_null(r->data);
}

static void run_close(run *r)
{
    tr_data_free(r->data);
    tr_optim_free(r->o);
    tr_model_free(r->m);
}

static float step(run *r, uint64_t s)
{
    int32_t in[B * T], tg[B * T];
    mu_diag d = {{0}};
    float loss = 0;
    assert_int_equal(tr_data_batch(r->data, s, B, T, in, tg, &d), 0);
    if (tr_train_step(r->m, r->o, in, tg, B, T, &loss, &d))
        fail_msg("%s", d.msg);
    return loss;
}

static void resume_case(tr_optim_kind kind, float dropout, int freeze_a)
{
    mu_diag d = {{0}};
    tr_lora_config l = {.rank = 4,
                        .alpha = 8,
                        .targets = TR_T_C_ATTN | TR_T_MLP_C_PROJ,
                        .dropout = dropout,
                        .freeze_a = freeze_a};
    tr_optim_config oc = tr_optim_defaults(kind, kind == TR_ADAMW ? 1e-2 : 0.1);
    oc.momentum = kind == TR_SGD ? 0.9 : 0;
    oc.weight_decay = 0.05;
    char path[128];
    snprintf(path, sizeof path, "%s/state_%d_%d.h5", dir, kind, freeze_a);

    /* the uninterrupted run: 3 steps, save, 3 more */
    run a;
    run_open(&a, &l, &oc, 42);
    for (uint64_t s = 0; s < 3; s++)
        step(&a, s);
    tr_state_info info = {.step = 3, .data_step = 3, .batch = B, .seq = T, .seed = 42};
    snprintf(info.base, sizeof info.base, "%s", TIO_REF "/gpt2");
    assert_int_equal(tr_state_save(path, a.m, a.o, &info, &d), 0);
    float want[3];
    for (uint64_t s = 3; s < 6; s++)
        want[s - 3] = step(&a, s);

    /* resume from the file into a fresh model (same seed: it also draws dropout masks) */
    tr_family fam;
    tr_lora_config l2;
    tr_optim_config oc2;
    tr_state_info info2;
    assert_int_equal(tr_state_peek(path, &fam, &l2, &oc2, &info2, &d), 0);
    assert_int_equal(fam, TR_GPT2);
    assert_int_equal(l2.rank, 4);
    assert_int_equal(l2.targets, l.targets);
    assert_int_equal(l2.freeze_a, freeze_a);
    assert_true(l2.dropout == dropout);
    assert_int_equal(oc2.kind, kind);
    assert_true(oc2.lr == oc.lr && oc2.momentum == oc.momentum);
    assert_int_equal(info2.step, 3);
    assert_int_equal(info2.data_step, 3);
    assert_int_equal(info2.seed, 42);
    assert_string_equal(info2.base, info.base);
    run b;
    run_open(&b, &l2, &oc2, info2.seed);
    if (tr_state_load(path, b.m, b.o, &info2, &d))
        fail_msg("%s", d.msg);
    assert_int_equal(tr_optim_get_step(b.o), 3);
    for (uint64_t s = 3; s < 6; s++) {
        float got = step(&b, s);
        if (memcmp(&got, &want[s - 3], sizeof got))
            fail_msg("step %d: resumed loss %.9g, uninterrupted %.9g", (int)s, got, want[s - 3]);
    }
    assert_memory_equal(tr_lora_trainable(a.m), tr_lora_trainable(b.m),
                        (size_t)tr_lora_trainable_count(a.m) * sizeof(float));
    run_close(&a);
    run_close(&b);
}

static void test_resume_adamw(void **state)
{
    (void)state;
    resume_case(TR_ADAMW, 0, 0);
}

static void test_resume_sgd_momentum_dropout(void **state)
{
    (void)state;
    resume_case(TR_SGD, 0.1f, 0);
}

static void test_resume_frozen_a(void **state)
{
    (void)state;
    resume_case(TR_ADAMW, 0, 1);
}

static void test_bad_state_files(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_lora_config l = {.rank = 4, .alpha = 8, .targets = TR_T_C_ATTN};
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-3);
    run a;
    run_open(&a, &l, &oc, 1);
    char path[128];
    snprintf(path, sizeof path, "%s/none.h5", dir);
    assert_int_equal(tr_state_load(path, a.m, a.o, NULL, &d), MU_ERR_NOTFOUND);
    tio_assert_msg(d.msg, "none.h5");
    snprintf(path, sizeof path, "%s/junk.h5", dir);
    tio_write(path, "junk", 4);
    assert_int_equal(tr_state_peek(path, NULL, NULL, NULL, NULL, &d), MU_ERR_FORMAT);
    tio_assert_msg(d.msg, "junk.h5: not an HDF5 file");
    /* a dataset file is not a state file */
    assert_int_equal(tr_state_load(TIO_REF "/gpt2_data.h5", a.m, a.o, NULL, &d), MU_ERR_FORMAT);
    tio_assert_msg(d.msg, "not a mutual training state file");

    /* a state of rank 4 does not load into a rank-8 model */
    tr_state_info info = {.batch = B, .seq = T};
    snprintf(path, sizeof path, "%s/r4.h5", dir);
    assert_int_equal(tr_state_save(path, a.m, a.o, &info, &d), 0);
    run b;
    tr_lora_config l8 = l;
    l8.rank = 8;
    run_open(&b, &l8, &oc, 1);
    assert_int_equal(tr_state_load(path, b.m, b.o, NULL, &d), MU_ERR_FORMAT);
    tio_assert_msg(d.msg, "r4.h5: saved LoRA config (rank 4");
    run_close(&b);

    /* I/O failure: the folder does not exist; nothing is left behind */
    assert_int_equal(tr_state_save("no/such/dir/s.h5", a.m, a.o, &info, &d), MU_ERR_IO);
    tio_assert_msg(d.msg, "no/such/dir/s.h5.tmp");

    /* a truncated state file */
    size_t len;
    unsigned char *buf = tio_read(path, &len);
    assert_non_null(buf);
    tio_write(path, buf, len / 2);
    free(buf);
    int rc = tr_state_load(path, a.m, a.o, NULL, &d);
    assert_true(rc == MU_ERR_FORMAT || rc == MU_ERR_IO);
    tio_assert_msg(d.msg, "r4.h5");
    run_close(&a);
}

/* A NaN in a saved LoRA tensor or moment is refused at load, naming the tensor, instead of
 * giving a NaN loss that would advise lowering --lr. */
static void test_nonfinite_state(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_lora_config l = {.rank = 4, .alpha = 8, .targets = TR_T_C_ATTN};
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-3);
    run a, b;
    run_open(&a, &l, &oc, 1);
    run_open(&b, &l, &oc, 1);
    tr_state_info info = {.batch = B, .seq = T};
    char path[128];
    snprintf(path, sizeof path, "%s/nan.h5", dir);
    tr_tensor t;
    assert_int_equal(tr_lora_tensor(a.m, 1, &t), 0);
    t.data[t.numel - 1] = NAN;
    assert_int_equal(tr_state_save(path, a.m, a.o, &info, &d), 0);
    assert_int_equal(tr_state_load(path, b.m, b.o, NULL, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "nan.h5: LoRA tensor '");
    tio_assert_msg(d.msg, t.name);
    tio_assert_msg(d.msg, "non-finite value (nan)");

    t.data[t.numel - 1] = 0;
    tr_optim_m2(a.o)[3] = INFINITY;
    assert_int_equal(tr_state_save(path, a.m, a.o, &info, &d), 0);
    assert_int_equal(tr_state_load(path, b.m, b.o, NULL, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "nan.h5: the optimizer moments (/optim) hold a non-finite value");
    run_close(&b);
    run_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_adamw),    cmocka_unit_test(test_resume_sgd_momentum_dropout),
        cmocka_unit_test(test_resume_frozen_a), cmocka_unit_test(test_bad_state_files),
        cmocka_unit_test(test_nonfinite_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
