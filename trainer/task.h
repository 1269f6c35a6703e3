/* Tasks: the data side of training, shared by the models that learn from the
 * same kind of data (the VAE and later the GAN from images; the GPT and later
 * the LSTM from text).
 *
 * A task says which shards it reads and which split it evaluates on, how a
 * lane's rows are filled, which rows make the evaluation, and what the
 * progress line counts (images, bytes). Loading the shards is common to all
 * tasks (dataset_load in task.c); the task's functions work on the loaded
 * dataset and never touch files or ranks. */
#ifndef TRAINER_TASK_H
#define TRAINER_TASK_H

#include "batch.h"
#include "config.h"
#include "data.h"
#include "io/shards.h"

#include <stdio.h>

struct model;

/* What a model needs to know of the data to size itself. */
typedef struct {
    size_t in; /* values per image (image task) */
    int h, w;  /* its height and width */
    int T;     /* positions per row (text task) */
    int vocab; /* token ids are 0 .. vocab - 1 (text task) */
} data_shape;

/* A rank's data: its lanes of the train split and its part of the
 * evaluation split. */
typedef struct {
    int rank, np;
    int nlocal;
    lane_data *lanes; /* nlocal, NULL for eval and sample */
    split_data eval;  /* this rank's eval shards, or the whole split (shared) */
    size_t n_train;   /* train samples (images, bytes) over all ranks */
    size_t n_eval;    /* eval samples over all ranks */
    size_t in;        /* values per sample (h * w) */
    data_format fmt;  /* shape, token width, vocabulary: the same on every rank */
} dataset;

typedef struct task_type {
    const char *name;
    enum shard_kind kind;
    const char *eval_split;  /* "test", "val" */
    const char *eval_name;   /* "test", "validation" */
    int eval_shared;         /* 1: rank 0 reads the whole eval split, all ranks get it */
    const char *unit;        /* a loss unit: "image", "byte" */
    const char *(*unit_of)(const dataset *d); /* optional: the unit of this data ("token") */
    const char *rate_unit;   /* throughput: "samples", "tokens" */
    const char *sample_name; /* what the data counts when not loss units ("pair"); optional */
    int infer_rows;          /* rows per call in the eval and sample commands */
    int sample_needs_data;   /* sample loads the eval split (a model's shape, reconstructions) */
    opt_group opts;          /* stored in config.task_opts (TASK_OPTS) */
    const char *const (*defaults)[2];
    int ndefaults;
    int (*check)(config *c, int loud); /* optional */

    /* Checks the loaded data against the options (every rank alike, or
     * each its own part); one line and -1 on a problem. Optional. */
    int (*check_data)(const dataset *d, const config *c, int loud);
    data_shape (*shape)(const dataset *d, const config *c);
    /* Loss units per row: 1 for images, T for windows. */
    int (*units_per_row)(const config *c);
    /* Rows [at, at + n) of b: rows s0 .. s0 + n - 1 of local lane l's part
     * of step `step` (the same rows whoever computes them). */
    void (*fill)(const config *c, dataset *d, batch *b, int at, int l, long step, int s0, int n);
    /* The next rows of this rank's evaluation share, from *cursor (0 at the
     * start); returns how many (0 when done). */
    int (*eval_fill)(const config *c, const dataset *d, batch *b, size_t *cursor);
    /* Loss units of the whole evaluation, over all ranks, and its words. */
    double (*eval_units)(const config *c, const dataset *d);
    void (*eval_describe)(const config *c, const dataset *d, char *buf, size_t size);

    /* Optional: something to look at during training (rank 0, after each
     * step; final = 1 at the end), and the sample command. */
    void (*show)(const config *c, const dataset *d, struct model *m, const float *params,
                 long step, int final);
    int (*sample)(const config *c, const dataset *d, struct model *m, const float *params,
                  FILE *out);
    /* Optional: fills d->fmt.draft, the table sampling guesses from, out of
     * the training rows of local lane 0 (lane 0 on rank 0, whatever -np:
     * the same table); written into checkpoints. */
    void (*make_draft)(dataset *d);
} task_type;

#define TASK_OPTS(c, type) ((type *)(c)->task_opts)

extern const task_type image_task, text_task, pairs_task;

/* The loss unit of a task on this data. */
static inline const char *task_unit(const task_type *t, const dataset *d)
{
    return t->unit_of ? t->unit_of(d) : t->unit;
}

/* Collective. Reads this rank's lanes of the train split (when lane_ids is
 * not NULL) and its part of the eval split, checks them on every rank, and
 * agrees: -1 everywhere when any rank found a problem (it printed a line). */
int dataset_load(dataset *d, const task_type *t, const config *c, const int *lane_ids,
                 int nlocal, int nlanes);
void dataset_free(dataset *d);

#endif
