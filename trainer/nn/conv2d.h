/* 2-D convolution, stride 1, "same" padding (zeros), a k x k window with k
 * odd (3 x 3 and 1 x 1 in the models to come), channels last:
 *   out[B, H, W, OC] = sum over the window and C of inp[B, H, W, C] .
 *                      weight[OC, k, k, C] + bias[OC]
 * through a matrix product: the window of every output pixel is laid out
 * as a row of cols[B * H * W, k * k * C] (im2col), and the rest is the
 * linear layer's products (linear.h), so the fixed-order path (f, for exact
 * training in the lane tree) holds here too: a pixel's output does not
 * depend on the other pixels or images of the call, and the weight and
 * bias gradients are the lanes' sums in the tree. Backward adds the input's
 * gradient into dinp (cols' gradient scattered back in a fixed order); the
 * parameter gradients are added to without f and written with it, as in
 * linear_backward_params_by. */
#ifndef TRAINER_CONV2D_H
#define TRAINER_CONV2D_H

#include "linear.h"

/* cols: room for B * H * W * k * k * C floats, kept for backward; with f,
 * f->scratch holds B * H * W * (k * k * C + OC) floats. */
void conv2d_forward(const linear_fixed *f, float *out, float *cols, const float *inp,
                    const float *weight, const float *bias, int B, int H, int W, int C, int OC,
                    int k);

/* The forward's cols of inp again, for a backward whose forward's cols
 * were overwritten (a model that keeps one cols buffer for all layers). */
void conv2d_im2col(float *cols, const float *inp, int B, int H, int W, int C, int k);

/* dcols: scratch of the size of cols. */
void conv2d_backward(const linear_fixed *f, float *dinp, float *dweight, float *dbias,
                     float *dcols, const float *dout, const float *cols, const float *weight,
                     int B, int H, int W, int C, int OC, int k);

#endif
