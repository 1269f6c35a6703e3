#include "checkpoint.h"

#include "h5util.h"
#include "trainer/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_FORMAT "trainer checkpoint"
#define CKPT_FORMAT_VERSION 2

uint64_t fnv1a64(const void *data, size_t bytes)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv1a64_more(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The root attributes that say what the run is, in one fixed text. */
static uint64_t meta_sum(const ckpt_meta *m)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s|%lld|%lld|%lld|%d|%d", m->model, m->step,
                     m->data_position, m->seed, m->world_size, m->lanes);
    return fnv1a64(buf, (size_t)n);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const ckpt_kv *)a)->key, ((const ckpt_kv *)b)->key);
}

/* key=value lines in key order: HDF5 may list attributes in another order
 * than they were written. */
static uint64_t config_sum(const ckpt_kv *cfg, int n)
{
    ckpt_kv *sorted = malloc((size_t)n * sizeof *sorted + 1);
    if (!sorted)
        return 0;
    if (n > 0)
        memcpy(sorted, cfg, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, by_key);
    uint64_t h = fnv1a64("", 0);
    for (int i = 0; i < n; i++) {
        h = fnv1a64_more(h, sorted[i].key, strlen(sorted[i].key) + 1);
        h = fnv1a64_more(h, sorted[i].value, strlen(sorted[i].value) + 1);
    }
    free(sorted);
    return h;
}

static size_t tensor_numel(const ckpt_tensor *t);

/* Refuses to write what could not be trained on: one line naming the
 * first non-finite value. */
static int all_finite(const char *path, const ckpt_meta *meta, const ckpt_tensor *t, int nt,
                      const char *const *groups, float *const *bufs, int ngroups)
{
    for (int g = 0; g < ngroups; g++)
        for (int i = 0; i < nt; i++) {
            long at = first_nonfinite(bufs[g] + t[i].offset, tensor_numel(&t[i]));
            if (at >= 0) {
                fprintf(stderr,
                        "trainer: %s: not written: /%s/%s holds %g at index %ld (step %lld)\n",
                        path, groups[g], t[i].name, (double)bufs[g][t[i].offset + (size_t)at],
                        at, meta->step);
                return 0;
            }
        }
    return 1;
}

static int fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_group(hid_t file, const char *path, const char *group, const ckpt_tensor *t,
                       int nt, const float *buf)
{
    /* the tensors in the order of the flat buffer: creation order, kept */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = H5Gcreate2(file, group, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    hid_t sp = -1, ds = -1;
    H5TRY(g, path, "cannot create group");
    for (int i = 0; i < nt; i++) {
        hsize_t dims[4];
        for (int d = 0; d < t[i].ndim; d++)
            dims[d] = t[i].shape[d];
        sp = H5Screate_simple(t[i].ndim, dims, NULL);
        H5TRY(sp, path, "cannot create dataspace");
        ds = H5Dcreate2(g, t[i].name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5TRY(ds, path, "cannot create tensor dataset");
        H5TRY(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + t[i].offset),
              path, "cannot write tensor");
        H5Dclose(ds);
        H5Sclose(sp);
        ds = sp = -1;
    }
    H5Gclose(g);
    return 0;
fail:
    if (ds >= 0)
        H5Dclose(ds);
    if (sp >= 0)
        H5Sclose(sp);
    if (g >= 0)
        H5Gclose(g);
    return -1;
}

static size_t tensor_numel(const ckpt_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

/* A byte blob as the dataset /NAME, with its checksum NAME_fnv1a64. */
static int write_blob(hid_t file, const char *tmp, const char *name, const uint8_t *data,
                      size_t bytes)
{
    hsize_t n = bytes;
    char attr[64];
    hid_t sp = H5Screate_simple(1, &n, NULL), ds = -1;
    H5TRY(sp, tmp, "cannot create dataspace");
    ds = H5Dcreate2(file, name, H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5TRY(ds, tmp, "cannot create a blob dataset");
    H5TRY(H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), tmp,
          "cannot write a blob dataset");
    uint64_t sum = fnv1a64(data, bytes);
    snprintf(attr, sizeof attr, "%s_fnv1a64", name);
    H5TRY(h5_attr_write_num(file, attr, H5T_STD_U64LE, H5T_NATIVE_UINT64, &sum), tmp,
          "cannot write attribute");
    H5Dclose(ds);
    H5Sclose(sp);
    return 0;
fail:
    if (ds >= 0)
        H5Dclose(ds);
    if (sp >= 0)
        H5Sclose(sp);
    return -1;
}

/* The root attributes, /config and every checksum. */
static int write_attributes(hid_t file, const char *tmp, ckpt_meta *meta, const ckpt_kv *cfg,
                            int ncfg, const char *const *groups, float *const *bufs, int ngroups,
                            size_t nparams)
{
    hid_t cg = -1;
    const int version = CKPT_FORMAT_VERSION;
    meta->format_version = version;
    H5TRY(h5_attr_write_str(file, "format", CKPT_FORMAT), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version), tmp,
          "cannot write attribute");
    H5TRY(h5_attr_write_str(file, "program_version", meta->program_version), tmp,
          "cannot write attribute");
    H5TRY(h5_attr_write_str(file, "model", meta->model), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_i64(file, "step", meta->step), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_i64(file, "data_position", meta->data_position), tmp,
          "cannot write attribute");
    H5TRY(h5_attr_write_i64(file, "seed", meta->seed), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "world_size", H5T_STD_I32LE, H5T_NATIVE_INT, &meta->world_size),
          tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "lanes", H5T_STD_I32LE, H5T_NATIVE_INT, &meta->lanes), tmp,
          "cannot write attribute");
    /* what a reader asks before resuming; not part of what the run is */
    H5TRY(h5_attr_write_str(file, "blas_kernel", meta->blas_kernel), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "epoch", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &meta->epoch), tmp,
          "cannot write attribute");
    uint64_t sums[3] = {meta_sum(meta), config_sum(cfg, ncfg),
                        fnv1a64(meta->exps, (size_t)meta->nexps * sizeof *meta->exps)};
    const char *const names[3] = {"meta_fnv1a64", "config_fnv1a64", "reduce_exponents_fnv1a64"};
    for (int i = 0; i < 3; i++)
        H5TRY(h5_attr_write_num(file, names[i], H5T_STD_U64LE, H5T_NATIVE_UINT64, &sums[i]), tmp,
              "cannot write attribute");
    for (int g = 0; g < ngroups; g++) {
        char name[96];
        snprintf(name, sizeof name, "%s_fnv1a64", groups[g]);
        uint64_t sum = fnv1a64(bufs[g], nparams * sizeof(float));
        if (g == 0)
            meta->params_fnv1a64 = sum;
        H5TRY(h5_attr_write_num(file, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &sum), tmp,
              "cannot write attribute");
    }
    if (meta->nexps > 0)
        H5TRY(h5_attr_write_i32s(file, "reduce_exponents", meta->exps, meta->nexps), tmp,
              "cannot write attribute");
    if (meta->vocab && write_blob(file, tmp, "vocab", meta->vocab, meta->vocab_bytes) != 0)
        goto fail;
    if (meta->draft && write_blob(file, tmp, "draft", meta->draft, meta->draft_bytes) != 0)
        goto fail;
    cg = H5Gcreate2(file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5TRY(cg, tmp, "cannot create group config");
    for (int i = 0; i < ncfg; i++)
        H5TRY(h5_attr_write_str(cg, cfg[i].key, cfg[i].value), tmp,
              "cannot write config attribute");
    H5Gclose(cg);
    return 0;
fail:
    if (cg >= 0)
        H5Gclose(cg);
    return -1;
}

/* The whole file image of an in-memory HDF5 file; NULL after a line. */
static unsigned char *file_image(hid_t file, const char *path, size_t *size)
{
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
        fprintf(stderr, "trainer: %s: cannot flush the checkpoint image\n", path);
        return NULL;
    }
    ssize_t n = H5Fget_file_image(file, NULL, 0);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf || H5Fget_file_image(file, buf, (size_t)n) != n) {
        fprintf(stderr, "trainer: %s: cannot take the checkpoint image (%zd bytes)\n", path, n);
        free(buf);
        return NULL;
    }
    *size = (size_t)n;
    return buf;
}

/* The bytes into tmp, fsynced: on the disk, or one line naming why not
 * (a full disk, a file size limit). */
static int write_durably(const char *tmp, const unsigned char *buf, size_t size)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "trainer: %s: cannot create checkpoint file: %s\n", tmp, strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, buf + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "trainer: %s: cannot write checkpoint (%zu of %zu bytes written): %s\n",
                    tmp, done, size, w < 0 ? strerror(errno) : "no progress");
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "trainer: %s: fsync failed: %s\n", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* The checkpoint is built in memory (HDF5's core driver) and written with
 * plain write calls: an I/O error (a full disk, a file size limit) is then
 * ours to report, and never leaves HDF5 with a half-closed file. */
static hid_t create_in_memory(const char *path, size_t hint)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, hint + (1 << 20), 0) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return -1;
    }
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return file;
}

int checkpoint_write(const char *path, ckpt_meta *meta, const ckpt_kv *cfg, int ncfg,
                     const ckpt_tensor *t, int nt, const char *const *groups,
                     float *const *bufs, int ngroups)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    size_t nparams = 0, size = 0;
    for (int i = 0; i < nt; i++) {
        size_t end = t[i].offset + tensor_numel(&t[i]);
        nparams = end > nparams ? end : nparams;
    }
    if (!all_finite(path, meta, t, nt, groups, bufs, ngroups))
        return -1;
    unsigned char *image = NULL;
    hid_t file = create_in_memory(tmp, (size_t)ngroups * nparams * sizeof(float));
    H5TRY(file, tmp, "cannot create the checkpoint in memory");
    if (write_attributes(file, tmp, meta, cfg, ncfg, groups, bufs, ngroups, nparams) != 0)
        goto fail;
    for (int g = 0; g < ngroups; g++)
        if (write_group(file, tmp, groups[g], t, nt, bufs[g]) != 0)
            goto fail;
    image = file_image(file, tmp, &size);
    H5Fclose(file);
    file = -1;
    if (!image || write_durably(tmp, image, size) != 0)
        goto fail;
    free(image);
    image = NULL;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "trainer: %s: cannot rename to %s: %s\n", tmp, path, strerror(errno));
        goto fail;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    fsync_path(dirname(dir), 1);
    return 0;
fail:
    if (file >= 0)
        H5Fclose(file);
    free(image);
    unlink(tmp);
    return -1;
}

typedef struct {
    ckpt_kv *kv;
    int n, cap;
} kv_list;

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    kv_list *l = data;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        ckpt_kv *grown = realloc(l->kv, (size_t)l->cap * sizeof *grown);
        if (!grown)
            return -1;
        l->kv = grown;
    }
    ckpt_kv *e = &l->kv[l->n];
    snprintf(e->key, sizeof e->key, "%s", name);
    if (h5_attr_read_str(loc, name, e->value, sizeof e->value) != 0)
        return -1;
    l->n++;
    return 0;
}

/* One line naming the first root attribute that is missing or unreadable. */
static int read_root(hid_t file, const char *path, ckpt_meta *m)
{
    struct {
        const char *name;
        int str; /* 1: string of size `size`; 0: number of type `type` */
        void *dst;
        size_t size;
        hid_t type;
    } attrs[] = {
        {"model", 1, m->model, sizeof m->model, 0},
        {"program_version", 1, m->program_version, sizeof m->program_version, 0},
        {"step", 0, &m->step, 0, H5T_NATIVE_LLONG},
        {"data_position", 0, &m->data_position, 0, H5T_NATIVE_LLONG},
        {"seed", 0, &m->seed, 0, H5T_NATIVE_LLONG},
        {"world_size", 0, &m->world_size, 0, H5T_NATIVE_INT},
        {"lanes", 0, &m->lanes, 0, H5T_NATIVE_INT},
        {"params_fnv1a64", 0, &m->params_fnv1a64, 0, H5T_NATIVE_UINT64},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        int rc = attrs[i].str ? h5_attr_read_str(file, attrs[i].name, attrs[i].dst, attrs[i].size)
                              : h5_attr_read_num(file, attrs[i].name, attrs[i].type, attrs[i].dst);
        if (rc != 0) {
            fprintf(stderr, "trainer: %s: checkpoint lacks the root attribute \"%s\"\n", path,
                    attrs[i].name);
            return -1;
        }
    }
    h5_attr_read_str(file, "blas_kernel", m->blas_kernel, sizeof m->blas_kernel); /* optional */
    h5_attr_read_num(file, "epoch", H5T_NATIVE_DOUBLE, &m->epoch);
    if (m->step < 0 || m->world_size < 1 || m->lanes < 1) {
        fprintf(stderr, "trainer: %s: checkpoint has step %lld, world_size %d, lanes %d\n", path,
                m->step, m->world_size, m->lanes);
        return -1;
    }
    m->nexps = h5_attr_read_i32s(file, "reduce_exponents", m->exps, CKPT_MAX_TENSORS);
    if (m->nexps < 0) {
        fprintf(stderr, "trainer: %s: unreadable reduce_exponents attribute\n", path);
        return -1;
    }
    return 0;
}

static int read_config(hid_t file, const char *path, ckpt_kv **cfg, int *ncfg)
{
    hid_t cg = -1;
    if (H5Lexists(file, "config", H5P_DEFAULT) <= 0 ||
        (cg = H5Gopen2(file, "config", H5P_DEFAULT)) < 0) {
        fprintf(stderr, "trainer: %s: checkpoint has no /config group\n", path);
        return -1;
    }
    kv_list l = {0};
    hsize_t idx = 0;
    int rc = H5Aiterate2(cg, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_attr, &l);
    if (rc < 0) { /* no creation order kept: by name */
        l.n = 0;
        idx = 0;
        rc = H5Aiterate2(cg, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &l);
    }
    H5Gclose(cg);
    if (rc < 0) {
        free(l.kv);
        fprintf(stderr, "trainer: %s: cannot read /config\n", path);
        return -1;
    }
    *cfg = l.kv;
    *ncfg = l.n;
    return 0;
}

/* Version 2: the stored checksums of the root attributes, /config and the
 * reduction's exponents. */
static int verify_sums(hid_t file, const char *path, const ckpt_meta *m, const ckpt_kv *cfg,
                       int ncfg)
{
    const char *const names[3] = {"meta_fnv1a64", "config_fnv1a64", "reduce_exponents_fnv1a64"};
    const char *const what[3] = {"the root attributes (model, step, seed, ...)", "/config",
                                 "the reduce_exponents attribute"};
    uint64_t have[3] = {meta_sum(m), config_sum(cfg, ncfg),
                        fnv1a64(m->exps, (size_t)m->nexps * sizeof *m->exps)};
    for (int i = 0; i < 3; i++) {
        uint64_t stored = 0;
        if (h5_attr_read_num(file, names[i], H5T_NATIVE_UINT64, &stored) != 0) {
            fprintf(stderr, "trainer: %s: checkpoint lacks the root attribute \"%s\"\n", path,
                    names[i]);
            return -1;
        }
        if (stored != have[i]) {
            fprintf(stderr, "trainer: %s: the checksum of %s does not match: damaged checkpoint\n",
                    path, what[i]);
            return -1;
        }
    }
    return 0;
}

int checkpoint_read_meta(const char *path, ckpt_meta *meta, ckpt_kv **cfg, int *ncfg)
{
    memset(meta, 0, sizeof *meta);
    *cfg = NULL;
    *ncfg = 0;
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "trainer: %s: checkpoint missing or unreadable\n", path);
        return -1;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "trainer: %s: not a readable HDF5 file (truncated or corrupt?)\n", path);
        return -1;
    }
    char format[64] = "";
    int version = 0;
    if (h5_attr_read_str(file, "format", format, sizeof format) != 0 ||
        strcmp(format, CKPT_FORMAT) != 0) {
        fprintf(stderr, "trainer: %s: not a trainer checkpoint (no format attribute)\n", path);
        goto fail;
    }
    if (h5_attr_read_num(file, "format_version", H5T_NATIVE_INT, &version) != 0 || version < 1 ||
        version > CKPT_FORMAT_VERSION) {
        fprintf(stderr, "trainer: %s: checkpoint format version %d, expected 1 to %d\n", path,
                version, CKPT_FORMAT_VERSION);
        goto fail;
    }
    meta->format_version = version;
    if (read_root(file, path, meta) != 0 || read_config(file, path, cfg, ncfg) != 0)
        goto fail;
    if (version >= 2 && verify_sums(file, path, meta, *cfg, *ncfg) != 0)
        goto fail;
    H5Fclose(file);
    return 0;
fail:
    free(*cfg);
    *cfg = NULL;
    *ncfg = 0;
    H5Fclose(file);
    return -1;
}

static void shape_text(char *buf, size_t size, int nd, const hsize_t *dims)
{
    buf[0] = 0;
    for (int d = 0; d < nd && d < 8; d++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%llu", d ? "x" : "",
                 (unsigned long long)dims[d]);
}

/* The dataset's type and shape are this tensor's: float32, t's shape. */
static int check_tensor(hid_t ds, const char *path, const char *name, const ckpt_tensor *t)
{
    hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
    int rc = -1;
    if (ty < 0 || sp < 0) {
        fprintf(stderr, "trainer: %s: cannot open %s\n", path, name);
        goto out;
    }
    if (H5Tget_class(ty) != H5T_FLOAT || H5Tget_size(ty) != 4) {
        fprintf(stderr, "trainer: %s: tensor %s is not float32 (class %d, %zu bytes)\n", path,
                name, (int)H5Tget_class(ty), H5Tget_size(ty));
        goto out;
    }
    hsize_t dims[8] = {0}, want[4];
    int nd = H5Sget_simple_extent_ndims(sp);
    int same = nd == t->ndim;
    if (nd > 0 && nd <= 8)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int d = 0; d < t->ndim; d++)
        want[d] = t->shape[d];
    for (int d = 0; same && d < nd; d++)
        same = dims[d] == want[d];
    if (!same) {
        char have_s[128], want_s[128];
        shape_text(have_s, sizeof have_s, nd, dims);
        shape_text(want_s, sizeof want_s, t->ndim, want);
        fprintf(stderr, "trainer: %s: tensor %s is %s, this model's is %s\n", path, name, have_s,
                want_s);
        goto out;
    }
    rc = 0;
out:
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

static int read_tensor(hid_t file, const char *path, const char *group, const ckpt_tensor *t,
                       float *dst)
{
    char name[512];
    snprintf(name, sizeof name, "/%s/%s", group, t->name);
    if (H5Lexists(file, group, H5P_DEFAULT) <= 0 || H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        fprintf(stderr, "trainer: %s: no tensor %s: checkpoint of another model?\n", path, name);
        return -1;
    }
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    int rc = -1;
    if (ds < 0) {
        fprintf(stderr, "trainer: %s: cannot open %s\n", path, name);
        return -1;
    }
    if (check_tensor(ds, path, name, t) != 0)
        goto out;
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        fprintf(stderr, "trainer: %s: cannot read %s (truncated or corrupt?)\n", path, name);
        goto out;
    }
    long at = first_nonfinite(dst, tensor_numel(t));
    if (at >= 0) {
        fprintf(stderr, "trainer: %s: tensor %s holds %g at index %ld: damaged checkpoint\n",
                path, name, (double)dst[at], at);
        goto out;
    }
    rc = 0;
out:
    H5Dclose(ds);
    return rc;
}

/* Each group's checksum: params' from meta, the others' from their
 * attributes (version 2). */
static int verify_groups(hid_t file, const char *path, const ckpt_meta *meta,
                         const char *const *groups, float *const *bufs, int ngroups,
                         size_t nparams)
{
    for (int g = 0; g < ngroups; g++) {
        uint64_t stored = meta->params_fnv1a64;
        char name[96];
        snprintf(name, sizeof name, "%s_fnv1a64", groups[g]);
        if (g > 0 && meta->format_version < 2)
            continue; /* version 1 checksummed the parameters only */
        if (g > 0 && h5_attr_read_num(file, name, H5T_NATIVE_UINT64, &stored) != 0) {
            fprintf(stderr, "trainer: %s: checkpoint lacks the root attribute \"%s\"\n", path,
                    name);
            return -1;
        }
        if (fnv1a64(bufs[g], nparams * sizeof(float)) != stored) {
            fprintf(stderr, "trainer: %s: the checksum of /%s does not match: damaged checkpoint\n",
                    path, groups[g]);
            return -1;
        }
    }
    return 0;
}

int checkpoint_read_tensors(const char *path, const ckpt_meta *meta, const ckpt_tensor *t,
                            int nt, const char *const *groups, float *const *bufs, int ngroups)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "trainer: %s: not a readable HDF5 file\n", path);
        return -1;
    }
    size_t nparams = 0;
    int rc = 0;
    for (int g = 0; g < ngroups && rc == 0; g++)
        for (int i = 0; i < nt && rc == 0; i++) {
            rc = read_tensor(file, path, groups[g], &t[i], bufs[g] + t[i].offset);
            size_t end = t[i].offset + tensor_numel(&t[i]);
            nparams = end > nparams ? end : nparams;
        }
    if (rc == 0)
        rc = verify_groups(file, path, meta, groups, bufs, ngroups, nparams);
    H5Fclose(file);
    return rc;
}

int checkpoint_read_blob(const char *path, const char *name, uint8_t **buf, size_t *bytes)
{
    *buf = NULL;
    *bytes = 0;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "trainer: %s: not a readable HDF5 file\n", path);
        return -1;
    }
    int rc = 0;
    char attr[64];
    snprintf(attr, sizeof attr, "%s_fnv1a64", name);
    if (H5Lexists(file, name, H5P_DEFAULT) > 0) {
        rc = -1;
        hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
        hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        uint64_t stored = 0;
        if (n > 0 && (*buf = malloc((size_t)n)) &&
            H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *buf) >= 0 &&
            h5_attr_read_num(file, attr, H5T_NATIVE_UINT64, &stored) == 0 &&
            fnv1a64(*buf, (size_t)n) == stored) {
            *bytes = (size_t)n;
            rc = 0;
        } else {
            fprintf(stderr, "trainer: %s: /%s is unreadable or its checksum does not match: "
                            "damaged checkpoint\n", path, name);
            free(*buf);
            *buf = NULL;
        }
        if (sp >= 0)
            H5Sclose(sp);
        if (ds >= 0)
            H5Dclose(ds);
    }
    H5Fclose(file);
    return rc;
}

int checkpoint_read_vocab(const char *path, uint8_t **buf, size_t *bytes)
{
    return checkpoint_read_blob(path, "vocab", buf, bytes);
}

typedef struct {
    ckpt_description *d;
    hid_t group;
    int failed;
} describe_ctx;

static herr_t describe_one(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    describe_ctx *c = data;
    ckpt_description *d = c->d;
    ckpt_entry *grown = realloc(d->t, (size_t)(d->n + 1) * sizeof *grown);
    hid_t ds = grown ? H5Dopen2(g, name, H5P_DEFAULT) : -1;
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    if (grown)
        d->t = grown;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd < 0 || nd > 4) {
        c->failed = 1;
    } else {
        ckpt_entry *e = &d->t[d->n++];
        hsize_t dims[4] = {0};
        H5Sget_simple_extent_dims(sp, dims, NULL);
        snprintf(e->name, sizeof e->name, "%s", name);
        e->ndim = nd;
        e->numel = 1;
        for (int k = 0; k < nd; k++) {
            e->shape[k] = dims[k];
            e->numel *= dims[k];
        }
        d->total += e->numel;
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    return c->failed ? -1 : 0;
}

/* The verdict on one group: its tensors in the listed order, read whole. */
static void describe_group(hid_t file, const char *group, ckpt_description *d, char *verdict,
                           size_t size)
{
    float *buf = malloc(d->total * sizeof(float) + 1);
    size_t at = 0;
    for (int i = 0; buf && i < d->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "/%s/%s", group, d->t[i].name);
        hid_t ds = H5Lexists(file, name, H5P_DEFAULT) > 0 ? H5Dopen2(file, name, H5P_DEFAULT) : -1;
        int ok = ds >= 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                    buf + at) >= 0;
        if (ds >= 0)
            H5Dclose(ds);
        if (!ok) {
            snprintf(verdict, size, "missing or unreadable %s", name);
            free(buf);
            return;
        }
        at += d->t[i].numel;
    }
    char attr[96];
    uint64_t stored = 0;
    snprintf(attr, sizeof attr, "%s_fnv1a64", group);
    long bad = buf ? first_nonfinite(buf, d->total) : -1;
    if (!buf)
        snprintf(verdict, size, "out of memory");
    else if (bad >= 0)
        snprintf(verdict, size, "holds %g at flat index %ld", (double)buf[bad], bad);
    else if (h5_attr_read_num(file, attr, H5T_NATIVE_UINT64, &stored) != 0)
        snprintf(verdict, size, "no checksum (older file)");
    else
        snprintf(verdict, size, "%s", fnv1a64(buf, d->total * sizeof(float)) == stored
                                          ? "ok"
                                          : "checksum mismatch");
    free(buf);
}

int checkpoint_describe(const char *path, ckpt_description *d)
{
    memset(d, 0, sizeof *d);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = file >= 0 && H5Lexists(file, "params", H5P_DEFAULT) > 0
                  ? H5Gopen2(file, "params", H5P_DEFAULT)
                  : -1;
    if (g < 0) {
        fprintf(stderr, "trainer: %s: no /params: not a readable checkpoint\n", path);
        if (file >= 0)
            H5Fclose(file);
        return -1;
    }
    describe_ctx c = {d, g, 0};
    hsize_t idx = 0;
    int ordered = H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, describe_one, &c) >= 0;
    if (!ordered) { /* older files: no creation order kept */
        free(d->t);
        d->t = NULL;
        d->n = 0;
        d->total = 0;
        idx = 0;
        c.failed = 0;
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, describe_one, &c);
    }
    H5Gclose(g);
    const char *const groups[3] = {"params", "adam_m", "adam_v"};
    for (int k = 0; k < 3; k++) {
        if (ordered)
            describe_group(file, groups[k], d, d->verdict[k], sizeof d->verdict[k]);
        else
            snprintf(d->verdict[k], sizeof d->verdict[k], "order unknown (older file)");
    }
    H5Fclose(file);
    uint8_t *vocab = NULL;
    size_t n = 0;
    int rc = checkpoint_read_vocab(path, &vocab, &n);
    snprintf(d->verdict[3], sizeof d->verdict[3], "%s",
             rc != 0 ? "checksum mismatch" : vocab ? "ok" : "none (bytes or images)");
    free(vocab);
    rc = checkpoint_read_blob(path, "draft", &vocab, &n);
    snprintf(d->verdict[4], sizeof d->verdict[4], "%s",
             rc != 0 ? "checksum mismatch" : vocab ? "ok" : "none");
    free(vocab);
    return 0;
}

void checkpoint_description_free(ckpt_description *d)
{
    free(d->t);
    memset(d, 0, sizeof *d);
}
