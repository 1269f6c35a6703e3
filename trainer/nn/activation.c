#include "activation.h"

#include <math.h>
#include <stdint.h>

void relu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_mask(float *d, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = out[i] > 0.0f ? d[i] : 0.0f;
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2 / pi) */

/* e^x for -80 <= x <= 0 in plain float arithmetic, so that loops calling it
 * vectorize (libm's tanhf took a third of a GPT step): x = k ln2 + r with
 * |r| <= ln2 / 2, e^r by its Taylor polynomial to r^6 (error below 1.2e-7
 * relative), 2^k put straight into the exponent bits. */
static inline float exp_poly(float x)
{
    const float log2e = 1.44269504f, ln2_hi = 0.693145752f, ln2_lo = 1.42860677e-6f;
    const float round = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float k = (x * log2e + round) - round;
    float r = (x - k * ln2_hi) - k * ln2_lo;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)k + 127) << 23};
    return p * scale.f;
}

/* tanh(u) = sign(u) (1 - e) / (1 + e) with e = e^-2|u|, |u| capped at 40
 * (tanh is 1 in float long before). The cap and the sign are integer
 * operations on the float's bits (for non-negative floats integer order is
 * float order), so the loop has no branch and vectorizes. Absolute error
 * near float's spacing at 1 (6e-8). */
float tanh_poly(float u)
{
    union {
        float f;
        int32_t i;
    } a = {.f = u}, r;
    const int32_t sign = a.i & INT32_MIN, cap = 0x42200000; /* 40.0f */
    int32_t mag = a.i & INT32_MAX;
    a.i = mag < cap ? mag : cap;
    float e = exp_poly(-2.0f * a.f);
    r.f = (1.0f - e) / (1.0f + e);
    r.i |= sign;
    return r.f;
}

void gelu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanh_poly(u));
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float t = tanh_poly(u);
        float sech2 = 1.0f - t * t;
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * sech2 * du);
    }
}
