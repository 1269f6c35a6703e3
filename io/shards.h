/* HDF5 shard files: the training data, split into numbered files so that each
 * lane (and so each rank) opens only its own.
 *
 * An image shard holds /images (uint8, [n, h, w]) and /labels (uint8, [n]);
 * a token shard holds /tokens ([n]: uint8 bytes, or uint16 ids of a word
 * vocabulary), and for word tokens /token_bytes (uint8, [n]: the bytes of
 * source text each token stands for, the spaces before it included, capped
 * at 255) and /vocab (uint8: the token strings, each ended by a NUL, in id
 * order). A pair shard (translation) holds n sentence pairs: /src_tokens and
 * /tgt_tokens (uint16 ids, the pairs' tokens one after the other),
 * /src_lengths and /tgt_lengths (uint16, [n]), /refs (uint8: each pair's
 * reference, such as "Genesis 1:1", NUL-ended) and /merges (uint16,
 * [m, 2]: the byte-pair merges of trainer/bpe.h, so the shard says what
 * its ids are), and the attribute max_tokens (L: a side's tokens and the end
 * token fit in L). Read, a pair shard also gives its pairs as fixed
 * records in data ([n, 2, L] uint16: h = 2, w = L, width 2) and its merges
 * as the vocabulary blob. Root attributes say what the file is: kind, source, split,
 * shard_index, shard_count, sample_count, first_sample. Files are named
 * SPLIT-NNN.h5 (train-000.h5, test-003.h5). */
#ifndef TRAINER_SHARDS_H
#define TRAINER_SHARDS_H

#include <stddef.h>
#include <stdint.h>

enum shard_kind { SHARD_IMAGES, SHARD_TOKENS, SHARD_PAIRS };

typedef struct {
    enum shard_kind kind;
    int shard_index, shard_count;
    size_t n;    /* images, or tokens */
    size_t h, w; /* image shape; 1 x 1 for tokens */
    size_t first_sample;
    uint8_t *data;   /* n * h * w * width */
    uint8_t *labels; /* n, images only */
    int width;       /* bytes per sample value: 1, or 2 for word ids (host order) */
    uint8_t *unit_bytes; /* word tokens: n; NULL otherwise */
    uint8_t *vocab;      /* word tokens: the NUL-ended strings; NULL otherwise */
    size_t vocab_bytes;
    /* pairs (n of them) */
    uint16_t *src, *tgt;             /* src_n and tgt_n tokens */
    uint16_t *src_len, *tgt_len;     /* n each */
    size_t src_n, tgt_n;
    uint8_t *refs;                   /* NUL-ended references */
    size_t refs_bytes;
    uint16_t *merges;                /* [nmerges, 2] */
    size_t nmerges;
} shard;

/* Switches off HDF5's own error-stack printing: our lines say what failed. */
void io_quiet_hdf5(void);

/* SPLIT-NNN.h5 inside dir, into buf. */
void shard_path(char *buf, size_t size, const char *dir, const char *split, int index);

/* The shard_count attribute of one shard file, or -1 (with a line) when the
 * file is missing or is not a shard. */
int shard_read_count(const char *path);

/* Whether path is a pair shard (its kind attribute says "pairs"), quietly:
 * 0 for any other file or none. */
int shard_is_pairs(const char *path);

int shard_write(const char *path, const shard *s, const char *source, const char *split);

/* Reads and checks one shard: the kind, dataset names, types and shapes, and
 * that its index and count are the expected ones (-1: any). On failure prints one line
 * naming the file and the problem, and returns -1. */
int shard_read(const char *path, enum shard_kind kind, int want_index, int want_count,
               shard *out);
void shard_free(shard *s);

#endif
