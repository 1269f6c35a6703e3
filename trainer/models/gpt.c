#include "gpt.h"

#include "trainer/nn/activation.h"
#include "trainer/nn/attention.h"
#include "trainer/nn/crossentropy.h"
#include "trainer/nn/embedding.h"
#include "trainer/nn/layernorm.h"
#include "trainer/nn/linear.h"
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

int gpt_build(gpt *m, int V, int maxT, int C, int L, int NH, float dropout, int maxB)
{
    memset(m, 0, sizeof *m);
    m->base.type = &gpt_model;
    m->V = V;
    m->maxT = maxT;
    m->C = C;
    m->L = L;
    m->NH = NH;
    m->dropout = dropout;
    m->maxB = maxB;
    if (4 + 12 * L > PARAMS_MAX) {
        fprintf(stderr, "trainer: --layers %d: at most %d\n", L, (PARAMS_MAX - 4) / 12);
        return -1;
    }
    param_table *t = &m->base.params;
    m->wte = add(t, "wte", 2, (size_t)V, (size_t)C, 1);
    m->wpe = add(t, "wpe", 2, (size_t)maxT, (size_t)C, 1);
    m->block = calloc((size_t)L, sizeof *m->block);
    if (!m->block)
        return -1;
    for (int l = 0; l < L; l++) {
        gpt_block *k = &m->block[l];
        char n[48];
#define P(field, suffix, ndim, s0, s1, decay)                                           \
    snprintf(n, sizeof n, "h.%d.%s", l, suffix);                                        \
    k->field = add(t, n, ndim, (size_t)(s0), (size_t)(s1), decay)
        P(ln1w, "ln1.weight", 1, C, 0, 0);
        P(ln1b, "ln1.bias", 1, C, 0, 0);
        P(qkvw, "attn.qkv.weight", 2, 3 * C, C, 1);
        P(qkvb, "attn.qkv.bias", 1, 3 * C, 0, 0);
        P(projw, "attn.proj.weight", 2, C, C, 1);
        P(projb, "attn.proj.bias", 1, C, 0, 0);
        P(ln2w, "ln2.weight", 1, C, 0, 0);
        P(ln2b, "ln2.bias", 1, C, 0, 0);
        P(fcw, "mlp.fc.weight", 2, 4 * C, C, 1);
        P(fcb, "mlp.fc.bias", 1, 4 * C, 0, 0);
        P(fcprojw, "mlp.proj.weight", 2, C, 4 * C, 1);
        P(fcprojb, "mlp.proj.bias", 1, C, 0, 0);
#undef P
    }
    m->lnfw = add(t, "lnf.weight", 1, (size_t)C, 0, 0);
    m->lnfb = add(t, "lnf.bias", 1, (size_t)C, 0, 0);

    const size_t BT = (size_t)maxB * maxT, LBT = (size_t)L * BT;
    const size_t sizes[] = {
        BT * C,                          /* encoded */
        LBT * C, LBT, LBT,               /* ln1, mean, rstd */
        LBT * 3 * C,                     /* qkv */
        LBT * C,                         /* atty */
        (size_t)L * maxB * NH * maxT * maxT, /* att */
        LBT * C, LBT * C,                /* attproj, res2 */
        LBT * C, LBT, LBT,               /* ln2, mean, rstd */
        LBT * 4 * C, LBT * 4 * C,        /* fch, fch_gelu */
        LBT * C, LBT * C,                /* fcproj, res3 */
        dropout > 0 ? LBT * C : 0,       /* mask1 */
        dropout > 0 ? LBT * C : 0,       /* mask2 */
        BT * C, BT, BT,                  /* lnf, mean, rstd */
        BT * V,                          /* logits */
    };
    float **ptrs[] = {&m->encoded, &m->ln1, &m->ln1_mean, &m->ln1_rstd, &m->qkv, &m->atty,
                      &m->att, &m->attproj, &m->res2, &m->ln2, &m->ln2_mean, &m->ln2_rstd,
                      &m->fch, &m->fch_gelu, &m->fcproj, &m->res3, &m->mask1, &m->mask2,
                      &m->lnf, &m->lnf_mean, &m->lnf_rstd, &m->logits};
    const int n = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < n; i++)
        m->nbuf += sizes[i];
    m->buf = calloc(m->nbuf, sizeof(float));
    m->dbuf = calloc(m->nbuf, sizeof(float));
    m->scratch = calloc((size_t)maxT * maxT, sizeof(float));
    /* the fixed-order linear layers' transposes: rows * (in + out), the
     * widest being the MLP (C + 4C) or the logits (C + V) */
    const size_t widest = (size_t)C + (4 * (size_t)C > (size_t)V ? 4 * (size_t)C : (size_t)V);
    m->fixed = (linear_fixed){.nseg = 1, .scratch = calloc(BT * widest, sizeof(float)),
                              .accumulate = 1};
    m->head_t = calloc((size_t)maxT * (C / NH), sizeof(float));
    m->gen_ctx = calloc((size_t)maxT, sizeof *m->gen_ctx);
    if (!m->buf || !m->dbuf || !m->scratch || !m->gen_ctx || !m->fixed.scratch || !m->head_t) {
        fprintf(stderr, "trainer: out of memory for GPT activations (%zu floats)\n", m->nbuf);
        gpt_free(m);
        return -1;
    }
    float *p = m->buf;
    for (int i = 0; i < n; i++) {
        *ptrs[i] = sizes[i] ? p : NULL;
        p += sizes[i];
    }
    return 0;
}

void gpt_free(gpt *m)
{
    free(m->block);
    free(m->buf);
    free(m->dbuf);
    free(m->scratch);
    free(m->gen_ctx);
    free(m->fixed.scratch);
    free(m->head_t);
    m->fixed.scratch = m->head_t = NULL;
    gpt_gen_free(m->gen);
    m->gen = NULL;
    m->block = NULL;
    m->buf = m->dbuf = m->scratch = NULL;
    m->gen_ctx = NULL;
}

/* The gradient of an activation lives at the same offset in dbuf. */
static float *D(const gpt *m, const float *act) { return m->dbuf + (act - m->buf); }

static const float *W(const gpt *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

/* The fixed-order products, or NULL for OpenBLAS's. */
static const linear_fixed *fixed_of(const gpt *m) { return m->use_fixed ? &m->fixed : NULL; }
static float *head_t_of(const gpt *m) { return m->use_fixed ? m->head_t : NULL; }

void gpt_init(const gpt *m, float *params, uint32_t seed)
{
    const param_table *t = &m->base.params;
    const float resid_std = 0.02f / sqrtf(2.0f * (float)m->L);
    for (int i = 0; i < t->n; i++) {
        const param_view *v = &t->v[i];
        float *p = params + v->offset;
        const char *name = v->name;
        size_t len = strlen(name);
        int is_weight_ln = strstr(name, "ln") && len > 7 && !strcmp(name + len - 7, ".weight");
        if (v->ndim == 2) {
            float std = (strstr(name, "attn.proj.weight") || strstr(name, "mlp.proj.weight"))
                            ? resid_std
                            : 0.02f;
            rng_normals(seed, RNG_STREAM_GLOBAL, RNG_INIT, (uint32_t)i, 0, p, v->numel);
            for (size_t j = 0; j < v->numel; j++)
                p[j] *= std;
        } else {
            for (size_t j = 0; j < v->numel; j++)
                p[j] = is_weight_ln ? 1.0f : 0.0f;
        }
    }
}

/* Layer l's block of an activation of `width` values per row. */
static float *layer(float *base, int l, int BT, int width)
{
    return base + (size_t)l * BT * width;
}

/* Block l's activations for a call of B sequences of T positions. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *attproj, *mask1, *res2, *ln2, *ln2_mean,
        *ln2_rstd, *fch, *fch_gelu, *fcproj, *mask2, *res3;
} block_acts;

static block_acts block_at(const gpt *m, int l, int B, int T)
{
    const int BT = B * T, C = m->C;
    block_acts a = {
        .ln1 = layer(m->ln1, l, BT, C),
        .ln1_mean = layer(m->ln1_mean, l, BT, 1),
        .ln1_rstd = layer(m->ln1_rstd, l, BT, 1),
        .qkv = layer(m->qkv, l, BT, 3 * C),
        .atty = layer(m->atty, l, BT, C),
        .att = m->att + (size_t)l * B * m->NH * T * T,
        .attproj = layer(m->attproj, l, BT, C),
        .mask1 = m->mask1 ? layer(m->mask1, l, BT, C) : NULL,
        .res2 = layer(m->res2, l, BT, C),
        .ln2 = layer(m->ln2, l, BT, C),
        .ln2_mean = layer(m->ln2_mean, l, BT, 1),
        .ln2_rstd = layer(m->ln2_rstd, l, BT, 1),
        .fch = layer(m->fch, l, BT, 4 * C),
        .fch_gelu = layer(m->fch_gelu, l, BT, 4 * C),
        .fcproj = layer(m->fcproj, l, BT, C),
        .mask2 = m->mask2 ? layer(m->mask2, l, BT, C) : NULL,
        .res3 = layer(m->res3, l, BT, C),
    };
    return a;
}

static void make_mask(float *mask, size_t n, float p, const gpt_noise *noise, uint32_t site)
{
    rng_uniforms(noise->seed, noise->stream, RNG_DROPOUT, noise->counter, site, mask, n);
    const float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        mask[i] = mask[i] >= p ? keep : 0.0f;
}

static void mul(float *x, const float *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= mask[i];
}

static void add_to(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void gpt_forward(gpt *m, const float *params, const int32_t *tokens, const int32_t *targets,
                 int B, int T, const gpt_noise *noise, double *seq_loss)
{
    const int C = m->C, V = m->V, BT = B * T;
    const int drop = noise && m->dropout > 0.0f;
    const linear_fixed *f = fixed_of(m);
    const float *wte = W(m, params, m->wte);
    embedding_forward(m->encoded, tokens, wte, W(m, params, m->wpe), B, T, C);
    const float *residual = m->encoded;
    for (int l = 0; l < m->L; l++) {
        const gpt_block *k = &m->block[l];
        const block_acts a = block_at(m, l, B, T);
        float *ln1 = a.ln1, *qkv = a.qkv, *atty = a.atty, *attproj = a.attproj, *res2 = a.res2;
        float *ln2 = a.ln2, *fch = a.fch, *fch_gelu = a.fch_gelu, *fcproj = a.fcproj, *res3 = a.res3;
        layernorm_forward(ln1, a.ln1_mean, a.ln1_rstd, residual, W(m, params, k->ln1w),
                          W(m, params, k->ln1b), BT, C);
        linear_forward_by(f, qkv, ln1, W(m, params, k->qkvw), W(m, params, k->qkvb), BT, C, 3 * C);
        attention_forward(atty, a.att, qkv, B, T, C, m->NH, head_t_of(m));
        linear_forward_by(f, attproj, atty, W(m, params, k->projw), W(m, params, k->projb), BT, C,
                          C);
        if (drop) {
            make_mask(a.mask1, (size_t)BT * C, m->dropout, noise, (uint32_t)(2 * l));
            mul(attproj, a.mask1, (size_t)BT * C);
        }
        add_to(res2, residual, attproj, (size_t)BT * C);
        layernorm_forward(ln2, a.ln2_mean, a.ln2_rstd, res2, W(m, params, k->ln2w),
                          W(m, params, k->ln2b), BT, C);
        linear_forward_by(f, fch, ln2, W(m, params, k->fcw), W(m, params, k->fcb), BT, C, 4 * C);
        gelu_forward(fch_gelu, fch, (size_t)BT * 4 * C);
        linear_forward_by(f, fcproj, fch_gelu, W(m, params, k->fcprojw), W(m, params, k->fcprojb),
                          BT, 4 * C, C);
        if (drop) {
            make_mask(a.mask2, (size_t)BT * C, m->dropout, noise, (uint32_t)(2 * l + 1));
            mul(fcproj, a.mask2, (size_t)BT * C);
        }
        add_to(res3, res2, fcproj, (size_t)BT * C);
        residual = res3;
    }
    layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, residual, W(m, params, m->lnfw),
                      W(m, params, m->lnfb), BT, C);
    linear_forward_by(f, m->logits, m->lnf, wte, NULL, BT, C, V); /* tied to the embedding */
    if (targets)
        crossentropy_forward(m->logits, seq_loss, targets, B, T, V);
}

static void copy_masked(float *out, const float *in, const float *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = mask ? in[i] * mask[i] : in[i];
}

static void accumulate(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] += in[i];
}

void gpt_backward(gpt *m, const float *params, float *grads, const int32_t *tokens,
                  const int32_t *targets, int B, int T, float scale)
{
    const int C = m->C, V = m->V, BT = B * T;
    const int drop = m->dropout > 0.0f && m->mask1;
    memset(m->dbuf, 0, m->nbuf * sizeof(float));
    float *G = grads;
#define GW(idx) (G + m->base.params.v[idx].offset)
    float *dlogits = D(m, m->logits);
    crossentropy_backward(dlogits, m->logits, targets, BT, V, scale);
    const float *wte = W(m, params, m->wte);
    float *dlnf = D(m, m->lnf);
    const linear_fixed *f = fixed_of(m);
    linear_backward_input_by(f, dlnf, dlogits, wte, BT, C, V);
    linear_backward_params_by(f, GW(m->wte), NULL, dlogits, m->lnf, BT, C, V);
    const float *last = m->L ? layer(m->res3, m->L - 1, BT, C) : m->encoded;
    layernorm_backward(D(m, last), GW(m->lnfw), GW(m->lnfb), dlnf, last, W(m, params, m->lnfw),
                       m->lnf_mean, m->lnf_rstd, BT, C);
    for (int l = m->L - 1; l >= 0; l--) {
        const gpt_block *k = &m->block[l];
        const float *residual = l ? layer(m->res3, l - 1, BT, C) : m->encoded;
        const block_acts a = block_at(m, l, B, T);
        float *ln1 = a.ln1, *qkv = a.qkv, *atty = a.atty, *attproj = a.attproj, *res2 = a.res2;
        float *ln2 = a.ln2, *fch = a.fch, *fch_gelu = a.fch_gelu, *fcproj = a.fcproj, *res3 = a.res3;
        const size_t n = (size_t)BT * C;
        /* res3 = res2 + fcproj */
        float *dres3 = D(m, res3), *dres2 = D(m, res2), *dfcproj = D(m, fcproj);
        copy_masked(dfcproj, dres3, drop ? a.mask2 : NULL, n);
        accumulate(dres2, dres3, n);
        linear_backward_params_by(f, GW(k->fcprojw), GW(k->fcprojb), dfcproj, fch_gelu, BT, 4 * C,
                                  C);
        linear_backward_input_by(f, D(m, fch_gelu), dfcproj, W(m, params, k->fcprojw), BT, 4 * C,
                                 C);
        gelu_backward(D(m, fch), fch, D(m, fch_gelu), (size_t)BT * 4 * C);
        linear_backward_params_by(f, GW(k->fcw), GW(k->fcb), D(m, fch), ln2, BT, C, 4 * C);
        linear_backward_input_by(f, D(m, ln2), D(m, fch), W(m, params, k->fcw), BT, C, 4 * C);
        layernorm_backward(dres2, GW(k->ln2w), GW(k->ln2b), D(m, ln2), res2, W(m, params, k->ln2w),
                           a.ln2_mean, a.ln2_rstd, BT, C);
        /* res2 = residual + attproj */
        float *dresidual = D(m, residual), *dattproj = D(m, attproj);
        copy_masked(dattproj, dres2, drop ? a.mask1 : NULL, n);
        accumulate(dresidual, dres2, n);
        linear_backward_params_by(f, GW(k->projw), GW(k->projb), dattproj, atty, BT, C, C);
        linear_backward_input_by(f, D(m, atty), dattproj, W(m, params, k->projw), BT, C, C);
        attention_backward(D(m, qkv), m->scratch, D(m, atty), qkv, a.att, B, T, C, m->NH,
                           head_t_of(m));
        linear_backward_params_by(f, GW(k->qkvw), GW(k->qkvb), D(m, qkv), ln1, BT, C, 3 * C);
        linear_backward_input_by(f, D(m, ln1), D(m, qkv), W(m, params, k->qkvw), BT, C, 3 * C);
        layernorm_backward(dresidual, GW(k->ln1w), GW(k->ln1b), D(m, ln1), residual,
                           W(m, params, k->ln1w), a.ln1_mean, a.ln1_rstd, BT, C);
    }
    embedding_backward(GW(m->wte), GW(m->wpe), D(m, m->encoded), tokens, B, T, C);
#undef GW
}

double gpt_flops_per_token(const gpt *m, int T)
{
    /* 6 per parameter (forward 2, backward 4) and 12 L T C for the attention
     * scores and their use (PaLM's convention, causal mask not discounted);
     * the position table is a lookup, so it is left out */
    double n = (double)m->base.params.total - (double)m->base.params.v[m->wpe].numel;
    return 6.0 * n + 12.0 * m->L * (double)T * m->C;
}


/* The model interface. */

static const opt_spec GPT_OPTS[] = {
    OPT(gpt_opts, layers, "layers", OPT_INT, "4", CMD_TRAIN, 1, (PARAMS_MAX - 4) / 12, "blocks"),
    OPT(gpt_opts, heads, "heads", OPT_INT, "4", CMD_TRAIN, 1, 256, "attention heads"),
    OPT(gpt_opts, dim, "dim", OPT_INT, "256", CMD_TRAIN, 1, 65536, "model width"),
    OPT(gpt_opts, dropout, "dropout", OPT_DOUBLE, "0", CMD_TRAIN, 0, 0.95,
        "dropout probability on both residual branches of every block"),
};

/* The gpt-kjv recipe. */
static const char *const GPT_DEFAULTS[][2] = {
    {"batch", "32"},   {"steps", "600"},       {"beta2", "0.95"},     {"weight-decay", "0.1"},
    {"grad-clip", "1"}, {"warmup", "100"},     {"min-lr-frac", "0.1"}, {"log-every", "25"},
    {"eval-every", "100"},
};

static int gpt_check(config *c, int loud)
{
    const gpt_opts *o = MODEL_OPTS(c, const gpt_opts);
    if (o->dim % o->heads != 0) {
        if (loud)
            fprintf(stderr, "trainer: --dim %d is not divisible by --heads %d\n", o->dim, o->heads);
        return -1;
    }
    return 0;
}

static model *gpt_create(const config *c, const data_shape *shape, int max_rows)
{
    const gpt_opts *o = MODEL_OPTS(c, const gpt_opts);
    gpt *m = malloc(sizeof *m);
    if (!m) {
        fprintf(stderr, "trainer: out of memory for the GPT\n");
        return NULL;
    }
    if (gpt_build(m, shape->vocab, shape->T, o->dim, o->layers, o->heads, (float)o->dropout,
                  max_rows) != 0) {
        free(m);
        return NULL;
    }
    return &m->base;
}

static void gpt_destroy(model *base)
{
    gpt_free((gpt *)base);
    free(base);
}

static void gpt_init_model(const model *base, float *params, uint32_t seed)
{
    gpt_init((const gpt *)base, params, seed);
}

static void gpt_forward_batch(model *base, const float *params, const batch *b, double *row_loss)
{
    const gpt_noise noise = {b->seed, b->call_stream, b->call_counter};
    ((gpt *)base)->use_fixed = !b->fast;
    gpt_forward((gpt *)base, params, b->tokens, b->targets, b->rows, b->T,
                b->train ? &noise : NULL, row_loss);
}

static void gpt_backward_batch(model *base, const float *params, float *grad, const batch *b,
                               float scale)
{
    gpt_backward((gpt *)base, params, grad, b->tokens, b->targets, b->rows, b->T, scale);
}

static double gpt_flops(const model *base)
{
    const gpt *m = (const gpt *)base;
    return gpt_flops_per_token(m, m->maxT);
}

/* Generation: gpt_gen.c. */
static void gpt_gen_reset(model *base)
{
    gpt *m = (gpt *)base;
    if (!m->gen)
        m->gen = gpt_gen_new(m);
    gpt_gen_start(m);
}

static void gpt_gen_push(model *base, const float *params, int token)
{
    (void)params;
    gpt_gen_append((gpt *)base, token);
}

static const float *gpt_gen_logits(model *base, const float *params)
{
    return gpt_gen_next((gpt *)base, params);
}

static int gpt_gen_lookahead(model *base, const float *params, const int32_t *draft, int k,
                             const float **logits)
{
    return gpt_gen_ahead((gpt *)base, params, draft, k, logits);
}

const model_type gpt_model = {
    .name = "gpt",
    .summary = "decoder-only Transformer language model (GPT-2 layout)",
    .task = &text_task,
    .loss_name = "loss",
    .opts = OPT_GROUP(GPT_OPTS, gpt_opts),
    .defaults = GPT_DEFAULTS,
    .ndefaults = (int)(sizeof GPT_DEFAULTS / sizeof GPT_DEFAULTS[0]),
    .check = gpt_check,
    .create = gpt_create,
    .destroy = gpt_destroy,
    .init = gpt_init_model,
    .forward = gpt_forward_batch,
    .backward = gpt_backward_batch,
    .flops_per_unit = gpt_flops,
    .gen_reset = gpt_gen_reset,
    .gen_push = gpt_gen_push,
    .gen_logits = gpt_gen_logits,
    .gen_lookahead = gpt_gen_lookahead,
};
