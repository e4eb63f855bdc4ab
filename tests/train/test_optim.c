/* Optimizers and clipping against the update rules of torch.optim written out in double:
 * AdamW (bias corrections, decoupled weight decay), SGD (momentum buffer starting as the
 * first gradient, coupled weight decay), clip_grad_norm_, state accessors, bad configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "tr_model.h"
#include "train/tr_testutil.h"

enum { N = 37, STEPS = 5 };

static void test_adamw(void **state)
{
    (void)state;
    tr_optim_config c = tr_optim_defaults(TR_ADAMW, 1e-2);
    assert_true(c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0.0);
    c.weight_decay = 0.1;
    tr_optim *o = tr_optim_new(&c, N, NULL);
    assert_non_null(o);
    float p[N], g[N];
    double pd[N], m[N] = {0}, v[N] = {0};
    tt_fill(p, N, 1, 1.0f);
    for (int i = 0; i < N; i++)
        pd[i] = p[i];
    for (int s = 1; s <= STEPS; s++) {
        tt_fill(g, N, 10 + (uint64_t)s, 0.5f);
        for (int i = 0; i < N; i++) {
            pd[i] *= 1.0 - c.lr * c.weight_decay;
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * (double)g[i] * g[i];
            double mh = m[i] / (1.0 - pow(0.9, s)), vh = v[i] / (1.0 - pow(0.999, s));
            pd[i] -= c.lr * mh / (sqrt(vh) + 1e-8);
        }
        float norm = 0.0f;
        assert_int_equal(tr_optim_step(o, p, g, N, &norm), MU_OK);
        assert_true(norm > 0.0f);
        assert_int_equal(tr_optim_get_step(o), s);
    }
    for (int i = 0; i < N; i++)
        if (fabs(p[i] - pd[i]) > 1e-6)
            fail_msg("adamw p[%d] %.9g, expected %.9g", i, (double)p[i], pd[i]);
    float *m1 = tr_optim_m1(o), *m2 = tr_optim_m2(o);
    assert_int_equal(tr_optim_state_len(o), N);
    for (int i = 0; i < N; i++) {
        assert_true(fabs(m1[i] - m[i]) < 1e-6);
        assert_true(fabs(m2[i] - v[i]) < 1e-7);
    }
    assert_int_equal(tr_optim_step(o, p, g, N - 1, NULL), MU_ERR_INVALID);
    tr_optim_free(o);
}

/* Restoring moments and step into a new optimizer continues the run exactly. */
static void test_adamw_resume(void **state)
{
    (void)state;
    tr_optim_config c = tr_optim_defaults(TR_ADAMW, 3e-3);
    tr_optim *a = tr_optim_new(&c, N, NULL), *b = tr_optim_new(&c, N, NULL);
    float pa[N], pb[N], g[N];
    tt_fill(pa, N, 2, 1.0f);
    for (int s = 0; s < 3; s++) {
        tt_fill(g, N, 20 + (uint64_t)s, 1.0f);
        tr_optim_step(a, pa, g, N, NULL);
    }
    memcpy(pb, pa, sizeof pa);
    memcpy(tr_optim_m1(b), tr_optim_m1(a), sizeof(float) * N);
    memcpy(tr_optim_m2(b), tr_optim_m2(a), sizeof(float) * N);
    tr_optim_set_step(b, tr_optim_get_step(a));
    for (int s = 3; s < 6; s++) {
        tt_fill(g, N, 20 + (uint64_t)s, 1.0f);
        tr_optim_step(a, pa, g, N, NULL);
        tt_fill(g, N, 20 + (uint64_t)s, 1.0f);
        tr_optim_step(b, pb, g, N, NULL);
    }
    assert_memory_equal(pa, pb, sizeof pa);
    /* reset: the same as a new optimizer */
    tr_optim_reset(a);
    assert_int_equal(tr_optim_get_step(a), 0);
    tr_optim *fresh = tr_optim_new(tr_optim_get_config(a), N, NULL);
    memcpy(pb, pa, sizeof pa);
    tt_fill(g, N, 50, 1.0f);
    tr_optim_step(a, pa, g, N, NULL);
    tr_optim_step(fresh, pb, g, N, NULL);
    assert_memory_equal(pa, pb, sizeof pa);
    tr_optim_free(a), tr_optim_free(b), tr_optim_free(fresh);
}

static void test_sgd(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        tr_optim_config c = tr_optim_defaults(TR_SGD, 0.1);
        c.momentum = k >= 1 ? 0.9 : 0.0;
        c.weight_decay = k == 2 ? 0.01 : 0.0;
        tr_optim *o = tr_optim_new(&c, N, NULL);
        assert_non_null(o);
        assert_null(tr_optim_m2(o));
        float p[N], g[N];
        double pd[N], buf[N];
        tt_fill(p, N, 3, 1.0f);
        for (int i = 0; i < N; i++)
            pd[i] = p[i];
        for (int s = 1; s <= STEPS; s++) {
            tt_fill(g, N, 30 + (uint64_t)s, 1.0f);
            for (int i = 0; i < N; i++) {
                double d = g[i] + c.weight_decay * pd[i];
                if (c.momentum != 0.0) {
                    buf[i] = s == 1 ? d : c.momentum * buf[i] + d;
                    d = buf[i];
                }
                pd[i] -= c.lr * d;
            }
            tr_optim_step(o, p, g, N, NULL);
        }
        for (int i = 0; i < N; i++)
            if (fabs(p[i] - pd[i]) > 1e-6)
                fail_msg("sgd (case %d) p[%d] %.9g, expected %.9g", k, i, (double)p[i], pd[i]);
        tr_optim_free(o);
    }
}

static void test_clip(void **state)
{
    (void)state;
    float g[4] = {3.0f, 0.0f, -4.0f, 0.0f};
    assert_float_equal(tr_grad_clip(g, 4, 0.0), 5.0f, 1e-6f); /* off: unchanged */
    assert_float_equal(g[0], 3.0f, 0.0f);
    assert_float_equal(tr_grad_clip(g, 4, 10.0), 5.0f, 1e-6f); /* under the limit */
    assert_float_equal(g[2], -4.0f, 0.0f);
    assert_float_equal(tr_grad_clip(g, 4, 1.0), 5.0f, 1e-6f);
    assert_float_equal(g[0], 3.0f / (5.0f + 1e-6f), 1e-7f);
    assert_float_equal(g[2], -4.0f / (5.0f + 1e-6f), 1e-7f);
    /* the optimizer clips before updating */
    tr_optim_config c = tr_optim_defaults(TR_SGD, 1.0);
    c.grad_clip = 0.5;
    tr_optim *o = tr_optim_new(&c, 2, NULL);
    float p[2] = {0.0f, 0.0f}, gg[2] = {6.0f, 8.0f}, norm = 0.0f;
    tr_optim_step(o, p, gg, 2, &norm);
    assert_float_equal(norm, 10.0f, 1e-5f);
    assert_float_equal(p[0], -0.3f, 1e-6f);
    assert_float_equal(p[1], -0.4f, 1e-6f);
    tr_optim_free(o);
}

static void test_bad_configs(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_optim_config c = tr_optim_defaults(TR_ADAMW, 1e-3);
    c.beta1 = 1.0;
    assert_null(tr_optim_new(&c, 4, &d));
    assert_non_null(strstr(d.msg, "betas"));
    c = tr_optim_defaults(TR_ADAMW, -1.0);
    assert_null(tr_optim_new(&c, 4, &d));
    c = tr_optim_defaults(TR_SGD, 0.1);
    c.momentum = 1.5;
    assert_null(tr_optim_new(&c, 4, &d));
    c = tr_optim_defaults((tr_optim_kind)9, 0.1);
    assert_null(tr_optim_new(&c, 4, &d));
    tr_optim_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw),       cmocka_unit_test(test_adamw_resume),
        cmocka_unit_test(test_sgd),         cmocka_unit_test(test_clip),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
