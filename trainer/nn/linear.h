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

/* The same three through the fixed-order products of gemm.h, for exact
 * training with several lanes in one call: a row's outputs do not depend on
 * how many rows the call has, and the parameter gradients are the sums over
 * nseg equal segments of the rows (the lanes) added in gemm_fixed_tree's
 * tree. scratch holds B * (C + OC) floats (the forward's transposes). The
 * parameter gradients are added to, or written with write set (a call that
 * is a whole step's only contribution: no need to zero them first). */
typedef struct {
    int nseg;
    float *scratch;
    int accumulate; /* the _by functions' parameter gradients: added to, not written */
} linear_fixed;

void linear_forward_fixed(const linear_fixed *f, float *out, const float *inp,
                          const float *weight, const float *bias, int B, int C, int OC);
void linear_backward_input_fixed(float *dinp, const float *dout, const float *weight, int B, int C,
                                 int OC);
void linear_backward_params_fixed(const linear_fixed *f, float *dweight, float *dbias,
                                  const float *dout, const float *inp, int B, int C, int OC,
                                  int write);

/* For models that run either way: the OpenBLAS products when f is NULL,
 * else the fixed-order ones. The parameter gradients are added to without
 * f; with it they are written (a tree call is a whole step's one
 * contribution, model.h's tree_lanes), or added to when f->accumulate is
 * set (the language models, whose backward always adds). */
void linear_forward_by(const linear_fixed *f, float *out, const float *inp, const float *weight,
                       const float *bias, int B, int C, int OC);
void linear_backward_input_by(const linear_fixed *f, float *dinp, const float *dout,
                              const float *weight, int B, int C, int OC);
void linear_backward_params_by(const linear_fixed *f, float *dweight, float *dbias,
                               const float *dout, const float *inp, int B, int C, int OC);

#endif
