/* Encoder-decoder Transformer (Vaswani et al., 2017; PyTorch's
 * nn.Transformer with pre-LayerNorm blocks) for the pairs task:
 *
 *   encoder: token + learned position embeddings of the source, layers
 *            blocks of [LN, self-attention over the source's real tokens
 *            (padding masked), residual; LN, GELU MLP of width 4C,
 *            residual], a final LN;
 *   decoder: token + its own learned positions of the decoder input,
 *            layers blocks of [LN, causal self-attention, residual; LN,
 *            cross-attention (queries from here, keys and values from the
 *            encoder's output, the source's padding masked), residual; LN,
 *            GELU MLP, residual], a final LN, logits through the token
 *            embedding (one table for the encoder's input, the decoder's
 *            input and the output), softmax cross-entropy on the real
 *            target tokens.
 * Dropout on every residual branch in training, its masks drawn per call
 * as the GPT's.
 *
 * A call runs its rows at the lengths of their longest source and target
 * (a lane's rows are the same for any -np, and so are its shapes). In
 * training a row's loss is its summed nats times rows / real target tokens
 * of the call, so that a call's rows add up to rows x its mean per token,
 * and the step's loss is the lanes' mean nats per target token; in
 * evaluation a row's loss is its plain sum. */
#ifndef TRAINER_SEQ2SEQ_H
#define TRAINER_SEQ2SEQ_H

#include "trainer/model.h"

typedef struct {
    int layers, heads, dim;
    double dropout;
} seq2seq_opts;

extern const model_type seq2seq_model;

/* For the tests: a model for V tokens and L positions a side, without a
 * configuration; destroyed through its type. */
model *seq2seq_new(int V, int L, int C, int layers, int NH, float dropout, int max_rows);

/* For the tests: the logits of the token after prefix[0, t) for the
 * source src[0, n), through the whole decoder (no cache). */
void seq2seq_next_logits(model *m, const float *params, const int32_t *src, int n,
                         const int32_t *prefix, int t, float *logits);

#endif
