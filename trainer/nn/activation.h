/* Element-wise activations. Backward passes accumulate into dinp. */
#ifndef TRAINER_ACTIVATION_H
#define TRAINER_ACTIVATION_H

#include "exactmath.h"

#include <stddef.h>
#include <stdint.h>

void relu_forward(float *out, const float *inp, size_t n);

/* In place: d becomes the gradient before the ReLU, given its output. */
void relu_mask(float *d, const float *out, size_t n);

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
    float e = exp_f(-2.0f * a.f);
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
