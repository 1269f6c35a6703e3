/* A run: what the train, eval and sample commands hold while they work.
 *
 * Every rank holds the same parameters. The global batch is split into G
 * lanes; rank r holds lanes r, r + np, ... With --reduce exact each lane's
 * forward and backward passes run alone (on the rank's lane threads), so
 * every computation has the same shapes whatever -np is, and the lane
 * gradients are summed over all ranks in an order-free way
 * (comm/allreduce.c): the parameters after N steps are the same bits for any
 * -np that divides G. --reduce fast runs all of a rank's rows in one call
 * and sums floats with MPI: faster, reproducible only for the same -np.
 *
 * The model (model.h) and its task (task.h) are reached through their
 * interfaces only: nothing here knows which model it runs. */
#ifndef TRAINER_RUN_H
#define TRAINER_RUN_H

#include "comm/comm.h"
#include "config.h"
#include "io/checkpoint.h"
#include "lanes.h"
#include "model.h"
#include "task.h"

#include <stdint.h>

/* What one thread needs to run lanes: a model instance with its own
 * activations, a batch, row losses, and (exact) the gradient of the lane
 * it is running. The parameters are shared, read-only. */
typedef struct {
    model *m;
    batch b;
    double *row_loss;
    float **lane_grad; /* exact: lanes_per_call gradients */
    float *tree_grad;  /* exact, tree: the thread's subtree (thread 0 uses grad); a tree
                        * model's lanes one by one: what its backward writes */
    double fig[MAX_FIGURES]; /* the model's figures of this step's forwards */
} worker;

typedef struct run {
    config cfg;
    const model_type *mt;
    const task_type *task;
    int rank, np, loud;
    int nlanes, nlocal;
    int lane_rows;     /* rows per lane per step */
    int micro_rows;    /* per lane per micro-step */
    int lanes_per_call; /* exact: a thread's lanes in one call (models with backward_lanes), or 1 */
    int rows;          /* rows per model call: lanes_per_call * micro_rows (exact),
                        * nlocal * micro_rows (fast) */
    int units_per_row; /* loss units in a row: 1 (image), T (window) */
    int *lane_ids;
    int exact;
    int tree; /* exact: lanes summed in the fixed tree (model.h's tree_lanes) */
    float *tree_tmp; /* tree: what the partner rank sends */
    struct buckets *bk; /* the lane tree over ranks: its buckets (step.c) */
    /* this rank's seconds waiting for the sums over ranks once its own
     * part of a step was done (the gradient's, the parameters' allgather),
     * and buckets that started during the backward pass, of all */
    double wait_time;
    long buckets_early, buckets_all, steps_timed;
    int bucket_kb; /* the lane tree's buckets over ranks, KiB; 0: the whole span */
    /* the parts of the phase's span whose summed gradient this rank holds
     * and updates: all of it, or in the tree over several ranks its share of
     * each bucket (the others' Adam moments are then stale here until
     * step_gather_moments); whole NORM_CHUNKs from the span's start */
    struct own_range {
        size_t lo, hi;
    } *own;
    int nown;
    int moments_sharded;
    double *norm_parts; /* tree: the gradient norm's chunks */
    int nworkers; /* exact: threads running lanes; fast: 1 */
    /* what the lane threads do when the pool runs: lanes, or their share
     * of the AdamW update of pool_span */
    enum { POOL_LANES, POOL_COMBINE, POOL_ADAMW } pool_job;
    const struct span *pool_span;
    double pool_lr;
    long pool_t;
    worker *work;
    lane_pool pool;
    const param_table *pt;
    float *params, *grad, *adam_m, *adam_v;
    int phases, phase; /* the step's phases (model.h), and the one running */
    int phase_first[MAX_PHASES], phase_count[MAX_PHASES];
    lane_sum sum[MAX_PHASES]; /* exact: the order-free sum of lane gradients, per phase */
    int32_t *exps;
    size_t *bucket_off;
    dataset data;
    double *lane_loss; /* each lane's loss, the stop requests, the model's figures */
    long step, total_steps;
    double flops_per_unit, peak_flops;
    double dims_per_unit; /* density models: bits per dimension beside nats (model.h) */
    char peak_how[160]; /* how peak_flops was found, for the banner */
} run;

/* The cores this rank may use (run.c). */
double rank_cores(void);

/* Every rank calls this with its own verdict; all return the worst. */
int agree(int failed);

/* run.c: setting a run up and tearing it down. Each returns 0, or -1 on
 * every rank after the rank(s) with the problem printed a line. */
void run_begin(run *r);
/* The configuration of cmd from argv, with the checkpoint's (resume for
 * train, --checkpoint for eval and sample) under the flags. *status is the
 * exit status when it returns -1 (0 after --help). */
int run_configure(run *r, enum command cmd, int argc, char **argv, char *ckpt, size_t size,
                  ckpt_meta *meta, int *status);
/* Lanes and threads for training (exact: lanes alone on threads). */
int run_setup_lanes(run *r);
/* One lane per rank and up to `rows` rows per call, for eval and sample. */
void run_setup_inference(run *r, int rows);
int run_load_data(run *r, int need_train);
int run_build_model(run *r);
/* A fresh run of a model that takes part of its initial state from data
 * (model.h's init_from_data): rank 0 computes it, every rank gets it. */
int run_init_from_data(run *r);
int run_read_checkpoint(run *r, const char *path, const ckpt_meta *meta);
/* The checkpoint's vocabulary (word tokens): it must be the loaded data's,
 * or, with no data loaded (sample), it becomes the data format. */
int run_read_vocab(run *r, const char *path);
int run_write_checkpoint(run *r);
void run_end(run *r);

/* Rank 0 reads a checkpoint's root attributes and configuration and shares
 * them. */
int read_checkpoint_meta(const char *path, ckpt_meta *meta, cfg_list *cfg);

/* step.c: one optimizer step, and evaluation. */
typedef struct {
    double loss;     /* mean over the global batch, nats per loss unit */
    double norm;     /* global gradient norm; -1 when not measured */
    double lr;       /* the learning rate of this update */
    double phase_loss[MAX_PHASES]; /* each phase's loss (loss is phase 0's) */
    double figures[MAX_FIGURES];   /* the model's figures, per loss unit */
    int stop;        /* some rank was asked to stop */
    int bad_tensor;  /* the first tensor with a non-finite gradient, or -1 */
    int skipped;     /* no update: a non-finite gradient or loss, --on-nonfinite skip */
} step_result;
step_result train_step(run *r, int want_norm);
/* Every rank's Adam moments made whole on every rank (collective): before
 * a checkpoint, when the tree over ranks leaves each rank its share. */
void step_gather_moments(run *r);
/* What a step keeps from one to the next: made by run setup, freed with
 * the run. */
void step_init(run *r);
void step_free(run *r);
/* The tree's unit of sharing out a span, in elements (the norm's chunk). */
#define NORM_CHUNK 4096
/* Exact mode, lane thread k of the pool: the rank's lanes k, k + nworkers,
 * ... alone, each added into the thread's own slot of the lane sum. */
void step_lanes(void *arg, int k);
/* An evaluation over all ranks. */
typedef struct {
    double loss;       /* nats per loss unit */
    double nats;       /* in all */
    double text_bytes; /* text task: the source bytes the targets stand for (0 otherwise) */
    double unknown;    /* word tokens: targets that are the unknown token */
    double units;      /* loss units */
    double accuracy;   /* classifiers: the share of rows whose likeliest class is their label; -1 */
} eval_result;
eval_result evaluate(run *r);
/* Invertible models (model.h's roundtrip): the relative errors of the
 * evaluation rows taken to the latent space and back, over all ranks: the
 * largest, how many exceed 1e-4, and upper bounds of the median and of the
 * 99.9th percentile (from tenth-of-a-decade bins). */
typedef struct {
    double rows, largest, above_1e4, median_below, p999_below;
} roundtrip_result;
roundtrip_result evaluate_roundtrip(run *r);

#endif
