/* The vectorised element-wise kernels against the definitions computed in double: GELU
 * (tanh form) and its derivative, softmax-style exp sums, LayerNorm and RMSNorm rows, at
 * lengths that exercise both the 16-wide body and the tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "tr_kernels.h"
#include "train/tr_testutil.h"

static double gelu_d(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void test_gelu(void **state)
{
    (void)state;
    enum { N = 4099 };
    float *x = tt_alloc(N), *y = tt_alloc(N), *dy = tt_alloc(N), *dx = tt_alloc(N);
    tt_fill(x, N, 1, 12.0f); /* past the tanh clamp on both sides */
    tt_fill(dy, N, 2, 1.0f);
    tr_gelu_forward(y, x, N);
    tr_gelu_backward(dx, x, dy, N);
    for (int i = 0; i < N; i++) {
        double want = gelu_d(x[i]);
        if (fabs(y[i] - want) > 2e-6 + 2e-6 * fabs(want))
            fail_msg("gelu(%.7g) = %.9g, expected %.9g", (double)x[i], (double)y[i], want);
        double h = 1e-4, g = (gelu_d(x[i] + h) - gelu_d(x[i] - h)) / (2 * h) * dy[i];
        if (fabs(dx[i] - g) > 2e-5)
            fail_msg("gelu'(%.7g) * dy = %.9g, expected %.9g", (double)x[i], (double)dx[i], g);
    }
    free(x), free(y), free(dy), free(dx);
}

static void test_softmax_rows(void **state)
{
    (void)state;
    /* cross-entropy backward is softmax/N minus the one-hot: compare with double */
    int lens[] = {1, 15, 16, 17, 300};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int V = lens[k], N = 3;
        float *z = tt_alloc(N * V), *d = tt_alloc(N * V);
        tt_fill(z, N * V, 3 + k, 30.0f);
        int32_t tg[3] = {0, V - 1, V / 2};
        tr_crossentropy_backward(d, z, tg, N, V);
        for (int n = 0; n < N; n++) {
            double mx = -INFINITY, s = 0.0;
            for (int v = 0; v < V; v++)
                mx = fmax(mx, z[n * V + v]);
            for (int v = 0; v < V; v++)
                s += exp((double)z[n * V + v] - mx);
            for (int v = 0; v < V; v++) {
                double p = exp((double)z[n * V + v] - mx) / s / N - (v == tg[n] ? 1.0 / N : 0.0);
                if (fabs(d[n * V + v] - p) > 1e-7 + 1e-5 * fabs(p))
                    fail_msg("V %d row %d col %d: %.9g vs %.9g", V, n, v, (double)d[n * V + v], p);
            }
        }
        free(z), free(d);
    }
}

static void test_norm_rows(void **state)
{
    (void)state;
    int Cs[] = {3, 16, 33, 256};
    for (size_t k = 0; k < sizeof Cs / sizeof Cs[0]; k++) {
        int C = Cs[k], N = 2;
        float *x = tt_alloc(N * C), *w = tt_alloc(C), *b = tt_alloc(C), *y = tt_alloc(N * C);
        float mean[2], rstd[2];
        tt_fill(x, N * C, 10 + k, 3.0f);
        tt_fill(w, C, 20 + k, 1.0f);
        tt_fill(b, C, 30 + k, 1.0f);
        for (int i = 0; i < N * C; i++)
            x[i] += 5.0f; /* a large mean tests the two-pass variance */
        tr_layernorm_forward(y, mean, rstd, x, w, b, N, C, 1e-5f);
        for (int n = 0; n < N; n++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++)
                m += x[n * C + c];
            m /= C;
            for (int c = 0; c < C; c++)
                v += (x[n * C + c] - m) * (x[n * C + c] - m);
            v /= C;
            for (int c = 0; c < C; c++) {
                double want = (x[n * C + c] - m) / sqrt(v + 1e-5) * w[c] + b[c];
                if (fabs(y[n * C + c] - want) > 1e-5)
                    fail_msg("layernorm C %d: %.9g vs %.9g", C, (double)y[n * C + c], want);
            }
        }
        tr_rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f);
        for (int n = 0; n < N; n++) {
            double ss = 0;
            for (int c = 0; c < C; c++)
                ss += (double)x[n * C + c] * x[n * C + c];
            for (int c = 0; c < C; c++) {
                double want = w[c] * x[n * C + c] / sqrt(ss / C + 1e-6);
                if (fabs(y[n * C + c] - want) > 1e-5)
                    fail_msg("rmsnorm C %d: %.9g vs %.9g", C, (double)y[n * C + c], want);
            }
        }
        free(x), free(w), free(b), free(y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_norm_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
