/* The checkpoint reader, structure-aware, and the resume path's use of what
 * it reads: a valid checkpoint is written (tensor values, configuration
 * entries and root attributes from the input), then damaged the way the
 * input says (an attribute deleted or rewritten with another type or value,
 * a tensor replaced by one of another type or shape, a value changed, a
 * group removed), then read back as a resume reads it: the root attributes
 * and /config, the configuration built from them, the tensors. */
#include "io/checkpoint.h"
#include "trainer/config.h"
#include "trainer/model.h"
#include "tests/fuzz/fuzz_util.h"

#include <hdf5.h>
#include <math.h>
#include <string.h>

static ckpt_tensor tensors[2] = {{"enc.fc1.weight", 2, {3, 4}, 0}, {"enc.fc1.bias", 1, {3}, 12}};
static const char *const groups[3] = {"params", "adam_m", "adam_v"};
static const char *const ATTRS[] = {"format", "format_version", "model", "step", "seed",
                                    "world_size", "lanes", "params_fnv1a64", "adam_m_fnv1a64",
                                    "meta_fnv1a64", "config_fnv1a64", "reduce_exponents",
                                    "reduce_exponents_fnv1a64", "data_position"};
static const char *const KEYS[] = {"model", "lr", "hidden", "batch", "heads", "ctx", "steps",
                                   "reduce", "latent", "bogus", "lanes", "micro-steps"};

static void write_good(const char *path, fuzz_bytes *b)
{
    float bufs[3][15];
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < 15; i++)
            bufs[g][i] = (float)(int32_t)fuzz_u32(b, 0) * 1e-6f;
    float *bp[3] = {bufs[0], bufs[1], bufs[2]};
    ckpt_meta meta = {.model = "vae", .program_version = "fuzz", .step = fuzz_u32(b, 1000),
                      .seed = 1, .world_size = 1 + (int)fuzz_u32(b, 8), .lanes = 8,
                      .nexps = (int)fuzz_u32(b, 3)};
    for (int i = 0; i < meta.nexps; i++)
        meta.exps[i] = (int32_t)fuzz_u32(b, 0);
    ckpt_kv kv[6];
    int n = (int)fuzz_u32(b, 7);
    for (int i = 0; i < n; i++) {
        snprintf(kv[i].key, sizeof kv[i].key, "%s", KEYS[fuzz_u32(b, 12)]);
        size_t len = fuzz_u32(b, 12);
        len = len < b->n ? len : b->n;
        memcpy(kv[i].value, b->p, len);
        kv[i].value[len] = 0;
        b->p += len;
        b->n -= len;
    }
    checkpoint_write(path, &meta, kv, n, tensors, 2, groups, bp, 3);
}

static void damage(const char *path, fuzz_bytes *b)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return;
    const char *attr = ATTRS[fuzz_u32(b, 14)];
    char name[64];
    snprintf(name, sizeof name, "/%s/%s", groups[fuzz_u32(b, 3)], tensors[fuzz_u32(b, 2)].name);
    switch (fuzz_u32(b, 6)) {
    case 0: break;
    case 1: H5Adelete(f, attr); break;
    case 2: { /* rewritten as a double, or as a string */
        H5Adelete(f, attr);
        hid_t sp = H5Screate(H5S_SCALAR);
        double v = (double)(int32_t)fuzz_u32(b, 0);
        hid_t a = H5Acreate2(f, attr, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
            H5Aclose(a);
        }
        H5Sclose(sp);
        break;
    }
    case 3: { /* a tensor of another type and shape */
        H5Ldelete(f, name, H5P_DEFAULT);
        hsize_t dims[2] = {fuzz_u32(b, 5), fuzz_u32(b, 5)};
        hid_t sp = H5Screate_simple(1 + (int)fuzz_u32(b, 2), dims, NULL);
        hid_t type = fuzz_u32(b, 2) ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
        hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds >= 0)
            H5Dclose(ds);
        H5Sclose(sp);
        break;
    }
    case 4: { /* one value changed: NaN, inf, or another number */
        hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
        float v[12] = {0};
        if (ds >= 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
            uint32_t w = fuzz_u32(b, 0);
            v[w % 3] = (w >> 8) % 3 == 0 ? NAN : (w >> 8) % 3 == 1 ? INFINITY : (float)w;
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        }
        if (ds >= 0)
            H5Dclose(ds);
        break;
    }
    case 5: H5Ldelete(f, fuzz_u32(b, 2) ? "/config" : "/adam_v", H5P_DEFAULT); break;
    }
    H5Fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_quiet_hdf5();
    fuzz_bytes b = {data, size};
    const char *path = fuzz_path(".ckpt.h5");
    unlink(path);
    write_good(path, &b);
    damage(path, &b);
    ckpt_meta meta;
    ckpt_kv *kv = NULL;
    int n = 0;
    if (checkpoint_read_meta(path, &meta, &kv, &n) == 0) {
        cfg_list l = {0};
        int ok = 1;
        for (int i = 0; i < n && ok; i++)
            ok = cfg_list_set(&l, kv[i].key, kv[i].value) == 0;
        const cfg_list *layers[1] = {&l};
        config c = {0};
        if (ok)
            config_build(&c, CMD_TRAIN, layers, 1, 1);
        config_free(&c);
        cfg_list_free(&l);
        float p[15], m[15], v[15];
        float *bufs[3] = {p, m, v};
        if (checkpoint_read_tensors(path, &meta, tensors, 2, groups, bufs, 3) == 0)
            for (int i = 0; i < 15; i++)
                if (!isfinite(p[i]) || !isfinite(m[i]) || !isfinite(v[i]))
                    abort(); /* a reader must never hand over a non-finite value */
    }
    free(kv);
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0)
        abort(); /* an HDF5 object left open: a leak in the reader */
    return 0;
}
