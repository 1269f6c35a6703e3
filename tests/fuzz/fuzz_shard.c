/* The shard reader, structure-aware: the input chooses what a well-formed
 * HDF5 file holds (which datasets, their names, types, ranks, sizes and
 * bytes, which attributes and their values), the file is written with
 * HDF5, and shard_read must refuse it with a line or return a consistent
 * shard. Damage to HDF5's own byte format is HDF5's parser's business and
 * is left out: this target tests what trainer does with what HDF5 hands it. */
#include "io/shards.h"
#include "tests/fuzz/fuzz_util.h"

#include <hdf5.h>
#include <string.h>

static const char *const NAMES[] = {"images", "labels", "tokens", "image", ""};
/* HDF5's type ids are library globals, not constants */
static hid_t type_of(uint32_t k)
{
    switch (k) {
    case 0: return H5T_NATIVE_UINT8;
    case 1: return H5T_NATIVE_UINT16;
    case 2: return H5T_NATIVE_INT8;
    case 3: return H5T_NATIVE_FLOAT;
    default: return H5T_NATIVE_INT64;
    }
}

static void put_dataset(hid_t file, fuzz_bytes *b)
{
    const char *name = NAMES[fuzz_u32(b, 5)];
    if (!name[0])
        return;
    hid_t type = type_of(fuzz_u32(b, 5));
    int rank = (int)fuzz_u32(b, 4) + 1;
    hsize_t dims[4], n = 1;
    for (int d = 0; d < rank; d++) {
        dims[d] = fuzz_u32(b, 9);
        n *= dims[d];
    }
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0 && n) {
        size_t bytes = (size_t)n * H5Tget_size(type);
        unsigned char *buf = calloc(1, bytes);
        memcpy(buf, b->p, b->n < bytes ? b->n : bytes);
        H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
    }
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
}

static void put_attr(hid_t file, const char *name, fuzz_bytes *b)
{
    uint32_t how = fuzz_u32(b, 4);
    long long v = (long long)(int32_t)fuzz_u32(b, 0);
    if (how == 0)
        return; /* absent */
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t type = how == 1 ? H5T_NATIVE_LLONG : how == 2 ? H5T_NATIVE_INT : H5T_NATIVE_DOUBLE;
    double dv = (double)v / 3.0;
    hid_t a = H5Acreate2(file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, how == 3 ? (void *)&dv : how == 2 ? (void *)&(int){(int)v} : (void *)&v);
        H5Aclose(a);
    }
    H5Sclose(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fuzz_bytes b = {data, size};
    const char *path = fuzz_path(".h5");
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        abort(); /* only when an earlier input left the file open */
    put_attr(file, "shard_index", &b);
    put_attr(file, "shard_count", &b);
    put_attr(file, "first_sample", &b);
    int ndatasets = (int)fuzz_u32(&b, 4);
    for (int i = 0; i < ndatasets; i++)
        put_dataset(file, &b);
    H5Fclose(file);
    enum shard_kind kind = fuzz_u32(&b, 2) ? SHARD_TOKENS : SHARD_IMAGES;
    int want_index = (int)fuzz_u32(&b, 4), want_count = (int)fuzz_u32(&b, 5);
    shard s;
    if (shard_read(path, kind, want_index, want_count, &s) == 0) {
        if (s.n == 0 || !s.data || s.shard_index != want_index || s.shard_count != want_count)
            abort();
        if (kind == SHARD_IMAGES && (!s.labels || s.h == 0 || s.w == 0))
            abort();
        volatile uint8_t last = s.data[s.n * s.h * s.w - 1];
        (void)last;
        shard_free(&s);
    }
    shard_read_count(path);
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0)
        abort(); /* an HDF5 object left open: a leak in the reader */
    return 0;
}
