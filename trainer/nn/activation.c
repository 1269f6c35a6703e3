#include "activation.h"

#include "exactmath.h"

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

void leaky_relu_forward(float *out, const float *inp, float slope, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}

void leaky_relu_backward(float *dinp, const float *out, const float *dout, float slope, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dinp[i] += out[i] > 0.0f ? dout[i] : slope * dout[i];
}

/* 1 / (1 + e^-x) from e^-|x| <= 1, so that nothing overflows. */
void sigmoid_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float e = exp_f(-fabsf(inp[i]));
        out[i] = inp[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
}

void sigmoid_backward(float *dinp, const float *out, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

/* The GELU's loops compiled for AVX-512, AVX2 and plain x86-64, the best
 * picked at run time: element by element, the same operations in each
 * (no fused multiply-add), so the same bits. */
#if defined(__SANITIZE_THREAD__)
#define ELEMENTWISE_CLONES /* ThreadSanitizer's runtime is not up when clones resolve */
#else
#define ELEMENTWISE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

ELEMENTWISE_CLONES static void gelu_forward_clones(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanh_poly(u));
    }
}

ELEMENTWISE_CLONES static void gelu_backward_clones(float *dinp, const float *inp,
                                                    const float *dout, size_t n)
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

/* The clones are static: clang 14 does not link target_clones on a function
 * other files call. */
void gelu_forward(float *out, const float *inp, size_t n) { gelu_forward_clones(out, inp, n); }

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    gelu_backward_clones(dinp, inp, dout, n);
}
