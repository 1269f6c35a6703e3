#include "conv2d.h"

#include <string.h>

/* Row (b, y, x) of cols: the k x k window around the pixel, tap by tap,
 * each tap's C channels, zeros outside the image. */
void conv2d_im2col(float *cols, const float *inp, int B, int H, int W, int C, int k)
{
    const int r = k / 2;
    const size_t row = (size_t)k * k * C;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float *dst = cols + (((size_t)b * H + y) * W + x) * row;
                for (int dy = -r; dy <= r; dy++)
                    for (int dx = -r; dx <= r; dx++, dst += C) {
                        const int yy = y + dy, xx = x + dx;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                            memset(dst, 0, (size_t)C * sizeof *dst);
                        else
                            memcpy(dst, inp + (((size_t)b * H + yy) * W + xx) * C,
                                   (size_t)C * sizeof *dst);
                    }
            }
}

/* The transpose of im2col, adding: every tap's gradient into its input
 * pixel, pixels and taps in order (the order is the same for any B). */
static void col2im_add(float *dinp, const float *dcols, int B, int H, int W, int C, int k)
{
    const int r = k / 2;
    const size_t row = (size_t)k * k * C;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *src = dcols + (((size_t)b * H + y) * W + x) * row;
                for (int dy = -r; dy <= r; dy++)
                    for (int dx = -r; dx <= r; dx++, src += C) {
                        const int yy = y + dy, xx = x + dx;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                            continue;
                        float *dst = dinp + (((size_t)b * H + yy) * W + xx) * C;
                        for (int c = 0; c < C; c++)
                            dst[c] += src[c];
                    }
            }
}

void conv2d_forward(const linear_fixed *f, float *out, float *cols, const float *inp,
                    const float *weight, const float *bias, int B, int H, int W, int C, int OC,
                    int k)
{
    conv2d_im2col(cols, inp, B, H, W, C, k);
    linear_forward_by(f, out, cols, weight, bias, B * H * W, k * k * C, OC);
}

void conv2d_backward(const linear_fixed *f, float *dinp, float *dweight, float *dbias,
                     float *dcols, const float *dout, const float *cols, const float *weight,
                     int B, int H, int W, int C, int OC, int k)
{
    const int rows = B * H * W, K = k * k * C;
    linear_backward_params_by(f, dweight, dbias, dout, cols, rows, K, OC);
    memset(dcols, 0, (size_t)rows * K * sizeof *dcols);
    linear_backward_input_by(f, dcols, dout, weight, rows, K, OC);
    col2im_add(dinp, dcols, B, H, W, C, k);
}
