#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int read_exact(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, (char *)buf + got, (unsigned)want);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int idx_read(const char *path, idx_array *out)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "trainer: %s: cannot open: %s\n", path, strerror(errno ? errno : ENOENT));
        return -1;
    }
    unsigned char head[4];
    if (read_exact(f, head, 4) != 0) {
        fprintf(stderr, "trainer: %s: too short for an IDX file\n", path);
        goto fail;
    }
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08) {
        fprintf(stderr, "trainer: %s: not an unsigned-byte IDX file (magic %02x%02x%02x%02x)\n",
                path, head[0], head[1], head[2], head[3]);
        goto fail;
    }
    if (head[3] < 1 || head[3] > 4) {
        fprintf(stderr, "trainer: %s: IDX file has %d dimensions, expected 1 to 4\n", path,
                head[3]);
        goto fail;
    }
    out->ndim = head[3];
    out->count = 1;
    for (int d = 0; d < out->ndim; d++) {
        unsigned char b[4];
        if (read_exact(f, b, 4) != 0) {
            fprintf(stderr, "trainer: %s: truncated IDX header\n", path);
            goto fail;
        }
        out->dims[d] = ((size_t)b[0] << 24) | ((size_t)b[1] << 16) | ((size_t)b[2] << 8) | b[3];
        if (out->dims[d] == 0 || out->dims[d] > (1u << 28)) {
            fprintf(stderr, "trainer: %s: IDX dimension %d is %zu\n", path, d, out->dims[d]);
            goto fail;
        }
        out->count *= out->dims[d];
    }
    if (out->count > ((size_t)1 << 34)) {
        fprintf(stderr, "trainer: %s: IDX array of %zu bytes is too large\n", path, out->count);
        goto fail;
    }
    /* grown as the bytes arrive: a header that promises more than the file
     * holds costs no more memory than the file */
    for (size_t have = 0, cap = 0; have < out->count;) {
        size_t want = out->count - have < (1u << 24) ? out->count - have : (1u << 24);
        if (have + want > cap) {
            size_t grown = cap ? 2 * cap : (1u << 24);
            grown = grown < out->count ? grown : out->count;
            uint8_t *p = realloc(out->data, grown);
            if (!p) {
                fprintf(stderr, "trainer: %s: out of memory for %zu bytes\n", path, grown);
                goto fail;
            }
            out->data = p;
            cap = grown;
        }
        if (read_exact(f, out->data + have, want) != 0) {
            fprintf(stderr, "trainer: %s: truncated: expected %zu bytes of data\n", path,
                    out->count);
            goto fail;
        }
        have += want;
    }
    gzclose(f);
    return 0;
fail:
    gzclose(f);
    idx_free(out);
    return -1;
}

void idx_free(idx_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
