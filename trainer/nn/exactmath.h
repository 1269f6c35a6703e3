/* Transcendental functions with the same bits on every CPU.
 *
 * glibc picks its exp, log, sin and cos at load time by the CPU's features
 * (a fused multiply-add variant on CPUs with FMA, another without), and
 * none of them is correctly rounded, so the same call can return different
 * bits on two machines. Everything on the exact path goes through these
 * instead: each is a fixed sequence of IEEE additions, multiplications and
 * divisions (no fused multiply-add: the build sets -ffp-contract=off), whose
 * result is the same on any x86-64, at any vector width when a loop over
 * them vectorizes, and with any libm.
 *
 * Accuracy: the float functions within 2 ulp of float, the double ones within
 * 4 ulp of double (tests/test_exactmath.c measures both against libm). Out of
 * range: exp_f and exp_d give 0 below the smallest normal result and +inf
 * above the largest; log_f and log_d give -inf at 0 and NaN below it. */
#ifndef TRAINER_EXACTMATH_H
#define TRAINER_EXACTMATH_H

#include <stdint.h>

/* e^x for -87.3 <= x <= 88.7 (0 below, +inf above): x = k ln2 + r with
 * |r| <= ln2 / 2, e^r by its Taylor polynomial to r^7 (error below 6e-9
 * relative), 2^k put into the exponent bits. The range and the edges are
 * integer operations on the bits, no branch, so loops calling it
 * vectorize. */
static inline float exp_f(float x)
{
    const float log2e = 1.44269504f, ln2_hi = 0.693145752f, ln2_lo = 1.42860677e-6f;
    /* x clamped to [-87.3, 88.7] on its bits: integer selects, which keep a
     * loop branch-free whatever the compiler assumes of float traps */
    union {
        float f;
        int32_t i;
    } xb = {.f = x}, xc;
    const int32_t mag = xb.i & INT32_MAX, sign = xb.i & INT32_MIN;
    const int32_t cap = sign ? 0x42ae999a : 0x42b16666; /* 87.3f, 88.7f */
    xc.i = sign | (mag < cap ? mag : cap);
    /* adding 1.5 * 2^23 rounds to an integer, which then stands in the low
     * bits of the sum: k's float for the reduction, its int from the bits */
    union {
        float f;
        int32_t i;
    } t = {.f = xc.f * log2e + 12582912.0f};
    const float k = t.f - 12582912.0f;
    const int32_t ki = t.i - 0x4b400000;
    const float r = (xc.f - k * ln2_hi) - k * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^k as two halves, so that k = 128 (p < 1 there) stays finite */
    union {
        int32_t i;
        float f;
    } s1 = {.i = ((ki >> 1) + 127) << 23}, s2 = {.i = ((ki - (ki >> 1)) + 127) << 23},
      y = {.f = p * s1.f * s2.f};
    /* out of range: 0 or +inf; NaN stays NaN. Masks, not selects: the
     * compiler would not compute a trapping product for one side only */
    const int32_t nan = -(mag > 0x7f800000), beyond = -(mag > cap) & ~nan;
    const int32_t edge = sign ? 0 : 0x7f800000;
    y.i = (y.i & ~(beyond | nan)) | (edge & beyond) | (0x7fc00000 & nan);
    return y.f;
}

/* e^x in double for |x| up to 708 (0 below -708.3, +inf above 709.7): x =
 * k ln2 + r, |r| <= ln2 / 2, the Taylor polynomial of e^r to r^13 (error
 * below 1e-17 relative), times 2^k in the exponent bits. */
static inline double exp_d(double x)
{
    if (x != x)
        return x;
    if (x > 709.7)
        return __builtin_inf();
    if (x < -708.3)
        return 0.0;
    const double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10;
    const double round = 6755399441055744.0; /* 1.5 * 2^52 */
    const double k = (x * log2e + round) - round;
    const double r = (x - k * ln2_hi) - k * ln2_lo;
    double p = 1.0 / 6227020800.0; /* 1/13! */
    static const double inv_fact[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                      1.0 / 362880.0,    1.0 / 40320.0,    1.0 / 5040.0,
                                      1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,
                                      1.0 / 6.0,         0.5,              1.0,
                                      1.0};
    for (int i = 0; i < 13; i++)
        p = p * r + inv_fact[i];
    const int64_t k1 = (int64_t)k / 2, k2 = (int64_t)k - k1;
    union {
        int64_t i;
        double f;
    } s1 = {.i = (k1 + 1023) << 52}, s2 = {.i = (k2 + 1023) << 52};
    return p * s1.f * s2.f;
}

/* 2 atanh(s) for |s| <= 1/3, by its series to s^37 (enough for s = 1/3:
 * the next term is below 1e-18 of the result). */
static inline double two_atanh_d(double s)
{
    const double s2 = s * s;
    double p = 1.0 / 37.0;
    for (int n = 35; n >= 1; n -= 2)
        p = p * s2 + 1.0 / n;
    return 2.0 * s * p;
}

/* log(x) in double: x = 2^k m, m in [sqrt(1/2), sqrt(2)), 2 atanh((m - 1) /
 * (m + 1)) plus k ln2 in two parts. */
static inline double log_d(double x)
{
    if (!(x > 0.0))
        return x == 0.0 ? -__builtin_inf() : __builtin_nan("");
    if (x == __builtin_inf())
        return x;
    int64_t bias = 1023;
    if (x < 2.2250738585072014e-308) { /* subnormal */
        x *= 18014398509481984.0; /* 2^54 */
        bias += 54;
    }
    union {
        double f;
        int64_t i;
    } u = {.f = x};
    int64_t k = ((u.i >> 52) & 0x7ff) - bias;
    u.i = (u.i & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
    if (u.f > 1.4142135623730951) {
        u.f *= 0.5;
        k++;
    }
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return (double)k * ln2_lo + two_atanh_d((u.f - 1.0) / (u.f + 1.0)) + (double)k * ln2_hi;
}

/* log(x) in float: log_d's result rounded, within an ulp. */
static inline float log_f(float x) { return (float)log_d((double)x); }

/* log(1 + u) for 0 <= u <= 1, without losing small u: 2 atanh(u / (2 + u)). */
static inline double log1p_unit_d(double u) { return two_atanh_d(u / (2.0 + u)); }

/* sin(2 pi u) and cos(2 pi u) for any u: u taken to the nearest quarter
 * turn q (exact: u * 4 and its nearest integer are exact in double for the
 * u of Box-Muller), the rest |f| <= 1/8 turn as theta = 2 pi f, whose sine
 * and cosine are Taylor polynomials to theta^17 and theta^18, then turned
 * by q quarters. */
static inline void sincos_turns_d(double u, double *s, double *c)
{
    /* (-1)^n / (2n + 1)! and (-1)^n / (2n)!, highest n first */
    static const double sin_c[] = {1.0 / 355687428096000.0, -1.0 / 1307674368000.0,
                                   1.0 / 6227020800.0,      -1.0 / 39916800.0,
                                   1.0 / 362880.0,          -1.0 / 5040.0,
                                   1.0 / 120.0,             -1.0 / 6.0,
                                   1.0};
    static const double cos_c[] = {-1.0 / 6402373705728000.0, 1.0 / 20922789888000.0,
                                   -1.0 / 87178291200.0,      1.0 / 479001600.0,
                                   -1.0 / 3628800.0,          1.0 / 40320.0,
                                   -1.0 / 720.0,              1.0 / 24.0,
                                   -0.5,                      1.0};
    const double v = u * 4.0;
    const double q = __builtin_floor(v + 0.5);
    const double t = (v - q) * 1.5707963267948966; /* pi / 2 */
    const double t2 = t * t;
    double ps = sin_c[0], pc = cos_c[0];
    for (int i = 1; i < 9; i++)
        ps = ps * t2 + sin_c[i];
    for (int i = 1; i < 10; i++)
        pc = pc * t2 + cos_c[i];
    const double sn = t * ps, cs = pc;
    const int quarter = (int)((int64_t)q & 3);
    *s = quarter == 0 ? sn : quarter == 1 ? cs : quarter == 2 ? -sn : -cs;
    *c = quarter == 0 ? cs : quarter == 1 ? -sn : quarter == 2 ? -cs : sn;
}

/* x^n for a whole n >= 0 by repeated squaring: a fixed sequence of
 * products for each n (the Adam bias corrections). */
static inline double powi_d(double x, long n)
{
    double r = 1.0;
    for (; n > 0; n >>= 1, x *= x)
        if (n & 1)
            r *= x;
    return r;
}

#endif
