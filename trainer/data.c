#include "data.h"

#include "io/shards.h"
#include "philox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void data_format_free(data_format *f)
{
    free(f->vocab);
    free(f->draft);
    memset(f, 0, sizeof *f);
}

/* n more bytes at the end of *buf (which holds `have`), from src. */
static int grow_copy(uint8_t **buf, size_t have, const uint8_t *src, size_t n)
{
    uint8_t *grown = realloc(*buf, have + n + 1);
    if (!grown)
        return -1;
    memcpy(grown + have, src, n);
    *buf = grown;
    return 0;
}

/* Appends a shard's samples (and labels and token byte counts, if it has
 * them). */
static int append(uint8_t **buf, uint8_t **labels, uint8_t **unit_bytes, size_t *n,
                  size_t sample_bytes, const shard *s)
{
    if (grow_copy(buf, *n * sample_bytes, s->data, s->n * sample_bytes) ||
        (s->labels && grow_copy(labels, *n, s->labels, s->n)) ||
        (s->unit_bytes && grow_copy(unit_bytes, *n, s->unit_bytes, s->n))) {
        fprintf(stderr, "trainer: out of memory for %zu samples\n", *n + s->n);
        return -1;
    }
    *n += s->n;
    return 0;
}

/* Reads one shard and checks it against the format of the first. */
static int read_shard(const char *dir, const char *split, int index, int count,
                      enum shard_kind kind, data_format *fmt, shard *s)
{
    char path[4096];
    shard_path(path, sizeof path, dir, split, index);
    if (shard_read(path, kind, index, count, s) != 0)
        return -1;
    if (fmt->h == 0) {
        fmt->h = s->h;
        fmt->w = s->w;
        fmt->width = s->width;
        fmt->vocab = s->vocab; /* taken over */
        fmt->vocab_bytes = s->vocab_bytes;
        s->vocab = NULL;
        return 0;
    }
    const char *why = NULL;
    if (s->h != fmt->h || s->w != fmt->w)
        why = "images of another size";
    else if (s->width != fmt->width)
        why = "tokens of another width (bytes and word ids mixed)";
    else if (s->vocab_bytes != fmt->vocab_bytes ||
             (s->vocab && memcmp(s->vocab, fmt->vocab, s->vocab_bytes) != 0))
        why = "another vocabulary";
    if (why) {
        fprintf(stderr, "trainer: %s: %s than the other shards (prepare them again together)\n",
                path, why);
        shard_free(s);
        return -1;
    }
    return 0;
}

int lane_data_load(lane_data *lanes, const int *lane_ids, int nlocal, int nlanes,
                   const char *dir, const char *split, int nshards, enum shard_kind kind,
                   data_format *fmt)
{
    memset(lanes, 0, (size_t)nlocal * sizeof *lanes);
    for (int l = 0; l < nlocal; l++) {
        lane_data *d = &lanes[l];
        d->lane = lane_ids[l];
        d->perm_epoch = -1;
        for (int k = d->lane; k < nshards; k += nlanes) {
            shard s;
            if (read_shard(dir, split, k, nshards, kind, fmt, &s) != 0)
                return -1;
            d->sample_bytes = s.h * s.w * (size_t)s.width;
            int rc = append(&d->data, &d->labels, &d->unit_bytes, &d->n, d->sample_bytes, &s);
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
        free(lanes[l].unit_bytes);
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
                    enum shard_kind kind, int rank, int np, data_format *fmt)
{
    memset(sd, 0, sizeof *sd);
    for (int k = rank; k < nshards; k += np) {
        shard s;
        if (read_shard(dir, split, k, nshards, kind, fmt, &s) != 0)
            return -1;
        size_t before = sd->n;
        sd->sample_bytes = s.h * s.w * (size_t)s.width;
        int rc = append(&sd->data, &sd->labels, &sd->unit_bytes, &sd->n, sd->sample_bytes, &s);
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
    free(s->unit_bytes);
    free(s->shard_of);
    free(s->index_in);
    memset(s, 0, sizeof *s);
}
