/* Shard files, IDX files and checkpoints: round trips, and the refusals. */
#include "io/checkpoint.h"
#include "io/idx.h"
#include "io/shards.h"
#include "trainer/draft.h"
#include "trainer/words.h"

#include "tests/suite.h"

#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void make_tmpdir(void)
{
    snprintf(dir, sizeof dir, "/tmp/trainer-test-io-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    io_quiet_hdf5();
}

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static shard sample_shard(uint8_t *px, uint8_t *lab, int n)
{
    for (int i = 0; i < n * 6; i++)
        px[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < n; i++)
        lab[i] = (uint8_t)(i % 10);
    shard s = {.kind = SHARD_IMAGES, .shard_index = 1, .shard_count = 3, .n = (size_t)n,
               .h = 2, .w = 3, .first_sample = 100, .data = px, .labels = lab};
    return s;
}

static int files_equal(const char *a, const char *b)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

START_TEST(shard_round_trip_and_identical_bytes)
{
    make_tmpdir();
    uint8_t px[50 * 6], lab[50];
    shard s = sample_shard(px, lab, 50);
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(b, sizeof b, "%s/b.h5", dir);
    ck_assert_int_eq(shard_write(a, &s, "unit test", "train"), 0);
    sleep(1); /* a stored time stamp would now differ */
    ck_assert_int_eq(shard_write(b, &s, "unit test", "train"), 0);
    ck_assert_msg(files_equal(a, b), "same input gave different shard bytes");
    shard r;
    ck_assert_int_eq(shard_read(a, SHARD_IMAGES, 1, 3, &r), 0);
    ck_assert_uint_eq(r.n, 50);
    ck_assert_uint_eq(r.h, 2);
    ck_assert_uint_eq(r.w, 3);
    ck_assert_uint_eq(r.first_sample, 100);
    ck_assert_int_eq(memcmp(r.data, px, sizeof px), 0);
    ck_assert_int_eq(memcmp(r.labels, lab, sizeof lab), 0);
    shard_free(&r);
    ck_assert_int_eq(shard_read_count(a), 3);
    /* the wrong place in the set is refused */
    ck_assert_int_eq(shard_read(a, SHARD_IMAGES, 0, 3, &r), -1);
    ck_assert_int_eq(shard_read(a, SHARD_IMAGES, 1, 4, &r), -1);
    /* an image shard is not a token shard */
    ck_assert_int_eq(shard_read(a, SHARD_TOKENS, 1, 3, &r), -1);
    remove_tmpdir();
}
END_TEST

START_TEST(token_shard_round_trip)
{
    make_tmpdir();
    uint8_t text[1000];
    for (int i = 0; i < 1000; i++)
        text[i] = (uint8_t)("In the beginning "[i % 17]);
    shard s = {.kind = SHARD_TOKENS, .shard_index = 0, .shard_count = 1, .n = 1000, .h = 1,
               .w = 1, .data = text};
    char a[300];
    snprintf(a, sizeof a, "%s/t.h5", dir);
    ck_assert_int_eq(shard_write(a, &s, "unit test", "val"), 0);
    shard r;
    ck_assert_int_eq(shard_read(a, SHARD_TOKENS, 0, 1, &r), 0);
    ck_assert_uint_eq(r.n, 1000);
    ck_assert_int_eq(memcmp(r.data, text, 1000), 0);
    shard_free(&r);
    remove_tmpdir();
}
END_TEST

/* Two pairs and two merges, written and read back: the tokens, lengths,
 * references and merges as written, the fixed records (a side, the end
 * token, padding), the merges as the vocabulary blob; and a pair longer
 * than max_tokens refused. */
START_TEST(pair_shard_round_trip)
{
    make_tmpdir();
    uint16_t src[] = {72, 256, 105}, tgt[] = {257, 33}, src_len[] = {1, 2}, tgt_len[] = {1, 1};
    uint16_t merges[] = {'a', 'b', ' ', 256};
    uint8_t refs[] = "Genesis 1:1\0Genesis 1:2";
    shard s = {.kind = SHARD_PAIRS, .shard_index = 0, .shard_count = 1, .n = 2, .h = 2, .w = 4,
               .width = 2, .src = src, .tgt = tgt, .src_len = src_len, .tgt_len = tgt_len,
               .src_n = 3, .tgt_n = 2, .refs = refs, .refs_bytes = sizeof refs,
               .merges = merges, .nmerges = 2};
    char a[300];
    snprintf(a, sizeof a, "%s/p.h5", dir);
    ck_assert_int_eq(shard_write(a, &s, "unit test", "val"), 0);
    shard r;
    ck_assert_int_eq(shard_read(a, SHARD_PAIRS, 0, 1, &r), 0);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_int_eq(memcmp(r.src, src, sizeof src), 0);
    ck_assert_int_eq(memcmp(r.tgt, tgt, sizeof tgt), 0);
    ck_assert_int_eq(memcmp(r.refs, refs, sizeof refs), 0);
    ck_assert_uint_eq(r.h * r.w * (size_t)r.width, 16);
    /* vocabulary 256 + 2 + 3: end 259, pad 260 */
    const uint16_t want[2][2][4] = {{{72, 259, 260, 260}, {257, 259, 260, 260}},
                                    {{256, 105, 259, 260}, {33, 259, 260, 260}}};
    ck_assert_int_eq(memcmp(r.data, want, sizeof want), 0);
    ck_assert_uint_eq(r.vocab_bytes, sizeof merges);
    ck_assert_int_eq(memcmp(r.vocab, merges, sizeof merges), 0);
    shard_free(&r);
    s.w = 2; /* the second pair's source and its end token do not fit */
    ck_assert_int_eq(shard_write(a, &s, "unit test", "val"), 0);
    capture_begin();
    ck_assert_int_eq(shard_read(a, SHARD_PAIRS, 0, 1, &r), -1);
    ck_assert_ptr_nonnull(strstr(capture_end(), "pair 1 is longer than max_tokens 2"));
    remove_tmpdir();
}
END_TEST

static int make_bad(const char *kind, const char *path)
{
    char cmd[600];
    const char *top = getenv("TOP_BUILDDIR");
    snprintf(cmd, sizeof cmd, "%s/tests/make_data bad %s %s 0 1", top ? top : ".", kind, path);
    return system(cmd);
}

START_TEST(bad_shards_are_refused)
{
    make_tmpdir();
    char p[300];
    shard r;
    snprintf(p, sizeof p, "%s/missing.h5", dir);
    ck_assert_int_eq(shard_read(p, SHARD_IMAGES, 0, 1, &r), -1);
    ck_assert_int_eq(shard_read_count(p), -1);
    const char *kinds[3] = {"name", "type", "shape"};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/bad-%s.h5", dir, kinds[k]);
        ck_assert_int_eq(make_bad(kinds[k], p), 0);
        ck_assert_int_eq(shard_read_count(p), 1); /* attributes are fine */
        ck_assert_msg(shard_read(p, SHARD_IMAGES, 0, 1, &r) == -1, "bad %s accepted", kinds[k]);
    }
    /* a truncated copy of a good shard */
    uint8_t px[2000 * 6], lab[2000];
    shard s = sample_shard(px, lab, 2000);
    s.shard_index = 0;
    s.shard_count = 1;
    snprintf(p, sizeof p, "%s/good.h5", dir);
    ck_assert_int_eq(shard_write(p, &s, "unit test", "train"), 0);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size / 2), 0);
    ck_assert_int_eq(shard_read(p, SHARD_IMAGES, 0, 1, &r), -1);
    /* not HDF5 at all */
    snprintf(p, sizeof p, "%s/text.h5", dir);
    FILE *f = fopen(p, "w");
    fputs("hello\n", f);
    fclose(f);
    ck_assert_int_eq(shard_read(p, SHARD_IMAGES, 0, 1, &r), -1);
    remove_tmpdir();
}
END_TEST

START_TEST(idx_files)
{
    make_tmpdir();
    char p[300];
    snprintf(p, sizeof p, "%s/ok.idx", dir);
    const uint8_t good[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    FILE *f = fopen(p, "wb");
    fwrite(good, 1, sizeof good, f);
    fclose(f);
    idx_array a;
    ck_assert_int_eq(idx_read(p, &a), 0);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_uint_eq(a.dims[0], 2);
    ck_assert_uint_eq(a.dims[1], 3);
    ck_assert_uint_eq(a.data[5], 6);
    idx_free(&a);
    f = fopen(p, "wb");
    fwrite(good, 1, sizeof good - 1, f); /* one byte short */
    fclose(f);
    ck_assert_int_eq(idx_read(p, &a), -1);
    f = fopen(p, "wb");
    const uint8_t floats[] = {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    fwrite(floats, 1, sizeof floats, f);
    fclose(f);
    ck_assert_int_eq(idx_read(p, &a), -1);
    snprintf(p, sizeof p, "%s/none.idx", dir);
    ck_assert_int_eq(idx_read(p, &a), -1);
    remove_tmpdir();
}
END_TEST

/* Two tensors, three groups, as the trainer writes them. */
static ckpt_tensor tensors[2] = {
    {"enc.fc1.weight", 2, {3, 4}, 0},
    {"enc.fc1.bias", 1, {3}, 12},
};
static const char *const groups[3] = {"params", "adam_m", "adam_v"};

static void fill(float *b, float base)
{
    for (int i = 0; i < 15; i++)
        b[i] = base + 0.125f * (float)i;
}

START_TEST(checkpoint_round_trip)
{
    make_tmpdir();
    float p[15], m[15], v[15];
    fill(p, 1234.5f);
    fill(m, -2.0f);
    fill(v, 0.5f);
    float *bufs[3] = {p, m, v};
    ckpt_meta meta = {.model = "vae", .program_version = "test", .step = 200,
                      .data_position = 3200, .seed = 5, .world_size = 2, .lanes = 8};
    ckpt_kv cfg[2] = {{"lr", "0.001"}, {"hidden", "512,256"}};
    char path[300], tmp[310];
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_eq(checkpoint_write(path, &meta, cfg, 2, tensors, 2, groups, bufs, 3), 0);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* renamed away */

    ckpt_meta got;
    ckpt_kv *kv;
    int n;
    ck_assert_int_eq(checkpoint_read_meta(path, &got, &kv, &n), 0);
    ck_assert_str_eq(got.model, "vae");
    ck_assert_int_eq(got.step, 200);
    ck_assert_int_eq(got.data_position, 3200);
    ck_assert_int_eq(got.seed, 5);
    ck_assert_int_eq(got.world_size, 2);
    ck_assert_int_eq(got.lanes, 8);
    ck_assert_int_eq(n, 2);
    int seen = 0;
    for (int i = 0; i < n; i++)
        seen += (!strcmp(kv[i].key, "lr") && !strcmp(kv[i].value, "0.001")) +
                (!strcmp(kv[i].key, "hidden") && !strcmp(kv[i].value, "512,256"));
    ck_assert_int_eq(seen, 2);
    free(kv);
    float p2[15], m2[15], v2[15];
    float *bufs2[3] = {p2, m2, v2};
    ck_assert_int_eq(checkpoint_read_tensors(path, &got, tensors, 2, groups, bufs2, 3), 0);
    ck_assert_int_eq(memcmp(p, p2, sizeof p), 0);
    ck_assert_int_eq(memcmp(m, m2, sizeof m), 0);
    ck_assert_int_eq(memcmp(v, v2, sizeof v), 0);

    /* another shape is refused */
    ckpt_tensor other[2] = {{"enc.fc1.weight", 2, {4, 3}, 0}, {"enc.fc1.bias", 1, {3}, 12}};
    ck_assert_int_eq(checkpoint_read_tensors(path, &got, other, 2, groups, bufs2, 3), -1);
    /* another model's tensor names are refused */
    ckpt_tensor gpt[1] = {{"wte", 2, {3, 4}, 0}};
    ck_assert_int_eq(checkpoint_read_tensors(path, &got, gpt, 1, groups, bufs2, 3), -1);

    /* a failed write leaves the good checkpoint as it was */
    char bad[320];
    snprintf(bad, sizeof bad, "%s/no/such/folder/ckpt.h5", dir);
    ck_assert_int_eq(checkpoint_write(bad, &meta, cfg, 2, tensors, 2, groups, bufs, 3), -1);
    ck_assert_int_eq(checkpoint_read_tensors(path, &got, tensors, 2, groups, bufs2, 3), 0);
    remove_tmpdir();
}
END_TEST

/* One parameter changed on disk: the checksum catches it. */
START_TEST(checkpoint_checksum_catches_damage)
{
    make_tmpdir();
    float p[15], m[15], v[15];
    fill(p, 1234.5f);
    fill(m, 0);
    fill(v, 0);
    float *bufs[3] = {p, m, v};
    ckpt_meta meta = {.model = "vae", .program_version = "test", .step = 1, .lanes = 1,
                      .world_size = 1};
    char path[300];
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    ck_assert_int_eq(checkpoint_write(path, &meta, NULL, 0, tensors, 2, groups, bufs, 3), 0);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *bytes = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_eq(fread(bytes, 1, (size_t)size, f), size);
    long at = -1;
    for (long i = 0; i + 4 <= size && at < 0; i++)
        if (!memcmp(bytes + i, &p[5], 4))
            at = i;
    ck_assert_int_ge(at, 0);
    fseek(f, at, SEEK_SET);
    fputc(bytes[at] ^ 1, f); /* lowest mantissa bit of one weight */
    fclose(f);
    free(bytes);
    ckpt_meta got;
    ckpt_kv *kv;
    int n;
    ck_assert_int_eq(checkpoint_read_meta(path, &got, &kv, &n), 0);
    free(kv);
    float p2[15], m2[15], v2[15];
    float *bufs2[3] = {p2, m2, v2};
    ck_assert_int_eq(checkpoint_read_tensors(path, &got, tensors, 2, groups, bufs2, 3), -1);
    remove_tmpdir();
}
END_TEST

/* Damage done with HDF5 itself, as a disk or a person might. */
static void damage_value(const char *path, const char *dset, int index, float value)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    float buf[16];
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    buf[index] = value;
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    H5Dclose(d);
    H5Fclose(f);
}

static void damage_as_double(const char *path, const char *dset, hsize_t n)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    double buf[16] = {0};
    ck_assert_int_ge(H5Ldelete(f, dset, H5P_DEFAULT), 0);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, dset, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

static void damage_attr(const char *path, const char *obj, const char *name, long long value,
                        int remove)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (remove) {
        ck_assert_int_ge(H5Adelete(o, name), 0);
    } else if (!strcmp(obj, "/config")) {
        hid_t a = H5Aopen(o, name, H5P_DEFAULT);
        hid_t ty = H5Aget_type(a);
        char buf[64] = "0.5";
        ck_assert_int_ge(H5Awrite(a, ty, buf), 0);
        H5Tclose(ty);
        H5Aclose(a);
    } else {
        hid_t a = H5Aopen(o, name, H5P_DEFAULT);
        hid_t sp = H5Aget_space(a);
        int n = (int)H5Sget_simple_extent_npoints(sp);
        long long v[CKPT_MAX_TENSORS];
        for (int i = 0; i < n && i < CKPT_MAX_TENSORS; i++)
            v[i] = value;
        ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_LLONG, v), 0);
        H5Sclose(sp);
        H5Aclose(a);
    }
    H5Oclose(o);
    H5Fclose(f);
}

/* What reading a damaged copy of a good checkpoint says: meta, then
 * tensors; the one line, or "" when it was accepted. */
static const char *read_back(const char *path)
{
    static char line[1024];
    ckpt_meta got;
    ckpt_kv *kv = NULL;
    int n;
    float p2[15], m2[15], v2[15];
    float *bufs2[3] = {p2, m2, v2};
    capture_begin();
    int rc = checkpoint_read_meta(path, &got, &kv, &n);
    if (rc == 0)
        rc = checkpoint_read_tensors(path, &got, tensors, 2, groups, bufs2, 3);
    snprintf(line, sizeof line, "%.1000s", capture_end());
    free(kv);
    ck_assert_int_eq(rc != 0, line[0] != 0);
    return line;
}

/* Each kind of damage is refused, and the line names it. */
START_TEST(checkpoint_damage_is_named)
{
    make_tmpdir();
    float p[15], m[15], v[15];
    fill(p, 3.0f);
    fill(m, -1.0f);
    fill(v, 0.25f);
    float *bufs[3] = {p, m, v};
    ckpt_meta meta = {.model = "vae", .program_version = "test", .step = 7, .lanes = 8,
                      .world_size = 2, .nexps = 2, .exps = {20, 31}};
    ckpt_kv cfg[2] = {{"lr", "0.001"}, {"hidden", "512,256"}};
    char good[300], bad[300], cmd[700];
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    ck_assert_int_eq(checkpoint_write(good, &meta, cfg, 2, tensors, 2, groups, bufs, 3), 0);
    ck_assert_str_eq(read_back(good), "");
    struct {
        int kind;
        const char *what;
        const char *expect;
    } cases[] = {
        {0, "/adam_m/enc.fc1.bias", "tensor /adam_m/enc.fc1.bias holds nan at index 1"},
        {1, "/params/enc.fc1.weight", "tensor /params/enc.fc1.weight holds inf at index 1"},
        {2, "/adam_v/enc.fc1.weight", "the checksum of /adam_v does not match"},
        {3, "/adam_m/enc.fc1.bias", "the checksum of /adam_m does not match"},
        {4, "step", "the checksum of the root attributes"},
        {5, "reduce_exponents", "the checksum of the reduce_exponents attribute"},
        {6, "lr", "the checksum of /config does not match"},
        {7, "seed", "lacks the root attribute \"seed\""},
        {8, "adam_v_fnv1a64", "lacks the root attribute \"adam_v_fnv1a64\""},
        {9, "/adam_v/enc.fc1.bias", "tensor /adam_v/enc.fc1.bias is not float32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "cp %s %s", good, bad);
        ck_assert_int_eq(system(cmd), 0);
        switch (cases[i].kind) {
        case 0: damage_value(bad, cases[i].what, 1, NAN); break;
        case 1: damage_value(bad, cases[i].what, 1, INFINITY); break;
        case 2: damage_value(bad, cases[i].what, 3, 0.3f); break;
        case 3: damage_value(bad, cases[i].what, 0, -1.5f); break;
        case 4: damage_attr(bad, "/", cases[i].what, 8, 0); break;
        case 5: damage_attr(bad, "/", cases[i].what, 21, 0); break;
        case 6: damage_attr(bad, "/config", cases[i].what, 0, 0); break;
        case 7:
        case 8: damage_attr(bad, "/", cases[i].what, 0, 1); break;
        case 9: damage_as_double(bad, cases[i].what, 3); break;
        }
        const char *line = read_back(bad);
        ck_assert_msg(strstr(line, cases[i].expect) && strchr(line, '\n') == line + strlen(line) - 1,
                      "damage %zu (%s): \"%s\"", i, cases[i].what, line);
    }
    /* nothing non-finite is written, and the good file stays as it was */
    v[4] = NAN;
    capture_begin();
    int rc = checkpoint_write(good, &meta, cfg, 2, tensors, 2, groups, bufs, 3);
    const char *line = capture_end();
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(line, "not written: /adam_v/enc.fc1.weight holds nan at index 4 (step 7)"),
                  "%s", line);
    snprintf(cmd, sizeof cmd, "%s.tmp", good);
    ck_assert_int_ne(access(cmd, F_OK), 0);
    ck_assert_str_eq(read_back(good), "");
    remove_tmpdir();
}
END_TEST

/* The word tokenizer: words with inner apostrophes, digit runs, single
 * marks, newlines; byte counts that add up to the text. */
START_TEST(word_tokens)
{
    const char *text = "In the beginning, God's LORD\n  12 said:'tis\n";
    const char *want[] = {"In", "the", "beginning", ",", "God's", "LORD", "\n", "12",
                          "said", ":", "'", "tis", "\n"};
    const size_t n = strlen(text);
    word_span spans[32];
    size_t k = words_split((const uint8_t *)text, n, spans);
    ck_assert_int_eq(k, 13);
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
        ck_assert_int_eq(spans[i].len, strlen(want[i]));
        ck_assert_int_eq(memcmp(text + spans[i].start, want[i], spans[i].len), 0);
        total += spans[i].bytes;
    }
    ck_assert_int_eq(total, n);
    ck_assert_int_eq(spans[1].bytes, 4); /* " the" */
    ck_assert_int_eq(spans[7].bytes, 4); /* "  12" */
    /* the vocabulary: by count, then byte order; the rest is <unk> */
    const char *corpus = "b a b c b a d";
    word_span cs[8];
    size_t m = words_split((const uint8_t *)corpus, strlen(corpus), cs);
    vocab v;
    ck_assert_int_eq(vocab_build(&v, (const uint8_t *)corpus, cs, m, 3), 0);
    ck_assert_int_eq(v.size, 3);
    ck_assert_str_eq(v.tok[0], "<unk>");
    ck_assert_str_eq(v.tok[1], "b");
    ck_assert_str_eq(v.tok[2], "a");
    ck_assert_int_eq(words_id(&v, (const uint8_t *)"b", 1), 1);
    ck_assert_int_eq(words_id(&v, (const uint8_t *)"c", 1), WORDS_UNKNOWN);
    ck_assert_int_eq(words_id(&v, (const uint8_t *)"ab", 2), WORDS_UNKNOWN);
    vocab w;
    ck_assert_int_eq(vocab_from_blob(&w, v.blob, v.blob_bytes), 0);
    ck_assert_int_eq(w.size, 3);
    ck_assert_str_eq(w.tok[2], "a");
    vocab_free(&w);
    /* spaces between words, none before a closing mark or after a newline */
    char out[64];
    size_t len = words_detok(&v, -1, 1, out);
    len += words_detok(&v, 1, 2, out + len);
    ck_assert_int_eq(len, 3);
    ck_assert_int_eq(memcmp(out, "b a", 3), 0);
    vocab_free(&v);
    capture_begin();
    int bad = vocab_from_blob(&w, (const uint8_t *)"a\0b\0", 4);
    capture_end();
    ck_assert_int_eq(bad, -1);
}
END_TEST

/* A word shard: uint16 ids, their byte counts and the vocabulary, back as
 * they went in; and a checkpoint's vocabulary with its checksum. */
START_TEST(word_shard_and_checkpoint_vocab)
{
    make_tmpdir();
    uint16_t ids[5] = {3, 0, 65535, 1, 2};
    uint8_t units[5] = {3, 5, 1, 255, 2};
    const uint8_t blob[] = "<unk>\0a\0bb\0c";
    shard s = {.kind = SHARD_TOKENS, .shard_index = 0, .shard_count = 1, .n = 5, .h = 1, .w = 1,
               .width = 2, .data = (uint8_t *)ids, .unit_bytes = units,
               .vocab = (uint8_t *)blob, .vocab_bytes = sizeof blob};
    char path[300];
    snprintf(path, sizeof path, "%s/w.h5", dir);
    ck_assert_int_eq(shard_write(path, &s, "unit test", "train"), 0);
    shard r;
    ck_assert_int_eq(shard_read(path, SHARD_TOKENS, 0, 1, &r), 0);
    ck_assert_int_eq(r.width, 2);
    ck_assert_int_eq(r.n, 5);
    ck_assert_int_eq(memcmp(r.data, ids, sizeof ids), 0);
    ck_assert_int_eq(memcmp(r.unit_bytes, units, sizeof units), 0);
    ck_assert_int_eq(r.vocab_bytes, sizeof blob);
    ck_assert_int_eq(memcmp(r.vocab, blob, sizeof blob), 0);
    shard_free(&r);

    float p[15], m[15], v[15];
    fill(p, 1.0f);
    fill(m, 0.0f);
    fill(v, 0.5f);
    float *bufs[3] = {p, m, v};
    ckpt_meta meta = {.model = "lstm", .program_version = "test", .step = 3, .lanes = 8,
                      .world_size = 1, .vocab = blob, .vocab_bytes = sizeof blob};
    snprintf(path, sizeof path, "%s/c.h5", dir);
    ck_assert_int_eq(checkpoint_write(path, &meta, NULL, 0, tensors, 2, groups, bufs, 3), 0);
    uint8_t *got;
    size_t n;
    ck_assert_int_eq(checkpoint_read_vocab(path, &got, &n), 0);
    ck_assert_int_eq(n, sizeof blob);
    ck_assert_int_eq(memcmp(got, blob, n), 0);
    free(got);
    /* damaged: one byte of the stored vocabulary changed */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "vocab", H5P_DEFAULT);
    uint8_t copy[sizeof blob];
    memcpy(copy, blob, sizeof blob);
    copy[7] = 'z';
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, copy);
    H5Dclose(d);
    H5Fclose(f);
    capture_begin();
    int rc = checkpoint_read_vocab(path, &got, &n);
    const char *line = capture_end();
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(line, "/vocab is unreadable or its checksum does not match"));
    remove_tmpdir();
}
END_TEST

/* The guess table: the most frequent next byte after each context, longest
 * context first, chained; well-formedness; and the checkpoint blob /draft
 * round trip (the table is stored beside /vocab with its own checksum). */
START_TEST(draft_table)
{
    const char *text = "in the beginning the heaven and the earth. and the earth was";
    size_t bytes;
    uint8_t *blob = draft_build((const uint8_t *)text, strlen(text), &bytes);
    ck_assert_ptr_nonnull(blob);
    ck_assert(draft_valid(blob, bytes));
    ck_assert(!draft_valid(blob, bytes - 8));
    int32_t ctx[16], out[8];
    const char *prompt = "and the ea";
    for (int i = 0; i < 10; i++)
        ctx[i] = (uint8_t)prompt[i];
    ck_assert_int_eq(draft_guess(blob, ctx, 10, out, 4), 4);
    char got[5] = {(char)out[0], (char)out[1], (char)out[2], (char)out[3], 0};
    /* "the ea" came before "rth" twice; then "." once and " " once: a tie,
     * the smaller byte */
    ck_assert_str_eq(got, "rth ");
    /* " t" -> "h" (always), then "th" -> "e", then "he" -> " " (2 of 3) */
    ctx[0] = ' ', ctx[1] = 't';
    ck_assert_int_eq(draft_guess(blob, ctx, 2, out, 3), 3);
    ck_assert_int_eq(out[0], 'h');
    ck_assert_int_eq(out[1], 'e');
    ck_assert_int_eq(out[2], ' ');
    ctx[0] = 'Q'; /* a byte never seen: no guess */
    ck_assert_int_eq(draft_guess(blob, ctx, 1, out, 3), 0);

    make_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/d.h5", dir);
    float p[15], m[15], v[15];
    fill(p, 1.0f);
    fill(m, 0.0f);
    fill(v, 0.5f);
    float *bufs[3] = {p, m, v};
    ckpt_meta meta = {.model = "gpt", .program_version = "test", .step = 3, .lanes = 8,
                      .world_size = 1, .draft = blob, .draft_bytes = bytes};
    ck_assert_int_eq(checkpoint_write(path, &meta, NULL, 0, tensors, 2, groups, bufs, 3), 0);
    uint8_t *back;
    size_t n;
    ck_assert_int_eq(checkpoint_read_blob(path, "draft", &back, &n), 0);
    ck_assert_int_eq(n, bytes);
    ck_assert_int_eq(memcmp(back, blob, n), 0);
    free(back);
    ck_assert_int_eq(checkpoint_read_blob(path, "vocab", &back, &n), 0); /* none: no error */
    ck_assert_ptr_null(back);
    remove_tmpdir();
    free(blob);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, shard_round_trip_and_identical_bytes);
    tcase_add_test(tc, token_shard_round_trip);
    tcase_add_test(tc, pair_shard_round_trip);
    tcase_add_test(tc, bad_shards_are_refused);
    tcase_add_test(tc, idx_files);
    tcase_add_test(tc, checkpoint_round_trip);
    tcase_add_test(tc, checkpoint_checksum_catches_damage);
    tcase_add_test(tc, checkpoint_damage_is_named);
    tcase_add_test(tc, word_tokens);
    tcase_add_test(tc, word_shard_and_checkpoint_vocab);
    tcase_add_test(tc, draft_table);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
