/* Multi-head attention, scores Q K^T / sqrt(hs) per sequence and
 * head, softmax over the keys a query may see, then P V.
 *
 * mha_*: Tq queries over Tk keys per sequence, the rows of q, k and v at
 * strides qs, ks and vs (head h at columns h*hs..), out [B, Tq, C] the heads
 * side by side, att [B, NH, Tq, Tk] the probabilities. A query sees key u
 * when u < klen[b] (klen NULL: all Tk; the rest is padding) and, with
 * causal, u <= its own position; a key it does not see gets exactly 0.
 * Encoder self-attention over padded sources: klen, not causal; decoder
 * self-attention: causal; cross-attention: q from the decoder, k and v from
 * the encoder's output, klen the sources' lengths. The backward pass adds
 * into dq, dk and dv and uses scratch of Tq * Tk floats.
 *
 * fixed NULL: the products through OpenBLAS (fast mode; its bits depend on
 * the kernel). Otherwise the fixed-order products of gemm.h (the scale
 * applied after the product), with fixed as room for hs * Tk floats: the
 * same bits on every CPU, for any number of sequences in the call.
 *
 * attention_*: the causal self-attention of one qkv [B, T, 3C] buffer
 * (queries, keys, values side by side), as the GPT uses it. */
#ifndef TRAINER_ATTENTION_H
#define TRAINER_ATTENTION_H

void mha_forward(float *out, float *att, const float *q, int qs, const float *k, int ks,
                 const float *v, int vs, const int *klen, int causal, int B, int Tq, int Tk,
                 int C, int NH, float *fixed);
void mha_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                  const float *q, int qs, const float *k, int ks, const float *v, int vs,
                  const float *att, const int *klen, int causal, int B, int Tq, int Tk, int C,
                  int NH, float *fixed);

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                       float *fixed);
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH, float *fixed);

#endif
