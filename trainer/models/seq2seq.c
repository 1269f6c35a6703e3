#include "seq2seq.h"

#include "trainer/nn/activation.h"
#include "trainer/nn/attention.h"
#include "trainer/nn/crossentropy.h"
#include "trainer/nn/embedding.h"
#include "trainer/nn/exactmath.h"
#include "trainer/nn/layernorm.h"
#include "trainer/nn/linear.h"
#include "trainer/philox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 16

/* Tensor indices of the three kinds of sublayer. */
typedef struct {
    int lnw, lnb, qkvw, qkvb, projw, projb;
} attn_idx;
typedef struct {
    int lnw, lnb, qw, qb, kvw, kvb, projw, projb;
} cross_idx;
typedef struct {
    int lnw, lnb, fcw, fcb, projw, projb;
} mlp_idx;

/* Their activations; out = input + (dropped out) branch. */
typedef struct {
    float *ln, *mean, *rstd, *qkv, *y, *att, *proj, *mask, *out;
} attn_acts;
typedef struct {
    float *ln, *mean, *rstd, *q, *kv, *y, *att, *proj, *mask, *out;
} cross_acts;
typedef struct {
    float *ln, *mean, *rstd, *h, *g, *proj, *mask, *out;
} mlp_acts;

typedef struct {
    model base;
    int V, L, C, NH, layers, maxB;
    float dropout;
    int wte, wpe_enc, wpe_dec, lnew, lneb, lndw, lndb;
    attn_idx eattn[MAX_LAYERS], dattn[MAX_LAYERS];
    cross_idx dcross[MAX_LAYERS];
    mlp_idx emlp[MAX_LAYERS], dmlp[MAX_LAYERS];
    attn_acts ea[MAX_LAYERS], da[MAX_LAYERS];
    cross_acts dc[MAX_LAYERS];
    mlp_acts em[MAX_LAYERS], dm[MAX_LAYERS];
    float *xenc, *xdec, *enc, *enc_mean, *enc_rstd, *lnd, *lnd_mean, *lnd_rstd, *logits;
    /* activations, and their gradients at the same offsets in dbuf */
    float *buf, *dbuf;
    size_t nbuf, used;
    float *scratch; /* L * L */
    /* the products: OpenBLAS (use_fixed 0: fast training; bits per kernel)
     * or the fixed order of nn/gemm.h (exact training, evaluation,
     * translation: the same bits on every CPU); head_t: hs * L floats */
    int use_fixed;
    linear_fixed fixed;
    float *head_t;
    /* the call's rows at its own lengths */
    int32_t *src, *din, *tgt;
    int *slen;
    double *row_nats;
    int B, S, T;
    float row_weight; /* training: rows / real target tokens of the call */
    int drop;
    uint32_t seed, stream, counter;
} s2s;

static const float *W(const s2s *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

static float *G(const s2s *m, float *grad, int idx)
{
    return grad + m->base.params.v[idx].offset;
}

static float *D(const s2s *m, const float *act) { return m->dbuf + (act - m->buf); }

/* The fixed-order products and attention's room for them, or NULL for
 * OpenBLAS's. */
static const linear_fixed *F(const s2s *m) { return m->use_fixed ? &m->fixed : NULL; }
static float *HT(const s2s *m) { return m->use_fixed ? m->head_t : NULL; }

/* Bump allocation in buf: sizing (buf NULL) counts, then it carves. */
static float *take(s2s *m, size_t n)
{
    float *p = m->buf ? m->buf + m->used : NULL;
    m->used += (n + 15) & ~(size_t)15;
    return p;
}

static int add(param_table *t, const char *name, size_t s0, size_t s1, int decay)
{
    params_add(t, name, s1 ? 2 : 1, s0, s1, decay);
    return t->n - 1;
}

static void add_ln(param_table *t, const char *name, int C, int *w, int *b)
{
    char n[48];
    snprintf(n, sizeof n, "%.40s.weight", name);
    *w = add(t, n, (size_t)C, 0, 0);
    snprintf(n, sizeof n, "%.40s.bias", name);
    *b = add(t, n, (size_t)C, 0, 0);
}

static void add_lin(param_table *t, const char *name, int in, int out, int *w, int *b)
{
    char n[48];
    snprintf(n, sizeof n, "%.40s.weight", name);
    *w = add(t, n, (size_t)out, (size_t)in, 1);
    snprintf(n, sizeof n, "%.40s.bias", name);
    *b = add(t, n, (size_t)out, 0, 0);
}

static void add_params(s2s *m)
{
    param_table *t = &m->base.params;
    const int C = m->C;
    char n[48];
    m->wte = add(t, "wte", (size_t)m->V, (size_t)C, 1);
    m->wpe_enc = add(t, "enc.wpe", (size_t)m->L, (size_t)C, 0);
    m->wpe_dec = add(t, "dec.wpe", (size_t)m->L, (size_t)C, 0);
    for (int side = 0; side < 2; side++)
        for (int l = 0; l < m->layers; l++) {
            const char *s = side ? "dec" : "enc";
            attn_idx *a = side ? &m->dattn[l] : &m->eattn[l];
            mlp_idx *f = side ? &m->dmlp[l] : &m->emlp[l];
#define NAME(what) (snprintf(n, sizeof n, "%s.h%d.%s", s, l, what), n)
            add_ln(t, NAME("ln1"), C, &a->lnw, &a->lnb);
            add_lin(t, NAME("attn.qkv"), C, 3 * C, &a->qkvw, &a->qkvb);
            add_lin(t, NAME("attn.proj"), C, C, &a->projw, &a->projb);
            if (side) {
                cross_idx *x = &m->dcross[l];
                add_ln(t, NAME("lnx"), C, &x->lnw, &x->lnb);
                add_lin(t, NAME("cross.q"), C, C, &x->qw, &x->qb);
                add_lin(t, NAME("cross.kv"), C, 2 * C, &x->kvw, &x->kvb);
                add_lin(t, NAME("cross.proj"), C, C, &x->projw, &x->projb);
            }
            add_ln(t, NAME("ln2"), C, &f->lnw, &f->lnb);
            add_lin(t, NAME("mlp.fc"), C, 4 * C, &f->fcw, &f->fcb);
            add_lin(t, NAME("mlp.proj"), 4 * C, C, &f->projw, &f->projb);
#undef NAME
        }
    add_ln(t, "enc.lnf", C, &m->lnew, &m->lneb);
    add_ln(t, "dec.lnf", C, &m->lndw, &m->lndb);
}

static void carve_attn(s2s *m, attn_acts *a, size_t N, size_t att)
{
    const size_t C = (size_t)m->C;
    a->ln = take(m, N * C);
    a->mean = take(m, N);
    a->rstd = take(m, N);
    a->qkv = take(m, 3 * N * C);
    a->y = take(m, N * C);
    a->att = take(m, att);
    a->proj = take(m, N * C);
    a->mask = take(m, N * C);
    a->out = take(m, N * C);
}

static void carve_cross(s2s *m, cross_acts *a, size_t N, size_t att)
{
    const size_t C = (size_t)m->C;
    a->ln = take(m, N * C);
    a->mean = take(m, N);
    a->rstd = take(m, N);
    a->q = take(m, N * C);
    a->kv = take(m, 2 * N * C);
    a->y = take(m, N * C);
    a->att = take(m, att);
    a->proj = take(m, N * C);
    a->mask = take(m, N * C);
    a->out = take(m, N * C);
}

static void carve_mlp(s2s *m, mlp_acts *a, size_t N)
{
    const size_t C = (size_t)m->C;
    a->ln = take(m, N * C);
    a->mean = take(m, N);
    a->rstd = take(m, N);
    a->h = take(m, 4 * N * C);
    a->g = take(m, 4 * N * C);
    a->proj = take(m, N * C);
    a->mask = take(m, N * C);
    a->out = take(m, N * C);
}

static void carve(s2s *m)
{
    const size_t N = (size_t)m->maxB * m->L, C = (size_t)m->C;
    const size_t att = (size_t)m->maxB * m->NH * m->L * m->L;
    m->used = 0;
    m->xenc = take(m, N * C);
    m->xdec = take(m, N * C);
    for (int l = 0; l < m->layers; l++) {
        carve_attn(m, &m->ea[l], N, att);
        carve_mlp(m, &m->em[l], N);
        carve_attn(m, &m->da[l], N, att);
        carve_cross(m, &m->dc[l], N, att);
        carve_mlp(m, &m->dm[l], N);
    }
    m->enc = take(m, N * C);
    m->enc_mean = take(m, N);
    m->enc_rstd = take(m, N);
    m->lnd = take(m, N * C);
    m->lnd_mean = take(m, N);
    m->lnd_rstd = take(m, N);
    m->logits = take(m, N * (size_t)m->V);
}

static void s2s_free(s2s *m)
{
    free(m->buf);
    free(m->dbuf);
    free(m->scratch);
    free(m->fixed.scratch);
    free(m->head_t);
    free(m->src);
    free(m->din);
    free(m->tgt);
    free(m->slen);
    free(m->row_nats);
}

static int s2s_build(s2s *m, int V, int L, int C, int layers, int NH, float dropout, int maxB)
{
    memset(m, 0, sizeof *m);
    m->base.type = &seq2seq_model;
    m->V = V;
    m->L = L;
    m->C = C;
    m->layers = layers;
    m->NH = NH;
    m->dropout = dropout;
    m->maxB = maxB;
    add_params(m);
    carve(m); /* sizing */
    m->nbuf = m->used;
    m->buf = calloc(m->nbuf, sizeof(float));
    m->dbuf = calloc(m->nbuf, sizeof(float));
    m->scratch = calloc((size_t)L * L, sizeof(float));
    const size_t N = (size_t)maxB * L;
    /* the fixed-order linear layers' transposes: rows * (in + out), the
     * widest being the MLP (C + 4C) or the logits (C + V) */
    const size_t widest = (size_t)C + (4 * (size_t)C > (size_t)V ? 4 * (size_t)C : (size_t)V);
    m->fixed = (linear_fixed){.nseg = 1, .scratch = calloc(N * widest, sizeof(float)),
                              .accumulate = 1};
    m->head_t = calloc((size_t)L * (C / NH), sizeof(float));
    m->src = calloc(N, sizeof *m->src);
    m->din = calloc(N, sizeof *m->din);
    m->tgt = calloc(N, sizeof *m->tgt);
    m->slen = calloc((size_t)maxB, sizeof *m->slen);
    m->row_nats = calloc((size_t)maxB, sizeof *m->row_nats);
    if (!m->buf || !m->dbuf || !m->scratch || !m->src || !m->din || !m->tgt || !m->slen ||
        !m->row_nats || !m->fixed.scratch || !m->head_t) {
        fprintf(stderr, "trainer: out of memory for the encoder-decoder's activations (%zu "
                        "floats)\n",
                m->nbuf);
        s2s_free(m);
        return -1;
    }
    carve(m);
    return 0;
}

/* GPT-2's start: N(0, 0.02) for matrices and embeddings, the residual
 * branches' last matrices scaled by 1 / sqrt(2 layers), zero biases, unit
 * LayerNorm gains; tensor i from (seed, RNG_INIT, i). */
static void s2s_init(const model *base, float *params, uint32_t seed)
{
    const s2s *m = (const s2s *)base;
    const param_table *t = &base->params;
    const float resid = 0.02f / sqrtf(2.0f * (float)m->layers);
    for (int i = 0; i < t->n; i++) {
        const param_view *v = &t->v[i];
        float *p = params + v->offset;
        const char *dot = strrchr(v->name, '.');
        const int is_ln = strstr(v->name, ".ln") != NULL;
        if (v->ndim == 1 || (dot && !strcmp(dot, ".bias"))) {
            const float value = is_ln && dot && !strcmp(dot, ".weight") ? 1.0f : 0.0f;
            for (size_t j = 0; j < v->numel; j++)
                p[j] = value;
            continue;
        }
        rng_normals(seed, RNG_STREAM_GLOBAL, RNG_INIT, (uint32_t)i, 0, p, v->numel);
        const float sd = strstr(v->name, "proj.weight") ? resid : 0.02f;
        for (size_t j = 0; j < v->numel; j++)
            p[j] *= sd;
    }
}

static void dropout_mask(s2s *m, float *mask, float *x, size_t n, uint32_t site)
{
    if (!m->drop)
        return;
    rng_uniforms(m->seed, m->stream, RNG_DROPOUT, m->counter, site, mask, n);
    const float keep = 1.0f / (1.0f - m->dropout);
    for (size_t i = 0; i < n; i++) {
        mask[i] = mask[i] >= m->dropout ? keep : 0.0f;
        x[i] *= mask[i];
    }
}

static void add_to(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* The branch's gradient (through the mask) from the sublayer's output
 * gradient, which also flows on to the input unchanged. */
static void residual_backward(s2s *m, float *dbranch, float *dinp, const float *dout,
                              const float *mask, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dbranch[i] = m->drop ? dout[i] * mask[i] : dout[i];
        dinp[i] += dout[i];
    }
}

static void attn_forward(s2s *m, const float *P, const attn_idx *k, attn_acts *a, const float *x,
                         int B, int T, const int *klen, int causal, uint32_t site)
{
    const int N = B * T, C = m->C;
    layernorm_forward(a->ln, a->mean, a->rstd, x, W(m, P, k->lnw), W(m, P, k->lnb), N, C);
    linear_forward_by(F(m), a->qkv, a->ln, W(m, P, k->qkvw), W(m, P, k->qkvb), N, C, 3 * C);
    mha_forward(a->y, a->att, a->qkv, 3 * C, a->qkv + C, 3 * C, a->qkv + 2 * C, 3 * C, klen, causal,
                B, T, T, C, m->NH, HT(m));
    linear_forward_by(F(m), a->proj, a->y, W(m, P, k->projw), W(m, P, k->projb), N, C, C);
    dropout_mask(m, a->mask, a->proj, (size_t)N * C, site);
    add_to(a->out, x, a->proj, (size_t)N * C);
}

static void attn_backward(s2s *m, const float *P, float *Gr, const attn_idx *k, attn_acts *a,
                          const float *x, int B, int T, const int *klen, int causal)
{
    const int N = B * T, C = m->C;
    float *dqkv = D(m, a->qkv);
    residual_backward(m, D(m, a->proj), D(m, x), D(m, a->out), a->mask, (size_t)N * C);
    linear_backward_params_by(F(m), G(m, Gr, k->projw), G(m, Gr, k->projb), D(m, a->proj), a->y, N,
                              C, C);
    linear_backward_input_by(F(m), D(m, a->y), D(m, a->proj), W(m, P, k->projw), N, C, C);
    mha_backward(dqkv, dqkv + C, dqkv + 2 * C, m->scratch, D(m, a->y), a->qkv, 3 * C, a->qkv + C,
                 3 * C, a->qkv + 2 * C, 3 * C, a->att, klen, causal, B, T, T, C, m->NH, HT(m));
    linear_backward_params_by(F(m), G(m, Gr, k->qkvw), G(m, Gr, k->qkvb), dqkv, a->ln, N, C, 3 * C);
    linear_backward_input_by(F(m), D(m, a->ln), dqkv, W(m, P, k->qkvw), N, C, 3 * C);
    layernorm_backward(D(m, x), G(m, Gr, k->lnw), G(m, Gr, k->lnb), D(m, a->ln), x,
                       W(m, P, k->lnw), a->mean, a->rstd, N, C);
}

static void cross_forward(s2s *m, const float *P, const cross_idx *k, cross_acts *a,
                          const float *x, uint32_t site)
{
    const int B = m->B, T = m->T, S = m->S, N = B * T, C = m->C;
    layernorm_forward(a->ln, a->mean, a->rstd, x, W(m, P, k->lnw), W(m, P, k->lnb), N, C);
    linear_forward_by(F(m), a->q, a->ln, W(m, P, k->qw), W(m, P, k->qb), N, C, C);
    linear_forward_by(F(m), a->kv, m->enc, W(m, P, k->kvw), W(m, P, k->kvb), B * S, C, 2 * C);
    mha_forward(a->y, a->att, a->q, C, a->kv, 2 * C, a->kv + C, 2 * C, m->slen, 0, B, T, S, C,
                m->NH, HT(m));
    linear_forward_by(F(m), a->proj, a->y, W(m, P, k->projw), W(m, P, k->projb), N, C, C);
    dropout_mask(m, a->mask, a->proj, (size_t)N * C, site);
    add_to(a->out, x, a->proj, (size_t)N * C);
}

static void cross_backward(s2s *m, const float *P, float *Gr, const cross_idx *k, cross_acts *a,
                           const float *x)
{
    const int B = m->B, T = m->T, S = m->S, N = B * T, C = m->C;
    float *dkv = D(m, a->kv);
    residual_backward(m, D(m, a->proj), D(m, x), D(m, a->out), a->mask, (size_t)N * C);
    linear_backward_params_by(F(m), G(m, Gr, k->projw), G(m, Gr, k->projb), D(m, a->proj), a->y, N,
                              C, C);
    linear_backward_input_by(F(m), D(m, a->y), D(m, a->proj), W(m, P, k->projw), N, C, C);
    mha_backward(D(m, a->q), dkv, dkv + C, m->scratch, D(m, a->y), a->q, C, a->kv, 2 * C, a->kv + C,
                 2 * C, a->att, m->slen, 0, B, T, S, C, m->NH, HT(m));
    linear_backward_params_by(F(m), G(m, Gr, k->kvw), G(m, Gr, k->kvb), dkv, m->enc, B * S, C,
                              2 * C);
    linear_backward_input_by(F(m), D(m, m->enc), dkv, W(m, P, k->kvw), B * S, C, 2 * C);
    linear_backward_params_by(F(m), G(m, Gr, k->qw), G(m, Gr, k->qb), D(m, a->q), a->ln, N, C, C);
    linear_backward_input_by(F(m), D(m, a->ln), D(m, a->q), W(m, P, k->qw), N, C, C);
    layernorm_backward(D(m, x), G(m, Gr, k->lnw), G(m, Gr, k->lnb), D(m, a->ln), x,
                       W(m, P, k->lnw), a->mean, a->rstd, N, C);
}

static void mlp_forward(s2s *m, const float *P, const mlp_idx *k, mlp_acts *a, const float *x,
                        int N, uint32_t site)
{
    const int C = m->C;
    layernorm_forward(a->ln, a->mean, a->rstd, x, W(m, P, k->lnw), W(m, P, k->lnb), N, C);
    linear_forward_by(F(m), a->h, a->ln, W(m, P, k->fcw), W(m, P, k->fcb), N, C, 4 * C);
    gelu_forward(a->g, a->h, (size_t)N * 4 * C);
    linear_forward_by(F(m), a->proj, a->g, W(m, P, k->projw), W(m, P, k->projb), N, 4 * C, C);
    dropout_mask(m, a->mask, a->proj, (size_t)N * C, site);
    add_to(a->out, x, a->proj, (size_t)N * C);
}

static void mlp_backward(s2s *m, const float *P, float *Gr, const mlp_idx *k, mlp_acts *a,
                         const float *x, int N)
{
    const int C = m->C;
    residual_backward(m, D(m, a->proj), D(m, x), D(m, a->out), a->mask, (size_t)N * C);
    linear_backward_params_by(F(m), G(m, Gr, k->projw), G(m, Gr, k->projb), D(m, a->proj), a->g, N,
                              4 * C, C);
    linear_backward_input_by(F(m), D(m, a->g), D(m, a->proj), W(m, P, k->projw), N, 4 * C, C);
    gelu_backward(D(m, a->h), a->h, D(m, a->g), (size_t)N * 4 * C);
    linear_backward_params_by(F(m), G(m, Gr, k->fcw), G(m, Gr, k->fcb), D(m, a->h), a->ln, N, C,
                              4 * C);
    linear_backward_input_by(F(m), D(m, a->ln), D(m, a->h), W(m, P, k->fcw), N, C, 4 * C);
    layernorm_backward(D(m, x), G(m, Gr, k->lnw), G(m, Gr, k->lnb), D(m, a->ln), x,
                       W(m, P, k->lnw), a->mean, a->rstd, N, C);
}

/* The batch's rows (pairs.c's layout: 2L positions a row) at the call's
 * lengths: the longest source (up to its first padding) and the furthest
 * scored target position. */
static void take_rows(s2s *m, const batch *b)
{
    const int L = m->L, pad = m->V - 1;
    int S = 1, T = 1;
    for (int j = 0; j < b->rows; j++) {
        const int32_t *tok = b->tokens + (size_t)j * 2 * L, *tgt = b->targets + (size_t)j * 2 * L;
        int s = 0, t = L;
        while (s < L && tok[s] != pad)
            s++;
        while (t > 0 && tgt[L + t - 1] < 0) /* the last scored position */
            t--;
        m->slen[j] = s > 0 ? s : 1;
        S = m->slen[j] > S ? m->slen[j] : S;
        T = t > T ? t : T;
    }
    m->B = b->rows;
    m->S = S;
    m->T = T;
    for (int j = 0; j < b->rows; j++) {
        const int32_t *tok = b->tokens + (size_t)j * 2 * L, *tgt = b->targets + (size_t)j * 2 * L;
        memcpy(m->src + (size_t)j * S, tok, (size_t)S * sizeof *tok);
        memcpy(m->din + (size_t)j * T, tok + L, (size_t)T * sizeof *tok);
        memcpy(m->tgt + (size_t)j * T, tgt + L, (size_t)T * sizeof *tgt);
    }
}

/* The encoder over m->src (m->B rows of m->S) into m->enc. */
static void encode(s2s *m, const float *P)
{
    const int B = m->B, S = m->S, C = m->C;
    embedding_forward(m->xenc, m->src, W(m, P, m->wte), W(m, P, m->wpe_enc), B, S, C);
    const float *x = m->xenc;
    for (int l = 0; l < m->layers; l++) {
        attn_forward(m, P, &m->eattn[l], &m->ea[l], x, B, S, m->slen, 0, (uint32_t)(5 * l));
        mlp_forward(m, P, &m->emlp[l], &m->em[l], m->ea[l].out, B * S, (uint32_t)(5 * l + 1));
        x = m->em[l].out;
    }
    layernorm_forward(m->enc, m->enc_mean, m->enc_rstd, x, W(m, P, m->lnew), W(m, P, m->lneb),
                      B * S, C);
}

/* The decoder over m->din (m->B rows of m->T) into m->logits. */
static void decode(s2s *m, const float *P)
{
    const int B = m->B, T = m->T, C = m->C, V = m->V;
    const float *wte = W(m, P, m->wte);
    embedding_forward(m->xdec, m->din, wte, W(m, P, m->wpe_dec), B, T, C);
    const float *y = m->xdec;
    for (int l = 0; l < m->layers; l++) {
        attn_forward(m, P, &m->dattn[l], &m->da[l], y, B, T, NULL, 1, (uint32_t)(5 * l + 2));
        cross_forward(m, P, &m->dcross[l], &m->dc[l], m->da[l].out, (uint32_t)(5 * l + 3));
        mlp_forward(m, P, &m->dmlp[l], &m->dm[l], m->dc[l].out, B * T, (uint32_t)(5 * l + 4));
        y = m->dm[l].out;
    }
    layernorm_forward(m->lnd, m->lnd_mean, m->lnd_rstd, y, W(m, P, m->lndw), W(m, P, m->lndb),
                      B * T, C);
    linear_forward_by(F(m), m->logits, m->lnd, wte, NULL, B * T, C, V); /* tied */
}

static void s2s_forward(model *base, const float *P, const batch *b, double *row_loss)
{
    s2s *m = (s2s *)base;
    take_rows(m, b);
    m->use_fixed = !b->fast;
    m->drop = b->train && m->dropout > 0.0f;
    m->seed = b->seed;
    m->stream = b->call_stream;
    m->counter = b->call_counter;
    encode(m, P);
    decode(m, P);
    const int B = m->B, T = m->T;
    crossentropy_forward(m->logits, m->row_nats, m->tgt, B, T, m->V);
    int tokens = 0;
    for (int i = 0; i < B * T; i++)
        tokens += m->tgt[i] >= 0;
    m->row_weight = b->train && tokens ? (float)B / (float)tokens : 1.0f;
    for (int j = 0; j < B; j++)
        row_loss[j] = m->row_nats[j] * (double)m->row_weight;
}

/* A hypothesis of the beam: its tokens after begin, and its summed log
 * probability. */
typedef struct {
    int32_t tok[512];
    int n;
    double score;
} hypothesis;

typedef struct {
    double score;
    int from, token;
} candidate;

static int better(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->from != y->from ? x->from - y->from : x->token - y->token;
}

/* Length-normalised score: the mean log probability a token. */
static double per_token(const hypothesis *h) { return h->score / (double)(h->n + 1); }

/* Decoding one position at a time: each layer's self-attention keys and
 * values of the positions so far, per hypothesis, and its cross-attention
 * keys and values of the source, computed once. */
typedef struct {
    int R, S;
    float *k[2], *v[2]; /* [layers, R, L, C], current and next (beam reordering) */
    float *xkv;         /* [layers, S, 2C] */
    float *x, *ln, *mean, *rstd, *qkv, *y, *proj, *h, *g, *att, *lnf, *logits;
} step_cache;

static void cache_free(step_cache *c)
{
    for (int i = 0; i < 2; i++) {
        free(c->k[i]);
        free(c->v[i]);
    }
    free(c->xkv);
    free(c->x);
}

static int cache_init(step_cache *c, const s2s *m, const float *P, int R)
{
    const size_t C = (size_t)m->C, per = (size_t)m->layers * R * m->L * C;
    memset(c, 0, sizeof *c);
    c->R = R;
    c->S = m->S;
    for (int i = 0; i < 2; i++) {
        c->k[i] = malloc(per * sizeof(float));
        c->v[i] = malloc(per * sizeof(float));
    }
    c->xkv = malloc((size_t)m->layers * m->S * 2 * C * sizeof(float));
    /* one block for the step's rows: x ln mean rstd qkv y proj h g att lnf logits */
    const size_t r = (size_t)R;
    c->x = malloc((r * (16 * C + 2) + (size_t)m->NH * m->L + r * m->V) * sizeof(float));
    if (!c->k[0] || !c->k[1] || !c->v[0] || !c->v[1] || !c->xkv || !c->x) {
        cache_free(c);
        return -1;
    }
    c->ln = c->x + r * C;
    c->mean = c->ln + r * C;
    c->rstd = c->mean + r;
    c->qkv = c->rstd + r;
    c->y = c->qkv + 3 * r * C;
    c->proj = c->y + r * C;
    c->h = c->proj + r * C;
    c->g = c->h + 4 * r * C;
    c->lnf = c->g + 4 * r * C;
    c->att = c->lnf + r * C;
    c->logits = c->att + (size_t)m->NH * m->L;
    for (int l = 0; l < m->layers; l++) /* the encoder ran for one row: m->enc [S, C] */
        linear_forward_by(F(m), c->xkv + (size_t)l * m->S * 2 * C, m->enc,
                          W(m, P, m->dcross[l].kvw), W(m, P, m->dcross[l].kvb), m->S, m->C,
                          2 * m->C);
    return 0;
}

static void add_in(float *x, const float *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += d[i];
}

/* Logits [R, V] of the next token for R hypotheses whose token at position
 * t is tok[r]; their keys and values of positions < t are in the cache. */
static void step_logits(s2s *m, const float *P, step_cache *c, const int32_t *tok, int R, int t)
{
    const int C = m->C, L = m->L, NH = m->NH;
    const size_t n = (size_t)R * C;
    const float *wte = W(m, P, m->wte), *wpe = W(m, P, m->wpe_dec);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < C; i++)
            c->x[(size_t)r * C + i] = wte[(size_t)tok[r] * C + i] + wpe[(size_t)t * C + i];
    for (int l = 0; l < m->layers; l++) {
        const attn_idx *a = &m->dattn[l];
        const cross_idx *x = &m->dcross[l];
        const mlp_idx *f = &m->dmlp[l];
        float *kc = c->k[0] + (size_t)l * c->R * L * C, *vc = c->v[0] + (size_t)l * c->R * L * C;
        layernorm_forward(c->ln, c->mean, c->rstd, c->x, W(m, P, a->lnw), W(m, P, a->lnb), R, C);
        linear_forward_by(F(m), c->qkv, c->ln, W(m, P, a->qkvw), W(m, P, a->qkvb), R, C, 3 * C);
        for (int r = 0; r < R; r++) {
            float *kr = kc + ((size_t)r * L + t) * C, *vr = vc + ((size_t)r * L + t) * C;
            memcpy(kr, c->qkv + (size_t)r * 3 * C + C, (size_t)C * sizeof *kr);
            memcpy(vr, c->qkv + (size_t)r * 3 * C + 2 * C, (size_t)C * sizeof *vr);
            mha_forward(c->y + (size_t)r * C, c->att, c->qkv + (size_t)r * 3 * C, 3 * C,
                        kc + (size_t)r * L * C, C, vc + (size_t)r * L * C, C, NULL, 0, 1, 1, t + 1,
                        C, NH, HT(m));
        }
        linear_forward_by(F(m), c->proj, c->y, W(m, P, a->projw), W(m, P, a->projb), R, C, C);
        add_in(c->x, c->proj, n);
        layernorm_forward(c->ln, c->mean, c->rstd, c->x, W(m, P, x->lnw), W(m, P, x->lnb), R, C);
        linear_forward_by(F(m), c->qkv, c->ln, W(m, P, x->qw), W(m, P, x->qb), R, C, C);
        const float *kv = c->xkv + (size_t)l * c->S * 2 * C;
        for (int r = 0; r < R; r++)
            mha_forward(c->y + (size_t)r * C, c->att, c->qkv + (size_t)r * C, C, kv, 2 * C, kv + C,
                        2 * C, NULL, 0, 1, 1, c->S, C, NH, HT(m));
        linear_forward_by(F(m), c->proj, c->y, W(m, P, x->projw), W(m, P, x->projb), R, C, C);
        add_in(c->x, c->proj, n);
        layernorm_forward(c->ln, c->mean, c->rstd, c->x, W(m, P, f->lnw), W(m, P, f->lnb), R, C);
        linear_forward_by(F(m), c->h, c->ln, W(m, P, f->fcw), W(m, P, f->fcb), R, C, 4 * C);
        gelu_forward(c->g, c->h, 4 * n);
        linear_forward_by(F(m), c->proj, c->g, W(m, P, f->projw), W(m, P, f->projb), R, 4 * C, C);
        add_in(c->x, c->proj, n);
    }
    layernorm_forward(c->lnf, c->mean, c->rstd, c->x, W(m, P, m->lndw), W(m, P, m->lndb), R, C);
    linear_forward_by(F(m), c->logits, c->lnf, wte, NULL, R, C, m->V);
}

/* Hypothesis k of the next step continues hypothesis `from`: its cached
 * positions 0 .. t copied into row k of the next cache. */
static void cache_take(const s2s *m, step_cache *c, int k, int from, int t)
{
    const size_t C = (size_t)m->C, L = (size_t)m->L, len = (size_t)(t + 1) * C;
    for (int l = 0; l < m->layers; l++) {
        const size_t base = (size_t)l * c->R * L * C;
        memcpy(c->k[1] + base + k * L * C, c->k[0] + base + from * L * C, len * sizeof(float));
        memcpy(c->v[1] + base + k * L * C, c->v[0] + base + from * L * C, len * sizeof(float));
    }
}

/* Beam search (beam 1: greedy), the encoder run once, the decoder one
 * position at a time over the live hypotheses with their key/value caches.
 * A hypothesis ends with the end token; the search stops when the beam has
 * as many ended ones, or at max tokens; the best by mean log probability a
 * token wins. */
static int s2s_translate(model *base, const float *P, const int32_t *src, int n, int beam,
                         int32_t *out, int max)
{
    s2s *m = (s2s *)base;
    const int L = m->L, V = m->V, end = V - 2, bos = V - 3;
    beam = beam < 1 ? 1 : beam > 64 ? 64 : beam;
    n = n < L - 1 ? n : L - 1;
    max = max < L ? max : L;
    max = max < 511 ? max : 511;
    m->use_fixed = 1;
    m->drop = 0;
    m->B = 1;
    m->S = n + 1;
    memcpy(m->src, src, (size_t)n * sizeof *src);
    m->src[n] = end;
    m->slen[0] = n + 1;
    encode(m, P);
    step_cache c;
    hypothesis *live = calloc((size_t)beam, sizeof *live),
               *next = calloc((size_t)beam, sizeof *next);
    hypothesis *done = calloc((size_t)beam, sizeof *done);
    candidate *cand = malloc((size_t)beam * beam * sizeof *cand);
    float *lp = malloc((size_t)V * sizeof *lp);
    int32_t *tok = malloc((size_t)beam * sizeof *tok);
    if (!live || !next || !done || !cand || !lp || !tok || cache_init(&c, m, P, beam) != 0) {
        fprintf(stderr, "trainer: out of memory for the beam\n");
        free(live), free(next), free(done), free(cand), free(lp), free(tok);
        return 0;
    }
    int nlive = 1, ndone = 0;
    for (int t = 0; t < max && nlive > 0 && ndone < beam; t++) {
        for (int r = 0; r < nlive; r++)
            tok[r] = t == 0 ? bos : live[r].tok[t - 1];
        step_logits(m, P, &c, tok, nlive, t);
        int nc = 0;
        for (int r = 0; r < nlive; r++) {
            const float *row = c.logits + (size_t)r * V;
            float mx = row[0];
            for (int v = 1; v < V; v++)
                mx = row[v] > mx ? row[v] : mx;
            double sum = 0.0;
            for (int v = 0; v < V; v++)
                sum += exp_d((double)row[v] - mx);
            const double lse = mx + log_d(sum);
            for (int v = 0; v < V; v++)
                lp[v] = (float)(row[v] - lse);
            lp[bos] = lp[V - 1] = -INFINITY; /* never begin or padding */
            for (int k = 0; k < beam; k++) { /* this hypothesis's best tokens */
                int best = 0;
                for (int v = 1; v < V; v++)
                    best = lp[v] > lp[best] ? v : best;
                cand[nc++] = (candidate){live[r].score + lp[best], r, best};
                lp[best] = -INFINITY;
            }
        }
        qsort(cand, (size_t)nc, sizeof *cand, better);
        int nnext = 0;
        for (int k = 0; k < nc && nnext < beam && ndone < beam; k++) {
            const hypothesis *h = &live[cand[k].from];
            const int ends = cand[k].token == end || t + 1 == max;
            if (!ends)
                cache_take(m, &c, nnext, cand[k].from, t);
            hypothesis *g = ends ? &done[ndone++] : &next[nnext++];
            *g = *h;
            g->score = cand[k].score;
            if (cand[k].token != end)
                g->tok[g->n++] = cand[k].token;
        }
        hypothesis *swap = live;
        live = next;
        next = swap;
        nlive = nnext;
        float *k = c.k[0], *v = c.v[0]; /* the next cache becomes the current one */
        c.k[0] = c.k[1];
        c.v[0] = c.v[1];
        c.k[1] = k;
        c.v[1] = v;
    }
    const hypothesis *best = NULL;
    for (int k = 0; k < ndone; k++)
        if (!best || per_token(&done[k]) > per_token(best))
            best = &done[k];
    for (int k = 0; k < nlive && !best; k++)
        best = &live[k];
    const int len = best ? best->n : 0;
    if (best)
        memcpy(out, best->tok, (size_t)len * sizeof *out);
    cache_free(&c);
    free(live), free(next), free(done), free(cand), free(lp), free(tok);
    return len;
}

static void s2s_backward(model *base, const float *P, float *Gr, const batch *b, float scale)
{
    s2s *m = (s2s *)base;
    (void)b;
    const int B = m->B, S = m->S, T = m->T, C = m->C, V = m->V;
    memset(m->dbuf, 0, m->nbuf * sizeof(float));
    float *dlogits = D(m, m->logits);
    crossentropy_backward(dlogits, m->logits, m->tgt, B * T, V, scale * m->row_weight);
    const float *wte = W(m, P, m->wte);
    linear_backward_input_by(F(m), D(m, m->lnd), dlogits, wte, B * T, C, V);
    linear_backward_params_by(F(m), G(m, Gr, m->wte), NULL, dlogits, m->lnd, B * T, C, V);
    const int last = m->layers - 1;
    const float *y = m->layers ? m->dm[last].out : m->xdec;
    layernorm_backward(D(m, y), G(m, Gr, m->lndw), G(m, Gr, m->lndb), D(m, m->lnd), y,
                       W(m, P, m->lndw), m->lnd_mean, m->lnd_rstd, B * T, C);
    for (int l = last; l >= 0; l--) {
        const float *in = l ? m->dm[l - 1].out : m->xdec;
        mlp_backward(m, P, Gr, &m->dmlp[l], &m->dm[l], m->dc[l].out, B * T);
        cross_backward(m, P, Gr, &m->dcross[l], &m->dc[l], m->da[l].out);
        attn_backward(m, P, Gr, &m->dattn[l], &m->da[l], in, B, T, NULL, 1);
    }
    embedding_backward(G(m, Gr, m->wte), G(m, Gr, m->wpe_dec), D(m, m->xdec), m->din, B, T, C);
    const float *x = m->layers ? m->em[last].out : m->xenc;
    layernorm_backward(D(m, x), G(m, Gr, m->lnew), G(m, Gr, m->lneb), D(m, m->enc), x,
                       W(m, P, m->lnew), m->enc_mean, m->enc_rstd, B * S, C);
    for (int l = last; l >= 0; l--) {
        const float *in = l ? m->em[l - 1].out : m->xenc;
        mlp_backward(m, P, Gr, &m->emlp[l], &m->em[l], m->ea[l].out, B * S);
        attn_backward(m, P, Gr, &m->eattn[l], &m->ea[l], in, B, S, m->slen, 0);
    }
    embedding_backward(G(m, Gr, m->wte), G(m, Gr, m->wpe_enc), D(m, m->xenc), m->src, B, S, C);
}

void seq2seq_next_logits(model *base, const float *P, const int32_t *src, int n,
                         const int32_t *prefix, int t, float *logits)
{
    s2s *m = (s2s *)base;
    const int V = m->V;
    m->use_fixed = 1;
    m->drop = 0;
    m->B = 1;
    m->S = n + 1;
    memcpy(m->src, src, (size_t)n * sizeof *src);
    m->src[n] = V - 2;
    m->slen[0] = n + 1;
    encode(m, P);
    m->T = t + 1;
    m->din[0] = V - 3;
    memcpy(m->din + 1, prefix, (size_t)t * sizeof *prefix);
    decode(m, P);
    memcpy(logits, m->logits + (size_t)t * V, (size_t)V * sizeof *logits);
}

/* The model interface. */

static const opt_spec SEQ2SEQ_OPTS[] = {
    OPT(seq2seq_opts, layers, "layers", OPT_INT, "3", CMD_TRAIN, 1, MAX_LAYERS,
        "encoder blocks, and as many decoder blocks"),
    OPT(seq2seq_opts, heads, "heads", OPT_INT, "4", CMD_TRAIN, 1, 64, "attention heads"),
    OPT(seq2seq_opts, dim, "dim", OPT_INT, "256", CMD_TRAIN, 1, 8192,
        "width (the MLPs are 4 times as wide)"),
    OPT(seq2seq_opts, dropout, "dropout", OPT_DOUBLE, "0.1", CMD_TRAIN, 0, 0.9,
        "dropout on every residual branch in training"),
};

static const char *const SEQ2SEQ_DEFAULTS[][2] = {
    {"data", "data/kjv-es"}, {"batch", "64"}, {"lanes", "8"},         {"lr", "1e-3"},
    {"warmup", "200"},       {"min-lr-frac", "0.1"}, {"grad-clip", "1"}, {"weight-decay", "0.01"},
};

static int s2s_check(config *c, int loud)
{
    const seq2seq_opts *o = MODEL_OPTS(c, const seq2seq_opts);
    if (o->dim % o->heads) {
        if (loud)
            fprintf(stderr, "trainer: --dim %d is not a multiple of --heads %d\n", o->dim,
                    o->heads);
        return -1;
    }
    return 0;
}

model *seq2seq_new(int V, int L, int C, int layers, int NH, float dropout, int max_rows)
{
    s2s *m = malloc(sizeof *m);
    if (!m || s2s_build(m, V, L, C, layers, NH, dropout, max_rows) != 0) {
        free(m);
        return NULL;
    }
    return &m->base;
}

static model *s2s_create(const config *c, const data_shape *shape, int max_rows)
{
    const seq2seq_opts *o = MODEL_OPTS(c, const seq2seq_opts);
    return seq2seq_new(shape->vocab, shape->T / 2, o->dim, o->layers, o->heads,
                       (float)o->dropout, max_rows);
}

static void s2s_destroy(model *base)
{
    s2s_free((s2s *)base);
    free(base);
}

const model_type seq2seq_model = {
    .name = "seq2seq",
    .summary = "encoder-decoder Transformer (cross-attention) on sentence pairs",
    .task = &pairs_task,
    .loss_name = "loss",
    .opts = OPT_GROUP(SEQ2SEQ_OPTS, seq2seq_opts),
    .defaults = SEQ2SEQ_DEFAULTS,
    .ndefaults = (int)(sizeof SEQ2SEQ_DEFAULTS / sizeof SEQ2SEQ_DEFAULTS[0]),
    .check = s2s_check,
    .create = s2s_create,
    .destroy = s2s_destroy,
    .init = s2s_init,
    .forward = s2s_forward,
    .backward = s2s_backward,
    .translate = s2s_translate,
};
