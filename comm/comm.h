/* Everything that talks MPI. The rest of the program sees ranks as numbers
 * and buffers, never MPI types. */
#ifndef TRAINER_COMM_H
#define TRAINER_COMM_H

#include <stddef.h>
#include <stdint.h>

void comm_init(int *argc, char ***argv);
void comm_finalize(void);
int comm_ready(void);
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
void comm_sum_int64(int64_t *buf, size_t n);
void comm_bcast_bytes(void *buf, size_t n, int root);

/* Sum of lane gradients that does not depend on how lanes are spread over
 * ranks. lane_grads[i] (i < nlocal) are this rank's lanes; out receives the
 * sum over all nlanes lanes of the job. Each bucket [off[b], off[b+1]) gets
 * its own power-of-two quantum; see allreduce.c. acc is n doubles of scratch,
 * bucket_max nbuckets floats. */
void allreduce_lanes_exact(float *out, float *const *lane_grads, int nlocal, int nlanes,
                           const size_t *bucket_off, int nbuckets, double *acc,
                           float *bucket_max);

#endif
