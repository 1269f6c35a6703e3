/* The train, eval and sample commands: data-parallel training over lanes.
 *
 * Every rank holds the same parameters. The global batch is split into G
 * lanes; rank r holds lanes r, r + np, ... With --reduce exact each lane's
 * forward and backward passes run alone, so every computation has the same
 * shapes whatever -np is, and the lane gradients are summed over all ranks
 * in an order-free way (comm/allreduce.c): the parameters after N steps are
 * the same bits for any -np that divides G. --reduce fast runs all of a
 * rank's rows at once and sums floats with MPI: faster, reproducible only for
 * the same -np. The models (vae.c, gpt.c) never see ranks or lanes. */
#include "train.h"

#include "adamw.h"
#include "comm/comm.h"
#include "config.h"
#include "data.h"
#include "io/checkpoint.h"
#include "io/shards.h"
#include "philox.h"
#include "util.h"
#include "gpt.h"
#include "vae.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(PARAMS_MAX <= CKPT_MAX_TENSORS, "checkpoint exponent array too small");

static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

/* What one thread needs to run lanes: a model with its own activations,
 * a batch, and a gradient. The parameters are shared, read-only. */
typedef struct {
    vae vm;
    gpt gm;
    float *x, *eps;     /* VAE batch */
    uint8_t *tok, *tgt; /* GPT batch */
    double *row_loss;
    float *lane_grad; /* exact: the gradient of the lane being run */
} worker;

struct run;
typedef struct {
    struct run *r;
    int k;
} lane_job;

typedef struct run {
    config cfg;
    int rank, np, loud;
    int is_gpt;
    int nlanes, nlocal;
    int lane_rows;  /* samples (VAE) or sequences (GPT) per lane per step */
    int micro_rows; /* per lane per micro-step */
    int rows;       /* rows per model call: micro_rows (exact), nlocal * micro_rows (fast) */
    int T;          /* GPT context */
    int *lane_ids;
    int exact;
    int nworkers; /* exact: threads running lanes; fast: 1 */
    worker *work;
    lane_job *jobs;
    pthread_t *tid;
    pthread_barrier_t start, done;
    int threads_running, quit;
    const param_table *pt;
    float *params, *grad, *adam_m, *adam_v;
    lane_sum sum; /* exact: the order-free sum of lane gradients */
    int32_t *exps;
    size_t *bucket_off;
    lane_data *lanes;
    split_data test; /* VAE: this rank's test shards; GPT: the whole val split */
    size_t n_train, n_test, in;
    double *lane_loss;
    long step, total_steps;
    double flops_per_token, peak_flops;
} run;

/* Every rank calls this with its own verdict; all return the worst. */
static int agree(int failed) { return comm_max_int(failed ? 1 : 0); }

/* The cores this rank may use: those it is bound to, or its share of the
 * node's when it is not bound. */
static int cores_per_rank(void)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    int n = mine < online ? mine : (int)online / comm_local_size();
    return n < 1 ? 1 : n;
}

/* Threads. OpenBLAS results change with its thread count, so with
 * --reduce exact BLAS runs one thread and the rank's lanes are spread over
 * --threads threads instead (which thread runs a lane changes nothing);
 * with --reduce fast, BLAS gets the threads. */
static void set_threads(run *r)
{
    int n = r->cfg.threads ? r->cfg.threads : cores_per_rank();
    if (r->exact) {
        openblas_set_num_threads(1);
        r->nworkers = n < r->nlocal ? n : r->nlocal;
    } else {
        openblas_set_num_threads(n);
        r->nworkers = 1;
    }
}

static void build_tensor_list(const param_table *t, ckpt_tensor *out)
{
    for (int i = 0; i < t->n; i++) {
        out[i].name = t->v[i].name;
        out[i].ndim = t->v[i].ndim;
        for (int d = 0; d < 4; d++)
            out[i].shape[d] = t->v[i].shape[d];
        out[i].offset = t->v[i].offset;
    }
}

static const char *const GROUPS[3] = {"params", "adam_m", "adam_v"};

static int write_checkpoint(run *r)
{
    int failed = 0;
    if (r->rank == 0) {
        char path[CFG_PATH + 32];
        snprintf(path, sizeof path, "%s/checkpoint.h5", r->cfg.run_dir);
        ckpt_meta meta = {0};
        snprintf(meta.model, sizeof meta.model, "%s", r->cfg.model);
        snprintf(meta.program_version, sizeof meta.program_version, "%s", PACKAGE_VERSION);
        meta.step = r->step;
        meta.data_position = (long long)r->step * r->lane_rows;
        meta.seed = r->cfg.seed;
        meta.world_size = r->np;
        meta.lanes = r->nlanes;
        if (r->exact) {
            meta.nexps = r->pt->n;
            memcpy(meta.exps, r->exps, (size_t)meta.nexps * sizeof *meta.exps);
        }
        cfg_list l = {0};
        config_to_list(&r->cfg, &l);
        ckpt_kv *kv = xcalloc((size_t)l.n, sizeof *kv, "checkpoint config");
        for (int i = 0; i < l.n; i++) {
            snprintf(kv[i].key, sizeof kv[i].key, "%s", l.e[i].key);
            snprintf(kv[i].value, sizeof kv[i].value, "%s", l.e[i].value);
        }
        ckpt_tensor *t = xcalloc((size_t)r->pt->n, sizeof *t, "tensor list");
        build_tensor_list(r->pt, t);
        float *bufs[3] = {r->params, r->adam_m, r->adam_v};
        failed = checkpoint_write(path, &meta, kv, l.n, t, r->pt->n, GROUPS, bufs, 3) != 0;
        free(t);
        free(kv);
        cfg_list_free(&l);
    }
    return agree(failed);
}

/* Rank 0 reads the checkpoint's root attributes and configuration and
 * shares them; every rank returns the same verdict. */
static int read_checkpoint_meta(const char *path, ckpt_meta *meta, cfg_list *cfg)
{
    ckpt_kv *kv = NULL;
    int n = 0, failed = 0;
    if (comm_rank() == 0)
        failed = checkpoint_read_meta(path, meta, &kv, &n) != 0;
    if (agree(failed))
        return -1;
    comm_bcast_bytes(meta, sizeof *meta, 0);
    comm_bcast_bytes(&n, sizeof n, 0);
    if (comm_rank() != 0)
        kv = xcalloc((size_t)n, sizeof *kv, "checkpoint config");
    comm_bcast_bytes(kv, (size_t)n * sizeof *kv, 0);
    for (int i = 0; i < n; i++)
        cfg_list_set(cfg, kv[i].key, kv[i].value);
    free(kv);
    return 0;
}

static int read_checkpoint_tensors(run *r, const char *path, const ckpt_meta *meta)
{
    int failed = 0;
    if (r->rank == 0) {
        ckpt_tensor *t = xcalloc((size_t)r->pt->n, sizeof *t, "tensor list");
        build_tensor_list(r->pt, t);
        float *bufs[3] = {r->params, r->adam_m, r->adam_v};
        failed = checkpoint_read_tensors(path, meta, t, r->pt->n, GROUPS, bufs, 3) != 0;
        free(t);
    }
    if (agree(failed))
        return -1;
    size_t bytes = r->pt->total * sizeof(float);
    comm_bcast_bytes(r->params, bytes, 0);
    comm_bcast_bytes(r->adam_m, bytes, 0);
    comm_bcast_bytes(r->adam_v, bytes, 0);
    return 0;
}

static int build_worker(run *r, worker *w)
{
    const config *c = &r->cfg;
    if (r->is_gpt) {
        if (gpt_build(&w->gm, 256, c->ctx, c->dim, c->layers, c->heads, (float)c->dropout,
                      r->rows) != 0)
            return -1;
        w->tok = xcalloc((size_t)r->rows * r->T, 1, "batch");
        w->tgt = xcalloc((size_t)r->rows * r->T, 1, "batch");
    } else {
        if (vae_build(&w->vm, (int)r->in, c->hidden_sizes, c->nhidden, c->latent,
                      strcmp(c->likelihood, "gaussian") ? LIK_BERNOULLI : LIK_GAUSSIAN,
                      (float)c->kl_weight, c->autoencoder, r->rows) != 0)
            return -1;
        w->x = xcalloc((size_t)r->rows * r->in, sizeof(float), "batch");
        w->eps = xcalloc((size_t)r->rows * c->latent, sizeof(float), "eps");
    }
    w->row_loss = xcalloc((size_t)r->rows, sizeof(double), "losses");
    return 0;
}

static void start_lane_threads(run *r);

static int build_model(run *r)
{
    const config *c = &r->cfg;
    if (r->nworkers < 1)
        r->nworkers = 1;
    r->work = xcalloc((size_t)r->nworkers, sizeof *r->work, "workers");
    int failed = 0;
    for (int k = 0; k < r->nworkers && !failed; k++)
        failed = build_worker(r, &r->work[k]) != 0;
    if (agree(failed))
        return -1;
    worker *w0 = &r->work[0];
    r->pt = r->is_gpt ? &w0->gm.params : &w0->vm.params;
    size_t P = r->pt->total;
    r->params = xcalloc(P, sizeof(float), "parameters");
    r->grad = xcalloc(P, sizeof(float), "gradients");
    r->adam_m = xcalloc(P, sizeof(float), "Adam moments");
    r->adam_v = xcalloc(P, sizeof(float), "Adam moments");
    const int nb = r->pt->n;
    r->bucket_off = xcalloc((size_t)nb + 1, sizeof(size_t), "buckets");
    params_bucket_offsets(r->pt, r->bucket_off);
    if (r->exact) {
        for (int k = 0; k < r->nworkers; k++)
            r->work[k].lane_grad = xcalloc(P, sizeof(float), "lane gradient");
        r->exps = xcalloc((size_t)nb, sizeof(int32_t), "buckets");
        if (lane_sum_init(&r->sum, r->nlanes, r->bucket_off, nb, r->nworkers, r->exps) != 0) {
            fprintf(stderr, "trainer: out of memory for the lane sums\n");
            comm_abort(EXIT_INTERNAL);
        }
    }
    if (r->is_gpt) {
        gpt_init(&w0->gm, r->params, (uint32_t)c->seed);
        r->flops_per_token = gpt_flops_per_token(&w0->gm, r->T);
    } else {
        vae_init(&w0->vm, r->params, (uint32_t)c->seed);
    }
    r->lane_loss = xcalloc((size_t)r->nlanes + 1, sizeof(double), "losses");
    if (r->exact)
        start_lane_threads(r);
    return 0;
}

static void stop_lane_threads(run *r);

static void free_run(run *r)
{
    stop_lane_threads(r);
    for (int k = 0; r->work && k < r->nworkers; k++) {
        worker *w = &r->work[k];
        if (r->is_gpt)
            gpt_free(&w->gm);
        else
            vae_free(&w->vm);
        free(w->x);
        free(w->eps);
        free(w->tok);
        free(w->tgt);
        free(w->row_loss);
        free(w->lane_grad);
    }
    free(r->work);
    lane_sum_free(&r->sum);
    free(r->params);
    free(r->grad);
    free(r->adam_m);
    free(r->adam_v);
    free(r->exps);
    free(r->bucket_off);
    free(r->lane_loss);
    if (r->lanes)
        lane_data_free(r->lanes, r->nlocal);
    free(r->lanes);
    split_data_free(&r->test);
    free(r->lane_ids);
}

/* The shard count of a split, from the first file's attributes: rank 0
 * reads it and shares it. Returns -1 (everywhere) when that file is bad. */
static int split_shard_count(const run *r, const char *split)
{
    int k = 0;
    if (r->rank == 0) {
        char path[CFG_PATH + 32];
        shard_path(path, sizeof path, r->cfg.data, split, 0);
        k = shard_read_count(path);
    }
    comm_bcast_bytes(&k, sizeof k, 0);
    return k;
}

/* Shard checks every rank makes alike, then each rank loads its own files:
 * its lanes' train shards, and its test shards (VAE) or the whole
 * validation split (GPT: small, and every rank draws windows from it). */
static int load_data(run *r, int need_train)
{
    const config *c = &r->cfg;
    const enum shard_kind kind = r->is_gpt ? SHARD_TOKENS : SHARD_IMAGES;
    const char *eval_split = r->is_gpt ? "val" : "test";
    int ktrain = need_train ? split_shard_count(r, "train") : 0;
    if (ktrain < 0)
        return -1;
    int ktest = split_shard_count(r, eval_split);
    if (ktest < 0)
        return -1;
    if (need_train && ktrain < r->np) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: %d train shards for %d ranks: need at least one per rank\n",
                    c->data, ktrain, r->np);
        return -1;
    }
    if (need_train && ktrain < r->nlanes) {
        if (r->loud)
            fprintf(stderr,
                    "trainer: %s: %d train shards for %d lanes: need at least one per lane (--lanes)\n",
                    c->data, ktrain, r->nlanes);
        return -1;
    }
    size_t h = 0, w = 0;
    int failed = 0;
    if (need_train) {
        r->lanes = xcalloc((size_t)r->nlocal, sizeof *r->lanes, "lanes");
        failed = lane_data_load(r->lanes, r->lane_ids, r->nlocal, r->nlanes, c->data, "train",
                                ktrain, kind, &h, &w) != 0;
    }
    if (!failed && !r->is_gpt)
        failed = split_data_load(&r->test, c->data, eval_split, ktest, kind, r->rank, r->np, &h,
                                 &w) != 0;
    if (agree(failed))
        return -1;
    if (r->is_gpt) { /* rank 0 reads the validation split and shares it */
        if (r->rank == 0)
            failed = split_data_load(&r->test, c->data, eval_split, ktest, kind, 0, 1, &h, &w) != 0;
        if (agree(failed))
            return -1;
        comm_bcast_bytes(&r->test.n, sizeof r->test.n, 0);
        if (r->rank != 0)
            r->test.data = xcalloc(r->test.n, 1, "validation split");
        comm_bcast_bytes(r->test.data, r->test.n, 0);
        h = w = 1;
    }
    for (int l = 0; !failed && r->is_gpt && need_train && l < r->nlocal; l++)
        if (r->lanes[l].n < (size_t)r->T + 1) {
            fprintf(stderr, "trainer: %s: lane %d has %zu bytes, fewer than --ctx %d + 1\n",
                    c->data, r->lanes[l].lane, r->lanes[l].n, r->T);
            failed = 1;
        }
    if (!failed && r->is_gpt && r->test.n < (size_t)r->T + 1) {
        fprintf(stderr, "trainer: %s: the validation split has %zu bytes, fewer than --ctx %d + 1\n",
                c->data, r->test.n, r->T);
        failed = 1;
    }
    if (agree(failed))
        return -1;
    /* every rank must see the same sample size; a rank that loaded nothing
     * (more ranks than test shards) takes no part */
    int in = (int)(h * w);
    int hi = comm_max_int(in);
    int lo = -comm_max_int(in ? -in : -hi);
    if (hi != lo) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: shards hold samples of different sizes (%d and %d)\n",
                    c->data, lo, hi);
        return -1;
    }
    r->in = (size_t)hi;
    double counts[2] = {0, r->is_gpt ? 0.0 : (double)r->test.n};
    for (int l = 0; l < r->nlocal && need_train; l++)
        counts[0] += (double)r->lanes[l].n;
    comm_sum_double(counts, 2);
    r->n_train = (size_t)counts[0];
    r->n_test = r->is_gpt ? r->test.n : (size_t)counts[1];
    return 0;
}

static void fill_pixels(float *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] * (1.0f / 255.0f);
}

/* A window of T + 1 bytes: inputs and next-byte targets. */
static void fill_window(uint8_t *tok, uint8_t *tgt, const uint8_t *src, int T)
{
    memcpy(tok, src, (size_t)T);
    memcpy(tgt, src + 1, (size_t)T);
}

/* VAE: the test negative ELBO in nats per image, over the whole test split.
 * GPT: the validation loss in nats per byte over a fixed set of windows. */
static double evaluate(run *r)
{
    const uint32_t seed = (uint32_t)r->cfg.seed;
    worker *w0 = &r->work[0];
    double sum = 0.0;
    if (r->is_gpt) {
        const int T = r->T, W = r->cfg.val_windows;
        int R = 0;
        for (int i = r->rank; i < W; i += r->np) {
            uint32_t w[4];
            rng_block(seed, RNG_STREAM_GLOBAL, RNG_EVAL, (uint32_t)i, 0, 0, w);
            size_t off = rng_below(w[0], (uint32_t)(r->test.n - (size_t)T));
            fill_window(w0->tok + (size_t)R * T, w0->tgt + (size_t)R * T, r->test.data + off, T);
            if (++R == r->rows || i + r->np >= W) {
                gpt_forward(&w0->gm, r->params, w0->tok, w0->tgt, R, T, NULL, w0->row_loss);
                for (int j = 0; j < R; j++)
                    sum += w0->row_loss[j];
                R = 0;
            }
        }
        comm_sum_double(&sum, 1);
        return sum / ((double)W * T);
    }
    const int L = r->cfg.latent;
    for (size_t i0 = 0; i0 < r->test.n; i0 += (size_t)r->rows) {
        int R = (int)(r->test.n - i0 < (size_t)r->rows ? r->test.n - i0 : (size_t)r->rows);
        for (int j = 0; j < R; j++) {
            size_t i = i0 + (size_t)j;
            fill_pixels(w0->x + (size_t)j * r->in, r->test.data + i * r->in, r->in);
            rng_normals(seed, RNG_STREAM_GLOBAL, RNG_EVAL, r->test.shard_of[i], r->test.index_in[i],
                        w0->eps + (size_t)j * L, (size_t)L);
        }
        vae_forward(&w0->vm, r->params, w0->x, w0->eps, R, w0->row_loss);
        for (int j = 0; j < R; j++)
            sum += w0->row_loss[j];
    }
    comm_sum_double(&sum, 1);
    return sum / (double)r->n_test;
}

/* The inputs of lane l's rows for micro-step m, at batch row `at`. */
static void fill_lane(run *r, worker *w, int l, int m, int at)
{
    const config *c = &r->cfg;
    const uint32_t seed = (uint32_t)c->seed;
    lane_data *d = &r->lanes[l];
    for (int j = 0; j < r->micro_rows; j++) {
        const int row = at + j, s = m * r->micro_rows + j; /* s: row within the lane's step */
        if (r->is_gpt) {
            uint32_t draw[4];
            rng_block(seed, (uint32_t)d->lane, RNG_WINDOW, (uint32_t)r->step, (uint32_t)s, 0, draw);
            size_t off = rng_below(draw[0], (uint32_t)(d->n - (size_t)r->T));
            fill_window(w->tok + (size_t)row * r->T, w->tgt + (size_t)row * r->T, d->data + off,
                        r->T);
        } else {
            uint64_t pos = (uint64_t)r->step * (uint64_t)r->lane_rows + (uint64_t)s;
            uint32_t idx = lane_sample(d, seed, pos);
            fill_pixels(w->x + (size_t)row * r->in, d->data + (size_t)idx * d->sample_bytes, r->in);
            rng_normals(seed, (uint32_t)d->lane, RNG_EPS, (uint32_t)r->step, (uint32_t)s,
                        w->eps + (size_t)row * c->latent, (size_t)c->latent);
        }
    }
}

/* Forward and backward over R batch rows; GPT accumulates into grad, the
 * VAE (one micro-step only) writes it. Returns the rows' summed loss. */
static double forward_backward(run *r, worker *w, float *grad, int R, const gpt_noise *noise)
{
    const config *c = &r->cfg;
    if (r->is_gpt) {
        gpt_forward(&w->gm, r->params, w->tok, w->tgt, R, r->T, noise, w->row_loss);
        gpt_backward(&w->gm, r->params, grad, w->tok, w->tgt, R, r->T,
                     1.0f / ((float)c->batch * (float)r->T));
    } else {
        vae_forward(&w->vm, r->params, w->x, w->eps, R, w->row_loss);
        vae_backward(&w->vm, r->params, grad, w->x, w->eps, R, 1.0f / (float)c->batch);
    }
    double s = 0.0;
    for (int j = 0; j < R; j++)
        s += w->row_loss[j];
    return s;
}

/* Exact mode: thread k runs the rank's lanes k, k + nworkers, ... alone,
 * adding each lane's gradient into its own slot of the lane sum. */
static void *run_lanes(void *arg)
{
    lane_job *job = arg;
    run *r = job->r;
    worker *w = &r->work[job->k];
    const config *c = &r->cfg;
    const int M = c->micro_steps;
    for (int l = job->k; l < r->nlocal; l += r->nworkers) {
        double loss = 0.0;
        if (r->is_gpt)
            memset(w->lane_grad, 0, r->pt->total * sizeof(float));
        for (int m = 0; m < M; m++) {
            gpt_noise noise = {(uint32_t)c->seed, (uint32_t)r->lane_ids[l],
                               (uint32_t)(r->step * M + m)};
            fill_lane(r, w, l, m, 0);
            loss += forward_backward(r, w, w->lane_grad, r->micro_rows, &noise);
        }
        r->lane_loss[r->lane_ids[l]] = loss; /* one writer per slot */
        lane_sum_add(&r->sum, job->k, w->lane_grad);
    }
    return NULL;
}

/* The lane threads live as long as the run (nothing is allocated per
 * step): they wait at `start`, run their lanes, and meet at `done`. */
static void *lane_thread(void *arg)
{
    lane_job *job = arg;
    run *r = job->r;
    for (;;) {
        pthread_barrier_wait(&r->start);
        if (r->quit)
            return NULL;
        run_lanes(job);
        pthread_barrier_wait(&r->done);
    }
}

static void start_lane_threads(run *r)
{
    if (r->nworkers < 2)
        return;
    r->jobs = xcalloc((size_t)r->nworkers, sizeof *r->jobs, "lane threads");
    r->tid = xcalloc((size_t)r->nworkers, sizeof *r->tid, "lane threads");
    pthread_barrier_init(&r->start, NULL, (unsigned)r->nworkers);
    pthread_barrier_init(&r->done, NULL, (unsigned)r->nworkers);
    for (int k = 0; k < r->nworkers; k++)
        r->jobs[k] = (lane_job){r, k};
    for (int k = 1; k < r->nworkers; k++)
        if (pthread_create(&r->tid[k], NULL, lane_thread, &r->jobs[k]) != 0) {
            fprintf(stderr, "trainer: cannot start lane thread %d\n", k);
            comm_abort(EXIT_INTERNAL);
        }
    r->threads_running = 1;
}

static void stop_lane_threads(run *r)
{
    if (r->threads_running) {
        r->quit = 1;
        pthread_barrier_wait(&r->start);
        for (int k = 1; k < r->nworkers; k++)
            pthread_join(r->tid[k], NULL);
        pthread_barrier_destroy(&r->start);
        pthread_barrier_destroy(&r->done);
        r->threads_running = 0;
    }
    free(r->jobs);
    free(r->tid);
    r->jobs = NULL;
    r->tid = NULL;
}

/* Runs every local lane on nworkers threads (this one included). */
static void run_all_lanes(run *r)
{
    lane_job self = {r, 0};
    if (!r->threads_running) {
        run_lanes(&self);
        return;
    }
    pthread_barrier_wait(&r->start);
    run_lanes(&self);
    pthread_barrier_wait(&r->done);
}

/* The learning rate of the update that ends step `step` (0-based): linear
 * warmup over --warmup steps, then a cosine from lr down to min_lr_frac * lr
 * at the last step (constant when min_lr_frac is 1). */
static double learning_rate(const config *c, long step, long total)
{
    double t = (double)step + 1.0;
    if (c->warmup > 0 && t <= c->warmup)
        return c->lr * t / c->warmup;
    double span = (double)(total - c->warmup);
    double progress = span > 0 ? (t - c->warmup) / span : 1.0;
    progress = progress > 1.0 ? 1.0 : progress;
    double lo = c->lr * c->min_lr_frac;
    return lo + 0.5 * (1.0 + cos(M_PI * progress)) * (c->lr - lo);
}

/* One optimizer step; returns the mean loss of the global batch (nats per
 * image, or per byte). Sets *stop when any rank has been asked to stop. */
static double train_step(run *r, int *stop, double *grad_norm, double *lr_used)
{
    const config *c = &r->cfg;
    const size_t P = r->pt->total;
    const int M = c->micro_steps;
    memset(r->lane_loss, 0, ((size_t)r->nlanes + 1) * sizeof(double));
    if (r->exact) {
        do {
            lane_sum_begin(&r->sum);
            run_all_lanes(r);
        } while (lane_sum_end(&r->sum, r->grad) == LANE_SUM_AGAIN);
    } else {
        worker *w = &r->work[0];
        if (r->is_gpt)
            memset(r->grad, 0, P * sizeof(float));
        for (int m = 0; m < M; m++) {
            for (int l = 0; l < r->nlocal; l++)
                fill_lane(r, w, l, m, l * r->micro_rows);
            gpt_noise noise = {(uint32_t)c->seed, RNG_STREAM_GLOBAL - 1 - (uint32_t)r->rank,
                               (uint32_t)(r->step * M + m)};
            forward_backward(r, w, r->grad, r->rows, &noise);
            for (int l = 0; l < r->nlocal; l++)
                for (int j = 0; j < r->micro_rows; j++)
                    r->lane_loss[r->lane_ids[l]] += w->row_loss[l * r->micro_rows + j];
        }
        comm_sum_float(r->grad, P);
    }
    /* lane losses: each slot has one contributor, so the sum is exact; the
     * last slot carries the stop requests */
    r->lane_loss[r->nlanes] = g_stop_signal ? 1.0 : 0.0;
    comm_sum_double(r->lane_loss, (size_t)r->nlanes + 1);
    *stop = r->lane_loss[r->nlanes] > 0.0;

    /* the global gradient norm, in a fixed order: the same on every rank;
     * needed for clipping, and reported by the language model */
    *grad_norm = 0.0;
    if (c->grad_clip > 0 || r->is_gpt) {
        double norm2 = 0.0;
        for (size_t i = 0; i < P; i++)
            norm2 += (double)r->grad[i] * r->grad[i];
        *grad_norm = sqrt(norm2);
    }
    if (c->grad_clip > 0 && *grad_norm > c->grad_clip) {
        const float k = (float)(c->grad_clip / *grad_norm);
        for (size_t i = 0; i < P; i++)
            r->grad[i] *= k;
    }
    *lr_used = learning_rate(c, r->step, r->total_steps);
    r->step++;
    adamw_hparams h = {(float)*lr_used, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                       (float)c->weight_decay};
    for (int i = 0; i < r->pt->n; i++) {
        const param_view *v = &r->pt->v[i];
        adamw_update(r->params + v->offset, r->grad + v->offset, r->adam_m + v->offset,
                     r->adam_v + v->offset, v->numel, &h, r->step, v->decay);
    }
    double loss = 0.0;
    for (int l = 0; l < r->nlanes; l++)
        loss += r->lane_loss[l];
    return loss / ((double)c->batch * (r->is_gpt ? r->T : 1));
}

/* The sgemm rate of all ranks at once, in FLOP/s: the denominator of the
 * model FLOPs utilisation. Every thread that trains (lane threads, or BLAS's
 * own) multiplies matrices of this model's shapes (rows x width x 4 width)
 * for a fifth of a second, all at the same time, and the rates are added. */
typedef struct {
    int M, N, K;
    double rate;
} sgemm_probe;

static void *probe_sgemm(void *arg)
{
    sgemm_probe *p = arg;
    float *a = xcalloc((size_t)p->M * p->K, sizeof(float), "sgemm probe");
    float *b = xcalloc((size_t)p->N * p->K, sizeof(float), "sgemm probe");
    float *c = xcalloc((size_t)p->M * p->N, sizeof(float), "sgemm probe");
    double t0 = now_seconds(), t = 0;
    long reps = 0;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->M, p->N, p->K, 1.0f, a, p->K, b,
                    p->K, 0.0f, c, p->N);
        reps++;
        t = now_seconds() - t0;
    } while (t < 0.2);
    free(a);
    free(b);
    free(c);
    p->rate = 2.0 * p->M * p->N * (double)p->K * reps / t;
    return NULL;
}

/* Three rounds, each started together on every rank; the best round counts
 * (a shared machine only ever slows a round down). */
static double measure_peak(const run *r)
{
    sgemm_probe probes[64];
    pthread_t tid[64];
    const int n = r->nworkers < 64 ? r->nworkers : 64;
    double best = 0.0;
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < n; k++)
            probes[k] = (sgemm_probe){r->rows * r->T, 4 * r->cfg.dim, r->cfg.dim, 0.0};
        comm_barrier();
        for (int k = 1; k < n; k++)
            if (pthread_create(&tid[k], NULL, probe_sgemm, &probes[k]) != 0)
                probes[k].rate = 0.0;
        probe_sgemm(&probes[0]);
        double rate = probes[0].rate;
        for (int k = 1; k < n; k++) {
            pthread_join(tid[k], NULL);
            rate += probes[k].rate;
        }
        comm_sum_double(&rate, 1);
        best = rate > best ? rate : best;
    }
    return best;
}

static void print_sample(run *r, const char *prompt, int length)
{
    int plen = (int)strlen(prompt);
    uint8_t *out = xcalloc((size_t)plen + (size_t)length + 2, 1, "sample");
    int n = gpt_sample(&r->work[0].gm, r->params, (const uint8_t *)prompt, plen, length,
                       (float)r->cfg.temperature, r->cfg.top_k, (uint32_t)r->cfg.seed, out);
    printf("sample at step %ld: ", r->step);
    fwrite(out, 1, (size_t)n, stdout);
    printf("\n");
    free(out);
}

static int setup_lanes(run *r)
{
    const config *c = &r->cfg;
    r->is_gpt = strcmp(c->model, "gpt") == 0;
    r->nlanes = c->lanes;
    if (r->nlanes % r->np != 0) {
        if (r->loud)
            fprintf(stderr,
                    "trainer: -np %d does not divide --lanes %d: use a number of ranks that divides it\n",
                    r->np, r->nlanes);
        return -1;
    }
    r->nlocal = r->nlanes / r->np;
    r->lane_rows = c->batch / r->nlanes;
    r->micro_rows = r->lane_rows / c->micro_steps;
    r->exact = strcmp(c->reduce, "exact") == 0;
    r->rows = r->exact ? r->micro_rows : r->nlocal * r->micro_rows;
    r->T = c->ctx;
    r->lane_ids = xcalloc((size_t)r->nlocal, sizeof(int), "lanes");
    for (int l = 0; l < r->nlocal; l++)
        r->lane_ids[l] = r->rank + l * r->np;
    return 0;
}

/* Parses flags, applies the checkpoint's configuration when resuming, and
 * checks it. Returns the path to resume from ("" for none) in resume. */
static int configure(run *r, int argc, char **argv, char *resume, ckpt_meta *meta, int *status)
{
    cfg_list given = {0}, from_ckpt = {0};
    int rc = config_parse_args(CMD_TRAIN, argc, argv, &given, r->loud);
    if (rc != 0) {
        *status = rc > 0 ? EXIT_DONE : EXIT_BAD_INPUT;
        cfg_list_free(&given);
        return -1;
    }
    const cfg_list *layers[2] = {&given, NULL};
    config probe;
    if (config_build(&probe, CMD_TRAIN, layers, 1, r->loud) != 0)
        goto bad;
    resume[0] = 0;
    if (!strcmp(probe.resume, "auto")) {
        snprintf(resume, CFG_PATH + 32, "%s/checkpoint.h5", probe.run_dir);
        if (access(resume, F_OK) != 0)
            resume[0] = 0;
    } else if (probe.resume[0]) {
        snprintf(resume, CFG_PATH + 32, "%s", probe.resume);
    }
    if (resume[0] && read_checkpoint_meta(resume, meta, &from_ckpt) != 0)
        goto bad;
    layers[0] = &from_ckpt;
    layers[1] = &given;
    if (config_build(&r->cfg, CMD_TRAIN, layers, 2, r->loud) != 0)
        goto bad;
    if (resume[0] && strcmp(meta->model, r->cfg.model) != 0) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: checkpoint holds a %s model, this run trains a %s\n",
                    resume, meta->model, r->cfg.model);
        goto bad;
    }
    cfg_list_free(&given);
    cfg_list_free(&from_ckpt);
    return 0;
bad:
    *status = EXIT_BAD_INPUT;
    cfg_list_free(&given);
    cfg_list_free(&from_ckpt);
    return -1;
}

static void print_progress(const run *r, double loss, double window_time, long window_steps,
                           double norm, double lr, double elapsed, double run_time,
                           long steps_this_run)
{
    char el[32], eta[32];
    format_duration(el, sizeof el, elapsed);
    double per_step = steps_this_run > 0 ? run_time / steps_this_run : 0;
    format_duration(eta, sizeof eta, per_step * (double)(r->total_steps - r->step));
    const double per_s = (double)window_steps * r->cfg.batch / window_time;
    if (r->is_gpt) {
        double tokens_per_s = per_s * r->T;
        printf("step %5ld/%ld | loss %.4f nats/byte | lr %.2e | norm %6.3f | %7.0f tokens/s | "
               "MFU %4.1f%% | elapsed %s | eta %s\n",
               r->step, r->total_steps, loss, lr, norm, tokens_per_s,
               100.0 * tokens_per_s * r->flops_per_token / r->peak_flops, el, eta);
    } else {
        printf("step %6ld/%ld | epoch %6.2f | loss %9.3f nats | %8.0f samples/s | elapsed %s | "
               "eta %s\n",
               r->step, r->total_steps, (double)r->step * r->cfg.batch / (double)r->n_train, loss,
               per_s, el, eta);
    }
    fflush(stdout);
}

static void print_eval(const run *r, const char *what, double loss)
{
    if (r->is_gpt)
        printf("%s: validation loss %.4f nats/byte (%.4f bits/byte) over %d windows of %d bytes\n",
               what, loss, loss / M_LN2, r->cfg.val_windows, r->T);
    else
        printf("%s: test negative ELBO %.3f nats/image over %zu images\n", what, loss, r->n_test);
}

int cmd_train(int argc, char **argv) { return train_run(argc, argv, NULL); }

int train_run(int argc, char **argv, train_stats *stats)
{
    train_stats st = {0};
    st.first_loss = NAN;
    run r = {0};
    r.rank = comm_rank();
    r.np = comm_size();
    r.loud = r.rank == 0;
    io_quiet_hdf5();
    char resume[CFG_PATH + 32];
    ckpt_meta meta = {0};
    int status = EXIT_BAD_INPUT;
    if (configure(&r, argc, argv, resume, &meta, &status) != 0)
        return status;
    const config *c = &r.cfg;
    if (setup_lanes(&r) != 0)
        goto bad;
    set_threads(&r);
    if (load_data(&r, 1) != 0 || build_model(&r) != 0)
        goto bad;
    if (resume[0]) {
        if (read_checkpoint_tensors(&r, resume, &meta) != 0)
            goto bad;
        r.step = (long)meta.step;
        /* the reduction's scales carry over, for an exact resume; a
         * checkpoint of a fast run has none: the first step measures them */
        if (r.exact && meta.nexps == r.pt->n)
            memcpy(r.exps, meta.exps, (size_t)meta.nexps * sizeof *meta.exps);
    }
    if (c->steps)
        r.total_steps = c->steps;
    else if (r.is_gpt)
        r.total_steps = (long)ceil(c->epochs * (double)r.n_train / ((double)c->batch * r.T));
    else
        r.total_steps = (long)ceil(c->epochs * (double)r.n_train / (double)c->batch);
    if (agree(r.loud && make_dirs(c->run_dir) != 0))
        goto bad;
    if (r.is_gpt)
        r.peak_flops = measure_peak(&r);

    if (r.loud) {
        printf("trainer %s: train %s on %d rank(s), %d lanes of %d %s, reduce %s, "
               "%d lane thread(s) x %d BLAS thread(s) per rank\n",
               PACKAGE_VERSION, c->model, r.np, r.nlanes, r.lane_rows,
               r.is_gpt ? "sequences" : "samples", c->reduce, r.nworkers,
               openblas_get_num_threads());
        if (r.is_gpt)
            printf("data: %zu train bytes, %zu validation bytes; model: %zu parameters, "
                   "%.3g FLOPs/token; sgemm peak %.1f GFLOP/s over %d rank(s)\n",
                   r.n_train, r.n_test, r.pt->total, r.flops_per_token, r.peak_flops / 1e9, r.np);
        else
            printf("data: %zu train, %zu test samples of %zu values; model: %zu parameters\n",
                   r.n_train, r.n_test, r.in, r.pt->total);
        if (resume[0])
            printf("resumed from %s at step %ld (written by -np %d)\n", resume, r.step,
                   meta.world_size);
        config_print(c, "config: ");
        fflush(stdout);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    const char *prompt = c->prompt[0] ? c->prompt : "And God said";
    const double t0 = now_seconds();
    double train_time = 0.0, window_time = 0.0, window_loss = 0.0, norm = 0.0, lr = 0.0;
    long window_steps = 0, steps_this_run = 0;
    int stop = 0;
    status = EXIT_DONE;
    while (r.step < r.total_steps) {
        double ts = now_seconds();
        double loss = train_step(&r, &stop, &norm, &lr);
        double dt = now_seconds() - ts;
        train_time += dt;
        window_time += dt;
        window_loss += loss;
        window_steps++;
        steps_this_run++;
        if (!isfinite(loss)) {
            if (r.loud)
                fprintf(stderr, "trainer: loss is %g at step %ld: training diverged (lower --lr?)\n",
                        loss, r.step);
            status = EXIT_INTERNAL;
            break;
        }
        if (r.step % c->log_every == 0 || r.step == r.total_steps || stop) {
            st.last_loss = window_loss / window_steps;
            if (isnan(st.first_loss))
                st.first_loss = st.last_loss;
            if (r.loud)
                print_progress(&r, st.last_loss, window_time, window_steps, norm, lr,
                               now_seconds() - t0, train_time, steps_this_run);
            window_time = window_loss = 0.0;
            window_steps = 0;
        }
        if (c->eval_every && r.step % c->eval_every == 0 && r.step < r.total_steps) {
            double e = evaluate(&r);
            if (r.loud) {
                char what[64];
                snprintf(what, sizeof what, "eval step %ld", r.step);
                print_eval(&r, what, e);
            }
        }
        if (r.is_gpt && c->sample_every && r.step % c->sample_every == 0 && r.loud)
            print_sample(&r, prompt, 120);
        if (c->stop_at && r.step >= c->stop_at && r.step < r.total_steps)
            stop = 1; /* the same decision on every rank: it is configuration */
        int save = stop || (c->checkpoint_every && r.step % c->checkpoint_every == 0);
        if (save && r.step < r.total_steps) {
            if (write_checkpoint(&r) != 0) {
                status = EXIT_INTERNAL;
                break;
            }
            if (r.loud)
                printf("checkpoint: %s/checkpoint.h5 at step %ld\n", c->run_dir, r.step);
        }
        if (stop) {
            if (r.loud)
                printf("stopped %s at step %ld; resume with --resume auto\n",
                       c->stop_at && r.step >= c->stop_at ? "as asked (--stop-at)" : "by a signal",
                       r.step);
            status = EXIT_STOPPED;
            break;
        }
    }
    if (status == EXIT_DONE) {
        if (write_checkpoint(&r) != 0) {
            status = EXIT_INTERNAL;
        } else {
            double e = evaluate(&r);
            st.test_loss = e;
            st.samples_per_s = train_time > 0 ? (double)steps_this_run * c->batch / train_time : 0;
            if (r.loud) {
                printf("checkpoint: %s/checkpoint.h5 at step %ld\n", c->run_dir, r.step);
                if (r.is_gpt)
                    printf("final: step %ld, validation loss %.4f nats/byte (%.4f bits/byte) over "
                           "%d windows, train %.0f tokens/s, MFU %.1f%% (%.1f s training)\n",
                           r.step, e, e / M_LN2, c->val_windows, st.samples_per_s * r.T,
                           100.0 * st.samples_per_s * r.T * r.flops_per_token / r.peak_flops,
                           train_time);
                else
                    printf("final: step %ld, test negative ELBO %.3f nats/image over %zu images, "
                           "train %.0f samples/s (%.1f s training)\n",
                           r.step, e, r.n_test, st.samples_per_s, train_time);
                if (r.is_gpt)
                    print_sample(&r, prompt, 200);
            }
        }
    }
    fflush(stdout);
    st.step = r.step;
    st.params_fnv1a64 = fnv1a64(r.params, r.pt->total * sizeof(float));
    if (stats)
        *stats = st;
    free_run(&r);
    return status;
bad:
    free_run(&r);
    return EXIT_BAD_INPUT;
}

/* eval and sample: a model and its parameters from a checkpoint. */
static int load_for_inference(run *r, enum command cmd, int argc, char **argv, int need_data)
{
    cfg_list given = {0}, from_ckpt = {0};
    int rc = config_parse_args(cmd, argc, argv, &given, r->loud);
    if (rc != 0) {
        cfg_list_free(&given);
        return rc > 0 ? 1 : -1;
    }
    int result = -1;
    const cfg_list *layers[2] = {&given, NULL};
    ckpt_meta meta;
    config probe;
    if (config_build(&probe, cmd, layers, 1, r->loud) != 0)
        goto out;
    if (!probe.checkpoint[0]) {
        if (r->loud)
            fprintf(stderr, "trainer: --checkpoint PATH is required\n");
        goto out;
    }
    if (read_checkpoint_meta(probe.checkpoint, &meta, &from_ckpt) != 0)
        goto out;
    layers[0] = &from_ckpt;
    layers[1] = &given;
    if (config_build(&r->cfg, cmd, layers, 2, r->loud) != 0)
        goto out;
    snprintf(r->cfg.checkpoint, sizeof r->cfg.checkpoint, "%s", probe.checkpoint);
    if (cmd == CMD_SAMPLE && strcmp(r->cfg.model, "gpt") != 0) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: sample needs a gpt checkpoint, this one holds a %s\n",
                    probe.checkpoint, r->cfg.model);
        goto out;
    }
    r->exact = 0;
    set_threads(r);
    r->is_gpt = strcmp(r->cfg.model, "gpt") == 0;
    r->nlanes = r->np;
    r->nlocal = 1;
    r->rows = r->is_gpt ? 8 : 256;
    r->T = r->cfg.ctx;
    r->lane_ids = xcalloc(1, sizeof(int), "lanes");
    if (need_data && load_data(r, 0) != 0)
        goto out;
    if (!need_data)
        r->in = 1;
    if (build_model(r) != 0 || read_checkpoint_tensors(r, probe.checkpoint, &meta) != 0)
        goto out;
    r->step = (long)meta.step;
    result = 0;
out:
    cfg_list_free(&given);
    cfg_list_free(&from_ckpt);
    return result;
}

int cmd_eval(int argc, char **argv)
{
    run r = {0};
    r.rank = comm_rank();
    r.np = comm_size();
    r.loud = r.rank == 0;
    io_quiet_hdf5();
    int rc = load_for_inference(&r, CMD_EVAL, argc, argv, 1);
    if (rc == 0) {
        double e = evaluate(&r);
        if (r.loud) {
            char what[CFG_PATH + 64];
            snprintf(what, sizeof what, "%s at step %ld", r.cfg.checkpoint, r.step);
            print_eval(&r, what, e);
        }
    }
    free_run(&r);
    return rc >= 0 ? EXIT_DONE : EXIT_BAD_INPUT; /* 1: --help was printed */
}

int cmd_sample(int argc, char **argv)
{
    run r = {0};
    r.rank = comm_rank();
    r.np = comm_size();
    r.loud = r.rank == 0;
    io_quiet_hdf5();
    int rc = load_for_inference(&r, CMD_SAMPLE, argc, argv, 0);
    if (rc == 0 && r.loud) {
        const config *c = &r.cfg;
        int plen = (int)strlen(c->prompt);
        uint8_t *out = xcalloc((size_t)plen + (size_t)c->length + 2, 1, "sample");
        int n = gpt_sample(&r.work[0].gm, r.params, (const uint8_t *)c->prompt, plen, c->length,
                           (float)c->temperature, c->top_k, (uint32_t)c->seed, out);
        fwrite(out, 1, (size_t)n, stdout);
        printf("\n");
        free(out);
    }
    free_run(&r);
    return rc >= 0 ? EXIT_DONE : EXIT_BAD_INPUT; /* 1: --help was printed */
}
