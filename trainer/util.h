/* Small helpers of the program's own: allocation that reports, clocks. */
#ifndef TRAINER_UTIL_H
#define TRAINER_UTIL_H

#include <stddef.h>

/* Exit statuses, the same on every rank. */
enum {
    EXIT_DONE = 0,
    EXIT_INTERNAL = 1,
    EXIT_BAD_INPUT = 2,
    EXIT_STOPPED = 75, /* stopped by a signal after a checkpoint: resume to go on */
};

/* The index of the first NaN or infinity in v, or -1 (one vectorized pass
 * when there is none). */
long first_nonfinite(const float *v, size_t n);

/* calloc that ends the job with a line naming what was being allocated. */
void *xcalloc(size_t n, size_t size, const char *what);
double now_seconds(void);
/* h:mm:ss */
void format_duration(char *buf, size_t size, double seconds);
/* mkdir -p; prints a line and returns -1 on failure. */
int make_dirs(const char *path);

#endif
