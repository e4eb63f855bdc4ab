/* What an org's data taught the model is wiped, not just freed (issue 10): the update Δ when
 * the participant drops it (a new round, or the participant freed), the trained weights and
 * the gradient in the engine after TRAIN (the engine keeps the global). Linked with
 * -Wl,--wrap=free: the watched buffer must be all zero when it reaches free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cl_participant.h"
#include "client/cl_tiny.h"
#include "mu_log.h"

void __real_free(void *ptr);
void __wrap_free(void *ptr);

static const void *watched; /* a buffer whose bytes at free time are checked */
static size_t watched_len;
static int watched_freed, watched_clean;

void __wrap_free(void *ptr)
{
    if (ptr && ptr == watched) {
        const unsigned char *b = ptr;
        watched_clean = 1;
        for (size_t i = 0; i < watched_len; i++)
            watched_clean &= b[i] == 0;
        watched_freed = 1;
        watched = NULL;
    }
    __real_free(ptr);
}

static void watch(const void *p, size_t len)
{
    watched = p;
    watched_len = len;
    watched_freed = watched_clean = 0;
}

static co_task train_task(uint64_t round, uint32_t dim)
{
    co_task t = {.kind = CO_TASK_TRAIN, .org_id = 1};
    t.cfg = (co_round_config){.round = round,
                              .steps = 3,
                              .batch = 2,
                              .seq = 8,
                              .lr = 0.05,
                              .dim = dim,
                              .bits = 32,
                              .clip = 10,
                              .weight_max = 100};
    return t;
}

static cl_participant *make_org(const int32_t *tok, int64_t n)
{
    cl_participant_config pc = {.name = "org", .train_tokens = tok, .n_train = n};
    uint8_t pk[32];
    crypto_sign_keypair(pk, pc.sign_sk);
    cl_participant *p = cl_participant_new(&pc, NULL);
    assert_non_null(p);
    return p;
}

/* Δ is wiped when a TRAIN for a new round replaces it, and when the participant is freed. */
static void test_delta_wiped(void **state)
{
    (void)state;
    tr_lora_config lc = {.rank = 2, .alpha = 4, .targets = TR_T_C_ATTN, .freeze_a = 1};
    cl_engine *e = cl_engine_from_model(tiny_model(1), &lc, 42, NULL);
    assert_non_null(e);
    size_t dim = cl_engine_dim(e);
    int32_t tok[300];
    tiny_tokens(tok, 300, 1, 4);
    cl_participant *p = make_org(tok, 300);
    float *g = calloc(dim, sizeof *g);
    cl_outbox ob;
    cl_outbox_init(&ob);
    mu_diag d = {{0}};
    co_task t = train_task(1, (uint32_t)dim);
    assert_int_equal(cl_participant_handle_task(p, e, &t, g, dim, &ob, &d), MU_OK);
    size_t dd;
    const float *delta = cl_participant_delta(p, &dd);
    assert_non_null(delta);
    int nonzero = 0;
    for (size_t i = 0; i < dd; i++)
        nonzero |= delta[i] != 0;
    assert_true(nonzero); /* there is something to wipe */
    watch(delta, dd * sizeof *delta);
    t = train_task(2, (uint32_t)dim);
    assert_int_equal(cl_participant_handle_task(p, e, &t, g, dim, &ob, &d), MU_OK);
    assert_true(watched_freed);
    assert_true(watched_clean);
    delta = cl_participant_delta(p, &dd);
    assert_non_null(delta);
    watch(delta, dd * sizeof *delta);
    cl_participant_free(p);
    assert_true(watched_freed);
    assert_true(watched_clean);
    cl_outbox_deinit(&ob);
    free(g);
    cl_engine_free(e);
}

/* After TRAIN the engine holds the global adapter again and a zero gradient, not the trained
 * weights. */
static void test_trained_weights_gone(void **state)
{
    (void)state;
    tr_lora_config lc = {.rank = 2, .alpha = 4, .targets = TR_T_C_ATTN, .freeze_a = 1};
    cl_engine *e = cl_engine_from_model(tiny_model(2), &lc, 42, NULL);
    assert_non_null(e);
    size_t dim = cl_engine_dim(e);
    int32_t tok[300];
    tiny_tokens(tok, 300, 2, 4);
    cl_participant *p = make_org(tok, 300);
    float *g = calloc(dim, sizeof *g);
    for (size_t i = 0; i < dim; i++)
        g[i] = 0.01f * (float)(i % 7);
    cl_outbox ob;
    cl_outbox_init(&ob);
    mu_diag d = {{0}};
    co_task t = train_task(1, (uint32_t)dim);
    assert_int_equal(cl_participant_handle_task(p, e, &t, g, dim, &ob, &d), MU_OK);
    tr_model *m = cl_engine_model(e);
    assert_memory_equal(tr_lora_trainable(m), g, dim * sizeof *g);
    const float *grad = tr_lora_grad(m);
    for (size_t i = 0; i < dim; i++)
        assert_true(grad[i] == 0.0f);
    cl_outbox_deinit(&ob);
    cl_participant_free(p);
    free(g);
    cl_engine_free(e);
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_wiped),
        cmocka_unit_test(test_trained_weights_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
