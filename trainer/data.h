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

typedef struct {
    int lane;
    size_t n;        /* samples */
    size_t sample_bytes;
    uint8_t *data;   /* n * sample_bytes */
    uint8_t *labels; /* n, image shards; NULL for tokens */
    uint32_t *perm;  /* the order of the cached epoch */
    long perm_epoch; /* -1: none yet */
} lane_data;

/* Loads the shards of the given lanes from dir/SPLIT-NNN.h5 (nshards files).
 * Prints one line and returns -1 on any problem with this rank's files. */
int lane_data_load(lane_data *lanes, const int *lane_ids, int nlocal, int nlanes,
                   const char *dir, const char *split, int nshards, enum shard_kind kind,
                   size_t *h, size_t *w);
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
    uint32_t *shard_of; /* which shard each sample came from */
    uint32_t *index_in; /* its index inside that shard */
} split_data;

int split_data_load(split_data *s, const char *dir, const char *split, int nshards,
                    enum shard_kind kind, int rank, int np, size_t *h, size_t *w);
void split_data_free(split_data *s);

#endif
