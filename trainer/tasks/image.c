/* The image task: Fashion-MNIST-like shards of uint8 images with labels.
 *
 * A lane's row s of step `step` is the sample at position step * lane_rows + s
 * of the lane's endless sequence of shuffled epochs (data.h); its pixels are
 * scaled to [0, 1]; its random draws are keyed (lane, step, s). Evaluation
 * covers the whole test split, each rank its own shards, and a test image's
 * draws are keyed by (shard, index in shard): the same on any -np. */
#include "io/png.h"
#include "io/shards.h"
#include "trainer/model.h"
#include "trainer/philox.h"
#include "trainer/task.h"
#include "trainer/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The image task's own options: what the sample command writes. */
typedef struct {
    int count;
    char png[CFG_PATH];
    char recon_png[CFG_PATH];
} image_opts;

static const opt_spec IMAGE_OPTS[] = {
    OPT(image_opts, count, "count", OPT_INT, "64", CMD_SAMPLE, 1, 1000000, "images to generate"),
    OPT(image_opts, png, "png", OPT_STR, "", CMD_SAMPLE, 0, 0,
        "a PNG grid of the generated images (at most 256 of them)"),
    OPT(image_opts, recon_png, "recon-png", OPT_STR, "", CMD_SAMPLE, 0, 0,
        "models that reconstruct (the VAE): a PNG of test images beside their reconstructions"),
};

static void fill_pixels(float *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] * (1.0f / 255.0f);
}

static data_shape image_shape(const dataset *d, const config *c)
{
    (void)c;
    return (data_shape){.in = d->in, .h = (int)d->fmt.h, .w = (int)d->fmt.w};
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

static uint8_t to_byte(float v)
{
    return (uint8_t)lrintf(255.0f * fminf(fmaxf(v, 0.0f), 1.0f));
}

/* n images from the model's own draws (keys: sample j = (global, j, 0) at
 * RNG_SAMPLE): the same images for a seed. Returns them as bytes. */
static uint8_t *generate(const config *c, const dataset *d, model *m, const float *params, int n,
                         batch *b)
{
    uint8_t *px = xcalloc((size_t)n * d->in, 1, "images");
    float *out = xcalloc((size_t)b->cap * d->in, sizeof(float), "images");
    b->seed = (uint32_t)c->seed;
    b->purpose = RNG_SAMPLE;
    b->train = 0;
    for (int i0 = 0; i0 < n; i0 += b->cap) {
        b->rows = n - i0 < b->cap ? n - i0 : b->cap;
        for (int j = 0; j < b->rows; j++)
            b->key[j] = (rng_key){RNG_STREAM_GLOBAL, (uint32_t)(i0 + j), 0};
        m->type->generate_images(m, params, b, out);
        for (size_t i = 0; i < (size_t)b->rows * d->in; i++)
            px[(size_t)i0 * d->in + i] = to_byte(out[i]);
    }
    free(out);
    return px;
}

/* Test images beside their reconstructions, pairs side by side. */
static int write_recon(const config *c, const dataset *d, model *m, const float *params,
                       batch *b, const char *path)
{
    const int n = d->eval.n < 32 ? (int)d->eval.n : 32, cap = b->cap < n ? b->cap : n;
    uint8_t *px = xcalloc(2 * (size_t)n * d->in, 1, "images");
    float *out = xcalloc((size_t)cap * d->in, sizeof(float), "images");
    size_t cursor = 0;
    for (int i0 = 0; i0 < n; i0 += cap) {
        b->rows = image_task.eval_fill(c, d, b, &cursor);
        b->rows = b->rows < n - i0 ? b->rows : n - i0;
        m->type->reconstruct_images(m, params, b, out);
        for (int j = 0; j < b->rows; j++)
            for (size_t i = 0; i < d->in; i++) {
                px[(2 * (size_t)(i0 + j)) * d->in + i] = to_byte(b->x[(size_t)j * d->in + i]);
                px[(2 * (size_t)(i0 + j) + 1) * d->in + i] = to_byte(out[(size_t)j * d->in + i]);
            }
    }
    int rc = png_write_grid(path, px, 2 * n, (int)d->fmt.h, (int)d->fmt.w, 16);
    free(out);
    free(px);
    return rc;
}

static int image_sample(const config *c, const dataset *d, model *m, const float *params,
                        FILE *f)
{
    const image_opts *o = TASK_OPTS(c, const image_opts);
    if (!m->type->generate_images) {
        fprintf(stderr, "trainer: the %s model does not generate images\n", m->type->name);
        return -1;
    }
    if (o->recon_png[0] && !m->type->reconstruct_images) {
        fprintf(stderr, "trainer: --recon-png: the %s model does not reconstruct images\n",
                m->type->name);
        return -1;
    }
    if (!c->out[0] && !o->png[0] && !o->recon_png[0]) {
        fprintf(stderr, "trainer: sample: say where the images go: --out FILE.h5, --png FILE.png "
                        "or --recon-png FILE.png\n");
        return -1;
    }
    batch b;
    batch_alloc(&b, 256, d->in, 0);
    uint8_t *px = generate(c, d, m, params, o->count, &b);
    uint8_t *labels = xcalloc((size_t)o->count, 1, "labels");
    shard s = {.kind = SHARD_IMAGES, .shard_index = 0, .shard_count = 1, .n = (size_t)o->count,
               .h = d->fmt.h, .w = d->fmt.w, .data = px, .labels = labels, .width = 1};
    char source[64];
    snprintf(source, sizeof source, "trainer sample of a %s, seed %ld", m->type->name, c->seed);
    int cols = (int)ceil(sqrt(o->count < 256 ? o->count : 256));
    int rc = (c->out[0] && shard_write(c->out, &s, source, "samples") != 0) ||
             (o->png[0] && png_write_grid(o->png, px, o->count < 256 ? o->count : 256,
                                          (int)d->fmt.h, (int)d->fmt.w, cols) != 0) ||
             (o->recon_png[0] && write_recon(c, d, m, params, &b, o->recon_png) != 0);
    if (rc == 0)
        fprintf(f, "sample: %d images of the %s%s%s%s%s%s%s\n", o->count, m->type->name,
                c->out[0] ? " -> " : "", c->out, o->png[0] ? ", grid -> " : "", o->png,
                o->recon_png[0] ? ", reconstructions -> " : "", o->recon_png);
    free(labels);
    free(px);
    batch_free(&b);
    return rc ? -1 : 0;
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
    .opts = OPT_GROUP(IMAGE_OPTS, image_opts),
    .sample_needs_data = 1,
    .sample = image_sample,
    .shape = image_shape,
    .units_per_row = image_units_per_row,
    .fill = image_fill,
    .eval_fill = image_eval_fill,
    .eval_units = image_eval_units,
    .eval_describe = image_eval_describe,
};
