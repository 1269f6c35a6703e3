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
#include "trainer/chrf.h"
#include "trainer/model.h"
#include "trainer/philox.h"
#include "trainer/task.h"
#include "trainer/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pairs task's own options: translation and its score. */
typedef struct {
    char text[1024];
    char lines[CFG_PATH];
    int beam;
    int chrf_pairs;
} pairs_opts;

static const opt_spec PAIRS_OPTS[] = {
    OPT(pairs_opts, text, "text", OPT_STR, "", CMD_SAMPLE, 0, 0,
        "translate: a sentence (also the command's last argument)"),
    OPT(pairs_opts, lines, "lines", OPT_STR, "", CMD_SAMPLE, 0, 0,
        "translate: a file of sentences, one a line"),
    OPT(pairs_opts, beam, "beam", OPT_INT, "1", CMD_SAMPLE | CMD_TRAIN | CMD_EVAL, 1, 64,
        "beam width (1: greedy)"),
    OPT(pairs_opts, chrf_pairs, "chrf-pairs", OPT_INT, "64", CMD_TRAIN | CMD_EVAL, 0, 100000,
        "validation pairs translated for chrF at each evaluation (0: none)"),
};

static const pairs_opts *opts(const config *c) { return TASK_OPTS(c, const pairs_opts); }

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

/* The data's BPE, made once (for the last vocabulary asked about). */
static const bpe *bpe_of(const dataset *d)
{
    static bpe b;
    static const uint8_t *of;
    if (of == d->fmt.vocab && b.vocab)
        return &b;
    bpe_free(&b);
    if (bpe_from_merges(&b, (const uint16_t(*)[2])d->fmt.vocab, (int)(d->fmt.vocab_bytes / 4)) !=
        0)
        return NULL;
    of = d->fmt.vocab;
    return &b;
}

static int pairs_eval_fill(const config *c, const dataset *d, batch *b, size_t *cursor)
{
    (void)c;
    const split_data *e = &d->eval;
    const int L = side_of(d), V = vocab_of(d);
    const bpe *vocab = bpe_of(d);
    int R = 0;
    b->text_bytes = b->unknown = 0.0;
    for (size_t i = (size_t)d->rank + *cursor * (size_t)d->np; i < e->n && R < b->cap;
         i += (size_t)d->np) {
        from_record(b, R, (const uint16_t *)(e->data + i * e->sample_bytes), L, V - 3, V - 1);
        const int32_t *tgt = b->targets + (size_t)R * 2 * L + L;
        for (int t = 0; t < L && tgt[t] >= 0 && vocab; t++) /* each token's bytes */
            b->text_bytes += vocab->tok_off[tgt[t] + 1] - vocab->tok_off[tgt[t]];
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

/* One translation of bytes s[0, n) into out (room for size bytes, NUL
 * ended); returns its length. */
static size_t translate_bytes(const config *c, const dataset *d, model *m, const float *params,
                              const uint8_t *s, size_t n, uint8_t *out, size_t size)
{
    const bpe *b = bpe_of(d);
    const int L = side_of(d);
    uint16_t *ids = xcalloc(n + 1, sizeof *ids, "tokens");
    int32_t *src = xcalloc(n + 1, sizeof *src, "tokens"), *tgt = xcalloc((size_t)L, sizeof *tgt, "tokens");
    uint16_t *tgt16 = xcalloc((size_t)L, sizeof *tgt16, "tokens");
    size_t k = b ? bpe_encode(b, s, n, ids) : 0;
    for (size_t i = 0; i < k; i++)
        src[i] = ids[i];
    const int got = m->type->translate(m, params, src, (int)k, opts(c)->beam, tgt, L);
    for (int i = 0; i < got; i++)
        tgt16[i] = (uint16_t)tgt[i];
    size_t len = b ? bpe_decode(b, tgt16, (size_t)got, out, size - 1) : 0;
    len = len < size - 1 ? len : size - 1;
    out[len] = 0;
    free(ids);
    free(src);
    free(tgt);
    free(tgt16);
    return len;
}

/* The bytes of a record's side (its tokens up to the end token). */
static size_t side_bytes(const dataset *d, const uint16_t *r, uint8_t *out, size_t size)
{
    const int L = side_of(d), end = vocab_of(d) - 2;
    int n = 0;
    while (n < L && r[n] < end)
        n++;
    const size_t len = bpe_decode(bpe_of(d), r, (size_t)n, out, size - 1);
    out[len < size - 1 ? len : size - 1] = 0;
    return len < size - 1 ? len : size - 1;
}

/* chrF of the translations of the first chrf-pairs validation pairs, and
 * the first of them shown (rank 0 holds the whole split). */
static void pairs_show(const config *c, const dataset *d, model *m, const float *params,
                       long step, int final)
{
    const int n = opts(c)->chrf_pairs < (int)d->eval.n ? opts(c)->chrf_pairs : (int)d->eval.n;
    if (!m->type->translate || n <= 0 || !bpe_of(d) ||
        !(final || (c->eval_every && step % c->eval_every == 0)))
        return;
    static uint8_t src[4096], ref[4096], hyp[4096];
    chrf_stats st;
    memset(&st, 0, sizeof st);
    const double t0 = now_seconds();
    for (int i = 0; i < n; i++) {
        const uint16_t *r = (const uint16_t *)(d->eval.data + (size_t)i * d->eval.sample_bytes);
        const size_t ns = side_bytes(d, r, src, sizeof src);
        const size_t nr = side_bytes(d, r + side_of(d), ref, sizeof ref);
        const size_t nh = translate_bytes(c, d, m, params, src, ns, hyp, sizeof hyp);
        chrf_add(&st, hyp, nh, ref, nr);
        if (i == 0)
            printf("translation: %s\n  reference: %s\n  ours:      %s\n", src, ref, hyp);
    }
    printf("chrF %.2f over the first %d validation pairs (beam %d; %.1f s)\n", chrf_score(&st), n,
           opts(c)->beam, now_seconds() - t0);
    fflush(stdout);
}

/* The translate command: --text, the --lines of a file, one line each. */
static int pairs_sample(const config *c, const dataset *d, model *m, const float *params,
                        FILE *out)
{
    const pairs_opts *o = opts(c);
    static uint8_t hyp[8192];
    if (!m->type->translate) {
        fprintf(stderr, "trainer: the %s model does not translate\n", m->type->name);
        return -1;
    }
    if (!o->text[0] && !o->lines[0]) {
        fprintf(stderr, "trainer: translate: give a sentence (as the last argument or --text) or "
                        "--lines FILE\n");
        return -1;
    }
    if (o->text[0]) {
        translate_bytes(c, d, m, params, (const uint8_t *)o->text, strlen(o->text), hyp,
                        sizeof hyp);
        fprintf(out, "%s\n", hyp);
    }
    if (!o->lines[0])
        return 0;
    size_t n = 0;
    uint8_t *buf = read_file(o->lines, &n);
    if (!buf)
        return -1;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && buf[e] != '\n')
            e++;
        translate_bytes(c, d, m, params, buf + i, e - i, hyp, sizeof hyp);
        fprintf(out, "%s\n", hyp);
        i = e + 1;
    }
    free(buf);
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
    .sample_name = "pair",
    .opts = OPT_GROUP(PAIRS_OPTS, pairs_opts),
    .sample_needs_data = 1, /* the shape (max_tokens) comes from the shards */
    .show = pairs_show,
    .sample = pairs_sample,
    .check_data = pairs_check_data,
    .shape = pairs_shape,
    .units_per_row = pairs_units_per_row,
    .fill = pairs_fill,
    .eval_fill = pairs_eval_fill,
    .eval_units = pairs_eval_units,
    .eval_describe = pairs_eval_describe,
};
