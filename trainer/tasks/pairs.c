/* The pairs task: translation pairs (io/shards.h's pair shards, prepared by
 * prepare --source parallel), a pair a row. With L the shards' max_tokens,
 * a row holds 2L positions:
 *   tokens[0, L):   the source's tokens, the end token, padding;
 *   tokens[L, 2L):  the decoder's input: begin, the target's tokens, padding;
 *   targets[L, 2L): the target's tokens and the end token, then -1 (no
 *                   loss) where tokens hold padding; targets[0, L) are -1.
 * A lane's row s of step `step` is the pair at position step * lane_rows + s
 * of the lane's shuffled epochs, as for images. The loss unit is a target
 * token (the end token included); evaluation covers every validation pair
 * (read by rank 0 and shared, rows dealt out rank by rank) and reports bits
 * per byte of the target text too. */
#include "trainer/bpe.h"
#include "trainer/philox.h"
#include "trainer/task.h"
#include "trainer/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* L: positions a side. */
static int side_of(const dataset *d) { return (int)d->fmt.w; }
static int vocab_of(const dataset *d) { return 256 + (int)(d->fmt.vocab_bytes / 4) + BPE_SPECIALS; }

static data_shape pairs_shape(const dataset *d, const config *c)
{
    (void)c;
    return (data_shape){.T = 2 * side_of(d), .vocab = vocab_of(d)};
}

/* The loop scales by rows (a pair each); the model makes a call's rows
 * carry its mean over real target tokens (models/seq2seq.h), so the step's
 * loss is the lanes' mean nats per target token. */
static int pairs_units_per_row(const config *c)
{
    (void)c;
    return 1;
}

/* Row j from record r ([2, L] uint16). */
static void from_record(batch *b, int row, const uint16_t *r, int L, int begin, int pad)
{
    int32_t *tok = b->tokens + (size_t)row * 2 * L, *tgt = b->targets + (size_t)row * 2 * L;
    for (int t = 0; t < L; t++) {
        tok[t] = r[t];
        tgt[t] = -1;
    }
    const uint16_t *y = r + L;
    for (int t = 0; t < L; t++) {
        tok[L + t] = t == 0 ? begin : (y[t - 1] == pad || y[t - 1] == pad - 1 ? pad : y[t - 1]);
        tgt[L + t] = y[t] == pad ? -1 : y[t];
    }
}

static void pairs_fill(const config *c, dataset *d, batch *b, int at, int l, long step, int s0,
                       int n)
{
    const uint32_t seed = (uint32_t)c->seed;
    const uint64_t lane_rows = (uint64_t)(c->batch / c->lanes);
    const int L = side_of(d), V = vocab_of(d);
    lane_data *ld = &d->lanes[l];
    for (int j = 0; j < n; j++) {
        const int row = at + j, s = s0 + j;
        const uint32_t idx = lane_sample(ld, seed, (uint64_t)step * lane_rows + (uint64_t)s);
        from_record(b, row, (const uint16_t *)(ld->data + (size_t)idx * ld->sample_bytes), L,
                    V - 3, V - 1);
        b->key[row] = (rng_key){(uint32_t)ld->lane, (uint32_t)step, (uint32_t)s};
    }
}

/* The bytes each token stands for, for the vocabulary of d (kept for the
 * last vocabulary asked about). */
static const uint32_t *token_bytes(const dataset *d)
{
    static uint32_t *len;
    static const uint8_t *of;
    if (of == d->fmt.vocab && len)
        return len;
    const int nm = (int)(d->fmt.vocab_bytes / 4), V = 256 + nm + BPE_SPECIALS;
    const uint16_t *m = (const uint16_t *)d->fmt.vocab;
    free(len);
    len = xcalloc((size_t)V, sizeof *len, "token lengths");
    for (int t = 0; t < 256; t++)
        len[t] = 1;
    for (int i = 0; i < nm; i++)
        len[256 + i] = len[m[2 * i]] + len[m[2 * i + 1]];
    of = d->fmt.vocab;
    return len;
}

static int pairs_eval_fill(const config *c, const dataset *d, batch *b, size_t *cursor)
{
    (void)c;
    const split_data *e = &d->eval;
    const int L = side_of(d), V = vocab_of(d);
    const uint32_t *bytes = token_bytes(d);
    int R = 0;
    b->text_bytes = b->unknown = 0.0;
    for (size_t i = (size_t)d->rank + *cursor * (size_t)d->np; i < e->n && R < b->cap;
         i += (size_t)d->np) {
        from_record(b, R, (const uint16_t *)(e->data + i * e->sample_bytes), L, V - 3, V - 1);
        const int32_t *tgt = b->targets + (size_t)R * 2 * L + L;
        for (int t = 0; t < L && tgt[t] >= 0; t++)
            b->text_bytes += bytes[tgt[t]];
        b->key[R] = (rng_key){RNG_STREAM_GLOBAL, (uint32_t)i, 0};
        R++;
    }
    *cursor += (size_t)R;
    return R;
}

/* Target tokens of the whole validation split, the end tokens included. */
static double pairs_eval_units(const config *c, const dataset *d)
{
    (void)c;
    const int L = side_of(d), pad = vocab_of(d) - 1;
    double n = 0.0;
    for (size_t i = 0; i < d->eval.n; i++) {
        const uint16_t *y = (const uint16_t *)(d->eval.data + i * d->eval.sample_bytes) + L;
        for (int t = 0; t < L && y[t] != pad; t++)
            n += 1.0;
    }
    return n;
}

static void pairs_eval_describe(const config *c, const dataset *d, char *buf, size_t size)
{
    (void)c;
    snprintf(buf, size, "%zu pairs, %.0f target tokens", d->eval.n, pairs_eval_units(c, d));
}

static int pairs_check_data(const dataset *d, const config *c, int loud)
{
    if (d->fmt.h != 2 || d->fmt.width != 2) {
        if (loud)
            fprintf(stderr, "trainer: %s: not pair shards (prepare --source parallel)\n", c->data);
        return -1;
    }
    return 0;
}

const task_type pairs_task = {
    .name = "pairs",
    .kind = SHARD_PAIRS,
    .eval_split = "val",
    .eval_name = "validation",
    .eval_shared = 1,
    .unit = "token",
    .infer_rows = 16,
    .rate_unit = "pairs",
    .check_data = pairs_check_data,
    .shape = pairs_shape,
    .units_per_row = pairs_units_per_row,
    .fill = pairs_fill,
    .eval_fill = pairs_eval_fill,
    .eval_units = pairs_eval_units,
    .eval_describe = pairs_eval_describe,
};
