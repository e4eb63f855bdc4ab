/* The phase timers of tr_prof.h (train_step_bench --breakdown): off, they record nothing and
 * a step computes the same bits as with them on; on, every phase of a Llama LoRA step gets
 * time (base GEMMs, LoRA, attention, LM head, cross-entropy, norms, optimizer), chunked and
 * full cross-entropy alike, and the phases add up to no more than the step's wall time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mu_progress.h"
#include "tr_model.h"
#include "tr_prof.h"
#include "train/tr_testmodel.h"

enum { B = 4, T = 32, STEPS = 3 };

static tr_model *make(void)
{
    tr_config c = tt_llama_config();
    c.vocab_size = 256;
    c.max_pos = T;
    c.d_model = 64;
    c.d_ff = 128;
    mu_diag d = {{0}};
    tr_model *m = tr_model_new(&c, &d);
    if (!m)
        fail_msg("%s", d.msg);
    tt_fill_base(m, 3);
    tr_lora_config lc = {.rank = 4,
                         .alpha = 8.0f,
                         .targets =
                             TR_T_Q_PROJ | TR_T_K_PROJ | TR_T_V_PROJ | TR_T_O_PROJ | TR_T_UP_PROJ};
    if (tr_lora_attach(m, &lc, 5, &d))
        fail_msg("%s", d.msg);
    tt_fill_lora(m, 7);
    return m;
}

/* STEPS AdamW steps; returns their wall time in seconds, the last loss in *loss. */
static double train(tr_model *m, float *loss)
{
    tr_optim_config oc = tr_optim_defaults(TR_ADAMW, 1e-2);
    tr_optim *o = tr_optim_new(&oc, tr_lora_trainable_count(m), NULL);
    assert_non_null(o);
    int32_t in[B * T], tg[B * T];
    tt_tokens(in, B * T, 256, 1);
    tt_tokens(tg, B * T, 256, 2);
    mu_diag d = {{0}};
    double t0 = mu_now();
    for (int s = 0; s < STEPS; s++)
        if (tr_train_step(m, o, in, tg, B, T, loss, &d))
            fail_msg("%s", d.msg);
    double wall = mu_now() - t0;
    tr_optim_free(o);
    return wall;
}

static void check_phases(int ce_chunk)
{
    tr_model *off = make(), *on = make();
    assert_int_equal(tr_model_set_ce_chunk(off, ce_chunk), MU_OK);
    assert_int_equal(tr_model_set_ce_chunk(on, ce_chunk), MU_OK);
    float loss_off, loss_on;
    double sec[TR_PROF_COUNT];
    tr_prof_enable(1); /* clears */
    tr_prof_enable(0);
    train(off, &loss_off);
    tr_prof_read(sec);
    for (int p = 0; p < TR_PROF_COUNT; p++)
        if (sec[p] != 0.0)
            fail_msg("timers off: %s got %g s", tr_prof_name((tr_prof_phase)p), sec[p]);
    tr_prof_enable(1);
    double wall = train(on, &loss_on);
    tr_prof_enable(0);
    tr_prof_read(sec);
    double sum = 0.0;
    for (int p = 0; p < TR_PROF_COUNT; p++) {
        if (!(sec[p] > 0.0))
            fail_msg("ce_chunk %d: phase %s got %g s", ce_chunk, tr_prof_name((tr_prof_phase)p),
                     sec[p]);
        sum += sec[p];
    }
    if (sum > wall)
        fail_msg("ce_chunk %d: phases add up to %g s, more than the %g s the steps took", ce_chunk,
                 sum, wall);
    /* the same bits with the timers on */
    assert_memory_equal(&loss_off, &loss_on, sizeof(float));
    assert_memory_equal(tr_lora_trainable(off), tr_lora_trainable(on),
                        sizeof(float) * (size_t)tr_lora_trainable_count(on));
    /* enabling again starts from zero */
    tr_prof_enable(1);
    tr_prof_enable(0);
    tr_prof_read(sec);
    for (int p = 0; p < TR_PROF_COUNT; p++)
        assert_true(sec[p] == 0.0);
    tr_model_free(off);
    tr_model_free(on);
}

static void test_chunked(void **state)
{
    (void)state;
    check_phases(0);
}

static void test_full_logits(void **state)
{
    (void)state;
    check_phases(TR_CE_FULL);
}

static void test_names(void **state)
{
    (void)state;
    const char *want[TR_PROF_COUNT] = {"gemm", "lora", "attention", "head",
                                       "ce",   "norm", "optimizer"};
    for (int p = 0; p < TR_PROF_COUNT; p++)
        assert_string_equal(tr_prof_name((tr_prof_phase)p), want[p]);
    assert_string_equal(tr_prof_name(TR_PROF_COUNT), "?");
}

int main(void)
{
    tr_threads_set(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_full_logits),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
