/* A GAN on images (MLPs): a generator maps noise z (latent values per
 * image, from the rows' own streams, as the VAE's eps) through
 * latent -> 256 -> 512 -> in with LeakyReLU and a sigmoid output (pixels in
 * [0, 1], as the data); a discriminator maps an image through
 * in -> 512 -> 256 -> 1 with LeakyReLU to a logit (the widths are
 * parameters of gan_build, for the tests). Non-saturating losses:
 *   phase 0 (discriminator): softplus(-D(x)) + softplus(D(G(z))) per row;
 *   phase 1 (generator):     softplus(-D(G(z))) per row, through a frozen D.
 * A training step runs phase 0, updates the discriminator, then phase 1 with
 * the same noise, updates the generator (model.h's phases); each network
 * has its own tensors and so its own Adam moments.
 *
 * Shapes: R rows per call; x is [R, in]. */
#ifndef TRAINER_MODELS_GAN_H
#define TRAINER_MODELS_GAN_H

#include "trainer/model.h"
#include "trainer/nn/linear.h"

#include <stdint.h>

typedef struct {
    int latent;
    double leak;
} gan_opts;

extern const model_type gan_model;

typedef struct {
    model base;
    int in, Z, maxB;
    int G1, G2, D1, D2; /* hidden widths: 256, 512 and 512, 256 in the model */
    float leak;
    /* tensor indices: the generator's six first, then the discriminator's */
    int g1w, g1b, g2w, g2b, g3w, g3b, d1w, d1b, d2w, d2b, d3w, d3b;
    float *buf;
    float *z, *gh1, *gh2, *fake;        /* [maxB, width] */
    float *dx, *a1, *a2, *logit;        /* discriminator over up to 2 maxB rows */
    float *ga1, *ga2, *glogit, *gdx;    /* their gradients */
    float *ggh1, *ggh2, *gpre;          /* the generator's gradients */
    /* a tree call (batch.h): the products in the fixed order, the rows in
     * nseg lanes (the discriminator's real and generated rows lane by lane) */
    int use_fixed, nseg;
    linear_fixed fixed;
} gan;

/* widths: the generator's two hidden layers, then the discriminator's. */
int gan_build(gan *m, int in, int latent, float leak, const int widths[4], int maxB);
void gan_free(gan *m);
/* With the noise in m->z ([R, latent]); phase 0 or 1; row_loss[j] in nats.
 * The discriminator's rows in phase 0 are, for each of the m->nseg lanes
 * of R / nseg rows, the lane's real rows and then its generated ones. */
void gan_forward(gan *m, const float *params, const float *x, int R, int phase, double *row_loss);
/* After gan_forward of the same phase: adds the gradient of scale * summed
 * loss into the phase's network's tensors of grads (the other network's
 * tensors are not touched). */
void gan_backward(gan *m, const float *params, float *grads, int R, int phase, float scale);
/* The generator alone: images [R, in] from the noise in m->z into m->fake. */
void gan_generate(gan *m, const float *params, int R);

#endif
