/* Glow (Kingma and Dhariwal, 2018) on one-channel images, H and W
 * divisible by 2^levels:
 *
 *   x (pixels k / 255) -> dequantize: v = (k + u) / 256, u ~ U[0, 1) from
 *   the row's own stream -> y = logit(a + (1 - 2a) v), a = 0.05 (its
 *   log-determinant counted) -> for each level: squeeze (H W C ->
 *   H/2 W/2 4C), K flow steps (actnorm, invertible 1 x 1 convolution,
 *   affine coupling: nn/flow.h), then on every level but the last, split:
 *   half the channels z leave, with a Gaussian prior whose mean and log
 *   scale come from a zero-initialised 3 x 3 convolution of the kept half;
 *   the last level's output has a learned Gaussian prior (a mean and a log
 *   scale per value, zero at first).
 *
 * The loss of an image is its negative log-likelihood in nats as a
 * discrete image: -log p(z) - log|det| + D log 256 (D = H W values), whose
 * mean over the data divided by D ln 2 is bits per dimension.
 *
 * Actnorm starts from the statistics of a batch (model.h's init_from_data).
 * With 28 x 28 images, 2 levels, K = 8 and width 64 the model has 153,360
 * parameters (and 192 fixed values: the 1 x 1 convolutions' permutations
 * and signs, stored as tensors that never get a gradient). */
#ifndef TRAINER_MODELS_GLOW_H
#define TRAINER_MODELS_GLOW_H

#include "trainer/model.h"

typedef struct {
    int levels, flow_steps, width;
    double temperature;
} glow_opts;

extern const model_type glow_model;

/* For the tests: a Glow of that shape for up to max_rows images, without a
 * configuration; destroyed through its type. */
model *glow_new(int H, int W, int levels, int K, int width, int max_rows);

/* Values per image of z (H W): the last level's z first, then the split
 * ones from the last split back to the first, each channels last. */
/* z[R, H W] from preprocessed images y[R, H W] (logit space), and each
 * image's log|det dz/dy|. */
void glow_to_z(model *m, const float *params, const float *y, int R, float *z, double *logdet);
/* y[R, H W] from z: the inverse of glow_to_z. */
void glow_from_z(model *m, const float *params, const float *z, int R, float *y);

#endif
