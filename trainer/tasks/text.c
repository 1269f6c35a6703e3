#include "text.h"

#include "trainer/draft.h"
#include "trainer/model.h"
#include "trainer/nn/exactmath.h"
#include "trainer/philox.h"
#include "trainer/task.h"
#include "trainer/util.h"
#include "trainer/words.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BYTE_VOCAB 256

/* The most tokens sampling guesses ahead: one tile of rows (nn/gemm.c)
 * with the token before them. The default, 3, fills the 4-row tile: with
 * gpt-kjv's table it checked 116 bytes in 52 calls (3374 bytes/s), 7 in 44
 * calls of twice the arithmetic (3088 bytes/s). */
enum { GUESS_MAX = 7 };

static const opt_spec TEXT_OPTS[] = {
    OPT(text_opts, ctx, "ctx", OPT_INT, "128", CMD_TRAIN, 2, 65536,
        "context: positions per training window"),
    OPT(text_opts, val_windows, "val-windows", OPT_INT, "64", CMD_TRAIN, 1, 1e7,
        "validation windows"),
    OPT(text_opts, sample_every, "sample-every", OPT_INT, "0", CMD_TRAIN, 0, 1e9,
        "print a sample every N steps (0: only at the end)"),
    OPT(text_opts, prompt, "prompt", OPT_STR, "", CMD_SAMPLE | CMD_TRAIN, 0, 0,
        "text to continue (training samples: \"And God said\")"),
    OPT(text_opts, length, "length", OPT_INT, "200", CMD_SAMPLE | CMD_TRAIN, 1, 1e7,
        "sample: tokens to generate"),
    OPT(text_opts, temperature, "temperature", OPT_DOUBLE, "1", CMD_SAMPLE | CMD_TRAIN, 1e-6, 100,
        "sample: softmax temperature"),
    OPT(text_opts, top_k, "top-k", OPT_INT, "0", CMD_SAMPLE | CMD_TRAIN, 0, 1 << 20,
        "sample: keep the k likeliest (0: all)"),
    OPT(text_opts, lookahead, "lookahead", OPT_INT, "3", CMD_SAMPLE | CMD_TRAIN, 0, GUESS_MAX,
        "sample: tokens guessed ahead and checked in one model call (the text is the same "
        "for any value; 0: none)"),
};

static const char *const TEXT_DEFAULTS[][2] = {{"data", "data/kjv"}};

static const text_opts *opts(const config *c) { return TASK_OPTS(c, const text_opts); }

static int text_check_data(const dataset *d, const config *c, int loud)
{
    const int T = opts(c)->ctx;
    for (int l = 0; l < d->nlocal; l++)
        if (d->lanes[l].n < (size_t)T + 1) {
            fprintf(stderr, "trainer: %s: lane %d has %zu bytes, fewer than --ctx %d + 1\n",
                    c->data, d->lanes[l].lane, d->lanes[l].n, T);
            return -1;
        }
    if (d->eval.n < (size_t)T + 1) {
        if (loud)
            fprintf(stderr,
                    "trainer: %s: the validation split has %zu bytes, fewer than --ctx %d + 1\n",
                    c->data, d->eval.n, T);
        return -1;
    }
    return 0;
}

/* Token ids run below 256 (bytes) or below the vocabulary's size (words). */
static int vocab_size(const dataset *d)
{
    if (!d || !d->fmt.vocab)
        return BYTE_VOCAB;
    int n = 0;
    for (size_t i = 0; i < d->fmt.vocab_bytes; i++)
        n += d->fmt.vocab[i] == 0;
    return n;
}

static data_shape text_shape(const dataset *d, const config *c)
{
    return (data_shape){.T = opts(c)->ctx, .vocab = vocab_size(d)};
}

static const char *text_unit(const dataset *d) { return d->fmt.width == 2 ? "token" : "byte"; }

static int text_units_per_row(const config *c) { return opts(c)->ctx; }

/* Token i of a byte or word-id sequence. */
static inline int32_t token_at(const uint8_t *data, int width, size_t i)
{
    if (width == 1)
        return data[i];
    uint16_t v;
    memcpy(&v, data + 2 * i, sizeof v);
    return v;
}

/* A window of T + 1 tokens from position off: inputs and next-token
 * targets. */
static void window(int32_t *tok, int32_t *tgt, const uint8_t *data, int width, size_t off, int T)
{
    for (int t = 0; t < T; t++) {
        tok[t] = token_at(data, width, off + (size_t)t);
        tgt[t] = token_at(data, width, off + (size_t)t + 1);
    }
}

static void text_fill(const config *c, dataset *d, batch *b, int at, int l, long step, int s0,
                      int n)
{
    const int T = b->T;
    const lane_data *ld = &d->lanes[l];
    for (int j = 0; j < n; j++) {
        const int row = at + j, s = s0 + j;
        uint32_t draw[4];
        rng_block((uint32_t)c->seed, (uint32_t)ld->lane, RNG_WINDOW, (uint32_t)step, (uint32_t)s,
                  0, draw);
        size_t off = rng_below(draw[0], (uint32_t)(ld->n - (size_t)T));
        window(b->tokens + (size_t)row * T, b->targets + (size_t)row * T, ld->data,
               d->fmt.width, off, T);
        b->key[row] = (rng_key){(uint32_t)ld->lane, (uint32_t)step, (uint32_t)s};
    }
}

/* Window i of the validation set (i = rank, rank + np, ...) at a fixed
 * place drawn from the global stream. */
static int text_eval_fill(const config *c, const dataset *d, batch *b, size_t *cursor)
{
    const int T = b->T, W = opts(c)->val_windows;
    const split_data *e = &d->eval;
    int R = 0;
    b->text_bytes = b->unknown = 0.0;
    for (size_t i = (size_t)d->rank + *cursor * (size_t)d->np; i < (size_t)W && R < b->cap;
         i += (size_t)d->np) {
        uint32_t w[4];
        rng_block((uint32_t)c->seed, RNG_STREAM_GLOBAL, RNG_EVAL, (uint32_t)i, 0, 0, w);
        size_t off = rng_below(w[0], (uint32_t)(e->n - (size_t)T));
        int32_t *tgt = b->targets + (size_t)R * T;
        window(b->tokens + (size_t)R * T, tgt, e->data, d->fmt.width, off, T);
        for (int t = 0; t < T; t++) { /* what the targets stand for */
            b->text_bytes += e->unit_bytes ? e->unit_bytes[off + 1 + (size_t)t] : 1.0;
            b->unknown += e->unit_bytes && tgt[t] == WORDS_UNKNOWN;
        }
        b->key[R] = (rng_key){RNG_STREAM_GLOBAL, (uint32_t)i, 0};
        R++;
    }
    *cursor += (size_t)R;
    return R;
}

static double text_eval_units(const config *c, const dataset *d)
{
    (void)d;
    return (double)opts(c)->val_windows * opts(c)->ctx;
}

static void text_eval_describe(const config *c, const dataset *d, char *buf, size_t size)
{
    snprintf(buf, size, "%d windows of %d %ss", opts(c)->val_windows, opts(c)->ctx,
             text_unit(d));
}

/* The next token from a row of V scores: temperature, then top-k, then a
 * draw from (seed, RNG_SAMPLE, position) through the cumulative distribution
 * in token order. p and sorted hold V floats each. */
static int pick(const float *logits, int V, float temperature, int top_k, uint32_t seed,
                uint32_t position, float *p, float *sorted)
{
    float cut = -INFINITY;
    if (top_k > 0 && top_k < V) {
        memcpy(sorted, logits, sizeof(float) * (size_t)V);
        for (int i = 0; i < top_k; i++) /* partial selection sort: the k-th largest */
            for (int j = i + 1; j < V; j++)
                if (sorted[j] > sorted[i]) {
                    float t = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = t;
                }
        cut = sorted[top_k - 1];
    }
    float mx = -INFINITY;
    for (int v = 0; v < V; v++)
        if (logits[v] >= cut && logits[v] > mx)
            mx = logits[v];
    double sum = 0.0;
    for (int v = 0; v < V; v++) {
        p[v] = logits[v] >= cut ? exp_f((logits[v] - mx) / temperature) : 0.0f;
        sum += p[v];
    }
    uint32_t w[4];
    rng_block(seed, RNG_STREAM_GLOBAL, RNG_SAMPLE, position, 0, 0, w);
    double u = ((double)w[0] + 0.5) / 4294967296.0 * sum, acc = 0.0;
    int last = 0;
    for (int v = 0; v < V; v++) {
        if (p[v] <= 0.0f)
            continue;
        acc += p[v];
        last = v;
        if (u < acc)
            return v;
    }
    return last;
}

/* The prompt as token ids into out (room for strlen + 1): its bytes, or its
 * words through the vocabulary. An empty prompt starts from a newline. */
static int encode(const vocab *v, const char *prompt, int32_t *out)
{
    const uint8_t *p = (const uint8_t *)(prompt[0] ? prompt : "\n");
    size_t n = strlen((const char *)p);
    if (!v) {
        for (size_t i = 0; i < n; i++)
            out[i] = p[i];
        return (int)n;
    }
    word_span *spans = xcalloc(n + 1, sizeof *spans, "prompt");
    size_t k = words_split(p, n, spans);
    for (size_t i = 0; i < k; i++)
        out[i] = words_id(v, p + spans[i].start, spans[i].len);
    free(spans);
    return k ? (int)k : encode(v, "\n", out);
}

/* A guess of the tokens after toks[0, len): from the checkpoint's table of
 * the training text (draft.h) when it has one, else those that followed the latest
 * earlier place where its last g tokens appear (g = 4 .. 2, the longest
 * that is found; a match of one token guessed too badly to pay for the
 * rows it costs). Written text repeats itself (names, phrases, the rest of
 * a word), and sampling checks a guess against what the model draws,
 * keeping the tokens that agree: the guess changes the speed, never the
 * text. */
static int guess(const uint8_t *table, const int32_t *toks, int len, int32_t *draft, int kmax)
{
    if (table)
        return draft_guess(table, toks, len, draft, kmax);
    for (int g = 4; g >= 2; g--)
        for (int q = len - 2; q >= g - 1; q--) {
            int i = 0;
            while (i < g && toks[q - i] == toks[len - 1 - i])
                i++;
            if (i < g)
                continue;
            int k = 0;
            while (k < kmax && q + 1 + k < len)
                draft[k] = toks[q + 1 + k], k++;
            return k;
        }
    return 0;
}

/* Prints the prompt's tokens and n more, drawn from the model: the same
 * seed gives the same text. Bytes are written as they are, words through
 * the vocabulary with spaces between them. */
static void generate(const config *c, model *m, const float *params, const vocab *v,
                     const uint8_t *table, const char *prompt, int n, FILE *f, int report)
{
    const double t0 = now_seconds();
    const model_type *t = m->type;
    const text_opts *o = opts(c);
    const int V = v ? v->size : BYTE_VOCAB;
    int32_t *toks = xcalloc(strlen(prompt) + (size_t)n + 2, sizeof *toks, "sample");
    int len = encode(v, prompt, toks);
    const int prompt_len = len;
    float *p = xcalloc(2 * (size_t)V, sizeof(float), "sampling");
    t->gen_reset(m);
    for (int i = 0; i < len; i++)
        t->gen_push(m, params, toks[i]);
    t->gen_logits(m, params); /* the prompt (prefill): later calls start from it */
    const double t1 = now_seconds();
    long rows = 0, calls = 0;
    for (int i = 0; i < n;) {
        /* the next token's scores, and those after a guessed continuation:
         * each token drawn from its row is the one a call per token would
         * draw, and the rows after a guess that was not drawn are dropped */
        int32_t draft[GUESS_MAX];
        const int kmax = n - i - 1 < o->lookahead ? n - i - 1 : o->lookahead;
        int k = t->gen_lookahead && kmax > 0 ? guess(table, toks, len, draft, kmax) : 0;
        const float *rows_logits;
        if (k > 0)
            k = t->gen_lookahead(m, params, draft, k, &rows_logits);
        else
            rows_logits = t->gen_logits(m, params);
        calls++;
        for (int j = 0; j <= k && i < n; j++, i++, len++) {
            toks[len] = pick(rows_logits + (size_t)j * V, V, (float)o->temperature, o->top_k,
                             (uint32_t)c->seed, (uint32_t)len, p, p + V);
            rows++;
            if (i + 1 < n)
                t->gen_push(m, params, toks[len]);
            if (j == k || toks[len] != draft[j]) {
                i++, len++;
                break;
            }
        }
    }
    const double t2 = now_seconds();
    if (report) /* on stderr: stdout is the text */
        fprintf(stderr,
                "sampled %d %s%s in %.3f s: %.1f ms for the model's setup and the %d-token "
                "prompt, then %.0f %ss/s (%ld model calls)\n",
                n, v ? "word" : "byte", n == 1 ? "" : "s", t2 - t0, 1e3 * (t1 - t0), prompt_len,
                n / (t2 - t1), v ? "word" : "byte", calls);
    char word[1024];
    for (int i = 0; i < len; i++) {
        if (!v) {
            fputc(toks[i], f);
            continue;
        }
        size_t k = words_detok(v, i ? toks[i - 1] : -1, toks[i], word);
        fwrite(word, 1, k, f);
    }
    fputc('\n', f);
    free(p);
    free(toks);
}

static int write_sample(const config *c, const dataset *d, model *m, const float *params,
                        const char *prompt, int n, FILE *f, int report)
{
    if (!m->type->gen_logits) {
        fprintf(stderr, "trainer: the %s model does not generate text\n", m->type->name);
        return -1;
    }
    vocab v;
    int words = d && d->fmt.vocab;
    if (words && vocab_from_blob(&v, d->fmt.vocab, d->fmt.vocab_bytes) != 0)
        return -1;
    generate(c, m, params, words ? &v : NULL, d && !words ? d->fmt.draft : NULL, prompt, n, f,
             report);
    if (words)
        vocab_free(&v);
    return 0;
}

static void text_show(const config *c, const dataset *d, model *m, const float *params, long step,
                      int final)
{
    const text_opts *o = opts(c);
    if (!final && !(o->sample_every && step % o->sample_every == 0))
        return;
    const char *prompt = o->prompt[0] ? o->prompt : "And God said";
    printf("sample at step %ld: ", step);
    write_sample(c, d, m, params, prompt, final ? 200 : 120, stdout, 0);
}

static int text_sample(const config *c, const dataset *d, model *m, const float *params, FILE *out)
{
    return write_sample(c, d, m, params, opts(c)->prompt, opts(c)->length, out, 1);
}

/* The guess table of local lane 0's training bytes (byte tokens only). */
static void text_make_draft(dataset *d)
{
    if (d->fmt.width != 1 || d->fmt.vocab || !d->lanes || d->nlocal < 1)
        return;
    const lane_data *l = &d->lanes[0];
    d->fmt.draft = draft_build(l->data, l->n * l->sample_bytes, &d->fmt.draft_bytes);
    if (!d->fmt.draft)
        d->fmt.draft_bytes = 0; /* no table: sampling guesses from its own text */
}

const task_type text_task = {
    .name = "text",
    .kind = SHARD_TOKENS,
    .eval_split = "val",
    .eval_name = "validation",
    .eval_shared = 1,
    .unit = "byte",
    .unit_of = text_unit,
    .infer_rows = 8,
    .rate_unit = "tokens",
    .opts = OPT_GROUP(TEXT_OPTS, text_opts),
    .defaults = TEXT_DEFAULTS,
    .ndefaults = 1,
    .check_data = text_check_data,
    .shape = text_shape,
    .units_per_row = text_units_per_row,
    .fill = text_fill,
    .eval_fill = text_eval_fill,
    .eval_units = text_eval_units,
    .eval_describe = text_eval_describe,
    .show = text_show,
    .sample = text_sample,
    .make_draft = text_make_draft,
};
