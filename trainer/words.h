/* Word-level tokens.
 *
 * A text splits into words (runs of ASCII letters, an apostrophe between two
 * letters kept inside: "LORD's"; runs of digits count as words too), single
 * punctuation marks (any other byte but white space), and newlines. Spaces
 * and tabs are not tokens: each token also counts the white space before
 * it, so that the tokens' byte counts add up to the text's length.
 *
 * A vocabulary is a list of strings, id 0 being "<unk>" for every token
 * outside it; it travels as a blob of NUL-ended strings in id order (in
 * every shard and every checkpoint). */
#ifndef TRAINER_WORDS_H
#define TRAINER_WORDS_H

#include <stddef.h>
#include <stdint.h>

#define WORDS_UNKNOWN 0

typedef struct {
    size_t start, len; /* the token's bytes in the text */
    size_t bytes;      /* len plus the white space before it */
} word_span;

/* The tokens of text[0, n) into out (when not NULL); returns how many. */
size_t words_split(const uint8_t *text, size_t n, word_span *out);

typedef struct {
    int size;
    const char **tok;  /* size strings, pointing into blob */
    uint8_t *blob;     /* the NUL-ended strings */
    size_t blob_bytes;
    int32_t *table;    /* hash table of ids, for words_id */
    size_t table_size;
} vocab;

/* The most frequent tokens of spans (ties: in byte order), at most `size`
 * with "<unk>" first. Returns 0, or -1 after a line when memory runs out. */
int vocab_build(vocab *v, const uint8_t *text, const word_span *spans, size_t n, int size);
/* A vocabulary from its blob (copied). Returns 0, or -1 after a line when
 * the blob is not a list of NUL-ended strings starting with "<unk>". */
int vocab_from_blob(vocab *v, const uint8_t *blob, size_t bytes);
void vocab_free(vocab *v);
/* The id of a token's text, WORDS_UNKNOWN when it is not in v. */
int32_t words_id(const vocab *v, const uint8_t *s, size_t len);
/* Appends token id's text to out (room for its length + 2), with a space
 * before it unless it follows a newline or an opening bracket (or starts
 * the text), or is a closing punctuation mark. Returns the bytes written. */
size_t words_detok(const vocab *v, int32_t prev, int32_t id, char *out);

#endif
