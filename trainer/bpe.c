#include "bpe.h"

#include "io/checkpoint.h" /* fnv1a64, for the chunk table */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CLASS_LETTER, CLASS_DIGIT, CLASS_MARK, CLASS_SPACE };

static int byte_class(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80)
        return CLASS_LETTER;
    if (c >= '0' && c <= '9')
        return CLASS_DIGIT;
    if (c > ' ' && c < 0x7f)
        return CLASS_MARK;
    return CLASS_SPACE;
}

/* The length of the chunk at s[0, n), n > 0 (bpe.h). */
static size_t chunk_len(const uint8_t *s, size_t n)
{
    size_t i = 0;
    if (s[0] == ' ' && n > 1 && byte_class(s[1]) != CLASS_SPACE)
        i = 1;
    const int k = byte_class(s[i]);
    if (k == CLASS_SPACE)
        return 1;
    while (i < n && byte_class(s[i]) == k)
        i++;
    return i;
}

static uint32_t hash_pair(uint32_t key)
{
    return (key * 2654435761u) ^ (key >> 15);
}

/* The distinct chunks of a text with their counts, as token sequences. */
typedef struct {
    size_t n, cap;
    uint16_t **sym; /* a chunk's tokens, merged as learning goes */
    int *len;
    uint64_t *count;
    /* the chunk table: index + 1, 0 empty */
    uint32_t *slot;
    size_t nslots;
    const uint8_t **text; /* where each chunk first occurs */
} chunks;

static int chunks_grow(chunks *c)
{
    const size_t cap = c->cap ? 2 * c->cap : 4096;
    uint16_t **sym = realloc(c->sym, cap * sizeof *sym);
    int *len = sym ? realloc(c->len, cap * sizeof *len) : NULL;
    uint64_t *count = len ? realloc(c->count, cap * sizeof *count) : NULL;
    const uint8_t **text = count ? realloc(c->text, cap * sizeof *text) : NULL;
    if (sym)
        c->sym = sym;
    if (len)
        c->len = len;
    if (count)
        c->count = count;
    if (!text)
        return -1;
    c->text = text;
    c->cap = cap;
    return 0;
}

static int chunks_rehash(chunks *c)
{
    const size_t nslots = c->nslots ? 2 * c->nslots : 1 << 16;
    uint32_t *slot = calloc(nslots, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        size_t h = fnv1a64(c->text[i], (size_t)c->len[i]) & (nslots - 1);
        while (slot[h])
            h = (h + 1) & (nslots - 1);
        slot[h] = (uint32_t)i + 1;
    }
    free(c->slot);
    c->slot = slot;
    c->nslots = nslots;
    return 0;
}

static int chunks_add(chunks *c, const uint8_t *s, size_t n)
{
    if (2 * (c->n + 1) > c->nslots && chunks_rehash(c) != 0)
        return -1;
    size_t h = fnv1a64(s, n) & (c->nslots - 1);
    for (; c->slot[h]; h = (h + 1) & (c->nslots - 1)) {
        const size_t i = c->slot[h] - 1;
        if ((size_t)c->len[i] == n && memcmp(c->text[i], s, n) == 0) {
            c->count[i]++;
            return 0;
        }
    }
    if (c->n == c->cap && chunks_grow(c) != 0)
        return -1;
    uint16_t *sym = malloc(n * sizeof *sym);
    if (!sym)
        return -1;
    for (size_t i = 0; i < n; i++)
        sym[i] = s[i];
    c->sym[c->n] = sym;
    c->len[c->n] = (int)n;
    c->count[c->n] = 1;
    c->text[c->n] = s;
    c->slot[h] = (uint32_t)++c->n;
    return 0;
}

static void chunks_free(chunks *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->sym[i]);
    free(c->sym);
    free(c->len);
    free(c->count);
    free(c->text);
    free(c->slot);
}

/* Pair counts, open addressing on key = a << 16 | b; entries stay once
 * made (a count may fall to zero). */
typedef struct {
    uint32_t *key; /* 0: empty (pair (0, 0) is stored as key 1 << 31 | 0, never used as a key) */
    int64_t *val;
    size_t cap, used;
} pair_table;

#define PAIR_EMPTY 0xffffffffu

static int64_t *pair_slot(pair_table *t, uint32_t key)
{
    size_t h = hash_pair(key) & (t->cap - 1);
    while (t->key[h] != PAIR_EMPTY && t->key[h] != key)
        h = (h + 1) & (t->cap - 1);
    if (t->key[h] == PAIR_EMPTY) {
        t->key[h] = key;
        t->val[h] = 0;
        t->used++;
    }
    return &t->val[h];
}

static int pair_table_init(pair_table *t, size_t cap)
{
    t->cap = cap;
    t->used = 0;
    t->key = malloc(cap * sizeof *t->key);
    t->val = malloc(cap * sizeof *t->val);
    if (!t->key || !t->val)
        return -1;
    memset(t->key, 0xff, cap * sizeof *t->key);
    return 0;
}

static int pair_table_grow(pair_table *t)
{
    pair_table n;
    if (pair_table_init(&n, 2 * t->cap) != 0) {
        free(n.key);
        free(n.val);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->key[i] != PAIR_EMPTY)
            *pair_slot(&n, t->key[i]) = t->val[i];
    free(t->key);
    free(t->val);
    *t = n;
    return 0;
}

static void pair_add(pair_table *t, uint16_t a, uint16_t b, int64_t d)
{
    *pair_slot(t, (uint32_t)a << 16 | b) += d;
}

/* Token strings from the merges. */
static int build_tokens(bpe *b)
{
    const int n = 256 + b->nmerges;
    b->tok_off = calloc((size_t)b->vocab + 1, sizeof *b->tok_off);
    size_t total = 256;
    for (int i = 0; i < b->nmerges && b->tok_off; i++) {
        b->tok_off[256 + i] = 0; /* lengths first */
    }
    if (!b->tok_off)
        return -1;
    uint32_t *len = calloc((size_t)n, sizeof *len);
    if (!len)
        return -1;
    for (int t = 0; t < 256; t++)
        len[t] = 1;
    for (int i = 0; i < b->nmerges; i++) {
        len[256 + i] = len[b->merges[i][0]] + len[b->merges[i][1]];
        total += len[256 + i];
    }
    b->tok_bytes = malloc(total);
    if (!b->tok_bytes) {
        free(len);
        return -1;
    }
    uint32_t at = 0;
    for (int t = 0; t < n; t++) {
        b->tok_off[t] = at;
        if (t < 256) {
            b->tok_bytes[at] = (uint8_t)t;
        } else {
            const uint16_t *m = b->merges[t - 256];
            memcpy(b->tok_bytes + at, b->tok_bytes + b->tok_off[m[0]], len[m[0]]);
            memcpy(b->tok_bytes + at + len[m[0]], b->tok_bytes + b->tok_off[m[1]], len[m[1]]);
        }
        at += len[t];
    }
    for (int t = n; t <= b->vocab; t++) /* the specials: no bytes */
        b->tok_off[t] = at;
    free(len);
    return 0;
}

static int build_ranks(bpe *b)
{
    b->rank_cap = 1;
    while (b->rank_cap < 2 * (size_t)b->nmerges + 2)
        b->rank_cap *= 2;
    b->rank_key = malloc(b->rank_cap * sizeof *b->rank_key);
    b->rank_val = malloc(b->rank_cap * sizeof *b->rank_val);
    if (!b->rank_key || !b->rank_val)
        return -1;
    memset(b->rank_key, 0xff, b->rank_cap * sizeof *b->rank_key);
    for (int i = 0; i < b->nmerges; i++) {
        const uint32_t key = (uint32_t)b->merges[i][0] << 16 | b->merges[i][1];
        size_t h = hash_pair(key) & (b->rank_cap - 1);
        while (b->rank_key[h] != PAIR_EMPTY)
            h = (h + 1) & (b->rank_cap - 1);
        b->rank_key[h] = key;
        b->rank_val[h] = (uint32_t)i;
    }
    return 0;
}

static int finish(bpe *b)
{
    if (build_tokens(b) != 0 || build_ranks(b) != 0) {
        fprintf(stderr, "trainer: out of memory for the BPE vocabulary\n");
        bpe_free(b);
        return -1;
    }
    return 0;
}

/* Merges every (a, b) of one chunk into t, keeping the pair counts. */
static void merge_chunk(chunks *c, size_t w, uint16_t a, uint16_t b, uint16_t t, pair_table *p)
{
    uint16_t *s = c->sym[w];
    const int64_t k = (int64_t)c->count[w];
    int n = c->len[w], out = 0;
    for (int i = 0; i < n; i++) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (out > 0) {
                pair_add(p, s[out - 1], a, -k);
                pair_add(p, s[out - 1], t, k);
            }
            if (i + 2 < n) {
                pair_add(p, b, s[i + 2], -k);
                pair_add(p, t, s[i + 2], k);
            }
            pair_add(p, a, b, -k);
            s[out++] = t;
            i++;
        } else {
            s[out++] = s[i];
        }
    }
    c->len[w] = out;
}

int bpe_learn(bpe *b, const uint8_t *text, size_t n, int vocab)
{
    memset(b, 0, sizeof *b);
    if (vocab < 256 + BPE_SPECIALS || vocab > 65535) {
        fprintf(stderr, "trainer: a BPE vocabulary of %d: expected %d to 65535\n", vocab,
                256 + BPE_SPECIALS);
        return -1;
    }
    const int want = vocab - 256 - BPE_SPECIALS;
    chunks c = {0};
    pair_table p = {0};
    int failed = pair_table_init(&p, 1 << 18) != 0;
    for (size_t i = 0; i < n && !failed;) {
        const size_t len = chunk_len(text + i, n - i);
        failed = chunks_add(&c, text + i, len) != 0;
        i += len;
    }
    b->merges = malloc((size_t)(want > 0 ? want : 1) * sizeof *b->merges);
    failed |= b->merges == NULL;
    for (size_t w = 0; w < c.n && !failed; w++)
        for (int i = 0; i + 1 < c.len[w]; i++)
            pair_add(&p, c.sym[w][i], c.sym[w][i + 1], (int64_t)c.count[w]);
    while (!failed && b->nmerges < want) {
        if (2 * p.used > p.cap && pair_table_grow(&p) != 0) {
            failed = 1;
            break;
        }
        uint32_t best = PAIR_EMPTY;
        int64_t most = 0;
        for (size_t i = 0; i < p.cap; i++)
            if (p.key[i] != PAIR_EMPTY &&
                (p.val[i] > most || (p.val[i] == most && most > 0 && p.key[i] < best))) {
                most = p.val[i];
                best = p.key[i];
            }
        if (most < 1)
            break; /* nothing left to merge */
        const uint16_t a = (uint16_t)(best >> 16), bb = (uint16_t)(best & 0xffff);
        const uint16_t t = (uint16_t)(256 + b->nmerges);
        b->merges[b->nmerges][0] = a;
        b->merges[b->nmerges][1] = bb;
        b->nmerges++;
        for (size_t w = 0; w < c.n; w++)
            for (int i = 0; i + 1 < c.len[w]; i++)
                if (c.sym[w][i] == a && c.sym[w][i + 1] == bb) {
                    merge_chunk(&c, w, a, bb, t, &p);
                    break;
                }
    }
    chunks_free(&c);
    free(p.key);
    free(p.val);
    if (failed) {
        fprintf(stderr, "trainer: out of memory learning the BPE merges\n");
        bpe_free(b);
        return -1;
    }
    b->vocab = 256 + b->nmerges + BPE_SPECIALS;
    return finish(b);
}

int bpe_from_merges(bpe *b, const uint16_t (*merges)[2], int nmerges)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < nmerges; i++)
        if (merges[i][0] >= 256 + i || merges[i][1] >= 256 + i) {
            fprintf(stderr, "trainer: BPE merge %d joins token %d and %d, which are not made yet\n",
                    i, merges[i][0], merges[i][1]);
            return -1;
        }
    b->merges = malloc((size_t)(nmerges > 0 ? nmerges : 1) * sizeof *b->merges);
    if (!b->merges) {
        fprintf(stderr, "trainer: out of memory for the BPE vocabulary\n");
        return -1;
    }
    memcpy(b->merges, merges, (size_t)nmerges * sizeof *merges);
    b->nmerges = nmerges;
    b->vocab = 256 + nmerges + BPE_SPECIALS;
    return finish(b);
}

void bpe_free(bpe *b)
{
    free(b->merges);
    free(b->tok_off);
    free(b->tok_bytes);
    free(b->rank_key);
    free(b->rank_val);
    memset(b, 0, sizeof *b);
}

static uint32_t rank_of(const bpe *b, uint16_t x, uint16_t y)
{
    const uint32_t key = (uint32_t)x << 16 | y;
    for (size_t h = hash_pair(key) & (b->rank_cap - 1); b->rank_key[h] != PAIR_EMPTY;
         h = (h + 1) & (b->rank_cap - 1))
        if (b->rank_key[h] == key)
            return b->rank_val[h];
    return UINT32_MAX;
}

/* One chunk: merge the pair of lowest rank, left to right, until none is a
 * merge. */
static size_t encode_chunk(const bpe *b, const uint8_t *s, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = s[i];
    size_t len = n;
    while (len > 1) {
        uint32_t best = UINT32_MAX;
        for (size_t i = 0; i + 1 < len; i++) {
            const uint32_t r = rank_of(b, out[i], out[i + 1]);
            best = r < best ? r : best;
        }
        if (best == UINT32_MAX)
            break;
        const uint16_t x = b->merges[best][0], y = b->merges[best][1];
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
            if (i + 1 < len && out[i] == x && out[i + 1] == y) {
                out[k++] = (uint16_t)(256 + best);
                i++;
            } else {
                out[k++] = out[i];
            }
        len = k;
    }
    return len;
}

size_t bpe_encode(const bpe *b, const uint8_t *s, size_t n, uint16_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const size_t len = chunk_len(s + i, n - i);
        k += encode_chunk(b, s + i, len, out + k);
        i += len;
    }
    return k;
}

size_t bpe_decode(const bpe *b, const uint16_t *ids, size_t n, uint8_t *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= b->vocab)
            continue;
        const uint32_t a = b->tok_off[ids[i]], e = b->tok_off[ids[i] + 1];
        for (uint32_t j = a; j < e; j++, k++)
            if (k < size)
                out[k] = b->tok_bytes[j];
    }
    return k;
}
