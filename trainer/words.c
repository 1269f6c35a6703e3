#include "words.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_letter(uint8_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* The end of the token that starts at i. */
static size_t token_end(const uint8_t *t, size_t n, size_t i)
{
    if (is_letter(t[i])) {
        size_t j = i + 1;
        while (j < n && (is_letter(t[j]) || (t[j] == '\'' && j + 1 < n && is_letter(t[j + 1]))))
            j++;
        return j;
    }
    if (is_digit(t[i])) {
        size_t j = i + 1;
        while (j < n && is_digit(t[j]))
            j++;
        return j;
    }
    return i + 1; /* a newline or a punctuation mark */
}

size_t words_split(const uint8_t *text, size_t n, word_span *out)
{
    size_t count = 0, prev_end = 0;
    for (size_t i = 0; i < n;) {
        if (is_space(text[i])) {
            i++;
            continue;
        }
        size_t end = token_end(text, n, i);
        if (out)
            out[count] = (word_span){i, end - i, end - prev_end};
        count++;
        prev_end = end;
        i = end;
    }
    return count;
}

static uint64_t hash(const uint8_t *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

/* Distinct token texts with their counts: open addressing over spans. */
typedef struct {
    const uint8_t *text;
    const word_span **slot; /* the first span of each distinct text */
    size_t *count;
    size_t size;
} counter;

static size_t find_slot(const counter *c, const uint8_t *s, size_t len)
{
    size_t i = hash(s, len) & (c->size - 1);
    while (c->slot[i] && !(c->slot[i]->len == len && !memcmp(c->text + c->slot[i]->start, s, len)))
        i = (i + 1) & (c->size - 1);
    return i;
}

static const counter *sort_counter; /* qsort has no context argument */

static int by_count(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const counter *c = sort_counter;
    if (c->count[x] != c->count[y])
        return c->count[x] > c->count[y] ? -1 : 1;
    const word_span *p = c->slot[x], *q = c->slot[y];
    size_t len = p->len < q->len ? p->len : q->len;
    int r = memcmp(c->text + p->start, c->text + q->start, len);
    return r ? r : (p->len > q->len) - (p->len < q->len);
}

int vocab_build(vocab *v, const uint8_t *text, const word_span *spans, size_t n, int size)
{
    memset(v, 0, sizeof *v);
    counter c = {text, NULL, NULL, 1};
    while (c.size < 2 * n + 16)
        c.size <<= 1;
    c.slot = calloc(c.size, sizeof *c.slot);
    c.count = calloc(c.size, sizeof *c.count);
    size_t *order = calloc(c.size, sizeof *order), distinct = 0;
    if (!c.slot || !c.count || !order)
        goto oom;
    for (size_t k = 0; k < n; k++) {
        size_t i = find_slot(&c, text + spans[k].start, spans[k].len);
        if (!c.slot[i]) {
            c.slot[i] = &spans[k];
            order[distinct++] = i;
        }
        c.count[i]++;
    }
    sort_counter = &c;
    qsort(order, distinct, sizeof *order, by_count);
    size_t keep = distinct < (size_t)size - 1 ? distinct : (size_t)size - 1, bytes = 6;
    for (size_t k = 0; k < keep; k++)
        bytes += c.slot[order[k]]->len + 1;
    uint8_t *blob = malloc(bytes);
    if (!blob)
        goto oom;
    memcpy(blob, "<unk>", 6);
    for (size_t k = 0, at = 6; k < keep; k++) {
        const word_span *s = c.slot[order[k]];
        memcpy(blob + at, text + s->start, s->len);
        blob[at + s->len] = 0;
        at += s->len + 1;
    }
    free(c.slot);
    free(c.count);
    free(order);
    int rc = vocab_from_blob(v, blob, bytes);
    free(blob);
    return rc;
oom:
    free(c.slot);
    free(c.count);
    free(order);
    fprintf(stderr, "trainer: out of memory for the vocabulary of %zu tokens\n", n);
    return -1;
}

int vocab_from_blob(vocab *v, const uint8_t *blob, size_t bytes)
{
    memset(v, 0, sizeof *v);
    if (bytes < 6 || memcmp(blob, "<unk>", 6) != 0 || blob[bytes - 1] != 0) {
        fprintf(stderr, "trainer: a vocabulary must start with <unk> and end with a NUL\n");
        return -1;
    }
    for (size_t i = 0; i < bytes; i++)
        v->size += blob[i] == 0;
    v->blob = malloc(bytes);
    v->tok = calloc((size_t)v->size, sizeof *v->tok);
    v->table_size = 1;
    while (v->table_size < 2 * (size_t)v->size + 16)
        v->table_size <<= 1;
    v->table = malloc(v->table_size * sizeof *v->table);
    if (!v->blob || !v->tok || !v->table) {
        vocab_free(v);
        fprintf(stderr, "trainer: out of memory for a vocabulary of %zu bytes\n", bytes);
        return -1;
    }
    memcpy(v->blob, blob, bytes);
    v->blob_bytes = bytes;
    for (size_t i = 0; i < v->table_size; i++)
        v->table[i] = -1;
    for (size_t i = 0, id = 0; i < bytes; id++) {
        const char *s = (const char *)v->blob + i;
        size_t len = strlen(s);
        v->tok[id] = s;
        size_t h = hash((const uint8_t *)s, len) & (v->table_size - 1);
        while (v->table[h] >= 0)
            h = (h + 1) & (v->table_size - 1);
        v->table[h] = (int32_t)id;
        i += len + 1;
    }
    return 0;
}

void vocab_free(vocab *v)
{
    free(v->blob);
    free(v->tok);
    free(v->table);
    memset(v, 0, sizeof *v);
}

int32_t words_id(const vocab *v, const uint8_t *s, size_t len)
{
    size_t h = hash(s, len) & (v->table_size - 1);
    for (; v->table[h] >= 0; h = (h + 1) & (v->table_size - 1)) {
        const char *t = v->tok[v->table[h]];
        if (strlen(t) == len && !memcmp(t, s, len))
            return v->table[h] == 0 ? WORDS_UNKNOWN : v->table[h];
    }
    return WORDS_UNKNOWN;
}

size_t words_detok(const vocab *v, int32_t prev, int32_t id, char *out)
{
    const char *t = id >= 0 && id < v->size ? v->tok[id] : "<unk>";
    const char *p = prev >= 0 && prev < v->size ? v->tok[prev] : "\n";
    const int after_break = !strcmp(p, "\n") || !strcmp(p, "(");
    const int closing = strlen(t) == 1 && strchr(",.;:?!)'\n", t[0]);
    size_t n = 0;
    if (!after_break && !closing)
        out[n++] = ' ';
    memcpy(out + n, t, strlen(t));
    return n + strlen(t);
}
