/* Adam with decoupled weight decay (Loshchilov & Hutter), bias-corrected.
 * t is the 1-based step number. Weight decay applies where decay is set. */
#ifndef TRAINER_ADAMW_H
#define TRAINER_ADAMW_H

#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} adamw_hparams;

void adamw_update(float *restrict param, const float *restrict grad, float *restrict m,
                  float *restrict v, size_t n, const adamw_hparams *h, long t, int decay);

#endif
