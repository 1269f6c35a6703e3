#include "vae.h"

#include "trainer/nn/activation.h"
#include "trainer/nn/exactmath.h"
#include "trainer/nn/linear.h"
#include "trainer/philox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALF_LOG_2PI 0.91893853320467274178

int vae_build(vae *m, int in, const int *hidden, int nhidden, int latent, enum likelihood lik,
              float kl_weight, int autoencoder, int max_rows)
{
    memset(m, 0, sizeof *m);
    if (nhidden > VAE_MAX_HIDDEN) {
        fprintf(stderr, "trainer: --hidden: at most %d widths\n", VAE_MAX_HIDDEN);
        return -1;
    }
    m->base.type = &vae_model;
    m->in = in;
    m->latent = latent;
    m->nhidden = nhidden;
    memcpy(m->hidden, hidden, (size_t)nhidden * sizeof *hidden);
    m->lik = lik;
    m->kl_weight = kl_weight;
    m->autoencoder = autoencoder;
    m->max_rows = max_rows;
    param_table *t = &m->base.params;
    char name[32];
    int prev = in;
    for (int i = 0; i < nhidden; i++) {
        snprintf(name, sizeof name, "enc.fc%d", i + 1);
        params_add_linear(t, name, prev, hidden[i], &m->enc_w[i], &m->enc_b[i]);
        prev = hidden[i];
    }
    params_add_linear(t, "enc.mu", prev, latent, &m->mu_w, &m->mu_b);
    params_add_linear(t, "enc.logvar", prev, latent, &m->lv_w, &m->lv_b);
    prev = latent;
    for (int i = 0; i < nhidden; i++) {
        int width = hidden[nhidden - 1 - i];
        snprintf(name, sizeof name, "dec.fc%d", i + 1);
        params_add_linear(t, name, prev, width, &m->dec_w[i], &m->dec_b[i]);
        prev = width;
    }
    params_add_linear(t, "dec.out", prev, in, &m->out_w, &m->out_b);

    size_t per_row = 0;
    for (int i = 0; i < nhidden; i++)
        per_row += 2 * (size_t)hidden[i];
    per_row += 3 * (size_t)latent + (size_t)in;
    m->acts_size = per_row * (size_t)max_rows;
    m->acts = calloc(m->acts_size, sizeof(float));
    m->dacts = calloc(m->acts_size, sizeof(float));
    m->eps = calloc((size_t)max_rows * (size_t)latent, sizeof(float));
    int widest = in > 2 * latent ? in : 2 * latent;
    for (int i = 0; i < nhidden; i++)
        widest = hidden[i] > widest ? hidden[i] : widest;
    m->fixed.scratch = calloc(2 * (size_t)widest * (size_t)max_rows, sizeof(float));
    m->bce = calloc((size_t)in, sizeof(float));
    if (!m->acts || !m->dacts || !m->eps || !m->fixed.scratch || !m->bce) {
        fprintf(stderr, "trainer: out of memory for VAE activations (%zu floats)\n", m->acts_size);
        vae_free(m);
        return -1;
    }
    float *a = m->acts, *d = m->dacts;
#define CARVE(field, dfield, width)                                                     \
    do {                                                                               \
        m->field = a;                                                                  \
        m->dfield = d;                                                                 \
        a += (size_t)(width) * max_rows;                                               \
        d += (size_t)(width) * max_rows;                                               \
    } while (0)
    for (int i = 0; i < nhidden; i++)
        CARVE(enc_h[i], denc_h[i], hidden[i]);
    CARVE(mu, dmu, latent);
    CARVE(logvar, dlogvar, latent);
    CARVE(z, dz, latent);
    for (int i = 0; i < nhidden; i++)
        CARVE(dec_h[i], ddec_h[i], hidden[nhidden - 1 - i]);
    CARVE(logits, dlogits, in);
#undef CARVE
    return 0;
}

void vae_free(vae *m)
{
    free(m->acts);
    free(m->dacts);
    free(m->eps);
    free(m->fixed.scratch);
    free(m->bce);
    m->acts = m->dacts = m->eps = m->fixed.scratch = m->bce = NULL;
}

void vae_init(const vae *m, float *params, uint32_t seed)
{
    params_init_linear(&m->base.params, params, seed);
}

static const float *P(const vae *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

/* The fixed-order products in every call but fast training's (OpenBLAS). */
static const linear_fixed *fixed_of(const vae *m) { return m->use_fixed ? &m->fixed : NULL; }

void vae_encode(vae *m, const float *params, const float *x, int R)
{
    const float *h = x;
    int width = m->in;
    for (int i = 0; i < m->nhidden; i++) {
        linear_forward_by(fixed_of(m), m->enc_h[i], h, P(m, params, m->enc_w[i]),
                          P(m, params, m->enc_b[i]), R, width, m->hidden[i]);
        relu_forward(m->enc_h[i], m->enc_h[i], (size_t)R * m->hidden[i]);
        h = m->enc_h[i];
        width = m->hidden[i];
    }
    const int L = m->latent;
    linear_forward_by(fixed_of(m), m->mu, h, P(m, params, m->mu_w), P(m, params, m->mu_b), R, width,
                      L);
    linear_forward_by(fixed_of(m), m->logvar, h, P(m, params, m->lv_w), P(m, params, m->lv_b), R,
                      width, L);
}

void vae_decode(vae *m, const float *params, int R)
{
    const float *h = m->z;
    int width = m->latent;
    for (int i = 0; i < m->nhidden; i++) {
        int out = m->hidden[m->nhidden - 1 - i];
        linear_forward_by(fixed_of(m), m->dec_h[i], h, P(m, params, m->dec_w[i]),
                          P(m, params, m->dec_b[i]), R, width, out);
        relu_forward(m->dec_h[i], m->dec_h[i], (size_t)R * out);
        h = m->dec_h[i];
        width = out;
    }
    linear_forward_by(fixed_of(m), m->logits, h, P(m, params, m->out_w), P(m, params, m->out_b), R,
                      width, m->in);
}

/* A bounded argument's exp and log1p in plain float arithmetic, so that the
 * pixel loops vectorize (libm's expf and logf, one pixel at a time, took
 * a tenth of a step), with the same bits at every vector width (no fused
 * multiply-add: -ffp-contract=off). */
#if defined(__SANITIZE_THREAD__)
#define PIXEL_CLONES __attribute__((optimize("tree-vectorize")))
#else
#define PIXEL_CLONES                                                                              \
    __attribute__((optimize("tree-vectorize"), target_clones("avx512f", "avx2", "default")))
#endif

/* log(1 + u) for 0 <= u <= 1: 2 atanh(s) with s = u / (2 + u) <= 1/3, its
 * series to s^13 (the next term is below 1e-8 of the result). */
static inline float log1p_unit(float u)
{
    const float s = u / (2.0f + u), s2 = s * s;
    float p = 1.0f / 13.0f;
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return 2.0f * s * p;
}

/* Binary cross-entropy with logits per pixel, in its overflow-free form
 * max(l, 0) - l x + log(1 + e^-|l|); |l| is capped at 80, where the last
 * term is below float's resolution of the rest. */
PIXEL_CLONES static void bce_terms(float *restrict out, const float *restrict lg,
                                    const float *restrict x, int D)
{
    for (int j = 0; j < D; j++) { /* comparisons, not fminf: those are calls */
        const float l = lg[j], a = fabsf(l) < 80.0f ? fabsf(l) : 80.0f;
        out[j] = (l > 0.0f ? l : 0.0f) - l * x[j] + log1p_unit(exp_f(-a));
    }
}

/* d loss / d logit of the Bernoulli likelihood: sigmoid(l) - x, scaled;
 * sigmoid from e = e^-|l| as 1 / (1 + e) or e / (1 + e). */
PIXEL_CLONES static void bce_grad(float *restrict d, const float *restrict lg,
                                   const float *restrict x, size_t n, float scale)
{
    for (size_t k = 0; k < n; k++) {
        const float l = lg[k], e = exp_f(fabsf(l) < 80.0f ? -fabsf(l) : -80.0f);
        const float pred = (l >= 0.0f ? 1.0f : e) / (1.0f + e);
        d[k] = scale * (pred - x[k]);
    }
}

/* The sum of v[0, n) in double, in four running sums (j mod 4) added at the
 * end: a fixed order, four times shorter chains than one sum. */
static double sum_in_fours(const float *v, int n)
{
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    int j = 0;
    for (; j + 4 <= n; j += 4)
        for (int i = 0; i < 4; i++)
            a[i] += v[j + i];
    for (; j < n; j++)
        a[j % 4] += v[j];
    return (a[0] + a[1]) + (a[2] + a[3]);
}

void vae_forward(vae *m, const float *params, const float *x, const float *eps, int R,
                 double *row_loss)
{
    m->sum_recon = m->sum_kl = 0.0;
    vae_encode(m, params, x, R);
    const int L = m->latent;
    for (int r = 0; r < R; r++) {
        double kl = 0.0;
        for (int j = 0; j < L; j++) {
            size_t k = (size_t)r * L + j;
            float mu = m->mu[k], lv = m->logvar[k];
            if (m->autoencoder) {
                m->z[k] = mu;
            } else {
                m->z[k] = mu + exp_f(0.5f * lv) * eps[k];
                kl += -0.5 * (1.0 + lv - (double)mu * mu - exp_d(lv));
            }
        }
        row_loss[r] = m->kl_weight * kl;
        m->sum_kl += kl;
    }
    vae_decode(m, params, R);
    const int D = m->in;
    for (int r = 0; r < R; r++) {
        const float *lg = m->logits + (size_t)r * D, *xr = x + (size_t)r * D;
        double recon = 0.0;
        if (m->lik == LIK_BERNOULLI) {
            bce_terms(m->bce, lg, xr, D);
            recon = sum_in_fours(m->bce, D);
        } else {
            for (int j = 0; j < D; j++) {
                double e = (double)lg[j] - xr[j];
                recon += 0.5 * e * e + HALF_LOG_2PI;
            }
        }
        row_loss[r] += recon;
        m->sum_recon += recon;
    }
}

static void params_backward(const vae *m, float *grads, int w, int b, const float *dout,
                            const float *inp, int R, int C, int OC)
{
    linear_backward_params_by(fixed_of(m), grads + m->base.params.v[w].offset,
                              grads + m->base.params.v[b].offset, dout, inp, R, C, OC);
    if (m->call) { /* final: their sum over ranks may start */
        batch_grad_ready(m->call, w);
        batch_grad_ready(m->call, b);
    }
}

void vae_backward(vae *m, const float *params, float *grads, const float *x, const float *eps,
                  int R, float scale)
{
    memset(m->dacts, 0, m->acts_size * sizeof(float));
    const int D = m->in, L = m->latent;
    if (m->lik == LIK_BERNOULLI)
        bce_grad(m->dlogits, m->logits, x, (size_t)R * D, scale);
    else
        for (size_t k = 0; k < (size_t)R * D; k++)
            m->dlogits[k] = scale * (m->logits[k] - x[k]);
    /* decoder, last layer first */
    const float *top = m->nhidden ? m->dec_h[m->nhidden - 1] : m->z;
    int top_w = m->nhidden ? m->hidden[0] : L;
    params_backward(m, grads, m->out_w, m->out_b, m->dlogits, top, R, top_w, D);
    float *dtop = m->nhidden ? m->ddec_h[m->nhidden - 1] : m->dz;
    linear_backward_input_by(fixed_of(m), dtop, m->dlogits, P(m, params, m->out_w), R, top_w, D);
    for (int i = m->nhidden - 1; i >= 0; i--) {
        int out = m->hidden[m->nhidden - 1 - i];
        int in = i ? m->hidden[m->nhidden - i] : L;
        const float *inp = i ? m->dec_h[i - 1] : m->z;
        float *dinp = i ? m->ddec_h[i - 1] : m->dz;
        relu_mask(m->ddec_h[i], m->dec_h[i], (size_t)R * out);
        params_backward(m, grads, m->dec_w[i], m->dec_b[i], m->ddec_h[i], inp, R, in, out);
        linear_backward_input_by(fixed_of(m), dinp, m->ddec_h[i], P(m, params, m->dec_w[i]), R, in,
                                 out);
    }
    /* reparameterization and KL */
    const float kw = scale * m->kl_weight;
    for (size_t k = 0; k < (size_t)R * L; k++) {
        if (m->autoencoder) {
            m->dmu[k] = m->dz[k];
            m->dlogvar[k] = 0.0f;
            continue;
        }
        float sigma = exp_f(0.5f * m->logvar[k]);
        m->dmu[k] = m->dz[k] + kw * m->mu[k];
        m->dlogvar[k] = m->dz[k] * eps[k] * 0.5f * sigma + kw * 0.5f * (sigma * sigma - 1.0f);
    }
    const int H = m->nhidden ? m->hidden[m->nhidden - 1] : D;
    const float *h = m->nhidden ? m->enc_h[m->nhidden - 1] : x;
    params_backward(m, grads, m->mu_w, m->mu_b, m->dmu, h, R, H, L);
    params_backward(m, grads, m->lv_w, m->lv_b, m->dlogvar, h, R, H, L);
    if (m->nhidden == 0)
        return;
    float *dh = m->denc_h[m->nhidden - 1];
    linear_backward_input_by(fixed_of(m), dh, m->dmu, P(m, params, m->mu_w), R, H, L);
    linear_backward_input_by(fixed_of(m), dh, m->dlogvar, P(m, params, m->lv_w), R, H, L);
    for (int i = m->nhidden - 1; i >= 0; i--) {
        int out = m->hidden[i], in = i ? m->hidden[i - 1] : D;
        const float *inp = i ? m->enc_h[i - 1] : x;
        relu_mask(m->denc_h[i], m->enc_h[i], (size_t)R * out);
        params_backward(m, grads, m->enc_w[i], m->enc_b[i], m->denc_h[i], inp, R, in, out);
        if (i)
            linear_backward_input_by(fixed_of(m), m->denc_h[i - 1], m->denc_h[i],
                                     P(m, params, m->enc_w[i]), R, in, out);
    }
}

/* The model interface. */

static const opt_spec VAE_OPTS[] = {
    OPT(vae_opts, hidden, "hidden", OPT_STR, "512,256", CMD_TRAIN, 0, 0,
        "encoder widths (the decoder mirrors them)"),
    OPT(vae_opts, latent, "latent", OPT_INT, "32", CMD_TRAIN, 1, 65536, "latent size"),
    OPT(vae_opts, likelihood, "likelihood", OPT_STR, "bernoulli", CMD_TRAIN, 0, 0,
        "bernoulli or gaussian"),
    OPT(vae_opts, kl_weight, "kl-weight", OPT_DOUBLE, "1", CMD_TRAIN, 0, 1e6,
        "weight of the KL term"),
    OPT(vae_opts, autoencoder, "autoencoder", OPT_BOOL, "0", CMD_TRAIN, 0, 1,
        "plain deterministic autoencoder (eps = 0, no KL)"),
};

static int parse_hidden(vae_opts *o, int loud)
{
    o->nhidden = 0;
    const char *s = o->hidden;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 65536 || o->nhidden == VAE_MAX_HIDDEN ||
            (*end && *end != ',')) {
            if (loud)
                fprintf(stderr,
                        "trainer: --hidden: \"%s\" is not a list of 1 to %d widths like 512,256\n",
                        o->hidden, VAE_MAX_HIDDEN);
            return -1;
        }
        o->hidden_sizes[o->nhidden++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (o->nhidden == 0) {
        if (loud)
            fprintf(stderr, "trainer: --hidden: empty list\n");
        return -1;
    }
    return 0;
}

static int vae_check(config *c, int loud)
{
    vae_opts *o = MODEL_OPTS(c, vae_opts);
    if (parse_hidden(o, loud) != 0)
        return -1;
    if (strcmp(o->likelihood, "bernoulli") && strcmp(o->likelihood, "gaussian")) {
        if (loud)
            fprintf(stderr, "trainer: --likelihood: \"%s\", expected bernoulli or gaussian\n",
                    o->likelihood);
        return -1;
    }
    return 0;
}

static model *vae_create(const config *c, const data_shape *shape, int max_rows)
{
    const vae_opts *o = MODEL_OPTS(c, const vae_opts);
    vae *m = malloc(sizeof *m);
    if (!m) {
        fprintf(stderr, "trainer: out of memory for the VAE\n");
        return NULL;
    }
    enum likelihood lik = strcmp(o->likelihood, "gaussian") ? LIK_BERNOULLI : LIK_GAUSSIAN;
    if (vae_build(m, (int)shape->in, o->hidden_sizes, o->nhidden, o->latent, lik,
                  (float)o->kl_weight, o->autoencoder, max_rows) != 0) {
        free(m);
        return NULL;
    }
    return &m->base;
}

static void vae_destroy(model *base)
{
    vae_free((vae *)base);
    free(base);
}

static void vae_init_model(const model *base, float *params, uint32_t seed)
{
    vae_init((const vae *)base, params, seed);
}

/* Row j's eps from its own key: the same draw whoever computes the row. */
static void draw_eps(vae *m, const batch *b)
{
    const int L = m->latent;
    for (int j = 0; j < b->rows && !m->autoencoder; j++)
        rng_normals(b->seed, b->key[j].stream, b->purpose, b->key[j].a, b->key[j].b,
                    m->eps + (size_t)j * L, (size_t)L);
}

static void vae_forward_batch(model *base, const float *params, const batch *b, double *row_loss)
{
    vae *m = (vae *)base;
    m->use_fixed = !b->fast;
    m->fixed.nseg = b->nseg;
    draw_eps(m, b);
    vae_forward(m, params, b->x, m->eps, b->rows, row_loss);
}

static void vae_backward_batch(model *base, const float *params, float *grad, const batch *b,
                               float scale)
{
    vae *m = (vae *)base;
    m->call = b;
    vae_backward(m, params, grad, b->x, m->eps, b->rows, scale);
    m->call = NULL;
}

/* The decoder's means from m->z: Bernoulli probabilities, or Gaussian
 * means clipped to [0, 1]. */
static void decoded_images(vae *m, const float *params, int R, float *out)
{
    vae_decode(m, params, R);
    const size_t n = (size_t)R * m->in;
    for (size_t i = 0; i < n; i++) {
        float l = m->logits[i];
        out[i] = m->lik == LIK_BERNOULLI ? 1.0f / (1.0f + exp_f(-l)) : fminf(fmaxf(l, 0.0f), 1.0f);
    }
}

/* Images from z ~ N(0, I), the rows' own draws. */
static void vae_images(model *base, const float *params, const batch *b, float *out)
{
    vae *m = (vae *)base;
    const int L = m->latent;
    m->use_fixed = 1; /* one segment: the same bits on every CPU */
    m->fixed.nseg = 1;
    for (int j = 0; j < b->rows; j++)
        rng_normals(b->seed, b->key[j].stream, b->purpose, b->key[j].a, b->key[j].b,
                    m->z + (size_t)j * L, (size_t)L);
    decoded_images(m, params, b->rows, out);
}

/* Reconstructions: z = mu, the encoder's mean, decoded. */
static void vae_reconstruct(model *base, const float *params, const batch *b, float *out)
{
    vae *m = (vae *)base;
    m->use_fixed = 1; /* one segment: the same bits on every CPU */
    m->fixed.nseg = 1;
    vae_encode(m, params, b->x, b->rows);
    memcpy(m->z, m->mu, (size_t)b->rows * m->latent * sizeof(float));
    decoded_images(m, params, b->rows, out);
}

static const char *const VAE_FIGURES[2] = {"recon", "kl"};

static void vae_figures(const model *base, double *out)
{
    const vae *m = (const vae *)base;
    out[0] += m->sum_recon;
    out[1] += m->sum_kl;
}

/* 2 FLOPs per weight and image forward, 4 backward: the matrix products. */
static double vae_flops(const model *base) { return 6.0 * (double)base->params.total; }

const model_type vae_model = {
    .name = "vae",
    .summary = "variational autoencoder (MLP; or a plain autoencoder) on images",
    .task = &image_task,
    .loss_name = "negative ELBO",
    .opts = OPT_GROUP(VAE_OPTS, vae_opts),
    .check = vae_check,
    .create = vae_create,
    .destroy = vae_destroy,
    .init = vae_init_model,
    .forward = vae_forward_batch,
    .backward = vae_backward_batch,
    .tree_lanes = 1,
    .flops_per_unit = vae_flops,
    .nfigures = 2,
    .figure_names = VAE_FIGURES,
    .figures = vae_figures,
    .generate_images = vae_images,
    .reconstruct_images = vae_reconstruct,
};
