#include "checkpoint.h"

#include "h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_FORMAT "trainer checkpoint"
#define CKPT_FORMAT_VERSION 1

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
    hid_t g = H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
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

int checkpoint_write(const char *path, ckpt_meta *meta, const ckpt_kv *cfg, int ncfg,
                     const ckpt_tensor *t, int nt, const char *const *groups,
                     float *const *bufs, int ngroups)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    size_t nparams = 0;
    for (int i = 0; i < nt; i++) {
        size_t end = t[i].offset + tensor_numel(&t[i]);
        nparams = end > nparams ? end : nparams;
    }
    meta->params_fnv1a64 = fnv1a64(bufs[0], nparams * sizeof(float));

    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), cg = -1;
    H5TRY(file, tmp, "cannot create checkpoint file");
    int version = CKPT_FORMAT_VERSION;
    H5TRY(h5_attr_write_str(file, "format", CKPT_FORMAT), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version), tmp,
            "cannot write attribute");
    H5TRY(h5_attr_write_str(file, "program_version", meta->program_version), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_str(file, "model", meta->model), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "step", H5T_STD_I64LE, H5T_NATIVE_LLONG, &meta->step), tmp,
            "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "data_position", H5T_STD_I64LE, H5T_NATIVE_LLONG,
                     &meta->data_position), tmp, "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "seed", H5T_STD_I64LE, H5T_NATIVE_LLONG, &meta->seed), tmp,
            "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "world_size", H5T_STD_I32LE, H5T_NATIVE_INT, &meta->world_size), tmp,
            "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "lanes", H5T_STD_I32LE, H5T_NATIVE_INT, &meta->lanes), tmp,
            "cannot write attribute");
    H5TRY(h5_attr_write_num(file, "params_fnv1a64", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                     &meta->params_fnv1a64), tmp, "cannot write attribute");
    if (meta->nexps > 0)
        H5TRY(h5_attr_write_i32s(file, "reduce_exponents", meta->exps, meta->nexps), tmp,
              "cannot write attribute");
    cg = H5Gcreate2(file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5TRY(cg, tmp, "cannot create group config");
    for (int i = 0; i < ncfg; i++)
        H5TRY(h5_attr_write_str(cg, cfg[i].key, cfg[i].value), tmp, "cannot write config attribute");
    H5Gclose(cg);
    cg = -1;
    for (int g = 0; g < ngroups; g++)
        if (write_group(file, tmp, groups[g], t, nt, bufs[g]) != 0)
            goto fail;
    H5TRY(H5Fflush(file, H5F_SCOPE_GLOBAL), tmp, "cannot flush checkpoint");
    H5TRY(H5Fclose(file), tmp, "cannot close checkpoint");
    file = -1;
    if (fsync_path(tmp, 0) != 0) {
        fprintf(stderr, "trainer: %s: fsync failed: %s\n", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "trainer: %s: cannot rename to %s: %s\n", tmp, path, strerror(errno));
        goto fail;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    fsync_path(dirname(dir), 1);
    return 0;
fail:
    if (cg >= 0)
        H5Gclose(cg);
    if (file >= 0)
        H5Fclose(file);
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

int checkpoint_read_meta(const char *path, ckpt_meta *meta, ckpt_kv **cfg, int *ncfg)
{
    memset(meta, 0, sizeof *meta);
    *cfg = NULL;
    *ncfg = 0;
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "trainer: %s: checkpoint missing or unreadable\n", path);
        return -1;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), cg = -1;
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
    if (h5_attr_read_num(file, "format_version", H5T_NATIVE_INT, &version) != 0 ||
        version != CKPT_FORMAT_VERSION) {
        fprintf(stderr, "trainer: %s: checkpoint format version %d, expected %d\n", path, version,
                CKPT_FORMAT_VERSION);
        goto fail;
    }
    if (h5_attr_read_str(file, "model", meta->model, sizeof meta->model) ||
        h5_attr_read_str(file, "program_version", meta->program_version,
                      sizeof meta->program_version) ||
        h5_attr_read_num(file, "step", H5T_NATIVE_LLONG, &meta->step) ||
        h5_attr_read_num(file, "data_position", H5T_NATIVE_LLONG, &meta->data_position) ||
        h5_attr_read_num(file, "seed", H5T_NATIVE_LLONG, &meta->seed) ||
        h5_attr_read_num(file, "world_size", H5T_NATIVE_INT, &meta->world_size) ||
        h5_attr_read_num(file, "lanes", H5T_NATIVE_INT, &meta->lanes) ||
        h5_attr_read_num(file, "params_fnv1a64", H5T_NATIVE_UINT64, &meta->params_fnv1a64)) {
        fprintf(stderr, "trainer: %s: checkpoint lacks a root attribute\n", path);
        goto fail;
    }
    meta->nexps = h5_attr_read_i32s(file, "reduce_exponents", meta->exps, CKPT_MAX_TENSORS);
    if (meta->nexps < 0) {
        fprintf(stderr, "trainer: %s: unreadable reduce_exponents attribute\n", path);
        goto fail;
    }
    if (H5Lexists(file, "config", H5P_DEFAULT) <= 0 ||
        (cg = H5Gopen2(file, "config", H5P_DEFAULT)) < 0) {
        fprintf(stderr, "trainer: %s: checkpoint has no /config group\n", path);
        goto fail;
    }
    kv_list l = {0};
    hsize_t idx = 0;
    if (H5Aiterate2(cg, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_attr, &l) < 0 &&
        H5Aiterate2(cg, H5_INDEX_NAME, H5_ITER_INC, &(hsize_t){0}, collect_attr, &l) < 0) {
        free(l.kv);
        fprintf(stderr, "trainer: %s: cannot read /config\n", path);
        goto fail;
    }
    *cfg = l.kv;
    *ncfg = l.n;
    H5Gclose(cg);
    H5Fclose(file);
    return 0;
fail:
    if (cg >= 0)
        H5Gclose(cg);
    H5Fclose(file);
    return -1;
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
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    int rc = -1;
    if (sp < 0) {
        fprintf(stderr, "trainer: %s: cannot open %s\n", path, name);
        goto out;
    }
    hsize_t dims[8] = {0};
    int nd = H5Sget_simple_extent_ndims(sp);
    int same = nd == t->ndim;
    if (nd > 0 && nd <= 8)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int d = 0; same && d < nd; d++)
        same = dims[d] == t->shape[d];
    if (!same) {
        char have[128] = "", want[128] = "";
        for (int d = 0; d < nd && d < 8; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", d ? "x" : "",
                     (unsigned long long)dims[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", d ? "x" : "",
                     t->shape[d]);
        fprintf(stderr, "trainer: %s: tensor %s is %s, this model's is %s\n", path, name, have,
                want);
        goto out;
    }
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        fprintf(stderr, "trainer: %s: cannot read %s (truncated or corrupt?)\n", path, name);
        goto out;
    }
    rc = 0;
out:
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    return rc;
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
    for (int g = 0; g < ngroups; g++)
        for (int i = 0; i < nt; i++) {
            if (read_tensor(file, path, groups[g], &t[i], bufs[g] + t[i].offset) != 0) {
                H5Fclose(file);
                return -1;
            }
            size_t end = t[i].offset + tensor_numel(&t[i]);
            nparams = end > nparams ? end : nparams;
        }
    H5Fclose(file);
    uint64_t sum = fnv1a64(bufs[0], nparams * sizeof(float));
    if (sum != meta->params_fnv1a64) {
        fprintf(stderr, "trainer: %s: parameter checksum %016llx does not match the stored %016llx\n",
                path, (unsigned long long)sum, (unsigned long long)meta->params_fnv1a64);
        return -1;
    }
    return 0;
}
