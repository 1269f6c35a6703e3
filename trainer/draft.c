#include "draft.h"

#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = "TRDRAFT1";
#define HEADER (8 + 4 * DRAFT_ORDER)

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The order-n entries of text: every (context, next) pair sorted, then per
 * context the next byte of the longest run (the first, the smallest, on a
 * tie). Returns how many, written over keys. */
static size_t order_entries(const uint8_t *text, size_t n, int order, uint64_t *keys)
{
    size_t m = 0;
    for (size_t i = (size_t)order; i < n; i++) {
        uint64_t k = 0;
        for (int j = order; j >= 1; j--)
            k = k << 8 | text[i - (size_t)j];
        keys[m++] = k << 8 | text[i];
    }
    qsort(keys, m, sizeof *keys, cmp_u64);
    size_t out = 0;
    for (size_t i = 0; i < m;) {
        const uint64_t ctx = keys[i] >> 8;
        uint64_t best = keys[i];
        size_t best_run = 0;
        while (i < m && keys[i] >> 8 == ctx) {
            size_t j = i;
            while (j < m && keys[j] == keys[i])
                j++;
            if (j - i > best_run) {
                best_run = j - i;
                best = keys[i];
            }
            i = j;
        }
        keys[out++] = best;
    }
    return out;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint8_t *draft_build(const uint8_t *text, size_t n, size_t *bytes)
{
    uint64_t *keys[DRAFT_ORDER] = {NULL};
    size_t count[DRAFT_ORDER] = {0}, total = 0;
    uint8_t *blob = NULL;
    for (int o = 0; o < DRAFT_ORDER; o++) {
        keys[o] = malloc((n + 1) * sizeof(uint64_t));
        if (!keys[o])
            goto done;
        count[o] = order_entries(text, n, o + 1, keys[o]);
        total += count[o];
    }
    *bytes = HEADER + total * sizeof(uint64_t);
    blob = malloc(*bytes);
    if (!blob)
        goto done;
    memcpy(blob, MAGIC, 8);
    uint8_t *p = blob + HEADER;
    for (int o = 0; o < DRAFT_ORDER; o++) {
        put_u32(blob + 8 + 4 * o, (uint32_t)count[o]);
        for (size_t i = 0; i < count[o]; i++, p += 8)
            memcpy(p, &keys[o][i], 8); /* little-endian hosts (x86-64) */
    }
done:
    for (int o = 0; o < DRAFT_ORDER; o++)
        free(keys[o]);
    return blob;
}

int draft_valid(const uint8_t *blob, size_t bytes)
{
    if (bytes < HEADER || memcmp(blob, MAGIC, 8) != 0)
        return 0;
    size_t total = 0;
    for (int o = 0; o < DRAFT_ORDER; o++)
        total += get_u32(blob + 8 + 4 * o);
    return bytes == HEADER + total * sizeof(uint64_t);
}

/* The byte after the context ctx (order bytes, packed) in the order's
 * entries, or -1. */
static int lookup(const uint8_t *blob, int order, uint64_t ctx)
{
    const uint8_t *e = blob + HEADER;
    for (int o = 0; o < order - 1; o++)
        e += (size_t)get_u32(blob + 8 + 4 * o) * 8;
    size_t lo = 0, hi = get_u32(blob + 8 + 4 * (order - 1));
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        uint64_t k;
        memcpy(&k, e + mid * 8, 8);
        if (k >> 8 < ctx)
            lo = mid + 1;
        else if (k >> 8 > ctx)
            hi = mid;
        else
            return (int)(k & 0xff);
    }
    return -1;
}

int draft_guess(const uint8_t *blob, const int32_t *ctx, int len, int32_t *out, int k)
{
    int32_t tail[DRAFT_ORDER];
    int have = len < DRAFT_ORDER ? len : DRAFT_ORDER;
    memcpy(tail, ctx + len - have, (size_t)have * sizeof *tail);
    int g = 0;
    while (g < k) {
        int next = -1;
        for (int order = have; order >= 1 && next < 0; order--) {
            uint64_t c = 0;
            for (int j = have - order; j < have; j++)
                c = c << 8 | (uint8_t)tail[j];
            next = lookup(blob, order, c);
        }
        if (next < 0)
            break;
        out[g++] = next;
        if (have == DRAFT_ORDER)
            memmove(tail, tail + 1, (DRAFT_ORDER - 1) * sizeof *tail);
        else
            have++;
        tail[have - 1] = next;
    }
    return g;
}
