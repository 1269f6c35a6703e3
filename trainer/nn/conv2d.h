/* 2-D convolution, stride 1, "same" padding (zeros), a k x k window with k
 * odd (3 x 3 and 1 x 1 in the models), channels last:
 *   out[B, H, W, OC] = sum over the window and C of inp[B, H, W, C] .
 *                      weight[OC, k, k, C] + bias[OC]
 * through a matrix product: the window of every output pixel is laid out
 * as a row of cols[B * H * W, k * k * C] (im2col), and the rest is the
 * linear layer's products (linear.h), so the fixed-order path (f, for exact
 * training in the lane tree) holds here too: a pixel's output does not
 * depend on the other pixels or images of the call, and the weight and
 * bias gradients are the lanes' sums in the tree. With f and few output
 * channels the windows are laid out transposed instead (a window per
 * column), so that the product runs along the pixels: the same chain of
 * multiply-adds per output, so the same bits.
 *
 * Backward adds the input's gradient into dinp (cols' gradient scattered
 * back in a fixed order); the parameter gradients are added to without f
 * and written with it, as in linear_backward_params_by. */
#ifndef TRAINER_CONV2D_H
#define TRAINER_CONV2D_H

#include "linear.h"

#include <stddef.h>

/* The calls run image by image. cols: scratch for H * W * k * k * C
 * floats (one image's windows); with f, f->scratch holds
 * conv2d_scratch_floats(f->nseg, ...) floats. */
size_t conv2d_scratch_floats(int nseg, int H, int W, int C, int OC, int k);

void conv2d_forward(const linear_fixed *f, float *out, float *cols, const float *inp,
                    const float *weight, const float *bias, int B, int H, int W, int C, int OC,
                    int k);

/* inp: the forward's input (its windows are laid out again in cols);
 * cols and dcols: scratch of H * W * k * k * C floats each. With f the
 * images are nseg equal segments (lanes), and B a multiple of nseg. */
void conv2d_backward(const linear_fixed *f, float *dinp, float *dweight, float *dbias,
                     float *cols, float *dcols, const float *dout, const float *inp,
                     const float *weight, int B, int H, int W, int C, int OC, int k);

#endif
