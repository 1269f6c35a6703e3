/* The invertible layers of Glow (Kingma and Dhariwal, 2018), over images
 * channels last: an activation is [N, C], N = B * H * W pixels of B images.
 * Each layer has a forward, an inverse and a backward, and its
 * log-determinant is known in closed form (per image, see each layer).
 *
 * Gradients follow conv2d.h: input gradients are added to; the parameter
 * gradients are added to without f (OpenBLAS products) and written with f
 * (the fixed order of a tree call: sums over f->nseg equal segments of the
 * pixels, one segment per lane, added in gemm.h's tree). ld is the
 * derivative of the loss with respect to each image's log-determinant
 * (-scale for a loss of -scale log p). A log-determinant's share of a
 * parameter's gradient is added pixel by pixel, inside the sums, so that
 * each segment's sum holds its own images' share: the tree then gives the
 * same bits however the lanes are split between calls. */
#ifndef TRAINER_FLOW_H
#define TRAINER_FLOW_H

#include "linear.h"

#include <stdint.h>

/* out[n] = (with f) or += (without) the sum of the N rows of v[N, n]. */
void sum_rows_by(const linear_fixed *f, float *out, const float *v, int N, int n);

/* Squeeze: [B, H, W, C] -> [B, H/2, W/2, 4C], each 2 x 2 block of pixels
 * into one pixel's channels (block position (dy, dx) at channels
 * (2 dy + dx) C ...). Unsqueeze is its inverse. H and W even. */
void squeeze(float *out, const float *in, int B, int H, int W, int C);
void unsqueeze(float *out, const float *in, int B, int H, int W, int C); /* H, W of out */

/* Actnorm: y = (x + bias) exp(logs), per channel. log-determinant per image:
 * H W sum(logs). */
void actnorm_forward(float *y, const float *x, const float *bias, const float *logs, int N, int C);
void actnorm_inverse(float *x, const float *y, const float *bias, const float *logs, int N, int C);
/* tmp: [N, C] scratch. */
void actnorm_backward(const linear_fixed *f, float *dx, float *dbias, float *dlogs, float *tmp,
                      const float *dy, const float *y, const float *logs, int N, int C, float ld);
/* The data-dependent initialisation: bias = -mean, logs = -log(std + 1e-6)
 * per channel over the N pixels of x (in double, in a fixed order), so that
 * y has zero mean and unit variance on these pixels. */
void actnorm_init(float *bias, float *logs, const float *x, int N, int C);

/* The invertible 1 x 1 convolution in LU form: y = W x per pixel with
 *   W = P L (U + diag(sign exp(logs)))
 * L unit lower triangular (its entries below the diagonal from lower[C, C]),
 * U strictly upper (from upper[C, C]; the other entries of both are unused
 * and get zero gradients), P and sign fixed at initialisation and kept in
 * fixed[2, C]: row i of W is row fixed[i] of L (U + ...), fixed[C + i] is
 * +1 or -1. log-determinant per image: H W sum(logs). */
void invconv_weight(float *w, const float *lower, const float *upper, const float *logs,
                    const float *fixed, int C);
/* The inverse of invconv_weight's W, computed in double (sampling). */
void invconv_inverse_weight(float *winv, const float *lower, const float *upper,
                            const float *logs, const float *fixed, int C);
/* A random rotation in LU form: the LU decomposition with partial pivoting
 * of the Q of a Gaussian matrix's QR, drawn from (seed, stream, RNG_INIT,
 * a): fills lower, upper, logs and fixed. */
void invconv_init(float *lower, float *upper, float *logs, float *fixed, int C, uint32_t seed,
                  uint32_t stream, uint32_t a);
/* y = W x is linear_forward_by(f, y, x, w, NULL, N, C, C). tmp: [N, 3C]. */
void invconv_backward(const linear_fixed *f, float *dx, float *dlower, float *dupper, float *dlogs,
                      float *dfixed, float *tmp, const float *dy, const float *x, const float *w,
                      const float *lower, const float *upper, const float *logs,
                      const float *fixed, int N, int C, float ld);

/* The affine coupling: x = (xa, xb), the first and second C/2 channels;
 * (shift, raw) = NN(xa), NN = conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3
 * (hidden channels in between, the last with 2 (C/2) = C outputs: shift
 * first); scale = sigmoid(raw + 2); y = (xa, (xb + shift) scale).
 * log-determinant per image: the sum of log(scale) over its pixels and
 * channels. */
typedef struct {
    const float *w1, *b1; /* [hidden, 3 * 3 * C/2], [hidden] */
    const float *w2, *b2; /* [hidden, hidden] */
    const float *w3, *b3; /* [C, 3 * 3 * hidden], [C] */
} coupling_params;

typedef struct {
    float *w1, *b1, *w2, *b2, *w3, *b3;
} coupling_grads;

/* What forward keeps for backward: xa [N, C/2], h1 and h2 [N, hidden],
 * o [N, C] (shift and raw). */
typedef struct {
    float *xa, *h1, *h2, *o;
} coupling_acts;

/* Scratch of a call: cols and dcols H * W * 9 * max(C/2, hidden) floats
 * each (conv2d.h: an image at a time), tmp N * (2 hidden + 2 C) floats;
 * f's scratch as conv2d.h and linear.h say for the three products. */
typedef struct {
    const linear_fixed *f;
    float *cols, *dcols, *tmp;
} flow_work;

/* logdet[b] = image b's log-determinant (H W pixels per image). */
void coupling_forward(const flow_work *wk, coupling_acts *a, float *y, double *logdet,
                      const float *x, const coupling_params *p, int B, int H, int W, int C,
                      int hidden);
/* x from y (the network only reads xa = ya): a is scratch here. */
void coupling_inverse(const flow_work *wk, coupling_acts *a, float *x, const float *y,
                      const coupling_params *p, int B, int H, int W, int C, int hidden);
void coupling_backward(const flow_work *wk, const coupling_acts *a, float *dx,
                       const coupling_grads *g, const float *dy, const float *x,
                       const coupling_params *p, int B, int H, int W, int C, int hidden, float ld);

#endif
