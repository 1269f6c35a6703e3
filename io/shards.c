#include "shards.h"

#include "h5util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void shard_path(char *buf, size_t size, const char *dir, const char *split, int index)
{
    snprintf(buf, size, "%s/%s-%03d.h5", dir, split, index);
}

int shard_read_count(const char *path)
{
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "trainer: %s: shard file missing or unreadable\n", path);
        return -1;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "trainer: %s: not a readable HDF5 file (truncated or corrupt?)\n", path);
        return -1;
    }
    long long count = -1;
    if (h5_attr_read_num(file, "shard_count", H5T_NATIVE_LLONG, &count) != 0 || count < 1 ||
        count > 1000000) {
        fprintf(stderr, "trainer: %s: no valid shard_count attribute: not a shard file\n", path);
        count = -1;
    }
    H5Fclose(file);
    return (int)count;
}

int shard_is_pairs(const char *path)
{
    if (access(path, R_OK) != 0)
        return 0;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return 0;
    char kind[16] = "";
    const int pairs = h5_attr_read_str(file, "kind", kind, sizeof kind) == 0 &&
                      !strcmp(kind, "pairs");
    H5Fclose(file);
    return pairs;
}

/* Creates a chunked, deflated dataset of unsigned integers of `width` bytes
 * and writes it. Modification times are not stored, so the same input
 * gives byte-identical files. */
static int write_uint(hid_t file, const char *name, int rank, const hsize_t *dims,
                      const void *data, int width)
{
    hsize_t chunk[3];
    hsize_t rows_per_chunk = rank == 1 ? 65536 : 1024;
    chunk[0] = dims[0] < rows_per_chunk ? dims[0] : rows_per_chunk;
    chunk[0] = chunk[0] ? chunk[0] : 1;
    for (int d = 1; d < rank; d++)
        chunk[d] = dims[d];
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = -1;
    int rc = -1;
    if (sp < 0 || dcpl < 0)
        goto out;
    if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_deflate(dcpl, 4) < 0 ||
        H5Pset_obj_track_times(dcpl, 0) < 0)
        goto out;
    ds = H5Dcreate2(file, name, width == 2 ? H5T_STD_U16LE : H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl,
                    H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, width == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT8, H5S_ALL,
                           H5S_ALL, H5P_DEFAULT, data) < 0)
        goto out;
    rc = 0;
out:
    if (ds >= 0)
        H5Dclose(ds);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

static int write_u8(hid_t file, const char *name, int rank, const hsize_t *dims,
                    const uint8_t *data)
{
    return write_uint(file, name, rank, dims, data, 1);
}

static int write_pairs(hid_t file, const shard *s)
{
    const hsize_t n[1] = {s->n}, src[1] = {s->src_n}, tgt[1] = {s->tgt_n};
    const hsize_t refs[1] = {s->refs_bytes}, merges[2] = {s->nmerges, 2};
    return h5_attr_write_i64(file, "max_tokens", (long long)s->w) < 0 ||
                   write_uint(file, "src_tokens", 1, src, s->src, 2) ||
                   write_uint(file, "tgt_tokens", 1, tgt, s->tgt, 2) ||
                   write_uint(file, "src_lengths", 1, n, s->src_len, 2) ||
                   write_uint(file, "tgt_lengths", 1, n, s->tgt_len, 2) ||
                   write_u8(file, "refs", 1, refs, s->refs) ||
                   write_uint(file, "merges", 2, merges, s->merges, 2)
               ? -1
               : 0;
}

int shard_write(const char *path, const shard *s, const char *source, const char *split)
{
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t file = -1;
    H5TRY(fcpl, path, "cannot create file properties");
    H5TRY(H5Pset_obj_track_times(fcpl, 0), path, "cannot switch off time tracking");
    file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5TRY(file, path, "cannot create file");
    const char *kind = s->kind == SHARD_IMAGES ? "images" : s->kind == SHARD_PAIRS ? "pairs" : "tokens";
    H5TRY(h5_attr_write_str(file, "kind", kind), path, "cannot write attribute kind");
    H5TRY(h5_attr_write_str(file, "source", source), path, "cannot write attribute source");
    H5TRY(h5_attr_write_str(file, "split", split), path, "cannot write attribute split");
    H5TRY(h5_attr_write_i64(file, "shard_index", s->shard_index), path, "cannot write attribute");
    H5TRY(h5_attr_write_i64(file, "shard_count", s->shard_count), path, "cannot write attribute");
    H5TRY(h5_attr_write_i64(file, "sample_count", (long long)s->n), path, "cannot write attribute");
    H5TRY(h5_attr_write_i64(file, "first_sample", (long long)s->first_sample), path,
            "cannot write attribute");
    if (s->kind == SHARD_PAIRS) {
        H5TRY(write_pairs(file, s), path, "cannot write the pairs");
    } else if (s->kind == SHARD_IMAGES) {
        hsize_t dims[3] = {s->n, s->h, s->w};
        H5TRY(write_u8(file, "images", 3, dims, s->data), path, "cannot write images");
        H5TRY(write_u8(file, "labels", 1, dims, s->labels), path, "cannot write labels");
    } else {
        hsize_t dims[1] = {s->n}, vdims[1] = {s->vocab_bytes};
        H5TRY(write_uint(file, "tokens", 1, dims, s->data, s->width == 2 ? 2 : 1), path,
              "cannot write tokens");
        if (s->unit_bytes)
            H5TRY(write_u8(file, "token_bytes", 1, dims, s->unit_bytes), path,
                  "cannot write token_bytes");
        if (s->vocab)
            H5TRY(write_u8(file, "vocab", 1, vdims, s->vocab), path, "cannot write vocab");
    }
    H5TRY(H5Fclose(file), path, "cannot close file");
    H5Pclose(fcpl);
    return 0;
fail:
    if (file >= 0)
        H5Fclose(file);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    return -1;
}

static void type_name(hid_t t, char *buf, size_t size)
{
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, size, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT: snprintf(buf, size, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, size, "a string"); break;
    default: snprintf(buf, size, "of a non-numeric type"); break;
    }
}

/* Opens dataset name, checks that it is an unsigned integer of 1 byte (or
 * up to max_width bytes: *width receives it) and of the given rank, and
 * reads its shape into dims. */
static hid_t open_uint(hid_t file, const char *path, const char *name, int rank, hsize_t *dims,
                       int max_width, int *width)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        fprintf(stderr, "trainer: %s: no dataset \"%s\"\n", path, name);
        return -1;
    }
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0) {
        fprintf(stderr, "trainer: %s: \"%s\" is not a readable dataset\n", path, name);
        return -1;
    }
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
    int ok = t >= 0 && sp >= 0;
    if (ok && (H5Tget_class(t) != H5T_INTEGER || H5Tget_size(t) > (size_t)max_width ||
               H5Tget_size(t) == 0 || (H5Tget_size(t) & (H5Tget_size(t) - 1)) ||
               H5Tget_sign(t) != H5T_SGN_NONE)) {
        char tn[32];
        type_name(t, tn, sizeof tn);
        fprintf(stderr, "trainer: %s: dataset \"%s\" is %s, expected uint8%s\n", path, name, tn,
                max_width > 1 ? " or uint16" : "");
        ok = 0;
    }
    if (ok && width)
        *width = (int)H5Tget_size(t);
    if (ok && H5Sget_simple_extent_ndims(sp) != rank) {
        fprintf(stderr, "trainer: %s: dataset \"%s\" has %d dimensions, expected %d\n", path,
                name, H5Sget_simple_extent_ndims(sp), rank);
        ok = 0;
    }
    if (ok)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (!ok) {
        H5Dclose(ds);
        return -1;
    }
    return ds;
}

static hid_t open_u8(hid_t file, const char *path, const char *name, int rank, hsize_t *dims)
{
    return open_uint(file, path, name, rank, dims, 1, NULL);
}

static int read_uint(hid_t ds, const char *path, const char *name, void *buf, int width)
{
    if (H5Dread(ds, width == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL,
                H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "trainer: %s: cannot read dataset \"%s\" (truncated or corrupt file?)\n",
                path, name);
        return -1;
    }
    return 0;
}

/* An optional uint8 dataset, whole: 0 (and *buf NULL) when absent, -1
 * after a line when present but wrong. want: its length, or 0 for any. */
static int read_optional_u8(hid_t file, const char *path, const char *name, size_t want,
                            uint8_t **buf, size_t *len)
{
    *buf = NULL;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return 0;
    hsize_t d[1];
    hid_t ds = open_u8(file, path, name, 1, d);
    if (ds < 0)
        return -1;
    int rc = -1;
    if (want && d[0] != want) {
        fprintf(stderr, "trainer: %s: dataset \"%s\" has %llu values, expected %zu\n", path, name,
                (unsigned long long)d[0], want);
    } else if (!(*buf = malloc(d[0] + 1))) {
        fprintf(stderr, "trainer: %s: out of memory\n", path);
    } else if (read_uint(ds, path, name, *buf, 1) == 0) {
        *len = d[0];
        rc = 0;
    }
    H5Dclose(ds);
    return rc;
}

/* /tokens (uint8 or uint16), and for word tokens /token_bytes and /vocab. */
static int read_tokens(hid_t file, const char *path, shard *out)
{
    hsize_t d[1];
    hid_t ds = open_uint(file, path, "tokens", 1, d, 2, &out->width);
    if (ds < 0)
        return -1;
    out->n = d[0];
    out->h = out->w = 1;
    out->data = malloc(out->n * (size_t)out->width + 1);
    int rc = -1;
    size_t len = 0;
    if (!out->data)
        fprintf(stderr, "trainer: %s: out of memory\n", path);
    else if (read_uint(ds, path, "tokens", out->data, out->width) == 0 &&
             read_optional_u8(file, path, "token_bytes", out->n, &out->unit_bytes, &len) == 0 &&
             read_optional_u8(file, path, "vocab", 0, &out->vocab, &out->vocab_bytes) == 0)
        rc = 0;
    H5Dclose(ds);
    if (rc == 0 && out->width == 2 && (!out->vocab || !out->unit_bytes)) {
        fprintf(stderr, "trainer: %s: uint16 tokens without /vocab and /token_bytes\n", path);
        rc = -1;
    }
    return rc;
}

/* A uint16 dataset of the given rank, whole, into a new buffer; its shape
 * into dims. */
static int read_u16(hid_t file, const char *path, const char *name, int rank, hsize_t *dims,
                    uint16_t **buf)
{
    int width = 0;
    hid_t ds = open_uint(file, path, name, rank, dims, 2, &width);
    if (ds < 0)
        return -1;
    size_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    int rc = -1;
    if (width != 2)
        fprintf(stderr, "trainer: %s: dataset \"%s\" is uint8, expected uint16\n", path, name);
    else if (!(*buf = malloc(n * sizeof **buf + 1)))
        fprintf(stderr, "trainer: %s: out of memory\n", path);
    else
        rc = read_uint(ds, path, name, *buf, 2);
    H5Dclose(ds);
    return rc;
}

/* The sum of n lengths. */
static size_t total_of(const uint16_t *len, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += len[i];
    return t;
}

/* The pairs as fixed records for the lanes: [n, 2, L] uint16, a side's
 * tokens, the end token, then padding (bpe.h's ids: end = vocab - 2, pad =
 * vocab - 1); and the merges as the vocabulary blob that every shard and
 * the checkpoint must agree on. */
static int pair_records(const char *path, shard *out, size_t L)
{
    const uint16_t vocab = (uint16_t)(256 + out->nmerges + 3), end = vocab - 2, pad = vocab - 1;
    uint16_t *rec = malloc(out->n * 2 * L * sizeof *rec + 1);
    out->vocab = malloc(out->nmerges * 4 + 1);
    if (!rec || !out->vocab) {
        free(rec);
        fprintf(stderr, "trainer: %s: out of memory\n", path);
        return -1;
    }
    memcpy(out->vocab, out->merges, out->nmerges * 4);
    out->vocab_bytes = out->nmerges * 4;
    const uint16_t *side[2] = {out->src, out->tgt}, *len[2] = {out->src_len, out->tgt_len};
    for (size_t i = 0; i < out->n; i++)
        for (int k = 0; k < 2; k++) {
            uint16_t *r = rec + (i * 2 + k) * L;
            const size_t m = len[k][i];
            for (size_t t = 0; t < m; t++)
                if (side[k][t] >= end) {
                    fprintf(stderr, "trainer: %s: token %u of %u ids\n", path, side[k][t], vocab);
                    free(rec);
                    return -1;
                }
            memcpy(r, side[k], m * sizeof *r);
            r[m] = end;
            for (size_t t = m + 1; t < L; t++)
                r[t] = pad;
            side[k] += m;
        }
    out->data = (uint8_t *)rec;
    out->h = 2;
    out->w = L;
    out->width = 2;
    return 0;
}

static int read_pairs(hid_t file, const char *path, shard *out)
{
    hsize_t ds[1], dt[1], dsl[1], dtl[1], dm[2];
    size_t len = 0;
    long long L = 0;
    if (h5_attr_read_num(file, "max_tokens", H5T_NATIVE_LLONG, &L) != 0 || L < 2 || L > 65535) {
        fprintf(stderr, "trainer: %s: no valid max_tokens attribute\n", path);
        return -1;
    }
    if (read_u16(file, path, "src_tokens", 1, ds, &out->src) ||
        read_u16(file, path, "tgt_tokens", 1, dt, &out->tgt) ||
        read_u16(file, path, "src_lengths", 1, dsl, &out->src_len) ||
        read_u16(file, path, "tgt_lengths", 1, dtl, &out->tgt_len) ||
        read_u16(file, path, "merges", 2, dm, &out->merges) ||
        read_optional_u8(file, path, "refs", 0, &out->refs, &len))
        return -1;
    out->n = dsl[0];
    out->src_n = ds[0];
    out->tgt_n = dt[0];
    out->refs_bytes = out->refs ? len : 0;
    out->nmerges = dm[0];
    out->h = out->w = 1;
    if (dtl[0] != dsl[0] || total_of(out->src_len, out->n) != out->src_n ||
        total_of(out->tgt_len, out->n) != out->tgt_n || dm[1] != 2) {
        fprintf(stderr, "trainer: %s: the pairs' lengths do not add up to their tokens\n", path);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++)
        if (out->src_len[i] + 1 > L || out->tgt_len[i] + 1 > L) {
            fprintf(stderr, "trainer: %s: pair %zu is longer than max_tokens %lld\n", path, i, L);
            return -1;
        }
    for (size_t i = 0; i < out->nmerges; i++)
        if (out->merges[2 * i] >= 256 + i || out->merges[2 * i + 1] >= 256 + i) {
            fprintf(stderr, "trainer: %s: merge %zu joins tokens not made yet\n", path, i);
            return -1;
        }
    return pair_records(path, out, (size_t)L);
}

int shard_read(const char *path, enum shard_kind kind, int want_index, int want_count,
               shard *out)
{
    memset(out, 0, sizeof *out);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "trainer: %s: shard file missing or unreadable\n", path);
        return -1;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = -1, ls = -1;
    if (file < 0) {
        fprintf(stderr, "trainer: %s: not a readable HDF5 file (truncated or corrupt?)\n", path);
        return -1;
    }
    long long index = -1, count = -1, first = 0;
    if (h5_attr_read_num(file, "shard_index", H5T_NATIVE_LLONG, &index) != 0 ||
        h5_attr_read_num(file, "shard_count", H5T_NATIVE_LLONG, &count) != 0) {
        fprintf(stderr, "trainer: %s: no shard_index/shard_count attributes: not a shard file\n",
                path);
        goto fail;
    }
    h5_attr_read_num(file, "first_sample", H5T_NATIVE_LLONG, &first);
    if ((want_index >= 0 && index != want_index) || (want_count >= 0 && count != want_count)) {
        fprintf(stderr, "trainer: %s: shard %lld of %lld, expected shard %d of %d\n", path, index,
                count, want_index, want_count);
        goto fail;
    }
    out->kind = kind;
    out->shard_index = (int)index;
    out->shard_count = (int)count;
    out->first_sample = (size_t)first;
    out->width = 1;
    if (kind == SHARD_IMAGES) {
        hsize_t d[3], dl[1];
        if ((ds = open_u8(file, path, "images", 3, d)) < 0)
            goto fail;
        if ((ls = open_u8(file, path, "labels", 1, dl)) < 0)
            goto fail;
        if (dl[0] != d[0]) {
            fprintf(stderr, "trainer: %s: %llu labels for %llu images\n", path,
                    (unsigned long long)dl[0], (unsigned long long)d[0]);
            goto fail;
        }
        out->n = d[0];
        out->h = d[1];
        out->w = d[2];
        if (out->h == 0 || out->w == 0) { /* found by fuzz_shard */
            fprintf(stderr, "trainer: %s: images of %zux%zu pixels\n", path, out->h, out->w);
            goto fail;
        }
        out->data = malloc(out->n * out->h * out->w + 1);
        out->labels = malloc(out->n + 1);
        if (!out->data || !out->labels) {
            fprintf(stderr, "trainer: %s: out of memory\n", path);
            goto fail;
        }
        if (read_uint(ds, path, "images", out->data, 1) ||
            read_uint(ls, path, "labels", out->labels, 1))
            goto fail;
    } else if (kind == SHARD_PAIRS) {
        if (read_pairs(file, path, out) != 0)
            goto fail;
    } else if (read_tokens(file, path, out) != 0) {
        goto fail;
    }
    if (out->n == 0) {
        fprintf(stderr, "trainer: %s: shard holds no samples\n", path);
        goto fail;
    }
    if (ds >= 0)
        H5Dclose(ds);
    if (ls >= 0)
        H5Dclose(ls);
    H5Fclose(file);
    return 0;
fail:
    if (ds >= 0)
        H5Dclose(ds);
    if (ls >= 0)
        H5Dclose(ls);
    H5Fclose(file);
    shard_free(out);
    return -1;
}

void shard_free(shard *s)
{
    free(s->data);
    free(s->labels);
    free(s->unit_bytes);
    free(s->vocab);
    free(s->src);
    free(s->tgt);
    free(s->src_len);
    free(s->tgt_len);
    free(s->refs);
    free(s->merges);
    memset(s, 0, sizeof *s);
}
