/* HDF5 checkpoints: everything needed to resume a run exactly.
 *
 * Layout (h5dump shows it plainly):
 *   /            attributes: format, format_version, program_version, model,
 *                step, seed, world_size, lanes, data_position, reduce_exponents
 *                (one per tensor, with --reduce exact), and checksums (FNV-1a
 *                64): GROUP_fnv1a64 of each tensor group's flat buffer
 *                (params_fnv1a64, adam_m_fnv1a64, ...), config_fnv1a64 of
 *                /config, reduce_exponents_fnv1a64, meta_fnv1a64 of the
 *                attributes above
 *   /config      one string attribute per configuration key
 *   /GROUP/NAME  one float32 dataset per tensor and group, e.g.
 *                /params/enc.fc1.weight, /adam_m/enc.fc1.weight
 *   /vocab       word-token runs: the vocabulary (uint8, NUL-ended strings),
 *                with vocab_fnv1a64
 *   /draft       byte language models: sampling's guess table (uint8,
 *                trainer/draft.h), with draft_fnv1a64
 *
 * Nothing non-finite is written: a buffer with a NaN or an infinity is
 * refused before the file is created. A reader checks every checksum, every
 * tensor's type and shape, and that every value is finite, and names what
 * it refuses (the group, the tensor). Version 1 files (parameters checksum
 * only) are still read.
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
    int format_version; /* filled in by checkpoint_write and read_meta */
    long long step;
    long long data_position; /* samples each lane has consumed */
    long long seed;
    int world_size;
    int lanes;
    uint64_t params_fnv1a64; /* filled in by checkpoint_write */
    int nexps;               /* the exact reduction's scale exponents (0: none) */
    int32_t exps[CKPT_MAX_TENSORS];
    const uint8_t *vocab;    /* written as /vocab when not NULL (word tokens) */
    size_t vocab_bytes;
    const uint8_t *draft;    /* written as /draft when not NULL (byte language models:
                              * sampling's guess table, trainer/draft.h) */
    size_t draft_bytes;
    char blas_kernel[32];    /* the OpenBLAS kernel that computed it ("" in old files) */
    double epoch;            /* passes over the training data so far */
} ckpt_meta;

uint64_t fnv1a64(const void *data, size_t bytes);

/* Writes PATH (through PATH.tmp). Returns 0, or -1 after one line; the file
 * that was at PATH is then untouched. */
int checkpoint_write(const char *path, ckpt_meta *meta, const ckpt_kv *cfg, int ncfg,
                     const ckpt_tensor *t, int nt, const char *const *groups,
                     float *const *bufs, int ngroups);

/* Reads the root attributes and the configuration (*cfg is malloc'ed),
 * checking their checksums. */
int checkpoint_read_meta(const char *path, ckpt_meta *meta, ckpt_kv **cfg, int *ncfg);

/* Reads every tensor of every group into bufs, checking each type, shape
 * and value against t, and each group's checksum (groups[0] must be
 * "params"). */
int checkpoint_read_tensors(const char *path, const ckpt_meta *meta, const ckpt_tensor *t,
                            int nt, const char *const *groups, float *const *bufs, int ngroups);

/* The /vocab blob: *buf NULL and 0 returned when the checkpoint has none;
 * -1 after a line when it is damaged (checksum). *buf is malloc'ed. */
int checkpoint_read_vocab(const char *path, uint8_t **buf, size_t *bytes);
/* The same for any blob /NAME (vocab, draft). */
int checkpoint_read_blob(const char *path, const char *name, uint8_t **buf, size_t *bytes);

/* What inspect shows: every tensor of /params in the order of the flat
 * buffer, and each group's verdict ("ok", "checksum mismatch",
 * "holds nan", "missing", "order unknown": files before creation order was
 * kept cannot be checked without the model). */
typedef struct {
    char name[64];
    int ndim;
    size_t shape[4], numel;
} ckpt_entry;

typedef struct {
    ckpt_entry *t;
    int n;
    size_t total;
    char verdict[5][200]; /* params, adam_m, adam_v, vocab, draft */
} ckpt_description;

int checkpoint_describe(const char *path, ckpt_description *d);
void checkpoint_description_free(ckpt_description *d);

#endif
