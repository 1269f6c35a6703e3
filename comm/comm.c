#include "comm.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

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

void comm_bcast_bytes(void *buf, size_t n, int root)
{
    if (g_size == 1)
        return;
    for (size_t i = 0; i < n; i += COMM_CHUNK) {
        size_t m = n - i < COMM_CHUNK ? n - i : COMM_CHUNK;
        MPICHECK(MPI_Bcast((char *)buf + i, (int)m, MPI_BYTE, root, MPI_COMM_WORLD));
    }
}
