/* An image classifier (MLP): in -> 512 -> 256 -> classes with ReLU, softmax
 * cross-entropy on the shards' labels. Besides its accuracy, its 256-wide
 * layer is the feature space of the Frechet score (score.c) of every image
 * generator. */
#ifndef TRAINER_MODELS_CLASSIFIER_H
#define TRAINER_MODELS_CLASSIFIER_H

#include "trainer/model.h"
#include "trainer/nn/linear.h"

#include <stdint.h>

typedef struct {
    int classes;
} classifier_opts;

extern const model_type classifier_model;

typedef struct {
    model base;
    int in, K, maxB;
    int H1, H2; /* hidden widths: 512 and 256 in the model */
    int w1, b1, w2, b2, w3, b3;
    float *buf, *h1, *h2, *logits, *dlogits, *dh1, *dh2;
    int32_t *labels;
    int use_fixed; /* a tree call (batch.h): the products in the fixed order */
    linear_fixed fixed;
} classifier;

int classifier_build(classifier *m, int in, int classes, int h1, int h2, int maxB);
void classifier_free(classifier *m);
/* row_loss[j]: -log p(label j); m->logits then holds probabilities. */
void classifier_forward(classifier *m, const float *params, const float *x,
                        const uint8_t *labels, int R, double *row_loss);
void classifier_backward(classifier *m, const float *params, float *grads, const float *x, int R,
                         float scale);

#endif
