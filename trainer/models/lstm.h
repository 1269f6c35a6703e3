/* LSTM language model: token embedding -> L LSTM layers (dropout between
 * them) -> a linear output layer over the vocabulary (not tied to the
 * embedding) -> softmax cross-entropy. Full backpropagation through time
 * over each window; the state starts at zero in every window.
 *
 * Shapes: B sequences of T <= maxT positions per call; tokens and targets
 * are [B, T] ids below V. */
#ifndef TRAINER_MODELS_LSTM_H
#define TRAINER_MODELS_LSTM_H

#include "trainer/model.h"
#include "trainer/nn/linear.h"

#include <stdint.h>

#define LSTM_MAX_LAYERS 16

/* The LSTM's options (config.model_opts); its window is the text task's. */
typedef struct {
    int layers, embed, dim;
    double dropout;
} lstm_opts;

extern const model_type lstm_model;

typedef struct {
    model base;
    int V, E, H, L, maxT, maxB;
    float dropout;
    int wte, out_w, out_b, w_ih[LSTM_MAX_LAYERS], w_hh[LSTM_MAX_LAYERS], bias[LSTM_MAX_LAYERS];
    /* activations for maxB * maxT rows, allocated once */
    float *buf;
    float *x0;                         /* [BT, E] embeddings */
    float *in[LSTM_MAX_LAYERS];        /* layer l > 0: its input, h[l-1] after dropout */
    float *mask[LSTM_MAX_LAYERS];      /* layer l > 0: the dropout mask of that input */
    float *h[LSTM_MAX_LAYERS], *c[LSTM_MAX_LAYERS], *tc[LSTM_MAX_LAYERS];
    float *gates[LSTM_MAX_LAYERS];     /* [BT, 4H] */
    float *logits;                     /* [BT, V]: probabilities after a forward with targets */
    float *dlogits, *dh, *dx, *dgates, *hprev, *dc; /* backward scratch */
    float *gen;                        /* generation: h and c per layer, gates, logits */
    float **views;                     /* 3 * maxB: per-segment gradient views */
    /* the products: OpenBLAS (use_fixed 0: fast training; bits per kernel)
     * or the fixed order (exact training, evaluation: the same bits on
     * every CPU; generation always) */
    int use_fixed;
    linear_fixed fixed;
} lstm;

/* Fills m; -1 after a line on failure. */
int lstm_build(lstm *m, int V, int maxT, int E, int H, int L, float dropout, int maxB);
void lstm_free(lstm *m);
/* PyTorch's init, U(-1/sqrt(H), 1/sqrt(H)) for the LSTM and output weights
 * and biases, N(0, 1) embeddings, and the forget gates' biases at 1; from
 * the (seed, RNG_INIT) stream. */
void lstm_init(const lstm *m, float *params, uint32_t seed);
/* Where a call's dropout masks come from: segment s (nseg segments of B /
 * nseg sequences, one per lane) draws from (seed, stream[s], counter). */
typedef struct {
    uint32_t seed, counter;
    const uint32_t *stream;
} lstm_noise;

/* noise NULL: no dropout. */
void lstm_forward(lstm *m, const float *params, const int32_t *tokens, const int32_t *targets,
                  int B, int nseg, int T, const lstm_noise *noise, double *seq_loss);
/* After lstm_forward with targets: adds d(scale * summed loss) of segment s
 * into grads[s]. */
void lstm_backward(lstm *m, const float *params, float *const *grads, const int32_t *tokens,
                   const int32_t *targets, int B, int nseg, int T, float scale);

#endif
