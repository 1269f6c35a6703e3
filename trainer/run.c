/* Setting a run up (configuration, lanes, threads, data, model, resume) and
 * the checkpoint glue. Every function that can fail is collective: every
 * rank returns the same verdict. */
#include "run.h"

#include "io/checkpoint.h"
#include "draft.h"
#include "kernel.h"
#include "philox.h"
#include "util.h"

#include <cblas.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(PARAMS_MAX <= CKPT_MAX_TENSORS, "checkpoint exponent array too small");
/* a configuration entry goes into a checkpoint's /config and comes back */
_Static_assert(sizeof(((ckpt_kv *)0)->key) >= sizeof(((cfg_entry *)0)->key),
               "checkpoint keys shorter than configuration keys");
_Static_assert(sizeof(((ckpt_kv *)0)->value) >= sizeof(((cfg_entry *)0)->value),
               "checkpoint values shorter than configuration values");

int agree(int failed) { return comm_max_int(failed ? 1 : 0); }

void run_begin(run *r)
{
    memset(r, 0, sizeof *r);
    flush_subnormals();
    r->rank = comm_rank();
    r->np = comm_size();
    r->loud = r->rank == 0;
}

/* The cores this rank may use: those it is bound to, or its share of the
 * node's when it is not bound (a fraction when ranks outnumber cores). */
double rank_cores(void)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    return mine < online ? (double)mine : (double)online / comm_local_size();
}

static int cores_per_rank(void)
{
    int n = (int)rank_cores();
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
        while (r->tree && (r->nworkers & (r->nworkers - 1))) /* subtrees: a power of two */
            r->nworkers--;
    } else {
        openblas_set_num_threads(n);
        r->nworkers = 1;
    }
}

int read_checkpoint_meta(const char *path, ckpt_meta *meta, cfg_list *cfg)
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
    for (int i = 0; i < n && !failed; i++)
        failed = cfg_list_set(cfg, kv[i].key, kv[i].value) != 0;
    free(kv);
    return failed ? -1 : 0;
}

/* The checkpoint to read: train's --resume (auto: the run folder's, if
 * there is one), eval's and sample's --checkpoint. "" for none. */
static int checkpoint_to_read(const run *r, enum command cmd, const cfg_list *const *layers,
                              char *path, size_t size)
{
    const char *resume = config_lookup(layers, 2, "resume");
    path[0] = 0;
    if (cmd != CMD_TRAIN) {
        const char *key = cmd == CMD_SCORE ? "classifier" : "checkpoint";
        snprintf(path, size, "%s", config_lookup(layers, 2, key));
        if (!path[0] && r->loud)
            fprintf(stderr, "trainer: --%s PATH is required\n", key);
        return path[0] ? 0 : -1;
    }
    if (!strcmp(resume, "auto")) {
        snprintf(path, size, "%s/checkpoint.h5", config_lookup(layers, 2, "run-dir"));
        if (access(path, F_OK) != 0)
            path[0] = 0;
    } else {
        snprintf(path, size, "%s", resume);
    }
    return 0;
}

int run_configure(run *r, enum command cmd, int argc, char **argv, char *ckpt, size_t size,
                  ckpt_meta *meta, int *status)
{
    cfg_list file = {0}, flags = {0}, from_ckpt = {0};
    int rc = config_parse_args(cmd, argc, argv, &file, &flags, r->loud), result = -1;
    *status = rc > 0 ? EXIT_DONE : EXIT_BAD_INPUT;
    if (rc != 0)
        goto out;
    const cfg_list *layers[3] = {&file, &flags, NULL};
    if (checkpoint_to_read(r, cmd, layers, ckpt, size) != 0 ||
        (ckpt[0] && read_checkpoint_meta(ckpt, meta, &from_ckpt) != 0))
        goto out;
    const char *asked = cfg_list_get(&flags, "model") ? cfg_list_get(&flags, "model")
                                                      : cfg_list_get(&file, "model");
    if (ckpt[0] && asked && strcmp(meta->model, asked) != 0) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: checkpoint holds a %s model, this run trains a %s\n",
                    ckpt, meta->model, asked);
        goto out;
    }
    layers[0] = &file;
    layers[1] = &from_ckpt;
    layers[2] = &flags;
    if (config_build(&r->cfg, cmd, layers, 3, r->loud) != 0)
        goto out;
    r->mt = r->cfg.mt;
    r->task = r->mt->task;
    result = 0;
out:
    cfg_list_free(&file);
    cfg_list_free(&flags);
    cfg_list_free(&from_ckpt);
    return result;
}

/* Ranks on different OpenBLAS kernels: fast mode warns (its products, and
 * so its sums, differ from rank to rank); exact mode does not use OpenBLAS
 * for anything that reaches the bits and goes on without a word. */
static void same_kernel(const run *r)
{
    const char *k = kernel_name();
    const int h = (int)(fnv1a64(k, strlen(k)) & 0x3fffffff);
    const int differs = comm_max_int(h) != -comm_max_int(-h);
    if (differs && !r->exact && r->loud)
        fprintf(stderr,
                "trainer: warning: the ranks run different OpenBLAS kernels (rank 0: %s): "
                "--reduce fast goes on, its sums differ from rank to rank; --reduce exact gives "
                "the same bits on any kernel\n",
                k);
}

int run_setup_lanes(run *r)
{
    const config *c = &r->cfg;
    r->nlanes = c->lanes;
    if (r->nlanes % r->np != 0) {
        if (r->loud)
            fprintf(stderr,
                    "trainer: -np %d does not divide --lanes %d: use a number of ranks that "
                    "divides it\n",
                    r->np, r->nlanes);
        return -1;
    }
    r->nlocal = r->nlanes / r->np;
    r->lane_rows = c->batch / r->nlanes;
    r->micro_rows = r->lane_rows / c->micro_steps;
    r->exact = strcmp(c->reduce, "exact") == 0;
    same_kernel(r);
    r->units_per_row = r->task->units_per_row(c);
    r->lane_ids = xcalloc((size_t)r->nlocal, sizeof(int), "lanes");
    for (int l = 0; l < r->nlocal; l++)
        r->lane_ids[l] = r->rank + l * r->np;
    r->tree = r->exact && r->mt->tree_lanes && !(r->nlanes & (r->nlanes - 1)) &&
              c->micro_steps == 1;
    set_threads(r);
    r->lanes_per_call = 1;
    if (r->exact && (r->mt->backward_lanes || r->tree))
        r->lanes_per_call = (r->nlocal + r->nworkers - 1) / r->nworkers;
    r->rows = r->exact ? r->lanes_per_call * r->micro_rows : r->nlocal * r->micro_rows;
    return 0;
}

void run_setup_inference(run *r, int rows)
{
    r->exact = 0;
    r->nlanes = r->np;
    r->nlocal = 1;
    r->lanes_per_call = 1;
    r->rows = rows;
    r->units_per_row = r->task->units_per_row(&r->cfg);
    r->lane_ids = xcalloc(1, sizeof(int), "lanes");
    set_threads(r);
}

int run_load_data(run *r, int need_train)
{
    return dataset_load(&r->data, r->task, &r->cfg, need_train ? r->lane_ids : NULL, r->nlocal,
                        r->nlanes);
}

static int build_worker(run *r, worker *w)
{
    const data_shape shape = r->task->shape(&r->data, &r->cfg);
    if (r->mt->check_shape && r->mt->check_shape(&r->cfg, &shape, r->loud && w == r->work) != 0)
        return -1;
    w->m = r->mt->create(&r->cfg, &shape, r->rows);
    if (!w->m)
        return -1;
    batch_alloc(&w->b, r->rows, shape.in, shape.T);
    w->row_loss = xcalloc((size_t)r->rows, sizeof(double), "losses");
    return 0;
}

int run_build_model(run *r)
{
    if (r->nworkers < 1)
        r->nworkers = 1;
    r->work = xcalloc((size_t)r->nworkers, sizeof *r->work, "workers");
    int failed = 0;
    for (int k = 0; k < r->nworkers && !failed; k++)
        failed = build_worker(r, &r->work[k]) != 0;
    if (agree(failed))
        return -1;
    model *m0 = r->work[0].m;
    r->pt = &m0->params;
    r->phases = r->mt->phases ? r->mt->phases : 1;
    for (int p = 0; p < r->phases; p++) {
        r->phase_first[p] = 0;
        r->phase_count[p] = m0->params.n;
        if (r->mt->phase_tensors)
            r->mt->phase_tensors(m0, p, &r->phase_first[p], &r->phase_count[p]);
    }
    const size_t P = r->pt->total;
    r->params = xcalloc(P, sizeof(float), "parameters");
    r->grad = xcalloc(P, sizeof(float), "gradients");
    r->adam_m = xcalloc(P, sizeof(float), "Adam moments");
    r->adam_v = xcalloc(P, sizeof(float), "Adam moments");
    const int nb = r->pt->n;
    r->bucket_off = xcalloc((size_t)nb + 1, sizeof(size_t), "buckets");
    params_bucket_offsets(r->pt, r->bucket_off);
    if (r->exact) {
        for (int k = 0; k < r->nworkers; k++) {
            worker *w = &r->work[k];
            w->lane_grad = xcalloc((size_t)r->lanes_per_call, sizeof *w->lane_grad, "lanes");
            for (int j = 0; j < r->lanes_per_call && !r->tree; j++)
                w->lane_grad[j] = xcalloc(P, sizeof(float), "lane gradient");
            if ((r->tree && k > 0) || (!r->tree && r->mt->tree_lanes))
                w->tree_grad = xcalloc(P, sizeof(float), "thread gradient");
        }
        if (r->tree && r->np > 1)
            r->tree_tmp = xcalloc(P, sizeof(float), "tree sum");
        if (r->tree)
            r->norm_parts = xcalloc(P / NORM_CHUNK + 1, sizeof(double), "norm");
        r->exps = xcalloc((size_t)nb, sizeof(int32_t), "buckets");
    }
    step_init(r);
    for (int p = 0; p < r->phases; p++) {
        const int f = r->phase_first[p], n = r->phase_count[p];
        if (r->exact && lane_sum_init(&r->sum[p], r->nlanes, r->bucket_off + f, n,
                                      r->tree ? 0 : r->nworkers, r->exps + f) != 0) {
            fprintf(stderr, "trainer: out of memory for the lane sums\n");
            comm_abort(EXIT_INTERNAL);
        }
    }
    r->mt->init(m0, r->params, (uint32_t)r->cfg.seed);
    r->flops_per_unit = r->mt->flops_per_unit ? r->mt->flops_per_unit(m0) : 0.0;
    r->dims_per_unit = r->mt->dims_per_unit ? r->mt->dims_per_unit(m0) : 0.0;
    r->lane_loss = xcalloc((size_t)r->nlanes + 1 + MAX_FIGURES, sizeof(double), "losses");
    return 0;
}

/* Rank 0's local lane 0 is lane 0 (run_setup_lanes): its rows of steps 0,
 * 1, ... until --batch of them, with their own draws, as training will
 * see them first. */
int run_init_from_data(run *r)
{
    if (!r->mt->init_from_data)
        return 0;
    int failed = 0;
    if (r->rank == 0) {
        const int n = r->cfg.batch, per_step = r->lane_rows > 0 ? r->lane_rows : 1;
        const data_shape shape = r->task->shape(&r->data, &r->cfg);
        model *m = r->mt->create(&r->cfg, &shape, n);
        failed = m == NULL;
        if (m) {
            batch b;
            batch_alloc(&b, n, shape.in, shape.T);
            b.rows = n;
            b.seed = (uint32_t)r->cfg.seed;
            b.purpose = RNG_EPS;
            b.train = 1;
            b.nseg = 1;
            b.call_stream = 0;
            for (int at = 0, step = 0; at < n; at += per_step, step++)
                r->task->fill(&r->cfg, &r->data, &b, at, 0, step, 0,
                              n - at < per_step ? n - at : per_step);
            r->mt->init_from_data(m, r->params, &b);
            batch_free(&b);
            m->type->destroy(m);
        }
    }
    if (agree(failed))
        return -1;
    comm_bcast_bytes(r->params, r->pt->total * sizeof(float), 0);
    return 0;
}

void run_end(run *r)
{
    lane_pool_stop(&r->pool);
    for (int k = 0; r->work && k < r->nworkers; k++) {
        worker *w = &r->work[k];
        if (w->m)
            w->m->type->destroy(w->m);
        batch_free(&w->b);
        free(w->row_loss);
        for (int j = 0; w->lane_grad && j < r->lanes_per_call; j++)
            free(w->lane_grad[j]);
        free(w->lane_grad);
        free(w->tree_grad);
    }
    free(r->work);
    for (int p = 0; p < MAX_PHASES; p++)
        lane_sum_free(&r->sum[p]);
    free(r->params);
    free(r->grad);
    free(r->tree_tmp);
    step_free(r);
    free(r->norm_parts);
    free(r->adam_m);
    free(r->adam_v);
    free(r->exps);
    free(r->bucket_off);
    free(r->lane_loss);
    dataset_free(&r->data);
    free(r->lane_ids);
    config_free(&r->cfg);
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

static int write_checkpoint_rank0(run *r)
{
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
    meta.vocab = r->data.fmt.vocab;
    meta.vocab_bytes = r->data.fmt.vocab_bytes;
    if (r->task->make_draft && !r->data.fmt.draft && r->data.lanes)
        r->task->make_draft(&r->data);
    meta.draft = r->data.fmt.draft;
    meta.draft_bytes = r->data.fmt.draft_bytes;
    snprintf(meta.blas_kernel, sizeof meta.blas_kernel, "%s", kernel_name());
    meta.epoch = (double)r->step * r->cfg.batch * r->units_per_row / (double)r->data.n_train;
    cfg_list l = {0};
    if (config_to_list(&r->cfg, &l) != 0) {
        cfg_list_free(&l);
        return -1;
    }
    ckpt_kv *kv = xcalloc((size_t)l.n, sizeof *kv, "checkpoint config");
    for (int i = 0; i < l.n; i++) {
        snprintf(kv[i].key, sizeof kv[i].key, "%s", l.e[i].key);
        snprintf(kv[i].value, sizeof kv[i].value, "%s", l.e[i].value);
    }
    ckpt_tensor *t = xcalloc((size_t)r->pt->n, sizeof *t, "tensor list");
    build_tensor_list(r->pt, t);
    float *bufs[3] = {r->params, r->adam_m, r->adam_v};
    int rc = checkpoint_write(path, &meta, kv, l.n, t, r->pt->n, GROUPS, bufs, 3);
    free(t);
    free(kv);
    cfg_list_free(&l);
    return rc;
}

int run_write_checkpoint(run *r)
{
    step_gather_moments(r);
    return agree(r->rank == 0 && write_checkpoint_rank0(r) != 0);
}

/* The checkpoint's guess table, if it has one, into the data format (on
 * every rank): a damaged one is refused like any damaged part. */
static int read_draft(run *r, const char *path)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int failed = 0;
    if (r->rank == 0) {
        failed = checkpoint_read_blob(path, "draft", &buf, &n) != 0;
        if (!failed && buf && !draft_valid(buf, n)) {
            fprintf(stderr, "trainer: %s: /draft is not a guess table: damaged checkpoint\n", path);
            failed = 1;
        }
    }
    if (agree(failed)) {
        free(buf);
        return -1;
    }
    comm_bcast_bytes(&n, sizeof n, 0);
    if (r->rank != 0 && n)
        buf = xcalloc(n, 1, "guess table");
    if (n)
        comm_bcast_bytes(buf, n, 0);
    free(r->data.fmt.draft);
    r->data.fmt.draft = buf;
    r->data.fmt.draft_bytes = n;
    return 0;
}

int run_read_vocab(run *r, const char *path)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int failed = 0;
    if (read_draft(r, path) != 0)
        return -1;
    if (r->rank == 0)
        failed = checkpoint_read_vocab(path, &buf, &n) != 0;
    if (agree(failed))
        return -1;
    comm_bcast_bytes(&n, sizeof n, 0);
    if (r->rank != 0 && n)
        buf = xcalloc(n, 1, "vocabulary");
    if (n)
        comm_bcast_bytes(buf, n, 0);
    data_format *f = &r->data.fmt;
    if (f->h == 0) { /* no data: the checkpoint says what its tokens are */
        f->h = f->w = 1;
        f->width = n ? 2 : 1;
        f->vocab = buf;
        f->vocab_bytes = n;
        return 0;
    }
    const int differs = n != f->vocab_bytes || (n && memcmp(buf, f->vocab, n) != 0);
    free(buf);
    if (differs && r->loud)
        fprintf(stderr,
                "trainer: %s: the checkpoint's vocabulary (%zu bytes) is not the one of the "
                "shards in %s (%zu bytes)\n",
                path, n, r->cfg.data, f->vocab_bytes);
    return differs ? -1 : 0;
}

/* A scale exponent is unknown (INT32_MIN) or one that a float gradient can
 * need: 2^e * |g| must stay within a double's range. */
static int exps_valid(const run *r, const char *path, const ckpt_meta *meta)
{
    for (int i = 0; i < meta->nexps; i++)
        if (meta->exps[i] != INT32_MIN && (meta->exps[i] < -1100 || meta->exps[i] > 1100)) {
            if (r->loud)
                fprintf(stderr, "trainer: %s: reduce_exponents[%d] = %d is out of range\n", path,
                        i, (int)meta->exps[i]);
            return 0;
        }
    if (meta->nexps && meta->nexps != r->pt->n) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: %d reduce_exponents for %d tensors\n", path, meta->nexps,
                    r->pt->n);
        return 0;
    }
    return 1;
}

int run_read_checkpoint(run *r, const char *path, const ckpt_meta *meta)
{
    if (!exps_valid(r, path, meta))
        return -1; /* meta is the same on every rank: so is the verdict */
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
    r->step = (long)meta->step;
    /* the reduction's scales carry over, for an exact resume; a checkpoint
     * of a fast run has none: the first step measures them */
    if (r->exact && meta->nexps == r->pt->n)
        memcpy(r->exps, meta->exps, (size_t)meta->nexps * sizeof *meta->exps);
    return 0;
}
