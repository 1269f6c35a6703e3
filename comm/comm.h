/* Everything that talks MPI. The rest of the program sees ranks as numbers
 * and buffers, never MPI types. */
#ifndef TRAINER_COMM_H
#define TRAINER_COMM_H

#include <stddef.h>
#include <stdint.h>

void comm_init(int *argc, char ***argv);
void comm_finalize(void);
int comm_rank(void);
int comm_size(void);
/* Ranks of this job that share this node (and its cores). */
int comm_local_size(void);

/* Ends every rank at once: the one place that calls MPI_Abort. For failures
 * that cannot wait for the other ranks to reach an agreement point. */
_Noreturn void comm_abort(int status);

/* Agreement point: returns the largest flag over all ranks. Each rank that
 * found a problem has already printed its own line. */
int comm_max_int(int flag);

void comm_barrier(void);
void comm_sum_double(double *buf, size_t n);
void comm_sum_float(float *buf, size_t n);
void comm_max_float(float *buf, size_t n);
void comm_bcast_bytes(void *buf, size_t n, int root);

/* The sum over ranks in a fixed binary tree: ranks r and r + np/2 first,
 * then at np/4, ..., 1, so that rank r's buffer is the subtree of lanes
 * r, r + np, r + 2 np, ... of step.c's lane tree; np must be a power of
 * two. reduce_scatter (recursive halving; tmp holds n floats) leaves the
 * tree's sum in buf[*lo, *hi), this rank's share (the rest of buf is
 * scratch), the same bits on whichever rank; allgather then hands every
 * rank's share of buf to all. The shares' bounds are multiples of align,
 * and the same in both calls for the same n and align. */
void comm_tree_reduce_scatter(float *buf, float *tmp, size_t n, size_t align, size_t *lo,
                              size_t *hi);
void comm_tree_allgather(float *buf, size_t n, size_t align);

/* Sum of lane gradients that does not depend on how lanes are spread over
 * ranks or threads (see allreduce.c). Use per step:
 *     do {
 *         lane_sum_begin(&s);
 *         for each of this rank's lanes, on any of nslots threads:
 *             compute its gradient g; lane_sum_add(&s, slot of the thread, g);
 *     } while (lane_sum_end(&s, out) == LANE_SUM_AGAIN);
 * Each lane's gradient is added as soon as it is computed. Buckets are
 * [off[b], off[b+1]), offsets into the whole gradient (they need not start
 * at 0: a sum may cover a part of the parameters); exps holds each bucket's
 * scale exponent, carried from step to step: it belongs in a checkpoint for
 * an exact resume. */
typedef struct {
    double *acc;       /* n doubles */
    float *bucket_max; /* nbuckets + 1: the last is the overflow flag */
} lane_sum_slot;

typedef struct {
    int nlanes, nbuckets, headroom, nslots;
    const size_t *off;
    int32_t *exps; /* nbuckets */
    lane_sum_slot *slot;
} lane_sum;

enum { LANE_SUM_DONE = 0, LANE_SUM_AGAIN = 1 };

/* Allocates nslots accumulators; returns -1 when out of memory. */
int lane_sum_init(lane_sum *s, int nlanes, const size_t *bucket_off, int nbuckets, int nslots,
                  int32_t *exps);
void lane_sum_free(lane_sum *s);
void lane_sum_begin(lane_sum *s);
/* Threads may call this at once, each with its own slot. */
void lane_sum_add(lane_sum *s, int slot, const float *grad);
/* Collective. LANE_SUM_AGAIN: recompute every lane and add them again.
 * When some lane's gradient held a NaN or an infinity there is no sum: out
 * is NaN in the buckets where one was, 0 in the others. */
int lane_sum_end(lane_sum *s, float *out);

#endif
