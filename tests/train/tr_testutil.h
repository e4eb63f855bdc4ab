/* tr_testutil.h - helpers shared by the compute tests of train/: a seeded generator, buffer
 * comparisons that print where they differ, and a central finite-difference checker. */
#ifndef TR_TESTUTIL_H
#define TR_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tr_kernels.h"

static inline float tt_uniform(uint64_t *s)
{
    *s = tr_splitmix64(*s);
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static inline void tt_fill(float *x, int64_t n, uint64_t seed, float scale)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = tt_uniform(&s) * scale;
}

/* ||a - b|| / ||b|| over n values (||a - b|| when b is zero). */
static inline double tt_rel_l2(const float *a, const float *b, int64_t n)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static inline float *tt_alloc(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p)
        abort();
    return p;
}

/* Fails (via cmocka's fail_msg) unless |a - b| <= atol + rtol * |b| everywhere. */
#define tt_assert_close(a, b, n, atol, rtol, what)                                                 \
    do {                                                                                           \
        for (int64_t i_ = 0; i_ < (int64_t)(n); i_++) {                                            \
            double d_ = fabs((double)(a)[i_] - (double)(b)[i_]);                                   \
            if (!(d_ <= (atol) + (rtol)*fabs((double)(b)[i_])))                                    \
                fail_msg("%s: element %lld differs: %.9g vs %.9g (|diff| %.3g)", (what),           \
                         (long long)i_, (double)(a)[i_], (double)(b)[i_], d_);                     \
        }                                                                                          \
    } while (0)

/* The scalar whose gradient is being checked; recomputes the forward from current inputs. */
typedef double (*tt_loss_fn)(void *ctx);

/* Central differences of f with respect to every element of x (n small), compared with the
 * analytic gradient g. Returns the largest violation ratio (<= 1 passes). */
static inline double tt_fd_ratio(float *x, int64_t n, const float *g, tt_loss_fn f, void *ctx,
                                 float h, double atol, double rtol, const char *what)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = f(ctx);
        x[i] = x0 - h;
        double lm = f(ctx);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * ((double)(x0 + h) - (double)x0));
        double r = fabs(fd - g[i]) / (atol + rtol * fabs(fd));
        if (r > worst)
            worst = r;
        if (r > 1.0)
            fprintf(stderr, "%s: element %lld: finite difference %.7g, analytic %.7g\n", what,
                    (long long)i, fd, (double)g[i]);
    }
    return worst;
}

/* sum(out * R) in double: the scalar used by the kernel gradient checks. */
static inline double tt_dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

#endif
