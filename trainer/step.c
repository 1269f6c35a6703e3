/* One training step, and evaluation.
 *
 * A step: every lane's rows (micro-steps add into the gradient), the sum of
 * the lane gradients over all ranks, the lane losses and stop requests
 * agreed in one small reduction, optional clipping of the global norm, and
 * the AdamW update, the same on every rank.
 *   exact: each lane alone on one of the rank's lane threads, added to the
 *          order-free lane sum as soon as it is done (comm/allreduce.c);
 *          or, for models with tree_lanes, a thread's lanes in one call
 *          summed in a fixed binary tree that threads and ranks continue
 *          (lanes_tree): the same bits for any -np, and no lane gradient;
 *   fast:  all of the rank's rows in one call per micro-step, float sum. */
#include "run.h"

#include "adamw.h"
#include "nn/exactmath.h"
#include "philox.h"
#include "schedule.h"
#include "signals.h"
#include "util.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The batch-wide part of a training call: where its draws come from. */
static void training_batch(const run *r, batch *b, int rows, uint32_t stream, int micro)
{
    b->rows = rows;
    b->seed = (uint32_t)r->cfg.seed;
    b->purpose = RNG_EPS;
    b->train = 1;
    b->fast = !r->exact;
    b->call_stream = stream;
    b->call_counter = (uint32_t)(r->step * r->cfg.micro_steps + micro);
    b->nseg = 1;
    b->phase = r->phase;
}

/* Forward and backward over the worker's batch, adding into grad. Returns
 * the rows' summed loss. */
static double forward_backward(run *r, worker *w, float *grad)
{
    const float scale = 1.0f / ((float)r->cfg.batch * (float)r->units_per_row);
    r->mt->forward(w->m, r->params, &w->b, w->row_loss);
    if (r->mt->figures)
        r->mt->figures(w->m, w->fig);
    r->mt->backward(w->m, r->params, grad, &w->b, scale);
    double s = 0.0;
    for (int j = 0; j < w->b.rows; j++)
        s += w->row_loss[j];
    return s;
}

/* The tensors a phase updates: [first, first + count) of the table, and
 * their span of the flat buffers. */
typedef struct span {
    int first, count;
    size_t lo, n;
} span;

static span phase_span(const run *r, int p)
{
    span sp = {r->phase_first[p], r->phase_count[p], 0, 0};
    const param_view *a = &r->pt->v[sp.first], *z = &r->pt->v[sp.first + sp.count - 1];
    sp.lo = a->offset;
    sp.n = z->offset + z->numel - a->offset;
    return sp;
}

/* One lane alone per call. A model of the lane tree writes its gradient in
 * a fixed-order call (model.h's tree_lanes): it writes into the thread's
 * scratch, which is then added to the lane's gradient over the phase's
 * tensors. */
static void lanes_one_by_one(run *r, worker *w, int k)
{
    const int M = r->cfg.micro_steps;
    const span sp = phase_span(r, r->phase);
    for (int l = k; l < r->nlocal; l += r->nworkers) {
        double loss = 0.0;
        float *restrict g = w->lane_grad[0];
        memset(g, 0, r->pt->total * sizeof(float));
        for (int m = 0; m < M; m++) {
            training_batch(r, &w->b, r->micro_rows, (uint32_t)r->lane_ids[l], m);
            r->task->fill(&r->cfg, &r->data, &w->b, 0, l, r->step, m * r->micro_rows,
                          r->micro_rows);
            if (!r->mt->tree_lanes) {
                loss += forward_backward(r, w, g);
                continue;
            }
            loss += forward_backward(r, w, w->tree_grad);
            const float *restrict t = w->tree_grad;
            for (size_t i = sp.lo; i < sp.lo + sp.n; i++)
                g[i] = g[i] + t[i];
        }
        r->lane_loss[r->lane_ids[l]] = loss; /* one writer per slot */
        lane_sum_add(&r->sum[r->phase], k, w->lane_grad[0]);
    }
}

/* The thread's lanes k, k + nworkers, ... in one call per micro-step, a
 * segment each (model.h's backward_lanes): the same bits as one by one. */
static void lanes_together(run *r, worker *w, int k)
{
    const int M = r->cfg.micro_steps, R = r->micro_rows;
    const float scale = 1.0f / ((float)r->cfg.batch * (float)r->units_per_row);
    int n = 0;
    for (int l = k; l < r->nlocal; l += r->nworkers)
        memset(w->lane_grad[n++], 0, r->pt->total * sizeof(float));
    double *loss = r->lane_loss;
    for (int m = 0; m < M; m++) {
        training_batch(r, &w->b, n * R, 0, m);
        w->b.nseg = n;
        for (int j = 0, l = k; j < n; j++, l += r->nworkers) {
            w->b.seg_stream[j] = (uint32_t)r->lane_ids[l];
            r->task->fill(&r->cfg, &r->data, &w->b, j * R, l, r->step, m * R, R);
        }
        r->mt->forward(w->m, r->params, &w->b, w->row_loss);
        if (r->mt->figures)
            r->mt->figures(w->m, w->fig);
        r->mt->backward_lanes(w->m, r->params, w->lane_grad, &w->b, scale);
        for (int j = 0, l = k; j < n; j++, l += r->nworkers) {
            double s = 0.0; /* summed as forward_backward does: the same bits */
            for (int i = 0; i < R; i++)
                s += w->row_loss[j * R + i];
            loss[r->lane_ids[l]] += s; /* one writer per slot */
        }
    }
    w->b.nseg = 1;
    for (int j = 0; j < n; j++)
        lane_sum_add(&r->sum[r->phase], k, w->lane_grad[j]);
}

/* The lane tree's sum over ranks goes in buckets: the phase's span cut into
 * pieces of --bucket-kb (whole NORM_CHUNKs from the span's start), each
 * reduced and shared out among the ranks on its own (comm_tree_rs). With
 * one lane thread per rank (that thread may call MPI), a bucket starts up
 * the tree as soon as the backward pass has finished every tensor in it:
 * the model says when a tensor is final (batch_grad_ready), and each of
 * its calls moves the buckets in flight along; the buckets no call started
 * go when the pass is over. Each element is summed in the same tree with
 * the same additions whatever the buckets: the same bits (repro.sh). */
typedef struct buckets {
    comm_tree_rs *rs;
    size_t want;      /* elements per bucket, a multiple of NORM_CHUNK; 0: the span */
    size_t size;      /* the running phase's */
    int nb;
    int *waiting;       /* [nb]: bucket j, [j size, (j + 1) size) of the span: tensors not final */
    unsigned char *ready; /* per tensor of the phase */
} buckets;

static size_t whole_chunks(size_t n) { return (n + NORM_CHUNK - 1) / NORM_CHUNK * NORM_CHUNK; }

void step_init(run *r)
{
    const size_t P = r->pt->total;
    r->own = xcalloc(P / NORM_CHUNK + 2, sizeof *r->own, "shares");
    if (!(r->tree && r->np > 1))
        return;
    buckets *o = xcalloc(1, sizeof *o, "buckets");
    /* -1: buckets that go over a network while the pass runs (measured on
     * namespace hosts over TCP: 64 KiB, the largest whose messages Open
     * MPI sends eagerly, the fastest from 1 to 10 Gbit/s); within one node
     * the whole span at once, which shared memory sums faster. The same
     * choice on every rank. */
    int kb = r->cfg.bucket_kb;
    if (kb < 0)
        kb = comm_local_size() < r->np ? 64 : 0;
    r->bucket_kb = kb;
    const size_t want = (size_t)kb * 1024 / sizeof(float);
    o->want = whole_chunks(want);
    o->rs = comm_tree_rs_new();
    o->waiting = xcalloc(P / NORM_CHUNK + 2, sizeof(int), "buckets");
    o->ready = xcalloc((size_t)r->pt->n, 1, "buckets");
    r->bk = o;
}

void step_free(run *r)
{
    buckets *o = r->bk;
    free(r->own);
    r->own = NULL;
    if (!o)
        return;
    comm_tree_rs_free(o->rs);
    free(o->waiting);
    free(o->ready);
    free(o);
    r->bk = NULL;
}

/* The buckets' size for a span: --bucket-kb's, or the span; but no more
 * buckets than comm_tree_rs takes, and none so large that MPI's int counts
 * overflow (2^27 elements). */
static size_t bucket_size(const buckets *o, const span *sp)
{
    const size_t most = (size_t)1 << 27;
    size_t size = o->want ? o->want : whole_chunks(sp->n);
    const size_t least = whole_chunks((sp->n + COMM_TREE_RS_PIECES - 1) / COMM_TREE_RS_PIECES);
    size = size > least ? size : least;
    size = size < most ? size : most;
    return size > NORM_CHUNK ? size : NORM_CHUNK;
}

/* The buckets [*j0, *j1] that tensor t of the span overlaps. */
static void tensor_buckets(const run *r, const span *sp, int t, size_t *j0, size_t *j1)
{
    const param_view *v = &r->pt->v[t];
    *j0 = (v->offset - sp->lo) / r->bk->size;
    *j1 = (v->offset - sp->lo + v->numel - 1) / r->bk->size;
}

/* Bucket j of the span. */
static size_t bucket_lo(const buckets *o, int j) { return (size_t)j * o->size; }
static size_t bucket_hi(const buckets *o, const span *sp, int j)
{
    const size_t hi = (size_t)(j + 1) * o->size;
    return hi < sp->n ? hi : sp->n;
}

static void buckets_begin(run *r, const span *sp)
{
    buckets *o = r->bk;
    o->size = bucket_size(o, sp);
    o->nb = (int)((sp->n + o->size - 1) / o->size);
    memset(o->waiting, 0, (size_t)o->nb * sizeof(int));
    memset(o->ready, 0, (size_t)sp->count);
    for (int t = sp->first; t < sp->first + sp->count; t++) {
        size_t j0, j1;
        if (r->pt->v[t].numel == 0)
            continue;
        tensor_buckets(r, sp, t, &j0, &j1);
        for (size_t j = j0; j <= j1; j++)
            o->waiting[j]++;
    }
    comm_tree_rs_begin(o->rs, r->grad + sp->lo, r->tree_tmp + sp->lo, sp->n, NORM_CHUNK);
}

static void start_bucket(buckets *o, const span *sp, int j)
{
    comm_tree_rs_add(o->rs, j, bucket_lo(o, j), bucket_hi(o, sp, j));
}

/* The model's word that tensor t is final (batch.h's grad_ready). */
static void grad_ready(void *ctx, int t)
{
    run *r = ctx;
    buckets *o = r->bk;
    const span *sp = r->pool_span;
    const int i = t - sp->first;
    if (i < 0 || i >= sp->count || o->ready[i] || r->pt->v[t].numel == 0)
        return;
    o->ready[i] = 1;
    size_t j0, j1;
    tensor_buckets(r, sp, t, &j0, &j1);
    for (size_t j = j0; j <= j1; j++)
        if (--o->waiting[j] == 0) {
            start_bucket(o, sp, (int)j);
            r->buckets_early++;
        }
    comm_tree_rs_poll(o->rs);
}

/* After the pass: the buckets not started yet, then all of them home, and
 * this rank's shares of them. */
static void buckets_end(run *r, const span *sp)
{
    buckets *o = r->bk;
    const double t0 = now_seconds();
    for (int j = 0; j < o->nb; j++)
        if (o->waiting[j] > 0) {
            o->waiting[j] = 0;
            start_bucket(o, sp, j);
        }
    r->buckets_all += o->nb;
    comm_tree_rs_end(o->rs);
    r->wait_time += now_seconds() - t0;
    r->nown = 0;
    for (int j = 0; j < o->nb; j++) {
        size_t lo, hi;
        comm_tree_rs_share(o->rs, j, &lo, &hi);
        if (hi > lo)
            r->own[r->nown++] = (struct own_range){sp->lo + lo, sp->lo + hi};
    }
}

/* Every rank's shares of the span's buckets handed to all (collective). */
static void buckets_allgather(run *r, const span *sp, float *buf)
{
    const double t0 = now_seconds();
    comm_tree_allgather(buf + sp->lo, sp->n, bucket_size(r->bk, sp), NORM_CHUNK);
    r->wait_time += now_seconds() - t0;
}

/* p with its lowest `bits` bits in reverse order. */
static int bit_reverse(int p, int bits)
{
    int q = 0;
    for (int i = 0; i < bits; i++, p >>= 1)
        q = (q << 1) | (p & 1);
    return q;
}

/* The tree over all G lanes (G a power of two) pairs lane sets by their
 * residues: the lanes l = a (mod 2m) and l = a + m (mod 2m) make the set
 * l = a (mod m), up to the root (every lane). Rank r holds the lanes
 * r (mod np), a subtree; its thread k the lanes r + k np (mod np nworkers),
 * a subtree of that; and the thread's j-th lane is local lane
 * k + j nworkers. gemm_fixed_tree pairs neighbouring positions, so the
 * thread puts its j-th lane at position bit_reverse(j): then its tree is
 * the residue tree. Threads and ranks are summed on in the same tree. */
static void lanes_tree(run *r, worker *w, int k)
{
    const int n = r->lanes_per_call, R = r->micro_rows;
    const float scale = 1.0f / ((float)r->cfg.batch * (float)r->units_per_row);
    int bits = 0;
    while ((1 << bits) < n)
        bits++;
    float *g = k ? w->tree_grad : r->grad; /* written whole by backward (model.h) */
    training_batch(r, &w->b, n * R, 0, 0);
    w->b.nseg = n;
    w->b.tree = 1;
    if (r->bk && r->nworkers == 1) { /* the one lane thread is the one that calls MPI */
        w->b.grad_ready = grad_ready;
        w->b.grad_ready_ctx = r;
    }
    for (int p = 0; p < n; p++) {
        const int l = k + bit_reverse(p, bits) * r->nworkers;
        w->b.seg_stream[p] = (uint32_t)r->lane_ids[l];
        r->task->fill(&r->cfg, &r->data, &w->b, p * R, l, r->step, 0, R);
    }
    r->mt->forward(w->m, r->params, &w->b, w->row_loss);
    if (r->mt->figures)
        r->mt->figures(w->m, w->fig);
    r->mt->backward(w->m, r->params, g, &w->b, scale);
    for (int p = 0; p < n; p++) {
        double s = 0.0;
        for (int i = 0; i < R; i++)
            s += w->row_loss[p * R + i];
        r->lane_loss[r->lane_ids[k + bit_reverse(p, bits) * r->nworkers]] = s;
    }
    w->b.nseg = 1;
    w->b.tree = 0;
    w->b.grad_ready = NULL;
}

static void adamw_share(run *r, int k);
static void combine_share(run *r, int k);

void step_lanes(void *arg, int k)
{
    run *r = arg;
    if (r->pool_job == POOL_ADAMW)
        adamw_share(r, k);
    else if (r->pool_job == POOL_COMBINE)
        combine_share(r, k);
    else if (r->tree)
        lanes_tree(r, &r->work[k], k);
    else if (r->lanes_per_call > 1)
        lanes_together(r, &r->work[k], k);
    else
        lanes_one_by_one(r, &r->work[k], k);
}

static void exact_gradient(run *r, int p)
{
    int again;
    do {
        lane_sum_begin(&r->sum[p]);
        lane_pool_run(&r->pool);
        const double t0 = now_seconds();
        again = lane_sum_end(&r->sum[p], r->grad) == LANE_SUM_AGAIN;
        r->wait_time += now_seconds() - t0;
    } while (again);
}

/* Thread k's share [from, to) of the span, in whole cache lines. */
static void share_of(const run *r, size_t lo, size_t n, int k, size_t *from, size_t *to)
{
    const size_t per = (n / (size_t)r->nworkers + 15) & ~(size_t)15;
    *from = lo + per * (size_t)k < lo + n ? lo + per * (size_t)k : lo + n;
    *to = lo + per * ((size_t)k + 1) < lo + n && k < r->nworkers - 1 ? lo + per * ((size_t)k + 1)
                                                                       : lo + n;
}

/* Thread k's share of adding the threads' subtrees, in lanes_tree's tree. */
static void combine_share(run *r, int k)
{
    size_t from, to;
    share_of(r, r->pool_span->lo, r->pool_span->n, k, &from, &to);
    for (int d = r->nworkers / 2; d >= 1; d /= 2)
        for (int j = 0; j < d; j++) {
            float *restrict a = j ? r->work[j].tree_grad : r->grad;
            const float *restrict b = r->work[j + d].tree_grad;
            for (size_t i = from; i < to; i++)
                a[i] = a[i] + b[i];
        }
}

/* The threads' subtrees, then the ranks', summed on in lanes_tree's tree.
 * Over ranks this is a reduce-scatter in buckets: each rank ends with the
 * whole sum of its share of each bucket only (r->own), updates those, and
 * hands its parameters to the others (phase_step). */
static void tree_gradient(run *r, const span *sp)
{
    r->pool_span = sp;
    if (r->bk)
        buckets_begin(r, sp);
    lane_pool_run(&r->pool);
    if (r->nworkers > 1) {
        r->pool_job = POOL_COMBINE;
        r->pool_span = sp;
        lane_pool_run(&r->pool);
        r->pool_job = POOL_LANES;
    }
    if (r->bk) {
        buckets_end(r, sp);
        r->moments_sharded = 1;
    }
}

static void fast_gradient(run *r, const span *sp)
{
    worker *w = &r->work[0];
    memset(r->grad + sp->lo, 0, sp->n * sizeof(float));
    for (int m = 0; m < r->cfg.micro_steps; m++) {
        training_batch(r, &w->b, r->rows, RNG_STREAM_GLOBAL - 1 - (uint32_t)r->rank, m);
        for (int l = 0; l < r->nlocal; l++)
            r->task->fill(&r->cfg, &r->data, &w->b, l * r->micro_rows, l, r->step,
                          m * r->micro_rows, r->micro_rows);
        forward_backward(r, w, r->grad);
        for (int l = 0; l < r->nlocal; l++)
            for (int j = 0; j < r->micro_rows; j++)
                r->lane_loss[r->lane_ids[l]] += w->row_loss[l * r->micro_rows + j];
    }
    const double t0 = now_seconds();
    comm_sum_float(r->grad + sp->lo, sp->n);
    r->wait_time += now_seconds() - t0;
}

/* The norm of a span of the gradient, in a fixed order: the same on every
 * rank. */
static double grad_norm(const run *r, const span *sp)
{
    double norm2 = 0.0;
    for (size_t i = sp->lo; i < sp->lo + sp->n; i++)
        norm2 += (double)r->grad[i] * r->grad[i];
    return sqrt(norm2);
}

/* The update of elements [from, to) of the span's tensors. */
static void adamw_range(run *r, const span *sp, double lr, long t, size_t from, size_t to)
{
    const config *c = &r->cfg;
    adamw_hparams h = {(float)lr, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                       (float)c->weight_decay};
    for (int i = sp->first; i < sp->first + sp->count; i++) {
        const param_view *v = &r->pt->v[i];
        size_t a = v->offset > from ? v->offset : from;
        size_t b = v->offset + v->numel < to ? v->offset + v->numel : to;
        if (a < b)
            adamw_update(r->params + a, r->grad + a, r->adam_m + a, r->adam_v + a, b - a, &h, t,
                         v->decay);
    }
}

/* Thread k's share of the update: each element is computed alone, so how
 * the elements are shared out changes no bit. */
static void adamw_share(run *r, int k)
{
    for (int j = 0; j < r->nown; j++) {
        size_t from, to;
        share_of(r, r->own[j].lo, r->own[j].hi - r->own[j].lo, k, &from, &to);
        adamw_range(r, r->pool_span, r->pool_lr, r->pool_t, from, to);
    }
}

/* t: the 1-based number of this update; on the lane threads when there
 * are several (the update reads and writes four buffers: it is bound by
 * memory bandwidth, which one core does not fill). */
static void adamw_step(run *r, const span *sp, double lr, long t)
{
    if (r->nworkers < 2 || !r->exact) {
        for (int j = 0; j < r->nown; j++)
            adamw_range(r, sp, lr, t, r->own[j].lo, r->own[j].hi);
        return;
    }
    r->pool_job = POOL_ADAMW;
    r->pool_span = sp;
    r->pool_lr = lr;
    r->pool_t = t;
    lane_pool_run(&r->pool);
    r->pool_job = POOL_LANES;
}

/* Whether the ranks hold shares of the span (the lane tree over ranks)
 * rather than each the whole: the same on every rank. A rank's share may
 * still be the whole span or nothing (a span under two chunks), so this,
 * not the share's size, says whether the collectives run. */
static int shares_split(const run *r) { return r->tree && r->np > 1; }

/* The first tensor of the span whose summed gradient holds a NaN or an
 * infinity, or -1. The sum is the same on every rank, and so is the
 * verdict. */
static int nonfinite_tensor(const run *r, const span *sp)
{
    int bad = -1;
    for (int j = 0; j < r->nown && bad < 0; j++) {
        const size_t lo = r->own[j].lo, hi = r->own[j].hi;
        if (first_nonfinite(r->grad + lo, hi - lo) < 0)
            continue;
        for (int i = sp->first; i < sp->first + sp->count && bad < 0; i++) {
            const param_view *v = &r->pt->v[i];
            const size_t a = v->offset > lo ? v->offset : lo;
            const size_t b = v->offset + v->numel < hi ? v->offset + v->numel : hi;
            if (a < b && first_nonfinite(r->grad + a, b - a) >= 0)
                bad = i;
        }
    }
    if (!shares_split(r))
        return bad; /* the whole sum is here, the same on every rank */
    const int first = -comm_max_int(bad >= 0 ? -bad : -INT_MAX); /* the ranks' shares */
    return first == INT_MAX ? -1 : first;
}

/* The norm in the lane tree: sums of squares over chunks of NORM_CHUNK
 * elements of the span (each rank those of its shares, which are whole
 * chunks, the others 0), added in chunk order: the same bits whichever rank
 * holds which chunk. */
static double tree_norm(run *r, const span *sp)
{
    const size_t nchunks = (sp->n + NORM_CHUNK - 1) / NORM_CHUNK;
    memset(r->norm_parts, 0, nchunks * sizeof(double));
    for (int j = 0; j < r->nown; j++)
        for (size_t a = r->own[j].lo; a < r->own[j].hi; a += NORM_CHUNK) {
            const size_t b = a + NORM_CHUNK < r->own[j].hi ? a + NORM_CHUNK : r->own[j].hi;
            double s = 0.0;
            for (size_t i = a; i < b; i++)
                s += (double)r->grad[i] * r->grad[i];
            r->norm_parts[(a - sp->lo) / NORM_CHUNK] = s;
        }
    if (shares_split(r))
        comm_sum_double(r->norm_parts, nchunks);
    double norm2 = 0.0;
    for (size_t c = 0; c < nchunks; c++)
        norm2 += r->norm_parts[c];
    return sqrt(norm2);
}

/* One phase: its gradient summed over all lanes and ranks, its loss and
 * the stop requests agreed in one small reduction, then (unless something
 * was not finite) clipping and the update of its tensors. Returns 0, or -1
 * when the step must not go on. */
static int phase_step(run *r, int p, int want_norm, step_result *s)
{
    const config *c = &r->cfg;
    const span sp = phase_span(r, p);
    const int F = r->mt->nfigures, nl = r->nlanes;
    r->phase = p;
    r->own[0] = (struct own_range){sp.lo, sp.lo + sp.n};
    r->nown = 1;
    memset(r->lane_loss, 0, ((size_t)nl + 1 + (size_t)F) * sizeof(double));
    if (r->tree)
        tree_gradient(r, &sp);
    else if (r->exact)
        exact_gradient(r, p);
    else
        fast_gradient(r, &sp);
    /* lane losses: each slot has one contributor, so the sum is exact; the
     * last slot carries the stop requests */
    r->lane_loss[nl] = stop_requested() ? 1.0 : 0.0;
    for (int k = 0; k < r->nworkers; k++) /* the figures ride along, for reports */
        for (int i = 0; i < F; i++) {
            r->lane_loss[nl + 1 + i] += r->work[k].fig[i];
            r->work[k].fig[i] = 0.0;
        }
    comm_sum_double(r->lane_loss, (size_t)nl + 1 + (size_t)F);
    s->stop |= r->lane_loss[nl] > 0.0;
    for (int i = 0; i < F; i++)
        s->figures[i] = r->lane_loss[nl + 1 + i] / ((double)c->batch * r->units_per_row);
    double loss = 0.0;
    for (int l = 0; l < r->nlanes; l++)
        loss += r->lane_loss[l];
    loss /= (double)c->batch * r->units_per_row;
    s->phase_loss[p] = loss;
    if (p == 0)
        s->loss = loss;
    s->bad_tensor = nonfinite_tensor(r, &sp);
    if (s->bad_tensor >= 0 || !isfinite(loss)) {
        s->loss = loss; /* the one to name */
        return -1;
    }
    double norm = -1.0;
    if (c->grad_clip > 0 || want_norm)
        norm = r->tree ? tree_norm(r, &sp) : grad_norm(r, &sp);
    if (c->grad_clip > 0 && norm > c->grad_clip) {
        const float k = (float)(c->grad_clip / norm);
        for (int j = 0; j < r->nown; j++)
            for (size_t i = r->own[j].lo; i < r->own[j].hi; i++)
                r->grad[i] *= k;
    }
    if (p == 0)
        s->norm = norm;
    adamw_step(r, &sp, s->lr, r->step + 1);
    if (shares_split(r)) /* each rank updated its shares: all to all */
        buckets_allgather(r, &sp, r->params);
    return 0;
}

void step_gather_moments(run *r)
{
    if (!r->moments_sharded)
        return;
    for (int p = 0; p < r->phases; p++) {
        const span sp = phase_span(r, p);
        buckets_allgather(r, &sp, r->adam_m);
        buckets_allgather(r, &sp, r->adam_v);
    }
}

step_result train_step(run *r, int want_norm)
{
    const config *c = &r->cfg;
    step_result s = {.norm = -1.0, .bad_tensor = -1};
    s.lr = lr_at(c->lr, c->warmup, c->min_lr_frac, r->step, r->total_steps);
    for (int p = 0; p < r->phases; p++)
        if (phase_step(r, p, want_norm, &s) != 0) {
            /* stop: the caller ends the run before this step counts; skip:
             * the step counts (its data is used up), the phases before this
             * one have updated their tensors, this one and the rest not */
            s.skipped = !strcmp(c->on_nonfinite, "skip");
            r->step += s.skipped;
            r->phase = 0;
            return s;
        }
    r->phase = 0;
    r->step++;
    return s;
}

/* Worker 0's batch, set up for evaluation rows (their draws at RNG_EVAL). */
static batch *eval_batch(run *r)
{
    batch *b = &r->work[0].b;
    b->seed = (uint32_t)r->cfg.seed;
    b->purpose = RNG_EVAL;
    b->train = 0;
    b->fast = 0;
    b->nseg = 1;
    b->phase = 0;
    return b;
}

/* A row's loss is the same bits whichever rank and call compute it (the
 * fixed-order products); summed in floating point per rank, then over
 * ranks, the total would still change in its last bits with -np. So each
 * row's loss is rounded to a multiple of 2^-16 nats, and those integers
 * (held in doubles, exact below 2^53: 10^5 rows of 10^6 nats) add up to
 * the same total in any order. */
#define EVAL_QUANTUM 65536.0

eval_result evaluate(run *r)
{
    worker *w = &r->work[0];
    batch *b = eval_batch(r);
    double sums[5] = {0.0}; /* nats, text bytes, unknown targets, correct rows, rows */
    size_t cursor = 0;
    while ((b->rows = r->task->eval_fill(&r->cfg, &r->data, b, &cursor)) > 0) {
        r->mt->forward(w->m, r->params, b, w->row_loss);
        for (int j = 0; j < b->rows; j++)
            sums[0] += rint(w->row_loss[j] * EVAL_QUANTUM);
        sums[1] += b->text_bytes;
        sums[2] += b->unknown;
        sums[3] += r->mt->correct ? r->mt->correct(w->m, b) : 0.0;
        sums[4] += b->rows;
        b->text_bytes = b->unknown = 0.0;
    }
    comm_sum_double(sums, 5);
    eval_result e = {.nats = sums[0] / EVAL_QUANTUM, .text_bytes = sums[1], .unknown = sums[2]};
    e.units = r->task->eval_units(&r->cfg, &r->data);
    e.loss = e.nats / e.units;
    e.accuracy = r->mt->correct && sums[4] > 0 ? sums[3] / sums[4] : -1.0;
    return e;
}

/* Bins of a tenth of a decade from 1e-12 up; the first holds everything
 * below, the last everything above 1e4. */
#define RT_BINS 160

static int rt_bin(double e)
{
    if (!(e > 1e-12))
        return 0;
    const int k = (int)ceil(10.0 * log_d(e / 1e-12) / 2.302585092994046); /* ln 10 */
    return k < RT_BINS - 1 ? k : RT_BINS - 1;
}

static double rt_bound(const double *bins, double rows, double share)
{
    double seen = 0.0;
    for (int k = 0; k < RT_BINS; k++) {
        seen += bins[k];
        if (seen >= share * rows)
            return 1e-12 * exp_d(k / 10.0 * 2.302585092994046);
    }
    return INFINITY;
}

roundtrip_result evaluate_roundtrip(run *r)
{
    worker *w = &r->work[0];
    batch *b = eval_batch(r);
    double bins[RT_BINS + 2] = {0.0}; /* the bins, rows, rows above 1e-4 */
    float largest = 0.0f;
    size_t cursor = 0;
    while ((b->rows = r->task->eval_fill(&r->cfg, &r->data, b, &cursor)) > 0) {
        r->mt->roundtrip(w->m, r->params, b, w->row_loss);
        for (int j = 0; j < b->rows; j++) {
            const double e = w->row_loss[j];
            bins[rt_bin(e)] += 1.0;
            bins[RT_BINS] += 1.0;
            bins[RT_BINS + 1] += e > 1e-4;
            largest = (float)e > largest ? (float)e : largest;
        }
    }
    comm_sum_double(bins, RT_BINS + 2);
    comm_max_float(&largest, 1);
    return (roundtrip_result){.rows = bins[RT_BINS], .largest = largest,
                              .above_1e4 = bins[RT_BINS + 1],
                              .median_below = rt_bound(bins, bins[RT_BINS], 0.5),
                              .p999_below = rt_bound(bins, bins[RT_BINS], 0.999)};
}
