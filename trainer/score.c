/* The score command: the Frechet distance between a file of images and the
 * test split, in the feature space of a trained classifier (FID's idea with
 * our own classifier: `trainer train --model classifier`), and the
 * distance of as many training images to the test split, the floor any
 * generator is measured against. Any shard-format file of images can be
 * scored, so samples from any program meet on one scale. */
#include "train.h"

#include "frechet.h"
#include "io/shards.h"
#include "run.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first n images of pixels (bytes) into stats, through the features. */
static void add_features(run *r, const uint8_t *pixels, size_t n, feature_stats *st)
{
    worker *w = &r->work[0];
    batch *b = &w->b;
    const size_t in = r->data.in;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)b->cap) {
        b->rows = (int)(n - i0 < (size_t)b->cap ? n - i0 : (size_t)b->cap);
        for (size_t i = 0; i < (size_t)b->rows * in; i++)
            b->x[i] = (float)pixels[i0 * in + i] * (1.0f / 255.0f);
        int d = 0;
        const float *f = r->mt->features(w->m, r->params, b, &d);
        stats_add(st, f, b->rows);
    }
}

/* Mean and covariance of n images' features. */
static int stats_of(run *r, const uint8_t *pixels, size_t n, int d, double *mu, double *cov)
{
    feature_stats st;
    if (stats_init(&st, d) != 0)
        return -1;
    add_features(r, pixels, n, &st);
    stats_finish(&st, mu, cov);
    stats_free(&st);
    return 0;
}

/* The images to score: one shard-format file, whatever its index. */
static int read_images(const run *r, shard *s)
{
    if (shard_read(r->cfg.images, SHARD_IMAGES, -1, -1, s) != 0)
        return -1;
    if (s->h * s->w != r->data.in) {
        fprintf(stderr, "trainer: %s: images of %zux%zu, the classifier's are %zux%zu\n",
                r->cfg.images, s->h, s->w, r->data.fmt.h, r->data.fmt.w);
        shard_free(s);
        return -1;
    }
    return 0;
}

/* The width of the classifier's features. */
static int feature_width(run *r)
{
    worker *w = &r->work[0];
    w->b.rows = 1;
    memset(w->b.x, 0, r->data.in * sizeof(float));
    int d = 0;
    r->mt->features(w->m, r->params, &w->b, &d);
    return d;
}

static int score(run *r)
{
    const int d = feature_width(r);
    const size_t dd = (size_t)d * d;
    double *mu[3], *cov[3];
    for (int k = 0; k < 3; k++) {
        mu[k] = xcalloc((size_t)d, sizeof(double), "features");
        cov[k] = xcalloc(dd, sizeof(double), "features");
    }
    shard s = {0};
    split_data train = {0};
    data_format fmt = {0};
    char path[CFG_PATH + 32];
    shard_path(path, sizeof path, r->cfg.data, "train", 0);
    const int ktrain = shard_read_count(path);
    int rc = -1;
    if (read_images(r, &s) != 0 || ktrain < 0 ||
        split_data_load(&train, r->cfg.data, "train", ktrain, SHARD_IMAGES, 0, 1, &fmt) != 0)
        goto out;
    const split_data *test = &r->data.eval;
    const size_t ntrain = train.n < test->n ? train.n : test->n;
    if (stats_of(r, test->data, test->n, d, mu[0], cov[0]) || stats_of(r, s.data, s.n, d, mu[1], cov[1]) ||
        stats_of(r, train.data, ntrain, d, mu[2], cov[2]))
        goto out;
    double fd = frechet_distance(mu[1], cov[1], mu[0], cov[0], d);
    double floor = frechet_distance(mu[2], cov[2], mu[0], cov[0], d);
    if (fd < 0 || floor < 0)
        goto out;
    printf("score: %s (%zu images) against the test split (%zu images), in the %d features of %s\n",
           r->cfg.images, s.n, test->n, d, r->cfg.classifier);
    printf("frechet distance: %.3f\n", fd);
    printf("floor: %.3f (%zu training images against the test split)\n", floor, ntrain);
    rc = 0;
out:
    shard_free(&s);
    split_data_free(&train);
    data_format_free(&fmt);
    for (int k = 0; k < 3; k++) {
        free(mu[k]);
        free(cov[k]);
    }
    return rc;
}

int cmd_score(int argc, char **argv)
{
    run r;
    run_begin(&r);
    io_quiet_hdf5();
    char path[CFG_PATH + 32];
    ckpt_meta meta = {0};
    int status;
    if (run_configure(&r, CMD_SCORE, argc, argv, path, sizeof path, &meta, &status) != 0)
        goto out;
    status = EXIT_BAD_INPUT;
    if (!r.mt->features) {
        if (r.loud)
            fprintf(stderr, "trainer: %s: a %s, not a classifier: its features cannot score images\n",
                    path, r.mt->name);
        goto out;
    }
    if (!r.cfg.images[0]) {
        if (r.loud)
            fprintf(stderr, "trainer: --images FILE.h5 is required\n");
        goto out;
    }
    run_setup_inference(&r, r.task->infer_rows);
    if (run_load_data(&r, 0) != 0 || run_build_model(&r) != 0 ||
        run_read_checkpoint(&r, path, &meta) != 0)
        goto out;
    status = agree(r.loud && score(&r) != 0) ? EXIT_BAD_INPUT : EXIT_DONE;
out:
    run_end(&r);
    return status;
}
