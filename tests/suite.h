/* Running a Check suite, the same way in every test program: Check's own
 * summary line on stdout, exit status 1 when anything failed. */
#ifndef TRAINER_TESTS_SUITE_H
#define TRAINER_TESTS_SUITE_H

#include <check.h>
#include <stdio.h>
#include <unistd.h>

/* stderr into a buffer between capture_begin and capture_end, for tests of
 * the one line a refusal prints. */
static char suite_captured[4096];
static int suite_saved_fd = -1;
static FILE *suite_capture;

static inline void capture_begin(void)
{
    fflush(stderr);
    suite_capture = tmpfile();
    ck_assert_ptr_nonnull(suite_capture);
    suite_saved_fd = dup(2);
    dup2(fileno(suite_capture), 2);
}

static inline const char *capture_end(void)
{
    fflush(stderr);
    dup2(suite_saved_fd, 2);
    close(suite_saved_fd);
    rewind(suite_capture);
    size_t n = fread(suite_captured, 1, sizeof suite_captured - 1, suite_capture);
    suite_captured[n] = 0;
    fclose(suite_capture);
    return suite_captured;
}

static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#ifdef TRAINER_COMM_H
/* Under mpirun: no fork (MPI does not survive one), every rank runs every
 * test in the same order so that collectives meet, rank 0 prints, and all
 * ranks exit 1 when any failed. Call between comm_init and comm_finalize. */
static inline int run_mpi_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, comm_rank() == 0 ? CK_NORMAL : CK_SILENT);
    int failed = comm_max_int(srunner_ntests_failed(sr));
    srunner_free(sr);
    return failed ? 1 : 0;
}
#endif

#endif
