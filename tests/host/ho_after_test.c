/* The coordinator side of the host layer: after each round the checkpoint (folders created),
 * a PEFT folder per completed training round and `latest` replaced atomically (never left
 * pointing at a missing folder, no temporary link left over); a checkpoint that cannot be
 * written is an error the driver stops on, an export that cannot be written is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include "client/cl_tiny.h"
#include "cl_participant.h"
#include "co_checkpoint.h"
#include "ho_coord.h"
#include "mu_log.h"

typedef struct {
    cl_engine *e;
    co_round *r;
} fixture;

/* A coordinator whose global is the tiny model's trainable LoRA tensors (B, frozen A). */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tr_lora_config lc = {.rank = 2, .alpha = 4, .targets = TR_T_C_ATTN, .freeze_a = 1};
    f->e = cl_engine_from_model(tiny_model(1), &lc, 7, NULL);
    if (!f->e)
        return -1;
    tr_model *m = cl_engine_model(f->e);
    co_tensor t[8];
    size_t nt = 0;
    for (int i = 0; i < tr_lora_count(m) && nt < 8; i++) {
        tr_tensor tt;
        tr_lora_tensor(m, i, &tt);
        if (!tr_lora_tensor_grad(m, i))
            continue;
        t[nt] = (co_tensor){.name = tt.name, .ndim = tt.ndim, .data = tt.data};
        for (int d = 0; d < tt.ndim; d++)
            t[nt].shape[d] = (uint64_t)tt.shape[d];
        nt++;
    }
    co_config cfg;
    co_config_default(&cfg);
    mu_diag d = {{0}};
    f->r = co_round_new(&cfg, t, nt, &d);
    co_config_deinit(&cfg);
    *state = f;
    return f->r && system("rm -rf ho_ck ho_exp ho_block && touch ho_block") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    co_round_free(f->r);
    cl_engine_free(f->e);
    free(f);
    return 0;
}

static co_event round_event(uint64_t round, int kind, int outcome)
{
    co_event ev = {.kind = CO_EVENT_ROUND};
    ev.metrics.round = round;
    ev.metrics.kind = (uint8_t)kind;
    ev.metrics.outcome = (uint8_t)outcome;
    return ev;
}

static void latest_is(const char *want)
{
    char got[64] = {0};
    assert_true(readlink("ho_exp/latest", got, sizeof got - 1) > 0);
    assert_string_equal(got, want);
    struct stat st;
    assert_int_equal(stat("ho_exp/latest/adapter_model.safetensors", &st), 0);
    assert_int_not_equal(lstat("ho_exp/.latest.tmp", &st), 0);
}

static void test_pipeline(void **state)
{
    fixture *f = *state;
    uint8_t hash[CO_HASH_BYTES] = {1, 2, 3};
    ho_after a = {.checkpoint_dir = "ho_ck/nested",
                  .config_hash = hash,
                  .export_dir = "ho_exp",
                  .model = cl_engine_model(f->e),
                  .base_name = "tiny"};
    mu_diag d = {{0}};
    co_event ev = round_event(1, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000001");
    co_checkpoint ck;
    assert_int_equal(co_checkpoint_load("ho_ck/nested", hash, 0, &ck, &d), MU_OK);
    co_checkpoint_deinit(&ck);
    ev = round_event(2, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000002");
    /* an evaluation round and an aborted round export nothing; latest stays */
    ev = round_event(3, CO_ROUND_EVAL, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    ev = round_event(4, CO_ROUND_TRAIN, CO_ROUND_ABORTED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000002");
    struct stat st;
    assert_int_not_equal(stat("ho_exp/round-000003", &st), 0);
    assert_int_not_equal(stat("ho_exp/round-000004", &st), 0);
    assert_int_equal(stat("ho_exp/round-000001/adapter_config.json", &st), 0);
    /* a leftover temporary link from a crash is replaced */
    assert_int_equal(symlink("nowhere", "ho_exp/.latest.tmp"), 0);
    ev = round_event(5, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000005");
}

static void test_failures(void **state)
{
    fixture *f = *state;
    mu_diag d = {{0}};
    co_event ev = round_event(1, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    /* ho_block is a file: no folder can be made below it */
    ho_after a = {.checkpoint_dir = "ho_block/ck"};
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "ho_block/ck"));
    /* an export that fails is logged; the round goes on with its checkpoint written */
    ho_after b = {.checkpoint_dir = "ho_ck/other",
                  .export_dir = "ho_block/exp",
                  .model = cl_engine_model(f->e),
                  .base_name = "tiny"};
    assert_int_equal(ho_after_round(&b, f->r, &ev, &d), MU_OK);
    struct stat st;
    assert_int_equal(stat("ho_ck/other/" CO_CHECKPOINT_FILE, &st), 0);
    /* a global of another size than the model's adapter is refused */
    float g[3] = {0};
    assert_int_equal(ho_peft_write(cl_engine_model(f->e), g, 3, "ho_exp/bad", "tiny", &d),
                     MU_ERR_INVALID);
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
