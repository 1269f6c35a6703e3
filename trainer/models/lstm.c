#include "lstm.h"

#include "trainer/nn/crossentropy.h"
#include "trainer/nn/embedding.h"
#include "trainer/nn/linear.h"
#include "trainer/nn/lstm.h"
#include "trainer/philox.h"
#include "trainer/tasks/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(param_table *t, const char *name, int ndim, size_t s0, size_t s1, int decay)
{
    params_add(t, name, ndim, s0, s1, decay);
    return t->n - 1;
}

/* Carves the activation buffer; with buf NULL only counts. */
static size_t carve(lstm *m, float *buf)
{
    const size_t BT = (size_t)m->maxB * m->maxT, H = (size_t)m->H, V = (size_t)m->V;
    const size_t X = (size_t)(m->E > m->H ? m->E : m->H);
    size_t n = 0;
#define TAKE(ptr, count)                                                                          \
    do {                                                                                          \
        if (buf)                                                                                  \
            (ptr) = buf + n;                                                                      \
        n += (count);                                                                             \
    } while (0)
    TAKE(m->x0, BT * m->E);
    for (int l = 0; l < m->L; l++) {
        if (l > 0 && m->dropout > 0.0f) {
            TAKE(m->in[l], BT * H);
            TAKE(m->mask[l], BT * H);
        }
        TAKE(m->h[l], BT * H);
        TAKE(m->c[l], BT * H);
        TAKE(m->tc[l], BT * H);
        TAKE(m->gates[l], BT * 4 * H);
    }
    TAKE(m->logits, BT * V);
    TAKE(m->dlogits, BT * V);
    TAKE(m->dh, BT * H);
    TAKE(m->dx, BT * X);
    TAKE(m->dgates, BT * 4 * H);
    TAKE(m->hprev, BT * H);
    TAKE(m->dc, (size_t)m->maxB * H);
    TAKE(m->gen, 2 * (size_t)m->L * H + 4 * H + V);
#undef TAKE
    return n;
}

int lstm_build(lstm *m, int V, int maxT, int E, int H, int L, float dropout, int maxB)
{
    memset(m, 0, sizeof *m);
    m->base.type = &lstm_model;
    m->V = V;
    m->maxT = maxT;
    m->E = E;
    m->H = H;
    m->L = L;
    m->dropout = dropout;
    m->maxB = maxB;
    if (L < 1 || L > LSTM_MAX_LAYERS) {
        fprintf(stderr, "trainer: --layers %d: 1 to %d\n", L, LSTM_MAX_LAYERS);
        return -1;
    }
    param_table *t = &m->base.params;
    m->wte = add(t, "wte", 2, (size_t)V, (size_t)E, 0);
    for (int l = 0; l < L; l++) {
        char n[48];
        const int in = l ? H : E;
        snprintf(n, sizeof n, "lstm.%d.w_ih", l);
        m->w_ih[l] = add(t, n, 2, 4 * (size_t)H, (size_t)in, 1);
        snprintf(n, sizeof n, "lstm.%d.w_hh", l);
        m->w_hh[l] = add(t, n, 2, 4 * (size_t)H, (size_t)H, 1);
        snprintf(n, sizeof n, "lstm.%d.bias", l);
        m->bias[l] = add(t, n, 1, 4 * (size_t)H, 0, 0);
    }
    m->out_w = add(t, "out.weight", 2, (size_t)V, (size_t)H, 1);
    m->out_b = add(t, "out.bias", 1, (size_t)V, 0, 0);
    size_t n = carve(m, NULL);
    m->buf = calloc(n, sizeof(float));
    m->views = calloc(3 * (size_t)maxB, sizeof *m->views);
    /* the fixed-order products' transposes: rows * (in + out), the widest
     * being the gates (E or H in, 4H out) or the logits (H + V) */
    const size_t in = (size_t)(E > H ? E : H),
                 out = 4 * (size_t)H > (size_t)V ? 4 * (size_t)H : (size_t)V;
    m->fixed = (linear_fixed){.nseg = 1,
                              .scratch = calloc((size_t)maxB * maxT * (in + out), sizeof(float)),
                              .accumulate = 1};
    if (!m->buf || !m->views || !m->fixed.scratch) {
        fprintf(stderr, "trainer: out of memory for LSTM activations (%zu floats)\n", n);
        return -1;
    }
    carve(m, m->buf);
    return 0;
}

void lstm_free(lstm *m)
{
    free(m->buf);
    free(m->views);
    free(m->fixed.scratch);
    m->fixed.scratch = NULL;
    m->buf = NULL;
    m->views = NULL;
}

static float *P(const lstm *m, float *params, int idx) { return params + m->base.params.v[idx].offset; }

static const float *W(const lstm *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

/* The fixed-order products, or NULL for OpenBLAS's. */
static const linear_fixed *F(const lstm *m) { return m->use_fixed ? &m->fixed : NULL; }

void lstm_init(const lstm *m, float *params, uint32_t seed)
{
    const param_table *t = &m->base.params;
    const float k = 1.0f / sqrtf((float)m->H);
    for (int i = 0; i < t->n; i++) {
        const param_view *v = &t->v[i];
        float *p = params + v->offset;
        if (i == m->wte) {
            rng_normals(seed, RNG_STREAM_GLOBAL, RNG_INIT, (uint32_t)i, 0, p, v->numel);
            continue;
        }
        rng_uniforms(seed, RNG_STREAM_GLOBAL, RNG_INIT, (uint32_t)i, 0, p, v->numel);
        for (size_t j = 0; j < v->numel; j++)
            p[j] = (2.0f * p[j] - 1.0f) * k;
    }
    for (int l = 0; l < m->L; l++) { /* remember by default: forget gates open */
        float *b = P(m, params, m->bias[l]);
        for (int j = 0; j < m->H; j++)
            b[m->H + j] = 1.0f;
    }
}

/* The input of layer l > 0: h of the layer below, through dropout when
 * training with it (masks from each segment's stream, one site per layer). */
static const float *layer_input(lstm *m, int l, int BT, int nseg, const lstm_noise *noise)
{
    if (l == 0)
        return m->x0;
    if (!noise || m->dropout <= 0.0f)
        return m->h[l - 1];
    const size_t n = (size_t)BT * m->H, per = n / (size_t)nseg;
    for (int s = 0; s < nseg; s++)
        rng_uniforms(noise->seed, noise->stream[s], RNG_DROPOUT, noise->counter, (uint32_t)l,
                     m->mask[l] + (size_t)s * per, per);
    const float keep = 1.0f / (1.0f - m->dropout);
    for (size_t i = 0; i < n; i++) {
        m->mask[l][i] = m->mask[l][i] >= m->dropout ? keep : 0.0f;
        m->in[l][i] = m->h[l - 1][i] * m->mask[l][i];
    }
    return m->in[l];
}

void lstm_forward(lstm *m, const float *params, const int32_t *tokens, const int32_t *targets,
                  int B, int nseg, int T, const lstm_noise *noise, double *seq_loss)
{
    const int BT = B * T, H = m->H, rows = BT / nseg;
    lookup_forward(m->x0, tokens, W(m, params, m->wte), BT, m->E);
    for (int l = 0; l < m->L; l++)
        lstm_layer_forward(m->h[l], m->c[l], m->tc[l], m->gates[l],
                           layer_input(m, l, BT, nseg, noise), W(m, params, m->w_ih[l]),
                           W(m, params, m->w_hh[l]), W(m, params, m->bias[l]), B, nseg, T,
                           l ? H : m->E, H, F(m));
    for (int s = 0; s < nseg; s++)
        linear_forward_by(F(m), m->logits + (size_t)s * rows * m->V,
                          m->h[m->L - 1] + (size_t)s * rows * H, W(m, params, m->out_w),
                          W(m, params, m->out_b), rows, H, m->V);
    if (targets)
        crossentropy_forward(m->logits, seq_loss, targets, B, T, m->V);
}

/* grads[s] + the offset of tensor idx, for every segment. */
static float *const *views(const lstm *m, float *const *grads, int nseg, int idx, float **out)
{
    for (int s = 0; s < nseg; s++)
        out[s] = P(m, grads[s], idx);
    return out;
}

void lstm_backward(lstm *m, const float *params, float *const *grads, const int32_t *tokens,
                   const int32_t *targets, int B, int nseg, int T, float scale)
{
    const int BT = B * T, H = m->H, V = m->V, rows = BT / nseg;
    const size_t nh = (size_t)BT * H;
    float **vw = m->views, **vh = vw + m->maxB, **vb = vh + m->maxB; /* nseg <= B <= maxB */
    memset(m->dlogits, 0, (size_t)BT * V * sizeof(float));
    crossentropy_backward(m->dlogits, m->logits, targets, BT, V, scale);
    memset(m->dh, 0, nh * sizeof(float));
    for (int s = 0; s < nseg; s++) {
        const size_t r0 = (size_t)s * rows;
        linear_backward_params_by(F(m), P(m, grads[s], m->out_w), P(m, grads[s], m->out_b),
                                  m->dlogits + r0 * V, m->h[m->L - 1] + r0 * H, rows, H, V);
        linear_backward_input_by(F(m), m->dh + r0 * H, m->dlogits + r0 * V, W(m, params, m->out_w),
                                 rows, H, V);
    }
    for (int l = m->L - 1; l >= 0; l--) {
        const int In = l ? H : m->E;
        const float *x = l == 0 ? m->x0 : m->mask[l] ? m->in[l] : m->h[l - 1];
        memset(m->dx, 0, (size_t)BT * In * sizeof(float));
        lstm_layer_backward(m->dx, views(m, grads, nseg, m->w_ih[l], vw),
                            views(m, grads, nseg, m->w_hh[l], vh),
                            views(m, grads, nseg, m->bias[l], vb), m->dh, m->dgates, m->hprev,
                            m->dc, x, m->h[l], m->c[l], m->tc[l], m->gates[l],
                            W(m, params, m->w_ih[l]), W(m, params, m->w_hh[l]), B, nseg, T, In, H,
                            F(m));
        if (l == 0)
            break;
        for (size_t i = 0; i < nh; i++) /* through the dropout into the layer below */
            m->dh[i] = m->mask[l] ? m->dx[i] * m->mask[l][i] : m->dx[i];
    }
    for (int s = 0; s < nseg; s++)
        lookup_backward(P(m, grads[s], m->wte), m->dx + (size_t)s * rows * m->E,
                        tokens + (size_t)s * rows, rows, m->E);
}

/* The model interface. */

static const opt_spec LSTM_OPTS[] = {
    OPT(lstm_opts, layers, "layers", OPT_INT, "2", CMD_TRAIN, 1, LSTM_MAX_LAYERS, "LSTM layers"),
    OPT(lstm_opts, embed, "embed", OPT_INT, "128", CMD_TRAIN, 1, 65536, "token embedding width"),
    OPT(lstm_opts, dim, "dim", OPT_INT, "512", CMD_TRAIN, 1, 65536, "hidden (and cell) width"),
    OPT(lstm_opts, dropout, "dropout", OPT_DOUBLE, "0", CMD_TRAIN, 0, 0.95,
        "dropout probability between LSTM layers"),
};

/* The lstm-kjv recipe. */
static const char *const LSTM_DEFAULTS[][2] = {
    {"batch", "32"},    {"steps", "600"},       {"lr", "2e-3"},      {"warmup", "50"},
    {"min-lr-frac", "0.1"}, {"grad-clip", "1"}, {"log-every", "25"}, {"eval-every", "100"},
};

static model *lstm_create(const config *c, const data_shape *shape, int max_rows)
{
    const lstm_opts *o = MODEL_OPTS(c, const lstm_opts);
    lstm *m = malloc(sizeof *m);
    if (!m) {
        fprintf(stderr, "trainer: out of memory for the LSTM\n");
        return NULL;
    }
    if (lstm_build(m, shape->vocab, shape->T, o->embed, o->dim, o->layers, (float)o->dropout,
                   max_rows) != 0) {
        lstm_free(m);
        free(m);
        return NULL;
    }
    return &m->base;
}

static void lstm_destroy(model *base)
{
    lstm_free((lstm *)base);
    free(base);
}

static void lstm_init_model(const model *base, float *params, uint32_t seed)
{
    lstm_init((const lstm *)base, params, seed);
}

static void lstm_forward_batch(model *base, const float *params, const batch *b, double *row_loss)
{
    const lstm_noise noise = {b->seed, b->call_counter, b->nseg > 1 ? b->seg_stream
                                                                     : &b->call_stream};
    ((lstm *)base)->use_fixed = !b->fast;
    lstm_forward((lstm *)base, params, b->tokens, b->targets, b->rows, b->nseg, b->T,
                 b->train ? &noise : NULL, row_loss);
}

static void lstm_backward_lanes(model *base, const float *params, float *const *grads,
                                const batch *b, float scale)
{
    lstm_backward((lstm *)base, params, grads, b->tokens, b->targets, b->rows, b->nseg, b->T,
                  scale);
}

static void lstm_backward_batch(model *base, const float *params, float *grad, const batch *b,
                                float scale)
{
    lstm_backward_lanes(base, params, &grad, b, scale);
}

/* 2 FLOPs per weight and token forward, 4 backward; the embedding is a
 * lookup. */
static double lstm_flops(const model *base)
{
    const lstm *m = (const lstm *)base;
    return 6.0 * ((double)base->params.total - (double)base->params.v[m->wte].numel);
}

/* Generation carries the state forward: one step per token. gen holds h
 * and c of every layer, then the gates and the logits. */
static void lstm_gen_reset(model *base)
{
    lstm *m = (lstm *)base;
    memset(m->gen, 0, 2 * (size_t)m->L * m->H * sizeof(float));
}

static void lstm_gen_push(model *base, const float *params, int token)
{
    lstm *m = (lstm *)base;
    const float *x = W(m, params, m->wte) + (size_t)token * m->E;
    float *gates = m->gen + 2 * (size_t)m->L * m->H;
    for (int l = 0; l < m->L; l++) {
        float *h = m->gen + (size_t)l * m->H, *c = m->gen + (size_t)(m->L + l) * m->H;
        lstm_layer_step(h, c, gates, x, W(m, params, m->w_ih[l]), W(m, params, m->w_hh[l]),
                        W(m, params, m->bias[l]), l ? m->H : m->E, m->H);
        x = h;
    }
}

static const float *lstm_gen_logits(model *base, const float *params)
{
    lstm *m = (lstm *)base;
    float *logits = m->gen + 2 * (size_t)m->L * m->H + 4 * (size_t)m->H;
    const float *top = m->gen + (size_t)(m->L - 1) * m->H;
    memcpy(logits, W(m, params, m->out_b), (size_t)m->V * sizeof(float));
    times_wt(logits, m->V, top, m->H, W(m, params, m->out_w), 1, m->V, m->H);
    return logits;
}

const model_type lstm_model = {
    .name = "lstm",
    .summary = "LSTM language model (embedding, LSTM layers, linear output)",
    .task = &text_task,
    .loss_name = "loss",
    .opts = OPT_GROUP(LSTM_OPTS, lstm_opts),
    .defaults = LSTM_DEFAULTS,
    .ndefaults = (int)(sizeof LSTM_DEFAULTS / sizeof LSTM_DEFAULTS[0]),
    .create = lstm_create,
    .destroy = lstm_destroy,
    .init = lstm_init_model,
    .forward = lstm_forward_batch,
    .backward = lstm_backward_batch,
    .backward_lanes = lstm_backward_lanes,
    .flops_per_unit = lstm_flops,
    .gen_reset = lstm_gen_reset,
    .gen_push = lstm_gen_push,
    .gen_logits = lstm_gen_logits,
};
