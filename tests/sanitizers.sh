# Sourced before every test (TESTS_ENVIRONMENT): in a tree configured with
# --enable-sanitizers, every finding ends the process with a failure, and
# leaks inside the libraries we call (Open MPI, hwloc, HDF5's global state,
# OpenBLAS's thread pool) are not reported as ours (tests/lsan.supp).
case "${SANITIZERS:-no}" in
no) ;;
thread)
    export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$TOP_SRCDIR/tests/tsan.supp"
    ;;
*)
    # the slow unwinder: libc frames without frame pointers still give a
    # whole stack, which the suppressions need; intercept_tls_get_addr=0:
    # gcc 12's LeakSanitizer crashes scanning the dynamic TLS that a
    # singleton MPI_Init (no mpirun) leaves behind
    export ASAN_OPTIONS="abort_on_error=0 exitcode=66 detect_leaks=1 detect_odr_violation=0 fast_unwind_on_malloc=0 intercept_tls_get_addr=0"
    export LSAN_OPTIONS="suppressions=$TOP_SRCDIR/tests/lsan.supp print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 exitcode=66"
    ;;
esac
