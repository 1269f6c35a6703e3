/* The lane thread pool: n threads (the caller is thread 0) that live as long
 * as the run and run fn(arg, k) together, once per call of lane_pool_run.
 * Nothing is allocated per step. */
#ifndef TRAINER_LANES_H
#define TRAINER_LANES_H

#include <pthread.h>

typedef struct lane_pool lane_pool;

typedef struct {
    lane_pool *pool;
    int k;
} lane_thread_arg;

struct lane_pool {
    int n;       /* threads that take part, the caller included */
    int started; /* threads 1 .. started-1 exist */
    void (*fn)(void *arg, int k);
    void *arg;
    pthread_t *tid;
    lane_thread_arg *args;
    /* the lock guards round, pending and quit */
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    unsigned long round;
    int pending, quit;
};

/* Starts threads 1 .. n-1 (none for n = 1). Returns -1 after a line when a
 * thread cannot be started (those started are stopped again). */
int lane_pool_start(lane_pool *p, int n, void (*fn)(void *arg, int k), void *arg);
/* fn(arg, k) for every k, k = 0 on the caller; returns when all are done. */
void lane_pool_run(lane_pool *p);
void lane_pool_stop(lane_pool *p);

#endif
