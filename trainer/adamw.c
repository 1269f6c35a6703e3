#include "adamw.h"

#include "nn/exactmath.h"

#include <math.h>

/* Vectorized, at the widest width the CPU has: each element's arithmetic is
 * the same at every width (no fused multiply-add: -ffp-contract=off; IEEE
 * square root and division), so the bits are too. */
#if defined(__SANITIZE_THREAD__)
#define ADAM_CLONES __attribute__((optimize("tree-vectorize")))
#else
#define ADAM_CLONES                                                                               \
    __attribute__((optimize("tree-vectorize"), target_clones("avx512f", "avx2", "default")))
#endif

ADAM_CLONES void adamw_update(float *restrict param, const float *restrict grad, float *restrict m,
                  float *restrict v, size_t n, const adamw_hparams *h, long t, int decay)
{
    const float b1 = h->beta1, b2 = h->beta2, lr = h->lr, eps = h->eps;
    const float c1 = (float)(1.0 / (1.0 - powi_d(b1, t)));
    const float c2 = (float)(1.0 / (1.0 - powi_d(b2, t)));
    const float wd = decay ? h->lr * h->weight_decay : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float mhat = m[i] * c1, vhat = v[i] * c2;
        param[i] -= lr * mhat / (sqrtf(vhat) + eps) + wd * param[i];
    }
}
