/* trainer bench-comm: the program's own reductions over ranks, timed alone,
 * for the step-time model of jobs/scaling.sh.
 *
 * For each size (parameters), on buffers of that many floats:
 *   tree:    the lane tree's sum (comm_tree_rs over the whole buffer as one
 *            piece, then comm_tree_allgather): the VAE, GAN, Glow and
 *            classifier in exact mode;
 *   lanesum: the lane sum's (a reduce-scatter of doubles, then an allgather
 *            of floats): the GPT, LSTM and translator in exact mode.
 * Each is run --repeats times after two warm-up runs, every rank starting
 * together (a barrier), and the slowest rank's time of each run counts; the
 * median is printed, with the bytes one rank sends: (np - 1)/np of the
 * buffer each way, 4 + 4 bytes a parameter in the tree, 8 + 4 in the lane
 * sum, in 2 log2(np) messages. */
#include "comm/comm.h"
#include "train.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest size: one piece of the tree's sum (comm.h), 2^27 floats. */
enum { MAX_SIZES = 32, MAX_SIZE = 1 << 27 };

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n times. */
static double median_of(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static double slowest(double dt)
{
    float f = (float)dt;
    comm_max_float(&f, 1);
    return f;
}

static int parse_sizes(const char *s, size_t *sizes, int *n)
{
    *n = 0;
    while (*s) {
        char *end;
        const double v = strtod(s, &end);
        if (end == s || v < 1 || v > MAX_SIZE || v != (double)(size_t)v || *n == MAX_SIZES)
            return -1;
        sizes[(*n)++] = (size_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return *n > 0 ? 0 : -1;
}

int cmd_bench_comm(int argc, char **argv)
{
    size_t sizes[MAX_SIZES];
    int nsizes = 0, repeats = 20;
    parse_sizes("16384,65536,262144,1048576,4194304", sizes, &nsizes);
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--sizes") && v) {
            bad = parse_sizes(v, sizes, &nsizes) != 0;
            if (bad && comm_rank() == 0)
                fprintf(stderr, "trainer: --sizes wants parameter counts from 1 to %d, at most "
                                "%d, separated by commas, not \"%s\"\n", MAX_SIZE, MAX_SIZES, v);
            i++;
        } else if (!strcmp(argv[i], "--repeats") && v) {
            char *end;
            const long r = strtol(v, &end, 10);
            bad = *end || r < 1 || r > 100000;
            if (bad && comm_rank() == 0)
                fprintf(stderr, "trainer: --repeats wants a count from 1 to 100000, not \"%s\"\n", v);
            repeats = (int)r;
            i++;
        } else {
            bad = 1;
            if (comm_rank() == 0)
                fprintf(stderr, "trainer: bench-comm takes --sizes N,N,... and --repeats N, not "
                                "\"%s\"%s\n", argv[i], v ? "" : " without a value");
        }
    }
    if (bad)
        return EXIT_BAD_INPUT;
    const int np = comm_size();
    if (np & (np - 1)) {
        if (comm_rank() == 0)
            fprintf(stderr, "trainer: bench-comm times the lane tree, which needs a power of two "
                            "ranks, not %d\n", np);
        return EXIT_BAD_INPUT;
    }
    size_t most = 0;
    for (int k = 0; k < nsizes; k++)
        most = sizes[k] > most ? sizes[k] : most;
    float *buf = xcalloc(most, sizeof(float), "bench buffer");
    float *tmp = xcalloc(most, sizeof(float), "bench buffer");
    double *acc = xcalloc(most, sizeof(double), "bench buffer");
    double *t = xcalloc((size_t)repeats, sizeof(double), "bench times");
    comm_tree_rs *rs = comm_tree_rs_new();
    if (comm_rank() == 0)
        printf("# bench-comm: %d ranks, %d repeats; median seconds of the slowest rank\n"
               "# params  tree_bytes_sent  tree_s  lanesum_bytes_sent  lanesum_s\n",
               np, repeats);
    for (int k = 0; k < nsizes; k++) {
        const size_t n = sizes[k];
        double med[2];
        for (int which = 0; which < 2; which++) {
            for (int r = -2; r < repeats; r++) {
                for (size_t i = 0; i < n; i++) {
                    buf[i] = (float)(i % 97) * 0.01f;
                    acc[i] = (double)(i % 89);
                }
                comm_barrier();
                const double t0 = now_seconds();
                if (which == 0) {
                    comm_tree_rs_begin(rs, buf, tmp, n, 4096);
                    comm_tree_rs_add(rs, 0, 0, n);
                    comm_tree_rs_end(rs);
                    comm_tree_allgather(buf, n, n, 4096);
                } else {
                    comm_reduce_scatter_double(acc, n);
                    size_t lo, hi;
                    comm_block(n, comm_rank(), &lo, &hi);
                    for (size_t i = lo; i < hi; i++)
                        buf[i] = (float)acc[i];
                    comm_allgather_float(buf, n);
                }
                const double dt = slowest(now_seconds() - t0);
                if (r >= 0)
                    t[r] = dt;
            }
            med[which] = median_of(t, repeats);
        }
        const double share = (double)(np - 1) / np;
        if (comm_rank() == 0)
            printf("%zu %.0f %.6g %.0f %.6g\n", n, 8.0 * n * share, med[0], 12.0 * n * share,
                   med[1]);
    }
    fflush(stdout);
    comm_tree_rs_free(rs);
    free(buf);
    free(tmp);
    free(acc);
    free(t);
    return EXIT_DONE;
}
