#include "lanes.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A thread waits for the next round, runs its share, and reports it done. */
static void *lane_thread(void *v)
{
    lane_thread_arg *a = v;
    lane_pool *p = a->pool;
    flush_subnormals(); /* inherited already; said for the reader */
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->round == seen && !p->quit)
            pthread_cond_wait(&p->go, &p->lock);
        seen = p->round;
        int quit = p->quit;
        pthread_mutex_unlock(&p->lock);
        if (quit)
            return NULL;
        p->fn(p->arg, a->k);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
}

int lane_pool_start(lane_pool *p, int n, void (*fn)(void *arg, int k), void *arg)
{
    memset(p, 0, sizeof *p);
    p->n = n < 1 ? 1 : n;
    p->started = 1;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (p->n == 1)
        return 0;
    p->tid = calloc((size_t)p->n, sizeof *p->tid);
    p->args = calloc((size_t)p->n, sizeof *p->args);
    if (!p->tid || !p->args) {
        fprintf(stderr, "trainer: out of memory for %d lane threads\n", p->n);
        lane_pool_stop(p);
        return -1;
    }
    for (int k = 1; k < p->n; k++) {
        p->args[k] = (lane_thread_arg){p, k};
        if (pthread_create(&p->tid[k], NULL, lane_thread, &p->args[k]) != 0) {
            fprintf(stderr, "trainer: cannot start lane thread %d of %d\n", k, p->n - 1);
            lane_pool_stop(p);
            return -1;
        }
        p->started = k + 1;
    }
    return 0;
}

void lane_pool_run(lane_pool *p)
{
    if (p->n == 1) {
        p->fn(p->arg, 0);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->pending = p->n - 1;
    p->round++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->lock);
    p->fn(p->arg, 0);
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void lane_pool_stop(lane_pool *p)
{
    if (!p->fn)
        return; /* never started */
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->lock);
    for (int k = 1; k < p->started; k++)
        pthread_join(p->tid[k], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->tid);
    free(p->args);
    memset(p, 0, sizeof *p);
}
