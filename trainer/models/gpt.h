/* Decoder-only Transformer language model over bytes (GPT-2 layout).
 *
 * Token and learned position embeddings; L blocks of pre-LayerNorm causal
 * self-attention and a GELU MLP of width 4C, both residual, with optional
 * dropout on each block's two residual branches; a final LayerNorm; logits
 * through the token embedding (tied); softmax cross-entropy.
 *
 * Shapes: B sequences of T <= maxT positions per call, BT = B * T rows;
 * tokens and targets are [B, T] ids below V. */
#ifndef TRAINER_GPT_H
#define TRAINER_GPT_H

#include "trainer/model.h"
#include "trainer/nn/linear.h"

#include <stdint.h>

/* The GPT's options (config.model_opts); its context is the text task's. */
typedef struct {
    int layers, heads, dim;
    double dropout;
} gpt_opts;

extern const model_type gpt_model;

/* Indices into the parameter table, per block. */
typedef struct {
    int ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
} gpt_block;

/* Where a call's dropout masks come from (see philox.h): NULL = no dropout. */
typedef struct {
    uint32_t seed, stream, counter;
} gpt_noise;

typedef struct {
    model base;
    int V, maxT, C, L, NH, maxB;
    float dropout;
    int wte, wpe, lnfw, lnfb;
    gpt_block *block;
    /* activations for maxB * maxT rows, and their gradients at the same
     * offsets in dbuf */
    float *buf, *dbuf;
    size_t nbuf;
    float *encoded, *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *attproj, *res2, *ln2,
        *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *res3, *mask1, *mask2, *lnf, *lnf_mean,
        *lnf_rstd, *logits;
    float *scratch; /* maxT * maxT */
    /* the products: OpenBLAS (use_fixed 0: fast training; bits per kernel)
     * or the fixed order of nn/gemm.h (exact training, evaluation,
     * generation: the same bits on every CPU); head_t: hs * maxT floats */
    int use_fixed;
    linear_fixed fixed;
    float *head_t;
    int32_t *gen_ctx; /* generation: the last gen_len tokens, at most maxT */
    int gen_len;
    struct gpt_gen *gen; /* generation's cache (gpt_gen.c), made at the first use */
} gpt;

/* gpt_gen.c: generation with a key/value cache. start forgets the context
 * (and the weights of the last sample), append adds a token, next returns
 * the next token's logits [V] (valid until the next call). */
typedef struct gpt_gen gpt_gen;
gpt_gen *gpt_gen_new(const gpt *m);
void gpt_gen_free(gpt_gen *g);
void gpt_gen_start(gpt *m);
void gpt_gen_append(gpt *m, int token);
const float *gpt_gen_next(gpt *m, const float *params);
/* The logits after the context and after each of its first k' <= k draft
 * tokens ((k' + 1) rows of V; k' is less than k where the context has no
 * room), computed in one call: the model's weights are read once for all
 * of them. The context itself does not change. */
int gpt_gen_ahead(gpt *m, const float *params, const int32_t *draft, int k, const float **logits);

int gpt_build(gpt *m, int V, int maxT, int C, int L, int NH, float dropout, int maxB);
void gpt_free(gpt *m);

/* GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, the
 * residual projections scaled by 1 / sqrt(2L), zero biases, unit LayerNorm
 * gains; drawn from the (seed, RNG_INIT) stream. */
void gpt_init(const gpt *m, float *params, uint32_t seed);

/* Forward pass. With targets, the logits become probabilities and
 * seq_loss[b] is the summed cross-entropy (nats) of sequence b; without,
 * m->logits holds the raw logits [BT, V]. */
void gpt_forward(gpt *m, const float *params, const int32_t *tokens, const int32_t *targets,
                 int B, int T, const gpt_noise *noise, double *seq_loss);

/* Backward pass after gpt_forward with targets, for the loss
 * scale * (sum of all positions' cross-entropy); accumulates into grads. */
void gpt_backward(gpt *m, const float *params, float *grads, const int32_t *tokens,
                  const int32_t *targets, int B, int T, float scale);

/* Model FLOPs of training on one token: 6 per parameter plus attention. */
double gpt_flops_per_token(const gpt *m, int T);

#endif
