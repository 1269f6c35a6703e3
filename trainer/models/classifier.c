#include "classifier.h"

#include "trainer/nn/activation.h"
#include "trainer/nn/crossentropy.h"
#include "trainer/nn/linear.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int classifier_build(classifier *m, int in, int classes, int h1, int h2, int maxB)
{
    memset(m, 0, sizeof *m);
    m->H1 = h1;
    m->H2 = h2;
    m->base.type = &classifier_model;
    m->in = in;
    m->K = classes;
    m->maxB = maxB;
    param_table *t = &m->base.params;
    params_add_linear(t, "c.fc1", in, m->H1, &m->w1, &m->b1);
    params_add_linear(t, "c.fc2", m->H1, m->H2, &m->w2, &m->b2);
    params_add_linear(t, "c.out", m->H2, classes, &m->w3, &m->b3);
    const size_t B = (size_t)maxB, per = 2 * (m->H1 + m->H2) + 2 * (size_t)classes;
    m->buf = calloc(B * per, sizeof(float));
    m->labels = calloc(B, sizeof *m->labels);
    const int widest = in > h1 ? in : h1;
    m->fixed.scratch = calloc(2 * (size_t)widest * B, sizeof(float));
    if (!m->buf || !m->labels || !m->fixed.scratch) {
        fprintf(stderr, "trainer: out of memory for the classifier's activations\n");
        return -1;
    }
    m->h1 = m->buf;
    m->h2 = m->h1 + B * m->H1;
    m->logits = m->h2 + B * m->H2;
    m->dlogits = m->logits + B * classes;
    m->dh1 = m->dlogits + B * classes;
    m->dh2 = m->dh1 + B * m->H1;
    return 0;
}

void classifier_free(classifier *m)
{
    free(m->buf);
    free(m->labels);
    free(m->fixed.scratch);
    m->fixed.scratch = NULL;
    m->buf = NULL;
    m->labels = NULL;
}

static const float *W(const classifier *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

static float *G(const classifier *m, float *grads, int idx)
{
    return grads + m->base.params.v[idx].offset;
}

/* The fixed-order products in every call but fast training's (OpenBLAS). */
static const linear_fixed *fixed_of(const classifier *m) { return m->use_fixed ? &m->fixed : NULL; }

/* The two hidden layers: the features. */
static void hidden(classifier *m, const float *params, const float *x, int R)
{
    const linear_fixed *f = fixed_of(m);
    linear_forward_by(f, m->h1, x, W(m, params, m->w1), W(m, params, m->b1), R, m->in, m->H1);
    relu_forward(m->h1, m->h1, (size_t)R * m->H1);
    linear_forward_by(f, m->h2, m->h1, W(m, params, m->w2), W(m, params, m->b2), R, m->H1, m->H2);
    relu_forward(m->h2, m->h2, (size_t)R * m->H2);
}

void classifier_forward(classifier *m, const float *params, const float *x,
                        const uint8_t *labels, int R, double *row_loss)
{
    hidden(m, params, x, R);
    linear_forward_by(fixed_of(m), m->logits, m->h2, W(m, params, m->w3), W(m, params, m->b3), R,
                      m->H2, m->K);
    for (int j = 0; j < R; j++)
        m->labels[j] = labels[j] < m->K ? labels[j] : 0;
    crossentropy_forward(m->logits, row_loss, m->labels, R, 1, m->K);
}

void classifier_backward(classifier *m, const float *params, float *grads, const float *x, int R,
                         float scale)
{
    memset(m->dlogits, 0, (size_t)R * m->K * sizeof(float));
    memset(m->dh1, 0, (size_t)R * (m->H1 + m->H2) * sizeof(float));
    crossentropy_backward(m->dlogits, m->logits, m->labels, R, m->K, scale);
    const linear_fixed *f = fixed_of(m);
    linear_backward_params_by(f, G(m, grads, m->w3), G(m, grads, m->b3), m->dlogits, m->h2, R,
                              m->H2, m->K);
    linear_backward_input_by(f, m->dh2, m->dlogits, W(m, params, m->w3), R, m->H2, m->K);
    relu_mask(m->dh2, m->h2, (size_t)R * m->H2);
    linear_backward_params_by(f, G(m, grads, m->w2), G(m, grads, m->b2), m->dh2, m->h1, R, m->H1,
                              m->H2);
    linear_backward_input_by(f, m->dh1, m->dh2, W(m, params, m->w2), R, m->H1, m->H2);
    relu_mask(m->dh1, m->h1, (size_t)R * m->H1);
    linear_backward_params_by(f, G(m, grads, m->w1), G(m, grads, m->b1), m->dh1, x, R, m->in,
                              m->H1);
}

/* The model interface. */

static const opt_spec CLASSIFIER_OPTS[] = {
    OPT(classifier_opts, classes, "classes", OPT_INT, "10", CMD_TRAIN, 2, 256,
        "label classes (labels at or above it count as class 0)"),
};

static const char *const CLASSIFIER_DEFAULTS[][2] = {{"epochs", "10"}};

static model *classifier_create(const config *c, const data_shape *shape, int max_rows)
{
    classifier *m = malloc(sizeof *m);
    if (!m || classifier_build(m, (int)shape->in, MODEL_OPTS(c, const classifier_opts)->classes,
                               512, 256, max_rows) != 0) {
        if (m)
            classifier_free(m);
        free(m);
        return NULL;
    }
    return &m->base;
}

static void classifier_destroy(model *base)
{
    classifier_free((classifier *)base);
    free(base);
}

static void classifier_init(const model *base, float *params, uint32_t seed)
{
    params_init_linear(&base->params, params, seed);
}

static void forward_batch(model *base, const float *params, const batch *b, double *row_loss)
{
    classifier *m = (classifier *)base;
    m->use_fixed = !b->fast;
    m->fixed.nseg = b->nseg;
    classifier_forward(m, params, b->x, b->labels, b->rows, row_loss);
}

static void backward_batch(model *base, const float *params, float *grad, const batch *b,
                           float scale)
{
    classifier_backward((classifier *)base, params, grad, b->x, b->rows, scale);
}

static double correct(model *base, const batch *b)
{
    const classifier *m = (const classifier *)base;
    double n = 0;
    for (int j = 0; j < b->rows; j++) {
        const float *p = m->logits + (size_t)j * m->K;
        int best = 0;
        for (int k = 1; k < m->K; k++)
            best = p[k] > p[best] ? k : best;
        n += best == m->labels[j];
    }
    return n;
}

static const float *features(model *base, const float *params, const batch *b, int *dim)
{
    classifier *m = (classifier *)base;
    m->use_fixed = 1; /* one segment: the same bits on every CPU */
    m->fixed.nseg = 1;
    hidden(m, params, b->x, b->rows);
    *dim = m->H2;
    return m->h2;
}

static double classifier_flops(const model *base) { return 6.0 * (double)base->params.total; }

const model_type classifier_model = {
    .name = "classifier",
    .summary = "image classifier (MLP; the feature space of the Frechet score)",
    .task = &image_task,
    .loss_name = "cross-entropy",
    .opts = OPT_GROUP(CLASSIFIER_OPTS, classifier_opts),
    .defaults = CLASSIFIER_DEFAULTS,
    .ndefaults = 1,
    .create = classifier_create,
    .destroy = classifier_destroy,
    .init = classifier_init,
    .forward = forward_batch,
    .backward = backward_batch,
    .tree_lanes = 1,
    .correct = correct,
    .features = features,
    .flops_per_unit = classifier_flops,
};
