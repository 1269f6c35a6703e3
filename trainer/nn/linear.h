/* Fully connected layer, row-major, weight stored [OC, C] as in llm.c:
 *   out[B, OC] = inp[B, C] . weight[OC, C]^T + bias[OC]
 * The input gradient accumulates (+=): callers zero it. */
#ifndef TRAINER_LINEAR_H
#define TRAINER_LINEAR_H

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                    int C, int OC);

/* dinp[B, C] += dout[B, OC] . weight[OC, C] */
void linear_backward_input(float *dinp, const float *dout, const float *weight, int B, int C,
                           int OC);

/* dweight[OC, C] (+)= dout^T . inp and dbias[OC] (+)= sum over rows of dout:
 * added when accumulate is set, else written (no need to zero them first). */
void linear_backward_params(float *dweight, float *dbias, const float *dout, const float *inp,
                            int B, int C, int OC, int accumulate);

#endif
