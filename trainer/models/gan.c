#include "gan.h"

#include "trainer/nn/activation.h"
#include "trainer/nn/exactmath.h"
#include "trainer/nn/linear.h"
#include "trainer/philox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Carves the activation buffer; with buf NULL only counts. */
static size_t carve(gan *m, float *buf)
{
    const size_t B = (size_t)m->maxB, N = 2 * B, in = (size_t)m->in;
    size_t n = 0;
#define TAKE(ptr, count)                                                                          \
    do {                                                                                          \
        if (buf)                                                                                  \
            (ptr) = buf + n;                                                                      \
        n += (count);                                                                             \
    } while (0)
    TAKE(m->z, B * m->Z);
    TAKE(m->gh1, B * m->G1);
    TAKE(m->gh2, B * m->G2);
    TAKE(m->fake, B * in);
    TAKE(m->dx, N * in);
    TAKE(m->a1, N * m->D1);
    TAKE(m->a2, N * m->D2);
    TAKE(m->logit, N);
    TAKE(m->glogit, N);
    TAKE(m->ga2, 2 * N * m->D2); /* after and before the activation */
    TAKE(m->ga1, 2 * N * m->D1);
    TAKE(m->gdx, B * in);
    TAKE(m->gpre, B * in);
    TAKE(m->ggh2, 2 * B * m->G2);
    TAKE(m->ggh1, 2 * B * m->G1);
#undef TAKE
    return n;
}

int gan_build(gan *m, int in, int latent, float leak, const int widths[4], int maxB)
{
    memset(m, 0, sizeof *m);
    m->base.type = &gan_model;
    m->G1 = widths[0];
    m->G2 = widths[1];
    m->D1 = widths[2];
    m->D2 = widths[3];
    m->in = in;
    m->Z = latent;
    m->leak = leak;
    m->maxB = maxB;
    m->nseg = 1;
    param_table *t = &m->base.params;
    params_add_linear(t, "g.fc1", latent, m->G1, &m->g1w, &m->g1b);
    params_add_linear(t, "g.fc2", m->G1, m->G2, &m->g2w, &m->g2b);
    params_add_linear(t, "g.out", m->G2, in, &m->g3w, &m->g3b);
    params_add_linear(t, "d.fc1", in, m->D1, &m->d1w, &m->d1b);
    params_add_linear(t, "d.fc2", m->D1, m->D2, &m->d2w, &m->d2b);
    params_add_linear(t, "d.out", m->D2, 1, &m->d3w, &m->d3b);
    size_t n = carve(m, NULL);
    m->buf = calloc(n, sizeof(float));
    int widest = in > latent ? in : latent;
    for (int i = 0; i < 4; i++)
        widest = widths[i] > widest ? widths[i] : widest;
    m->fixed.scratch = calloc(2 * (size_t)widest * 2 * (size_t)maxB, sizeof(float));
    if (!m->buf || !m->fixed.scratch) {
        fprintf(stderr, "trainer: out of memory for GAN activations (%zu floats)\n", n);
        return -1;
    }
    carve(m, m->buf);
    return 0;
}

void gan_free(gan *m)
{
    free(m->buf);
    free(m->fixed.scratch);
    m->buf = m->fixed.scratch = NULL;
}

static const float *W(const gan *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

static float *G(const gan *m, float *grads, int idx) { return grads + m->base.params.v[idx].offset; }

/* The fixed-order products in every call but fast training's (OpenBLAS). */
static const linear_fixed *fixed_of(const gan *m) { return m->use_fixed ? &m->fixed : NULL; }

/* out = act(inp . W^T + b), LeakyReLU, for R rows. */
static void dense(const gan *m, const float *params, float *out, const float *inp, int w, int b,
                  int R, int C, int OC)
{
    linear_forward_by(fixed_of(m), out, inp, W(m, params, w), W(m, params, b), R, C, OC);
    leaky_relu_forward(out, out, m->leak, (size_t)R * OC);
}

void gan_generate(gan *m, const float *params, int R)
{
    dense(m, params, m->gh1, m->z, m->g1w, m->g1b, R, m->Z, m->G1);
    dense(m, params, m->gh2, m->gh1, m->g2w, m->g2b, R, m->G1, m->G2);
    linear_forward_by(fixed_of(m), m->fake, m->gh2, W(m, params, m->g3w), W(m, params, m->g3b), R,
                      m->G2, m->in);
    sigmoid_forward(m->fake, m->fake, (size_t)R * m->in);
}

/* The discriminator's logits for N rows of inp. */
static void discriminate(gan *m, const float *params, const float *inp, int N)
{
    dense(m, params, m->a1, inp, m->d1w, m->d1b, N, m->in, m->D1);
    dense(m, params, m->a2, m->a1, m->d2w, m->d2b, N, m->D1, m->D2);
    linear_forward_by(fixed_of(m), m->logit, m->a2, W(m, params, m->d3w), W(m, params, m->d3b), N,
                      m->D2, 1);
}

/* log(1 + e^x) without overflow */
static double softplus(double x) { return fmax(x, 0.0) + log1p_unit_d(exp_d(-fabs(x))); }

/* Where row j's real and generated rows sit among the discriminator's 2R
 * rows in phase 0: lane by lane, its real rows, then its generated ones. */
static int real_at(const gan *m, int R, int j)
{
    const int r = R / m->nseg;
    return (j / r) * 2 * r + j % r;
}

static int fake_at(const gan *m, int R, int j) { return real_at(m, R, j) + R / m->nseg; }

void gan_forward(gan *m, const float *params, const float *x, int R, int phase, double *row_loss)
{
    const size_t in = (size_t)m->in;
    gan_generate(m, params, R);
    if (phase == 0) {
        for (int j = 0; j < R; j++) {
            memcpy(m->dx + (size_t)real_at(m, R, j) * in, x + (size_t)j * in, in * sizeof(float));
            memcpy(m->dx + (size_t)fake_at(m, R, j) * in, m->fake + (size_t)j * in,
                   in * sizeof(float));
        }
        discriminate(m, params, m->dx, 2 * R);
        for (int j = 0; j < R; j++)
            row_loss[j] = softplus(-m->logit[real_at(m, R, j)]) +
                          softplus(m->logit[fake_at(m, R, j)]);
    } else {
        discriminate(m, params, m->fake, R);
        for (int j = 0; j < R; j++)
            row_loss[j] = softplus(-m->logit[j]);
    }
}

/* Back through the discriminator's N rows from glogit: its tensors' grads
 * when dparams is set, the gradient of its input into gin when set. */
static void discriminator_backward(gan *m, const float *params, float *dparams, float *gin,
                                   const float *inp, int N)
{
    const size_t n2 = (size_t)N * m->D2, n1 = (size_t)N * m->D1;
    float *ga2 = m->ga2, *gp2 = m->ga2 + n2, *ga1 = m->ga1, *gp1 = m->ga1 + n1;
    memset(m->ga2, 0, 2 * n2 * sizeof(float));
    memset(m->ga1, 0, 2 * n1 * sizeof(float));
    const linear_fixed *f = fixed_of(m);
    if (dparams)
        linear_backward_params_by(f, G(m, dparams, m->d3w), G(m, dparams, m->d3b), m->glogit,
                                  m->a2, N, m->D2, 1);
    linear_backward_input_by(f, ga2, m->glogit, W(m, params, m->d3w), N, m->D2, 1);
    leaky_relu_backward(gp2, m->a2, ga2, m->leak, n2);
    if (dparams)
        linear_backward_params_by(f, G(m, dparams, m->d2w), G(m, dparams, m->d2b), gp2, m->a1, N,
                                  m->D1, m->D2);
    linear_backward_input_by(f, ga1, gp2, W(m, params, m->d2w), N, m->D1, m->D2);
    leaky_relu_backward(gp1, m->a1, ga1, m->leak, n1);
    if (dparams)
        linear_backward_params_by(f, G(m, dparams, m->d1w), G(m, dparams, m->d1b), gp1, inp, N,
                                  m->in, m->D1);
    if (gin)
        linear_backward_input_by(f, gin, gp1, W(m, params, m->d1w), N, m->in, m->D1);
}

/* Back through the generator from the gradient of its images (gdx). */
static void generator_backward(gan *m, const float *params, float *grads, int R)
{
    const size_t n = (size_t)R * m->in, n2 = (size_t)R * m->G2, n1 = (size_t)R * m->G1;
    float *gh2 = m->ggh2, *gp2 = m->ggh2 + n2, *gh1 = m->ggh1, *gp1 = m->ggh1 + n1;
    memset(m->gpre, 0, n * sizeof(float));
    memset(m->ggh2, 0, 2 * n2 * sizeof(float));
    memset(m->ggh1, 0, 2 * n1 * sizeof(float));
    sigmoid_backward(m->gpre, m->fake, m->gdx, n);
    const linear_fixed *f = fixed_of(m);
    linear_backward_params_by(f, G(m, grads, m->g3w), G(m, grads, m->g3b), m->gpre, m->gh2, R,
                              m->G2, m->in);
    linear_backward_input_by(f, gh2, m->gpre, W(m, params, m->g3w), R, m->G2, m->in);
    leaky_relu_backward(gp2, m->gh2, gh2, m->leak, n2);
    linear_backward_params_by(f, G(m, grads, m->g2w), G(m, grads, m->g2b), gp2, m->gh1, R, m->G1,
                              m->G2);
    linear_backward_input_by(f, gh1, gp2, W(m, params, m->g2w), R, m->G1, m->G2);
    leaky_relu_backward(gp1, m->gh1, gh1, m->leak, n1);
    linear_backward_params_by(f, G(m, grads, m->g1w), G(m, grads, m->g1b), gp1, m->z, R, m->Z,
                              m->G1);
}

/* d softplus(s x) / dx = s sigmoid(s x) */
static float sigmoid1(float x)
{
    return x >= 0 ? 1.0f / (1.0f + exp_f(-x)) : exp_f(x) / (1.0f + exp_f(x));
}

void gan_backward(gan *m, const float *params, float *grads, int R, int phase, float scale)
{
    if (phase == 0) {
        for (int j = 0; j < R; j++) {
            const int real = real_at(m, R, j), fake = fake_at(m, R, j);
            m->glogit[real] = scale * (sigmoid1(m->logit[real]) - 1.0f);
            m->glogit[fake] = scale * sigmoid1(m->logit[fake]);
        }
        discriminator_backward(m, params, grads, NULL, m->dx, 2 * R);
        return;
    }
    for (int j = 0; j < R; j++)
        m->glogit[j] = scale * (sigmoid1(m->logit[j]) - 1.0f);
    memset(m->gdx, 0, (size_t)R * m->in * sizeof(float));
    discriminator_backward(m, params, NULL, m->gdx, m->fake, R); /* frozen: no grads */
    generator_backward(m, params, grads, R);
}

/* The model interface. */

static const opt_spec GAN_OPTS[] = {
    OPT(gan_opts, latent, "latent", OPT_INT, "64", CMD_TRAIN, 1, 65536, "noise size"),
    OPT(gan_opts, leak, "leak", OPT_DOUBLE, "0.2", CMD_TRAIN, 0, 1, "LeakyReLU slope"),
};

static const char *const GAN_DEFAULTS[][2] = {
    {"lr", "2e-4"}, {"beta1", "0.5"}, {"beta2", "0.999"}, {"epochs", "30"},
};

static const char *const GAN_PHASES[2] = {"D", "G"};

static model *gan_create(const config *c, const data_shape *shape, int max_rows)
{
    const gan_opts *o = MODEL_OPTS(c, const gan_opts);
    gan *m = malloc(sizeof *m);
    static const int widths[4] = {256, 512, 512, 256}; /* the seed article's */
    if (!m || gan_build(m, (int)shape->in, o->latent, (float)o->leak, widths, max_rows) != 0) {
        if (m)
            gan_free(m);
        free(m);
        return NULL;
    }
    return &m->base;
}

static void gan_destroy(model *base)
{
    gan_free((gan *)base);
    free(base);
}

static void gan_init(const model *base, float *params, uint32_t seed)
{
    params_init_linear(&base->params, params, seed);
}

/* Row j's noise from its own key: the same draw whoever computes the row. */
static void draw_noise(gan *m, const batch *b)
{
    for (int j = 0; j < b->rows; j++)
        rng_normals(b->seed, b->key[j].stream, b->purpose, b->key[j].a, b->key[j].b,
                    m->z + (size_t)j * m->Z, (size_t)m->Z);
}

static void gan_forward_batch(model *base, const float *params, const batch *b, double *row_loss)
{
    gan *m = (gan *)base;
    m->use_fixed = !b->fast;
    m->nseg = b->nseg > 0 ? b->nseg : 1;
    m->fixed.nseg = m->nseg;
    draw_noise(m, b);
    gan_forward(m, params, b->x, b->rows, b->phase, row_loss);
}

static void gan_backward_batch(model *base, const float *params, float *grad, const batch *b,
                               float scale)
{
    gan_backward((gan *)base, params, grad, b->rows, b->phase, scale);
}

static void gan_phase_tensors(const model *base, int phase, int *first, int *count)
{
    const gan *m = (const gan *)base;
    *first = phase == 0 ? m->d1w : m->g1w;
    *count = 6;
}

static void gan_images(model *base, const float *params, const batch *b, float *out)
{
    gan *m = (gan *)base;
    m->use_fixed = 1; /* one segment: the same bits on every CPU */
    m->nseg = m->fixed.nseg = 1;
    draw_noise(m, b);
    gan_generate(m, params, b->rows);
    memcpy(out, m->fake, (size_t)b->rows * m->in * sizeof(float));
}

/* Per image: the generator once and the discriminator on two images in the
 * first phase, the generator and the discriminator once in the second;
 * 6 FLOPs per weight use. */
static double gan_flops(const model *base)
{
    const gan *m = (const gan *)base;
    double g = 0, d = 0;
    for (int i = 0; i < base->params.n; i++)
        *(i < m->d1w ? &g : &d) += (double)base->params.v[i].numel;
    return 6.0 * (2 * g + 3 * d);
}

const model_type gan_model = {
    .name = "gan",
    .summary = "generative adversarial network (MLPs) on images",
    .task = &image_task,
    .loss_name = "discriminator loss",
    .opts = OPT_GROUP(GAN_OPTS, gan_opts),
    .defaults = GAN_DEFAULTS,
    .ndefaults = (int)(sizeof GAN_DEFAULTS / sizeof GAN_DEFAULTS[0]),
    .create = gan_create,
    .destroy = gan_destroy,
    .init = gan_init,
    .forward = gan_forward_batch,
    .backward = gan_backward_batch,
    .tree_lanes = 1,
    .phases = 2,
    .phase_tensors = gan_phase_tensors,
    .phase_names = GAN_PHASES,
    .flops_per_unit = gan_flops,
    .generate_images = gan_images,
};
