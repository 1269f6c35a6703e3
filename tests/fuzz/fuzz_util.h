/* Shared by the fuzz targets: a scratch file per process in /dev/shm (tmpfs:
 * the readers under test take paths), and the input taken a field at a
 * time. tests/fuzz.sh runs them with -close_fd_mask=3: every rejected input
 * prints its one line (and --help its text), which would drown libFuzzer's
 * own output. */
#ifndef TRAINER_FUZZ_UTIL_H
#define TRAINER_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline const char *fuzz_path(const char *suffix)
{
    static char path[128];
    snprintf(path, sizeof path, "/dev/shm/trainer-fuzz-%d%s", (int)getpid(), suffix);
    return path;
}

static inline int fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return 0;
}

/* Bytes taken one field at a time; zeros once the input runs out. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_bytes;

static inline uint32_t fuzz_u32(fuzz_bytes *b, uint32_t below)
{
    uint32_t v = 0;
    for (int i = 0; i < 4 && b->n; i++, b->p++, b->n--)
        v = v << 8 | *b->p;
    return below ? v % below : v;
}

#endif
