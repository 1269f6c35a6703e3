#include "comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MPICHECK(call)                                                                  \
    do {                                                                                \
        int mpicheck_rc = (call);                                                       \
        if (mpicheck_rc != MPI_SUCCESS) {                                               \
            char mpicheck_msg[MPI_MAX_ERROR_STRING];                                    \
            int mpicheck_len = 0;                                                       \
            MPI_Error_string(mpicheck_rc, mpicheck_msg, &mpicheck_len);                 \
            fprintf(stderr, "trainer: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, \
                    mpicheck_msg);                                                      \
            comm_abort(3);                                                              \
        }                                                                               \
    } while (0)

static int g_rank, g_size = 1, g_local_size = 1, g_ready;

#ifdef TRAINER_KEEP_MODULES
/* Sanitizer builds only: Open MPI unloads its components (dlclose) at
 * MPI_Finalize, before LeakSanitizer looks; their allocations would then be
 * reported from "<unknown module>" and no suppression could name them. Kept
 * mapped, they are named (mca_*, libopen-pal) and tests/lsan.supp leaves
 * them out, while every leak of our own is still reported. */
int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
#endif

/* Lane threads and BLAS threads run beside MPI, but only the main thread
 * ever calls it: FUNNELED is the level to ask for, and to check. */
void comm_init(int *argc, char ***argv)
{
    int provided = MPI_THREAD_SINGLE;
    MPICHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPICHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
    MPICHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
    MPI_Comm node;
    MPICHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    MPICHECK(MPI_Comm_size(node, &g_local_size));
    MPI_Comm_free(&node);
    g_ready = 1;
    if (provided < MPI_THREAD_FUNNELED) { /* the same library on every rank: all stop */
        fprintf(stderr, "trainer: this MPI library gives thread level %d, below MPI_THREAD_FUNNELED\n",
                provided);
        comm_abort(1);
    }
}

void comm_finalize(void)
{
    if (g_ready)
        MPI_Finalize();
    g_ready = 0;
}

int comm_rank(void) { return g_rank; }
int comm_size(void) { return g_size; }
int comm_local_size(void) { return g_local_size; }

_Noreturn void comm_abort(int status)
{
    fflush(stdout);
    fflush(stderr);
    if (g_ready && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
    if (g_ready)
        MPI_Finalize();
    exit(status);
}

int comm_max_int(int flag)
{
    int out = flag;
    if (g_size > 1)
        MPICHECK(MPI_Allreduce(&flag, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return out;
}

void comm_barrier(void) { MPICHECK(MPI_Barrier(MPI_COMM_WORLD)); }

/* MPI counts are int: large buffers go in pieces. */
#define COMM_CHUNK ((size_t)1 << 28)

static void allreduce_inplace(void *buf, size_t n, size_t elem, MPI_Datatype t, MPI_Op op)
{
    if (g_size == 1)
        return;
    for (size_t i = 0; i < n; i += COMM_CHUNK) {
        size_t m = n - i < COMM_CHUNK ? n - i : COMM_CHUNK;
        MPICHECK(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * elem, (int)m, t, op,
                               MPI_COMM_WORLD));
    }
}

void comm_sum_double(double *buf, size_t n) { allreduce_inplace(buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM); }
void comm_sum_float(float *buf, size_t n) { allreduce_inplace(buf, n, sizeof *buf, MPI_FLOAT, MPI_SUM); }
void comm_max_float(float *buf, size_t n) { allreduce_inplace(buf, n, sizeof *buf, MPI_FLOAT, MPI_MAX); }

/* The halves of [a, b) at one level: the split is a multiple of align
 * from a, the same on both sides of a pair. */
static size_t split(size_t a, size_t b, size_t align)
{
    return a + (b - a) / 2 / align * align;
}

static void check_power_of_two(void)
{
    if (g_size & (g_size - 1)) {
        fprintf(stderr, "trainer: internal error: a tree sum over %d ranks (not a power of two)\n",
                g_size);
        comm_abort(1);
    }
}

/* The levels of a tree over this job's ranks: log2(np). */
static int tree_levels(void)
{
    int levels = 0;
    for (int d = g_size / 2; d >= 1; d /= 2)
        levels++;
    return levels;
}

/* The ranges of the recursive halving of [a, b): at level l the pair holds
 * [lo[l], hi[l]) and splits it at mid[l]. */
static void halving(size_t a, size_t b, size_t align, size_t *lo, size_t *mid, size_t *hi)
{
    for (int d = g_size / 2, l = 0; d >= 1; d /= 2, l++) {
        const size_t m = split(a, b, align);
        lo[l] = a;
        mid[l] = m;
        hi[l] = b;
        if (g_rank & d)
            a = m;
        else
            b = m;
    }
}

/* Recursive doubling, level by level, every piece's exchange posted at
 * once: one wait a level rather than one a piece. */
void comm_tree_allgather(float *buf, size_t n, size_t piece, size_t align)
{
    check_power_of_two();
    if (g_size == 1 || n == 0)
        return;
    if (piece == 0 || piece >= COMM_CHUNK) {
        fprintf(stderr, "trainer: internal error: an allgather in pieces of %zu\n", piece);
        comm_abort(1);
    }
    const size_t np = (n + piece - 1) / piece;
    MPI_Request *req = malloc(2 * np * sizeof *req);
    if (!req) {
        fprintf(stderr, "trainer: out of memory for an allgather\n");
        comm_abort(1);
    }
    for (int l = tree_levels() - 1, d = 1; l >= 0; l--, d *= 2) {
        const int partner = g_rank ^ d, upper = (g_rank & d) != 0;
        for (size_t k = 0; k < np; k++) {
            size_t lo[32], mid[32], hi[32];
            const size_t at = k * piece;
            halving(at, n - at < piece ? n : at + piece, align, lo, mid, hi);
            /* this rank holds its half of level l, the partner the other */
            const size_t a = upper ? mid[l] : lo[l], b = upper ? hi[l] : mid[l];
            const size_t oa = upper ? lo[l] : mid[l], ob = upper ? mid[l] : hi[l];
            MPICHECK(MPI_Irecv(buf + oa, (int)(ob - oa), MPI_FLOAT, partner, 9, MPI_COMM_WORLD,
                               &req[2 * k]));
            MPICHECK(MPI_Isend(buf + a, (int)(b - a), MPI_FLOAT, partner, 9, MPI_COMM_WORLD,
                               &req[2 * k + 1]));
        }
        MPICHECK(MPI_Waitall((int)(2 * np), req, MPI_STATUSES_IGNORE));
    }
    free(req);
}

/* A piece's way up the tree: at each level the pair splits the part of the
 * piece both hold, each sends the partner's half and adds the partner's
 * copy of its own; both add the same two numbers, so the sum has the
 * same bits on whichever rank it is made. */
typedef struct {
    size_t from, to; /* the piece */
    size_t a, b;     /* the part this rank holds before the level in flight */
    int level;       /* the level in flight; levels when done */
    MPI_Request req[2];
} rs_piece;

struct comm_tree_rs {
    float *buf, *tmp;
    size_t n, align, covered;
    int levels, npieces, pending;
    rs_piece piece[COMM_TREE_RS_PIECES];
    unsigned char added[COMM_TREE_RS_PIECES];
};

comm_tree_rs *comm_tree_rs_new(void)
{
    comm_tree_rs *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "trainer: out of memory for the bucketed sum\n");
        comm_abort(1);
    }
    return s;
}

void comm_tree_rs_free(comm_tree_rs *s) { free(s); }

void comm_tree_rs_begin(comm_tree_rs *s, float *buf, float *tmp, size_t n, size_t align)
{
    check_power_of_two();
    s->buf = buf;
    s->tmp = tmp;
    s->n = n;
    s->align = align;
    s->covered = 0;
    s->npieces = s->pending = 0;
    s->levels = tree_levels();
    memset(s->added, 0, sizeof s->added);
}

/* Level l's partner distance: np/2 first. */
static int rs_distance(int l) { return (g_size >> 1) >> l; }

/* The kept and the sent half of [p->a, p->b) at the level in flight, in
 * buf's coordinates (p->a is a multiple of align from the piece's start). */
static void rs_halves(const comm_tree_rs *s, const rs_piece *p, size_t *ka, size_t *kb,
                      size_t *sa, size_t *sb)
{
    const int upper = (g_rank & rs_distance(p->level)) != 0;
    const size_t m = split(p->a, p->b, s->align);
    *ka = upper ? m : p->a;
    *kb = upper ? p->b : m;
    *sa = upper ? p->a : m;
    *sb = upper ? m : p->b;
}

/* Posts the level in flight of piece id (the tag carries the id: pieces may
 * start in a different order on the two ranks of a pair). */
static void rs_post(comm_tree_rs *s, int id)
{
    rs_piece *p = &s->piece[id];
    const int partner = g_rank ^ rs_distance(p->level);
    size_t ka, kb, sa, sb;
    rs_halves(s, p, &ka, &kb, &sa, &sb);
    p->req[0] = p->req[1] = MPI_REQUEST_NULL;
    if (kb > ka)
        MPICHECK(MPI_Irecv(s->tmp + ka, (int)(kb - ka), MPI_FLOAT, partner, 64 + id,
                           MPI_COMM_WORLD, &p->req[0]));
    if (sb > sa)
        MPICHECK(MPI_Isend(s->buf + sa, (int)(sb - sa), MPI_FLOAT, partner, 64 + id,
                           MPI_COMM_WORLD, &p->req[1]));
}

/* The level in flight of piece id is over: add what came, go on up. */
static void rs_advance(comm_tree_rs *s, int id)
{
    rs_piece *p = &s->piece[id];
    size_t ka, kb, sa, sb;
    rs_halves(s, p, &ka, &kb, &sa, &sb);
    float *restrict buf = s->buf;
    const float *restrict tmp = s->tmp;
    for (size_t i = ka; i < kb; i++)
        buf[i] = buf[i] + tmp[i];
    p->a = ka;
    p->b = kb;
    if (++p->level < s->levels)
        rs_post(s, id);
    else
        s->pending--;
}

void comm_tree_rs_add(comm_tree_rs *s, int id, size_t from, size_t to)
{
    if (id < 0 || id >= COMM_TREE_RS_PIECES || s->added[id] || from > to || to > s->n ||
        to - from >= COMM_CHUNK) {
        fprintf(stderr, "trainer: internal error: piece %d [%zu, %zu) of a bucketed sum of %zu\n",
                id, from, to, s->n);
        comm_abort(1);
    }
    s->added[id] = 1;
    s->covered += to - from;
    rs_piece *p = &s->piece[id];
    p->from = p->a = from;
    p->to = p->b = to;
    p->level = 0;
    s->npieces = id + 1 > s->npieces ? id + 1 : s->npieces;
    if (s->levels == 0)
        return;
    s->pending++;
    rs_post(s, id);
}

void comm_tree_rs_poll(comm_tree_rs *s)
{
    for (int id = 0; id < s->npieces && s->pending > 0; id++) {
        rs_piece *p = &s->piece[id];
        int done = 0;
        while (s->added[id] && p->level < s->levels) {
            MPICHECK(MPI_Testall(2, p->req, &done, MPI_STATUSES_IGNORE));
            if (!done)
                break;
            rs_advance(s, id);
        }
    }
}

void comm_tree_rs_end(comm_tree_rs *s)
{
    if (s->covered != s->n) {
        fprintf(stderr, "trainer: internal error: the pieces of a bucketed sum cover %zu of %zu\n",
                s->covered, s->n);
        comm_abort(1);
    }
    for (int id = 0; id < s->npieces; id++)
        while (s->added[id] && s->piece[id].level < s->levels) {
            MPICHECK(MPI_Waitall(2, s->piece[id].req, MPI_STATUSES_IGNORE));
            rs_advance(s, id);
        }
}

void comm_tree_rs_share(const comm_tree_rs *s, int id, size_t *lo, size_t *hi)
{
    *lo = s->piece[id].a;
    *hi = s->piece[id].b;
}

void comm_bcast_bytes(void *buf, size_t n, int root)
{
    if (g_size == 1)
        return;
    for (size_t i = 0; i < n; i += COMM_CHUNK) {
        size_t m = n - i < COMM_CHUNK ? n - i : COMM_CHUNK;
        MPICHECK(MPI_Bcast((char *)buf + i, (int)m, MPI_BYTE, root, MPI_COMM_WORLD));
    }
}

void comm_block(size_t n, int r, size_t *lo, size_t *hi)
{
    const size_t per = n / (size_t)g_size, extra = n % (size_t)g_size;
    *lo = per * (size_t)r + ((size_t)r < extra ? (size_t)r : extra);
    *hi = *lo + per + ((size_t)r < extra);
}

/* The blocks of n elements as MPI counts and displacements. */
static int *block_counts(size_t n)
{
    int *counts = malloc(2 * (size_t)g_size * sizeof(int));
    if (!counts) {
        fprintf(stderr, "trainer: out of memory for the counts of a reduce-scatter\n");
        comm_abort(1);
    }
    for (int r = 0; r < g_size; r++) {
        size_t lo, hi;
        comm_block(n, r, &lo, &hi);
        counts[r] = (int)(hi - lo);
        counts[g_size + r] = (int)lo;
    }
    return counts;
}

static void check_blocks(size_t n)
{
    if (n >= (size_t)INT_MAX) {
        fprintf(stderr, "trainer: internal error: a reduce-scatter of %zu elements\n", n);
        comm_abort(1);
    }
}

void comm_reduce_scatter_double(double *buf, size_t n)
{
    if (g_size == 1)
        return;
    check_blocks(n);
    int *counts = block_counts(n);
    MPICHECK(MPI_Reduce_scatter(MPI_IN_PLACE, buf, counts, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    /* in place, the block lands at the start of buf: move it to its place */
    const int lo = counts[g_size + g_rank];
    if (lo > 0)
        memmove(buf + lo, buf, (size_t)counts[g_rank] * sizeof(double));
    free(counts);
}

void comm_allgather_float(float *buf, size_t n)
{
    if (g_size == 1)
        return;
    check_blocks(n);
    int *counts = block_counts(n);
    MPICHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, counts + g_size,
                            MPI_FLOAT, MPI_COMM_WORLD));
    free(counts);
}
