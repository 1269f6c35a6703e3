#include "linear.h"

#include "gemm.h"

#include <cblas.h>

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                    int C, int OC)
{
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            out[(long)b * OC + o] = bias ? bias[o] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, C, 1.0f, inp, C, weight, C, 1.0f,
                out, OC);
}

void linear_backward_input(float *dinp, const float *dout, const float *weight, int B, int C,
                           int OC)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
}

void linear_backward_params(float *dweight, float *dbias, const float *dout, const float *inp,
                            int B, int C, int OC, int accumulate)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, B, 1.0f, dout, OC, inp, C,
                accumulate ? 1.0f : 0.0f, dweight, C);
    if (!dbias)
        return;
    if (!accumulate)
        for (int o = 0; o < OC; o++)
            dbias[o] = 0.0f;
    for (int b = 0; b < B; b++) {
        const float *row = dout + (long)b * OC;
        for (int o = 0; o < OC; o++)
            dbias[o] += row[o];
    }
}

/* dst[C, R] = src[R, C]^T, in blocks that stay in the cache. */
static void transpose(float *restrict dst, const float *restrict src, int R, int C)
{
    enum { BLK = 16 };
    for (int r0 = 0; r0 < R; r0 += BLK)
        for (int c0 = 0; c0 < C; c0 += BLK) {
            const int r1 = r0 + BLK < R ? r0 + BLK : R, c1 = c0 + BLK < C ? c0 + BLK : C;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++)
                    dst[(size_t)c * R + r] = src[(size_t)r * C + c];
        }
}

/* Either out^T[OC, B] = weight . inp^T, reading the weight as it is stored
 * and transposing the activations both ways (few rows: the MLPs' lanes), or
 * out = inp . weight^T with the weight transposed (many rows and enough
 * outputs to fill the vector columns: a convolution's pixels). Each output
 * is the same chain of multiply-adds either way. */
void linear_forward_fixed(const linear_fixed *f, float *out, const float *inp,
                          const float *weight, const float *bias, int B, int C, int OC)
{
    if (OC >= 16 && B > OC) {
        float *weight_t = f->scratch;
        transpose(weight_t, weight, OC, C);
        gemm_fixed(B, OC, C, inp, C, 1, weight_t, OC, out, OC, 0);
    } else {
        float *inp_t = f->scratch, *out_t = f->scratch + (size_t)B * C;
        transpose(inp_t, inp, B, C);
        gemm_fixed(OC, B, C, weight, C, 1, inp_t, B, out_t, B, 0);
        transpose(out, out_t, OC, B);
    }
    if (bias)
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++)
                out[(size_t)b * OC + o] += bias[o];
}

void linear_backward_input_fixed(float *dinp, const float *dout, const float *weight, int B, int C,
                                 int OC)
{
    gemm_fixed(B, C, OC, dout, OC, 1, weight, C, dinp, C, 1);
}

void linear_backward_params_fixed(const linear_fixed *f, float *dweight, float *dbias,
                                  const float *dout, const float *inp, int B, int C, int OC,
                                  int write)
{
    static const float one = 1.0f;
    gemm_fixed_tree(OC, C, B, f->nseg, dout, 1, OC, inp, C, dweight, C, !write);
    if (dbias) /* a column of ones: each sum over rows is a chain of adds */
        gemm_fixed_tree(OC, 1, B, f->nseg, dout, 1, OC, &one, 0, dbias, 1, !write);
}

void linear_forward_by(const linear_fixed *f, float *out, const float *inp, const float *weight,
                       const float *bias, int B, int C, int OC)
{
    if (f)
        linear_forward_fixed(f, out, inp, weight, bias, B, C, OC);
    else
        linear_forward(out, inp, weight, bias, B, C, OC);
}

void linear_backward_input_by(const linear_fixed *f, float *dinp, const float *dout,
                              const float *weight, int B, int C, int OC)
{
    if (f)
        linear_backward_input_fixed(dinp, dout, weight, B, C, OC);
    else
        linear_backward_input(dinp, dout, weight, B, C, OC);
}

void linear_backward_params_by(const linear_fixed *f, float *dweight, float *dbias,
                               const float *dout, const float *inp, int B, int C, int OC)
{
    if (f)
        linear_backward_params_fixed(f, dweight, dbias, dout, inp, B, C, OC, !f->accumulate);
    else
        linear_backward_params(dweight, dbias, dout, inp, B, C, OC, 1);
}
