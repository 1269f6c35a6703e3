/* The inspect command: what a user asks of a checkpoint before resuming it
 * (model, step, epoch, who wrote it with which BLAS kernel, the
 * configuration, every tensor and its parameter count, and the verdict of
 * every checksum), without MPI and without the data. */
#include "train.h"

#include "io/checkpoint.h"
#include "bpe.h"
#include "io/shards.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_shape(const ckpt_entry *e)
{
    char s[64] = "";
    for (int k = 0; k < e->ndim; k++)
        snprintf(s + strlen(s), sizeof s - strlen(s), "%s%zu", k ? " x " : "", e->shape[k]);
    printf("  %-28s %-14s %10zu\n", e->name, s, e->numel);
}

/* A pair shard: its counts, its vocabulary and its first pairs decoded. */
static int inspect_pairs(const char *path)
{
    shard s;
    bpe b;
    if (shard_read(path, SHARD_PAIRS, -1, -1, &s) != 0)
        return EXIT_BAD_INPUT;
    if (bpe_from_merges(&b, (const uint16_t(*)[2])s.merges, (int)s.nmerges) != 0) {
        shard_free(&s);
        return EXIT_BAD_INPUT;
    }
    printf("pairs: %s, shard %d of %d: %zu pairs, %zu source and %zu target tokens; byte-level "
           "BPE of %d tokens (%zu merges)\n",
           path, s.shard_index, s.shard_count, s.n, s.src_n, s.tgt_n, b.vocab, s.nmerges);
    const uint16_t *src = s.src, *tgt = s.tgt;
    const char *ref = (const char *)s.refs;
    static uint8_t text[2][65536];
    for (size_t i = 0; i < s.n && i < 5; i++) {
        const size_t a = bpe_decode(&b, src, s.src_len[i], text[0], sizeof text[0] - 1);
        const size_t z = bpe_decode(&b, tgt, s.tgt_len[i], text[1], sizeof text[1] - 1);
        printf("%s (%d + %d tokens)\n  %.*s\n  %.*s\n", ref ? ref : "?", s.src_len[i],
               s.tgt_len[i], (int)a, text[0], (int)z, text[1]);
        src += s.src_len[i];
        tgt += s.tgt_len[i];
        ref += ref ? strlen(ref) + 1 : 0;
    }
    bpe_free(&b);
    shard_free(&s);
    return EXIT_DONE;
}

int cmd_inspect(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: trainer inspect CHECKPOINT | PAIR_SHARD\n\nPrints the checkpoint's model, "
               "step, epoch, configuration, tensors and checksums' verdicts; or a pair shard's "
               "counts and first pairs, decoded.\n");
        return EXIT_DONE;
    }
    if (argc != 2) {
        fprintf(stderr, "trainer: inspect: give one checkpoint file (trainer inspect PATH)\n");
        return EXIT_BAD_INPUT;
    }
    const char *path = argv[1];
    io_quiet_hdf5();
    if (shard_is_pairs(path))
        return inspect_pairs(path);
    ckpt_meta m;
    ckpt_kv *kv = NULL;
    int n = 0;
    if (checkpoint_read_meta(path, &m, &kv, &n) != 0)
        return EXIT_BAD_INPUT; /* the line says what is wrong */
    ckpt_description d;
    if (checkpoint_describe(path, &d) != 0) {
        free(kv);
        return EXIT_BAD_INPUT;
    }
    printf("checkpoint: %s\n", path);
    printf("model: %s (checkpoint format %d, written by trainer %s)\n", m.model, m.format_version,
           m.program_version);
    printf("step: %lld, epoch %.2f\n", m.step, m.epoch);
    printf("written by: -np %d, %d lanes, seed %lld, OpenBLAS kernel %s\n", m.world_size, m.lanes,
           m.seed, m.blas_kernel[0] ? m.blas_kernel : "(not recorded)");
    printf("configuration:\n");
    for (int i = 0; i < n; i++)
        printf("  %s = %s\n", kv[i].key, kv[i].value);
    printf("tensors: %d, %zu parameters\n", d.n, d.total);
    for (int i = 0; i < d.n; i++)
        print_shape(&d.t[i]);
    printf("checksums: root attributes, /config and reduce_exponents ok; /params %s; /adam_m %s; "
           "/adam_v %s; /vocab %s; /draft %s\n",
           d.verdict[0], d.verdict[1], d.verdict[2], d.verdict[3], d.verdict[4]);
    int bad = 0; /* a damaged part (not one that older files cannot show) */
    for (int k = 0; k < 5; k++)
        bad |= !strncmp(d.verdict[k], "checksum", 8) || !strncmp(d.verdict[k], "holds", 5) ||
               !strncmp(d.verdict[k], "missing", 7);
    checkpoint_description_free(&d);
    free(kv);
    return bad ? EXIT_BAD_INPUT : EXIT_DONE;
}
