/* Multi-head causal self-attention over B sequences of T positions.
 *   qkv  [B, T, 3C]: queries, keys, values, head h at columns h*hs.. of each
 *   out  [B, T, C]:  the heads' outputs side by side
 *   att  [B, NH, T, T]: softmax probabilities, exactly 0 above the diagonal
 * Scores are Q K^T / sqrt(hs) by sgemm per sequence and head; position t
 * attends to positions 0..t. The backward pass accumulates into dqkv and
 * uses scratch of T * T floats. */
#ifndef TRAINER_ATTENTION_H
#define TRAINER_ATTENTION_H

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH);

#endif
