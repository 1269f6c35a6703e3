/* Small helpers of the program's own: allocation that reports, clocks. */
#ifndef TRAINER_UTIL_H
#define TRAINER_UTIL_H

#include <stddef.h>
#include <stdint.h>

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

/* Subnormal floats flushed to zero, as inputs and as results, on the
 * calling thread (threads it starts inherit it). On x86 an operation on a
 * subnormal costs about a hundred times a normal one, and they come up by
 * themselves in training: the Adam moments of a weight whose gradient is
 * always zero (a pixel that is 0 in every image) decay through them, and
 * made the VAE's Adam step 40 times slower after a thousand steps. They
 * carry nothing a model needs; every rank and thread runs the same mode, so
 * the bits stay reproducible. No-op where the CPU has no such mode. */
void flush_subnormals(void);

/* calloc that ends the job with a line naming what was being allocated. */
void *xcalloc(size_t n, size_t size, const char *what);
double now_seconds(void);
/* h:mm:ss */
void format_duration(char *buf, size_t size, double seconds);
/* mkdir -p; prints a line and returns -1 on failure. */
int make_dirs(const char *path);

/* The whole file into memory (*size bytes, one more allocated); NULL after
 * a line naming the file on a read error or when memory runs out. */
uint8_t *read_file(const char *path, size_t *size);

#endif
