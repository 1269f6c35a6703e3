#include "data.h"

#include "io/shards.h"
#include "philox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends a shard's samples (and labels, if it has them) to buf. */
static int append(uint8_t **buf, uint8_t **labels, size_t *n, size_t sample_bytes,
                  const shard *s)
{
    uint8_t *grown = realloc(*buf, (*n + s->n) * sample_bytes + 1);
    if (grown)
        *buf = grown;
    if (grown && s->labels) {
        grown = realloc(*labels, *n + s->n + 1);
        if (grown) {
            *labels = grown;
            memcpy(*labels + *n, s->labels, s->n);
        }
    }
    if (!grown) {
        fprintf(stderr, "trainer: out of memory for %zu samples\n", *n + s->n);
        return -1;
    }
    memcpy(*buf + *n * sample_bytes, s->data, s->n * sample_bytes);
    *n += s->n;
    return 0;
}

/* Reads one shard and checks its sample shape against the first. */
static int read_shard(const char *dir, const char *split, int index, int count,
                      enum shard_kind kind, size_t *h, size_t *w, shard *s)
{
    char path[4096];
    shard_path(path, sizeof path, dir, split, index);
    if (shard_read(path, kind, index, count, s) != 0)
        return -1;
    if (*h == 0) {
        *h = s->h;
        *w = s->w;
    } else if (s->h != *h || s->w != *w) {
        fprintf(stderr, "trainer: %s: images are %zux%zu, other shards' are %zux%zu\n", path,
                s->h, s->w, *h, *w);
        shard_free(s);
        return -1;
    }
    return 0;
}

int lane_data_load(lane_data *lanes, const int *lane_ids, int nlocal, int nlanes,
                   const char *dir, const char *split, int nshards, enum shard_kind kind,
                   size_t *h, size_t *w)
{
    memset(lanes, 0, (size_t)nlocal * sizeof *lanes);
    for (int l = 0; l < nlocal; l++) {
        lane_data *d = &lanes[l];
        d->lane = lane_ids[l];
        d->perm_epoch = -1;
        for (int k = d->lane; k < nshards; k += nlanes) {
            shard s;
            if (read_shard(dir, split, k, nshards, kind, h, w, &s) != 0)
                return -1;
            d->sample_bytes = s.h * s.w;
            int rc = append(&d->data, &d->labels, &d->n, d->sample_bytes, &s);
            shard_free(&s);
            if (rc)
                return -1;
        }
        if (d->n > UINT32_MAX) {
            fprintf(stderr, "trainer: lane %d has more than 2^32 samples\n", d->lane);
            return -1;
        }
        d->perm = malloc(d->n * sizeof *d->perm + 1);
        if (!d->perm) {
            fprintf(stderr, "trainer: out of memory\n");
            return -1;
        }
    }
    return 0;
}

void lane_data_free(lane_data *lanes, int nlocal)
{
    for (int l = 0; l < nlocal; l++) {
        free(lanes[l].data);
        free(lanes[l].labels);
        free(lanes[l].perm);
    }
}

uint32_t lane_sample(lane_data *d, uint32_t seed, uint64_t position)
{
    long epoch = (long)(position / d->n);
    if (epoch != d->perm_epoch) {
        rng_permutation(seed, (uint32_t)d->lane, (uint32_t)epoch, d->perm, (uint32_t)d->n);
        d->perm_epoch = epoch;
    }
    return d->perm[position % d->n];
}

int split_data_load(split_data *sd, const char *dir, const char *split, int nshards,
                    enum shard_kind kind, int rank, int np, size_t *h, size_t *w)
{
    memset(sd, 0, sizeof *sd);
    for (int k = rank; k < nshards; k += np) {
        shard s;
        if (read_shard(dir, split, k, nshards, kind, h, w, &s) != 0)
            return -1;
        size_t before = sd->n;
        sd->sample_bytes = s.h * s.w;
        int rc = append(&sd->data, &sd->labels, &sd->n, sd->sample_bytes, &s);
        uint32_t *a = realloc(sd->shard_of, sd->n * sizeof *a + 1);
        if (a)
            sd->shard_of = a;
        uint32_t *b = realloc(sd->index_in, sd->n * sizeof *b + 1);
        if (b)
            sd->index_in = b;
        shard_free(&s);
        if (rc || !a || !b) {
            fprintf(stderr, "trainer: out of memory\n");
            return -1;
        }
        for (size_t i = before; i < sd->n; i++) {
            sd->shard_of[i] = (uint32_t)k;
            sd->index_in[i] = (uint32_t)(i - before);
        }
    }
    return 0;
}

void split_data_free(split_data *s)
{
    free(s->data);
    free(s->labels);
    free(s->shard_of);
    free(s->index_in);
    memset(s, 0, sizeof *s);
}
