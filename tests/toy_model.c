#include "toy_model.h"

#include "trainer/nn/crossentropy.h"
#include "trainer/nn/linear.h"
#include "trainer/philox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    model base;
    int in, classes, max_rows, nan_step;
    float *logits, *dlogits;
    int32_t *targets;
} toy;

static const opt_spec TOY_OPTS[] = {
    OPT(toy_opts, classes, "toy-classes", OPT_INT, "10", CMD_TRAIN, 2, 256, "label classes"),
    OPT(toy_opts, nan_step, "toy-nan-step", OPT_INT, "0", CMD_TRAIN, 0, 1e9,
        "put a NaN into the gradient at this step (0: never)"),
};

static model *toy_create(const config *c, const data_shape *shape, int max_rows)
{
    toy *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.type = &toy_model;
    m->in = (int)shape->in;
    m->classes = MODEL_OPTS(c, const toy_opts)->classes;
    m->nan_step = MODEL_OPTS(c, const toy_opts)->nan_step;
    m->max_rows = max_rows;
    params_add(&m->base.params, "fc.weight", 2, (size_t)m->classes, (size_t)m->in, 1);
    params_add(&m->base.params, "fc.bias", 1, (size_t)m->classes, 0, 0);
    m->logits = calloc((size_t)max_rows * m->classes, sizeof(float));
    m->dlogits = calloc((size_t)max_rows * m->classes, sizeof(float));
    m->targets = calloc((size_t)max_rows, sizeof(int32_t));
    return &m->base;
}

static void toy_destroy(model *base)
{
    toy *m = (toy *)base;
    free(m->logits);
    free(m->dlogits);
    free(m->targets);
    free(m);
}

static void toy_init(const model *base, float *params, uint32_t seed)
{
    const param_view *w = &base->params.v[0];
    rng_normals(seed, RNG_STREAM_GLOBAL, RNG_INIT, 0, 0, params + w->offset, w->numel);
    for (size_t i = 0; i < w->numel; i++)
        params[w->offset + i] *= 0.01f;
}

static void toy_forward(model *base, const float *params, const batch *b, double *row_loss)
{
    toy *m = (toy *)base;
    const param_view *w = &base->params.v[0], *bias = &base->params.v[1];
    for (int j = 0; j < b->rows; j++)
        m->targets[j] = b->labels[j] % m->classes;
    linear_forward(m->logits, b->x, params + w->offset, params + bias->offset, b->rows, m->in,
                   m->classes);
    crossentropy_forward(m->logits, row_loss, m->targets, b->rows, 1, m->classes);
}

static void toy_backward(model *base, const float *params, float *grad, const batch *b,
                         float scale)
{
    (void)params;
    toy *m = (toy *)base;
    const param_view *w = &base->params.v[0], *bias = &base->params.v[1];
    memset(m->dlogits, 0, (size_t)b->rows * m->classes * sizeof(float));
    crossentropy_backward(m->dlogits, m->logits, m->targets, b->rows, m->classes, scale);
    linear_backward_params(grad + w->offset, grad + bias->offset, m->dlogits, b->x, b->rows, m->in,
                           m->classes, 1);
    if (m->nan_step && b->train && b->key[0].a + 1 == (uint32_t)m->nan_step)
        grad[bias->offset] += NAN; /* row keys carry the step: a = step, 0-based */
}

const model_type toy_model = {
    .name = "toy",
    .summary = "softmax regression of image labels (test-only)",
    .task = &image_task,
    .loss_name = "cross-entropy",
    .opts = OPT_GROUP(TOY_OPTS, toy_opts),
    .create = toy_create,
    .destroy = toy_destroy,
    .init = toy_init,
    .forward = toy_forward,
    .backward = toy_backward,
};
