/* prepare --source parallel: sentence pairs for translation from two texts
 * as diatheke prints SWORD Bible modules ("Book C:V: text", a verse a
 * line), paired by reference, to pair shards (io/shards.h) with a byte-level
 * BPE (bpe.h) learned from the training pairs of both languages.
 *
 * A verse is a line that starts with its reference; other lines are blank,
 * the module's "(name)", or section titles (diatheke prints a psalm's title
 * again before each of its verses): skipped, the titles counted.
 * Text is cleaned: markup in angle brackets (Strong's numbers such as
 * <G5547>) and the pilcrow that marks paragraphs go, runs of whitespace
 * become one space. Pairs follow the first text's order; pair i is
 * validation when i % 50 == 7. Pairs whose tokens, with the end token, do
 * not fit --max-tokens on either side are left out and counted. */
#include "bpe.h"
#include "config.h"
#include "io/checkpoint.h"
#include "io/shards.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAX 48

typedef struct {
    char ref[REF_MAX];
    size_t at, len; /* the cleaned text in the text's buffer */
} verse;

typedef struct {
    verse *v;
    size_t n, cap;
    uint8_t *text; /* cleaned verses, one after the other */
    size_t bytes;
    size_t marked; /* verses that had markup */
    size_t titles; /* lines skipped that were not verses */
} verses;

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int is_blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Where the verse text starts after "Book C:V:", with the reference into
 * ref; 0 when the line does not start with one. */
static size_t parse_ref(const uint8_t *s, size_t n, char *ref)
{
    for (size_t i = 1; i < n; i++) {
        if (!is_digit(s[i]) || s[i - 1] != ' ')
            continue;
        size_t j = i;
        while (j < n && is_digit(s[j]))
            j++;
        if (j == n || s[j] != ':' || j + 1 == n || !is_digit(s[j + 1]))
            continue;
        size_t k = j + 1;
        while (k < n && is_digit(s[k]))
            k++;
        if (k == n || s[k] != ':' || (k + 1 < n && s[k + 1] != ' '))
            continue;
        size_t book = i - 1;
        while (book > 0 && s[book - 1] == ' ')
            book--;
        if (book == 0 || book + (k - i) + 2 > REF_MAX)
            return 0;
        memcpy(ref, s, book);
        ref[book] = ' ';
        memcpy(ref + book + 1, s + i, k - i);
        ref[book + 1 + (k - i)] = 0;
        return k + 1;
    }
    return 0;
}

/* Appends s[0, n) to the last verse, cleaned; *marked set when markup went. */
static size_t append_clean(verses *vs, const uint8_t *s, size_t n, int *marked)
{
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '<') { /* markup: <...> without spaces, short */
            size_t j = i + 1;
            while (j < n && j - i < 40 && s[j] != '>' && s[j] != ' ' && s[j] != '<')
                j++;
            if (j < n && s[j] == '>') {
                *marked = 1;
                i = j;
                continue;
            }
        }
        if (s[i] == 0xc2 && i + 1 < n && s[i + 1] == 0xb6) { /* the pilcrow */
            i++;
            continue;
        }
        const uint8_t c = is_blank(s[i]) || s[i] == '\n' ? ' ' : s[i];
        if (c == ' ' && (added == 0 ? vs->bytes == vs->v[vs->n - 1].at
                                    : vs->text[vs->bytes - 1] == ' '))
            continue; /* no leading or double space */
        vs->text[vs->bytes++] = c;
        added++;
    }
    return added;
}

static int parse_verses(const uint8_t *buf, size_t n, verses *vs)
{
    memset(vs, 0, sizeof *vs);
    vs->text = malloc(n + 1);
    if (!vs->text)
        return -1;
    int marked = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && buf[e] != '\n')
            e++;
        const uint8_t *line = buf + i;
        size_t len = e - i, skip = 0;
        i = e + 1;
        while (skip < len && is_blank(line[skip]))
            skip++;
        line += skip;
        len -= skip;
        while (len > 0 && is_blank(line[len - 1]))
            len--;
        if (len == 0 || (line[0] == '(' && line[len - 1] == ')' && !memchr(line, ' ', len)))
            continue;
        char ref[REF_MAX];
        const size_t at = parse_ref(line, len, ref);
        if (at) {
            if (vs->n && marked)
                vs->marked++;
            marked = 0;
            if (vs->n == vs->cap) {
                vs->cap = vs->cap ? 2 * vs->cap : 1024;
                verse *v = realloc(vs->v, vs->cap * sizeof *v);
                if (!v)
                    return -1;
                vs->v = v;
            }
            verse *v = &vs->v[vs->n++];
            memcpy(v->ref, ref, REF_MAX);
            v->at = vs->bytes;
            v->len = 0;
            line += at;
            len -= at;
        } else {
            vs->titles++;
            continue;
        }
        vs->v[vs->n - 1].len += append_clean(vs, line, len, &marked);
    }
    if (vs->n && marked)
        vs->marked++;
    for (size_t k = 0; k < vs->n; k++) /* a space left by markup at the end */
        while (vs->v[k].len && vs->text[vs->v[k].at + vs->v[k].len - 1] == ' ')
            vs->v[k].len--;
    return 0;
}

static void verses_free(verses *vs)
{
    free(vs->v);
    free(vs->text);
}

/* For each verse of a, the index of the verse of b with its reference, or
 * -1. */
static long *match_refs(const verses *a, const verses *b)
{
    size_t cap = 1;
    while (cap < 2 * b->n + 2)
        cap *= 2;
    long *slot = malloc(cap * sizeof *slot), *out = malloc((a->n + 1) * sizeof *out);
    if (!slot || !out) {
        free(slot);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < cap; i++)
        slot[i] = -1;
    for (size_t j = 0; j < b->n; j++) {
        size_t h = fnv1a64(b->v[j].ref, strlen(b->v[j].ref)) & (cap - 1);
        while (slot[h] >= 0 && strcmp(b->v[slot[h]].ref, b->v[j].ref) != 0)
            h = (h + 1) & (cap - 1);
        if (slot[h] < 0)
            slot[h] = (long)j; /* the first of a repeated reference */
    }
    for (size_t i = 0; i < a->n; i++) {
        size_t h = fnv1a64(a->v[i].ref, strlen(a->v[i].ref)) & (cap - 1);
        while (slot[h] >= 0 && strcmp(b->v[slot[h]].ref, a->v[i].ref) != 0)
            h = (h + 1) & (cap - 1);
        out[i] = slot[h];
    }
    free(slot);
    return out;
}

/* A pair: the two verses' indices. */
typedef struct {
    size_t src, tgt;
} pair;

typedef struct {
    uint16_t *src, *tgt, *src_len, *tgt_len;
    size_t src_n, tgt_n, n, long_ones;
    uint8_t *refs;
    size_t refs_bytes;
} encoded;

static void encoded_free(encoded *e)
{
    free(e->src);
    free(e->tgt);
    free(e->src_len);
    free(e->tgt_len);
    free(e->refs);
}

/* The pairs of one split, encoded, the long ones left out. */
static int encode_split(const bpe *b, const verses *s, const verses *t, const pair *p, size_t np,
                        int max_tokens, encoded *e)
{
    memset(e, 0, sizeof *e);
    size_t sb = 0, tb = 0, rb = 0;
    for (size_t i = 0; i < np; i++) {
        sb += s->v[p[i].src].len;
        tb += t->v[p[i].tgt].len;
        rb += strlen(s->v[p[i].src].ref) + 1;
    }
    e->src = malloc((sb + 1) * sizeof *e->src);
    e->tgt = malloc((tb + 1) * sizeof *e->tgt);
    e->src_len = malloc((np + 1) * sizeof *e->src_len);
    e->tgt_len = malloc((np + 1) * sizeof *e->tgt_len);
    e->refs = malloc(rb + 1);
    if (!e->src || !e->tgt || !e->src_len || !e->tgt_len || !e->refs)
        return -1;
    for (size_t i = 0; i < np; i++) {
        const verse *vs = &s->v[p[i].src], *vt = &t->v[p[i].tgt];
        const size_t ks = bpe_encode(b, s->text + vs->at, vs->len, e->src + e->src_n);
        const size_t kt = bpe_encode(b, t->text + vt->at, vt->len, e->tgt + e->tgt_n);
        if (ks + 1 > (size_t)max_tokens || kt + 1 > (size_t)max_tokens) {
            e->long_ones++;
            continue;
        }
        e->src_len[e->n] = (uint16_t)ks;
        e->tgt_len[e->n] = (uint16_t)kt;
        e->src_n += ks;
        e->tgt_n += kt;
        const size_t r = strlen(vs->ref) + 1;
        memcpy(e->refs + e->refs_bytes, vs->ref, r);
        e->refs_bytes += r;
        e->n++;
    }
    return 0;
}

/* K shards of one split: contiguous runs of pairs. */
static int write_split(const config *c, const char *split, const encoded *e, const bpe *b)
{
    char source[2 * CFG_PATH + 32];
    snprintf(source, sizeof source, "parallel %s | %s", c->input, c->target);
    size_t s0 = 0, t0 = 0, r0 = 0;
    for (int k = 0; k < c->shards; k++) {
        const size_t lo = e->n * (size_t)k / (size_t)c->shards;
        const size_t hi = e->n * (size_t)(k + 1) / (size_t)c->shards;
        shard sh = {.kind = SHARD_PAIRS, .shard_index = k, .shard_count = c->shards,
                    .n = hi - lo, .h = 2, .w = (size_t)c->max_tokens, .first_sample = lo, .width = 2,
                    .src = e->src + s0, .tgt = e->tgt + t0, .src_len = e->src_len + lo,
                    .tgt_len = e->tgt_len + lo, .refs = e->refs + r0,
                    .merges = (uint16_t *)b->merges, .nmerges = (size_t)b->nmerges};
        for (size_t i = lo; i < hi; i++) {
            sh.src_n += e->src_len[i];
            sh.tgt_n += e->tgt_len[i];
            sh.refs_bytes += strlen((const char *)e->refs + r0 + sh.refs_bytes) + 1;
        }
        char path[CFG_PATH + 32];
        shard_path(path, sizeof path, c->out, split, k);
        if (shard_write(path, &sh, source, split) != 0)
            return -1;
        s0 += sh.src_n;
        t0 += sh.tgt_n;
        r0 += sh.refs_bytes;
    }
    printf("prepare: %zu %s pairs (%zu longer than %d tokens a side left out), %zu + %zu tokens "
           "-> %s/%s-000.h5 .. %s-%03d.h5\n",
           e->n, split, e->long_ones, c->max_tokens, e->src_n, e->tgt_n, c->out, split, split,
           c->shards - 1);
    return 0;
}

static int read_verses(const char *path, verses *vs)
{
    size_t n = 0;
    uint8_t *buf = read_file(path, &n);
    if (!buf)
        return -1;
    const int rc = parse_verses(buf, n, vs);
    free(buf);
    if (rc != 0)
        fprintf(stderr, "trainer: %s: out of memory\n", path);
    else if (vs->n == 0)
        fprintf(stderr, "trainer: %s: no verses (expected lines like \"Genesis 1:1: text\", as "
                        "diatheke -f plain prints them)\n",
                path);
    return rc == 0 && vs->n ? 0 : -1;
}

int prepare_parallel(const config *c)
{
    verses s = {0}, t = {0};
    pair *p = NULL;
    long *match = NULL;
    uint8_t *learn = NULL;
    bpe b = {0};
    encoded e[2] = {{0}};
    int rc = -1;
    if (!c->target[0]) {
        fprintf(stderr, "trainer: prepare --source parallel: give the second text with --target\n");
        return -1;
    }
    if (read_verses(c->input, &s) != 0 || read_verses(c->target, &t) != 0)
        goto out;
    match = match_refs(&s, &t);
    p = malloc((s.n + 1) * sizeof *p);
    if (!match || !p)
        goto oom;
    size_t np = 0, learn_bytes = 0;
    for (size_t i = 0; i < s.n; i++)
        if (match[i] >= 0 && s.v[i].len && t.v[match[i]].len)
            p[np++] = (pair){i, (size_t)match[i]};
    printf("prepare: %zu verses in %s, %zu in %s (markup stripped from %zu and %zu, %zu and %zu "
           "title lines skipped); %zu pairs by reference, %zu verses of %s without a partner or "
           "empty\n",
           s.n, c->input, t.n, c->target, s.marked, t.marked, s.titles, t.titles, np, s.n - np,
           c->input);
    /* the splits: validation every 50th pair from the 8th on */
    pair *split[2];
    size_t nsplit[2] = {0, 0};
    split[0] = malloc((np + 1) * sizeof *p);
    split[1] = malloc((np / 50 + 2) * sizeof *p);
    if (!split[0] || !split[1]) {
        free(split[0]);
        free(split[1]);
        goto oom;
    }
    for (size_t i = 0; i < np; i++) {
        const int val = i % 50 == 7;
        split[val][nsplit[val]++] = p[i];
        if (!val)
            learn_bytes += s.v[p[i].src].len + t.v[p[i].tgt].len + 2;
    }
    learn = malloc(learn_bytes + 1);
    if (!learn) {
        free(split[0]);
        free(split[1]);
        goto oom;
    }
    size_t at = 0;
    for (size_t i = 0; i < nsplit[0]; i++) {
        const verse *a = &s.v[split[0][i].src], *z = &t.v[split[0][i].tgt];
        memcpy(learn + at, s.text + a->at, a->len);
        at += a->len;
        learn[at++] = '\n';
        memcpy(learn + at, t.text + z->at, z->len);
        at += z->len;
        learn[at++] = '\n';
    }
    const double t0 = now_seconds();
    int ok = bpe_learn(&b, learn, at, c->vocab) == 0;
    if (ok)
        printf("prepare: byte-level BPE of %d tokens (256 bytes, %d merges, %d specials) from "
               "the %zu training pairs in %.1f s\n",
               b.vocab, b.nmerges, BPE_SPECIALS, nsplit[0], now_seconds() - t0);
    for (int k = 0; k < 2 && ok; k++)
        ok = encode_split(&b, &s, &t, split[k], nsplit[k], c->max_tokens, &e[k]) == 0;
    free(split[0]);
    free(split[1]);
    if (!ok)
        goto oom;
    if (e[0].n < (size_t)c->shards || e[1].n < (size_t)c->shards) {
        fprintf(stderr, "trainer: %zu training and %zu validation pairs are too few for %d "
                        "shards\n",
                e[0].n, e[1].n, c->shards);
        goto out;
    }
    rc = write_split(c, "train", &e[0], &b) || write_split(c, "val", &e[1], &b) ? -1 : 0;
    goto out;
oom:
    fprintf(stderr, "trainer: out of memory preparing the pairs of %s and %s\n", c->input,
            c->target);
out:
    verses_free(&s);
    verses_free(&t);
    free(match);
    free(p);
    free(learn);
    bpe_free(&b);
    encoded_free(&e[0]);
    encoded_free(&e[1]);
    return rc;
}
