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
/* Rank r's block of n elements shared out among the ranks: [*lo, *hi),
 * contiguous, in rank order. */
void comm_block(size_t n, int r, size_t *lo, size_t *hi);
/* The sum over ranks of buf[0, n) in each rank's block (comm_block) only,
 * the rest of buf scratch; n below INT_MAX. */
void comm_reduce_scatter_double(double *buf, size_t n);
/* Every rank's block of buf[0, n) (comm_block) handed to all; n below
 * INT_MAX. */
void comm_allgather_float(float *buf, size_t n);

/* The sum over ranks in a fixed binary tree: ranks r and r + np/2 first,
 * then at np/4, ..., 1, so that rank r's buffer is the subtree of lanes
 * r, r + np, r + 2 np, ... of step.c's lane tree; np must be a power of
 * two. The reduce-scatter (recursive halving, comm_tree_rs below) leaves
 * each rank the tree's sum of its share of each piece of the buffer, the
 * same bits on whichever rank; comm_tree_allgather (recursive doubling)
 * then hands every rank's shares to all: the pieces are [k piece,
 * (k + 1) piece) of buf[0, n) (0 < piece < 2^28), each shared out as a
 * reduce-scatter of it alone would with the same align. */
void comm_tree_allgather(float *buf, size_t n, size_t piece, size_t align);

/* The reduce-scatter in pieces, nonblocking, so that it runs while the
 * backward pass computes the rest of the gradient: a piece [from, to) of
 * buf starts up the tree as soon as it is final on this rank, and is
 * shared out among the ranks on its own, halved at each level (so both
 * directions of every link carry half of each piece). Each element is
 * summed in the same tree with the same additions whatever the pieces: the
 * same bits; only which rank holds which element changes.
 *     comm_tree_rs_begin(s, buf, tmp, n, align);
 *     comm_tree_rs_add(s, id, from, to);   each piece, ids 0, 1, ...
 *     comm_tree_rs_poll(s);                now and then: moves pieces on
 *     comm_tree_rs_end(s);                 waits for all of them
 *     comm_tree_rs_share(s, id, &lo, &hi); this rank's share of a piece
 * Pieces are added in any order, the same ones with the same ids on every
 * rank (ids below COMM_TREE_RS_PIECES), and must cover [0, n) once. A
 * piece's share has bounds that are multiples of align from its start;
 * pieces of one size hand their shares back with comm_tree_allgather. */
enum { COMM_TREE_RS_PIECES = 4096 };
typedef struct comm_tree_rs comm_tree_rs;
comm_tree_rs *comm_tree_rs_new(void);
void comm_tree_rs_free(comm_tree_rs *s);
void comm_tree_rs_begin(comm_tree_rs *s, float *buf, float *tmp, size_t n, size_t align);
void comm_tree_rs_add(comm_tree_rs *s, int id, size_t from, size_t to);
void comm_tree_rs_poll(comm_tree_rs *s);
void comm_tree_rs_end(comm_tree_rs *s);
void comm_tree_rs_share(const comm_tree_rs *s, int id, size_t *lo, size_t *hi);

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
