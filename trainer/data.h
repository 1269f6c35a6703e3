/* Training data by lane.
 *
 * The global batch is split into a fixed number of lanes. Lane l owns the
 * shard files l, l + lanes, l + 2 * lanes, ...; its samples are visited in an
 * order drawn from the (seed, l) stream, one permutation per epoch of the
 * lane, so every sample of the lane is visited once per lane epoch and a
 * sample's place depends only on (seed, lane, position): not on -np.
 * Token shards are the same with bytes for samples: a lane's bytes are its
 * shards' bytes in order, and language-model windows are drawn from them. */
#ifndef TRAINER_DATA_H
#define TRAINER_DATA_H

#include "io/shards.h"

#include <stddef.h>
#include <stdint.h>

/* What every shard of a data set must agree on; the first shard read sets
 * it. */
typedef struct {
    size_t h, w;        /* image shape; 1 x 1 for tokens */
    int width;          /* bytes per value: 1, or 2 for word ids */
    uint8_t *vocab;     /* word tokens: the vocabulary (NUL-ended strings), owned */
    size_t vocab_bytes;
    uint8_t *draft;     /* byte tokens: sampling's guess table (draft.h), owned, or NULL */
    size_t draft_bytes;
} data_format;

void data_format_free(data_format *f);

typedef struct {
    int lane;
    size_t n;        /* samples */
    size_t sample_bytes;
    uint8_t *data;   /* n * sample_bytes */
    uint8_t *labels; /* n, image shards; NULL for tokens */
    uint8_t *unit_bytes; /* n, word tokens: source bytes per token; NULL otherwise */
    uint32_t *perm;  /* the order of the cached epoch */
    long perm_epoch; /* -1: none yet */
} lane_data;

/* Loads the shards of the given lanes from dir/SPLIT-NNN.h5 (nshards files),
 * checking each against fmt (set by the first shard read). Prints one line
 * and returns -1 on any problem with this rank's files. */
int lane_data_load(lane_data *lanes, const int *lane_ids, int nlocal, int nlanes,
                   const char *dir, const char *split, int nshards, enum shard_kind kind,
                   data_format *fmt);
void lane_data_free(lane_data *lanes, int nlocal);

/* The index of the sample at this position of the lane's endless sequence
 * of epochs. */
uint32_t lane_sample(lane_data *d, uint32_t seed, uint64_t position);

/* A rank's share of an evaluation split: shards r, r + np, ... */
typedef struct {
    size_t n;
    size_t sample_bytes;
    uint8_t *data;
    uint8_t *labels;    /* n, image shards; NULL for tokens */
    uint8_t *unit_bytes; /* n, word tokens; NULL otherwise */
    uint32_t *shard_of; /* which shard each sample came from */
    uint32_t *index_in; /* its index inside that shard */
} split_data;

int split_data_load(split_data *s, const char *dir, const char *split, int nshards,
                    enum shard_kind kind, int rank, int np, data_format *fmt);
void split_data_free(split_data *s);

#endif
