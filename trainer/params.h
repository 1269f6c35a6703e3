/* All parameters of a model live in one contiguous float buffer (and the
 * gradients, and each optimizer moment, in buffers of the same layout), with a
 * table of named views. The names are the checkpoint's dataset names. */
#ifndef TRAINER_PARAMS_H
#define TRAINER_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define PARAMS_MAX 512

typedef struct {
    char name[48];
    int ndim;
    size_t shape[4];
    size_t offset, numel;
    int decay; /* 1 for matrices that take weight decay */
} param_view;

typedef struct {
    param_view v[PARAMS_MAX];
    int n;
    size_t total;
} param_table;

/* Adds a tensor of shape (s0) or (s0, s1); returns its offset. */
size_t params_add(param_table *t, const char *name, int ndim, size_t s0, size_t s1, int decay);

/* A linear layer's NAME.weight [out, in] (with weight decay) and NAME.bias
 * [out]; their indices in *w and *b. */
void params_add_linear(param_table *t, const char *name, int in, int out, int *w, int *b);

/* PyTorch's nn.Linear default for a table of (weight [out, in], bias [out])
 * pairs: U(-1/sqrt(in), 1/sqrt(in)) for both, tensor i drawn from the
 * (seed, RNG_INIT, i) stream. */
void params_init_linear(const param_table *t, float *params, uint32_t seed);

/* Bucket boundaries for the gradient reduction: one bucket per tensor.
 * off must hold t->n + 1 entries. */
void params_bucket_offsets(const param_table *t, size_t *off);

#endif
