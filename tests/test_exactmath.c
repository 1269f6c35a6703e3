/* The exact path's own transcendental functions (trainer/nn/exactmath.h):
 * their accuracy measured against libm in long double over dense sweeps,
 * the edges of their ranges, and known bits that any CPU must reproduce. */
#include "trainer/nn/exactmath.h"

#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Distance in units in the last place of float between a float and the
 * true value. */
static double ulps_f(float got, long double want)
{
    const float w = (float)want;
    const double ulp = nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return (double)fabsl((long double)got - want) / ulp;
}

static double ulps_d(double got, long double want)
{
    const double w = (double)want;
    const double ulp = nextafter(fabs(w), INFINITY) - fabs(w);
    return (double)(fabsl((long double)got - want) / ulp);
}

START_TEST(exp_f_within_two_ulp)
{
    double worst = 0.0;
    for (int i = 0; i <= 2000000; i++) {
        const float x = -87.0f + 175.5f * (float)i / 2000000.0f;
        const double e = ulps_f(exp_f(x), expl((long double)x));
        worst = e > worst ? e : worst;
    }
    ck_assert_msg(worst < 2.0, "exp_f: %.2f ulp", worst);
    ck_assert(exp_f(0.0f) == 1.0f);
    ck_assert(exp_f(-90.0f) == 0.0f && exp_f(-INFINITY) == 0.0f);
    ck_assert(exp_f(89.0f) == INFINITY && exp_f(INFINITY) == INFINITY);
    ck_assert(isnan(exp_f(NAN)));
    ck_assert(isfinite(exp_f(88.7f)));
}
END_TEST

START_TEST(log_f_within_two_ulp)
{
    double worst = 0.0;
    for (int i = 0; i <= 2000000; i++) {
        const float x = exp2f(-149.0f + 276.0f * (float)i / 2000000.0f); /* subnormal to 2^127 */
        const long double want = logl((long double)x);
        if (fabsl(want) < 1e-3L)
            continue; /* near 1: measured absolutely below */
        const double e = ulps_f(log_f(x), want);
        worst = e > worst ? e : worst;
    }
    ck_assert_msg(worst < 2.0, "log_f: %.2f ulp", worst);
    for (int i = -1000; i <= 1000; i++) { /* around 1: absolute error */
        const float x = 1.0f + (float)i * 1e-6f;
        ck_assert(fabsl((long double)log_f(x) - logl((long double)x)) < 1e-10L);
    }
    ck_assert(log_f(1.0f) == 0.0f);
    ck_assert(log_f(0.0f) == -INFINITY && isnan(log_f(-1.0f)) && log_f(INFINITY) == INFINITY);
}
END_TEST

START_TEST(doubles_within_a_few_ulp)
{
    double we = 0.0, wl = 0.0, ws = 0.0;
    for (int i = 0; i <= 1000000; i++) {
        const double x = -700.0 + 1400.0 * i / 1000000.0;
        const double e = ulps_d(exp_d(x), expl((long double)x));
        we = e > we ? e : we;
        const double y = exp2(-1074.0 + 2097.0 * i / 1000000.0);
        const long double ly = logl((long double)y);
        if (fabsl(ly) > 1e-3L) {
            const double l = ulps_d(log_d(y), ly);
            wl = l > wl ? l : wl;
        }
        /* sine and cosine of 2 pi u, as Box-Muller takes them: absolute */
        const double u = (i + 1.0) / 1000001.0;
        double s, c;
        sincos_turns_d(u, &s, &c);
        const long double t = 2.0L * 3.14159265358979323846264338327950288L * u;
        const double a = (double)fmaxl(fabsl(s - sinl(t)), fabsl(c - cosl(t)));
        ws = a > ws ? a : ws;
    }
    ck_assert_msg(we < 4.0, "exp_d: %.2f ulp", we);
    ck_assert_msg(wl < 4.0, "log_d: %.2f ulp", wl);
    ck_assert_msg(ws < 4e-16, "sincos_turns_d: %.3g", ws);
    for (int i = 1; i <= 1000; i++) { /* log1p of small and of whole units */
        const double u = i / 1000.0, v = u * 1e-12;
        ck_assert(ulps_d(log1p_unit_d(u), log1pl((long double)u)) < 4.0);
        ck_assert(ulps_d(log1p_unit_d(v), log1pl((long double)v)) < 4.0);
    }
    double s, c;
    sincos_turns_d(0.25, &s, &c);
    ck_assert(s == 1.0 && c == 0.0);
    sincos_turns_d(1.0, &s, &c);
    ck_assert(s == 0.0 && c == 1.0);
    ck_assert(exp_d(0.0) == 1.0 && log_d(1.0) == 0.0);
    ck_assert(exp_d(710.0) == INFINITY && exp_d(-709.0) == 0.0 && log_d(0.0) == -INFINITY);
}
END_TEST

/* Bits fixed once: the same on every x86-64 (and any IEEE machine), with
 * any libm. A change to these functions changes them, and then every
 * golden checksum (tests/golden.txt) with them. */
START_TEST(known_bits)
{
    static const struct {
        float x;
        uint32_t exp_bits, log_bits;
    } F[] = {
        {0.1f, 0x3f8d763e, 0xc0135d8e}, {-3.7f, 0x3cca88fe, 0x7fc00000},
        {42.5f, 0x5e1f2ec2, 0x406ff7e0}, {1e-30f, 0x3f800000, 0xc28a27b5},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        float e = exp_f(F[i].x), l = log_f(F[i].x);
        uint32_t eb, lb;
        memcpy(&eb, &e, 4);
        memcpy(&lb, &l, 4);
        ck_assert_msg(eb == F[i].exp_bits, "exp_f(%g): %08x", (double)F[i].x, eb);
        ck_assert_msg(lb == F[i].log_bits, "log_f(%g): %08x", (double)F[i].x, lb);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exactmath");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exp_f_within_two_ulp);
    tcase_add_test(tc, log_f_within_two_ulp);
    tcase_add_test(tc, doubles_within_a_few_ulp);
    tcase_add_test(tc, known_bits);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
