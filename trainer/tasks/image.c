/* The image task: Fashion-MNIST-like shards of uint8 images with labels.
 *
 * A lane's row s of step `step` is the sample at position step * lane_rows + s
 * of the lane's endless sequence of shuffled epochs (data.h); its pixels are
 * scaled to [0, 1]; its random draws are keyed (lane, step, s). Evaluation
 * covers the whole test split, each rank its own shards, and a test image's
 * draws are keyed by (shard, index in shard): the same on any -np. */
#include "trainer/philox.h"
#include "trainer/task.h"

#include <stdio.h>

static void fill_pixels(float *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] * (1.0f / 255.0f);
}

static data_shape image_shape(const dataset *d, const config *c)
{
    (void)c;
    return (data_shape){.in = d->in};
}

static int image_units_per_row(const config *c)
{
    (void)c;
    return 1;
}

static void image_fill(const config *c, dataset *d, batch *b, int at, int l, long step, int s0,
                       int n)
{
    const uint32_t seed = (uint32_t)c->seed;
    const uint64_t lane_rows = (uint64_t)(c->batch / c->lanes);
    lane_data *ld = &d->lanes[l];
    for (int j = 0; j < n; j++) {
        const int row = at + j, s = s0 + j;
        uint32_t idx = lane_sample(ld, seed, (uint64_t)step * lane_rows + (uint64_t)s);
        fill_pixels(b->x + (size_t)row * b->in, ld->data + (size_t)idx * ld->sample_bytes, b->in);
        b->labels[row] = ld->labels ? ld->labels[idx] : 0;
        b->key[row] = (rng_key){(uint32_t)ld->lane, (uint32_t)step, (uint32_t)s};
    }
}

static int image_eval_fill(const config *c, const dataset *d, batch *b, size_t *cursor)
{
    (void)c;
    const split_data *e = &d->eval;
    size_t left = e->n - *cursor;
    int R = left < (size_t)b->cap ? (int)left : b->cap;
    for (int j = 0; j < R; j++) {
        size_t i = *cursor + (size_t)j;
        fill_pixels(b->x + (size_t)j * b->in, e->data + i * b->in, b->in);
        b->labels[j] = e->labels ? e->labels[i] : 0;
        b->key[j] = (rng_key){RNG_STREAM_GLOBAL, e->shard_of[i], e->index_in[i]};
    }
    *cursor += (size_t)R;
    return R;
}

static double image_eval_units(const config *c, const dataset *d)
{
    (void)c;
    return (double)d->n_eval;
}

static void image_eval_describe(const config *c, const dataset *d, char *buf, size_t size)
{
    (void)c;
    snprintf(buf, size, "%zu images", d->n_eval);
}

const task_type image_task = {
    .name = "image",
    .kind = SHARD_IMAGES,
    .eval_split = "test",
    .eval_name = "test",
    .eval_shared = 0,
    .unit = "image",
    .infer_rows = 256,
    .rate_unit = "samples",
    .opts = {NULL, 0, 0},
    .shape = image_shape,
    .units_per_row = image_units_per_row,
    .fill = image_fill,
    .eval_fill = image_eval_fill,
    .eval_units = image_eval_units,
    .eval_describe = image_eval_describe,
};
