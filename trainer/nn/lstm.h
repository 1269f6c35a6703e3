/* One LSTM layer over B sequences of T steps (rows b * T + t), input width
 * In, hidden width H; the state starts at zero for every sequence.
 *   gates = x . Wih^T + bias + h[t-1] . Whh^T, four blocks of H in the
 *           order i, f, g, o (input, forget, cell candidate, output);
 *   i, f, o = sigmoid, g = tanh; c[t] = f c[t-1] + i g; h[t] = o tanh(c[t]).
 * The input projection of the whole window is one sgemm, and each step's
 * recurrent product takes all four gates at once (a loop of our own: see
 * lstm.c).
 *   x [B*T, In], Wih [4H, In], Whh [4H, H], bias [4H];
 *   gates [B*T, 4H] (after their nonlinearities), c, tc = tanh(c), h
 *   [B*T, H]: kept for the backward pass.
 * The B sequences may be nseg segments (lanes) of B / nseg: every product
 * that sums over rows, or whose per-row result OpenBLAS could change with
 * the row count, is done per segment, so each segment's results are
 * bitwise those of a call with that segment alone. The products over the
 * window run as linear.h's _by functions with f (NULL: OpenBLAS; else the
 * fixed order, f->accumulate set: the backward adds). */
#ifndef TRAINER_NN_LSTM_H
#define TRAINER_NN_LSTM_H

#include "linear.h"

/* out[m, n] += a[m, :] . W[n, :] (m < M, n < N, over K), rows of out and a
 * at strides ldo and lda: 16 running sums, a fixed tree over them, then the
 * tail, the same bits at every vector width and for any M. */
void times_wt(float *out, int ldo, const float *a, int lda, const float *W, int M, int N, int K);

void lstm_layer_forward(float *h, float *c, float *tc, float *gates, const float *x,
                        const float *Wih, const float *Whh, const float *bias, int B, int nseg,
                        int T, int In, int H, const linear_fixed *f);

/* Full backpropagation through time over the window. dh [B*T, H] holds the
 * gradient of the loss with respect to h from above and is used as scratch;
 * dgates [B*T, 4H], hprev [B*T, H] and dc [B, H] are scratch. Adds into dx
 * (if not NULL) and, for segment s, into dWih[s], dWhh[s] and dbias[s]. */
void lstm_layer_backward(float *dx, float *const *dWih, float *const *dWhh, float *const *dbias,
                         float *dh, float *dgates, float *hprev, float *dc, const float *x,
                         const float *h, const float *c, const float *tc, const float *gates,
                         const float *Wih, const float *Whh, int B, int nseg, int T, int In,
                         int H, const linear_fixed *f);

/* One step for one sequence, for generation: c and h [H] are updated in
 * place; gates [4H] is scratch. Its products are times_wt's. */
void lstm_layer_step(float *h, float *c, float *gates, const float *x, const float *Wih,
               const float *Whh, const float *bias, int In, int H);

#endif
