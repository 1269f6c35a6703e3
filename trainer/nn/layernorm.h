/* Layer normalisation over the last dimension, rows of C values:
 *   out = (inp - mean) * rstd * weight + bias
 * mean and rstd ([N]) are kept for the backward pass, which accumulates (+=)
 * into dinp, dweight and dbias. */
#ifndef TRAINER_LAYERNORM_H
#define TRAINER_LAYERNORM_H

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C);

#endif
