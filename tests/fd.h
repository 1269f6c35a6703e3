/* Finite-difference checks shared by the gradient suites.
 *
 * A check compares an analytic gradient with (f(p + h) - f(p - h)) / 2h
 * for a scalar f, with |analytic - numeric| <= ATOL + RTOL * |numeric|.
 * The forward passes run in float, so h = 1e-3 and the tolerances are set
 * for float rounding (about 1e-7 relative in f, amplified by 1 / 2h). */
#ifndef TRAINER_TESTS_FD_H
#define TRAINER_TESTS_FD_H

#include "trainer/philox.h"

#include <check.h>
#include <math.h>
#include <stddef.h>

#define H 1e-3f
#define ATOL 2e-3
#define RTOL 2e-2

/* n uniforms in [lo, hi) from a test stream. */
static inline void randu(float *a, size_t n, uint32_t stream, float lo, float hi)
{
    rng_uniforms(99, stream, RNG_INIT, 0, 0, a, n);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * a[i];
}

static inline void assert_close(double analytic, double numeric, const char *what, size_t i)
{
    double err = fabs(analytic - numeric);
    ck_assert_msg(err <= ATOL + RTOL * fabs(numeric), "%s[%zu]: analytic %.6g, numeric %.6g", what,
                  i, analytic, numeric);
}

/* Every entry of p against grad, f evaluated at p +- H. */
static inline void check_fd(float *p, const float *grad, size_t n, double (*f)(void),
                            const char *what)
{
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + H;
        double fp = f();
        p[i] = keep - H;
        double fm = f();
        p[i] = keep;
        assert_close(grad[i], (fp - fm) / (2.0 * H), what, i);
    }
}

#endif
