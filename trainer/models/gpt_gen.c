/* GPT generation with a key/value cache.
 *
 * The positions already seen keep their keys and values per layer, so a new
 * token costs one row through the blocks (a few matrix-vector products over
 * the weights) instead of a pass over the whole context. Every product runs
 * through nn/gemm.h, whose row results do not depend on how many rows a call
 * has: the prompt in one call, the tokens one by one, or the whole window
 * again all give each position the same bits, so the text depends on the
 * seed only, never on how it was computed.
 *
 * The positions are learned and absolute: once the context holds maxT
 * tokens, the next token moves every token to a new position, and the
 * window is computed again from its start (one call of maxT rows) at every
 * token, as a model without a cache would. Within the context a token costs
 * one row.
 *
 * The weights are read transposed ([in, out]: a row of out per vector of
 * the product); the copies are made at gen_reset's first logits, so that a
 * sample taken during training sees the parameters of that step. */
#include "gpt.h"

#include "trainer/nn/activation.h"
#include "trainer/nn/exactmath.h"
#include "trainer/nn/gemm.h"
#include "trainer/nn/layernorm.h"
#include "trainer/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gpt_gen {
    int stale;  /* the packed weights must be made again */
    /* the cache holds the keys and values of positions 0 .. cached-1 of the
     * token sequence tok (gen_ctx's start, and maybe draft tokens after
     * it), and row i of logits scores the token after position i */
    int cached;
    int32_t *tok;
    int32_t *seq; /* gpt_gen_ahead's context and draft */
    float
        *wt; /* per block: qkv [C, 3C], proj [C, C], fc [C, 4C], fcproj [4C, C]; then wte [C, V] */
    float *kt;  /* per block and head: keys [hs, maxT] (transposed: a score row is one product) */
    float *v;   /* per block: values [maxT, C] */
    /* rows of the positions being computed, up to maxT */
    float *x, *ln, *mean, *rstd, *qkv, *y, *h, *hg, *out, *p;
    float *logits; /* [maxT, V] */
};

static const float *W(const gpt *m, const float *params, int idx)
{
    return params + m->base.params.v[idx].offset;
}

static size_t packed_size(int OC, int IC);

/* A block's packed weights: qkv, proj, fc, fcproj, each at a fixed offset
 * (dense() below reads them). */
static size_t block_wt(const gpt *m)
{
    const int C = m->C;
    return packed_size(3 * C, C) + packed_size(C, C) + packed_size(4 * C, C) +
           packed_size(C, 4 * C);
}

gpt_gen *gpt_gen_new(const gpt *m)
{
    const size_t C = (size_t)m->C, T = (size_t)m->maxT, L = (size_t)m->L, V = (size_t)m->V;
    gpt_gen *g = xcalloc(1, sizeof *g, "the sampling cache");
    g->wt = xcalloc(L * block_wt(m) + packed_size((int)V, (int)C), sizeof(float),
                    "the sampling cache");
    g->kt = xcalloc(L * C * T, sizeof(float), "the sampling cache");
    g->v = xcalloc(L * T * C, sizeof(float), "the sampling cache");
    g->tok = xcalloc(T, sizeof(int32_t), "the sampling cache");
    g->seq = xcalloc(T, sizeof(int32_t), "the sampling cache");
    /* per row: x, ln, y, out: C; mean, rstd: 1; qkv: 3C; h, hg: 4C; logits: V;
     * the attention weights p: T */
    g->x = xcalloc(T * (15 * C + 2 + V + T), sizeof(float), "the sampling cache");
    g->ln = g->x + T * C;
    g->y = g->ln + T * C;
    g->out = g->y + T * C;
    g->mean = g->out + T * C;
    g->rstd = g->mean + T;
    g->qkv = g->rstd + T;
    g->h = g->qkv + T * 3 * C;
    g->hg = g->h + T * 4 * C;
    g->logits = g->hg + T * 4 * C;
    g->p = g->logits + T * V;
    g->stale = 1;
    return g;
}

void gpt_gen_free(gpt_gen *g)
{
    if (!g)
        return;
    free(g->wt);
    free(g->kt);
    free(g->v);
    free(g->x); /* the rows' block */
    free(g->tok);
    free(g->seq);
    free(g);
}

static size_t off_qkv(const gpt *m) { return 0; }
static size_t off_proj(const gpt *m) { return packed_size(3 * m->C, m->C); }
static size_t off_fc(const gpt *m) { return off_proj(m) + packed_size(m->C, m->C); }
static size_t off_fcproj(const gpt *m) { return off_fc(m) + packed_size(4 * m->C, m->C); }

/* The weights are packed in panels of PANEL output columns: panel q holds
 * [in, PANEL] (the transposed weight's columns q PANEL ..), so that a
 * product streams one contiguous block per panel. */
#define PANEL 32

static size_t panels(int OC) { return (size_t)(OC + PANEL - 1) / PANEL; }

/* Room for a packed [OC, IC] weight. */
static size_t packed_size(int OC, int IC) { return panels(OC) * PANEL * (size_t)IC; }

static void pack(float *restrict dst, const float *restrict w, int OC, int IC)
{
    for (size_t q = 0; q < panels(OC); q++) {
        float *panel = dst + q * PANEL * (size_t)IC;
        for (int j = 0; j < PANEL && (int)q * PANEL + j < OC; j++) {
            const float *row = w + (q * PANEL + (size_t)j) * IC;
            for (int k = 0; k < IC; k++)
                panel[(size_t)k * PANEL + j] = row[k];
        }
    }
}

static void make_weights(const gpt *m, gpt_gen *g, const float *params)
{
    const int C = m->C;
    for (int l = 0; l < m->L; l++) {
        const gpt_block *k = &m->block[l];
        float *w = g->wt + (size_t)l * block_wt(m);
        pack(w + off_qkv(m), W(m, params, k->qkvw), 3 * C, C);
        pack(w + off_proj(m), W(m, params, k->projw), C, C);
        pack(w + off_fc(m), W(m, params, k->fcw), 4 * C, C);
        pack(w + off_fcproj(m), W(m, params, k->fcprojw), C, 4 * C);
    }
    pack(g->wt + (size_t)m->L * block_wt(m), W(m, params, m->wte), m->V, C);
    g->stale = 0;
}

/* out[n, OC] = inp[n, IC] . packed weight + bias (bias NULL: none) */
static void dense(float *out, const float *inp, const float *wt, const float *bias, int n, int IC,
                  int OC)
{
    for (size_t q = 0; q < panels(OC); q++) {
        const int cols = OC - (int)q * PANEL < PANEL ? OC - (int)q * PANEL : PANEL;
        gemm_fixed(n, cols, IC, inp, IC, 1, wt + q * PANEL * (size_t)IC, PANEL,
                   out + q * PANEL, OC, 0);
    }
    for (int r = 0; bias && r < n; r++)
        for (int o = 0; o < OC; o++)
            out[(size_t)r * OC + o] += bias[o];
}

/* Causal attention of the n rows at positions start .. start+n-1 over the
 * cache, which already holds their keys and values: per head, the scores of
 * all rows in one product, each row's softmax over its own past, and the
 * values weighted in one product (a row's weights past its position are
 * exactly zero, and adding zero products changes no bit: the same as a call
 * for that row alone). */
static void attend(const gpt *m, gpt_gen *g, int l, int start, int n)
{
    const int C = m->C, NH = m->NH, hs = C / NH, T = m->maxT, span = start + n;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int h = 0; h < NH; h++) {
        const float *kt = g->kt + ((size_t)l * NH + h) * hs * T;
        float *p = g->p;
        gemm_fixed(n, span, hs, g->qkv + h * hs, 3 * C, 1, kt, T, p, span, 0);
        for (int r = 0; r < n; r++) {
            float *row = p + (size_t)r * span;
            const int t = start + r; /* attends to positions 0 .. t */
            float mx = -INFINITY;
            for (int u = 0; u <= t; u++) {
                row[u] *= scale;
                mx = row[u] > mx ? row[u] : mx;
            }
            float sum = 0.0f;
            for (int u = 0; u <= t; u++) {
                row[u] = exp_f(row[u] - mx);
                sum += row[u];
            }
            const float inv = 1.0f / sum;
            for (int u = 0; u <= t; u++)
                row[u] *= inv;
            for (int u = t + 1; u < span; u++)
                row[u] = 0.0f;
        }
        gemm_fixed(n, hs, span, p, span, 1, g->v + (size_t)l * T * C + h * hs, C, g->y + h * hs, C,
                   0);
    }
}

/* Positions start .. start+n-1 of g->tok through the blocks, their keys and
 * values into the cache, and their logits. */
static void forward_rows(gpt *m, gpt_gen *g, const float *params, int start, int n)
{
    const int C = m->C, NH = m->NH, hs = C / NH, T = m->maxT;
    const size_t nc = (size_t)n * C;
    const float *wte = W(m, params, m->wte), *wpe = W(m, params, m->wpe);
    for (int r = 0; r < n; r++) {
        const float *te = wte + (size_t)g->tok[start + r] * C, *pe = wpe + (size_t)(start + r) * C;
        for (int i = 0; i < C; i++)
            g->x[(size_t)r * C + i] = te[i] + pe[i];
    }
    for (int l = 0; l < m->L; l++) {
        const gpt_block *k = &m->block[l];
        const float *w = g->wt + (size_t)l * block_wt(m);
        layernorm_forward(g->ln, g->mean, g->rstd, g->x, W(m, params, k->ln1w),
                          W(m, params, k->ln1b), n, C);
        dense(g->qkv, g->ln, w + off_qkv(m), W(m, params, k->qkvb), n, C, 3 * C);
        for (int r = 0; r < n; r++) {
            const int t = start + r;
            const float *key = g->qkv + (size_t)r * 3 * C + C, *val = key + C;
            for (int h = 0; h < NH; h++)
                for (int d = 0; d < hs; d++)
                    g->kt[(((size_t)l * NH + h) * hs + d) * T + t] = key[h * hs + d];
            memcpy(g->v + ((size_t)l * T + t) * C, val, (size_t)C * sizeof(float));
        }
        attend(m, g, l, start, n);
        dense(g->out, g->y, w + off_proj(m), W(m, params, k->projb), n, C, C);
        for (size_t i = 0; i < nc; i++)
            g->x[i] = g->x[i] + g->out[i];
        layernorm_forward(g->ln, g->mean, g->rstd, g->x, W(m, params, k->ln2w),
                          W(m, params, k->ln2b), n, C);
        dense(g->h, g->ln, w + off_fc(m), W(m, params, k->fcb), n, C, 4 * C);
        gelu_forward(g->hg, g->h, (size_t)n * 4 * C);
        dense(g->out, g->hg, w + off_fcproj(m), W(m, params, k->fcprojb), n, 4 * C, C);
        for (size_t i = 0; i < nc; i++)
            g->x[i] = g->x[i] + g->out[i];
    }
    layernorm_forward(g->ln, g->mean, g->rstd, g->x, W(m, params, m->lnfw), W(m, params, m->lnfb),
                      n, C);
    dense(g->logits + (size_t)start * m->V, g->ln, g->wt + (size_t)m->L * block_wt(m), NULL, n, C,
          m->V);
}

/* The cache made to hold the n tokens seq (n <= maxT): the positions it
 * already holds with the same tokens before them are kept. */
static void cover(gpt *m, const float *params, const int32_t *seq, int n)
{
    gpt_gen *g = m->gen;
    if (g->stale)
        make_weights(m, g, params);
    int same = 0;
    while (same < n && same < g->cached && g->tok[same] == seq[same])
        same++;
    if (same == n)
        return;
    memcpy(g->tok + same, seq + same, (size_t)(n - same) * sizeof *seq);
    forward_rows(m, g, params, same, n - same);
    g->cached = n;
}

void gpt_gen_start(gpt *m)
{
    m->gen_len = 0;
    m->gen->cached = 0;
    m->gen->stale = 1;
}

void gpt_gen_append(gpt *m, int token)
{
    if (m->gen_len == m->maxT) { /* every position moves: the cache is void */
        memmove(m->gen_ctx, m->gen_ctx + 1, (size_t)(m->maxT - 1) * sizeof *m->gen_ctx);
        m->gen_len--;
        m->gen->cached = 0;
    }
    m->gen_ctx[m->gen_len++] = token;
}

const float *gpt_gen_next(gpt *m, const float *params)
{
    cover(m, params, m->gen_ctx, m->gen_len);
    return m->gen->logits + (size_t)(m->gen_len - 1) * m->V;
}

int gpt_gen_ahead(gpt *m, const float *params, const int32_t *draft, int k, const float **logits)
{
    gpt_gen *g = m->gen;
    k = k < m->maxT - m->gen_len ? k : m->maxT - m->gen_len;
    memcpy(g->seq, m->gen_ctx, (size_t)m->gen_len * sizeof *g->seq);
    memcpy(g->seq + m->gen_len, draft, (size_t)k * sizeof *g->seq);
    cover(m, params, g->seq, m->gen_len + k);
    *logits = g->logits + (size_t)(m->gen_len - 1) * m->V;
    return k;
}
