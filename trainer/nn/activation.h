/* Element-wise activations. Backward passes accumulate into dinp. */
#ifndef TRAINER_ACTIVATION_H
#define TRAINER_ACTIVATION_H

#include <stddef.h>

void relu_forward(float *out, const float *inp, size_t n);

/* In place: d becomes the gradient before the ReLU, given its output. */
void relu_mask(float *d, const float *out, size_t n);

/* tanh in plain float arithmetic (vectorizable), absolute error ~1e-7. */
float tanh_poly(float u);

/* GELU, tanh approximation (GPT-2). */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

#endif
