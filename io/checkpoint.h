/* HDF5 checkpoints: everything needed to resume a run exactly.
 *
 * Layout (h5dump shows it plainly):
 *   /            attributes: format, format_version, program_version, model,
 *                step, seed, world_size, lanes, data_position, params_fnv1a64,
 *                reduce_exponents (one per tensor, with --reduce exact)
 *   /config      one string attribute per configuration key
 *   /GROUP/NAME  one float32 dataset per tensor and group, e.g.
 *                /params/enc.fc1.weight, /adam_m/enc.fc1.weight
 *
 * A checkpoint is written to PATH.tmp, flushed, fsynced, closed and renamed
 * over PATH, then the folder is fsynced: a reader sees the old file or the new
 * one, never a part. */
#ifndef TRAINER_CHECKPOINT_H
#define TRAINER_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAX_TENSORS 512

typedef struct {
    const char *name;
    int ndim;
    size_t shape[4];
    size_t offset; /* into each group's flat buffer */
} ckpt_tensor;

typedef struct {
    char key[64];
    char value[1100];
} ckpt_kv;

typedef struct {
    char model[32];
    char program_version[32];
    long long step;
    long long data_position; /* samples each lane has consumed */
    long long seed;
    int world_size;
    int lanes;
    uint64_t params_fnv1a64; /* filled in by checkpoint_write */
    int nexps;               /* the exact reduction's scale exponents (0: none) */
    int32_t exps[CKPT_MAX_TENSORS];
} ckpt_meta;

uint64_t fnv1a64(const void *data, size_t bytes);

int checkpoint_write(const char *path, ckpt_meta *meta, const ckpt_kv *cfg, int ncfg,
                     const ckpt_tensor *t, int nt, const char *const *groups,
                     float *const *bufs, int ngroups);

/* Reads the root attributes and the configuration (*cfg is malloc'ed). */
int checkpoint_read_meta(const char *path, ckpt_meta *meta, ckpt_kv **cfg, int *ncfg);

/* Reads every tensor of every group into bufs, checking each shape against t,
 * and the parameter checksum (groups[0] must be "params"). */
int checkpoint_read_tensors(const char *path, const ckpt_meta *meta, const ckpt_tensor *t,
                            int nt, const char *const *groups, float *const *bufs, int ngroups);

#endif
