/* RUN_DIR/metrics.jsonl: one JSON object per logged step and per
 * evaluation, written by rank 0, flushed line by line, for plots and
 * comparisons. A resumed run keeps the lines up to its checkpoint's step and
 * drops the rest (they belong to steps it is about to compute again), so a
 * run stopped and resumed any number of times has every step once. */
#ifndef TRAINER_METRICS_H
#define TRAINER_METRICS_H

#include <stdio.h>

typedef struct {
    FILE *f;
} metrics;

/* Opens RUN_DIR/metrics.jsonl: new (truncated) for a new run, or cut back
 * to the lines of steps <= resumed_step when resuming (resumed_step >= 0).
 * Returns 0, or -1 after a line. */
int metrics_open(metrics *m, const char *run_dir, long resumed_step);
void metrics_close(metrics *m);

/* One line: {"kind": KIND, "step": STEP, then the pairs}; NaN and
 * infinities are written as null. */
typedef struct {
    const char *key;
    double value;
} metric;
void metrics_write(metrics *m, const char *kind, long step, const metric *v, int n);

#endif
