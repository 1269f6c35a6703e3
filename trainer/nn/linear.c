#include "linear.h"

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
