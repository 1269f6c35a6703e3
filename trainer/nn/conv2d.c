#include "conv2d.h"

#include "gemm.h"

#include <cblas.h>

#include <string.h>

/* Fewer output channels than this: the fixed-order forward runs along the
 * pixels (conv2d.h). */
#define FEW_OUTPUTS 16

/* n floats; the small counts of few channels as fixed-size moves (a call
 * per tap would cost more than the copy). */
static inline void copy_floats(float *dst, const float *src, int n)
{
    switch (n) {
    case 1: memcpy(dst, src, 1 * sizeof *dst); break;
    case 2: memcpy(dst, src, 2 * sizeof *dst); break;
    case 4: memcpy(dst, src, 4 * sizeof *dst); break;
    case 8: memcpy(dst, src, 8 * sizeof *dst); break;
    default: memcpy(dst, src, (size_t)n * sizeof *dst);
    }
}

/* Row (b, y, x) of cols: the k x k window around the pixel, tap by tap,
 * each tap's C channels, zeros outside the image. */
static void im2col(float *cols, const float *inp, int B, int H, int W, int C, int k)
{
    const int r = k / 2;
    const size_t row = (size_t)k * k * C;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float *dst = cols + (((size_t)b * H + y) * W + x) * row;
                for (int dy = -r; dy <= r; dy++) {
                    const int yy = y + dy;
                    const float *src = inp + ((size_t)b * H + yy) * W * C;
                    if (yy < 0 || yy >= H) {
                        memset(dst, 0, (size_t)k * C * sizeof *dst);
                        dst += (size_t)k * C;
                        continue;
                    }
                    if (x - r >= 0 && x + r < W) { /* the k taps of a row are adjacent */
                        memcpy(dst, src + (size_t)(x - r) * C, (size_t)k * C * sizeof *dst);
                        dst += (size_t)k * C;
                        continue;
                    }
                    for (int dx = -r; dx <= r; dx++, dst += C) {
                        const int xx = x + dx;
                        if (xx < 0 || xx >= W)
                            memset(dst, 0, (size_t)C * sizeof *dst);
                        else
                            copy_floats(dst, src + (size_t)xx * C, C);
                    }
                }
            }
}

/* cols transposed, for one image: colsT[k * k * C, H * W], a window per
 * column, from the image transposed (inpT[C, H * W]): each row of colsT is
 * rows of a channel shifted, copied whole. */
static void im2col_t(float *colsT, const float *inpT, int H, int W, int C, int k)
{
    const int r = k / 2;
    const size_t HW = (size_t)H * W;
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            const int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? W - dx : W;
            for (int c = 0; c < C; c++) {
                float *dst = colsT + ((size_t)((dy + r) * k + dx + r) * C + c) * HW;
                for (int y = 0; y < H; y++, dst += W) {
                    const int yy = y + dy;
                    if (yy < 0 || yy >= H || x1 <= x0) {
                        memset(dst, 0, (size_t)W * sizeof *dst);
                        continue;
                    }
                    const float *src = inpT + (size_t)c * HW + (size_t)yy * W + dx;
                    for (int x = 0; x < x0; x++)
                        dst[x] = 0.0f;
                    memcpy(dst + x0, src + x0, (size_t)(x1 - x0) * sizeof *dst);
                    for (int x = x1; x < W; x++)
                        dst[x] = 0.0f;
                }
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

size_t conv2d_scratch_floats(int nseg, int H, int W, int C, int OC, int k)
{
    const size_t K = (size_t)k * k * C, HW = (size_t)H * W;
    const size_t per_image = HW * (K + OC), segments = (size_t)nseg * (OC * K + OC);
    return per_image > segments ? per_image : segments;
}

/* Image by image, so that an image's windows stay in the cache. */
void conv2d_forward(const linear_fixed *f, float *out, float *cols, const float *inp,
                    const float *weight, const float *bias, int B, int H, int W, int C, int OC,
                    int k)
{
    const int HW = H * W, K = k * k * C;
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * HW * C;
        float *y = out + (size_t)b * HW * OC;
        if (!f || OC >= FEW_OUTPUTS) {
            im2col(cols, x, 1, H, W, C, k);
            linear_forward_by(f, y, cols, weight, bias, HW, K, OC);
            continue;
        }
        float *outT = f->scratch, *inpT = f->scratch + (size_t)HW * OC;
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                inpT[(size_t)c * HW + p] = x[(size_t)p * C + c];
        im2col_t(cols, inpT, H, W, C, k);
        gemm_fixed(OC, HW, K, weight, K, 1, cols, HW, outT, HW, 0);
        for (int p = 0; p < HW; p++)
            for (int o = 0; o < OC; o++)
                y[(size_t)p * OC + o] = bias ? outT[(size_t)o * HW + p] + bias[o]
                                             : outT[(size_t)o * HW + p];
    }
}

/* The input gradient of one image as a convolution of dout with the
 * flipped kernel, for few outputs and many inputs (less to lay out than
 * cols' gradient): dinp[q, c] += sum over taps t and outputs o of
 * dout[q - offset(t), o] weight[o, t, c], in the order of the windows of
 * dout. work: H W k k OC + k k OC C floats. */
static void input_grad_flipped(const linear_fixed *f, float *dinp, float *work, const float *dy,
                               const float *weight, int H, int W, int C, int OC, int k)
{
    const int HW = H * W, taps = k * k, K = taps * OC;
    float *cols = work, *wflip = work + (size_t)HW * K;
    for (int t = 0; t < taps; t++)
        for (int o = 0; o < OC; o++)
            memcpy(wflip + ((size_t)t * OC + o) * C,
                   weight + ((size_t)o * taps + (taps - 1 - t)) * C, (size_t)C * sizeof *wflip);
    im2col(cols, dy, 1, H, W, OC, k);
    if (f)
        gemm_fixed(HW, C, K, cols, K, 1, wflip, C, dinp, C, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, HW, C, K, 1.0f, cols, K, wflip, C,
                    1.0f, dinp, C);
}

/* With f: each segment's parameter gradient is its images' products added
 * image by image, and the segments are added in gemm.h's tree (positions
 * 2j and 2j + 1 first), so a lane's share has the same bits in any call. */
void conv2d_backward(const linear_fixed *f, float *dinp, float *dweight, float *dbias,
                     float *cols, float *dcols, const float *dout, const float *inp,
                     const float *weight, int B, int H, int W, int C, int OC, int k)
{
    static const float one = 1.0f;
    const int HW = H * W, K = k * k * C, nseg = f ? f->nseg : 1;
    const size_t per_seg = (size_t)OC * K + OC;
    for (int b = 0; b < B; b++) {
        const float *dy = dout + (size_t)b * HW * OC;
        im2col(cols, inp + (size_t)b * HW * C, 1, H, W, C, k);
        float *dx = dinp + (size_t)b * HW * C;
        if (f) {
            const int s = b / (B / nseg), first = b % (B / nseg) == 0;
            float *dw = f->scratch + (size_t)s * per_seg, *db = dw + (size_t)OC * K;
            gemm_fixed(OC, K, HW, dy, 1, OC, cols, K, dw, K, !first);
            gemm_fixed(OC, 1, HW, dy, 1, OC, &one, 0, db, 1, !first);
        } else {
            linear_backward_params(dweight, dbias, dy, cols, HW, K, OC, 1);
        }
        if (OC < C && k > 1) {
            input_grad_flipped(f, dx, dcols, dy, weight, H, W, C, OC, k);
            continue;
        }
        if (f) {
            gemm_fixed(HW, K, OC, dy, OC, 1, weight, K, dcols, K, 0);
        } else {
            memset(dcols, 0, (size_t)HW * K * sizeof *dcols);
            linear_backward_input(dcols, dy, weight, HW, K, OC);
        }
        col2im_add(dx, dcols, 1, H, W, C, k);
    }
    if (!f)
        return;
    for (int d = 1; d < nseg; d *= 2)
        for (int s = 0; s + d < nseg; s += 2 * d) {
            float *restrict left = f->scratch + (size_t)s * per_seg;
            const float *restrict right = f->scratch + (size_t)(s + d) * per_seg;
            for (size_t i = 0; i < per_seg; i++)
                left[i] = left[i] + right[i];
        }
    memcpy(dweight, f->scratch, (size_t)OC * K * sizeof *dweight);
    if (dbias)
        memcpy(dbias, f->scratch + (size_t)OC * K, (size_t)OC * sizeof *dbias);
}
