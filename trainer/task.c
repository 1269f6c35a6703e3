/* What every task shares: loading a rank's shards, and batches. */
#include "task.h"

#include "comm/comm.h"
#include "io/checkpoint.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void batch_alloc(batch *b, int cap, size_t in, int T)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->in = in;
    b->T = T;
    if (in) {
        b->x = xcalloc((size_t)cap * in, sizeof *b->x, "batch");
        b->labels = xcalloc((size_t)cap, 1, "batch");
    }
    if (T) {
        b->tokens = xcalloc((size_t)cap * (size_t)T, sizeof *b->tokens, "batch");
        b->targets = xcalloc((size_t)cap * (size_t)T, sizeof *b->targets, "batch");
    }
    b->key = xcalloc((size_t)cap, sizeof *b->key, "batch");
    b->seg_stream = xcalloc((size_t)cap, sizeof *b->seg_stream, "batch");
    b->nseg = 1;
}

void batch_free(batch *b)
{
    free(b->x);
    free(b->labels);
    free(b->tokens);
    free(b->targets);
    free(b->key);
    free(b->seg_stream);
    memset(b, 0, sizeof *b);
}

/* Every rank calls this with its own verdict; all return the worst. */
static int agree(int failed) { return comm_max_int(failed ? 1 : 0); }

/* The shard count of a split, from the first file's attributes: rank 0
 * reads it and shares it. Returns -1 (everywhere) when that file is bad. */
static int split_shard_count(const char *dir, const char *split)
{
    int k = 0;
    if (comm_rank() == 0) {
        char path[CFG_PATH + 32];
        shard_path(path, sizeof path, dir, split, 0);
        k = shard_read_count(path);
    }
    comm_bcast_bytes(&k, sizeof k, 0);
    return k;
}

static int enough_train_shards(const dataset *d, const config *c, int ktrain, int nlanes)
{
    const int loud = d->rank == 0;
    if (ktrain < d->np) {
        if (loud)
            fprintf(stderr, "trainer: %s: %d train shards for %d ranks: need at least one per rank\n",
                    c->data, ktrain, d->np);
        return 0;
    }
    if (ktrain < nlanes) {
        if (loud)
            fprintf(stderr,
                    "trainer: %s: %d train shards for %d lanes: need at least one per lane (--lanes)\n",
                    c->data, ktrain, nlanes);
        return 0;
    }
    return 1;
}

/* Rank 0's bytes of *buf (n of them) on every rank; allocated where
 * missing. */
static void share(uint8_t **buf, size_t n, const char *what)
{
    if (comm_rank() != 0 && n)
        *buf = xcalloc(n, 1, what);
    if (n)
        comm_bcast_bytes(*buf, n, 0);
}

/* Rank 0 reads the whole eval split and every rank gets a copy (it is small,
 * and every rank draws from it). */
static int load_shared_eval(dataset *d, const task_type *t, const config *c, int keval)
{
    int failed = 0;
    if (d->rank == 0)
        failed = split_data_load(&d->eval, c->data, t->eval_split, keval, t->kind, 0, 1,
                                 &d->fmt) != 0;
    if (agree(failed))
        return -1;
    split_data *e = &d->eval;
    int has_units = e->unit_bytes != NULL;
    comm_bcast_bytes(&e->n, sizeof e->n, 0);
    comm_bcast_bytes(&e->sample_bytes, sizeof e->sample_bytes, 0);
    comm_bcast_bytes(&has_units, sizeof has_units, 0);
    share(&e->data, e->n * e->sample_bytes, "evaluation split");
    if (has_units)
        share(&e->unit_bytes, e->n, "evaluation split");
    return 0;
}

/* Every rank must read data of one format: rank 0's. A rank that loaded
 * nothing (eval on more ranks than shards) takes rank 0's. */
static int same_format(dataset *d, const config *c)
{
    data_format *f = &d->fmt;
    struct {
        size_t h, w, vocab_bytes;
        int width;
        uint64_t vocab_sum;
    } mine, root;
    memset(&mine, 0, sizeof mine); /* padding too: the struct is compared whole */
    mine.h = f->h;
    mine.w = f->w;
    mine.vocab_bytes = f->vocab_bytes;
    mine.width = f->width;
    mine.vocab_sum = fnv1a64(f->vocab, f->vocab_bytes);
    root = mine;
    comm_bcast_bytes(&root, sizeof root, 0);
    const int empty = f->h == 0;
    if (empty) {
        f->h = root.h;
        f->w = root.w;
        f->width = root.width;
        f->vocab_bytes = root.vocab_bytes;
    }
    const int differs = !empty && memcmp(&mine, &root, sizeof mine) != 0;
    if (differs)
        fprintf(stderr, "trainer: %s: rank %d's shards differ from rank 0's (image size, token "
                        "width or vocabulary): prepare them again together\n",
                c->data, d->rank);
    if (agree(differs))
        return -1;
    if (f->vocab_bytes && !f->vocab)
        f->vocab = xcalloc(f->vocab_bytes, 1, "vocabulary");
    if (f->vocab_bytes) /* the same bytes everywhere (checked), or rank 0's where none */
        comm_bcast_bytes(f->vocab, f->vocab_bytes, 0);
    d->in = f->h * f->w;
    return 0;
}

int dataset_load(dataset *d, const task_type *t, const config *c, const int *lane_ids,
                 int nlocal, int nlanes)
{
    memset(d, 0, sizeof *d);
    d->rank = comm_rank();
    d->np = comm_size();
    const int need_train = lane_ids != NULL;
    int ktrain = need_train ? split_shard_count(c->data, "train") : 0;
    if (ktrain < 0)
        return -1;
    int keval = split_shard_count(c->data, t->eval_split);
    if (keval < 0 || (need_train && !enough_train_shards(d, c, ktrain, nlanes)))
        return -1;
    int failed = 0;
    if (need_train) {
        d->nlocal = nlocal;
        d->lanes = xcalloc((size_t)nlocal, sizeof *d->lanes, "lanes");
        failed = lane_data_load(d->lanes, lane_ids, nlocal, nlanes, c->data, "train", ktrain,
                                t->kind, &d->fmt) != 0;
    }
    if (!failed && !t->eval_shared)
        failed = split_data_load(&d->eval, c->data, t->eval_split, keval, t->kind, d->rank, d->np,
                                 &d->fmt) != 0;
    if (agree(failed))
        return -1;
    if (t->eval_shared && load_shared_eval(d, t, c, keval) != 0)
        return -1;
    if (same_format(d, c) != 0)
        return -1;
    if (t->check_data)
        failed = t->check_data(d, c, d->rank == 0) != 0;
    if (agree(failed))
        return -1;
    double counts[2] = {0, t->eval_shared ? 0.0 : (double)d->eval.n};
    for (int l = 0; l < d->nlocal; l++)
        counts[0] += (double)d->lanes[l].n;
    comm_sum_double(counts, 2);
    d->n_train = (size_t)counts[0];
    d->n_eval = t->eval_shared ? d->eval.n : (size_t)counts[1];
    return 0;
}

void dataset_free(dataset *d)
{
    if (d->lanes)
        lane_data_free(d->lanes, d->nlocal);
    free(d->lanes);
    split_data_free(&d->eval);
    data_format_free(&d->fmt);
    memset(d, 0, sizeof *d);
}
