/* Test data maker.
 *   make_data idx DIR     synthetic Fashion-MNIST-like IDX files: 28x28 images
 *                         of ten shape classes with noise, 640 train (gzip) and
 *                         160 test (plain)
 *   make_data text FILE   200 KB of verse-like text from a small grammar, for
 *                         the language model
 *   make_data bad KIND F  a shard file that is wrong in one way: KIND is
 *                         name (no "images"), type (uint16), shape (2-D)
 *   make_data poke F DSET I V
 *                         sets element I of the float dataset DSET of F to V
 *                         (nan and inf too): damage as a disk or a person does
 * A test helper may talk HDF5 directly: it writes what io/ must refuse. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void image(uint8_t *px, int cls, uint32_t *s)
{
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int on = 0;
            switch (cls % 5) {
            case 0: on = abs(x - 14) < 2 + cls / 5 * 3; break;
            case 1: on = abs(y - 14) < 2 + cls / 5 * 3; break;
            case 2: on = (x - 14) * (x - 14) + (y - 14) * (y - 14) < 40 + cls * 8; break;
            case 3: on = abs(x - y) < 3 + cls / 5; break;
            default: on = x > 6 && x < 22 && y > 4 && y < 24 - cls; break;
            }
            int v = on ? 200 + (int)(lcg(s) % 56) : (int)(lcg(s) % 30);
            px[y * 28 + x] = (uint8_t)v;
        }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int write_idx(const char *path, int gz, int ndim, const uint32_t *dims, const uint8_t *data,
                     size_t n)
{
    uint8_t head[4 + 4 * 3] = {0, 0, 0x08, (uint8_t)ndim};
    for (int d = 0; d < ndim; d++)
        put_be32(head + 4 + 4 * d, dims[d]);
    size_t hn = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || gzwrite(f, head, (unsigned)hn) != (int)hn || gzwrite(f, data, (unsigned)n) != (int)n)
            return -1;
        return gzclose(f) == Z_OK ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(head, 1, hn, f) != hn || fwrite(data, 1, n, f) != n)
        return -1;
    return fclose(f);
}

static int make_split(const char *dir, const char *stem_img, const char *stem_lab, int n, int gz,
                      uint32_t seed)
{
    uint8_t *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        lab[i] = (uint8_t)((i * 7 + seed) % 10);
        image(img + (size_t)i * 784, lab[i], &seed);
    }
    char path[4096];
    uint32_t dims[3] = {(uint32_t)n, 28, 28};
    snprintf(path, sizeof path, "%s/%s%s", dir, stem_img, gz ? ".gz" : "");
    int rc = write_idx(path, gz, 3, dims, img, (size_t)n * 784);
    snprintf(path, sizeof path, "%s/%s%s", dir, stem_lab, gz ? ".gz" : "");
    rc |= write_idx(path, gz, 1, dims, lab, (size_t)n);
    free(img);
    free(lab);
    return rc;
}

static void attr_i64(hid_t f, const char *name, long long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static int make_bad(const char *kind, const char *path, int index, int count)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return -1;
    attr_i64(f, "shard_index", index);
    attr_i64(f, "shard_count", count);
    attr_i64(f, "sample_count", 16);
    const char *name = strcmp(kind, "name") ? "images" : "pixels";
    hid_t type = strcmp(kind, "type") ? H5T_STD_U8LE : H5T_STD_U16LE;
    hsize_t d3[3] = {16, 28, 28}, d2[2] = {16, 784}, d1[1] = {16};
    int rank = strcmp(kind, "shape") ? 3 : 2;
    hid_t sp = H5Screate_simple(rank, rank == 3 ? d3 : d2, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    uint16_t *zeros = calloc(16 * 784, sizeof *zeros);
    H5Dwrite(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    H5Dclose(ds);
    H5Sclose(sp);
    sp = H5Screate_simple(1, d1, NULL);
    ds = H5Dcreate2(f, "labels", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    H5Dclose(ds);
    H5Sclose(sp);
    free(zeros);
    return H5Fclose(f) < 0 ? -1 : 0;
}

static int make_text(const char *path)
{
    static const char *subj[] = {"the LORD", "Moses", "the people", "David", "the king", "Israel"};
    static const char *verb[] = {"said unto", "went up to", "blessed", "spake unto", "came unto"};
    static const char *obj[] = {"the land", "his servants", "the city", "the children of Israel",
                                "the house of God", "Jerusalem"};
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    uint32_t s = 3;
    for (int book = 1, n = 0; n < 200000; book++)
        for (int verse = 1; verse <= 30 && n < 200000; verse++) {
            int w = fprintf(f, "%d:%d And %s %s %s, and %s %s %s.\n", book, verse,
                            subj[lcg(&s) % 6], verb[lcg(&s) % 5], obj[lcg(&s) % 6],
                            subj[lcg(&s) % 6], verb[lcg(&s) % 5], obj[lcg(&s) % 6]);
            n += w;
        }
    return fclose(f);
}

static int poke(const char *path, const char *dset, long index, const char *value)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, dset, H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    float *buf = n > index ? malloc((size_t)n * sizeof *buf) : NULL;
    int rc = -1;
    if (buf && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
        buf[index] = strtof(value, NULL);
        rc = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    }
    if (rc)
        fprintf(stderr, "make_data: cannot poke %s[%ld] of %s\n", dset, index, path);
    free(buf);
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "poke"))
        return poke(argv[2], argv[3], atol(argv[4]), argv[5]) ? 1 : 0;
    if (argc == 3 && !strcmp(argv[1], "text"))
        return make_text(argv[2]) ? 1 : 0;
    if (argc == 3 && !strcmp(argv[1], "idx")) {
        int rc = make_split(argv[2], "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 640, 1, 7);
        rc |= make_split(argv[2], "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 160, 0, 11);
        return rc ? 1 : 0;
    }
    if (argc == 6 && !strcmp(argv[1], "bad"))
        return make_bad(argv[2], argv[3], atoi(argv[4]), atoi(argv[5])) ? 1 : 0;
    fprintf(stderr, "usage: make_data idx DIR | text FILE | bad name|type|shape FILE INDEX COUNT"
                    " | poke FILE DATASET INDEX VALUE\n");
    return 2;
}
