/* Running a Check suite, the same way in every test program: Check's own
 * summary line on stdout, exit status 1 when anything failed. */
#ifndef TRAINER_TESTS_SUITE_H
#define TRAINER_TESTS_SUITE_H

#include <check.h>

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
