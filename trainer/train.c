/* The train and eval commands: data-parallel training over lanes.
 *
 * Every rank holds the same parameters. The global batch of B samples is
 * split into G lanes of B / G samples; rank r holds lanes r, r + np, ...
 * Each rank runs forward and backward over all its lanes' rows at once, but
 * forms the parameter gradient of each lane separately (same shapes whatever
 * -np is), and the lane gradients are summed over all ranks in an order-free
 * way (comm/allreduce.c). So the parameters after N steps are the same bits
 * for any -np that divides G. --reduce fast instead forms one gradient per
 * rank and sums floats with MPI: faster, not reproducible across -np. */
#include "train.h"

#include "adamw.h"
#include "comm/comm.h"
#include "config.h"
#include "data.h"
#include "io/checkpoint.h"
#include "io/shards.h"
#include "philox.h"
#include "util.h"
#include "vae.h"

#include <cblas.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(PARAMS_MAX <= CKPT_MAX_TENSORS, "checkpoint exponent array too small");

static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

typedef struct {
    config cfg;
    int rank, np, loud;
    int nlanes, nlocal, lane_rows, rows;
    int *lane_ids;
    int exact;
    vae model;
    float *params, *grad, *adam_m, *adam_v;
    float *lane_grad; /* one lane's gradient (exact), or the rank's (fast) */
    lane_sum sum;     /* exact: the order-free sum of lane gradients */
    double *acc;
    int32_t *exps;
    float *bucket_max;
    size_t *bucket_off;
    lane_data *lanes;
    split_data test;
    size_t n_train, n_test, in;
    float *x, *eps;
    double *row_loss, *lane_loss;
    long step, total_steps;
} run;

/* Every rank calls this with its own verdict; all return the worst. */
static int agree(int failed) { return comm_max_int(failed ? 1 : 0); }

/* BLAS threads. OpenBLAS results change with its thread count, so the
 * exact reduction uses one thread per rank unless told otherwise: run one
 * rank per core instead. */
static void set_threads(const config *c, int exact)
{
    int n = c->threads;
    if (n == 0 && exact)
        n = 1;
    if (n == 0) {
        cpu_set_t set;
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
        /* bound to fewer cores than the node has: those are ours alone */
        n = mine < online ? mine : (int)online / comm_local_size();
        if (n < 1)
            n = 1;
    }
    openblas_set_num_threads(n);
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
            meta.nexps = r->model.params.n;
            memcpy(meta.exps, r->exps, (size_t)meta.nexps * sizeof *meta.exps);
        }
        cfg_list l = {0};
        config_to_list(&r->cfg, &l);
        ckpt_kv *kv = xcalloc((size_t)l.n, sizeof *kv, "checkpoint config");
        for (int i = 0; i < l.n; i++) {
            snprintf(kv[i].key, sizeof kv[i].key, "%s", l.e[i].key);
            snprintf(kv[i].value, sizeof kv[i].value, "%s", l.e[i].value);
        }
        ckpt_tensor *t = xcalloc((size_t)r->model.params.n, sizeof *t, "tensor list");
        build_tensor_list(&r->model.params, t);
        float *bufs[3] = {r->params, r->adam_m, r->adam_v};
        failed = checkpoint_write(path, &meta, kv, l.n, t, r->model.params.n, GROUPS, bufs, 3) != 0;
        free(t);
        free(kv);
        cfg_list_free(&l);
    }
    return agree(failed);
}

/* Rank 0 reads the checkpoint's root attributes and configuration and
 * shares them; every rank returns the same verdict. */
static int read_checkpoint_meta(const char *path, int loud, ckpt_meta *meta, cfg_list *cfg)
{
    ckpt_kv *kv = NULL;
    int n = 0, failed = 0;
    if (comm_rank() == 0)
        failed = checkpoint_read_meta(path, meta, &kv, &n) != 0;
    (void)loud;
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
        ckpt_tensor *t = xcalloc((size_t)r->model.params.n, sizeof *t, "tensor list");
        build_tensor_list(&r->model.params, t);
        float *bufs[3] = {r->params, r->adam_m, r->adam_v};
        failed = checkpoint_read_tensors(path, meta, t, r->model.params.n, GROUPS, bufs, 3) != 0;
        free(t);
    }
    if (agree(failed))
        return -1;
    size_t bytes = r->model.params.total * sizeof(float);
    comm_bcast_bytes(r->params, bytes, 0);
    comm_bcast_bytes(r->adam_m, bytes, 0);
    comm_bcast_bytes(r->adam_v, bytes, 0);
    return 0;
}

static int build_model(run *r)
{
    const config *c = &r->cfg;
    int failed = vae_build(&r->model, (int)r->in, c->hidden_sizes, c->nhidden, c->latent,
                           strcmp(c->likelihood, "gaussian") ? LIK_BERNOULLI : LIK_GAUSSIAN,
                           (float)c->kl_weight, c->autoencoder, r->rows) != 0;
    if (agree(failed))
        return -1;
    size_t P = r->model.params.total;
    r->params = xcalloc(P, sizeof(float), "parameters");
    r->grad = xcalloc(P, sizeof(float), "gradients");
    r->adam_m = xcalloc(P, sizeof(float), "Adam moments");
    r->adam_v = xcalloc(P, sizeof(float), "Adam moments");
    r->lane_grad = xcalloc(P, sizeof(float), "lane gradient");
    const int nb = r->model.params.n;
    r->bucket_off = xcalloc((size_t)nb + 1, sizeof(size_t), "buckets");
    params_bucket_offsets(&r->model.params, r->bucket_off);
    if (r->exact) {
        r->acc = xcalloc(P, sizeof(double), "reduction buffer");
        r->exps = xcalloc((size_t)nb, sizeof(int32_t), "buckets");
        r->bucket_max = xcalloc((size_t)nb + 1, sizeof(float), "buckets");
        lane_sum_init(&r->sum, r->nlanes, r->bucket_off, nb, r->acc, r->exps, r->bucket_max);
    }
    r->x = xcalloc((size_t)r->rows * r->in, sizeof(float), "batch");
    r->eps = xcalloc((size_t)r->rows * c->latent, sizeof(float), "eps");
    r->row_loss = xcalloc((size_t)r->rows, sizeof(double), "losses");
    r->lane_loss = xcalloc((size_t)r->nlanes + 1, sizeof(double), "losses");
    vae_init(&r->model, r->params, (uint32_t)c->seed);
    return 0;
}

static void free_run(run *r)
{
    vae_free(&r->model);
    free(r->params);
    free(r->grad);
    free(r->adam_m);
    free(r->adam_v);
    free(r->lane_grad);
    free(r->exps);
    free(r->acc);
    free(r->bucket_max);
    free(r->bucket_off);
    free(r->x);
    free(r->eps);
    free(r->row_loss);
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

/* Shard checks every rank makes alike, then each rank loads its own files. */
static int load_data(run *r, int need_train)
{
    const config *c = &r->cfg;
    int ktrain = need_train ? split_shard_count(r, "train") : 0;
    if (ktrain < 0)
        return -1;
    int ktest = split_shard_count(r, "test");
    if (ktest < 0)
        return -1;
    int bad = 0;
    if (need_train && ktrain < r->np) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: %d train shards for %d ranks: need at least one per rank\n",
                    c->data, ktrain, r->np);
        bad = 1;
    } else if (need_train && ktrain < r->nlanes) {
        if (r->loud)
            fprintf(stderr,
                    "trainer: %s: %d train shards for %d lanes: need at least one per lane (--lanes)\n",
                    c->data, ktrain, r->nlanes);
        bad = 1;
    }
    if (bad)
        return -1;
    size_t h = 0, w = 0;
    int failed = 0;
    if (need_train) {
        r->lanes = xcalloc((size_t)r->nlocal, sizeof *r->lanes, "lanes");
        failed = lane_data_load(r->lanes, r->lane_ids, r->nlocal, r->nlanes, c->data, "train",
                                ktrain, &h, &w) != 0;
    }
    if (!failed)
        failed = split_data_load(&r->test, c->data, "test", ktest, r->rank, r->np, &h, &w) != 0;
    if (agree(failed))
        return -1;
    /* every rank must see the same image size; a rank that loaded nothing
     * (more ranks than test shards) takes no part */
    int in = (int)(h * w);
    int hi = comm_max_int(in);
    int lo = -comm_max_int(in ? -in : -hi);
    if (hi != lo) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: shards hold images of different sizes (%d and %d pixels)\n",
                    c->data, lo, hi);
        return -1;
    }
    r->in = (size_t)hi;
    double counts[2] = {0, (double)r->test.n};
    for (int l = 0; l < r->nlocal && need_train; l++)
        counts[0] += (double)r->lanes[l].n;
    comm_sum_double(counts, 2);
    r->n_train = (size_t)counts[0];
    r->n_test = (size_t)counts[1];
    return 0;
}

static void fill_pixels(float *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] * (1.0f / 255.0f);
}

static double evaluate(run *r)
{
    const int L = r->cfg.latent;
    const uint32_t seed = (uint32_t)r->cfg.seed;
    double sum = 0.0;
    for (size_t i0 = 0; i0 < r->test.n; i0 += (size_t)r->rows) {
        int R = (int)(r->test.n - i0 < (size_t)r->rows ? r->test.n - i0 : (size_t)r->rows);
        for (int j = 0; j < R; j++) {
            size_t i = i0 + (size_t)j;
            fill_pixels(r->x + (size_t)j * r->in, r->test.data + i * r->in, r->in);
            rng_normals(seed, RNG_STREAM_GLOBAL, RNG_EVAL, r->test.shard_of[i], r->test.index_in[i],
                        r->eps + (size_t)j * L, (size_t)L);
        }
        vae_forward(&r->model, r->params, r->x, r->eps, R, r->row_loss);
        for (int j = 0; j < R; j++)
            sum += r->row_loss[j];
    }
    comm_sum_double(&sum, 1);
    return sum / (double)r->n_test;
}

/* One optimizer step; returns the mean loss of the global batch. Sets *stop
 * when any rank has been asked to stop. */
static double train_step(run *r, int *stop)
{
    const config *c = &r->cfg;
    const int L = c->latent, b = r->lane_rows;
    const uint32_t seed = (uint32_t)c->seed;
    for (int l = 0; l < r->nlocal; l++) {
        lane_data *d = &r->lanes[l];
        for (int j = 0; j < b; j++) {
            int row = l * b + j;
            uint64_t pos = (uint64_t)r->step * (uint64_t)b + (uint64_t)j;
            uint32_t idx = lane_sample(d, seed, pos);
            fill_pixels(r->x + (size_t)row * r->in, d->data + (size_t)idx * d->sample_bytes, r->in);
            rng_normals(seed, (uint32_t)d->lane, RNG_EPS, (uint32_t)r->step, (uint32_t)j,
                        r->eps + (size_t)row * L, (size_t)L);
        }
    }
    size_t P = r->model.params.total;
    const float scale = 1.0f / (float)c->batch;
    if (r->exact) {
        /* every lane alone, so every BLAS call has the same shape for any
         * -np (OpenBLAS results for a row can depend on the rows beside
         * it), and each lane's gradient goes into the order-free sum */
        do {
            lane_sum_begin(&r->sum);
            for (int l = 0; l < r->nlocal; l++) {
                const size_t row0 = (size_t)l * b;
                vae_forward(&r->model, r->params, r->x + row0 * r->in, r->eps + row0 * L, b,
                            r->row_loss + row0);
                vae_backward(&r->model, r->params, r->lane_grad, r->x + row0 * r->in,
                             r->eps + row0 * L, b, scale);
                lane_sum_add(&r->sum, r->lane_grad);
            }
        } while (lane_sum_end(&r->sum, r->grad) == LANE_SUM_AGAIN);
    } else {
        vae_forward(&r->model, r->params, r->x, r->eps, r->rows, r->row_loss);
        vae_backward(&r->model, r->params, r->grad, r->x, r->eps, r->rows, scale);
        comm_sum_float(r->grad, P);
    }

    /* lane losses: each slot has one contributor, so the sum is exact; the
     * last slot carries the stop requests */
    memset(r->lane_loss, 0, ((size_t)r->nlanes + 1) * sizeof(double));
    for (int l = 0; l < r->nlocal; l++) {
        double s = 0.0;
        for (int j = 0; j < b; j++)
            s += r->row_loss[l * b + j];
        r->lane_loss[r->lane_ids[l]] = s;
    }
    r->lane_loss[r->nlanes] = g_stop_signal ? 1.0 : 0.0;
    comm_sum_double(r->lane_loss, (size_t)r->nlanes + 1);
    *stop = r->lane_loss[r->nlanes] > 0.0;

    r->step++;
    adamw_hparams h = {(float)c->lr, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                       (float)c->weight_decay};
    for (int i = 0; i < r->model.params.n; i++) {
        const param_view *v = &r->model.params.v[i];
        adamw_update(r->params + v->offset, r->grad + v->offset, r->adam_m + v->offset,
                     r->adam_v + v->offset, v->numel, &h, r->step, v->decay);
    }
    double loss = 0.0;
    for (int l = 0; l < r->nlanes; l++)
        loss += r->lane_loss[l];
    return loss / c->batch;
}

static int setup_lanes(run *r)
{
    const config *c = &r->cfg;
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
    r->rows = r->nlocal * r->lane_rows;
    r->lane_ids = xcalloc((size_t)r->nlocal, sizeof(int), "lanes");
    for (int l = 0; l < r->nlocal; l++)
        r->lane_ids[l] = r->rank + l * r->np;
    r->exact = strcmp(c->reduce, "exact") == 0;
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
    if (resume[0] && read_checkpoint_meta(resume, r->loud, meta, &from_ckpt) != 0)
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
    if (strcmp(r->cfg.model, "vae") != 0) {
        if (r->loud)
            fprintf(stderr, "trainer: --model %s is not built into this version\n", r->cfg.model);
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

static void print_progress(const run *r, double loss, double samples_per_s, double elapsed,
                           double run_time, long steps_this_run)
{
    char el[32], eta[32];
    format_duration(el, sizeof el, elapsed);
    double per_step = steps_this_run > 0 ? run_time / steps_this_run : 0;
    format_duration(eta, sizeof eta, per_step * (double)(r->total_steps - r->step));
    printf("step %6ld/%ld | epoch %6.2f | loss %9.3f nats | %8.0f samples/s | elapsed %s | eta %s\n",
           r->step, r->total_steps, (double)r->step * r->cfg.batch / (double)r->n_train, loss,
           samples_per_s, el, eta);
    fflush(stdout);
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
    set_threads(c, strcmp(c->reduce, "exact") == 0);
    if (setup_lanes(&r) != 0 || load_data(&r, 1) != 0 || build_model(&r) != 0)
        goto bad;
    if (resume[0]) {
        if (read_checkpoint_tensors(&r, resume, &meta) != 0)
            goto bad;
        r.step = (long)meta.step;
        /* the reduction's scales carry over, for an exact resume; a
         * checkpoint of a fast run has none: the first step measures them */
        if (r.exact && meta.nexps == r.model.params.n)
            memcpy(r.exps, meta.exps, (size_t)meta.nexps * sizeof *meta.exps);
    }
    r.total_steps = c->steps ? c->steps
                             : (long)ceil(c->epochs * (double)r.n_train / (double)c->batch);
    if (agree(r.loud && make_dirs(c->run_dir) != 0))
        goto bad;

    if (r.loud) {
        printf("trainer %s: train %s on %d rank(s), %d lanes of %d samples, reduce %s, %d BLAS thread(s)/rank\n",
               PACKAGE_VERSION, c->model, r.np, r.nlanes, r.lane_rows, c->reduce,
               openblas_get_num_threads());
        printf("data: %zu train, %zu test samples of %zu values; model: %zu parameters\n",
               r.n_train, r.n_test, r.in, r.model.params.total);
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

    const double t0 = now_seconds();
    double train_time = 0.0, window_time = 0.0, window_loss = 0.0;
    long window_steps = 0, steps_this_run = 0;
    int stop = 0;
    status = EXIT_DONE;
    while (r.step < r.total_steps) {
        double ts = now_seconds();
        double loss = train_step(&r, &stop);
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
                print_progress(&r, window_loss / window_steps,
                               (double)window_steps * c->batch / window_time, now_seconds() - t0,
                               train_time, steps_this_run);
            window_time = window_loss = 0.0;
            window_steps = 0;
        }
        if (c->eval_every && r.step % c->eval_every == 0 && r.step < r.total_steps) {
            double nelbo = evaluate(&r);
            if (r.loud)
                printf("eval step %ld: test negative ELBO %.3f nats/image over %zu images\n", r.step,
                       nelbo, r.n_test);
        }
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
                printf("stopped by a signal at step %ld; resume with --resume auto\n", r.step);
            status = EXIT_STOPPED;
            break;
        }
    }
    if (status == EXIT_DONE) {
        if (write_checkpoint(&r) != 0) {
            status = EXIT_INTERNAL;
        } else {
            double nelbo = evaluate(&r);
            st.test_loss = nelbo;
            st.samples_per_s = train_time > 0 ? (double)steps_this_run * c->batch / train_time : 0;
            if (r.loud) {
                printf("checkpoint: %s/checkpoint.h5 at step %ld\n", c->run_dir, r.step);
                printf("final: step %ld, test negative ELBO %.3f nats/image over %zu images, "
                       "train %.0f samples/s (%.1f s training)\n",
                       r.step, nelbo, r.n_test,
                       train_time > 0 ? (double)steps_this_run * c->batch / train_time : 0.0,
                       train_time);
            }
        }
    }
    fflush(stdout);
    st.step = r.step;
    st.params_fnv1a64 = fnv1a64(r.params, r.model.params.total * sizeof(float));
    if (stats)
        *stats = st;
    free_run(&r);
    return status;
bad:
    free_run(&r);
    return EXIT_BAD_INPUT;
}

int cmd_eval(int argc, char **argv)
{
    run r = {0};
    r.rank = comm_rank();
    r.np = comm_size();
    r.loud = r.rank == 0;
    io_quiet_hdf5();
    cfg_list given = {0}, from_ckpt = {0};
    int rc = config_parse_args(CMD_EVAL, argc, argv, &given, r.loud);
    if (rc != 0) {
        cfg_list_free(&given);
        return rc > 0 ? EXIT_DONE : EXIT_BAD_INPUT;
    }
    int status = EXIT_BAD_INPUT;
    const cfg_list *layers[2] = {&given, NULL};
    ckpt_meta meta;
    config probe;
    if (config_build(&probe, CMD_EVAL, layers, 1, r.loud) != 0)
        goto out;
    if (!probe.checkpoint[0]) {
        if (r.loud)
            fprintf(stderr, "trainer: eval: --checkpoint PATH is required\n");
        goto out;
    }
    if (read_checkpoint_meta(probe.checkpoint, r.loud, &meta, &from_ckpt) != 0)
        goto out;
    layers[0] = &from_ckpt;
    layers[1] = &given;
    if (config_build(&r.cfg, CMD_EVAL, layers, 2, r.loud) != 0)
        goto out;
    set_threads(&r.cfg, 0);
    r.nlanes = r.np;
    r.nlocal = 1;
    r.rows = 256;
    r.lane_ids = xcalloc(1, sizeof(int), "lanes");
    if (load_data(&r, 0) != 0 || build_model(&r) != 0 ||
        read_checkpoint_tensors(&r, probe.checkpoint, &meta) != 0)
        goto out;
    double nelbo = evaluate(&r);
    if (r.loud)
        printf("%s: step %lld, test negative ELBO %.3f nats/image over %zu images\n",
               probe.checkpoint, meta.step, nelbo, r.n_test);
    status = EXIT_DONE;
out:
    cfg_list_free(&given);
    cfg_list_free(&from_ckpt);
    free_run(&r);
    return status;
}
