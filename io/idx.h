/* The IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed. */
#ifndef TRAINER_IDX_H
#define TRAINER_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int ndim;
    size_t dims[4];
    size_t count; /* product of dims */
    uint8_t *data;
} idx_array;

/* Reads an unsigned-byte IDX file of 1 to 4 dimensions. On failure prints one
 * line naming the file and returns -1. */
int idx_read(const char *path, idx_array *out);
void idx_free(idx_array *a);

#endif
