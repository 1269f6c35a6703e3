/* Element-wise activations. Backward passes accumulate into dinp. */
#ifndef TRAINER_ACTIVATION_H
#define TRAINER_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

void relu_forward(float *out, const float *inp, size_t n);

/* In place: d becomes the gradient before the ReLU, given its output. */
void relu_mask(float *d, const float *out, size_t n);

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
static inline float tanh_poly(float u)
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

/* The logistic function through tanh_poly: 1 / (1 + e^-u) = (1 + tanh(u/2)) / 2. */
static inline float sigmoid_poly(float u) { return 0.5f + 0.5f * tanh_poly(0.5f * u); }


/* LeakyReLU with the given slope for negative inputs; the backward pass
 * takes the forward's output (its sign is the input's) and adds into
 * dinp. */
void leaky_relu_forward(float *out, const float *inp, float slope, size_t n);
void leaky_relu_backward(float *dinp, const float *out, const float *dout, float slope, size_t n);

/* The logistic function; backward from its output, adding into dinp. */
void sigmoid_forward(float *out, const float *inp, size_t n);
void sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n);

/* GELU, tanh approximation (GPT-2). */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

#endif
