/* The prepare command: turns a source data set into HDF5 shards.
 *
 * fashion-mnist: the four IDX files (gzip or plain) of a folder become
 * train-NNN.h5 and test-NNN.h5, K of each, contiguous slices of the source.
 * text: any file's bytes (or, with --tokens words, its words and marks);
 * the last 10% of the bytes become val-NNN.h5, the rest train. */
#include "config.h"
#include "io/idx.h"
#include "io/shards.h"
#include "train.h"
#include "util.h"
#include "words.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int find_idx(char *buf, size_t size, const char *dir, const char *stem)
{
    snprintf(buf, size, "%s/%s.gz", dir, stem);
    if (access(buf, R_OK) == 0)
        return 0;
    snprintf(buf, size, "%s/%s", dir, stem);
    if (access(buf, R_OK) == 0)
        return 0;
    fprintf(stderr, "trainer: %s: no %s or %s.gz\n", dir, stem, stem);
    return -1;
}

static int write_image_split(const config *c, const char *split, const char *stem,
                             const idx_array *images, const idx_array *labels)
{
    if (images->ndim != 3 || labels->ndim != 1 || labels->dims[0] != images->dims[0]) {
        fprintf(stderr, "trainer: %s: %s images and labels do not match (%zu images, %zu labels)\n",
                c->input, split, images->dims[0], labels->dims[0]);
        return -1;
    }
    size_t n = images->dims[0], h = images->dims[1], w = images->dims[2];
    if (n < (size_t)c->shards) {
        fprintf(stderr, "trainer: %s: %zu %s images for %d shards\n", c->input, n, split, c->shards);
        return -1;
    }
    char source[CFG_PATH + 64];
    snprintf(source, sizeof source, "fashion-mnist %s (%s)", stem, c->input);
    for (int k = 0; k < c->shards; k++) {
        size_t lo = n * (size_t)k / (size_t)c->shards, hi = n * (size_t)(k + 1) / (size_t)c->shards;
        shard s = {.kind = SHARD_IMAGES, .shard_index = k, .shard_count = c->shards,
                   .n = hi - lo, .h = h, .w = w, .first_sample = lo,
                   .data = images->data + lo * h * w, .labels = labels->data + lo};
        char path[CFG_PATH + 32];
        shard_path(path, sizeof path, c->out, split, k);
        if (shard_write(path, &s, source, split) != 0)
            return -1;
    }
    printf("prepare: %zu %s images of %zux%zu -> %s/%s-000.h5 .. %s-%03d.h5\n", n, split, h, w,
           c->out, split, split, c->shards - 1);
    return 0;
}

static int prepare_images(const config *c)
{
    static const char *stems[2][3] = {
        {"train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
        {"test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
    };
    for (int s = 0; s < 2; s++) {
        char ipath[CFG_PATH + 64], lpath[CFG_PATH + 64];
        if (find_idx(ipath, sizeof ipath, c->input, stems[s][1]) ||
            find_idx(lpath, sizeof lpath, c->input, stems[s][2]))
            return -1;
        idx_array images, labels;
        if (idx_read(ipath, &images) != 0)
            return -1;
        if (idx_read(lpath, &labels) != 0) {
            idx_free(&images);
            return -1;
        }
        int rc = write_image_split(c, stems[s][0], stems[s][1], &images, &labels);
        idx_free(&images);
        idx_free(&labels);
        if (rc)
            return -1;
    }
    return 0;
}

/* Token splits: the first ntrain of n tokens are train, the rest val; K
 * shards of each. data holds width bytes per token; unit_bytes and vocab
 * only for word tokens. */
typedef struct {
    const uint8_t *data, *unit_bytes, *vocab;
    int width;
    size_t n, ntrain, vocab_bytes;
    const char *unit; /* "bytes", "tokens" */
} token_splits;

static int write_token_splits(const config *c, const token_splits *t)
{
    const size_t len[2] = {t->ntrain, t->n - t->ntrain}, base[2] = {0, t->ntrain};
    if (len[0] < (size_t)c->shards * 2 || len[1] < (size_t)c->shards * 2) {
        fprintf(stderr, "trainer: %s: %zu %s is too little text for %d shards\n", c->input, t->n,
                t->unit, c->shards);
        return -1;
    }
    char source[CFG_PATH + 16];
    snprintf(source, sizeof source, "text %s", c->input);
    const char *splits[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < c->shards; k++) {
            size_t lo = base[s] + len[s] * (size_t)k / (size_t)c->shards;
            size_t hi = base[s] + len[s] * (size_t)(k + 1) / (size_t)c->shards;
            shard sh = {.kind = SHARD_TOKENS, .shard_index = k, .shard_count = c->shards,
                        .n = hi - lo, .h = 1, .w = 1, .first_sample = lo, .width = t->width,
                        .data = (uint8_t *)t->data + lo * (size_t)t->width,
                        .unit_bytes = t->unit_bytes ? (uint8_t *)t->unit_bytes + lo : NULL,
                        .vocab = (uint8_t *)t->vocab, .vocab_bytes = t->vocab_bytes};
            char path[CFG_PATH + 32];
            shard_path(path, sizeof path, c->out, splits[s], k);
            if (shard_write(path, &sh, source, splits[s]) != 0)
                return -1;
        }
        printf("prepare: %zu %s %s -> %s/%s-000.h5 .. %s-%03d.h5\n", len[s], splits[s], t->unit,
               c->out, splits[s], splits[s], c->shards - 1);
    }
    return 0;
}

/* Words: split the whole text, cut it where the bytes' 90% mark falls, learn
 * the vocabulary from the training part only, map every token to its id. */
static int prepare_words(const config *c, const uint8_t *buf, size_t n)
{
    size_t ntok = words_split(buf, n, NULL), ntrain = 0, unknown[2] = {0, 0};
    word_span *spans = malloc(ntok * sizeof *spans + 1);
    uint16_t *ids = malloc(ntok * sizeof *ids + 1);
    uint8_t *units = malloc(ntok + 1);
    vocab v = {0};
    int rc = -1;
    if (!spans || !ids || !units) {
        fprintf(stderr, "trainer: %s: out of memory for %zu tokens\n", c->input, ntok);
        goto out;
    }
    words_split(buf, n, spans);
    while (ntrain < ntok && spans[ntrain].start < n - n / 10)
        ntrain++;
    if (vocab_build(&v, buf, spans, ntrain, c->vocab) != 0)
        goto out;
    for (size_t k = 0; k < ntok; k++) {
        ids[k] = (uint16_t)words_id(&v, buf + spans[k].start, spans[k].len);
        units[k] = (uint8_t)(spans[k].bytes < 255 ? spans[k].bytes : 255);
        unknown[k >= ntrain] += ids[k] == WORDS_UNKNOWN;
    }
    printf("prepare: %zu words and marks, vocabulary %d (<unk> included); unknown: %.2f%% of "
           "train, %.2f%% of val tokens\n",
           ntok, v.size, 100.0 * (double)unknown[0] / (double)(ntrain ? ntrain : 1),
           100.0 * (double)unknown[1] / (double)(ntok - ntrain ? ntok - ntrain : 1));
    token_splits t = {(const uint8_t *)ids, units, v.blob, 2, ntok, ntrain, v.blob_bytes, "tokens"};
    rc = write_token_splits(c, &t);
out:
    free(spans);
    free(ids);
    free(units);
    vocab_free(&v);
    return rc;
}

static int prepare_text(const config *c)
{
    size_t n = 0;
    uint8_t *buf = read_file(c->input, &n);
    if (!buf)
        return -1;
    int rc;
    if (!strcmp(c->tokens, "words")) {
        rc = prepare_words(c, buf, n);
    } else {
        token_splits t = {buf, NULL, NULL, 1, n, n - n / 10, 0, "bytes"};
        rc = write_token_splits(c, &t);
    }
    free(buf);
    return rc;
}

int cmd_prepare(int argc, char **argv)
{
    io_quiet_hdf5();
    cfg_list file = {0}, flags = {0};
    int rc = config_parse_args(CMD_PREPARE, argc, argv, &file, &flags, 1);
    const cfg_list *layers[2] = {&file, &flags};
    config c;
    int status = rc > 0 ? EXIT_DONE : EXIT_BAD_INPUT;
    if (rc == 0 && config_build(&c, CMD_PREPARE, layers, 2, 1) == 0 && make_dirs(c.out) == 0) {
        int failed = !strcmp(c.source, "text")       ? prepare_text(&c)
                     : !strcmp(c.source, "parallel") ? prepare_parallel(&c)
                                                     : prepare_images(&c);
        status = failed ? EXIT_BAD_INPUT : EXIT_DONE;
    }
    if (rc == 0)
        config_free(&c);
    cfg_list_free(&file);
    cfg_list_free(&flags);
    return status;
}
