/* Byte-level byte-pair encoding (Sennrich et al., 2016, on bytes as in
 * GPT-2): tokens 0..255 are the bytes, token 256 + i is merge i (the
 * concatenation of the two tokens of its pair), and the last BPE_SPECIALS
 * ids of the vocabulary are begin, end and padding. Any byte string
 * encodes (there is no unknown token) and decoding concatenates bytes, so
 * encode then decode gives the bytes back, valid UTF-8 or not.
 *
 * Text is cut into chunks before merging, and merges never cross a chunk:
 * a chunk is an optional single space and then a run of letters (ASCII
 * letters and every byte >= 0x80, so UTF-8 letters stay inside), of digits,
 * or of other printable marks; any other whitespace byte is a chunk alone.
 * Learning counts the chunks of a text and merges, again and again, the
 * most frequent adjacent pair (ties: the smallest pair of ids), so the same
 * text gives the same merges on every run. */
#ifndef TRAINER_BPE_H
#define TRAINER_BPE_H

#include <stddef.h>
#include <stdint.h>

#define BPE_SPECIALS 3

typedef struct {
    int vocab;   /* 256 + nmerges + BPE_SPECIALS */
    int nmerges;
    uint16_t (*merges)[2];
    /* each token's bytes: tok_bytes[tok_off[t] .. tok_off[t + 1]) */
    uint32_t *tok_off;
    uint8_t *tok_bytes;
    /* pair -> merge rank, open addressing, for encoding */
    uint32_t *rank_key, *rank_val;
    size_t rank_cap;
} bpe;

static inline int bpe_begin(const bpe *b) { return b->vocab - 3; }
static inline int bpe_end(const bpe *b) { return b->vocab - 2; }
static inline int bpe_pad(const bpe *b) { return b->vocab - 1; }

/* Learns vocab - 256 - BPE_SPECIALS merges (fewer if the text runs out of
 * pairs) from text. Returns -1 after a line on a bad vocabulary size or
 * without memory. */
int bpe_learn(bpe *b, const uint8_t *text, size_t n, int vocab);
/* From stored merges (a checkpoint's, a shard's): -1 after a line when a
 * merge names a token that does not exist yet. */
int bpe_from_merges(bpe *b, const uint16_t (*merges)[2], int nmerges);
void bpe_free(bpe *b);

/* The tokens of s[0, n) into out (room for n ids: a token is at least a
 * byte); returns how many. */
size_t bpe_encode(const bpe *b, const uint8_t *s, size_t n, uint16_t *out);
/* The bytes of ids (specials give none) into out, which has room for
 * size bytes; returns how many there are (more than size: cut). */
size_t bpe_decode(const bpe *b, const uint16_t *ids, size_t n, uint8_t *out, size_t size);

#endif
