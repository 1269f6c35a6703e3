#include "glow.h"

#include "trainer/nn/conv2d.h"
#include "trainer/nn/exactmath.h"
#include "trainer/nn/flow.h"
#include "trainer/philox.h"
#include "trainer/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOW_MAX_LEVELS 4
#define GLOW_MAX_K 32
#define HALF_LOG_2PI 0.91893853320467274178
/* the logit's margin: y = logit(ALPHA + (1 - 2 ALPHA) v) stays finite for
 * v in [0, 1], as in RealNVP */
#define ALPHA 0.05f

typedef struct {
    int an_bias, an_logs, ic_lower, ic_upper, ic_logs, ic_fixed;
    int w1, b1, w2, b2, w3, b3;
} step_tensors;

typedef struct {
    int H, W, C; /* after the level's squeeze */
    float *in[GLOW_MAX_K + 1]; /* step inputs; in[K] is the level's output */
    float *a1[GLOW_MAX_K], *a2[GLOW_MAX_K]; /* after actnorm, after the 1 x 1 conv */
    coupling_acts c[GLOW_MAX_K];
    float *w[GLOW_MAX_K]; /* the 1 x 1 convolutions' weights of this call */
    step_tensors t[GLOW_MAX_K];
    /* split levels: the kept half [R, H W C/2] and the prior's mean and
     * log scale [R, H W C] (C/2 each, channels last) */
    float *kept, *prior;
    int prior_w, prior_b;
    int z_off; /* where this level's z starts in a row of z */
} level;

typedef struct {
    model base;
    int H, W, levels, K, width, max_rows;
    float temperature;
    level lv[GLOW_MAX_LEVELS];
    int top_mean, top_logs;
    float *y0;  /* [R, H W]: the preprocessed images */
    float *d[5]; /* [R, H W] gradients */
    double *logdet, *nll_prior, *step_ld; /* [R] */
    flow_work wk;
    linear_fixed fixed;
    int use_fixed;
    float *arena;
    size_t arena_used, arena_size;
} glow;

static const float *P(const glow *g, const float *params, int idx)
{
    return params + g->base.params.v[idx].offset;
}

static float *G(const glow *g, float *grad, int idx)
{
    return grad + g->base.params.v[idx].offset;
}

static float *carve(glow *g, size_t n)
{
    float *p = g->arena + g->arena_used;
    g->arena_used += (n + 15) & ~(size_t)15;
    return p;
}

/* Tensors of one flow step of a level with C channels. */
static void add_step(param_table *t, step_tensors *s, int l, int k, int C, int width)
{
    char name[48];
#define ADD(field, suffix, ndim, s0, s1)                                                          \
    do {                                                                                          \
        snprintf(name, sizeof name, "flow%d.step%d.%s", l + 1, k + 1, suffix);                    \
        params_add(t, name, ndim, (size_t)(s0), (size_t)(s1), 0);                                 \
        s->field = t->n - 1;                                                                      \
    } while (0)
    ADD(an_bias, "actnorm.bias", 1, C, 0);
    ADD(an_logs, "actnorm.logs", 1, C, 0);
    ADD(ic_lower, "invconv.lower", 2, C, C);
    ADD(ic_upper, "invconv.upper", 2, C, C);
    ADD(ic_logs, "invconv.logs", 1, C, 0);
    ADD(ic_fixed, "invconv.fixed", 2, 2, C);
    ADD(w1, "coupling.conv1.weight", 2, width, 9 * (C / 2));
    ADD(b1, "coupling.conv1.bias", 1, width, 0);
    ADD(w2, "coupling.conv2.weight", 2, width, width);
    ADD(b2, "coupling.conv2.bias", 1, width, 0);
    ADD(w3, "coupling.conv3.weight", 2, C, 9 * width);
    ADD(b3, "coupling.conv3.bias", 1, C, 0);
#undef ADD
}

static void glow_free(glow *g)
{
    free(g->arena);
    free(g->logdet);
    free(g->fixed.scratch);
    g->arena = g->fixed.scratch = NULL;
    g->logdet = NULL;
}

/* Activations and scratch for R images. */
static size_t arena_floats(const glow *g, int R, int carve_them)
{
    glow *m = (glow *)g;
    size_t total = 0;
#define TAKE(ptr, n)                                                                              \
    do {                                                                                          \
        const size_t n_ = (size_t)(n);                                                            \
        if (carve_them)                                                                           \
            ptr = carve(m, n_);                                                                   \
        total += (n_ + 15) & ~(size_t)15;                                                         \
    } while (0)
    const size_t HW = (size_t)g->H * g->W;
    TAKE(m->y0, (size_t)R * HW);
    for (int i = 0; i < 5; i++)
        TAKE(m->d[i], (size_t)R * HW);
    for (int l = 0; l < g->levels; l++) {
        level *v = &m->lv[l];
        const size_t N = (size_t)R * v->H * v->W, n = N * v->C;
        for (int k = 0; k <= g->K; k++)
            TAKE(v->in[k], n);
        for (int k = 0; k < g->K; k++) {
            TAKE(v->a1[k], n);
            TAKE(v->a2[k], n);
            TAKE(v->c[k].xa, n / 2);
            TAKE(v->c[k].h1, N * g->width);
            TAKE(v->c[k].h2, N * g->width);
            TAKE(v->c[k].o, n);
            TAKE(v->w[k], (size_t)v->C * v->C);
        }
        if (l < g->levels - 1) {
            TAKE(v->kept, n / 2);
            TAKE(v->prior, n);
        }
    }
    /* the convolutions' windows, an image at a time: level 0 has the most
     * pixels, the coupling's last convolution the widest input */
    const size_t HW0 = (size_t)g->lv[0].H * g->lv[0].W, N0 = (size_t)R * HW0;
    const size_t widest = (size_t)(g->width > g->lv[0].C ? g->width : g->lv[0].C);
    TAKE(m->wk.cols, HW0 * 9 * widest);
    TAKE(m->wk.dcols, HW0 * 9 * widest);
    TAKE(m->wk.tmp, N0 * 2 * g->width + 4 * (size_t)R * HW);
#undef TAKE
    return total;
}

/* The fixed-order products' scratch: linear.h's forward needs rows * (in +
 * out) floats, conv2d.h says its own; the largest of all (nseg is at most
 * the rows). */
static size_t fixed_scratch_floats(const glow *g)
{
    size_t most = 0;
    for (int l = 0; l < g->levels; l++) {
        const level *v = &g->lv[l];
        const size_t N = (size_t)g->max_rows * v->H * v->W;
        const int C = v->C, h = C / 2, w = g->width, R = g->max_rows;
        const size_t need[5] = {N * 2 * w, N * 2 * (size_t)C,
                                conv2d_scratch_floats(R, v->H, v->W, h, w, 3),
                                conv2d_scratch_floats(R, v->H, v->W, w, C, 3),
                                conv2d_scratch_floats(R, v->H, v->W, h, C, 3)};
        for (int i = 0; i < 5; i++)
            most = need[i] > most ? need[i] : most;
    }
    return most;
}

static int glow_build(glow *g, int H, int W, int levels, int K, int width, float temperature,
                      int max_rows)
{
    memset(g, 0, sizeof *g);
    g->base.type = &glow_model;
    g->H = H;
    g->W = W;
    g->levels = levels;
    g->K = K;
    g->width = width;
    g->temperature = temperature;
    g->max_rows = max_rows;
    param_table *t = &g->base.params;
    int C = 1, h = H, w = W, z_off = 0;
    for (int l = 0; l < levels; l++) {
        level *v = &g->lv[l];
        C *= 4;
        h /= 2;
        w /= 2;
        v->H = h;
        v->W = w;
        v->C = C;
        for (int k = 0; k < K; k++)
            add_step(t, &v->t[k], l, k, C, width);
        if (l < levels - 1) {
            char name[48];
            snprintf(name, sizeof name, "flow%d.prior.weight", l + 1);
            params_add(t, name, 2, (size_t)C, 9 * (size_t)(C / 2), 0);
            v->prior_w = t->n - 1;
            snprintf(name, sizeof name, "flow%d.prior.bias", l + 1);
            params_add(t, name, 1, (size_t)C, 0, 0);
            v->prior_b = t->n - 1;
            C /= 2;
        }
    }
    const size_t top = (size_t)h * w * C;
    params_add(t, "top.mean", 1, top, 0, 0);
    g->top_mean = t->n - 1;
    params_add(t, "top.logs", 1, top, 0, 0);
    g->top_logs = t->n - 1;
    /* z's layout: the top first, then the splits from the last back */
    g->lv[levels - 1].z_off = 0;
    z_off = (int)top;
    for (int l = levels - 2; l >= 0; l--) {
        g->lv[l].z_off = z_off;
        z_off += g->lv[l].H * g->lv[l].W * g->lv[l].C / 2;
    }

    g->arena_size = arena_floats(g, max_rows, 0);
    g->arena = calloc(g->arena_size, sizeof(float));
    g->logdet = calloc(3 * (size_t)max_rows, sizeof(double));
    g->fixed.scratch = calloc(fixed_scratch_floats(g), sizeof(float));
    if (!g->arena || !g->logdet || !g->fixed.scratch) {
        fprintf(stderr, "trainer: out of memory for Glow activations (%zu floats)\n",
                g->arena_size);
        glow_free(g);
        return -1;
    }
    arena_floats(g, max_rows, 1);
    g->nll_prior = g->logdet + max_rows;
    g->step_ld = g->nll_prior + max_rows;
    return 0;
}

/* Initial parameters: the coupling's first two convolutions as PyTorch's
 * default (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias), the
 * last one, the priors and actnorm zero (actnorm is set from data before
 * the first step), the 1 x 1 convolutions random rotations. Tensor i draws
 * from (seed, RNG_INIT, i). */
static void glow_init(const model *base, float *params, uint32_t seed)
{
    const glow *g = (const glow *)base;
    const param_table *t = &base->params;
    memset(params, 0, t->total * sizeof *params);
    for (int l = 0; l < g->levels; l++)
        for (int k = 0; k < g->K; k++) {
            const step_tensors *s = &g->lv[l].t[k];
            const int wb[2][2] = {{s->w1, s->b1}, {s->w2, s->b2}};
            for (int q = 0; q < 2; q++) {
                const float bound = 1.0f / sqrtf((float)t->v[wb[q][0]].shape[1]);
                for (int e = 0; e < 2; e++) {
                    const param_view *v = &t->v[wb[q][e]];
                    float *p = params + v->offset;
                    rng_uniforms(seed, RNG_STREAM_GLOBAL, RNG_INIT, (uint32_t)wb[q][e], 0, p,
                                 v->numel);
                    for (size_t j = 0; j < v->numel; j++)
                        p[j] = (2.0f * p[j] - 1.0f) * bound;
                }
            }
            float *lower = params + t->v[s->ic_lower].offset;
            invconv_init(lower, params + t->v[s->ic_upper].offset,
                         params + t->v[s->ic_logs].offset, params + t->v[s->ic_fixed].offset,
                         g->lv[l].C, seed, RNG_STREAM_GLOBAL, (uint32_t)s->ic_lower);
        }
}

static coupling_params coupling_of(const glow *g, const float *params, const step_tensors *s)
{
    return (coupling_params){P(g, params, s->w1), P(g, params, s->b1), P(g, params, s->w2),
                             P(g, params, s->b2), P(g, params, s->w3), P(g, params, s->b3)};
}

static const linear_fixed *fixed_of(const glow *g) { return g->use_fixed ? &g->fixed : NULL; }

/* Every call but fast training's (batch.h) runs every product in the fixed
 * order over nseg lanes; fast training uses OpenBLAS. */
static void set_mode(glow *g, int fixed, int nseg)
{
    g->use_fixed = fixed;
    g->fixed.nseg = nseg > 0 ? nseg : 1;
    g->wk.f = fixed_of(g);
}

/* -log N(z; mean, exp(logs)) summed over n values, in double. */
static double gauss_nll(const float *z, const float *mean, const float *logs, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        const float e = (z[i] - mean[i]) * exp_f(-logs[i]);
        s += 0.5 * (double)e * e + logs[i] + HALF_LOG_2PI;
    }
    return s;
}

/* The flow from g->y0 ([R, H W]) to the levels' outputs: g->logdet gets
 * each image's log|det| (added to what it holds), g->nll_prior its
 * -log p(z). With init (the parameters, writable), each actnorm is first
 * set from the statistics of its input. */
static void flow_forward(glow *g, const float *params, int R, float *init)
{
    const linear_fixed *f = fixed_of(g);
    squeeze(g->lv[0].in[0], g->y0, R, g->H, g->W, 1);
    for (int r = 0; r < R; r++)
        g->nll_prior[r] = 0.0;
    for (int l = 0; l < g->levels; l++) {
        level *v = &g->lv[l];
        const int C = v->C, HW = v->H * v->W, N = R * HW;
        for (int k = 0; k < g->K; k++) {
            const step_tensors *s = &v->t[k];
            if (init)
                actnorm_init(init + g->base.params.v[s->an_bias].offset,
                             init + g->base.params.v[s->an_logs].offset, v->in[k], N, C);
            const float *an_logs = P(g, params, s->an_logs), *ic_logs = P(g, params, s->ic_logs);
            actnorm_forward(v->a1[k], v->in[k], P(g, params, s->an_bias), an_logs, N, C);
            invconv_weight(v->w[k], P(g, params, s->ic_lower), P(g, params, s->ic_upper), ic_logs,
                           P(g, params, s->ic_fixed), C);
            linear_forward_by(f, v->a2[k], v->a1[k], v->w[k], NULL, N, C, C);
            double per_image = 0.0;
            for (int c = 0; c < C; c++)
                per_image += (double)an_logs[c] + ic_logs[c];
            per_image *= HW;
            const coupling_params cp = coupling_of(g, params, s);
            coupling_forward(&g->wk, &v->c[k], v->in[k + 1], g->step_ld, v->a2[k], &cp, R, v->H,
                             v->W, C, g->width);
            for (int r = 0; r < R; r++)
                g->logdet[r] += per_image + g->step_ld[r];
        }
        const float *out = v->in[g->K];
        if (l == g->levels - 1) {
            const float *mean = P(g, params, g->top_mean), *logs = P(g, params, g->top_logs);
            const int n = HW * C;
            for (int r = 0; r < R; r++)
                g->nll_prior[r] += gauss_nll(out + (size_t)r * n, mean, logs, n);
            break;
        }
        const int h = C / 2;
        for (size_t q = 0; q < (size_t)N; q++)
            memcpy(v->kept + q * h, out + q * C, (size_t)h * sizeof *out);
        conv2d_forward(f, v->prior, g->wk.cols, v->kept, P(g, params, v->prior_w),
                       P(g, params, v->prior_b), R, v->H, v->W, h, C, 3);
        for (int r = 0; r < R; r++)
            for (int q = r * HW; q < (r + 1) * HW; q++)
                g->nll_prior[r] += gauss_nll(out + (size_t)q * C + h, v->prior + (size_t)q * C,
                                             v->prior + (size_t)q * C + h, h);
        squeeze(g->lv[l + 1].in[0], v->kept, R, v->H, v->W, h);
    }
}

/* Dequantization and the logit, into g->y0; g->logdet starts with the
 * logit's log-determinant. A pixel of the batch is k / 255. */
static void preprocess(glow *g, const batch *b)
{
    const int D = g->H * g->W;
    float *u = g->d[0];
    for (int r = 0; r < b->rows; r++) {
        const rng_key *key = &b->key[r];
        rng_uniforms(b->seed, key->stream, b->purpose, key->a, key->b, u, (size_t)D);
        const float *x = b->x + (size_t)r * D;
        float *y = g->y0 + (size_t)r * D;
        double ld = 0.0;
        for (int i = 0; i < D; i++) {
            const float k = (float)lrintf(x[i] * 255.0f);
            const float s = ALPHA + (1.0f - 2.0f * ALPHA) * ((k + u[i]) * (1.0f / 256.0f));
            y[i] = log_f(s) - log_f(1.0f - s);
            ld += log_d(1.0 - 2.0 * ALPHA) - log_d(s) - log_d(1.0 - s);
        }
        g->logdet[r] = ld;
    }
}

static void forward_rows(glow *g, const float *params, const batch *b, double *row_loss,
                         float *init)
{
    preprocess(g, b);
    flow_forward(g, params, b->rows, init);
    const double bins = (double)g->H * g->W * log_d(256.0);
    for (int r = 0; r < b->rows && row_loss; r++)
        row_loss[r] = g->nll_prior[r] - g->logdet[r] + bins;
}

static void glow_forward_batch(model *base, const float *params, const batch *b, double *row_loss)
{
    glow *g = (glow *)base;
    set_mode(g, !b->fast, b->nseg);
    forward_rows(g, params, b, row_loss, NULL);
}

/* The gradient of a Gaussian's -log N(z; mean, e^logs), scaled, at n
 * values: into dz, and the mean's and the log scale's into dm and dls. */
static void gauss_backward(float *dz, float *dm, float *dls, const float *z, const float *mean,
                           const float *logs, int n, float scale)
{
    for (int i = 0; i < n; i++) {
        const float is = exp_f(-logs[i]), e = (z[i] - mean[i]) * is;
        dz[i] = scale * e * is;
        dm[i] = -dz[i];
        dls[i] = scale * (1.0f - e * e);
    }
}

static void glow_backward_batch(model *base, const float *params, float *grad, const batch *b,
                                float scale)
{
    glow *g = (glow *)base;
    const linear_fixed *f = fixed_of(g);
    const int R = b->rows;
    const float ld = -scale;
    float *dout = g->d[0], *din = g->d[1], *da2 = g->d[2], *da1 = g->d[3], *dprior = g->d[4];
    for (int l = g->levels - 1; l >= 0; l--) {
        level *v = &g->lv[l];
        const int C = v->C, HW = v->H * v->W, N = R * HW, h = C / 2;
        const float *out = v->in[g->K];
        if (l == g->levels - 1) {
            const int n = HW * C;
            float *dm = da1, *dls = da2;
            const float *mean = P(g, params, g->top_mean), *logs = P(g, params, g->top_logs);
            for (int r = 0; r < R; r++)
                gauss_backward(dout + (size_t)r * n, dm + (size_t)r * n, dls + (size_t)r * n,
                               out + (size_t)r * n, mean, logs, n, scale);
            sum_rows_by(f, G(g, grad, g->top_mean), dm, R, n);
            sum_rows_by(f, G(g, grad, g->top_logs), dls, R, n);
        } else {
            /* din holds the gradient of the next level's input: the kept half */
            float *dkept = da1;
            unsqueeze(dkept, din, R, v->H, v->W, h);
            for (size_t q = 0; q < (size_t)N; q++)
                gauss_backward(dout + q * C + h, dprior + q * C, dprior + q * C + h,
                               out + q * C + h, v->prior + q * C, v->prior + q * C + h, h, scale);
            conv2d_backward(f, dkept, G(g, grad, v->prior_w), G(g, grad, v->prior_b), g->wk.cols,
                            g->wk.dcols, dprior, v->kept, P(g, params, v->prior_w), R, v->H, v->W,
                            h, C, 3);
            for (size_t q = 0; q < (size_t)N; q++)
                memcpy(dout + q * C, dkept + q * h, (size_t)h * sizeof *dout);
        }
        const size_t n = (size_t)N * C;
        for (int k = g->K - 1; k >= 0; k--) {
            const step_tensors *s = &v->t[k];
            const coupling_params cp = coupling_of(g, params, s);
            const coupling_grads cg = {G(g, grad, s->w1), G(g, grad, s->b1), G(g, grad, s->w2),
                                       G(g, grad, s->b2), G(g, grad, s->w3), G(g, grad, s->b3)};
            memset(da2, 0, n * sizeof *da2);
            coupling_backward(&g->wk, &v->c[k], da2, &cg, dout, v->a2[k], &cp, R, v->H, v->W, C,
                              g->width, ld);
            memset(da1, 0, n * sizeof *da1);
            invconv_backward(f, da1, G(g, grad, s->ic_lower), G(g, grad, s->ic_upper),
                             G(g, grad, s->ic_logs), G(g, grad, s->ic_fixed), g->wk.tmp, da2,
                             v->a1[k], v->w[k], P(g, params, s->ic_lower),
                             P(g, params, s->ic_upper), P(g, params, s->ic_logs),
                             P(g, params, s->ic_fixed), N, C, ld);
            memset(din, 0, n * sizeof *din);
            actnorm_backward(f, din, G(g, grad, s->an_bias), G(g, grad, s->an_logs), g->wk.tmp,
                             da1, v->a1[k], P(g, params, s->an_logs), N, C, ld);
            float *t = dout;
            dout = din;
            din = t;
        }
        /* dout: the gradient of this level's input; the level below reads it as din */
        float *t = dout;
        dout = din;
        din = t;
    }
}

/* From the levels' outputs back to g->y0: the inverse of flow_forward.
 * z (a row of H W values per image, glow.h's layout) gives the split and
 * top values; with sample set, z holds standard normal draws instead, and
 * each z is mean + temperature exp(logs) draw under its prior. */
static void flow_inverse(glow *g, const float *params, const float *z, int R, int sample)
{
    const int D = g->H * g->W;
    const float T = g->temperature;
    for (int l = g->levels - 1; l >= 0; l--) {
        level *v = &g->lv[l];
        const int C = v->C, HW = v->H * v->W, N = R * HW;
        float *out = v->in[g->K];
        if (l == g->levels - 1) {
            const float *mean = P(g, params, g->top_mean), *logs = P(g, params, g->top_logs);
            const int n = HW * C;
            for (int r = 0; r < R; r++)
                for (int i = 0; i < n; i++) {
                    const float zi = z[(size_t)r * D + v->z_off + i];
                    out[(size_t)r * n + i] = sample ? mean[i] + T * exp_f(logs[i]) * zi : zi;
                }
        } else {
            const int h = C / 2;
            unsqueeze(v->kept, g->lv[l + 1].in[0], R, v->H, v->W, h);
            conv2d_forward(NULL, v->prior, g->wk.cols, v->kept, P(g, params, v->prior_w),
                           P(g, params, v->prior_b), R, v->H, v->W, h, C, 3);
            for (int r = 0; r < R; r++)
                for (int q = 0; q < HW; q++) {
                    const size_t p = (size_t)r * HW + q;
                    memcpy(out + p * C, v->kept + p * h, (size_t)h * sizeof *out);
                    for (int j = 0; j < h; j++) {
                        const float zi = z[(size_t)r * D + v->z_off + (size_t)q * h + j];
                        const float m = v->prior[p * C + j], ls = v->prior[p * C + h + j];
                        out[p * C + h + j] = sample ? m + T * exp_f(ls) * zi : zi;
                    }
                }
        }
        for (int k = g->K - 1; k >= 0; k--) {
            const step_tensors *s = &v->t[k];
            const coupling_params cp = coupling_of(g, params, s);
            coupling_inverse(&g->wk, &v->c[k], v->a2[k], v->in[k + 1], &cp, R, v->H, v->W, C,
                             g->width);
            invconv_inverse_weight(v->w[k], P(g, params, s->ic_lower), P(g, params, s->ic_upper),
                                   P(g, params, s->ic_logs), P(g, params, s->ic_fixed), C);
            linear_forward_by(fixed_of(g), v->a1[k], v->a2[k], v->w[k], NULL, N, C, C);
            actnorm_inverse(v->in[k], v->a1[k], P(g, params, s->an_bias),
                            P(g, params, s->an_logs), N, C);
        }
    }
    unsqueeze(g->y0, g->lv[0].in[0], R, g->H, g->W, 1);
}

/* The levels' outputs as rows of z (glow.h's layout). */
static void gather_z(const glow *g, int R, float *z)
{
    const int D = g->H * g->W;
    for (int l = 0; l < g->levels; l++) {
        const level *v = &g->lv[l];
        const int C = v->C, HW = v->H * v->W;
        const float *out = v->in[g->K];
        for (int r = 0; r < R; r++) {
            float *zr = z + (size_t)r * D + v->z_off;
            if (l == g->levels - 1) {
                memcpy(zr, out + (size_t)r * HW * C, (size_t)HW * C * sizeof *zr);
                continue;
            }
            for (int q = 0; q < HW; q++)
                memcpy(zr + (size_t)q * (C / 2), out + ((size_t)r * HW + q) * C + C / 2,
                       (size_t)(C / 2) * sizeof *zr);
        }
    }
}

void glow_to_z(model *m, const float *params, const float *y, int R, float *z, double *logdet)
{
    glow *g = (glow *)m;
    set_mode(g, 1, 1);
    memcpy(g->y0, y, (size_t)R * g->H * g->W * sizeof *y);
    for (int r = 0; r < R; r++)
        g->logdet[r] = 0.0;
    flow_forward(g, params, R, NULL);
    gather_z(g, R, z);
    memcpy(logdet, g->logdet, (size_t)R * sizeof *logdet);
}

void glow_from_z(model *m, const float *params, const float *z, int R, float *y)
{
    glow *g = (glow *)m;
    set_mode(g, 1, 1);
    flow_inverse(g, params, z, R, 0);
    memcpy(y, g->y0, (size_t)R * g->H * g->W * sizeof *y);
}

/* R preprocessed images in g->y0 into z ([R, H W], scratch) and back:
 * g->y0 ends as the flow's inverse of z. */
static void to_z_and_back(glow *g, const float *params, int R, float *z)
{
    flow_forward(g, params, R, NULL);
    gather_z(g, R, z);
    flow_inverse(g, params, z, R, 0);
}

/* Each image's largest error after the trip to z and back, relative to
 * its largest preprocessed value. */
static void glow_roundtrip(model *base, const float *params, const batch *b, double *row_err)
{
    glow *g = (glow *)base;
    const int D = g->H * g->W, R = b->rows;
    float *y = xcalloc((size_t)R * D, sizeof *y, "images");
    float *z = xcalloc((size_t)R * D, sizeof *z, "images");
    set_mode(g, 1, 1);
    preprocess(g, b);
    memcpy(y, g->y0, (size_t)R * D * sizeof *y);
    to_z_and_back(g, params, R, z);
    for (int r = 0; r < R; r++) {
        double err = 0.0, big = 0.0;
        for (int i = 0; i < D; i++) {
            const size_t k = (size_t)r * D + i;
            err = fmax(err, fabs((double)g->y0[k] - y[k]));
            big = fmax(big, fabs((double)y[k]));
        }
        row_err[r] = err / big;
    }
    free(y);
    free(z);
}

/* Pixels from preprocessed values: the inverse of the logit, then the bin
 * of the dequantized value (k = floor(256 v)) as k / 255. */
static void to_pixels(const glow *g, int R, float *out)
{
    for (size_t i = 0; i < (size_t)R * g->H * g->W; i++) {
        const float s = 1.0f / (1.0f + exp_f(-g->y0[i]));
        const float v = (s - ALPHA) / (1.0f - 2.0f * ALPHA);
        const float k = floorf(256.0f * v);
        out[i] = fminf(fmaxf(k, 0.0f), 255.0f) * (1.0f / 255.0f);
    }
}

/* Images from the rows' own standard normal draws at the temperature. */
static void glow_images(model *base, const float *params, const batch *b, float *out)
{
    glow *g = (glow *)base;
    const int D = g->H * g->W;
    set_mode(g, 1, 1);
    float *eps = xcalloc((size_t)b->rows * D, sizeof *eps, "draws");
    for (int r = 0; r < b->rows; r++)
        rng_normals(b->seed, b->key[r].stream, b->purpose, b->key[r].a, b->key[r].b,
                    eps + (size_t)r * D, (size_t)D);
    flow_inverse(g, params, eps, b->rows, 1);
    to_pixels(g, b->rows, out);
    free(eps);
}

/* Test images through the flow and back (the picture of what the flow
 * keeps, which is everything). */
static void glow_reconstruct(model *base, const float *params, const batch *b, float *out)
{
    glow *g = (glow *)base;
    float *z = xcalloc((size_t)b->rows * g->H * g->W, sizeof *z, "images");
    set_mode(g, 1, 1);
    preprocess(g, b);
    to_z_and_back(g, params, b->rows, z);
    to_pixels(g, b->rows, out);
    free(z);
}

static void glow_init_from_data(model *base, float *params, const batch *b)
{
    glow *g = (glow *)base;
    set_mode(g, 1, 1);
    forward_rows(g, params, b, NULL, params);
}

/* Multiply-adds per image and step: the coupling's three convolutions and
 * the 1 x 1 convolution at each level's pixels; the priors' convolutions
 * are left out (under 1%). 2 FLOPs each forward, 4 backward. */
static double glow_flops(const model *base)
{
    const glow *g = (const glow *)base;
    double macs = 0.0;
    for (int l = 0; l < g->levels; l++) {
        const level *v = &g->lv[l];
        const double HW = (double)v->H * v->W, C = v->C, wd = g->width;
        macs += g->K * HW * (9.0 * (C / 2) * wd + wd * wd + 9.0 * wd * C + C * C);
    }
    return 6.0 * macs;
}

static double glow_dims(const model *base)
{
    const glow *g = (const glow *)base;
    return (double)g->H * g->W;
}

/* The model interface. */

static const opt_spec GLOW_OPTS[] = {
    OPT(glow_opts, levels, "levels", OPT_INT, "2", CMD_TRAIN, 1, GLOW_MAX_LEVELS,
        "levels (squeeze, flow steps, split)"),
    OPT(glow_opts, flow_steps, "flow-steps", OPT_INT, "8", CMD_TRAIN, 1, GLOW_MAX_K,
        "flow steps per level (K)"),
    OPT(glow_opts, width, "width", OPT_INT, "64", CMD_TRAIN, 2, 4096,
        "channels of the coupling networks' hidden layers"),
    OPT(glow_opts, temperature, "temperature", OPT_DOUBLE, "0.7", CMD_SAMPLE | CMD_TRAIN, 0, 10,
        "sample: the priors' scale is multiplied by this"),
};

static const char *const GLOW_DEFAULTS[][2] = {
    {"lr", "1e-3"}, {"warmup", "200"}, {"grad-clip", "50"}, {"batch", "64"}, {"lanes", "8"},
};

static int glow_check_shape(const config *c, const data_shape *shape, int loud)
{
    const glow_opts *o = MODEL_OPTS(c, const glow_opts);
    const int side = 1 << o->levels;
    if (shape->h > 0 && shape->w > 0 && shape->h % side == 0 && shape->w % side == 0 &&
        (size_t)shape->h * shape->w == shape->in)
        return 0;
    if (loud)
        fprintf(stderr,
                "trainer: glow: --levels %d needs one-channel images whose sides divide by %d; "
                "these are %d x %d\n",
                o->levels, side, shape->h, shape->w);
    return -1;
}

static model *glow_create(const config *c, const data_shape *shape, int max_rows)
{
    const glow_opts *o = MODEL_OPTS(c, const glow_opts);
    if (glow_check_shape(c, shape, 0) != 0)
        return NULL;
    glow *g = malloc(sizeof *g);
    if (!g || glow_build(g, shape->h, shape->w, o->levels, o->flow_steps, o->width,
                         (float)o->temperature, max_rows) != 0) {
        free(g);
        return NULL;
    }
    return &g->base;
}

model *glow_new(int H, int W, int levels, int K, int width, int max_rows)
{
    glow *g = malloc(sizeof *g);
    if (!g || glow_build(g, H, W, levels, K, width, 1.0f, max_rows) != 0) {
        free(g);
        return NULL;
    }
    return &g->base;
}

static void glow_destroy(model *base)
{
    glow_free((glow *)base);
    free(base);
}

const model_type glow_model = {
    .name = "glow",
    .summary = "Glow normalizing flow (actnorm, 1x1 convolutions, affine couplings) on images",
    .task = &image_task,
    .loss_name = "negative log-likelihood",
    .opts = OPT_GROUP(GLOW_OPTS, glow_opts),
    .defaults = GLOW_DEFAULTS,
    .ndefaults = (int)(sizeof GLOW_DEFAULTS / sizeof GLOW_DEFAULTS[0]),
    .check_shape = glow_check_shape,
    .create = glow_create,
    .destroy = glow_destroy,
    .init = glow_init,
    .init_from_data = glow_init_from_data,
    .forward = glow_forward_batch,
    .backward = glow_backward_batch,
    .tree_lanes = 1,
    .flops_per_unit = glow_flops,
    .dims_per_unit = glow_dims,
    .roundtrip = glow_roundtrip,
    .generate_images = glow_images,
    .reconstruct_images = glow_reconstruct,
};
