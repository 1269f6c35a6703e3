/* The model interface and the registry of models.
 *
 * A model is one file that fills a model_type (as an SQLite virtual table
 * fills sqlite3_module) and one line in the registry (model.c). The training
 * loop, evaluation, checkpoints and the option engine call through this
 * struct and never ask which model they hold.
 *
 * A model owns
 *   - its options: a table over its own options struct, stored in
 *     config.model_opts (MODEL_OPTS below), its help text, the common
 *     options whose defaults it changes, and its checks;
 *   - its parameter table and initialisation;
 *   - forward and backward over a batch of rows, the rows filled by its task
 *     (task.h): the task owns the data side;
 *   - optional hooks: FLOPs per loss unit (for MFU), token-by-token
 *     generation (for sampling).
 *
 * The contract of the passes, for every model:
 *   forward(m, params, b, row_loss): row_loss[j] = the loss of row j in nats,
 *       summed over the row's loss units (1 for an image, T for a window).
 *   backward(m, params, grad, b, scale): right after forward on the same
 *       batch, ADDS d(scale * sum_j row_loss[j]) / d params into grad. The
 *       caller zeroes grad once per step; micro-steps add up. (A model
 *       with tree_lanes WRITES it instead in every call but fast
 *       training's: see tree_lanes.)
 * Every call but fast training's (batch.h's fast) runs every product in the
 * fixed order of nn/gemm.h and every transcendental function of
 * nn/exactmath.h: its bits are the same on every CPU. 
 * An instance holds activations for up to max_rows rows and is used by one
 * thread at a time; parameters live outside it (one flat buffer). */
#ifndef TRAINER_MODEL_H
#define TRAINER_MODEL_H

#include "batch.h"
#include "config.h"
#include "params.h"
#include "task.h"

#include <stdint.h>

#define MAX_PHASES 4
#define MAX_FIGURES 8

typedef struct model_type model_type;

/* The part of every model instance the program sees; a model's own struct
 * embeds it first. */
typedef struct model {
    const model_type *type;
    param_table params;
} model;

struct model_type {
    const char *name;    /* --model NAME */
    const char *summary; /* one line for trainer --help */
    const task_type *task;
    const char *loss_name; /* "negative ELBO", "loss" */
    opt_group opts;
    const char *const (*defaults)[2]; /* common options' defaults for this model */
    int ndefaults;
    /* Checks the model's options against each other and the common ones,
     * and derives what follows from them; one line and -1 on a problem.
     * Optional. */
    int (*check)(config *c, int loud);

    /* Optional: whether the model can be built for data of this shape; one
     * line when loud (rank 0) and -1 when not. Run on every rank before
     * create. */
    int (*check_shape)(const config *c, const data_shape *shape, int loud);
    /* An instance for batches of up to max_rows rows of this data shape;
     * NULL after one line when it cannot be built. */
    model *(*create)(const config *c, const data_shape *shape, int max_rows);
    void (*destroy)(model *m);
    /* Initial parameters, drawn from the (seed, RNG_INIT) stream. */
    void (*init)(const model *m, float *params, uint32_t seed);
    /* Optional: after init, on a run's first start, sets what is taken
     * from data (Glow's actnorm) from a forward pass over b: --batch rows
     * of lane 0's stream from step 0 on, keyed as in training (run.c): the
     * same rows whatever -np, computed once and broadcast. */
    void (*init_from_data)(model *m, float *params, const batch *b);
    void (*forward)(model *m, const float *params, const batch *b, double *row_loss);
    void (*backward)(model *m, const float *params, float *grad, const batch *b, float scale);

    /* Optional: a step in phases (a GAN: the discriminator, then the
     * generator). In phase p the passes compute the gradient of that
     * phase's loss (b->phase) into tensors [first, first + count) of the
     * table only, and the step updates those tensors; the phases run in
     * order, each seeing the parameters the one before left. 0: one phase
     * over every tensor. */
    int phases;
    void (*phase_tensors)(const model *m, int phase, int *first, int *count);
    const char *const *phase_names; /* for the progress line, e.g. {"D", "G"} */

    /* Optional. Rows of several lanes in one call: forward reads b->nseg
     * segments (segment s's per-call draws from b->seg_stream[s]) and
     * backward_lanes adds segment s's gradient into grads[s]; every row and
     * every segment's gradient must come out bitwise as from one call per
     * lane. The exact path then gives each lane thread one call for all its
     * lanes, so that a weight read once serves more rows. */
    void (*backward_lanes)(model *m, const float *params, float *const *grads, const batch *b,
                           float scale);
    /* Optional, instead: the model honours batch.h's tree. The exact path
     * then runs a thread's lanes in one call with one gradient, the lanes
     * placed so that the tree over them is a subtree of the one over all
     * lanes (step.c), and sums threads and ranks on in that tree: no
     * gradient per lane is kept. Used when the lane count is a power of two
     * and there is one micro-step. Such a call is the whole step of the
     * thread, so its backward WRITES every tensor's gradient (of the phase)
     * rather than adding to it: the caller does not zero the buffer. It
     * writes in every other fixed-order call too (one lane at a time where
     * the tree is not used: step.c adds what it wrote). */
    int tree_lanes;

    /* Optional, image models: images [b->rows, in] in [0, 1] made from the
     * rows' own draws (b->key; the sample command). */
    void (*generate_images)(model *m, const float *params, const batch *b, float *out);
    /* Optional: reconstructions [b->rows, in] of the batch's images. */
    void (*reconstruct_images)(model *m, const float *params, const batch *b, float *out);
    /* Optional, classifiers: after forward, how many rows' likeliest class
     * is their label; and the rows' features ([rows, *dim], the layer
     * before the classes: the Frechet score's space). */
    double (*correct)(model *m, const batch *b);
    const float *(*features)(model *m, const float *params, const batch *b, int *dim);

    /* Optional: parts of the loss worth seeing apart (the VAE's
     * reconstruction and KL terms), in nats summed over the rows of the
     * last forward, added into out[0 .. nfigures); for the metrics file. */
    int nfigures;
    const char *const *figure_names;
    void (*figures)(const model *m, double *out);

    /* Optional, density models: values per loss unit (784 for a 28 x 28
     * image), to report the loss in bits per dimension too. */
    double (*dims_per_unit)(const model *m);
    /* Optional, invertible models: the batch's rows to the latent space and
     * back; row_err[j] = row j's largest error relative to its largest
     * value (the eval command reports them). */
    void (*roundtrip)(model *m, const float *params, const batch *b, double *row_err);

    /* Optional, translation models: the target's tokens for src[0, n) (its
     * tokens without the end token) by beam search of width beam (1:
     * greedy), at most max; returns how many (the end token left out). */
    int (*translate)(model *m, const float *params, const int32_t *src, int n, int beam,
                     int32_t *out, int max);

    /* Optional. Training FLOPs per loss unit (an image, a token): MFU. */
    double (*flops_per_unit)(const model *m);
    /* Optional, language models: generation one token at a time. reset
     * forgets the context; push appends a token; logits gives the scores
     * of the next token (vocab values, valid until the next call). */
    void (*gen_reset)(model *m);
    void (*gen_push)(model *m, const float *params, int token);
    const float *(*gen_logits)(model *m, const float *params);
    /* Optional: the scores after the context and after each of the first
     * k' <= k tokens of a guessed continuation, in one call, bitwise as
     * gen_logits would give them one at a time; returns k', *logits points
     * to its k' + 1 rows. Lets sampling check several guessed tokens for
     * the price of one read of the weights; the context does not change. */
    int (*gen_lookahead)(model *m, const float *params, const int32_t *draft, int k,
                         const float **logits);
};

/* The model's options struct inside a built configuration. */
#define MODEL_OPTS(c, type) ((type *)(c)->model_opts)

/* The registry: the built-in models, and any a program adds (the tests add
 * one of their own). Returns -1 after a line when the type is malformed or
 * its name is taken. */
int model_register(const model_type *t);
const model_type *model_find(const char *name);
int model_count(void);
const model_type *model_at(int i);
/* Whether model i is the first of the registry with its task: for going
 * over each task once. */
int model_first_of_task(int i);

#endif
