/* A batch: the rows a task fills and a model reads.
 *
 * Which fields are used depends on the task: the image task fills x (and
 * labels), the text task tokens and targets. Every row also says where its
 * random draws come from, so a model that draws per row (the VAE's eps) gets
 * the same numbers whichever rank, thread or call computes the row:
 *   row j: rng_*(seed, key[j].stream, purpose, key[j].a, key[j].b, ...)
 * with purpose RNG_EPS in training and RNG_EVAL in evaluation. Draws made
 * once per call (dropout masks) come from (seed, call_stream, RNG_DROPOUT,
 * call_counter, site); train = 0 (evaluation, sampling) means no dropout. */
#ifndef TRAINER_BATCH_H
#define TRAINER_BATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t stream, a, b;
} rng_key;

typedef struct {
    int rows; /* in use */
    int cap;  /* allocated */
    /* image task: [cap, in] pixels scaled to [0, 1], and class labels */
    size_t in;
    float *x;
    uint8_t *labels;
    /* text task: [cap, T] token ids and the next token of each position */
    int T;
    int32_t *tokens, *targets;
    /* randomness */
    uint32_t seed;
    uint32_t purpose;
    rng_key *key; /* [cap] */
    int train;
    /* fast-mode training: the products through OpenBLAS, whose bits depend
     * on its kernel. 0 (exact training, evaluation, sampling): every
     * product in the fixed order of nn/gemm.h, the same bits on every CPU */
    int fast;
    int phase; /* which loss a model with phases computes (model.h) */
    uint32_t call_stream, call_counter;
    /* rows of several lanes in one call (models with backward_lanes): nseg
     * segments of rows / nseg rows each, segment s drawing its per-call
     * draws from seg_stream[s] instead of call_stream */
    int nseg;
    uint32_t *seg_stream; /* [cap] */
    /* models with tree_lanes, exact training: the nseg segments' gradients
     * are not kept apart but added in the fixed tree of nn/gemm.h (segment
     * positions 2j and 2j+1 first), and every product runs in the fixed
     * order, so that a row's results do not depend on the call's rows */
    int tree;
    /* exact training in the lane tree: a model may call grad_ready(ctx, t)
     * (batch_grad_ready) as soon as tensor t's gradient is final in this
     * call, never to be written again by it, so that the sum over ranks of
     * the finished layers starts while the rest of the backward pass runs
     * (step.c). NULL: nobody asks. */
    void (*grad_ready)(void *ctx, int tensor);
    void *grad_ready_ctx;
    /* evaluation, text task: source bytes the filled rows' targets stand for,
     * and how many targets are the unknown token */
    double text_bytes, unknown;
} batch;

static inline void batch_grad_ready(const batch *b, int tensor)
{
    if (b->grad_ready)
        b->grad_ready(b->grad_ready_ctx, tensor);
}

/* Room for cap rows of in values (images) or T positions (text): a zero size
 * leaves that part out. Ends the job with a line when memory runs out. */
void batch_alloc(batch *b, int cap, size_t in, int T);
void batch_free(batch *b);

#endif
